using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using ILGPU;
using ILGPU.Runtime;

namespace GpuNet.Kernels;

/// <summary>What a row or column reduction computes.</summary>
public enum ReduceOp
{
    /// <summary>Sum of the reduced elements.</summary>
    Sum = 0,
    /// <summary>Sum divided by the number of reduced elements.</summary>
    Mean = 1,
    /// <summary>Largest element; NaN if any reduced element is NaN.</summary>
    Max = 2,
}

/// <summary>
/// Row and column reductions of a row-major matrix x: (rows, cols).
/// Rows: y: (rows), y[r] = reduce_j x[r, j] (overwrite).
/// Columns: y: (cols), y[c] = beta * y[c] + reduce_r x[r, c] for sum and mean (when beta == 0, y is not read, so NaN
/// in y does not propagate); max overwrites: y[c] = max_r x[r, c].
/// Gradient contract: parameter gradients accumulate (+=), activation gradients overwrite (=). The column sum with
/// beta = 1 is the bias gradient of a Linear layer, db += sum over the batch of dy; beta = 0 overwrites.
/// Backward of each reduction (no separate kernels; they are broadcasts the caller composes):
/// sum: dx[r, j] = dy[r] (broadcast dy); mean: dx[r, j] = dy[r] / cols; max: dx[r, j] = dy[r] at the argmax of the
/// row (see <see cref="ArgmaxOp"/>), 0 elsewhere. Columns likewise with rows and cols swapped.
/// NaN: max propagates NaN (any NaN in the reduced elements gives NaN); sum and mean propagate it by arithmetic.
/// Sums accumulate with compensation (TwoSum) in float32 on ILGPU and in float64 on the host.
/// </summary>
public static class ReductionOp
{
    // ---- float64 reference (the spec) ---------------------------------------------------------------------------

    /// <summary>Reference of a row reduction. x: (rows, cols), y: (rows).</summary>
    public static void ReferenceRows(ReduceOp op, int rows, int cols, ReadOnlySpan<double> x, Span<double> y)
    {
        for (int r = 0; r < rows; r++)
        {
            double s = 0, m = double.NegativeInfinity;
            for (int j = 0; j < cols; j++)
            {
                double v = x[r * cols + j];
                s += v;
                if (v > m || double.IsNaN(v)) m = v;   // once m is NaN, nothing is > m: NaN sticks
            }
            y[r] = op == ReduceOp.Max ? m : op == ReduceOp.Mean ? s / cols : s;
        }
    }

    /// <summary>Reference of a column reduction. x: (rows, cols), y: (cols); sum and mean: y = beta*y + reduce; max: y = reduce.</summary>
    public static void ReferenceCols(ReduceOp op, int rows, int cols, ReadOnlySpan<double> x, double beta, Span<double> y)
    {
        for (int c = 0; c < cols; c++)
        {
            double s = 0, m = double.NegativeInfinity;
            for (int r = 0; r < rows; r++)
            {
                double v = x[r * cols + c];
                s += v;
                if (v > m || double.IsNaN(v)) m = v;   // once m is NaN, nothing is > m: NaN sticks
            }
            y[c] = op == ReduceOp.Max ? m : (beta == 0 ? 0 : beta * y[c]) + (op == ReduceOp.Mean ? s / rows : s);
        }
    }

    // ---- ILGPU kernels ------------------------------------------------------------------------------------------

    /// <summary>
    /// One thread per row r: y[r] = reduce_j x[r * cols + j]. x: (rows, cols), y: (rows); op is a <see cref="ReduceOp"/>.
    /// Simple, not coalesced (neighbouring threads read rows cols apart); rows are expected to be many.
    /// </summary>
    [GpuKernel]
    public static void RowsKernel(Index1D r, ArrayView<float> x, ArrayView<float> y, int cols, int op)
    {
        long start = (long)r.X * cols;
        if (op == (int)ReduceOp.Max)
        {
            float m = float.NegativeInfinity;
            for (int j = 0; j < cols; j++)
            {
                float v = x[start + j];
                if (v > m || float.IsNaN(v)) m = v;   // once m is NaN, no v > m: NaN sticks
            }
            y[r] = m;
            return;
        }
        var acc = default(CompensatedSum);
        for (int j = 0; j < cols; j++) acc = acc.Add(x[start + j]);
        float s = acc.Value;
        y[r] = op == (int)ReduceOp.Mean ? s / cols : s;
    }

    /// <summary>
    /// One thread per column c: y[c] = beta * y[c] + reduce_r x[r * cols + c] (max overwrites). x: (rows, cols),
    /// y: (cols). Neighbouring threads read neighbouring columns, so every row access is coalesced.
    /// </summary>
    [GpuKernel]
    public static void ColsKernel(Index1D c, ArrayView<float> x, ArrayView<float> y, int rows, int cols, int op, float beta)
    {
        if (op == (int)ReduceOp.Max)
        {
            float m = float.NegativeInfinity;
            for (int r = 0; r < rows; r++)
            {
                float v = x[(long)r * cols + c];
                if (v > m || float.IsNaN(v)) m = v;
            }
            y[c] = m;
            return;
        }
        var acc = default(CompensatedSum);
        for (int r = 0; r < rows; r++) acc = acc.Add(x[(long)r * cols + c]);
        float s = acc.Value;
        if (op == (int)ReduceOp.Mean) s /= rows;
        y[c] = beta == 0f ? s : beta * y[c] + s;   // MathF.FusedMultiplyAdd is an unresolved extern in ILGPU 1.5.3 PTX and OpenCL
    }

    // ---- launchers ----------------------------------------------------------------------------------------------

    /// <summary>Launches <see cref="RowsKernel"/>. x: (rows, cols), y: (rows).</summary>
    public static void LaunchRows(KernelCache k, ReduceOp op, int rows, int cols, ArrayView<float> x, ArrayView<float> y)
    {
        k.Get(RowsKernel, acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int>(RowsKernel))
            (rows, x, y, cols, (int)op);
        k.CountLaunch();
    }

    /// <summary>Launches <see cref="ColsKernel"/>. x: (rows, cols), y: (cols).</summary>
    public static void LaunchCols(KernelCache k, ReduceOp op, int rows, int cols, ArrayView<float> x, float beta, ArrayView<float> y)
    {
        k.Get(ColsKernel, acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int, int, float>(ColsKernel))
            (cols, x, y, rows, cols, (int)op, beta);
        k.CountLaunch();
    }

    // ---- SIMD host implementation -------------------------------------------------------------------------------

    /// <summary>Columns per host block of a column reduction (float64 accumulators of one block stay in L1).</summary>
    private const int ColBlock = 256;

    /// <summary>Host row reduction. x: (rows, cols), y: (rows). Sums accumulate in float64 vector lanes.</summary>
    public static void HostRows(ReduceOp op, int rows, int cols, ArraySegment<float> x, ArraySegment<float> y)
    {
        int perItem = Math.Max(1, (rows + 4 * HostSimd.PoolThreads - 1) / (4 * HostSimd.PoolThreads));
        HostSimd.ForRanges(rows, perItem, (long)rows * cols >= HostSimd.ParallelThreshold, (op, cols, x, y), static (t, r0, count) =>
        {
            for (int r = r0; r < r0 + count; r++)
            {
                var row = t.x.AsSpan(r * t.cols, t.cols);
                t.y[r] = t.op == ReduceOp.Max ? (t.cols == 0 ? float.NegativeInfinity : TensorPrimitives.Max(row))
                     : (float)(SumWide(row) / (t.op == ReduceOp.Mean ? t.cols : 1));
            }
        });
    }

    /// <summary>
    /// Host column reduction. x: (rows, cols), y: (cols); sum/mean: y = beta*y + reduce (float64 accumulators per column),
    /// max: overwrite. Parallel over blocks of <see cref="ColBlock"/> columns.
    /// </summary>
    public static void HostCols(ReduceOp op, int rows, int cols, ArraySegment<float> x, float beta, ArraySegment<float> y)
        => HostSimd.ForRanges(cols, ColBlock, (long)rows * cols >= HostSimd.ParallelThreshold, (op, rows, cols, x, beta, y), static (t, c0, w) =>
        {
            int rows = t.rows, cols = t.cols;
            var yb = t.y.AsSpan(c0, w);
            if (t.op == ReduceOp.Max)
            {
                yb.Fill(float.NegativeInfinity);
                for (int r = 0; r < rows; r++) TensorPrimitives.Max(yb, t.x.AsSpan(r * cols + c0, w), yb);
                return;
            }
            Span<double> acc = stackalloc double[ColBlock];
            acc = acc[..w];
            acc.Clear();
            for (int r = 0; r < rows; r++) HostSimd.AddWide(t.x.AsSpan(r * cols + c0, w), acc);
            double scale = t.op == ReduceOp.Mean ? 1.0 / rows : 1.0;
            float beta = t.beta;
            for (int j = 0; j < w; j++)
            {
                float s = (float)(acc[j] * scale);
                yb[j] = beta == 0f ? s : beta * yb[j] + s;
            }
        });

    /// <summary>Sum of <paramref name="v"/> in float64: each float32 vector is widened into four float64 accumulators.</summary>
    internal static double SumWide(ReadOnlySpan<float> v)
    {
        int i = 0;
        double s = 0;
        if (Vector512.IsHardwareAccelerated && v.Length >= 32)
        {
            ref float p = ref MemoryMarshal.GetReference(v);
            var a0 = Vector512<double>.Zero; var a1 = a0; var a2 = a0; var a3 = a0;
            for (; i <= v.Length - 32; i += 32)
            {
                var (l0, h0) = Vector512.Widen(Vector512.LoadUnsafe(ref p, (nuint)i));
                var (l1, h1) = Vector512.Widen(Vector512.LoadUnsafe(ref p, (nuint)(i + 16)));
                a0 += l0; a1 += h0; a2 += l1; a3 += h1;
            }
            s = Vector512.Sum((a0 + a1) + (a2 + a3));
        }
        else if (Vector256.IsHardwareAccelerated && v.Length >= 16)
        {
            ref float p = ref MemoryMarshal.GetReference(v);
            var a0 = Vector256<double>.Zero; var a1 = a0; var a2 = a0; var a3 = a0;
            for (; i <= v.Length - 16; i += 16)
            {
                var (l0, h0) = Vector256.Widen(Vector256.LoadUnsafe(ref p, (nuint)i));
                var (l1, h1) = Vector256.Widen(Vector256.LoadUnsafe(ref p, (nuint)(i + 8)));
                a0 += l0; a1 += h0; a2 += l1; a3 += h1;
            }
            s = Vector256.Sum((a0 + a1) + (a2 + a3));
        }
        for (; i < v.Length; i++) s += v[i];
        return s;
    }

    // ---- cost ---------------------------------------------------------------------------------------------------

    /// <summary>Row reduction: rows*cols FLOPs; reads x, writes y.</summary>
    public static OpCost RowsCost(int rows, int cols) => new((double)rows * cols, 4.0 * ((double)rows * cols + rows));

    /// <summary>Column reduction: rows*cols FLOPs (+2 per column with beta); reads x, reads y when beta != 0, writes y.</summary>
    public static OpCost ColsCost(int rows, int cols, bool readsY)
        => new((double)rows * cols + (readsY ? 2.0 * cols : 0), 4.0 * ((double)rows * cols + (readsY ? 2.0 : 1.0) * cols));
}

/// <summary>
/// A float32 sum with a float32 compensation term: value = S + C, where C collects the rounding error of every
/// addition (Knuth's branch-free TwoSum, i.e. Neumaier's variant of Kahan summation: it stays exact-ish also when an
/// addend is larger than the running sum). Usable inside kernels (plain struct, no branches).
/// </summary>
public struct CompensatedSum
{
    /// <summary>The running float32 sum.</summary>
    public float S;
    /// <summary>The accumulated rounding error of <see cref="S"/>.</summary>
    public float C;

    /// <summary>Creates a sum with the given parts.</summary>
    public CompensatedSum(float s, float c) { S = s; C = c; }

    /// <summary>The best float32 estimate of the sum.</summary>
    public readonly float Value => S + C;

    /// <summary>This sum plus <paramref name="v"/>, with the rounding error of the addition kept in C.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly CompensatedSum Add(float v)
    {
        float t = S + v;
        float vv = t - S;
        float err = (S - (t - vv)) + (v - vv);
        return new CompensatedSum(t, C + err);
    }

    /// <summary>This sum plus another compensated sum.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly CompensatedSum Add(CompensatedSum o)
    {
        var r = Add(o.S);
        return new CompensatedSum(r.S, r.C + o.C);
    }
}
