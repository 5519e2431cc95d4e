using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace GpuNet.Bench;

/// <summary>Peak FMA throughput of the host (float32).</summary>
/// <param name="SingleThreadGflops">One thread on an otherwise idle core.</param>
/// <param name="TotalGflops">One thread per core, all at once.</param>
/// <param name="Threads">Threads of the all-core run.</param>
/// <param name="VectorBits">512 (Vector512) or 256 (Vector256 fallback).</param>
/// <param name="Accumulators">Independent FMA chains per thread.</param>
internal readonly record struct FmaPeak(double SingleThreadGflops, double TotalGflops, int Threads, int VectorBits, int Accumulators)
{
    public double PerCoreGflops => TotalGflops / Threads;
}

/// <summary>Copy bandwidth of host memory, counting bytes read plus bytes written.</summary>
internal readonly record struct CopyBandwidth(double SingleThreadGBps, double TotalGBps, int Threads, long BytesPerArray);

/// <summary>
/// Machine probes that benchmarks divide by to report "% of peak". The FMA probe runs independent chains of
/// <c>acc = acc * m + a</c> on 24 vector accumulators per thread, enough to cover FMA latency (4 cycles) times
/// throughput (2 per cycle) with room to spare while staying within the 32 vector registers of AVX-512, so the
/// loop is bound by the FMA units only. The copy probe streams arrays far larger than the last-level cache.
/// </summary>
internal static class Probes
{
    private const int InnerIterations = 4096;
    private static float _sink;

    private static int VectorBits => Vector512.IsHardwareAccelerated ? 512 : 256;

    /// <summary>Chains per thread: 24 zmm (of 32 registers) with AVX-512, 14 ymm (of 16) without.</summary>
    private static int Accumulators => Vector512.IsHardwareAccelerated ? 24 : 14;

    /// <summary>FLOPs of one call of the FMA kernel: chains x lanes x 2 (multiply + add) x iterations.</summary>
    private static double FlopsPerCall => Accumulators * (VectorBits / 32) * 2.0 * InnerIterations;

    /// <summary>Measures FMA throughput on one thread, then on one thread per core; best of <paramref name="trials"/>.</summary>
    public static FmaPeak MeasureFma(double secondsPerTrial = 0.25, int trials = 3)
    {
        int threads = Environment.ProcessorCount;
        // Calibrate: calls per trial so that a trial lasts about secondsPerTrial on one thread.
        RunFma(50);
        var sw = Stopwatch.StartNew();
        long calls = 64;
        while (true)
        {
            sw.Restart();
            RunFma(calls);
            if (sw.Elapsed.TotalSeconds > 0.02) break;
            calls *= 2;
        }
        calls = Math.Max(1, (long)(calls * secondsPerTrial / sw.Elapsed.TotalSeconds));

        double single = 0, total = 0;
        for (int t = 0; t < trials; t++)
        {
            single = Math.Max(single, calls * FlopsPerCall / OnThreads(1, () => RunFma(calls)) / 1e9);
            total = Math.Max(total, threads * calls * FlopsPerCall / OnThreads(threads, () => RunFma(calls)) / 1e9);
        }
        return new FmaPeak(single, total, threads, VectorBits, Accumulators);
    }

    /// <summary>
    /// Measures copy bandwidth (read + write bytes per second) between two arrays of <paramref name="bytesPerArray"/>,
    /// on one thread and on one thread per core; best of <paramref name="trials"/>.
    /// </summary>
    public static CopyBandwidth MeasureCopy(long bytesPerArray = 256L << 20, int trials = 5)
    {
        int threads = Environment.ProcessorCount;
        int n = (int)(bytesPerArray / sizeof(float));
        var src = GC.AllocateUninitializedArray<float>(n, pinned: true);
        var dst = GC.AllocateUninitializedArray<float>(n, pinned: true);
        // Touch every page first so page faults are not timed.
        src.AsSpan().Fill(1f);
        dst.AsSpan().Clear();
        double bytes = 2.0 * n * sizeof(float);
        double single = 0, total = 0;
        for (int t = 0; t < trials; t++)
        {
            single = Math.Max(single, bytes / OnThreads(1, () => src.AsSpan().CopyTo(dst)) / 1e9);
            total = Math.Max(total, bytes / OnThreads(threads, i =>
            {
                int chunk = (n + threads - 1) / threads & ~15;
                int start = i * chunk, count = i == threads - 1 ? n - start : chunk;
                src.AsSpan(start, count).CopyTo(dst.AsSpan(start, count));
            }) / 1e9);
        }
        if (dst[n - 1] != 1f) throw new InvalidOperationException("copy probe: the destination was not written");
        return new CopyBandwidth(single, total, threads, bytesPerArray);
    }

    private static double OnThreads(int count, Action body) => OnThreads(count, _ => body());

    /// <summary>Runs body(i) on <paramref name="count"/> dedicated threads released together; returns wall seconds.</summary>
    private static double OnThreads(int count, Action<int> body)
    {
        using var ready = new Barrier(count + 1);
        var threads = new Thread[count];
        for (int i = 0; i < count; i++)
        {
            int id = i;
            threads[i] = new Thread(() => { ready.SignalAndWait(); body(id); }) { IsBackground = true, Priority = ThreadPriority.Highest };
            threads[i].Start();
        }
        ready.SignalAndWait();
        var sw = Stopwatch.StartNew();
        foreach (var t in threads) t.Join();
        return sw.Elapsed.TotalSeconds;
    }

    private static void RunFma(long calls)
    {
        float s = 0;
        for (long c = 0; c < calls; c++)
            s += Vector512.IsHardwareAccelerated ? Fma512(InnerIterations) : Fma256(InnerIterations);
        _sink = s;
    }

    // 24 independent chains: acc_i = acc_i * m + a. m < 1 and a small keep values bounded and normal.
    // AggressiveOptimization: fully optimised from the first call (no tier-0 / OSR code in the first trials).
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Fma512(int iterations)
    {
        var m = Vector512.Create(0.999999f);
        var a = Vector512.Create(1e-6f);
        Vector512<float> a0 = Vector512.Create(0.0f), a1 = Vector512.Create(0.1f), a2 = Vector512.Create(0.2f), a3 = Vector512.Create(0.3f);
        Vector512<float> a4 = Vector512.Create(0.4f), a5 = Vector512.Create(0.5f), a6 = Vector512.Create(0.6f), a7 = Vector512.Create(0.7f);
        Vector512<float> a8 = Vector512.Create(0.8f), a9 = Vector512.Create(0.9f), a10 = Vector512.Create(1.0f), a11 = Vector512.Create(1.1f);
        Vector512<float> a12 = Vector512.Create(1.2f), a13 = Vector512.Create(1.3f), a14 = Vector512.Create(1.4f), a15 = Vector512.Create(1.5f);
        Vector512<float> a16 = Vector512.Create(1.6f), a17 = Vector512.Create(1.7f), a18 = Vector512.Create(1.8f), a19 = Vector512.Create(1.9f);
        Vector512<float> a20 = Vector512.Create(2.0f), a21 = Vector512.Create(2.1f), a22 = Vector512.Create(2.2f), a23 = Vector512.Create(2.3f);
        for (int i = 0; i < iterations; i++)
        {
            a0 = Vector512.FusedMultiplyAdd(a0, m, a); a1 = Vector512.FusedMultiplyAdd(a1, m, a);
            a2 = Vector512.FusedMultiplyAdd(a2, m, a); a3 = Vector512.FusedMultiplyAdd(a3, m, a);
            a4 = Vector512.FusedMultiplyAdd(a4, m, a); a5 = Vector512.FusedMultiplyAdd(a5, m, a);
            a6 = Vector512.FusedMultiplyAdd(a6, m, a); a7 = Vector512.FusedMultiplyAdd(a7, m, a);
            a8 = Vector512.FusedMultiplyAdd(a8, m, a); a9 = Vector512.FusedMultiplyAdd(a9, m, a);
            a10 = Vector512.FusedMultiplyAdd(a10, m, a); a11 = Vector512.FusedMultiplyAdd(a11, m, a);
            a12 = Vector512.FusedMultiplyAdd(a12, m, a); a13 = Vector512.FusedMultiplyAdd(a13, m, a);
            a14 = Vector512.FusedMultiplyAdd(a14, m, a); a15 = Vector512.FusedMultiplyAdd(a15, m, a);
            a16 = Vector512.FusedMultiplyAdd(a16, m, a); a17 = Vector512.FusedMultiplyAdd(a17, m, a);
            a18 = Vector512.FusedMultiplyAdd(a18, m, a); a19 = Vector512.FusedMultiplyAdd(a19, m, a);
            a20 = Vector512.FusedMultiplyAdd(a20, m, a); a21 = Vector512.FusedMultiplyAdd(a21, m, a);
            a22 = Vector512.FusedMultiplyAdd(a22, m, a); a23 = Vector512.FusedMultiplyAdd(a23, m, a);
        }
        var sum = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)) + ((a8 + a9) + (a10 + a11))
                + ((a12 + a13) + (a14 + a15)) + ((a16 + a17) + (a18 + a19)) + ((a20 + a21) + (a22 + a23));
        return Vector512.Sum(sum);
    }

    // Same with 256-bit vectors (AVX2 machines): 14 chains still cover 2 FMA ports x 4-5 cycles of latency.
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Fma256(int iterations)
    {
        var m = Vector256.Create(0.999999f);
        var a = Vector256.Create(1e-6f);
        Vector256<float> a0 = Vector256.Create(0.0f), a1 = Vector256.Create(0.1f), a2 = Vector256.Create(0.2f), a3 = Vector256.Create(0.3f);
        Vector256<float> a4 = Vector256.Create(0.4f), a5 = Vector256.Create(0.5f), a6 = Vector256.Create(0.6f), a7 = Vector256.Create(0.7f);
        Vector256<float> a8 = Vector256.Create(0.8f), a9 = Vector256.Create(0.9f), a10 = Vector256.Create(1.0f), a11 = Vector256.Create(1.1f);
        Vector256<float> a12 = Vector256.Create(1.2f), a13 = Vector256.Create(1.3f);
        // AVX2 has only 16 ymm registers: 14 chains + m + a fill them without spilling.
        for (int i = 0; i < iterations; i++)
        {
            a0 = Vector256.FusedMultiplyAdd(a0, m, a); a1 = Vector256.FusedMultiplyAdd(a1, m, a);
            a2 = Vector256.FusedMultiplyAdd(a2, m, a); a3 = Vector256.FusedMultiplyAdd(a3, m, a);
            a4 = Vector256.FusedMultiplyAdd(a4, m, a); a5 = Vector256.FusedMultiplyAdd(a5, m, a);
            a6 = Vector256.FusedMultiplyAdd(a6, m, a); a7 = Vector256.FusedMultiplyAdd(a7, m, a);
            a8 = Vector256.FusedMultiplyAdd(a8, m, a); a9 = Vector256.FusedMultiplyAdd(a9, m, a);
            a10 = Vector256.FusedMultiplyAdd(a10, m, a); a11 = Vector256.FusedMultiplyAdd(a11, m, a);
            a12 = Vector256.FusedMultiplyAdd(a12, m, a); a13 = Vector256.FusedMultiplyAdd(a13, m, a);
        }
        var sum = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)) + ((a8 + a9) + (a10 + a11)) + (a12 + a13);
        return Vector256.Sum(sum);
    }
}
