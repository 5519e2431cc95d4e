using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using ILGPU;
using ILGPU.Runtime;

namespace GpuNet.Kernels;

/// <summary>
/// Argmax per row: x: (rows, cols) float32, cols >= 1 -> indices: (rows) int32, indices[r] = the first j with
/// x[r, j] == max_j x[r, j] (ties: the smallest index; -0 and +0 are equal).
/// NaN: a NaN is treated as larger than every number, so a row with a NaN gives the index of its first NaN
/// (like PyTorch's argmax). A row of -inf gives 0.
/// Gradient contract: not differentiable (integer output); it routes the backward of max: dx[r, j] = dy[r] where
/// j = indices[r], 0 elsewhere.
/// </summary>
public static class ArgmaxOp
{
    // ---- float64 reference (the spec) ---------------------------------------------------------------------------

    /// <summary>Reference argmax per row. x: (rows, cols), indices: (rows).</summary>
    public static void Reference(int rows, int cols, ReadOnlySpan<double> x, Span<int> indices)
    {
        for (int r = 0; r < rows; r++)
        {
            int best = 0;
            for (int j = 0; j < cols; j++)
            {
                double v = x[r * cols + j];
                if (double.IsNaN(v)) { best = j; break; }
                if (v > x[r * cols + best]) best = j;
            }
            indices[r] = best;
        }
    }

    // ---- ILGPU kernel -------------------------------------------------------------------------------------------

    /// <summary>One thread per row r: indices[r] = first index of the row's maximum (first NaN if any). x: (rows, cols).</summary>
    [GpuKernel]
    public static void RowsKernel(Index1D r, ArrayView<float> x, ArrayView<int> indices, int cols)
    {
        long start = (long)r.X * cols;
        int best = 0;
        float m = x[start];
        for (int j = 0; j < cols; j++)
        {
            float v = x[start + j];
            if (float.IsNaN(v)) { best = j; break; }
            if (v > m) { m = v; best = j; }
        }
        indices[r] = best;
    }

    // ---- launcher -----------------------------------------------------------------------------------------------

    /// <summary>Launches <see cref="RowsKernel"/>. x: (rows, cols), indices: (rows) int32 (the caller casts the float view).</summary>
    public static void Launch(KernelCache k, int rows, int cols, ArrayView<float> x, ArrayView<int> indices)
    {
        k.Get(RowsKernel, acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, int>(RowsKernel))
            (rows, x, indices, cols);
        k.CountLaunch();
    }

    // ---- SIMD host implementation -------------------------------------------------------------------------------

    /// <summary>
    /// Host argmax per row: the row's max by <see cref="TensorPrimitives.Max(ReadOnlySpan{float})"/> (NaN if any NaN),
    /// then the first element equal to it (or the first NaN) by a vector compare. indices: the int32 tensor's storage.
    /// </summary>
    public static void Host(int rows, int cols, ArraySegment<float> x, ArraySegment<float> indices)
        => HostSimd.ForRanges(rows, RowsPerItem(rows), (long)rows * cols >= HostSimd.ParallelThreshold, (cols, x, indices), static (t, r0, count) =>
        {
            var idx = MemoryMarshal.Cast<float, int>(t.indices.AsSpan(r0, count));
            for (int r = 0; r < count; r++)
            {
                var row = t.x.AsSpan((r0 + r) * t.cols, t.cols);
                idx[r] = FirstIndexOf(row, TensorPrimitives.Max(row));
            }
        });

    // Rows per parallel work item: about four items per pool thread.
    private static int RowsPerItem(int rows) => Math.Max(1, (rows + 4 * HostSimd.PoolThreads - 1) / (4 * HostSimd.PoolThreads));

    /// <summary>First index of <paramref name="value"/> in <paramref name="v"/> under IEEE equality, or of the first NaN when value is NaN.</summary>
    private static int FirstIndexOf(ReadOnlySpan<float> v, float value)
    {
        bool nan = float.IsNaN(value);
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var target = Vector512.Create(value);
            ref float p = ref MemoryMarshal.GetReference(v);
            for (; i <= v.Length - 16; i += 16)
            {
                var w = Vector512.LoadUnsafe(ref p, (nuint)i);
                ulong hits = (nan ? ~Vector512.Equals(w, w) : Vector512.Equals(w, target)).ExtractMostSignificantBits();
                if (hits != 0) return i + System.Numerics.BitOperations.TrailingZeroCount(hits);
            }
        }
        for (; i < v.Length; i++)
            if (nan ? float.IsNaN(v[i]) : v[i] == value) return i;
        return 0;
    }

    // ---- cost ---------------------------------------------------------------------------------------------------

    /// <summary>rows*cols comparisons (counted as FLOPs); reads x, writes indices.</summary>
    public static OpCost Cost(int rows, int cols) => new((double)rows * cols, 4.0 * ((double)rows * cols + rows));
}
