using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using ILGPU;
using ILGPU.Runtime;

namespace GpuNet.Kernels;

/// <summary>
/// Inverted dropout over flat arrays x, y: (n). Element i is kept when its uniform u_i >= p, where
/// u_i = <see cref="CounterRng.Uniform"/>(key(seed, step), i), and then scaled: y[i] = keep ? x[i] / (1 - p) : 0.
/// The mask is a pure function of (seed, step, i): it is identical on every device and is never stored; the backward
/// recomputes it: dx[i] = keep ? dy[i] / (1 - p) : 0, i.e. the same op applied to dy with the same (seed, step).
/// In float32 the test u_i >= p is done exactly in integers: bits24 >= ceil(p * 2^24) (<see cref="Threshold"/>), and
/// the scale is float32(1 / (1 - p)) (<see cref="Scale"/>). p = 0 keeps everything (y = x * 1, exact); p = 1 drops
/// everything (y = 0). Dropped elements are exactly 0 even where x is NaN or infinite.
/// Gradient contract: activation gradients overwrite (dx =); dropout has no parameters.
/// </summary>
public static class DropoutOp
{
    // ---- float64 reference (the spec) ---------------------------------------------------------------------------

    /// <summary>Reference: y[i] = (u_i &gt;= p) ? x[i] / (1 - p) : 0 with u_i from (seed, step, i). Also the backward (x = dy).</summary>
    public static void Reference(ReadOnlySpan<double> x, Span<double> y, double p, ulong seed, long step)
    {
        ulong key = CounterRng.Key(seed, step);
        for (int i = 0; i < y.Length; i++)
        {
            double u = CounterRng.Bits24(key, (ulong)i) / (double)(1 << CounterRng.Bits);
            y[i] = u >= p ? x[i] / (1 - p) : 0;
        }
    }

    /// <summary>True when element <paramref name="index"/> survives dropout with probability p under (seed, step).</summary>
    public static bool Keep(float p, ulong seed, long step, long index)
        => CounterRng.Bits24(CounterRng.Key(seed, step), (ulong)index) >= Threshold(p);

    /// <summary>The integer form of u &gt;= p for 24-bit u: bits24 &gt;= ceil(p * 2^24); 0 for p = 0, 2^24 (never) for p = 1.</summary>
    public static uint Threshold(float p) => (uint)Math.Ceiling((double)p * (1 << CounterRng.Bits));

    /// <summary>The float32 factor kept elements are multiplied by: 1 / (1 - p), and 0 for p = 1 (nothing is kept).</summary>
    public static float Scale(float p) => p >= 1f ? 0f : (float)(1.0 / (1.0 - p));

    // ---- ILGPU kernel (x, y: flat (n); forward on x, backward on dy) ----------------------------------------------

    /// <summary>y[i] = bits24(key, i) &gt;= threshold ? x[i] * scale : 0.</summary>
    [GpuKernel]
    public static void Kernel(Index1D i, ArrayView<float> x, ArrayView<float> y, ulong key, uint threshold, float scale)
        => y[i] = CounterRng.Bits24(key, (ulong)(long)i.X) >= threshold ? x[i] * scale : 0f;

    // ---- launcher -----------------------------------------------------------------------------------------------

    /// <summary>Launches <see cref="Kernel"/>: forward (x -&gt; y) or backward (dy -&gt; dx) of dropout with p under (seed, step).</summary>
    public static void Launch(KernelCache k, float p, ulong seed, long step, ArrayView<float> x, ArrayView<float> y)
    {
        k.Get(Kernel, acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ulong, uint, float>(Kernel))
            ((int)y.Length, x, y, CounterRng.Key(seed, step), Threshold(p), Scale(p));
        k.CountLaunch();
    }

    // ---- SIMD host implementation: the hash in 8 x 64-bit lanes (AVX-512DQ multiplies), two vectors per 16 floats --

    /// <summary>Host forward (x -&gt; y) or backward (dy -&gt; dx); y may be x. Bit-identical to <see cref="Kernel"/>.</summary>
    public static void Host(float p, ulong seed, long step, ArraySegment<float> x, ArraySegment<float> y)
    {
        ulong key = CounterRng.Key(seed, step);
        uint threshold = Threshold(p);
        float scale = Scale(p);
        HostSimd.ForChunks(y.Count, (key, threshold, scale, x, y), static (t, s, n) => HostChunk(t.key, t.threshold, t.scale, s, t.x.AsSpan(s, n), t.y.AsSpan(s, n)));
    }

    private static void HostChunk(ulong key, uint threshold, float scale, int start, ReadOnlySpan<float> x, Span<float> y)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated && x.Length >= 16)
        {
            ref float px = ref MemoryMarshal.GetReference(x);
            ref float py = ref MemoryMarshal.GetReference(y);
            // state of element j: key + (start + j + 1) * Golden, advanced by 16 * Golden per iteration (mod 2^64).
            var lane = Vector512.Create(0UL, 1, 2, 3, 4, 5, 6, 7);
            var lo = Vector512.Create(key) + (lane + Vector512.Create((ulong)start + 1)) * Vector512.Create(CounterRng.Golden);
            var hi = lo + Vector512.Create(unchecked(8 * CounterRng.Golden));
            var advance = Vector512.Create(unchecked(16 * CounterRng.Golden));
            var t = Vector512.Create(threshold);
            var sc = Vector512.Create(scale);
            for (; i <= x.Length - 16; i += 16)
            {
                var bits = Vector512.Narrow(MixBits24(lo), MixBits24(hi));
                var keep = Vector512.GreaterThanOrEqual(bits, t).AsSingle();
                var v = Vector512.LoadUnsafe(ref px, (nuint)i) * sc;
                Vector512.ConditionalSelect(keep, v, Vector512<float>.Zero).StoreUnsafe(ref py, (nuint)i);
                lo += advance;
                hi += advance;
            }
        }
        for (; i < x.Length; i++)
            y[i] = CounterRng.Bits24(key, (ulong)(start + i)) >= threshold ? x[i] * scale : 0f;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<ulong> MixBits24(Vector512<ulong> z)
    {
        z = (z ^ Vector512.ShiftRightLogical(z, 30)) * Vector512.Create(CounterRng.M1);
        z = (z ^ Vector512.ShiftRightLogical(z, 27)) * Vector512.Create(CounterRng.M2);
        return Vector512.ShiftRightLogical(z ^ Vector512.ShiftRightLogical(z, 31), 40);
    }

    // ---- cost ---------------------------------------------------------------------------------------------------

    /// <summary>n multiplies (the integer hash is not counted); reads x, writes y.</summary>
    public static OpCost Cost(long n) => new(n, 8.0 * n);
}
