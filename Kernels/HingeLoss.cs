using System.Runtime.Intrinsics;
using ILGPU;
using ILGPU.Runtime;

namespace GpuNet.Kernels;

/// <summary>
/// Binary hinge loss (the linear SVM loss): l_i = max(0, 1 - s_i z_i) with sign s_i = +1 when target_i &gt; 0, else -1.
/// So targets in {-1, +1} and in {0, 1} both work (0 maps to -1); any other value is taken by its sign (not checked).
/// scores, targets, grad: flat (n), same shape. Subgradient w.r.t. the scores: -s_i where 1 - s_i z_i &gt; 0, and 0
/// where it is &lt;= 0, so 0 exactly at the hinge point (as PyTorch's margin losses); divided by n for Mean, times gradScale.
/// Gradient contract: grad is an activation gradient and is overwritten (=). Forward and backward fused in one pass.
/// </summary>
public static class HingeLossOp
{
    // ---- float64 reference (the spec) ---------------------------------------------------------------------------

    /// <summary>float64 reference: returns the loss; writes the subgradient into <paramref name="grad"/> when it is not empty.</summary>
    public static double Reference(ReadOnlySpan<double> scores, ReadOnlySpan<double> targets, LossReduction reduction, Span<double> grad)
    {
        int n = scores.Length;
        double sum = 0, div = reduction == LossReduction.Mean ? n : 1;
        for (int i = 0; i < n; i++)
        {
            double s = targets[i] > 0 ? 1 : -1, m = 1 - s * scores[i];
            sum += Math.Max(m, 0);
            if (grad.Length > 0) grad[i] = m > 0 ? -s / div : 0;
        }
        return sum / div;
    }

    // ---- ILGPU kernel (forward + backward fused) ------------------------------------------------------------------

    /// <summary>
    /// Thread t of <paramref name="stride"/>: partial[t] = sum over i = t, t + stride, ... of l_i and, when
    /// <paramref name="writeGrad"/> != 0, grad[i] = coef * subgradient.
    /// </summary>
    [GpuKernel]
    public static void PartialKernel(Index1D t, ArrayView<float> scores, ArrayView<float> targets, ArrayView<float> grad,
        ArrayView<float> partial, int n, int stride, float coef, int writeGrad)
    {
        float acc = 0f;
        for (int i = t; i < n; i += stride)
        {
            float s = targets[i] > 0f ? 1f : -1f;
            float m = 1f - s * scores[i];
            acc += m > 0f ? m : 0f;
            if (writeGrad != 0) grad[i] = m > 0f ? -s * coef : 0f;
        }
        partial[t] = acc;
    }

    // ---- launcher -----------------------------------------------------------------------------------------------

    /// <summary>Launches <see cref="PartialKernel"/> then <see cref="LossCommon.SumPartialsKernel"/>.</summary>
    public static void Launch(KernelCache k, ArrayView<float> scores, ArrayView<float> targets, ArrayView<float> loss, ArrayView<float> grad,
        bool writeGrad, ArrayView<float> partial, LossReduction reduction, float gradScale)
    {
        int n = (int)scores.Length, stride = LossCommon.PartialCount(n);
        k.Get(PartialKernel, acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, float, int>(PartialKernel))
            (stride, scores, targets, writeGrad ? grad : scores, partial, n, stride, GradCoef(reduction, n, gradScale), writeGrad ? 1 : 0);
        k.CountLaunch();
        LossCommon.LaunchSumPartials(k, partial, loss, stride, LossCommon.Divisor(reduction, n));
    }

    /// <summary>The gradient factor: gradScale / n (Mean) or gradScale (Sum).</summary>
    public static float GradCoef(LossReduction reduction, int n, float gradScale)
        => (float)((double)gradScale / (reduction == LossReduction.Mean ? n : 1));

    // ---- SIMD host implementation ---------------------------------------------------------------------------------

    /// <summary>Host: loss[0] = the reduced loss; grad = coef * subgradient when <paramref name="grad"/> is not empty.</summary>
    public static void Host(ArraySegment<float> scores, ArraySegment<float> targets, ArraySegment<float> loss, ArraySegment<float> grad,
        LossReduction reduction, float gradScale)
    {
        int n = scores.Count;
        float coef = GradCoef(reduction, n, gradScale);
        bool writeGrad = grad.Count > 0;
        double total = LossCommon.HostSum(n, LossCommon.HostChunk, n >= HostSimd.ParallelThreshold, (scores, targets, grad, coef, writeGrad), static (t, st, c) =>
        {
            var (scores, targets, grad, coef, writeGrad) = t;
            var z = scores.AsSpan(st, c); var y = targets.AsSpan(st, c);
            var g = writeGrad ? grad.AsSpan(st, c) : default;
            var acc = Vector512<float>.Zero;
            var one = Vector512<float>.One;
            var zero = Vector512<float>.Zero;
            var negCoef = Vector512.Create(-coef);
            int i = 0;
            for (; i <= c - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                var vz = Vector512.Create(z.Slice(i, Vector512<float>.Count));
                var s = Vector512.ConditionalSelect(Vector512.GreaterThan(Vector512.Create(y.Slice(i, Vector512<float>.Count)), zero), one, -one);
                var m = one - s * vz;
                var active = Vector512.GreaterThan(m, zero);
                acc += Vector512.ConditionalSelect(active, m, zero);
                if (writeGrad) Vector512.ConditionalSelect(active, negCoef * s, zero).CopyTo(g.Slice(i, Vector512<float>.Count));
            }
            float sum = Vector512.Sum(acc);
            for (; i < c; i++)
            {
                float s = y[i] > 0f ? 1f : -1f, m = 1f - s * z[i];
                sum += m > 0f ? m : 0f;
                if (writeGrad) g[i] = m > 0f ? -s * coef : 0f;
            }
            return sum;
        });
        loss[0] = (float)(total / LossCommon.Divisor(reduction, n));
    }

    // ---- cost ---------------------------------------------------------------------------------------------------

    /// <summary>About 4n FLOPs (5n with the gradient); reads 2n floats, writes n with the gradient.</summary>
    public static OpCost Cost(long n, bool withGrad) => new((withGrad ? 5.0 : 4.0) * n, 4.0 * (withGrad ? 3.0 : 2.0) * n);
}
