using GpuNet.Kernels;

namespace GpuNet.Tests;

public sealed class DepthwiseConv2dTests(BackendFixture f) : DeviceTestBase(f), IClassFixture<BackendFixture>
{
    // (N, C, H, W, R, S, strideH, strideW, padH, padW, dilationH, dilationW, bias)
    public static TheoryData<int[]> Cases() => new(
        [2, 3, 5, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1],      // 3x3 same padding, odd sizes
        [1, 1, 4, 4, 3, 3, 1, 1, 0, 0, 1, 1, 0],      // one channel, batch 1, no padding, no bias
        [2, 2, 7, 9, 3, 3, 2, 2, 1, 1, 1, 1, 1],      // stride 2 with odd input
        [1, 3, 9, 8, 5, 5, 1, 1, 2, 2, 1, 1, 1],      // 5x5, padding 2
        [2, 2, 9, 11, 3, 3, 1, 1, 2, 2, 2, 2, 0],     // dilation 2
        [1, 2, 6, 13, 2, 3, 2, 3, 0, 1, 1, 2, 1],     // mixed: non-square filter, strides, padding, dilation
        [3, 1, 17, 19, 3, 3, 1, 2, 1, 0, 1, 1, 1],    // row longer than one vector, stride only along W
        [1, 2, 3, 3, 1, 1, 1, 1, 0, 0, 1, 1, 1],      // 1x1 filter
        [2, 2, 4, 5, 1, 3, 1, 1, 1, 2, 1, 1, 1],      // padding wider than the filter (rows of y read only padding)
        [1, 1, 3, 4, 2, 2, 1, 1, 2, 2, 1, 1, 0]);     // ... on both axes

    private static DepthwiseParams Args(int[] k) => DepthwiseParams.Create(k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7], k[8], k[9], k[10], k[11], k[12] != 0);

    private static string Name(int[] k) => $"[{string.Join(",", k)}]";

    [Theory, Backends(nameof(Cases))]
    public void ForwardAndBackwardMatchReference(string backend, int[] k)
    {
        Use(backend);
        var a = Args(k);
        int xl = a.N * a.C * a.H * a.W, yl = a.N * a.C * a.P * a.Q, wl = a.C * a.R * a.S;
        var x = TestData.Uniform(1, xl); var w = TestData.Uniform(2, wl); var b = TestData.Uniform(3, a.C);
        var dy = TestData.Uniform(4, yl); var dw0 = TestData.Uniform(5, wl); var db0 = TestData.Uniform(6, a.C);
        using var tx = D.FromArray(x, a.N, a.C, a.H, a.W); using var tw = D.FromArray(w, a.C, 1, a.R, a.S); using var tb = D.FromArray(b);
        using var ty = D.FromArray(Enumerable.Repeat(7f, yl).ToArray(), a.N, a.C, a.P, a.Q);
        using var tdy = D.FromArray(dy, a.N, a.C, a.P, a.Q); using var tdx = D.FromArray(Enumerable.Repeat(7f, xl).ToArray(), a.N, a.C, a.H, a.W);
        using var tdw = D.FromArray(dw0, a.C, 1, a.R, a.S); using var tdb = D.FromArray(db0);
        bool bias = a.HasBias != 0;

        D.DepthwiseConv2dForward(tx, tw, bias ? tb : null, ty, a.StrideH, a.StrideW, a.PadH, a.PadW, a.DilationH, a.DilationW);
        var y = new double[yl];
        DepthwiseConv2dOp.Reference(a, TestData.D(x), TestData.D(w), bias ? TestData.D(b) : [], y);
        var tol = Tol.ForGemm(a.R * a.S);
        tol.AssertClose(ty.ToArray(), y, $"y {Name(k)}");

        D.DepthwiseConv2dBackwardData(tdy, tw, tdx, a.StrideH, a.StrideW, a.PadH, a.PadW, a.DilationH, a.DilationW);
        D.DepthwiseConv2dBackwardFilter(tx, tdy, tdw, bias ? tdb : null, a.StrideH, a.StrideW, a.PadH, a.PadW, a.DilationH, a.DilationW);
        double[] dx = new double[xl], dw = TestData.D(dw0), db = TestData.D(db0);
        DepthwiseConv2dOp.ReferenceBackward(a, TestData.D(x), TestData.D(w), TestData.D(dy), dx, dw, bias ? db : []);
        tol.AssertClose(tdx.ToArray(), dx, $"dx (=) {Name(k)}");
        var tolSum = Tol.ForGemm(a.N * a.P * a.Q);
        tolSum.AssertClose(tdw.ToArray(), dw, $"dw (+=) {Name(k)}");
        tolSum.AssertClose(tdb.ToArray(), db, $"db (+=) {Name(k)}");   // db0 untouched without bias
    }

    /// <summary>One device launch per call everywhere; on an accelerator one kernel per pass for the whole batch.</summary>
    [Theory, Backends]
    public void EachPassIsOneKernelLaunch(string backend)
    {
        Use(backend);
        using var x = D.Zeros(5, 3, 7, 6); using var w = D.Zeros(3, 1, 3, 3); using var b = D.Zeros(3);
        using var y = D.Zeros(5, 3, 4, 3); using var dx = D.Zeros(5, 3, 7, 6);
        int perKernel = D.IsHost ? 0 : 1;
        long launches = D.Counters.Launches, kernels = D.Counters.KernelLaunches;
        D.DepthwiseConv2dForward(x, w, b, y, 2, 2, 1, 1);
        Assert.Equal((launches + 1, kernels + perKernel), (D.Counters.Launches, D.Counters.KernelLaunches));
        D.DepthwiseConv2dBackwardData(y, w, dx, 2, 2, 1, 1);
        Assert.Equal((launches + 2, kernels + 2 * perKernel), (D.Counters.Launches, D.Counters.KernelLaunches));
        D.DepthwiseConv2dBackwardFilter(x, y, w, b, 2, 2, 1, 1);
        Assert.Equal((launches + 3, kernels + 3 * perKernel), (D.Counters.Launches, D.Counters.KernelLaunches));
    }

    [Theory]
    [BackendData(new[] { 1, 2, 4, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1 })]
    [BackendData(new[] { 2, 1, 5, 5, 3, 2, 2, 2, 1, 0, 1, 2, 1 })]
    public void BackwardMatchesFiniteDifferences(string backend, int[] k)
    {
        Use(backend);
        var a = Args(k);
        int xl = a.N * a.C * a.H * a.W, yl = a.N * a.C * a.P * a.Q, wl = a.C * a.R * a.S;
        var x = TestData.Uniform(11, xl); var w = TestData.Uniform(12, wl); var b = TestData.Uniform(13, a.C); var dy = TestData.Uniform(14, yl);
        using var tx = D.FromArray(x, a.N, a.C, a.H, a.W); using var tw = D.FromArray(w, a.C, 1, a.R, a.S);
        using var tdy = D.FromArray(dy, a.N, a.C, a.P, a.Q); using var tdx = D.Zeros(a.N, a.C, a.H, a.W);
        using var tdw = D.Zeros(a.C, 1, a.R, a.S); using var tdb = D.Zeros(a.C);
        D.DepthwiseConv2dBackwardData(tdy, tw, tdx, a.StrideH, a.StrideW, a.PadH, a.PadW, a.DilationH, a.DilationW);
        D.DepthwiseConv2dBackwardFilter(tx, tdy, tdw, tdb, a.StrideH, a.StrideW, a.PadH, a.PadW, a.DilationH, a.DilationW);

        double[] xd = TestData.D(x), wd = TestData.D(w), bd = TestData.D(b), dyd = TestData.D(dy);
        double Loss(double[] xv, double[] wv, double[] bv)
        {
            var yv = new double[yl];
            DepthwiseConv2dOp.Reference(a, xv, wv, bv, yv);
            return TestData.Dot(yv, dyd);
        }
        Tol.FiniteDifference.AssertClose(tdx.ToArray(), TestData.FiniteDifference(v => Loss(v, wd, bd), xd), "dx vs finite differences");
        Tol.FiniteDifference.AssertClose(tdw.ToArray(), TestData.FiniteDifference(v => Loss(xd, v, bd), wd), "dw vs finite differences");
        Tol.FiniteDifference.AssertClose(tdb.ToArray(), TestData.FiniteDifference(v => Loss(xd, wd, v), bd), "db vs finite differences");
    }

    [Theory, Backends]
    public void ParameterGradientsAccumulateAndDataGradientOverwrites(string backend)
    {
        Use(backend);
        var a = DepthwiseParams.Create(2, 3, 6, 5, 3, 3, 1, 1, 1, 1, 1, 1, true);
        int xl = a.N * a.C * a.H * a.W, yl = a.N * a.C * a.P * a.Q;
        var x = TestData.Uniform(21, xl); var w = TestData.Uniform(22, 27); var dy = TestData.Uniform(23, yl);
        using var tx = D.FromArray(x, 2, 3, 6, 5); using var tw = D.FromArray(w, 3, 1, 3, 3); using var tdy = D.FromArray(dy, 2, 3, 6, 5);
        using var tdx = D.Zeros(2, 3, 6, 5); using var tdw = D.Zeros(3, 1, 3, 3); using var tdb = D.Zeros(3);
        for (int i = 0; i < 2; i++)
        {
            D.DepthwiseConv2dBackwardData(tdy, tw, tdx, 1, 1, 1, 1);
            D.DepthwiseConv2dBackwardFilter(tx, tdy, tdw, tdb, 1, 1, 1, 1);
        }
        double[] dx = new double[xl], dw = new double[27], db = new double[3];
        DepthwiseConv2dOp.ReferenceBackward(a, TestData.D(x), TestData.D(w), TestData.D(dy), dx, dw, db);
        Tol.ForGemm(9).AssertClose(tdx.ToArray(), dx, "dx after two calls (overwritten, not doubled)");
        for (int i = 0; i < 27; i++) dw[i] *= 2;
        for (int i = 0; i < 3; i++) db[i] *= 2;
        Tol.ForGemm(2 * yl).AssertClose(tdw.ToArray(), dw, "dw after two calls (accumulated)");
        Tol.ForGemm(2 * yl).AssertClose(tdb.ToArray(), db, "db after two calls (accumulated)");
    }

    // Host: above the parallel threshold, so planes (forward, dx) and channels (dw) run on several threads.
    [Theory, Backends]
    public void LargeInputMatchesReference(string backend)
    {
        Use(backend);
        var a = D.IsHost ? DepthwiseParams.Create(4, 16, 28, 28, 3, 3, 1, 1, 1, 1, 1, 1, true)
                         : DepthwiseParams.Create(2, 2, 9, 10, 3, 3, 2, 1, 1, 1, 1, 1, true);
        int xl = a.N * a.C * a.H * a.W, yl = a.N * a.C * a.P * a.Q, wl = a.C * 9;
        var x = TestData.Uniform(31, xl); var w = TestData.Uniform(32, wl); var b = TestData.Uniform(33, a.C); var dy = TestData.Uniform(34, yl);
        using var tx = D.FromArray(x, a.N, a.C, a.H, a.W); using var tw = D.FromArray(w, a.C, 1, 3, 3); using var tb = D.FromArray(b);
        using var ty = D.Zeros(a.N, a.C, a.P, a.Q); using var tdy = D.FromArray(dy, a.N, a.C, a.P, a.Q);
        using var tdx = D.Zeros(a.N, a.C, a.H, a.W); using var tdw = D.Zeros(a.C, 1, 3, 3); using var tdb = D.Zeros(a.C);
        D.DepthwiseConv2dForward(tx, tw, tb, ty, a.StrideH, a.StrideW, 1, 1);
        D.DepthwiseConv2dBackwardData(tdy, tw, tdx, a.StrideH, a.StrideW, 1, 1);
        D.DepthwiseConv2dBackwardFilter(tx, tdy, tdw, tdb, a.StrideH, a.StrideW, 1, 1);
        double[] y = new double[yl], dx = new double[xl], dw = new double[wl], db = new double[a.C];
        DepthwiseConv2dOp.Reference(a, TestData.D(x), TestData.D(w), TestData.D(b), y);
        DepthwiseConv2dOp.ReferenceBackward(a, TestData.D(x), TestData.D(w), TestData.D(dy), dx, dw, db);
        Tol.ForGemm(9).AssertClose(ty.ToArray(), y, "large y");
        Tol.ForGemm(9).AssertClose(tdx.ToArray(), dx, "large dx");
        Tol.ForGemm(a.N * a.P * a.Q).AssertClose(tdw.ToArray(), dw, "large dw");
        Tol.ForGemm(a.N * a.P * a.Q).AssertClose(tdb.ToArray(), db, "large db");
    }

    [Theory, Backends]
    public void BadArgumentsNameTheOpArgumentAndShapes(string backend)
    {
        Use(backend);
        using var x = D.Zeros(2, 3, 5, 5); using var w = D.Zeros(3, 1, 3, 3); using var b = D.Zeros(3); using var y = D.Zeros(2, 3, 5, 5);
        using var w4 = D.Zeros(4, 1, 3, 3); using var w2 = D.Zeros(3, 2, 3, 3); using var b4 = D.Zeros(4); using var y3 = D.Zeros(2, 3, 3, 3);
        using var x3 = D.Zeros(2, 3, 25);

        var e = Assert.Throws<ShapeMismatchException>(() => D.DepthwiseConv2dForward(x3, w, b, y, 1, 1, 1, 1));
        Assert.Equal("DepthwiseConv2dForward", e.Operation); Assert.Contains("(2, 3, 25)", e.Message); Assert.Contains("'x'", e.Message);
        e = Assert.Throws<ShapeMismatchException>(() => D.DepthwiseConv2dForward(x, w4, b, y, 1, 1, 1, 1));
        Assert.Contains("(3, 1, R, S)", e.Message); Assert.Contains("(4, 1, 3, 3)", e.Message); Assert.Contains("'w'", e.Message);
        e = Assert.Throws<ShapeMismatchException>(() => D.DepthwiseConv2dForward(x, w2, b, y, 1, 1, 1, 1));
        Assert.Contains("(3, 2, 3, 3)", e.Message);
        e = Assert.Throws<ShapeMismatchException>(() => D.DepthwiseConv2dForward(x, w, b4, y, 1, 1, 1, 1));
        Assert.Contains("'b'", e.Message); Assert.Contains("(3)", e.Message); Assert.Contains("(4)", e.Message);
        e = Assert.Throws<ShapeMismatchException>(() => D.DepthwiseConv2dForward(x, w, b, y3, 1, 1, 1, 1));
        Assert.Contains("'y'", e.Message); Assert.Contains("(2, 3, 5, 5)", e.Message); Assert.Contains("(2, 3, 3, 3)", e.Message);

        var r = Assert.Throws<ArgumentOutOfRangeException>(() => D.DepthwiseConv2dForward(x, w, b, y, 0, 1, 1, 1));
        Assert.Equal("strideH", r.ParamName); Assert.Contains("DepthwiseConv2dForward", r.Message);
        r = Assert.Throws<ArgumentOutOfRangeException>(() => D.DepthwiseConv2dForward(x, w, b, y, 1, 1, -1, 1));
        Assert.Equal("padH", r.ParamName);
        r = Assert.Throws<ArgumentOutOfRangeException>(() => D.DepthwiseConv2dForward(x, w, b, y, 1, 1, 1, 1, 1, 0));
        Assert.Equal("dilationW", r.ParamName);
        r = Assert.Throws<ArgumentOutOfRangeException>(() => D.DepthwiseConv2dForward(x, w, b, y, 1, 1, 0, 0, 3, 1));
        Assert.Contains("smaller than the dilated 3x3 filter", r.Message); Assert.Contains("7x3", r.Message);

        e = Assert.Throws<ShapeMismatchException>(() => D.DepthwiseConv2dBackwardData(y3, w, x, 1, 1, 1, 1));
        Assert.Equal("DepthwiseConv2dBackwardData", e.Operation); Assert.Contains("'dy'", e.Message);
        e = Assert.Throws<ShapeMismatchException>(() => D.DepthwiseConv2dBackwardFilter(x, y, w4, b, 1, 1, 1, 1));
        Assert.Equal("DepthwiseConv2dBackwardFilter", e.Operation); Assert.Contains("'dw'", e.Message);
        e = Assert.Throws<ShapeMismatchException>(() => D.DepthwiseConv2dBackwardFilter(x, y, w, b4, 1, 1, 1, 1));
        Assert.Contains("'db'", e.Message);
    }
}

