using System.Runtime.Intrinsics;

namespace GpuNet.Kernels;

public static partial class GemmOp
{
    // ---- SIMD host implementation -------------------------------------------------------------------------------

    /// <summary>
    /// SIMD host GEMM (same contract as <see cref="Reference"/>): cache-blocked and packed (GotoBLAS/BLIS loop nest,
    /// see <see cref="HostGemm"/>), FMA micro-kernels on Vector512 (Vector256 where AVX-512 is absent), parallel
    /// over the cores for large problems. Allocates no managed memory in steady state.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="act"/> is not a defined <see cref="Activation"/>, or a dimension is negative.</exception>
    public static void Host(bool transA, bool transB, int m, int n, int k, float alpha,
        ArraySegment<float> a, ArraySegment<float> b, float beta, ArraySegment<float> c,
        ArraySegment<float> bias, Activation act, float actAlpha)
        => Host(transA, transB, m, n, k, alpha, a, b, beta, c, bias, act, actAlpha,
                Vector512.IsHardwareAccelerated, HostGemmPool.Threads);

    /// <summary>
    /// <see cref="Host(bool, bool, int, int, int, float, ArraySegment{float}, ArraySegment{float}, float, ArraySegment{float}, ArraySegment{float}, Activation, float)"/>
    /// with the micro-kernel (<paramref name="wide"/>: Vector512, else Vector256) and the thread count chosen, so
    /// tests cover both kernels and both the serial and the parallel paths on any host.
    /// </summary>
    internal static void Host(bool transA, bool transB, int m, int n, int k, float alpha,
        ArraySegment<float> a, ArraySegment<float> b, float beta, ArraySegment<float> c,
        ArraySegment<float> bias, Activation act, float actAlpha, bool wide, int threads)
    {
        var v = new HostVisitor(transA, transB, m, n, k, alpha, a, b, beta, c, bias, actAlpha, wide, threads);
        ActivationMath.Visit(act, ref v);
    }

    private readonly struct HostVisitor(bool transA, bool transB, int m, int n, int k, float alpha,
        ArraySegment<float> a, ArraySegment<float> b, float beta, ArraySegment<float> c,
        ArraySegment<float> bias, float actAlpha, bool wide, int threads) : IActivationVisitor
    {
        public void Visit<TAct>(TAct act) where TAct : struct, IActivation
            => Host<TAct>(transA, transB, m, n, k, alpha, a, b, beta, c, bias, actAlpha, wide, threads);
    }

    /// <summary>
    /// The host GEMM with the epilogue activation <typeparamref name="TAct"/> (its span form runs on each finished
    /// row of a tile of C); see
    /// <see cref="Host(bool, bool, int, int, int, float, ArraySegment{float}, ArraySegment{float}, float, ArraySegment{float}, ArraySegment{float}, Activation, float)"/>.
    /// </summary>
    public static void Host<TAct>(bool transA, bool transB, int m, int n, int k, float alpha,
        ArraySegment<float> a, ArraySegment<float> b, float beta, ArraySegment<float> c,
        ArraySegment<float> bias, float actAlpha) where TAct : struct, IActivation
        => Host<TAct>(transA, transB, m, n, k, alpha, a, b, beta, c, bias, actAlpha, Vector512.IsHardwareAccelerated, HostGemmPool.Threads);

    internal static unsafe void Host<TAct>(bool transA, bool transB, int m, int n, int k, float alpha,
        ArraySegment<float> a, ArraySegment<float> b, float beta, ArraySegment<float> c,
        ArraySegment<float> bias, float actAlpha, bool wide, int threads) where TAct : struct, IActivation
    {
        ArgumentOutOfRangeException.ThrowIfNegative(m);
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        long mk = (long)m * k, kn = (long)k * n, mn = (long)m * n;
        if (a.Count < mk) throw new ArgumentException($"GemmOp.Host: A needs {mk} elements (M={m}, K={k}), got {a.Count}", nameof(a));
        if (b.Count < kn) throw new ArgumentException($"GemmOp.Host: B needs {kn} elements (K={k}, N={n}), got {b.Count}", nameof(b));
        if (c.Count < mn) throw new ArgumentException($"GemmOp.Host: C needs {mn} elements (M={m}, N={n}), got {c.Count}", nameof(c));
        if (bias.Count != 0 && bias.Count < n) throw new ArgumentException($"GemmOp.Host: bias needs {n} elements or none, got {bias.Count}", nameof(bias));
        if (m == 0 || n == 0) return;

        fixed (float* pa = a.AsSpan(), pb = b.AsSpan(), pc = c.AsSpan(), pbias = bias.AsSpan())
        {
            var job = new HostGemm.Job
            {
                A = pa, B = pb, C = pc, Bias = bias.Count > 0 ? pbias : null,
                M = m, N = n, K = k, TransA = transA, TransB = transB,
                Alpha = alpha, Beta = beta, ActAlpha = actAlpha, Activate = HostGemm.RowActivation<TAct>(),
            };
            HostGemm.Run(ref job, wide, threads);
        }
    }
}
