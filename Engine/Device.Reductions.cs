using GpuNet.Kernels;

namespace GpuNet;

public sealed partial class Device
{
    // x: (..., cols) is seen as a matrix (rows, cols): rows = product of the leading dimensions (1 for a vector).

    /// <summary>y[r] = sum over j of x[r, j]. x: (rows, cols) (leading dimensions flattened into rows), y: (rows) (overwrite).</summary>
    public void SumRows(Tensor x, Tensor y) => Rows(ReduceOp.Sum, "SumRows", x, y);

    /// <summary>y[r] = mean over j of x[r, j]. x: (rows, cols) with cols &gt;= 1, y: (rows) (overwrite).</summary>
    public void MeanRows(Tensor x, Tensor y) => Rows(ReduceOp.Mean, "MeanRows", x, y);

    /// <summary>y[r] = max over j of x[r, j]; NaN when the row holds a NaN. x: (rows, cols) with cols &gt;= 1, y: (rows) (overwrite).</summary>
    public void MaxRows(Tensor x, Tensor y) => Rows(ReduceOp.Max, "MaxRows", x, y);

    /// <summary>
    /// y[c] = beta * y[c] + sum over r of x[r, c]. x: (rows, cols), y: (cols). With beta = 1 this accumulates the bias
    /// gradient of a Linear layer (db += column sums of dy); with beta = 0 (default) y is overwritten and not read.
    /// </summary>
    public void SumCols(Tensor x, Tensor y, float beta = 0f) => Cols(ReduceOp.Sum, "SumCols", x, y, beta);

    /// <summary>y[c] = beta * y[c] + mean over r of x[r, c]. x: (rows, cols) with rows &gt;= 1, y: (cols); beta = 0 overwrites.</summary>
    public void MeanCols(Tensor x, Tensor y, float beta = 0f) => Cols(ReduceOp.Mean, "MeanCols", x, y, beta);

    /// <summary>
    /// y[c] = max over r of x[r, c] (always overwrites: a max has no accumulate form); NaN when the column holds a NaN.
    /// x: (rows, cols) with rows &gt;= 1, y: (cols).
    /// </summary>
    public void MaxCols(Tensor x, Tensor y) => Cols(ReduceOp.Max, "MaxCols", x, y, 0f);

    /// <summary>
    /// result[0] = the sum of every element of <paramref name="x"/> (any shape), computed with compensated float32
    /// partial sums on ILGPU (two kernels) and float64 accumulators on the host; one launch. result: (1) (overwrite).
    /// </summary>
    public void Sum(Tensor x, Tensor result)
    {
        const string op = "Sum";
        Check(op, nameof(x), x); Check(op, nameof(result), result);
        CheckShape(op, nameof(result), result, 1);
        Launch().Sum(x, result);
    }

    /// <summary>The sum of every element of <paramref name="x"/>, copied to the host (see <see cref="Sum(Tensor, Tensor)"/>).</summary>
    public float Sum(Tensor x)
    {
        Check("Sum", nameof(x), x);
        using var result = AllocateUninitialized([1]);
        Sum(x, result);
        Span<float> value = stackalloc float[1];
        result.CopyTo(value);
        return value[0];
    }

    /// <summary>
    /// indices[r] = the first j where x[r, j] is the row's maximum; a row holding NaN gives its first NaN's index.
    /// x: (rows, cols) float32 with cols &gt;= 1, indices: (rows) int32.
    /// </summary>
    public void ArgmaxRows(Tensor x, Tensor indices)
    {
        const string op = "ArgmaxRows";
        Check(op, nameof(x), x); Check(op, nameof(indices), indices, DType.Int32);
        var (rows, cols) = Matrix(op, x, needCols: true);
        CheckShape(op, nameof(indices), indices, rows);
        if (rows == 0) return;
        Launch().ArgmaxRows(rows, cols, x, indices);
    }

    private void Rows(ReduceOp reduce, string op, Tensor x, Tensor y)
    {
        Check(op, nameof(x), x); Check(op, nameof(y), y);
        var (rows, cols) = Matrix(op, x, needCols: reduce != ReduceOp.Sum);
        CheckShape(op, nameof(y), y, rows);
        if (rows == 0) return;
        Launch().ReduceRows(reduce, rows, cols, x, y);
    }

    private void Cols(ReduceOp reduce, string op, Tensor x, Tensor y, float beta)
    {
        Check(op, nameof(x), x); Check(op, nameof(y), y);
        if (!float.IsFinite(beta))
            throw new ArgumentOutOfRangeException(nameof(beta), beta, $"{op}: beta must be finite (0 overwrites, 1 accumulates)");
        var (rows, cols) = Matrix(op, x, needCols: false);
        if (rows == 0 && reduce != ReduceOp.Sum && cols > 0)
            throw new ShapeMismatchException(op, "(rows >= 1, cols)", ShapeUtil.Format(x.Shape), $"argument 'x': {reduce} over 0 rows is undefined");
        CheckShape(op, nameof(y), y, cols);
        if (cols == 0) return;
        Launch().ReduceCols(reduce, rows, cols, x, beta, y);
    }

    /// <summary>(rows, cols) of x; rows = product of the leading dimensions. With needCols, cols = 0 is rejected when rows &gt; 0.</summary>
    private static (int Rows, int Cols) Matrix(string op, Tensor x, bool needCols)
    {
        if (x.Rank == 0) throw new ShapeMismatchException(op, "(rows, cols)", "()", "argument 'x' must have at least one dimension");
        int cols = x.Dim(-1);
        int rows = (int)ShapeUtil.Count(x.Shape[..^1]);
        if (needCols && cols == 0 && rows > 0)
            throw new ShapeMismatchException(op, "(rows, cols >= 1)", ShapeUtil.Format(x.Shape), "argument 'x': reducing 0 columns has no mean, max or argmax");
        return (rows, cols);
    }
}
