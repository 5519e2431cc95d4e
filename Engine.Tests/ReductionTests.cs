using GpuNet.Kernels;

namespace GpuNet.Tests;

public sealed class ReductionTests(BackendFixture f) : DeviceTestBase(f), IClassFixture<BackendFixture>
{
    public static TheoryData<int, int> Shapes => new() { { 1, 1 }, { 1, 13 }, { 13, 1 }, { 7, 257 }, { 64, 10 }, { 300, 3 } };

    private static readonly ReduceOp[] Ops = [ReduceOp.Sum, ReduceOp.Mean, ReduceOp.Max];

    private void ReduceRows(ReduceOp op, Tensor x, Tensor y)
    {
        switch (op)
        {
            case ReduceOp.Sum: D.SumRows(x, y); break;
            case ReduceOp.Mean: D.MeanRows(x, y); break;
            default: D.MaxRows(x, y); break;
        }
    }

    private void ReduceCols(ReduceOp op, Tensor x, Tensor y, float beta)
    {
        switch (op)
        {
            case ReduceOp.Sum: D.SumCols(x, y, beta); break;
            case ReduceOp.Mean: D.MeanCols(x, y, beta); break;
            default: D.MaxCols(x, y); break;
        }
    }

    [Theory, Backends(nameof(Shapes))]
    public void RowReductionsMatchReference(string backend, int rows, int cols)
    {
        Use(backend);
        var x = TestData.Uniform(rows * 31 + cols, rows * cols);
        using var tx = D.FromArray(x, rows, cols);
        using var ty = D.FromArray(Enumerable.Repeat(float.NaN, rows).ToArray());   // overwritten, never read
        foreach (var op in Ops)
        {
            ReduceRows(op, tx, ty);
            var expected = new double[rows];
            ReductionOp.ReferenceRows(op, rows, cols, TestData.D(x), expected);
            Tol.Reduction.AssertClose(ty.ToArray(), expected, $"{op}Rows ({rows}, {cols})");
        }
    }

    [Theory, Backends(nameof(Shapes))]
    public void ColumnReductionsMatchReference(string backend, int rows, int cols)
    {
        Use(backend);
        var x = TestData.Uniform(rows * 17 + cols, rows * cols);
        using var tx = D.FromArray(x, rows, cols);
        using var ty = D.FromArray(Enumerable.Repeat(float.NaN, cols).ToArray());   // beta = 0: overwritten, never read
        foreach (var op in Ops)
        {
            ReduceCols(op, tx, ty, 0f);
            var expected = new double[cols];
            ReductionOp.ReferenceCols(op, rows, cols, TestData.D(x), 0, expected);
            Tol.Reduction.AssertClose(ty.ToArray(), expected, $"{op}Cols ({rows}, {cols})");
        }
    }

    [Theory, Backends(nameof(Shapes))]
    public void ColumnSumAndMeanAccumulateWithBeta(string backend, int rows, int cols)
    {
        Use(backend);
        var x = TestData.Uniform(rows + 5 * cols, rows * cols);
        var y0 = TestData.Uniform(99, cols);
        using var tx = D.FromArray(x, rows, cols);
        using var ty = D.FromArray(y0);

        // Two bias-gradient steps: db += colsum(dy), twice.
        D.SumCols(tx, ty, 1f);
        D.SumCols(tx, ty, 1f);
        var expected = TestData.D(y0);
        ReductionOp.ReferenceCols(ReduceOp.Sum, rows, cols, TestData.D(x), 1, expected);
        ReductionOp.ReferenceCols(ReduceOp.Sum, rows, cols, TestData.D(x), 1, expected);
        Tol.Reduction.AssertClose(ty.ToArray(), expected, $"SumCols beta=1 twice ({rows}, {cols})");

        D.MeanCols(tx, ty, 0.5f);
        ReductionOp.ReferenceCols(ReduceOp.Mean, rows, cols, TestData.D(x), 0.5, expected);
        Tol.Reduction.AssertClose(ty.ToArray(), expected, $"MeanCols beta=0.5 ({rows}, {cols})");
    }

    [Theory, Backends]
    public void MaxOfAllNegativeRowsAndColumnsIsNegative(string backend)
    {
        Use(backend);
        const int rows = 9, cols = 21;
        var x = TestData.Uniform(5, rows * cols, -7f, -1f);
        x[3 * cols + 4] = float.NegativeInfinity;
        for (int j = 0; j < cols; j++) x[6 * cols + j] = float.NegativeInfinity;   // a row of -inf: max -inf, argmax 0
        using var tx = D.FromArray(x, rows, cols);
        using var tr = D.Zeros(rows); using var tc = D.Zeros(cols); using var ti = D.Allocate([rows], DType.Int32);
        D.MaxRows(tx, tr); D.MaxCols(tx, tc); D.ArgmaxRows(tx, ti);

        var er = new double[rows]; var ec = new double[cols]; var ei = new int[rows];
        ReductionOp.ReferenceRows(ReduceOp.Max, rows, cols, TestData.D(x), er);
        ReductionOp.ReferenceCols(ReduceOp.Max, rows, cols, TestData.D(x), 0, ec);
        ArgmaxOp.Reference(rows, cols, TestData.D(x), ei);
        var gr = tr.ToArray();
        Assert.Equal(er.Select(v => (float)v), gr);
        Assert.Equal(ec.Select(v => (float)v), tc.ToArray());
        Assert.Equal(ei, ti.ToInt32Array());
        Assert.True(gr.All(v => v < 0), "max of negative rows must be negative (a 0-initialised accumulator would give 0)");
        Assert.Equal(float.NegativeInfinity, gr[6]);
        Assert.Equal(0, ti.ToInt32Array()[6]);
    }

    [Theory, Backends]
    public void MaxPropagatesNaNAndArgmaxPicksTheFirstNaN(string backend)
    {
        Use(backend);
        const int rows = 4, cols = 19;
        var x = TestData.Uniform(6, rows * cols);
        x[1 * cols + 0] = float.NaN;     // row 1: NaN first
        x[2 * cols + 11] = float.NaN;    // row 2: NaN late, then another one
        x[2 * cols + 15] = float.NaN;
        x[2 * cols + 3] = 5f;            // a large number before the NaN loses to it
        using var tx = D.FromArray(x, rows, cols);
        using var tr = D.Zeros(rows); using var tc = D.Zeros(cols); using var ti = D.Allocate([rows], DType.Int32);
        D.MaxRows(tx, tr); D.MaxCols(tx, tc); D.ArgmaxRows(tx, ti);

        var gr = tr.ToArray(); var gc = tc.ToArray();
        Assert.True(!float.IsNaN(gr[0]) && float.IsNaN(gr[1]) && float.IsNaN(gr[2]) && !float.IsNaN(gr[3]), $"MaxRows: [{string.Join(", ", gr)}]");
        for (int c = 0; c < cols; c++)
            Assert.True(float.IsNaN(gc[c]) == (c is 0 or 11 or 15), $"MaxCols column {c}: {gc[c]}");
        var ei = new int[rows];
        ArgmaxOp.Reference(rows, cols, TestData.D(x), ei);
        Assert.Equal([ei[0], 0, 11, ei[3]], ti.ToInt32Array());
        Assert.Equal(ei, ti.ToInt32Array());
    }

    [Theory, Backends(nameof(Shapes))]
    public void ArgmaxMatchesReference(string backend, int rows, int cols)
    {
        Use(backend);
        var x = TestData.Uniform(rows * 7 + cols, rows * cols);
        using var tx = D.FromArray(x, rows, cols);
        using var ti = D.FromArray(Enumerable.Repeat(-1, rows).ToArray());
        D.ArgmaxRows(tx, ti);
        var expected = new int[rows];
        ArgmaxOp.Reference(rows, cols, TestData.D(x), expected);
        Assert.Equal(expected, ti.ToInt32Array());
    }

    [Theory, Backends]
    public void ArgmaxTiesGiveTheFirstIndex(string backend)
    {
        Use(backend);
        const int cols = 37;   // past one 16-lane vector, so the host's vector compare and its tail both matter
        var rows = new List<float[]>
        {
            Enumerable.Repeat(2.5f, cols).ToArray(),                                    // all equal -> 0
            Enumerable.Range(0, cols).Select(j => j is 20 or 30 or 36 ? 9f : 1f).ToArray(),  // -> 20
            Enumerable.Range(0, cols).Select(j => j is 33 or 36 ? 9f : -1f).ToArray(),  // tie in the tail -> 33
            Enumerable.Range(0, cols).Select(j => j == 4 ? -0f : j == 5 ? 0f : -3f).ToArray(),  // -0 == +0 -> 4
        };
        var x = rows.SelectMany(r => r).ToArray();
        using var tx = D.FromArray(x, rows.Count, cols);
        using var ti = D.Allocate([rows.Count], DType.Int32);
        D.ArgmaxRows(tx, ti);
        var expected = new int[rows.Count];
        ArgmaxOp.Reference(rows.Count, cols, TestData.D(x), expected);
        Assert.Equal([0, 20, 33, 4], expected);
        Assert.Equal(expected, ti.ToInt32Array());
    }

    [Theory, Backends]
    public void GlobalSumIsCompensated(string backend)
    {
        Use(backend);
        // Many small values around a large cancelling pair: float32 accumulation in order loses every 0.1 added
        // while |sum| is 3e7 (its ulp is 2); the float64 sum of the same float32 inputs is the reference.
        int n = D.Kind == DeviceKind.IlgpuCpu ? 5000 : 1_000_000;
        var x = Enumerable.Repeat(0.1f, n).ToArray();
        x[10] = 3e7f; x[n - 10] = -3e7f; x[n / 2] = 12345.678f; x[n / 3] = -2.5e6f; x[n / 3 + 1] = 2.5e6f;
        double expected = GlobalSumOp.Reference(TestData.D(x));
        float naive = 0f;
        foreach (float v in x) naive += v;
        Assert.True(Math.Abs(naive - expected) > 1e-5 + 1e-5 * Math.Abs(expected), $"the data must defeat naive float32 summation: {naive} vs {expected}");

        using var tx = D.FromArray(x);
        Tol.Reduction.AssertClose([D.Sum(tx)], [expected], $"Sum n={n}");
        using var r = D.Zeros(1);
        D.Sum(tx.Reshape(n / 1000, 1000), r);
        Tol.Reduction.AssertClose(r.ToArray(), [expected], $"Sum n={n} as a matrix");
    }

    [Theory]
    [BackendData(1)]
    [BackendData(13)]
    [BackendData(257)]
    [BackendData(3001)]
    public void GlobalSumMatchesReference(string backend, int n)
    {
        Use(backend);
        var x = TestData.Uniform(n, n);
        using var tx = D.FromArray(x);
        using var r = D.FromArray([float.NaN]);
        long before = D.Counters.Launches, kernels = D.Counters.KernelLaunches;
        D.Sum(tx, r);
        Assert.Equal(before + 1, D.Counters.Launches);
        Assert.Equal(kernels + (D.IsHost ? 0 : 2), D.Counters.KernelLaunches);   // partial sums, then their total
        Tol.Reduction.AssertClose(r.ToArray(), [GlobalSumOp.Reference(TestData.D(x))], $"Sum n={n}");
    }

    [Theory, Backends]
    public void ReductionsAcceptLeadingDimensionsAndEmptySums(string backend)
    {
        Use(backend);
        var x = TestData.Uniform(8, 2 * 3 * 5);
        using var tx = D.FromArray(x, 2, 3, 5);
        using var ty = D.Zeros(6);
        D.SumRows(tx, ty);
        var expected = new double[6];
        ReductionOp.ReferenceRows(ReduceOp.Sum, 6, 5, TestData.D(x), expected);
        Tol.Reduction.AssertClose(ty.ToArray(), expected, "SumRows (2, 3, 5)");

        using var empty = D.Zeros(4, 0);
        using var y4 = D.FromArray([1f, 2f, 3f, 4f]);
        D.SumRows(empty, y4);
        Assert.Equal([0f, 0f, 0f, 0f], y4.ToArray());

        using var noRows = D.Zeros(0, 4);
        using var acc = D.FromArray([1f, 2f, 3f, 4f]);
        D.SumCols(noRows, acc, 1f);
        Assert.Equal([1f, 2f, 3f, 4f], acc.ToArray());
        D.SumCols(noRows, acc);
        Assert.Equal([0f, 0f, 0f, 0f], acc.ToArray());

        using var none = D.Zeros(0);
        Assert.Equal(0f, D.Sum(none));
    }

    [Theory, Backends]
    public void ErrorsNameTheOpArgumentAndShapes(string backend)
    {
        Use(backend);
        using var x = D.Zeros(4, 6);
        using var y5 = D.Zeros(5);
        var e = Assert.Throws<ShapeMismatchException>(() => D.SumRows(x, y5));
        Assert.Equal("SumRows", e.Operation);
        Assert.Equal("(4)", e.Expected);
        Assert.Equal("(5)", e.Actual);
        Assert.Contains("'y'", e.Message);

        e = Assert.Throws<ShapeMismatchException>(() => D.MeanCols(x, y5));
        Assert.Equal(("MeanCols", "(6)", "(5)"), (e.Operation, e.Expected, e.Actual));

        using var two = D.Zeros(2);
        e = Assert.Throws<ShapeMismatchException>(() => D.Sum(x, two));
        Assert.Equal(("Sum", "(1)", "(2)"), (e.Operation, e.Expected, e.Actual));
        Assert.Contains("'result'", e.Message);

        using var idxFloat = D.Zeros(4);
        var a = Assert.Throws<ArgumentException>(() => D.ArgmaxRows(x, idxFloat));
        Assert.Contains("ArgmaxRows", a.Message);
        Assert.Contains("Int32", a.Message);
        Assert.Contains("Float32", a.Message);
        Assert.Equal("indices", a.ParamName);

        using var ints = D.Allocate([4, 6], DType.Int32);
        using var y4 = D.Zeros(4);
        a = Assert.Throws<ArgumentException>(() => D.MaxRows(ints, y4));
        Assert.Equal("x", a.ParamName);

        using var noCols = D.Zeros(3, 0);
        using var y3 = D.Zeros(3);
        e = Assert.Throws<ShapeMismatchException>(() => D.MaxRows(noCols, y3));
        Assert.Equal("MaxRows", e.Operation);
        using var noRows = D.Zeros(0, 6);
        using var y6 = D.Zeros(6);
        e = Assert.Throws<ShapeMismatchException>(() => D.MeanCols(noRows, y6));
        Assert.Equal("MeanCols", e.Operation);

        var b = Assert.Throws<ArgumentOutOfRangeException>(() => D.SumCols(x, y6, float.NaN));
        Assert.Equal("beta", b.ParamName);
        Assert.Contains("SumCols", b.Message);
    }

    [Theory, Backends]
    public void SumScratchLeavesNoLiveBytesAndIsReused(string backend)
    {
        Use(backend);
        var x = TestData.Uniform(3, 2000);
        using var tx = D.FromArray(x);
        using var r = D.Zeros(1);
        D.Sum(tx, r);
        long liveAfterFirst = D.Counters.LiveBytes, allocations = D.Counters.DeviceAllocations;
        for (int i = 0; i < 3; i++) D.Sum(tx, r);
        Assert.Equal(liveAfterFirst, D.Counters.LiveBytes);
        Assert.Equal(allocations, D.Counters.DeviceAllocations);
        Assert.Equal(8000L + 4, D.Counters.LiveBytes);
    }
}

