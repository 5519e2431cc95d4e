using System.Runtime.InteropServices;
using System.Numerics.Tensors;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace GpuNet.Kernels;

/// <summary>
/// Softmax cross-entropy on logits with integer class labels, exactly PyTorch's
/// <c>CrossEntropyLoss(reduction, label_smoothing = eps)</c> without class weights or ignore_index:
/// target distribution q = (1 - eps) onehot(y) + eps / C, per-row loss l_r = -sum_j q_j log softmax(z_r)_j
/// = lse(z_r) - (1 - eps) z_{r,y} - (eps / C) sum_j z_{r,j}; Mean divides the sum by rows.
/// logits, grad: (rows, C); labels: (rows) int32. Gradient w.r.t. the logits: softmax(z) - q, divided by rows for
/// Mean, times gradScale. Gradient contract: grad is an activation gradient and is overwritten (=).
/// Fused: one pass over a row finds the max and the sum of exponentials together (online rescaling) and the sum of
/// z - max; a second pass writes the gradient.
/// Invalid label (outside [0, C)): nothing out of bounds is read; the row's loss is NaN, so the reduced loss is NaN,
/// and its gradient row is all NaN (the same on every backend; the check costs no host read-back).
/// </summary>
public static class SoftmaxCrossEntropyLossOp
{
    // ---- float64 reference (the spec) ---------------------------------------------------------------------------

    /// <summary>
    /// float64 reference: logits (rows, classes), labels (rows) in [0, classes); returns the loss and writes dloss/dz
    /// into <paramref name="grad"/> when it is not empty.
    /// </summary>
    public static double Reference(ReadOnlySpan<double> logits, ReadOnlySpan<int> labels, int rows, int classes,
        LossReduction reduction, double labelSmoothing, Span<double> grad)
    {
        double total = 0, div = reduction == LossReduction.Mean ? rows : 1, eps = labelSmoothing;
        for (int r = 0; r < rows; r++)
        {
            var z = logits.Slice(r * classes, classes);
            int y = labels[r];
            if ((uint)y >= (uint)classes) throw new ArgumentOutOfRangeException(nameof(labels), y, $"label of row {r} must lie in [0, {classes})");
            double m = double.NegativeInfinity;
            for (int j = 0; j < classes; j++) m = Math.Max(m, z[j]);
            double s = 0;
            for (int j = 0; j < classes; j++) s += Math.Exp(z[j] - m);
            double lse = m + Math.Log(s);
            for (int j = 0; j < classes; j++)
            {
                double q = (j == y ? 1 - eps : 0) + eps / classes;
                total -= q * (z[j] - lse);
                if (grad.Length > 0) grad[r * classes + j] = (Math.Exp(z[j] - lse) - q) / div;
            }
        }
        return total / div;
    }

    // ---- ILGPU kernel (forward + backward fused, one thread per row) ----------------------------------------------

    /// <summary>
    /// Row r: rowLoss[r] = l_r and, when <paramref name="writeGrad"/> != 0, grad row = coef * (softmax(z) - q).
    /// logits, grad: (rows, classes); labels: (rows).
    /// </summary>
    [GpuKernel]
    public static void RowKernel(Index1D r, ArrayView<float> logits, ArrayView<int> labels, ArrayView<float> grad, ArrayView<float> rowLoss,
        int classes, float eps, float coef, int writeGrad)
    {
        long b = (long)(int)r * classes;
        int y = labels[r];
        if (y < 0 || y >= classes)
        {
            rowLoss[r] = float.NaN;
            if (writeGrad != 0)
                for (int j = 0; j < classes; j++) grad[b + j] = float.NaN;
            return;
        }
        // Online max and sum of exp(z - max) in one pass.
        float m = float.NegativeInfinity, s = 0f;
        for (int j = 0; j < classes; j++)
        {
            float z = logits[b + j];
            if (z > m) { s = s * XMath.Exp(m - z) + 1f; m = z; }
            else s += XMath.Exp(z - m);
        }
        // Sum of z - max (<= 0 each, no cancellation): only needed with smoothing.
        float shifted = 0f;
        if (eps != 0f)
            for (int j = 0; j < classes; j++) shifted += logits[b + j] - m;
        float zy = logits[b + y];
        rowLoss[r] = XMath.Log(s) + (1f - eps) * (m - zy) - eps / classes * shifted;
        if (writeGrad != 0)
        {
            float inv = coef / s, off = coef * eps / classes;
            for (int j = 0; j < classes; j++) grad[b + j] = inv * XMath.Exp(logits[b + j] - m) - off;
            grad[b + y] -= coef * (1f - eps);
        }
    }

    // ---- launcher -----------------------------------------------------------------------------------------------

    /// <summary>
    /// Launches <see cref="RowKernel"/> (per-row losses into <paramref name="rowLoss"/>, rows floats) then
    /// <see cref="LossCommon.SumPartialsKernel"/>. labels is the int32 view of the labels tensor.
    /// </summary>
    public static void Launch(KernelCache k, ArrayView<float> logits, ArrayView<int> labels, ArrayView<float> loss, ArrayView<float> grad,
        bool writeGrad, ArrayView<float> rowLoss, int rows, int classes, LossReduction reduction, float labelSmoothing, float gradScale)
    {
        k.Get(RowKernel, acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, int, float, float, int>(RowKernel))
            (rows, logits, labels, writeGrad ? grad : logits, rowLoss, classes, labelSmoothing, GradCoef(reduction, rows, gradScale), writeGrad ? 1 : 0);
        k.CountLaunch();
        LossCommon.LaunchSumPartials(k, rowLoss, loss, rows, LossCommon.Divisor(reduction, rows));
    }

    /// <summary>The gradient factor: gradScale / rows (Mean) or gradScale (Sum).</summary>
    public static float GradCoef(LossReduction reduction, int rows, float gradScale)
        => (float)((double)gradScale / (reduction == LossReduction.Mean ? rows : 1));

    // ---- SIMD host implementation ---------------------------------------------------------------------------------

    /// <summary>Host: same contract as the kernel (invalid label: NaN row loss, NaN gradient row); labels holds int32 bits.</summary>
    public static void Host(ArraySegment<float> logits, ArraySegment<float> labels, ArraySegment<float> loss, ArraySegment<float> grad,
        int rows, int classes, LossReduction reduction, float labelSmoothing, float gradScale)
    {
        float coef = GradCoef(reduction, rows, gradScale), eps = labelSmoothing;
        bool writeGrad = grad.Count > 0;
        int rowsPerChunk = Math.Max(1, LossCommon.HostChunk / Math.Max(classes, 1));
        double total = LossCommon.HostSum(rows, rowsPerChunk, (long)rows * classes >= HostSimd.ParallelThreshold / 4, (logits, labels, grad, coef, eps, classes, writeGrad), static (t, r0, count) =>
        {
            var (logits, labels, grad, coef, eps, classes, writeGrad) = t;
            using var frame = HostPool.Enter();
            var scratch = writeGrad ? default : HostPool.Floats(classes);
            double sum = 0;
            var lab = MemoryMarshal.Cast<float, int>(labels.AsSpan());
            for (int r = r0; r < r0 + count; r++)
            {
                var z = logits.AsSpan(r * classes, classes);
                var e = writeGrad ? grad.AsSpan(r * classes, classes) : scratch;
                int y = lab[r];
                if ((uint)y >= (uint)classes)
                {
                    sum += float.NaN;
                    e.Fill(float.NaN);
                    continue;
                }
                float m = TensorPrimitives.Max(z);
                TensorPrimitives.Subtract(z, m, e);
                float shifted = eps != 0f ? TensorPrimitives.Sum(e) : 0f;
                float zy = z[y];
                TensorPrimitives.Exp(e, e);
                float s = TensorPrimitives.Sum(e);
                sum += MathF.Log(s) + (1f - eps) * (m - zy) - eps / classes * shifted;
                if (writeGrad)
                {
                    TensorPrimitives.Multiply(e, coef / s, e);
                    if (eps != 0f) TensorPrimitives.Subtract(e, coef * eps / classes, e);
                    e[y] -= coef * (1f - eps);
                }
            }
            return sum;
        });
        loss[0] = (float)(total / LossCommon.Divisor(reduction, rows));
    }

    // ---- cost ---------------------------------------------------------------------------------------------------

    /// <summary>
    /// Per element about 4 FLOPs plus an exp forward (6 plus a second exp with the gradient); bytes: logits read
    /// (twice with the gradient, as a row may not stay in cache), labels read, gradient written.
    /// </summary>
    public static OpCost Cost(int rows, int classes, bool withGrad)
    {
        double n = (double)rows * classes;
        return new((withGrad ? 10.0 : 5.0) * n, 4.0 * ((withGrad ? 3.0 : 1.0) * n + rows));
    }
}
