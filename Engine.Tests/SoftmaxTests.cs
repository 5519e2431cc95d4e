using GpuNet.Kernels;

namespace GpuNet.Tests;

public sealed class SoftmaxTests(BackendFixture f) : DeviceTestBase(f), IClassFixture<BackendFixture>
{
    public static TheoryData<int, int, bool> Shapes
    {
        get
        {
            var d = new TheoryData<int, int, bool>();
            foreach (var (r, c) in new[] { (1, 1), (1, 10), (7, 3), (5, 257), (3, 1000) })
                foreach (bool log in new[] { false, true })
                    d.Add(r, c, log);
            return d;
        }
    }

    /// <summary>Rows in [-6, 6]; every third row is shifted by +1000, the next by -1000; a single row is shifted by +1000.</summary>
    private static float[] Inputs(int seed, int rows, int cols)
    {
        var x = TestData.Uniform(seed, rows * cols, -6f, 6f);
        for (int r = 0; r < rows; r++)
        {
            float shift = rows == 1 ? 1000f : (r % 3) switch { 1 => 1000f, 2 => -1000f, _ => 0f };
            for (int c = 0; c < cols; c++) x[r * cols + c] += shift;
        }
        return x;
    }

    private void Forward(bool log, Tensor x, Tensor y) { if (log) D.LogSoftmax(x, y); else D.Softmax(x, y); }
    private void Backward(bool log, Tensor y, Tensor dy, Tensor dx) { if (log) D.LogSoftmaxBackward(y, dy, dx); else D.SoftmaxBackward(y, dy, dx); }
    private static string Name(bool log) => log ? "log-softmax" : "softmax";

    [Theory, Backends(nameof(Shapes))]
    public void ForwardMatchesReferenceAndRowsSumToOne(string backend, int rows, int cols, bool log)
    {
        Use(backend);
        var x = Inputs(rows * 31 + cols, rows, cols);
        using var tx = D.FromArray(x, rows, cols); using var ty = D.Zeros(rows, cols);
        Forward(log, tx, ty);
        var expected = new double[rows * cols];
        SoftmaxOp.Reference(log, rows, cols, TestData.D(x), expected);
        var got = ty.ToArray();
        Tol.Activation.AssertClose(got, expected, $"{Name(log)} ({rows}, {cols})");

        var sums = new double[rows];
        for (int i = 0; i < got.Length; i++) sums[i / cols] += log ? Math.Exp(got[i]) : got[i];
        Tol.Reduction.AssertClose(sums, Enumerable.Repeat(1.0, rows).ToArray(), $"{Name(log)} row sums ({rows}, {cols})");
    }

    [Theory, Backends(nameof(Shapes))]
    public void BackwardMatchesReference(string backend, int rows, int cols, bool log)
    {
        Use(backend);
        var x = Inputs(rows * 37 + cols, rows, cols); var dy = TestData.Uniform(rows + cols, rows * cols);
        using var tx = D.FromArray(x, rows, cols); using var ty = D.Zeros(rows, cols);
        using var tdy = D.FromArray(dy, rows, cols); using var tdx = D.Zeros(rows, cols);
        Forward(log, tx, ty);
        Backward(log, ty, tdy, tdx);
        var y = new double[rows * cols]; var expected = new double[rows * cols];
        SoftmaxOp.Reference(log, rows, cols, TestData.D(x), y);
        SoftmaxOp.ReferenceBackward(log, rows, cols, y, TestData.D(dy), expected);
        Tol.Activation.AssertClose(tdx.ToArray(), expected, $"{Name(log)} backward ({rows}, {cols})");
    }

    [Theory, Backends(nameof(Shapes))]
    public void BackwardMatchesFiniteDifferences(string backend, int rows, int cols, bool log)
    {
        Use(backend);
        // Finite differences cost O((rows * cols)^2) reference evaluations: keep the largest shape to its first row.
        if (rows * cols > 1300) rows = 1;
        var x = Inputs(rows * 41 + cols, rows, cols); var dy = TestData.Uniform(rows * 3 + cols, rows * cols);
        using var tx = D.FromArray(x, rows, cols); using var ty = D.Zeros(rows, cols);
        using var tdy = D.FromArray(dy, rows, cols); using var tdx = D.Zeros(rows, cols);
        Forward(log, tx, ty);
        Backward(log, ty, tdy, tdx);
        var dyd = TestData.D(dy); var y = new double[rows * cols];
        var fd = TestData.FiniteDifference(v => { SoftmaxOp.Reference(log, rows, cols, v, y); return TestData.Dot(dyd, y); }, TestData.D(x));
        Tol.FiniteDifference.AssertClose(tdx.ToArray(), fd, $"{Name(log)} backward vs finite differences ({rows}, {cols})");
    }

    [Theory, Backends]
    public void ExtremeRowsStayFinite(string backend)
    {
        Use(backend);
        // rows: all +1000, all -1000, mixed +-1000 and 0, constant 1000 (uniform output), and -30..30
        const int cols = 9;
        var x = new float[5 * cols];
        for (int c = 0; c < cols; c++)
        {
            x[c] = 1000f + c; x[cols + c] = -1000f - c;
            x[2 * cols + c] = (c % 3 - 1) * 1000f; x[3 * cols + c] = 1000f; x[4 * cols + c] = -30f + 7.5f * c;
        }
        using var tx = D.FromArray(x, 5, cols); using var ty = D.Zeros(5, cols);
        foreach (bool log in new[] { false, true })
        {
            Forward(log, tx, ty);
            var got = ty.ToArray();
            Assert.All(got, v => Assert.True(float.IsFinite(v), $"{Name(log)}: non-finite output {v}"));
            var expected = new double[x.Length];
            SoftmaxOp.Reference(log, 5, cols, TestData.D(x), expected);
            Tol.Activation.AssertClose(got, expected, $"{Name(log)} extreme rows");
        }
    }

    [Theory, Backends]
    public void InPlaceForwardAndBackwardOverDyWork(string backend)
    {
        Use(backend);
        const int rows = 4, cols = 33;
        var x = Inputs(70, rows, cols); var dy = TestData.Uniform(71, rows * cols);
        using var t = D.Zeros(rows, cols); using var g = D.Zeros(rows, cols);
        foreach (bool log in new[] { false, true })
        {
            t.CopyFrom(x);
            Forward(log, t, t);
            var y = new double[x.Length]; var expected = new double[x.Length];
            SoftmaxOp.Reference(log, rows, cols, TestData.D(x), y);
            Tol.Activation.AssertClose(t.ToArray(), y, $"{Name(log)} in place");
            g.CopyFrom(dy);
            Backward(log, t, g, g);
            SoftmaxOp.ReferenceBackward(log, rows, cols, y, TestData.D(dy), expected);
            Tol.Activation.AssertClose(g.ToArray(), expected, $"{Name(log)} backward with dx = dy");
        }
    }

    [Theory, Backends]
    public void HigherRankTensorsUseTheLastDimension(string backend)
    {
        Use(backend);
        var x = TestData.Uniform(80, 2 * 3 * 5, -3f, 3f);
        using var tx = D.FromArray(x, 2, 3, 5); using var ty = D.Zeros(2, 3, 5);
        D.Softmax(tx, ty);
        var expected = new double[x.Length];
        SoftmaxOp.Reference(false, 6, 5, TestData.D(x), expected);
        Tol.Activation.AssertClose(ty.ToArray(), expected, "softmax (2, 3, 5)");
    }

    [Theory, Backends]
    public void ErrorsNameTheOpAndBothShapes(string backend)
    {
        Use(backend);
        using var x = D.Zeros(4, 3); using var y = D.Zeros(3, 4); using var ok = D.Zeros(4, 3);
        var e = Assert.Throws<ShapeMismatchException>(() => D.Softmax(x, y));
        Assert.Equal("Softmax", e.Operation);
        Assert.Contains("(4, 3)", e.Message); Assert.Contains("(3, 4)", e.Message);

        e = Assert.Throws<ShapeMismatchException>(() => D.LogSoftmax(x, y));
        Assert.Equal("LogSoftmax", e.Operation);

        e = Assert.Throws<ShapeMismatchException>(() => D.SoftmaxBackward(ok, y, ok));
        Assert.Equal("SoftmaxBackward", e.Operation);
        Assert.Contains("'dy'", e.Message); Assert.Contains("(4, 3)", e.Message); Assert.Contains("(3, 4)", e.Message);

        e = Assert.Throws<ShapeMismatchException>(() => D.LogSoftmaxBackward(ok, ok, y));
        Assert.Equal("LogSoftmaxBackward", e.Operation);
        Assert.Contains("'dx'", e.Message);
    }

    [Theory, Backends]
    public void LaunchesAreCountedAndCostScales(string backend)
    {
        Use(backend);
        using var x = D.Zeros(3, 5); using var y = D.Zeros(3, 5);
        long before = D.Counters.Launches;
        D.Softmax(x, y); D.SoftmaxBackward(y, x, x); D.LogSoftmax(x, y); D.LogSoftmaxBackward(y, x, x);
        Assert.Equal(before + 4, D.Counters.Launches);
        Assert.Equal(8.0 * 15, SoftmaxOp.Cost(false, 3, 5).Bytes);
        Assert.Equal(12.0 * 15, SoftmaxOp.BackwardCost(true, 3, 5).Bytes);
        Assert.True(SoftmaxOp.Cost(true, 6, 5).Flops > SoftmaxOp.Cost(true, 3, 5).Flops);
    }
}

