using System.CommandLine;
using System.Diagnostics;
using GpuNet.Kernels;

namespace GpuNet.Bench;

/// <summary>
/// <c>gemm</c>: square SGEMM C = op(A) op(B) for each size and transpose case. Each case is first checked against
/// float64 dot products at sampled entries (exit 1 on a mismatch), then warmed up, then timed: the median of R runs,
/// each ending with a device synchronisation. Reports ms, GFLOP/s (2n^3 / t) and % of the measured host FMA peak
/// (host devices) or the ratio to cuBLAS SGEMM run on the same tensors (CUDA devices). <c>--math tf32</c> sets the
/// device's <see cref="MatmulMath.Tf32"/> mode (the TF32 tensor-core kernel on ILGPU devices; on CUDA beside cuBLAS in
/// TF32 tensor-op math, which only CUDA runs; the <c>cpu</c> device stays float32) and checks against the TF32 reference.
/// </summary>
internal static class GemmCommand
{
    private static readonly string[] TransChoices = ["NN", "NT", "TN", "all"];
    private const double MinWarmupSeconds = 0.5;

    public static Command Create()
    {
        var device = Cli.DeviceOption();
        var sizes = Cli.IntListOption("--sizes", "matrix sizes n (M = N = K = n)", [256, 512, 1024, 2048], 1, 16384);
        var trans = new Option<string>("--trans")
        {
            Description = "transposes op(A) op(B): NN, NT (A B^T, linear forward), TN (A^T B, weight gradient) or all",
            DefaultValueFactory = _ => "NN",
        };
        trans.Validators.Add(r =>
        {
            var v = r.GetValueOrDefault<string>();
            if (!TransChoices.Contains(v, StringComparer.OrdinalIgnoreCase))
                r.AddError($"--trans: '{v}' is not one of {string.Join(", ", TransChoices)}");
        });
        var reps = Cli.IntOption("--reps", "timed runs per case (the median is reported)", 10, 1, 10000);
        var warmup = Cli.IntOption("--warmup", "untimed runs per case before timing (0: none; otherwise also at least 0.5 s)", 2, 0, 1000);
        var samples = Cli.IntOption("--check", "entries checked against float64 per case (all when C has fewer)", 256, 1, 1 << 20);
        var math = MathOption();
        var cmd = new Command("gemm", "SGEMM throughput against the host FMA peak (and against cuBLAS on CUDA devices), after a correctness check.")
        {
            device, sizes, trans, reps, warmup, samples, math,
        };
        cmd.SetAction(p => Cli.Guard(() => Run(p.GetValue(device), p.GetValue(sizes)!, p.GetValue(trans)!, p.GetValue(reps), p.GetValue(warmup), p.GetValue(samples), p.GetValue(math))));
        return cmd;
    }

    /// <summary>The <c>--math</c> option of <c>gemm</c> and <c>train</c>: fp32 or tf32; absent: GPUNET_MATH, else fp32.</summary>
    internal static Option<string?> MathOption() => new("--math")
    {
        Description = "GEMM precision: fp32, or tf32 (operands rounded to TF32: tensor cores on CUDA sm_80+, the same kernel's software model on other ILGPU devices; the cpu device stays fp32). Default: $GPUNET_MATH, else fp32",
    };

    /// <summary>Parses <c>--math</c> (null when absent); a bad value is a usage error naming the option, the allowed values and the value.</summary>
    internal static MatmulMath? ParseMath(string? value)
    {
        try { return Device.ParseMathMode(value, "--math"); }
        catch (ArgumentException e) { throw new UsageException(e.Message.Replace($" (Parameter '{e.ParamName}')", "")); }
    }

    private static int Run(string? deviceName, int[] sizes, string trans, int reps, int warmup, int samples, string? mathName)
    {
        var math = ParseMath(mathName);
        using var device = Cli.OpenDevice(deviceName);
        if (math is { } mm) device.MathMode = mm;
        bool tf32 = device.MathMode == MatmulMath.Tf32 && !device.IsHost;
        Console.WriteLine($"device: {device}");
        Console.WriteLine(device.MathMode == MatmulMath.Tf32
            ? device.IsHost ? "math: tf32 requested, but the cpu device computes in fp32" : "math: tf32 (operands rounded to TF32, float32 accumulation); checked against the TF32 float64 reference"
            : "math: fp32");
        if (device.MathMode == MatmulMath.Tf32 && device.Kind != DeviceKind.Cuda)
            Console.WriteLine("cuBLAS TF32 comparison: CUDA devices only");
        bool hostKind = device.Kind is DeviceKind.Cpu or DeviceKind.IlgpuCpu;
        FmaPeak? peak = null;
        if (hostKind)
        {
            peak = Probes.MeasureFma(0.1, trials: 5);
            Console.WriteLine($"host FMA peak: {peak.Value.TotalGflops:F1} GFLOP/s on {peak.Value.Threads} threads ({peak.Value.PerCoreGflops:F1} per core)");
        }
        else Console.WriteLine($"host FMA probe skipped: the device is {device.Kind}, compared with cuBLAS instead");
        using var cublas = CuBlasBaseline.TryCreate(device, tf32, out string noCuBlas);
        if (noCuBlas.Length > 0) Console.WriteLine(noCuBlas);

        var cases = trans.Equals("all", StringComparison.OrdinalIgnoreCase) ? ["NN", "NT", "TN"] : new[] { trans.ToUpperInvariant() };
        var headers = new List<string> { "op", "n", "ms", "GFLOP/s", hostKind ? "% peak" : "% peak (n/a)", "err/tol" };
        if (cublas is not null) headers.AddRange([tf32 ? "cuBLAS TF32 ms" : "cuBLAS ms", "cuBLAS GFLOP/s", "ours/cuBLAS"]);
        var table = new TextTable([.. headers]);
        Console.WriteLine($"median of {reps} runs after >= {warmup} warm-up runs and >= {MinWarmupSeconds} s; err/tol: worst |got - ref| / (atol + rtol |ref|) over {samples} sampled entries");
        foreach (var op in cases)
            foreach (int n in sizes)
            {
                bool transA = op[0] == 'T', transB = op[1] == 'T';
                var row = RunCase(device, cublas, n, transA, transB, reps, warmup, samples, peak, tf32);
                if (row is null) return Cli.Failed;
                table.Add(row);
                Console.WriteLine($"  {op} n={n}: {row[2]} ms, {row[3]} GFLOP/s");
            }
        Console.WriteLine();
        table.Write(Console.Out);
        return Cli.Ok;
    }

    /// <summary>One (op, n) case; null when a result is wrong (the reason is printed).</summary>
    private static string[]? RunCase(Device device, CuBlasBaseline? cublas, int n, bool transA, bool transB, int reps, int warmup, int samples, FmaPeak? peak, bool tf32)
    {
        string op = $"{(transA ? 'T' : 'N')}{(transB ? 'T' : 'N')}";
        var rng = new Random(1234 + n);
        var ha = RandomMatrix(rng, n * n);
        var hb = RandomMatrix(rng, n * n);
        // Square case: a and b are (n, n) whatever the transposes; transA/transB decide how they are read.
        using var a = device.FromArray(ha, n, n);
        using var b = device.FromArray(hb, n, n);
        using var c = device.AllocateUninitialized([n, n]);
        double flops = GemmOp.Cost(n, n, n).Flops;

        device.Gemm(a, b, c, transA, transB);
        device.Synchronize();
        var check = Check(ha, hb, c.ToArray(), n, transA, transB, samples, rng, tf32 ? CheckRule.Tf32 : CheckRule.Fp32);
        if (!check.Ok) { Console.Error.WriteLine($"gemm {op} n={n} on {device.Name}: WRONG RESULT: {check.Message}"); return null; }
        double ms = TimeMedian(device, () => device.Gemm(a, b, c, transA, transB), reps, warmup);
        double gflops = flops / (ms * 1e6);
        var row = new List<string> { op, n.ToString(), ms.ToString("F3"), gflops.ToString("F1"), peak is { } p ? (100 * gflops / p.TotalGflops).ToString("F1") + "%" : "n/a", check.Ratio.ToString("F3") };

        if (cublas is not null)
        {
            using var cb = device.AllocateUninitialized([n, n]);
            cublas.Sgemm(a, b, cb, transA, transB);
            device.Synchronize();
            var cbCheck = Check(ha, hb, cb.ToArray(), n, transA, transB, samples, rng, tf32 ? CheckRule.Tf32AnyRounding : CheckRule.Fp32);
            if (!cbCheck.Ok) { Console.Error.WriteLine($"cuBLAS {op} n={n}: WRONG RESULT (operand mapping?): {cbCheck.Message}"); return null; }
            double cbMs = TimeMedian(device, () => cublas.Sgemm(a, b, cb, transA, transB), reps, warmup);
            row.AddRange([cbMs.ToString("F3"), (flops / (cbMs * 1e6)).ToString("F1"), (cbMs / ms).ToString("F2") + "x"]);
        }
        return [.. row];
    }

    /// <summary>
    /// Median milliseconds of <paramref name="reps"/> runs, each ending with a device synchronisation. Warm-up is at
    /// least <paramref name="warmup"/> runs and at least <see cref="MinWarmupSeconds"/>: the JIT's tiering promotes
    /// hot host code to optimised code only after ~30 calls plus a 100 ms quiet period, compiled in the background.
    /// </summary>
    internal static double TimeMedian(Device device, Action run, int reps, int warmup)
    {
        var warm = Stopwatch.StartNew();
        for (int i = 0; i < warmup || (warmup > 0 && warm.Elapsed.TotalSeconds < MinWarmupSeconds); i++)
        {
            run();
            device.Synchronize();
        }
        var times = new double[reps];
        var sw = new Stopwatch();
        for (int i = 0; i < reps; i++)
        {
            sw.Restart();
            run();
            device.Synchronize();
            times[i] = sw.Elapsed.TotalMilliseconds;
        }
        Array.Sort(times);
        return reps % 2 == 1 ? times[reps / 2] : 0.5 * (times[reps / 2 - 1] + times[reps / 2]);
    }

    private static float[] RandomMatrix(Random rng, int count)
    {
        var x = new float[count];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(2 * rng.NextDouble() - 1);
        return x;
    }

    private readonly record struct CheckResult(bool Ok, double Ratio, string Message);

    /// <summary>What a result is checked against.</summary>
    private enum CheckRule
    {
        /// <summary>float64 of the float32 inputs; the test suite's float32 GEMM constants.</summary>
        Fp32,
        /// <summary>float64 of the inputs rounded as cvt.rna.tf32.f32 does; the test suite's TF32 constants (Tol.ForGemmTf32).</summary>
        Tf32,
        /// <summary>
        /// float64 of the float32 inputs, with room for any TF32 rounding of them (cuBLAS does not document its
        /// conversion): |error| up to 2^-10 sqrt(n) for inputs in [-1, 1], about 7 standard deviations of the rounding error.
        /// </summary>
        Tf32AnyRounding,
    }

    /// <summary>
    /// Compares sampled entries of c with float64 dot products (all entries when c has at most
    /// <paramref name="samples"/>; the four corners always, since tile edges are where GEMMs go wrong).
    /// Rule: |got - ref| &lt;= atol + rtol |ref| with the test suite's GEMM constants for inputs in [-1, 1].
    /// </summary>
    private static CheckResult Check(float[] a, float[] b, float[] c, int n, bool transA, bool transB, int samples, Random rng, CheckRule rule)
    {
        double atol = rule switch // Engine.Tests Tol.ForGemm(k), Tol.ForGemmTf32(k)
        {
            CheckRule.Fp32 => 8e-6 * Math.Sqrt(n),
            CheckRule.Tf32 => 16e-6 * Math.Sqrt(n),
            _ => Math.Sqrt(n) / 1024,
        };
        double rtol = 1e-5;
        Func<double, double> operand = rule == CheckRule.Tf32 ? GemmTf32Op.RoundTf32 : x => x;
        IEnumerable<(int I, int J)> points = (long)n * n <= samples
            ? Enumerable.Range(0, n * n).Select(x => (x / n, x % n))
            : new[] { (0, 0), (0, n - 1), (n - 1, 0), (n - 1, n - 1) }.Concat(Enumerable.Range(0, samples).Select(_ => (rng.Next(n), rng.Next(n))));
        double worst = 0;
        string message = "";
        foreach (var (i, j) in points)
        {
            double r = 0;
            for (int p = 0; p < n; p++)
                r += operand(transA ? a[p * n + i] : a[i * n + p]) * operand(transB ? b[j * n + p] : b[p * n + j]);
            double got = c[i * n + j], err = Math.Abs(got - r), allowed = atol + rtol * Math.Abs(r);
            double ratio = double.IsFinite(got) ? err / allowed : double.PositiveInfinity;
            if (ratio > worst || double.IsNaN(ratio))
            {
                worst = double.IsNaN(ratio) ? double.PositiveInfinity : ratio;
                message = $"C[{i},{j}] = {got:R}, float64 ref {r:R}, |err| {err:E3} > {atol:E2} + {rtol:E1}*|ref|";
            }
        }
        return new CheckResult(worst <= 1, worst, message);
    }
}
