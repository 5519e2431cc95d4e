using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using ILGPU;
using ILGPU.Runtime;

namespace GpuNet.Kernels;

/// <summary>
/// Multi-class hinge loss, Weston-Watkins form, exactly PyTorch's <c>MultiMarginLoss(p=1, margin=1)</c> without
/// weights: l_r = sum over j != y of max(0, 1 - z_{r,y} + z_{r,j}) / C, where C is the number of classes (PyTorch
/// divides by C too); Mean divides the sum by rows. scores, grad: (rows, C); labels: (rows) int32.
/// Subgradient (PyTorch's): for each j != y with 1 - z_y + z_j &gt; 0 (strictly: 0 at the hinge point),
/// d/dz_j += 1/C and d/dz_y -= 1/C; divided by rows for Mean, times gradScale.
/// Gradient contract: grad is an activation gradient and is overwritten (=). Forward and backward fused in one pass.
/// Invalid label (outside [0, C)): nothing out of bounds is read; the row's loss is NaN (so the reduced loss is NaN)
/// and its gradient row is all NaN, on every backend.
/// </summary>
public static class MultiMarginLossOp
{
    // ---- float64 reference (the spec) ---------------------------------------------------------------------------

    /// <summary>float64 reference: returns the loss; writes the subgradient into <paramref name="grad"/> when it is not empty.</summary>
    public static double Reference(ReadOnlySpan<double> scores, ReadOnlySpan<int> labels, int rows, int classes,
        LossReduction reduction, Span<double> grad)
    {
        double total = 0, div = reduction == LossReduction.Mean ? rows : 1;
        for (int r = 0; r < rows; r++)
        {
            var z = scores.Slice(r * classes, classes);
            int y = labels[r];
            if ((uint)y >= (uint)classes) throw new ArgumentOutOfRangeException(nameof(labels), y, $"label of row {r} must lie in [0, {classes})");
            if (grad.Length > 0) grad.Slice(r * classes, classes).Clear();
            for (int j = 0; j < classes; j++)
            {
                if (j == y) continue;
                double m = 1 - z[y] + z[j];
                if (m > 0)
                {
                    total += m / classes;
                    if (grad.Length > 0)
                    {
                        grad[r * classes + j] += 1.0 / classes / div;
                        grad[r * classes + y] -= 1.0 / classes / div;
                    }
                }
            }
        }
        return total / div;
    }

    // ---- ILGPU kernel (forward + backward fused, one thread per row) ----------------------------------------------

    /// <summary>
    /// Row r: rowLoss[r] = l_r and, when <paramref name="writeGrad"/> != 0, the gradient row times coef.
    /// scores, grad: (rows, classes); labels: (rows).
    /// </summary>
    [GpuKernel]
    public static void RowKernel(Index1D r, ArrayView<float> scores, ArrayView<int> labels, ArrayView<float> grad, ArrayView<float> rowLoss,
        int classes, float coef, int writeGrad)
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
        float c = 1f - scores[b + y];
        float g = coef / classes;
        float acc = 0f;
        int active = 0;
        for (int j = 0; j < classes; j++)
        {
            float m = c + scores[b + j];
            bool on = j != y && m > 0f;
            if (on) { acc += m; active++; }
            if (writeGrad != 0) grad[b + j] = on ? g : 0f;
        }
        rowLoss[r] = acc / classes;
        if (writeGrad != 0) grad[b + y] = -g * active;
    }

    // ---- launcher -----------------------------------------------------------------------------------------------

    /// <summary>
    /// Launches <see cref="RowKernel"/> (per-row losses into <paramref name="rowLoss"/>, rows floats) then
    /// <see cref="LossCommon.SumPartialsKernel"/>. labels is the int32 view of the labels tensor.
    /// </summary>
    public static void Launch(KernelCache k, ArrayView<float> scores, ArrayView<int> labels, ArrayView<float> loss, ArrayView<float> grad,
        bool writeGrad, ArrayView<float> rowLoss, int rows, int classes, LossReduction reduction, float gradScale)
    {
        k.Get(RowKernel, acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, int, float, int>(RowKernel))
            (rows, scores, labels, writeGrad ? grad : scores, rowLoss, classes, GradCoef(reduction, rows, gradScale), writeGrad ? 1 : 0);
        k.CountLaunch();
        LossCommon.LaunchSumPartials(k, rowLoss, loss, rows, LossCommon.Divisor(reduction, rows));
    }

    /// <summary>The gradient factor: gradScale / rows (Mean) or gradScale (Sum); the kernel divides it by C.</summary>
    public static float GradCoef(LossReduction reduction, int rows, float gradScale)
        => (float)((double)gradScale / (reduction == LossReduction.Mean ? rows : 1));

    // ---- SIMD host implementation ---------------------------------------------------------------------------------

    /// <summary>Host: same contract as the kernel (invalid label: NaN row loss, NaN gradient row); labels holds int32 bits.</summary>
    public static void Host(ArraySegment<float> scores, ArraySegment<float> labels, ArraySegment<float> loss, ArraySegment<float> grad,
        int rows, int classes, LossReduction reduction, float gradScale)
    {
        float g = GradCoef(reduction, rows, gradScale) / classes;
        bool writeGrad = grad.Count > 0;
        int rowsPerChunk = Math.Max(1, LossCommon.HostChunk / Math.Max(classes, 1));
        double total = LossCommon.HostSum(rows, rowsPerChunk, (long)rows * classes >= HostSimd.ParallelThreshold, (scores, labels, grad, g, classes, writeGrad), static (t, r0, count) =>
        {
            var (scores, labels, grad, g, classes, writeGrad) = t;
            double sum = 0;
            var lab = MemoryMarshal.Cast<float, int>(labels.AsSpan());
            var zero = Vector512<float>.Zero;
            var vg = Vector512.Create(g);
            for (int r = r0; r < r0 + count; r++)
            {
                var z = scores.AsSpan(r * classes, classes);
                var gr = writeGrad ? grad.AsSpan(r * classes, classes) : default;
                int y = lab[r];
                if ((uint)y >= (uint)classes)
                {
                    sum += float.NaN;
                    gr.Fill(float.NaN);
                    continue;
                }
                float c = 1f - z[y];
                var vc = Vector512.Create(c);
                var acc = zero;
                int active = 0, j = 0;
                // The vector loop also counts j = y (margin c + z_y); that term is taken out below.
                for (; j <= classes - Vector512<float>.Count; j += Vector512<float>.Count)
                {
                    var m = vc + Vector512.Create(z.Slice(j, Vector512<float>.Count));
                    var on = Vector512.GreaterThan(m, zero);
                    acc += Vector512.ConditionalSelect(on, m, zero);
                    active += BitOperations.PopCount(on.ExtractMostSignificantBits());
                    if (writeGrad) Vector512.ConditionalSelect(on, vg, zero).CopyTo(gr.Slice(j, Vector512<float>.Count));
                }
                float rowSum = Vector512.Sum(acc);
                bool yInVector = y < j;
                for (; j < classes; j++)
                {
                    float m = c + z[j];
                    bool on = j != y && m > 0f;
                    if (on) { rowSum += m; active++; }
                    if (writeGrad) gr[j] = on ? g : 0f;
                }
                if (yInVector)
                {
                    float my = c + z[y];
                    if (my > 0f) { rowSum -= my; active--; }
                }
                sum += rowSum / classes;
                if (writeGrad) gr[y] = -g * active;
            }
            return sum;
        });
        loss[0] = (float)(total / LossCommon.Divisor(reduction, rows));
    }

    // ---- cost ---------------------------------------------------------------------------------------------------

    /// <summary>About 3 FLOPs per element; bytes: scores read, labels read, gradient written.</summary>
    public static OpCost Cost(int rows, int classes, bool withGrad)
    {
        double n = (double)rows * classes;
        return new(3.0 * n, 4.0 * ((withGrad ? 2.0 : 1.0) * n + rows));
    }
}
