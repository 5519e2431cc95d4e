using System.CommandLine;
using GpuNet.Bench;

// dotnet run --project Bench -c Release -- <devices|peak|gemm|kernels|optim> [options]; every command has --help.
// Exit status: 0 success, 1 a benchmark failed (wrong result, runtime error), 2 bad arguments.
if (args.Length > 0 && args[0] == "optim")
{
    try { return OptimBenchmark.Run(args[1..]); }
    catch (Exception e) when (e is ArgumentException or FormatException or OverflowException)
    {
        Console.Error.WriteLine($"optim: {e.Message} (try --help)");
        return 2;
    }
}

var root = new RootCommand("GpuNet benchmarks: devices, machine peak (FMA, copy bandwidth), GEMM, kernel suite, optim (fused optimizer step; own --help).")
{
    DevicesCommand.Create(),
    PeakCommand.Create(),
    GemmCommand.Create(),
    KernelsCommand.Create(),
    TrainCommand.Create(),
    DataCommand.Create(),
};
return Cli.Run(root, args);
