using GpuNet.Kernels;

namespace GpuNet.Tests;

public sealed class Conv2dTests(BackendFixture f) : DeviceTestBase(f), IClassFixture<BackendFixture>
{
    /// <summary>One test shape: x (N, C, H, W), w (K, C/G, R, S), stride, padding, dilation, groups, bias.</summary>
    public sealed record Case(int N, int C, int H, int W, int K, int R, int S, Conv2dParams P, bool Bias)
    {
        public Conv2dShape Shape
        {
            get
            {
                int p = Conv2dParams.OutputSize(H, R, P.StrideH, P.PadH, P.DilationH), q = Conv2dParams.OutputSize(W, S, P.StrideW, P.PadW, P.DilationW);
                return new Conv2dShape
                {
                    N = N, C = C, H = H, W = W, K = K, R = R, S = S, P = p, Q = q, StrideH = P.StrideH, StrideW = P.StrideW,
                    PadH = P.PadH, PadW = P.PadW, DilH = P.DilationH, DilW = P.DilationW, Groups = P.Groups,
                };
            }
        }
    }

    // Awkward shapes, tiny enough for ILGPU's CPU simulator.
    private static readonly Dictionary<string, Case> Cases = new()
    {
        ["odd 3x2 pad (1,0)"] = new(2, 3, 7, 6, 4, 3, 2, new Conv2dParams(PadH: 1), true),
        ["stride 2 odd input pad 1"] = new(2, 2, 9, 7, 3, 3, 3, Conv2dParams.Square(stride: 2, padding: 1), true),
        ["5x5 kernel > pad 1"] = new(1, 2, 6, 7, 2, 5, 5, Conv2dParams.Square(padding: 1), true),
        ["dilation 2 pad 2"] = new(2, 2, 8, 7, 3, 3, 3, Conv2dParams.Square(padding: 2, dilation: 2), false),
        ["groups 2 pad 1"] = new(2, 4, 5, 5, 6, 3, 3, Conv2dParams.Square(padding: 1, groups: 2), true),
        ["one channel batch 3"] = new(3, 1, 5, 4, 2, 2, 3, new Conv2dParams(), true),
        ["1x1 pointwise"] = new(2, 3, 4, 5, 5, 1, 1, new Conv2dParams(), true),
        ["1x1 pointwise groups 2"] = new(1, 4, 3, 3, 2, 1, 1, new Conv2dParams(Groups: 2), false),
        ["1x1 stride 2"] = new(2, 3, 5, 5, 2, 1, 1, Conv2dParams.Square(stride: 2), true),
        ["mixed stride (2,1) pad (0,2) dil (1,2)"] = new(1, 2, 7, 6, 3, 2, 3, new Conv2dParams(2, 1, 0, 2, 1, 2, 1), true),
        ["kernel = padded input"] = new(1, 1, 3, 3, 1, 5, 5, Conv2dParams.Square(padding: 1), true),
        // Past one tile: K = 70 (two row blocks), C R S = 81 (two filter-gradient column blocks), K R S = 630.
        ["K 70 C 9 past the tiles"] = new(1, 9, 6, 5, 70, 3, 3, Conv2dParams.Square(padding: 1), true),
        // Batch 5: N P Q = 405 splits the filter gradient's reduction (6 splits of 5 tiles) on accelerators.
        ["batch 5 split-K"] = new(5, 3, 9, 9, 4, 3, 3, Conv2dParams.Square(padding: 1), true),
        ["batch 5 groups 2 stride 2 split-K"] = new(5, 4, 13, 12, 6, 3, 3, Conv2dParams.Square(stride: 2, padding: 1, groups: 2), true),
    };

    public static TheoryData<string> CaseNames => new(Cases.Keys);

    [Theory, Backends(nameof(CaseNames))]
    public void ForwardAndBackwardMatchReference(string backend, string name)
    {
        Use(backend);
        AssertForwardAndBackward(D, Cases[name], name, seed: 1);
    }

    /// <summary>
    /// Forward, backward data and backward filter of <paramref name="c"/> on <paramref name="d"/> against the float64
    /// references: y and dx overwrite garbage, dw and db accumulate onto a nonzero start (db untouched without a bias).
    /// Inputs are <see cref="TestData.Uniform"/> streams <paramref name="seed"/> to seed + 7.
    /// </summary>
    internal static void AssertForwardAndBackward(Device d, Case c, string name, int seed)
    {
        var s = c.Shape;
        int xLen = s.N * s.C * s.H * s.W, wLen = s.K * s.Cg * s.R * s.S, yLen = s.N * s.K * s.P * s.Q;
        var x = TestData.Uniform(seed, xLen); var w = TestData.Uniform(seed + 1, wLen); var b = TestData.Uniform(seed + 2, s.K);
        var dy = TestData.Uniform(seed + 3, yLen); var dw0 = TestData.Uniform(seed + 4, wLen); var db0 = TestData.Uniform(seed + 5, s.K);
        using var tx = d.FromArray(x, s.N, s.C, s.H, s.W);
        using var tw = d.FromArray(w, s.K, s.Cg, s.R, s.S);
        using var tb = d.FromArray(b, s.K);
        using var ty = d.FromArray(TestData.Uniform(seed + 6, yLen), s.N, s.K, s.P, s.Q);  // garbage: must be overwritten
        using var tdy = d.FromArray(dy, s.N, s.K, s.P, s.Q);
        using var tdx = d.FromArray(TestData.Uniform(seed + 7, xLen), s.N, s.C, s.H, s.W);
        using var tdw = d.FromArray(dw0, s.K, s.Cg, s.R, s.S);
        using var tdb = d.FromArray(db0, s.K);

        d.Conv2dForward(tx, tw, c.Bias ? tb : null, ty, c.P);
        d.Conv2dBackwardData(tdy, tw, tdx, c.P);
        d.Conv2dBackwardFilter(tx, tdy, tdw, c.Bias ? tdb : null, c.P);

        var y = new double[yLen];
        Conv2dOp.Reference(s, TestData.D(x), TestData.D(w), c.Bias ? TestData.D(b) : [], y);
        Tol.ForGemm(s.CgRS + 1).AssertClose(ty.ToArray(), y, $"{name}: y");
        var dx = new double[xLen];
        Conv2dOp.ReferenceBackwardData(s, TestData.D(dy), TestData.D(w), dx);
        Tol.ForGemm(s.Kg * s.R * s.S).AssertClose(tdx.ToArray(), dx, $"{name}: dx");
        var dw = TestData.D(dw0); var db = TestData.D(db0);
        Conv2dOp.ReferenceBackwardFilter(s, TestData.D(x), TestData.D(dy), dw, c.Bias ? db : []);
        Tol.ForGemm(s.N * s.PQ).AssertClose(tdw.ToArray(), dw, $"{name}: dw += (from a nonzero start)");
        Tol.ForGemm(s.N * s.PQ).AssertClose(tdb.ToArray(), c.Bias ? db : TestData.D(db0), $"{name}: db += (untouched without bias)");
    }

    /// <summary>The filter gradient splits its reduction on the batch-5 cases and not on the small ones; the shapes above exercise both.</summary>
    [Fact]
    public void FilterGradientSplitsOnlyLongReductions()
    {
        Assert.Equal((6, 5), Conv2dOp.FilterSplits(Cases["batch 5 split-K"].Shape));
        var grouped = Conv2dOp.FilterSplits(Cases["batch 5 groups 2 stride 2 split-K"].Shape);
        Assert.True(grouped.Splits > 1, $"groups 2: {grouped}");
        Assert.Equal(1, Conv2dOp.FilterSplits(Cases["odd 3x2 pad (1,0)"].Shape).Splits);
        Assert.Equal(0, Conv2dOp.WorkspaceFloats(Cases["odd 3x2 pad (1,0)"].Shape));
        // A large output fills the device without splitting: 512 x 4608 is 576 blocks.
        var big = new Case(2, 512, 7, 7, 512, 3, 3, Conv2dParams.Square(padding: 1), false).Shape;
        Assert.Equal(1, Conv2dOp.FilterSplits(big).Splits);
        // conv1 of mnist-cnn at batch 128: 1 block, N P Q = 100352 = 6272 tiles: 251 splits of 25 tiles.
        var conv1 = new Case(128, 1, 28, 28, 32, 3, 3, Conv2dParams.Square(padding: 1), false).Shape;
        Assert.Equal((251, 25), Conv2dOp.FilterSplits(conv1));
    }

    /// <summary>FastDivmod matches integer division for divisors and dividends at the edges and at random.</summary>
    [Fact]
    public void FastDivmodMatchesDivision()
    {
        var rng = new Random(5);
        int[] divisors = [1, 2, 3, 5, 7, 9, 16, 25, 49, 196, 784, 1000, 65535, 65536, 65537, 1 << 20, (1 << 30) + 1, int.MaxValue];
        foreach (int d in divisors.Concat(Enumerable.Range(0, 200).Select(_ => rng.Next(1, int.MaxValue))))
        {
            var f = new FastDivmod(d);
            foreach (int n in new[] { 0, 1, d - 1, d, d + 1, int.MaxValue, int.MaxValue - 1, int.MaxValue / d * d, int.MaxValue / d * d - 1 }
                .Concat(Enumerable.Range(0, 50).Select(_ => rng.Next(0, int.MaxValue))))
            {
                if (n < 0) continue;
                Assert.True(n / d == f.Div(n), $"{n} / {d}: got {f.Div(n)}, expected {n / d}");
            }
        }
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new FastDivmod(0));
        Assert.Equal("divisor", e.ParamName);
    }

    public static TheoryData<string> FiniteDifferenceCases => ["stride 2 odd input pad 1", "groups 2 pad 1", "mixed stride (2,1) pad (0,2) dil (1,2)", "batch 5 split-K"];

    /// <summary>dx, dw, db against central finite differences in float64 of L = sum(dy * conv(x, w) + b).</summary>
    [Theory, Backends(nameof(FiniteDifferenceCases))]
    public void BackwardMatchesFiniteDifferences(string backend, string name)
    {
        Use(backend);
        var c = Cases[name];
        var s = c.Shape;
        int xLen = s.N * s.C * s.H * s.W, wLen = s.K * s.Cg * s.R * s.S, yLen = s.N * s.K * s.P * s.Q;
        var x = TestData.Uniform(11, xLen); var w = TestData.Uniform(12, wLen); var b = TestData.Uniform(13, s.K);
        var dy = TestData.Uniform(14, yLen);
        var dyD = TestData.D(dy);
        double Loss(double[] xd, double[] wd, double[] bd)
        {
            var y = new double[yLen];
            Conv2dOp.Reference(s, xd, wd, bd, y);
            return TestData.Dot(y, dyD);
        }
        var fdx = TestData.FiniteDifference(xd => Loss(xd, TestData.D(w), TestData.D(b)), TestData.D(x));
        var fdw = TestData.FiniteDifference(wd => Loss(TestData.D(x), wd, TestData.D(b)), TestData.D(w));
        var fdb = TestData.FiniteDifference(bd => Loss(TestData.D(x), TestData.D(w), bd), TestData.D(b));

        using var tx = D.FromArray(x, s.N, s.C, s.H, s.W);
        using var tw = D.FromArray(w, s.K, s.Cg, s.R, s.S);
        using var tdy = D.FromArray(dy, s.N, s.K, s.P, s.Q);
        using var tdx = D.Zeros(s.N, s.C, s.H, s.W);
        using var tdw = D.Zeros(s.K, s.Cg, s.R, s.S);
        using var tdb = D.Zeros(s.K);
        D.Conv2dBackwardData(tdy, tw, tdx, c.P);
        D.Conv2dBackwardFilter(tx, tdy, tdw, tdb, c.P);
        Tol.FiniteDifference.AssertClose(tdx.ToArray(), fdx, $"{name}: dx vs finite differences");
        Tol.FiniteDifference.AssertClose(tdw.ToArray(), fdw, $"{name}: dw vs finite differences");
        Tol.FiniteDifference.AssertClose(tdb.ToArray(), fdb, $"{name}: db vs finite differences");
    }

    [Theory, Backends]
    public void FilterGradientsAccumulateAndDataGradientOverwrites(string backend)
    {
        Use(backend);
        var c = Cases["groups 2 pad 1"];
        var s = c.Shape;
        int xLen = s.N * s.C * s.H * s.W, yLen = s.N * s.K * s.P * s.Q;
        using var tx = D.FromArray(TestData.Uniform(21, xLen), s.N, s.C, s.H, s.W);
        using var tw = D.FromArray(TestData.Uniform(22, s.K * s.CgRS), s.K, s.Cg, s.R, s.S);
        using var tdy = D.FromArray(TestData.Uniform(23, yLen), s.N, s.K, s.P, s.Q);
        using var tdw = D.Zeros(s.K, s.Cg, s.R, s.S);
        using var tdb = D.Zeros(s.K);
        using var tdx = D.Zeros(s.N, s.C, s.H, s.W);
        D.Conv2dBackwardFilter(tx, tdy, tdw, tdb, c.P);
        D.Conv2dBackwardData(tdy, tw, tdx, c.P);
        var dw1 = tdw.ToArray(); var db1 = tdb.ToArray(); var dx1 = tdx.ToArray();
        D.Conv2dBackwardFilter(tx, tdy, tdw, tdb, c.P);
        D.Conv2dBackwardData(tdy, tw, tdx, c.P);
        Tol.Elementwise.AssertClose(tdw.ToArray(), Array.ConvertAll(dw1, v => 2.0 * v), "dw after two calls = 2 x one call");
        Tol.Elementwise.AssertClose(tdb.ToArray(), Array.ConvertAll(db1, v => 2.0 * v), "db after two calls = 2 x one call");
        Tol.Elementwise.AssertClose(tdx.ToArray(), TestData.D(dx1), "dx after two calls = one call");
    }

    [Theory, Backends]
    public void OutputSizeFollowsTheFormula(string backend)
    {
        Use(backend);
        Assert.Equal(28, Conv2dParams.OutputSize(28, 3, 1, 1, 1));
        Assert.Equal(4, Conv2dParams.OutputSize(7, 3, 2, 1, 1));
        Assert.Equal(1, Conv2dParams.OutputSize(5, 3, 1, 0, 2));
        Assert.Equal(0, Conv2dParams.OutputSize(4, 5, 1, 0, 1));
        Assert.Equal(3, Conv2dParams.OutputSize(6, 1, 2, 0, 1));
        Assert.Equal([2, 8, 14, 14], Conv2dParams.Square(stride: 2, padding: 1).OutputShape([2, 3, 28, 28], [8, 3, 3, 3]));
        var p = new Conv2dParams();
        Assert.Equal((1, 1, 0, 0, 1, 1, 1), (p.StrideH, p.StrideW, p.PadH, p.PadW, p.DilationH, p.DilationW, p.Groups));
    }

    [Theory, Backends]
    public void InvalidArgumentsNameTheArgumentExpectedAndActual(string backend)
    {
        Use(backend);
        using var x = D.Zeros(2, 4, 5, 5);
        using var w = D.Zeros(6, 2, 3, 3);
        using var y = D.Zeros(2, 6, 5, 5);
        using var b = D.Zeros(6);
        var p = Conv2dParams.Square(padding: 1, groups: 2);

        var e0 = Assert.Throws<ArgumentOutOfRangeException>(() => D.Conv2dForward(x, w, b, y, default));
        Assert.Equal("p", e0.ParamName);
        Assert.Contains("p.StrideH must be >= 1, got 0", e0.Message);

        var e1 = Assert.Throws<ArgumentException>(() => D.Conv2dForward(x, w, b, y, p with { Groups = 3 }));
        Assert.Equal("p", e1.ParamName);
        Assert.Contains("p.Groups = 3", e1.Message);
        Assert.Contains("C = 4", e1.Message);

        var e2 = Assert.Throws<ShapeMismatchException>(() => D.Conv2dForward(x, w, b, y, p with { StrideH = 2 }));
        Assert.Equal("Conv2dForward", e2.Operation);
        Assert.Equal("(2, 6, 3, 5)", e2.Expected);
        Assert.Equal("(2, 6, 5, 5)", e2.Actual);

        using var w4 = D.Zeros(6, 4, 3, 3);
        var e3 = Assert.Throws<ShapeMismatchException>(() => D.Conv2dForward(x, w4, b, y, p));
        Assert.Contains("'w'", e3.Message);
        Assert.Equal("(6, 4, 3, 3)", e3.Actual);

        var e4 = Assert.Throws<ArgumentException>(() => D.Conv2dForward(x, w, b, y, Conv2dParams.Square(groups: 2, dilation: 3)));
        Assert.Contains("does not fit", e4.Message);
        Assert.Equal("x", e4.ParamName);

        using var b5 = D.Zeros(5);
        var e5 = Assert.Throws<ShapeMismatchException>(() => D.Conv2dForward(x, w, b5, y, p));
        Assert.Equal("(6)", e5.Expected);

        using var x3 = D.Zeros(2, 4, 5);
        var e6 = Assert.Throws<ShapeMismatchException>(() => D.Conv2dBackwardData(y, w, x3, p));
        Assert.Contains("'dx'", e6.Message);

        var e7 = Assert.Throws<ShapeMismatchException>(() => D.Conv2dBackwardFilter(x, x, w, null, p));
        Assert.Equal("Conv2dBackwardFilter", e7.Operation);
        Assert.Contains("'dy'", e7.Message);

        using var big = D.Zeros(2, 6, 5, 5);
        using var alias = big.Slice(0, 2, 4, 5, 5);
        var e8 = Assert.Throws<ArgumentException>(() => D.Conv2dBackwardData(big, w, alias, p));
        Assert.Contains("overlaps", e8.Message);

        var e9 = Assert.Throws<ArgumentOutOfRangeException>(() => D.Conv2dBackwardFilter(x, y, w, b, p with { PadW = -1 }));
        Assert.Contains("p.PadW must be >= 0, got -1", e9.Message);
    }

    /// <summary>
    /// One device launch per call everywhere; on an accelerator one kernel per pass for the whole batch (the filter
    /// gradient two when it splits its reduction), whatever the batch, groups or bias.
    /// </summary>
    [Theory, Backends]
    public void LaunchesAreCounted(string backend)
    {
        Use(backend);
        foreach (var name in new[] { "odd 3x2 pad (1,0)", "batch 5 split-K", "batch 5 groups 2 stride 2 split-K", "1x1 pointwise" })
        {
            var c = Cases[name];
            var s = c.Shape;
            using var x = D.Zeros(s.N, s.C, s.H, s.W);
            using var w = D.Zeros(s.K, s.Cg, s.R, s.S);
            using var b = D.Zeros(s.K);
            using var y = D.Zeros(s.N, s.K, s.P, s.Q);
            using var dx = D.Zeros(s.N, s.C, s.H, s.W);
            int filterKernels = Conv2dOp.KernelLaunchesOf(s, backwardFilter: true);
            Assert.Equal(name.Contains("split-K") ? 2 : 1, filterKernels);
            long before = D.Counters.Launches, kernels = D.Counters.KernelLaunches;
            D.Conv2dForward(x, w, c.Bias ? b : null, y, c.P);
            Assert.Equal(before + 1, D.Counters.Launches);
            Assert.Equal(kernels + (D.IsHost ? 0 : 1), D.Counters.KernelLaunches);
            D.Conv2dBackwardData(y, w, dx, c.P);
            Assert.Equal(before + 2, D.Counters.Launches);
            Assert.Equal(kernels + (D.IsHost ? 0 : 2), D.Counters.KernelLaunches);
            D.Conv2dBackwardFilter(x, y, w, c.Bias ? b : null, c.P);
            Assert.Equal(before + 3, D.Counters.Launches);
            Assert.Equal(kernels + (D.IsHost ? 0 : 2 + filterKernels), D.Counters.KernelLaunches);
        }
    }

    // The host device's own paths: larger shapes and the allocation-free steady state.
    /// <summary>Larger shapes through the parallel host paths (samples in parallel, GEMM in parallel) against float64.</summary>
    [Theory]
    [BackendData(8, 16, 12, 12, 24, 3, 1, 1, 1, Only = "cpu")]   // batch split over threads, 3x3 pad 1
    [BackendData(3, 16, 11, 13, 32, 3, 2, 1, 2, Only = "cpu")]   // odd batch: parallel GEMM, stride 2, groups 2
    [BackendData(6, 32, 9, 9, 16, 1, 1, 0, 1, Only = "cpu")]     // pointwise
    public void ParallelHostPathsMatchReference(string backend, int n, int c, int h, int w, int k, int r, int stride, int pad, int groups)
    {
        Use(backend);
        var p = Conv2dParams.Square(stride, pad, 1, groups);
        var cs = new Case(n, c, h, w, k, r, r, p, true);
        var s = cs.Shape;
        int xLen = n * c * h * w, wLen = k * s.CgRS, yLen = n * k * s.PQ;
        var x = TestData.Uniform(31, xLen); var wt = TestData.Uniform(32, wLen); var b = TestData.Uniform(33, k); var dy = TestData.Uniform(34, yLen);
        using var tx = D.FromArray(x, n, c, h, w); using var tw = D.FromArray(wt, k, s.Cg, r, r); using var tb = D.FromArray(b, k);
        using var ty = D.Zeros(n, k, s.P, s.Q); using var tdy = D.FromArray(dy, n, k, s.P, s.Q);
        using var tdx = D.Zeros(n, c, h, w); using var tdw = D.Zeros(k, s.Cg, r, r); using var tdb = D.Zeros(k);
        D.Conv2dForward(tx, tw, tb, ty, p);
        D.Conv2dBackwardData(tdy, tw, tdx, p);
        D.Conv2dBackwardFilter(tx, tdy, tdw, tdb, p);
        var yr = new double[yLen]; Conv2dOp.Reference(s, TestData.D(x), TestData.D(wt), TestData.D(b), yr);
        var dxr = new double[xLen]; Conv2dOp.ReferenceBackwardData(s, TestData.D(dy), TestData.D(wt), dxr);
        var dwr = new double[wLen]; var dbr = new double[k]; Conv2dOp.ReferenceBackwardFilter(s, TestData.D(x), TestData.D(dy), dwr, dbr);
        Tol.ForGemm(s.CgRS + 1).AssertClose(ty.ToArray(), yr, "y");
        Tol.ForGemm(s.Kg * r * r).AssertClose(tdx.ToArray(), dxr, "dx");
        Tol.ForGemm(n * s.PQ).AssertClose(tdw.ToArray(), dwr, "dw");
        Tol.ForGemm(n * s.PQ).AssertClose(tdb.ToArray(), dbr, "db");
    }

    /// <summary>After a warm-up, forward and both backward calls allocate no managed memory on the calling thread.</summary>
    [Theory, Backends(Only = "cpu")]
    public void SteadyStateAllocatesNothing(string backend)
    {
        Use(backend);
        var p = Conv2dParams.Square(padding: 1);
        using var x = D.FromArray(TestData.Uniform(41, 8 * 8 * 10 * 10), 8, 8, 10, 10);
        using var w = D.FromArray(TestData.Uniform(42, 16 * 8 * 9), 16, 8, 3, 3);
        using var b = D.Zeros(16); using var y = D.Zeros(8, 16, 10, 10); using var dx = D.Zeros(8, 8, 10, 10);
        using var dw = D.Zeros(16, 8, 3, 3); using var db = D.Zeros(16);
        long grew = 0;
        for (int i = 0; i < 3; i++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            D.Conv2dForward(x, w, b, y, p);
            D.Conv2dBackwardData(y, w, dx, p);
            D.Conv2dBackwardFilter(x, y, dw, db, p);
            grew = GC.GetAllocatedBytesForCurrentThread() - before;
        }
        Assert.Equal(0, grew);
    }
}
