using System.Numerics.Tensors;
using ILGPU;
using ILGPU.Runtime;

namespace GpuNet.Kernels;

/// <summary>
/// Mean squared error, like PyTorch's <c>MSELoss</c>: loss = reduce_i (p_i - y_i)^2 over every element.
/// pred, target, grad: flat (n), same shape. Gradient w.r.t. pred: 2 (p - y) / n for Mean, 2 (p - y) for Sum,
/// times gradScale. Gradient contract: grad is an activation gradient and is overwritten (=); the target gets none.
/// Forward and backward are fused: one pass writes the gradient and the partial sums of the loss.
/// </summary>
public static class MseLossOp
{
    // ---- float64 reference (the spec) ---------------------------------------------------------------------------

    /// <summary>
    /// float64 reference: returns the loss; when <paramref name="grad"/> is not empty, writes dloss/dpred into it
    /// (without any gradient scale).
    /// </summary>
    public static double Reference(ReadOnlySpan<double> pred, ReadOnlySpan<double> target, LossReduction reduction, Span<double> grad)
    {
        int n = pred.Length;
        double sum = 0, div = reduction == LossReduction.Mean ? n : 1;
        for (int i = 0; i < n; i++)
        {
            double d = pred[i] - target[i];
            sum += d * d;
            if (grad.Length > 0) grad[i] = 2 * d / div;
        }
        return sum / div;
    }

    // ---- ILGPU kernel (forward + backward fused) ------------------------------------------------------------------

    /// <summary>
    /// Thread t of <paramref name="stride"/>: partial[t] = sum over i = t, t + stride, ... of (p_i - y_i)^2 and, when
    /// <paramref name="writeGrad"/> != 0, grad[i] = coef * (p_i - y_i).
    /// </summary>
    [GpuKernel]
    public static void PartialKernel(Index1D t, ArrayView<float> pred, ArrayView<float> target, ArrayView<float> grad,
        ArrayView<float> partial, int n, int stride, float coef, int writeGrad)
    {
        float acc = 0f;
        for (int i = t; i < n; i += stride)
        {
            float d = pred[i] - target[i];
            acc += d * d; // MathF.FusedMultiplyAdd has no PTX/OpenCL lowering in ILGPU 1.5.3
            if (writeGrad != 0) grad[i] = coef * d;
        }
        partial[t] = acc;
    }

    // ---- launcher -----------------------------------------------------------------------------------------------

    /// <summary>
    /// Launches <see cref="PartialKernel"/> then <see cref="LossCommon.SumPartialsKernel"/>. <paramref name="partial"/>
    /// holds <see cref="LossCommon.PartialCount"/>(n) floats; <paramref name="grad"/> is ignored when !writeGrad.
    /// </summary>
    public static void Launch(KernelCache k, ArrayView<float> pred, ArrayView<float> target, ArrayView<float> loss, ArrayView<float> grad,
        bool writeGrad, ArrayView<float> partial, LossReduction reduction, float gradScale)
    {
        int n = (int)pred.Length, stride = LossCommon.PartialCount(n);
        k.Get(PartialKernel, acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, float, int>(PartialKernel))
            (stride, pred, target, writeGrad ? grad : pred, partial, n, stride, GradCoef(reduction, n, gradScale), writeGrad ? 1 : 0);
        k.CountLaunch();
        LossCommon.LaunchSumPartials(k, partial, loss, stride, LossCommon.Divisor(reduction, n));
    }

    /// <summary>The gradient factor: 2 gradScale / n (Mean) or 2 gradScale (Sum).</summary>
    public static float GradCoef(LossReduction reduction, int n, float gradScale)
        => (float)(2.0 * gradScale / (reduction == LossReduction.Mean ? n : 1));

    // ---- SIMD host implementation ---------------------------------------------------------------------------------

    /// <summary>Host: loss[0] = the reduced loss; grad = coef (p - y) when <paramref name="grad"/> is not empty.</summary>
    public static void Host(ArraySegment<float> pred, ArraySegment<float> target, ArraySegment<float> loss, ArraySegment<float> grad,
        LossReduction reduction, float gradScale)
    {
        int n = pred.Count;
        float coef = GradCoef(reduction, n, gradScale);
        double total = LossCommon.HostSum(n, LossCommon.HostChunk, n >= HostSimd.ParallelThreshold, (pred, target, grad, coef), static (t, s, c) =>
        {
            var (pred, target, grad, coef) = t;
            var p = pred.AsSpan(s, c); var y = target.AsSpan(s, c);
            Span<float> d = grad.Count > 0 ? grad.AsSpan(s, c) : stackalloc float[c];
            TensorPrimitives.Subtract(p, y, d);
            float sum = TensorPrimitives.SumOfSquares(d);
            if (grad.Count > 0) TensorPrimitives.Multiply(d, coef, d);
            return sum;
        });
        loss[0] = (float)(total / LossCommon.Divisor(reduction, n));
    }

    // ---- cost ---------------------------------------------------------------------------------------------------

    /// <summary>3n FLOPs (4n with the gradient); reads 2n floats, writes n with the gradient.</summary>
    public static OpCost Cost(long n, bool withGrad) => new((withGrad ? 4.0 : 3.0) * n, 4.0 * (withGrad ? 3.0 : 2.0) * n);
}
