using System.Diagnostics;
using System.Runtime.Intrinsics;
using GpuNet.Kernels;
using GpuNet.Optim;

namespace GpuNet.Bench;

/// <summary>
/// Times the fused optimizer step: <c>optim [--device NAME] [--sizes 1M,10M,100M] [--optimizers sgd,momentum,adagrad,rmsprop,adam,adamw]
/// [--runs N] [--clip]</c>. For each size and optimizer: the median of many steps after warm-up, the GB/s of
/// compulsory memory traffic (p and g read, p written, every state read and written: Adam 28 bytes per parameter) and
/// the fraction of the device's copy bandwidth measured by a probe in the same run (a device-to-device copy on an
/// accelerator; a multi-threaded large-array copy on the host, read + write counted).
/// </summary>
public static class OptimBenchmark
{
    /// <summary>Runs the benchmark; returns the process exit code.</summary>
    public static int Run(string[] args)
    {
        string device = "cpu";
        var sizes = new List<long> { 1_000_000, 10_000_000, 100_000_000 };
        var optimizers = new List<string> { "sgd", "momentum", "adagrad", "rmsprop", "adam", "adamw" };
        int runs = 0;
        bool clip = false;
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"optim: {args[i]} needs a value");
            switch (args[i])
            {
                case "--device": device = Next(); break;
                case "--sizes": sizes = Next().Split(',').Select(ParseSize).ToList(); break;
                case "--optimizers": optimizers = Next().Split(',').Select(s => s.Trim().ToLowerInvariant()).ToList(); break;
                case "--runs": runs = int.Parse(Next()); break;
                case "--clip": clip = true; break;
                case "--help" or "-h":
                    Console.WriteLine("optim [--device cpu|ilgpu-cpu|cuda|...] [--sizes 1M,10M,100M] [--optimizers sgd,momentum,adagrad,rmsprop,adam,adamw] [--runs N] [--clip]");
                    return 0;
                default: Console.Error.WriteLine($"optim: unknown argument '{args[i]}' (try --help)"); return 2;
            }
        }
        foreach (var o in optimizers)
            if (!Names.Contains(o)) { Console.Error.WriteLine($"optim: unknown optimizer '{o}'; known: {string.Join(", ", Names)}"); return 2; }

        using var d = Device.Create(device);
        Console.WriteLine($"device: {d}, {Environment.ProcessorCount} host cores, clip by norm: {(clip ? "on (2 launches per step)" : "off")}");
        var (copyGBs, rmwGBs) = CopyProbe(d, sizes.Max());
        Console.WriteLine($"copy probe: {copyGBs:F1} GB/s (b = a, read + write counted; the write-allocate reads of b are real traffic that is not counted)");
        Console.WriteLine($"in-place probe: {rmwGBs:F1} GB/s (a = -a, read + write: the access pattern of p and the optimizer state)");
        Console.WriteLine($"{"optimizer",-10} {"params",10} {"bytes/param",11} {"median ms",10} {"best ms",9} {"GB/s",8} {"of copy",8} {"of in-place",11}");
        foreach (long n in sizes)
        {
            using var p = d.FromArray(Fill(n, 1));
            using var g = d.FromArray(Fill(n, 2));
            foreach (var name in optimizers)
            {
                var options = new OptimizerOptions { MaxGradNorm = clip ? 1.0 : 0 };
                using var opt = Make(name, d, p, g, options);
                var hyper = HyperOf(name, clip);
                double bytes = OptimizerOp.Cost(hyper, n).Bytes + (clip ? OptimizerOp.SumSquaresCost(n).Bytes : 0);
                int count = runs > 0 ? runs : (int)Math.Clamp(2e9 / bytes, 5, 200);
                for (int w = 0; w < 3; w++) opt.Step();
                d.Synchronize();
                var times = new double[count];
                for (int r = 0; r < count; r++)
                {
                    long t0 = Stopwatch.GetTimestamp();
                    opt.Step();
                    d.Synchronize();
                    times[r] = Stopwatch.GetElapsedTime(t0).TotalSeconds;
                }
                Array.Sort(times);
                double median = times[count / 2], gbs = bytes / median / 1e9;
                Console.WriteLine($"{name,-10} {Format(n),10} {bytes / n,11:F0} {median * 1e3,10:F3} {times[0] * 1e3,9:F3} {gbs,8:F1} {gbs / copyGBs,8:P0} {gbs / rmwGBs,11:P0}");
            }
        }
        return 0;
    }

    private static readonly string[] Names = ["sgd", "momentum", "adagrad", "rmsprop", "adam", "adamw"];

    private static GpuNet.Optim.Optimizer Make(string name, Device d, Tensor p, Tensor g, OptimizerOptions o) => name switch
    {
        "sgd" => new Sgd(d, p, g, lr: 1e-6, options: o),
        "momentum" => new Sgd(d, p, g, lr: 1e-6, momentum: 0.9, options: o),
        "adagrad" => new Adagrad(d, p, g, lr: 1e-6, options: o),
        "rmsprop" => new RmsProp(d, p, g, lr: 1e-6, options: o),
        "adam" => new Adam(d, p, g, lr: 1e-6, options: o),
        _ => Adam.AdamW(d, p, g, lr: 1e-6, options: o),
    };

    private static OptimizerHyper HyperOf(string name, bool clip) => (name switch
    {
        "sgd" => new OptimizerHyper(OptimizerAlgorithm.Sgd),
        "momentum" => new OptimizerHyper(OptimizerAlgorithm.Sgd) { Momentum = 0.9 },
        "adagrad" => new OptimizerHyper(OptimizerAlgorithm.Adagrad),
        "rmsprop" => new OptimizerHyper(OptimizerAlgorithm.RmsProp),
        _ => new OptimizerHyper(OptimizerAlgorithm.Adam),
    }) with { MaxGradNorm = clip ? 1 : 0 };

    /// <summary>
    /// Copy bandwidth (b = a) and in-place bandwidth (a = -a) of the device in GB/s, read + write counted, medians of
    /// several passes over buffers far beyond the caches. Accelerators use the device-to-device copy and scale ops.
    /// </summary>
    private static (double Copy, double InPlace) CopyProbe(Device d, long maxElements)
    {
        // 64-256 MB per buffer, far beyond the caches (the ilgpu-cpu simulator: just the largest size asked for)
        long n = d.Kind == DeviceKind.IlgpuCpu ? maxElements : Math.Clamp(maxElements, 16L << 20, 64L << 20);
        using var a = d.FromArray(Fill(n, 3));
        using var b = d.Zeros(checked((int)n));
        double copy = Median(d, () => { if (d.IsHost) HostCopy(a, b); else d.Copy(a, b); });
        double inPlace = Median(d, () => { if (d.IsHost) HostNegate(a); else d.Scale(-1f, a, a); });
        return (8.0 * n / copy / 1e9, 8.0 * n / inPlace / 1e9);
    }

    private static double Median(Device d, Action pass)
    {
        var times = new double[11];
        for (int w = 0; w < 2; w++) pass();
        d.Synchronize();
        for (int r = 0; r < times.Length; r++)
        {
            long t0 = Stopwatch.GetTimestamp();
            pass();
            d.Synchronize();
            times[r] = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        }
        Array.Sort(times);
        return times[times.Length / 2];
    }

    // The host probes work in one chunk per core, like the host optimizer step splits its work.
    private static void HostCopy(Tensor a, Tensor b)
    {
        var src = a.Host; var dst = b.Host;
        HostSimd.ForChunks(src.Count, (s, c) => src.AsSpan(s, c).CopyTo(dst.AsSpan(s, c)));
    }

    private static void HostNegate(Tensor a)
    {
        var x = a.Host;
        HostSimd.ForChunks(x.Count, (s, c) =>
        {
            ref float r = ref x.Array![x.Offset + s];
            int i = 0;
            for (; i + 16 <= c; i += 16)
                (-Vector512.LoadUnsafe(ref r, (nuint)i)).StoreUnsafe(ref r, (nuint)i);
            for (; i < c; i++) x[s + i] = -x[s + i];
        });
    }

    private static float[] Fill(long n, int seed)
    {
        var r = new Random(seed);
        var a = new float[n];
        for (long i = 0; i < n; i++) a[i] = r.NextSingle() * 2 - 1;
        return a;
    }

    private static long ParseSize(string s)
    {
        s = s.Trim().ToUpperInvariant();
        double mult = s.EndsWith('K') ? 1e3 : s.EndsWith('M') ? 1e6 : s.EndsWith('G') ? 1e9 : 1;
        if (mult != 1) s = s[..^1];
        return (long)(double.Parse(s, System.Globalization.CultureInfo.InvariantCulture) * mult);
    }

    private static string Format(long n) => n >= 1_000_000 ? $"{n / 1e6:0.##}M" : n >= 1000 ? $"{n / 1e3:0.##}K" : n.ToString();
}
