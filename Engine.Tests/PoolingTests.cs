using GpuNet.Kernels;

namespace GpuNet.Tests;

public sealed class PoolingTests(BackendFixture f) : DeviceTestBase(f), IClassFixture<BackendFixture>
{
    // (N, C, H, W, kH, kW, sH, sW, pH, pW)
    public static TheoryData<int, int, int, int, int, int, int, int, int, int> Windows => new()
    {
        { 2, 3, 7, 9, 3, 3, 2, 2, 1, 1 },    // overlapping 3x3 stride 2, padding 1
        { 1, 1, 5, 5, 2, 2, 2, 2, 0, 0 },    // 2x2 stride 2 on odd input, one channel, batch 1
        { 2, 2, 6, 35, 2, 2, 2, 2, 0, 0 },   // 2x2 stride 2, Q = 17: one 16-wide vector step plus a tail on the host
        { 1, 2, 4, 6, 4, 6, 1, 1, 0, 0 },    // kernel = input size
        { 3, 1, 8, 5, 3, 2, 1, 2, 1, 0 },    // asymmetric window, stride < kernel on rows
        { 1, 1, 3, 3, 3, 3, 1, 1, 1, 1 },    // 3x3 stride 1 padding 1 (same size)
    };

    private static Pool2dArgs Args(int n, int c, int h, int w, int kh, int kw, int sh, int sw, int ph, int pw, bool includePad = true)
        => Pool2dArgs.Create(n, c, h, w, kh, kw, sh, sw, ph, pw, includePad);

    // Distinct values spaced 1/len apart in a seeded order: no ties, and finite differences never cross a tie.
    private static float[] Distinct(int seed, int len)
    {
        var v = new float[len];
        for (int i = 0; i < len; i++) v[i] = (i - len / 2) / (float)len;
        new Random(seed).Shuffle(v);
        return v;
    }

    [Theory, Backends(nameof(Windows))]
    public void MaxPoolMatchesReference(string backend, int n, int c, int h, int w, int kh, int kw, int sh, int sw, int ph, int pw)
    {
        Use(backend);
        var a = Args(n, c, h, w, kh, kw, sh, sw, ph, pw);
        int inLen = n * c * h * w, outLen = n * c * a.P * a.Q;
        var x = Distinct(1, inLen); var dy = TestData.Uniform(2, outLen);
        using var tx = D.FromArray(x, n, c, h, w);
        using var ty = D.Zeros(n, c, a.P, a.Q);
        using var ti = D.Allocate([n, c, a.P, a.Q], DType.Int32);
        using var tdy = D.FromArray(dy, n, c, a.P, a.Q);
        using var tdx = D.FromArray(Enumerable.Repeat(7f, inLen).ToArray(), n, c, h, w);   // overwritten, not accumulated
        D.MaxPool2dForward(tx, ty, ti, kh, kw, sh, sw, ph, pw);
        D.MaxPool2dBackward(tdy, ti, tdx, kh, kw, sh, sw, ph, pw);

        var y = new double[outLen]; var idx = new int[outLen]; var dx = new double[inLen];
        MaxPool2dOp.Reference(a, TestData.D(x), y, idx);
        MaxPool2dOp.ReferenceBackward(a, TestData.D(dy), idx, dx);
        Tol.Elementwise.AssertClose(ty.ToArray(), y, "maxpool y");
        Assert.Equal(idx, ti.ToInt32Array());
        Tol.Elementwise.AssertClose(tdx.ToArray(), dx, "maxpool dx");
    }

    [Theory, Backends(nameof(Windows))]
    public void AvgPoolMatchesReferenceBothDivisors(string backend, int n, int c, int h, int w, int kh, int kw, int sh, int sw, int ph, int pw)
    {
        Use(backend);
        foreach (bool includePad in new[] { true, false })
        {
            var a = Args(n, c, h, w, kh, kw, sh, sw, ph, pw, includePad);
            int inLen = n * c * h * w, outLen = n * c * a.P * a.Q;
            var x = TestData.Uniform(3, inLen); var dy = TestData.Uniform(4, outLen);
            using var tx = D.FromArray(x, n, c, h, w);
            using var ty = D.Zeros(n, c, a.P, a.Q);
            using var tdy = D.FromArray(dy, n, c, a.P, a.Q);
            using var tdx = D.FromArray(Enumerable.Repeat(7f, inLen).ToArray(), n, c, h, w);
            D.AvgPool2dForward(tx, ty, kh, kw, sh, sw, ph, pw, includePad);
            D.AvgPool2dBackward(tdy, tdx, kh, kw, sh, sw, ph, pw, includePad);

            var y = new double[outLen]; var dx = new double[inLen];
            AvgPool2dOp.Reference(a, TestData.D(x), y);
            AvgPool2dOp.ReferenceBackward(a, TestData.D(dy), dx);
            Tol.Reduction.AssertClose(ty.ToArray(), y, $"avgpool y includePad={includePad}");
            Tol.Reduction.AssertClose(tdx.ToArray(), dx, $"avgpool dx includePad={includePad}");
        }
    }

    [Theory, Backends]
    public void CountIncludePadChangesOnlyPaddedWindows(string backend)
    {
        Use(backend);
        // 3x3 of ones, 3x3 window stride 1 padding 1: the corner window holds 4 inputs of 9 padded cells.
        using var x = D.FromArray(Enumerable.Repeat(1f, 9).ToArray(), 1, 1, 3, 3);
        using var y = D.Zeros(1, 1, 3, 3);
        D.AvgPool2dForward(x, y, 3, 3, 1, 1, 1, 1, countIncludePad: true);
        var inc = y.ToArray();
        Assert.Equal(4f / 9f, inc[0], 6); Assert.Equal(6f / 9f, inc[1], 6); Assert.Equal(1f, inc[4], 6);
        D.AvgPool2dForward(x, y, 3, 3, 1, 1, 1, 1, countIncludePad: false);
        Assert.All(y.ToArray(), v => Assert.Equal(1f, v, 6));
    }

    [Theory, Backends]
    public void MaxPoolTiesNaNAndInfinity(string backend)
    {
        Use(backend);
        // (1, 3, 4, 34), 2x2 stride 2 (the host's vector path plus a tail): plane 0 all equal (ties: first element of
        // each window), plane 1 all -inf (first element), plane 2 NaNs at two cells of window (0, 0) and one of (1, 16).
        const int h = 4, w = 34, len = h * w;
        var x = new float[3 * len];
        Array.Fill(x, 0.5f, 0, len);
        Array.Fill(x, float.NegativeInfinity, len, len);
        for (int i = 0; i < len; i++) x[2 * len + i] = i * 0.01f;
        x[2 * len + 1] = float.NaN; x[2 * len + w] = float.NaN;           // window (0, 0): (0, 1) and (1, 0)
        x[2 * len + 3 * w + 33] = float.NaN;                              // window (1, 16): (3, 33)
        using var tx = D.FromArray(x, 1, 3, h, w);
        using var ty = D.Zeros(1, 3, 2, 17);
        using var ti = D.Allocate([1, 3, 2, 17], DType.Int32);
        D.MaxPool2dForward(tx, ty, ti, 2, 2, 2, 2);
        var y = ty.ToArray(); var idx = ti.ToInt32Array();
        for (int p = 0; p < 2; p++)
            for (int q = 0; q < 17; q++)
            {
                int o = p * 17 + q, first = 2 * p * w + 2 * q;
                Assert.Equal(0.5f, y[o]); Assert.Equal(first, idx[o]);
                Assert.Equal(float.NegativeInfinity, y[34 + o]); Assert.Equal(first, idx[34 + o]);
            }
        Assert.True(float.IsNaN(y[68])); Assert.Equal(w, idx[68]);         // the last NaN of the window, like PyTorch
        Assert.True(float.IsNaN(y[68 + 17 + 16])); Assert.Equal(3 * w + 33, idx[68 + 17 + 16]);
        Assert.Equal(3 * w + 3, idx[68 + 17 + 1]);                         // otherwise the largest: bottom right
        Assert.Equal((3 * w + 3) * 0.01f, y[68 + 17 + 1]);
    }

    [Theory, Backends]
    public void MaxPoolBackwardMatchesFiniteDifferences(string backend)
    {
        Use(backend);
        // Overlapping 3x3 stride 2 windows with padding 1: an input can be the max of several windows.
        var a = Args(2, 2, 5, 6, 3, 3, 2, 2, 1, 1);
        int inLen = 2 * 2 * 5 * 6, outLen = 2 * 2 * a.P * a.Q;
        var x = Distinct(5, inLen); var g = TestData.D(TestData.Uniform(6, outLen));
        using var tx = D.FromArray(x, 2, 2, 5, 6);
        using var ty = D.Zeros(2, 2, a.P, a.Q);
        using var ti = D.Allocate([2, 2, a.P, a.Q], DType.Int32);
        using var tdy = D.FromArray(Array.ConvertAll(g, v => (float)v), 2, 2, a.P, a.Q);
        using var tdx = D.Zeros(2, 2, 5, 6);
        D.MaxPool2dForward(tx, ty, ti, 3, 3, 2, 2, 1, 1);
        D.MaxPool2dBackward(tdy, ti, tdx, 3, 3, 2, 2, 1, 1);
        var fd = TestData.FiniteDifference(xs =>
        {
            var y = new double[outLen]; var idx = new int[outLen];
            MaxPool2dOp.Reference(a, xs, y, idx);
            return TestData.Dot(y, g);
        }, TestData.D(x));
        Tol.FiniteDifference.AssertClose(tdx.ToArray(), fd, "maxpool dx vs finite differences");
    }

    [Theory]
    [BackendData(true)]
    [BackendData(false)]
    public void AvgPoolBackwardMatchesFiniteDifferences(string backend, bool includePad)
    {
        Use(backend);
        var a = Args(1, 2, 5, 4, 3, 2, 2, 1, 1, 1, includePad);
        int inLen = 2 * 5 * 4, outLen = 2 * a.P * a.Q;
        var x = TestData.Uniform(7, inLen); var g = TestData.D(TestData.Uniform(8, outLen));
        using var tdy = D.FromArray(Array.ConvertAll(g, v => (float)v), 1, 2, a.P, a.Q);
        using var tdx = D.Zeros(1, 2, 5, 4);
        D.AvgPool2dBackward(tdy, tdx, 3, 2, 2, 1, 1, 1, includePad);
        var fd = TestData.FiniteDifference(xs =>
        {
            var y = new double[outLen];
            AvgPool2dOp.Reference(a, xs, y);
            return TestData.Dot(y, g);
        }, TestData.D(x));
        Tol.FiniteDifference.AssertClose(tdx.ToArray(), fd, $"avgpool dx vs finite differences includePad={includePad}");
    }

    [Theory]
    [BackendData(2, 3, 5, 7)]
    [BackendData(1, 1, 1, 1)]
    [BackendData(1, 4, 13, 1)]
    public void GlobalAvgPoolMatchesReferenceAndFiniteDifferences(string backend, int n, int c, int h, int w)
    {
        Use(backend);
        int planes = n * c, size = h * w;
        var x = TestData.Uniform(9, planes * size); var g = TestData.D(TestData.Uniform(10, planes));
        using var tx = D.FromArray(x, n, c, h, w);
        using var ty = D.Zeros(n, c);
        using var tdy = D.FromArray(Array.ConvertAll(g, v => (float)v), n, c);
        using var tdx = D.FromArray(Enumerable.Repeat(7f, planes * size).ToArray(), n, c, h, w);
        D.GlobalAvgPoolForward(tx, ty);
        D.GlobalAvgPoolBackward(tdy, tdx);
        var y = new double[planes]; var dx = new double[planes * size];
        GlobalAvgPoolOp.Reference(planes, size, TestData.D(x), y);
        GlobalAvgPoolOp.ReferenceBackward(planes, size, g, dx);
        Tol.Reduction.AssertClose(ty.ToArray(), y, "global avg y");
        Tol.Elementwise.AssertClose(tdx.ToArray(), dx, "global avg dx");
        var fd = TestData.FiniteDifference(xs =>
        {
            var r = new double[planes];
            GlobalAvgPoolOp.Reference(planes, size, xs, r);
            return TestData.Dot(r, g);
        }, TestData.D(x));
        Tol.FiniteDifference.AssertClose(tdx.ToArray(), fd, "global avg dx vs finite differences");
    }

    [Theory, Backends]
    public void BadWindowsAndShapesNameTheOpAndArgument(string backend)
    {
        Use(backend);
        using var x = D.Zeros(1, 2, 5, 5);
        using var y = D.Zeros(1, 2, 2, 2);
        using var idx = D.Allocate([1, 2, 2, 2], DType.Int32);
        using var idxF = D.Zeros(1, 2, 2, 2);
        using var x3 = D.Zeros(2, 5, 5);

        var pad = Assert.Throws<ArgumentOutOfRangeException>(() => D.MaxPool2dForward(x, y, idx, 3, 3, 2, 2, 2, 0));
        Assert.Equal("padH", pad.ParamName);
        Assert.Contains("MaxPool2dForward", pad.Message); Assert.Contains("[0, 1]", pad.Message); Assert.Contains("got 2", pad.Message);
        var k = Assert.Throws<ArgumentOutOfRangeException>(() => D.AvgPool2dForward(x, y, 0, 2, 2, 2));
        Assert.Equal("kernelH", k.ParamName); Assert.Contains("AvgPool2dForward", k.Message);
        var s = Assert.Throws<ArgumentOutOfRangeException>(() => D.AvgPool2dBackward(y, x, 2, 2, 2, 0));
        Assert.Equal("strideW", s.ParamName); Assert.Contains("AvgPool2dBackward", s.Message);
        var big = Assert.Throws<ArgumentException>(() => D.MaxPool2dForward(x, y, idx, 6, 2, 2, 2));
        Assert.Contains("MaxPool2dForward", big.Message); Assert.Contains("(5, 5)", big.Message); Assert.Contains("(6, 2)", big.Message);

        var shape = Assert.Throws<ShapeMismatchException>(() => D.MaxPool2dForward(x, y, idx, 3, 3, 1, 1));   // y must be (1, 2, 3, 3)
        Assert.Equal("MaxPool2dForward", shape.Operation); Assert.Contains("(1, 2, 3, 3)", shape.Message); Assert.Contains("'y'", shape.Message);
        var dtype = Assert.Throws<ArgumentException>(() => D.MaxPool2dBackward(y, idxF, x, 2, 2, 2, 2));
        Assert.Equal("indices", dtype.ParamName); Assert.Contains("Int32", dtype.Message);
        var rank = Assert.Throws<ShapeMismatchException>(() => D.AvgPool2dForward(x3, y, 2, 2, 2, 2));
        Assert.Equal("AvgPool2dForward", rank.Operation); Assert.Contains("(N, C, H, W)", rank.Message);
        using var empty = D.Zeros(1, 2, 0, 5);
        var e = Assert.Throws<ShapeMismatchException>(() => D.MaxPool2dForward(empty, y, idx, 2, 2, 2, 2, 1, 1));
        Assert.Equal("MaxPool2dForward", e.Operation); Assert.Contains("(1, 2, 0, 5)", e.Message); Assert.Contains("'x'", e.Message);
        var g = Assert.Throws<ShapeMismatchException>(() => D.GlobalAvgPoolForward(x, y));
        Assert.Equal("GlobalAvgPoolForward", g.Operation); Assert.Contains("(1, 2)", g.Message);
    }

    [Theory, Backends]
    public void EmptyBatchIsANoOp(string backend)
    {
        Use(backend);
        using var x = D.Zeros(0, 3, 4, 4); using var y = D.Zeros(0, 3, 2, 2); using var idx = D.Allocate([0, 3, 2, 2], DType.Int32);
        long before = D.Counters.Launches;
        D.MaxPool2dForward(x, y, idx, 2, 2, 2, 2); D.MaxPool2dBackward(y, idx, x, 2, 2, 2, 2);
        D.AvgPool2dForward(x, y, 2, 2, 2, 2); D.AvgPool2dBackward(y, x, 2, 2, 2, 2);
        Assert.Equal(before, D.Counters.Launches);
    }

    [Theory, Backends]
    public void LaunchesAreCounted(string backend)
    {
        Use(backend);
        using var x = D.Zeros(1, 1, 4, 4); using var y = D.Zeros(1, 1, 2, 2); using var idx = D.Allocate([1, 1, 2, 2], DType.Int32);
        using var gy = D.Zeros(1, 1);
        long before = D.Counters.Launches;
        D.MaxPool2dForward(x, y, idx, 2, 2, 2, 2); D.MaxPool2dBackward(y, idx, x, 2, 2, 2, 2);
        D.AvgPool2dForward(x, y, 2, 2, 2, 2); D.AvgPool2dBackward(y, x, 2, 2, 2, 2);
        D.GlobalAvgPoolForward(x, gy); D.GlobalAvgPoolBackward(gy, x);
        Assert.Equal(before + 6, D.Counters.Launches);
    }
}

