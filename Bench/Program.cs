using System.CommandLine;
using GpuNet.Bench;

// dotnet run --project Bench -c Release -- <devices|peak|gemm|kernels> [options]; every command has --help.
// Exit status: 0 success, 1 a benchmark failed (wrong result, runtime error), 2 bad arguments.
var root = new RootCommand("GpuNet benchmarks: devices, machine peak (FMA, copy bandwidth), GEMM, kernel suite.")
{
    DevicesCommand.Create(),
    PeakCommand.Create(),
    GemmCommand.Create(),
    KernelsCommand.Create(),
};
return Cli.Run(root, args);
