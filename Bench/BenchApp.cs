using System.CommandLine;

namespace GpuNet.Bench;

/// <summary>The command line: every command, parsed and run (also driven in-process by the tests).</summary>
internal static class BenchApp
{
    public static int Run(string[] args)
    {
        if (args.Length > 0 && args[0] == "optim")
        {
            try { return OptimBenchmark.Run(args[1..]); }
            catch (Exception e) when (e is ArgumentException or FormatException or OverflowException)
            {
                Console.Error.WriteLine($"optim: {e.Message} (try --help)");
                return Cli.BadArguments;
            }
        }
        var root = new RootCommand("GpuNet: train (preset networks on real data), predict (classes from a trained checkpoint), export (a checkpoint as ONNX), data (fetch data sets), devices, peak (FMA, copy bandwidth), gemm, kernels, summary (model summary and launches per training step), optim (fused optimizer step; own --help), conv, sass (per-kernel SASS statistics from ptxas and cuobjdump), gpu-report (one run characterising a GPU), fuzz (mutated files through the loaders), soak (resource use over a long run).")
        {
            TrainCommand.Create(),
            PredictCommand.Create(),
            ExportCommand.Create(),
            DataCommand.Create(),
            DevicesCommand.Create(),
            PeakCommand.Create(),
            GemmCommand.Create(),
            KernelsCommand.Create(),
            ConvCommand.Create(),
            SummaryCommand.Create(),
            SassCommand.Create(),
            GpuReportCommand.Create(),
            FuzzCommand.Create(),
            CheckpointChildCommand.Create(),
            SoakCommand.Create(),
        };
        return Cli.Run(root, args);
    }
}
