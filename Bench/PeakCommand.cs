using System.CommandLine;

namespace GpuNet.Bench;

/// <summary><c>peak</c>: the host's FMA throughput and copy bandwidth, the denominators of "% of peak".</summary>
internal static class PeakCommand
{
    public static Command Create()
    {
        var seconds = Cli.DoubleOption("--seconds", "length of one FMA trial in seconds", 0.25, 0.05, 10);
        var trials = Cli.IntOption("--trials", "trials per probe, the best is reported (more trials see through a busy machine)", 5, 1, 100);
        var megabytes = Cli.IntOption("--copy-mib", "size of each copy-probe array in MiB", 256, 64, 4096);
        var cmd = new Command("peak", "FMA throughput (GFLOP/s per core and total) and multi-threaded copy bandwidth (GB/s, read + write).")
        {
            seconds, trials, megabytes,
        };
        cmd.SetAction(p => Cli.Guard(() => Run(p.GetValue(seconds), p.GetValue(trials), p.GetValue(megabytes))));
        return cmd;
    }

    private static int Run(double seconds, int trials, int copyMib)
    {
        Console.WriteLine($"host: {Environment.ProcessorCount} logical cores, {Kernels.HostSimd.Description}");
        var fma = Probes.MeasureFma(seconds, trials);
        Console.WriteLine($"FMA peak (float32, {fma.Accumulators} independent Vector{fma.VectorBits} FMA chains per thread, best of {trials}):");
        Console.WriteLine($"  1 thread:   {fma.SingleThreadGflops,8:F1} GFLOP/s");
        Console.WriteLine($"  {fma.Threads} threads:  {fma.TotalGflops,8:F1} GFLOP/s total, {fma.PerCoreGflops:F1} GFLOP/s per core");
        // The reference train reports MFU against (this probe also updates the per-machine best in the cache).
        var reference = PeakReference.ForProbe(fma, Data.DataSets.CacheDirectory);
        Console.WriteLine($"  MFU reference: {reference.Describe()}");
        if (reference.Nominal is { } n) Console.WriteLine($"  FMA units: {n.FmaReason}");
        var copy = Probes.MeasureCopy((long)copyMib << 20, trials);
        Console.WriteLine($"copy bandwidth ({Cli.Bytes(copy.BytesPerArray)} -> {Cli.Bytes(copy.BytesPerArray)}, read + write bytes, best of {trials}):");
        Console.WriteLine($"  1 thread:   {copy.SingleThreadGBps,8:F1} GB/s");
        Console.WriteLine($"  {copy.Threads} threads:  {copy.TotalGBps,8:F1} GB/s");
        return Cli.Ok;
    }
}
