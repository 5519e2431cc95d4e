using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace GpuNet.Kernels;

/// <summary>
/// Binary cross-entropy on logits, like PyTorch's <c>BCEWithLogitsLoss</c> (no weight, no pos_weight):
/// l_i = max(z_i, 0) - z_i y_i + log(1 + exp(-|z_i|)), the overflow-free form of
/// -(y log sigmoid(z) + (1 - y) log(1 - sigmoid(z))); targets y are floats in [0, 1] (soft labels allowed, not checked).
/// logits, targets, grad: flat (n), same shape. Gradient w.r.t. the logits: sigmoid(z) - y, divided by n for Mean,
/// times gradScale. Gradient contract: grad is an activation gradient and is overwritten (=).
/// Forward and backward are fused: exp(-|z|) is computed once and gives both the loss and the sigmoid.
/// </summary>
public static class BceWithLogitsLossOp
{
    // ---- float64 reference (the spec) ---------------------------------------------------------------------------

    /// <summary>float64 reference: returns the loss; writes dloss/dz into <paramref name="grad"/> when it is not empty.</summary>
    public static double Reference(ReadOnlySpan<double> logits, ReadOnlySpan<double> targets, LossReduction reduction, Span<double> grad)
    {
        int n = logits.Length;
        double sum = 0, div = reduction == LossReduction.Mean ? n : 1;
        for (int i = 0; i < n; i++)
        {
            double z = logits[i], y = targets[i];
            sum += Math.Max(z, 0) - z * y + Math.Log(1 + Math.Exp(-Math.Abs(z)));
            if (grad.Length > 0)
            {
                double s = z >= 0 ? 1 / (1 + Math.Exp(-z)) : Math.Exp(z) / (1 + Math.Exp(z));
                grad[i] = (s - y) / div;
            }
        }
        return sum / div;
    }

    // ---- kernel-safe scalar math (also the host's tail) -------------------------------------------------------------

    /// <summary>The loss of one element; <paramref name="sigmoid"/> receives sigmoid(z). Kernel-safe.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Element(float z, float y, out float sigmoid)
    {
        float e = XMath.Exp(-XMath.Abs(z));
        float r = 1f / (1f + e);
        sigmoid = z >= 0f ? r : e * r;
        return XMath.Max(z, 0f) - z * y + XMath.Log(1f + e);
    }

    // ---- ILGPU kernel (forward + backward fused) ------------------------------------------------------------------

    /// <summary>
    /// Thread t of <paramref name="stride"/>: partial[t] = sum over i = t, t + stride, ... of l_i and, when
    /// <paramref name="writeGrad"/> != 0, grad[i] = coef * (sigmoid(z_i) - y_i).
    /// </summary>
    [GpuKernel]
    public static void PartialKernel(Index1D t, ArrayView<float> logits, ArrayView<float> targets, ArrayView<float> grad,
        ArrayView<float> partial, int n, int stride, float coef, int writeGrad)
    {
        float acc = 0f;
        for (int i = t; i < n; i += stride)
        {
            float y = targets[i];
            acc += Element(logits[i], y, out float s);
            if (writeGrad != 0) grad[i] = coef * (s - y);
        }
        partial[t] = acc;
    }

    // ---- launcher -----------------------------------------------------------------------------------------------

    /// <summary>Launches <see cref="PartialKernel"/> then <see cref="LossCommon.SumPartialsKernel"/>.</summary>
    public static void Launch(KernelCache k, ArrayView<float> logits, ArrayView<float> targets, ArrayView<float> loss, ArrayView<float> grad,
        bool writeGrad, ArrayView<float> partial, LossReduction reduction, float gradScale)
    {
        int n = (int)logits.Length, stride = LossCommon.PartialCount(n);
        k.Get(PartialKernel, acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, float, int>(PartialKernel))
            (stride, logits, targets, writeGrad ? grad : logits, partial, n, stride, GradCoef(reduction, n, gradScale), writeGrad ? 1 : 0);
        k.CountLaunch();
        LossCommon.LaunchSumPartials(k, partial, loss, stride, LossCommon.Divisor(reduction, n));
    }

    /// <summary>The gradient factor: gradScale / n (Mean) or gradScale (Sum).</summary>
    public static float GradCoef(LossReduction reduction, int n, float gradScale)
        => (float)((double)gradScale / (reduction == LossReduction.Mean ? n : 1));

    // ---- SIMD host implementation ---------------------------------------------------------------------------------

    /// <summary>Host: loss[0] = the reduced loss; grad = coef (sigmoid(z) - y) when <paramref name="grad"/> is not empty.</summary>
    public static void Host(ArraySegment<float> logits, ArraySegment<float> targets, ArraySegment<float> loss, ArraySegment<float> grad,
        LossReduction reduction, float gradScale)
    {
        int n = logits.Count;
        float coef = GradCoef(reduction, n, gradScale);
        bool writeGrad = grad.Count > 0;
        double total = LossCommon.HostSum(n, LossCommon.HostChunk, n >= HostSimd.ParallelThreshold / 4, (logits, targets, grad, coef, writeGrad), static (t, s, c) =>
        {
            var (logits, targets, grad, coef, writeGrad) = t;
            var z = logits.AsSpan(s, c); var y = targets.AsSpan(s, c);
            var g = writeGrad ? grad.AsSpan(s, c) : default;
            var acc = Vector512<float>.Zero;
            var one = Vector512<float>.One;
            var vcoef = Vector512.Create(coef);
            int i = 0;
            for (; i <= c - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                var vz = Vector512.Create(z.Slice(i, Vector512<float>.Count));
                var vy = Vector512.Create(y.Slice(i, Vector512<float>.Count));
                var e = Vector512.Exp(-Vector512.Abs(vz));
                acc += Vector512.Max(vz, Vector512<float>.Zero) - vz * vy + Vector512.Log(one + e);
                if (writeGrad)
                {
                    var r = one / (one + e);
                    var sig = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(vz, Vector512<float>.Zero), r, e * r);
                    (vcoef * (sig - vy)).CopyTo(g.Slice(i, Vector512<float>.Count));
                }
            }
            float sum = Vector512.Sum(acc);
            for (; i < c; i++)
            {
                sum += Element(z[i], y[i], out float sig);
                if (writeGrad) g[i] = coef * (sig - y[i]);
            }
            return sum;
        });
        loss[0] = (float)(total / LossCommon.Divisor(reduction, n));
    }

    // ---- cost ---------------------------------------------------------------------------------------------------

    /// <summary>About 8n FLOPs plus an exp and a log per element (counted as 1 each); reads 2n floats, writes n with the gradient.</summary>
    public static OpCost Cost(long n, bool withGrad) => new((withGrad ? 12.0 : 8.0) * n, 4.0 * (withGrad ? 3.0 : 2.0) * n);
}
