using GpuNet.Kernels;

namespace GpuNet.Tests;

public sealed class GemmTests(BackendFixture f) : DeviceTestBase(f), IClassFixture<BackendFixture>
{
    // (M, N, K): ones, primes, 3/17/33/129/130 across the edges of the 128 x 64 x 8 block tile, exact tiles, M < K,
    // K >> M N (split-K: 3, 14, 16 and 4 splits by GemmOp.ChooseSplit), contiguous dimensions that are and are not
    // multiples of 4 (128-bit or scalar loads; { 132, 68, 36 } and { 20, 36, 1024 } take 128-bit loads everywhere).
    public static TheoryData<int, int, int> Shapes => new()
    {
        { 1, 1, 1 }, { 1, 7, 3 }, { 5, 1, 9 }, { 17, 13, 29 }, { 3, 17, 33 }, { 33, 3, 17 }, { 129, 3, 5 }, { 3, 130, 7 },
        { 130, 129, 9 }, { 128, 64, 16 }, { 132, 68, 36 }, { 3, 5, 200 }, { 2, 3, 1000 }, { 20, 36, 1024 }, { 17, 33, 300 },
    };

    private static readonly (bool A, bool B)[] Transposes = [(false, false), (false, true), (true, false), (true, true)];

    /// <summary>Runs the device GEMM on fresh tensors and returns C; a is (M, K) or (K, M), b is (K, N) or (N, K).</summary>
    private float[] Run(bool ta, bool tb, int m, int n, int k, float[] a, float[] b, float alpha, float beta, float[] c0,
        float[]? bias, Activation act, float? actAlpha = null)
    {
        using var tA = D.FromArray(a, ta ? [k, m] : [m, k]);
        using var tB = D.FromArray(b, tb ? [n, k] : [k, n]);
        using var tC = D.FromArray(c0, m, n);
        using var tBias = bias is null ? null : D.FromArray(bias);
        D.Gemm(tA, tB, tC, ta, tb, alpha, beta, tBias, act, actAlpha);
        return tC.ToArray();
    }

    private static double[] Expected(bool ta, bool tb, int m, int n, int k, float[] a, float[] b, double alpha, double beta,
        float[] c0, float[]? bias, Activation act, double actAlpha)
    {
        var c = TestData.D(c0);
        GemmOp.Reference(ta, tb, m, n, k, alpha, TestData.D(a), TestData.D(b), beta, c,
            bias is null ? ReadOnlySpan<double>.Empty : TestData.D(bias), act, actAlpha);
        return c;
    }

    [Theory, Backends(nameof(Shapes))]
    public void AllTransposesMatchReference(string backend, int m, int n, int k)
    {
        Use(backend);
        var a = TestData.Uniform(10, m * k); var b = TestData.Uniform(11, k * n);
        var c0 = new float[m * n];
        foreach (var (ta, tb) in Transposes)
        {
            var got = Run(ta, tb, m, n, k, a, b, 1f, 0f, c0, null, Activation.Identity);
            var expected = Expected(ta, tb, m, n, k, a, b, 1, 0, c0, null, Activation.Identity, 0);
            Tol.ForGemm(k).AssertClose(got, expected, $"gemm {(ta ? 'T' : 'N')}{(tb ? 'T' : 'N')} m={m} n={n} k={k}");
        }
    }

    // Crosses the N block tile edge; the second splits K.
    public static TheoryData<int, int, int> NanShapes => new() { { 9, 70, 20 }, { 9, 70, 1000 } };

    [Theory, Backends(nameof(NanShapes))]
    public void BetaZeroDoesNotReadC(string backend, int m, int n, int k)
    {
        Use(backend);
        var a = TestData.Uniform(12, m * k); var b = TestData.Uniform(13, k * n);
        var nan = new float[m * n]; Array.Fill(nan, float.NaN);
        foreach (var (ta, tb) in Transposes)
        {
            var got = Run(ta, tb, m, n, k, a, b, 0.5f, 0f, nan, null, Activation.Identity);
            var expected = Expected(ta, tb, m, n, k, a, b, 0.5, 0, new float[m * n], null, Activation.Identity, 0);
            Tol.ForGemm(k).AssertClose(got, expected, $"beta=0 over NaN C, trans=({ta}, {tb})");
        }
    }

    [Theory]
    [BackendData(1f, 1f)]
    [BackendData(-0.5f, 1f)]
    [BackendData(2f, 0.25f)]
    public void AlphaBetaAccumulate(string backend, float alpha, float beta)
    {
        Use(backend);
        const int m = 17, n = 13, k = 29;
        var a = TestData.Uniform(14, m * k); var b = TestData.Uniform(15, k * n); var c0 = TestData.Uniform(16, m * n);
        foreach (var (ta, tb) in Transposes)
        {
            var got = Run(ta, tb, m, n, k, a, b, alpha, beta, c0, null, Activation.Identity);
            var expected = Expected(ta, tb, m, n, k, a, b, alpha, beta, c0, null, Activation.Identity, 0);
            Tol.ForGemm(k).AssertClose(got, expected, $"alpha={alpha} beta={beta} trans=({ta}, {tb})");
        }
    }

    public static TheoryData<Activation> Activations => new(Enum.GetValues<Activation>());

    [Theory, Backends(nameof(Activations))]
    public void BiasAndActivationEpilogue(string backend, Activation act)
    {
        Use(backend);
        const int m = 6, n = 67, k = 19; // N not a multiple of the block tile
        var a = TestData.Uniform(17, m * k, -1.5f, 1.5f); var b = TestData.Uniform(18, k * n, -1.5f, 1.5f);
        var c0 = TestData.Uniform(19, m * n); var bias = TestData.Uniform(20, n);
        var (ta, tb) = Transposes[(int)act % 4];
        var got = Run(ta, tb, m, n, k, a, b, 0.8f, 0.5f, c0, bias, act);
        var expected = Expected(ta, tb, m, n, k, a, b, 0.8, 0.5, c0, bias, act, ActivationMath.DefaultAlpha(act));
        Tol.ForGemmEpilogue(k).AssertClose(got, expected, $"{act} with bias, trans=({ta}, {tb})");
        Assert.Contains(got, v => v != 0f); // the epilogue wrote something
    }

    [Theory]
    [BackendData(Activation.LeakyRelu, 0.2f)]
    [BackendData(Activation.Elu, 0.5f)]
    public void ActivationAlphaIsPassed(string backend, Activation act, float actAlpha)
    {
        Use(backend);
        const int m = 4, n = 5, k = 3;
        var a = TestData.Uniform(21, m * k); var b = TestData.Uniform(22, k * n); var bias = TestData.Uniform(23, n);
        var c0 = new float[m * n];
        var got = Run(false, false, m, n, k, a, b, 1f, 0f, c0, bias, act, actAlpha);
        var expected = Expected(false, false, m, n, k, a, b, 1, 0, c0, bias, act, actAlpha);
        Assert.Contains(expected, v => v < 0); // the negative branch, where alpha matters, is exercised
        Tol.ForGemmEpilogue(k).AssertClose(got, expected, $"{act} alpha={actAlpha}");
    }

    /// <summary>Split-K: bias, activation and beta = 1 are applied once, after the partial sums (the gradient contract: += once).</summary>
    [Theory, Backends]
    public void SplitKAppliesEpilogueOnce(string backend)
    {
        Use(backend);
        const int m = 5, n = 6, k = 700;
        Assert.True(GemmOp.ChooseSplit(m, n, k).Splits > 1);
        var a = TestData.Uniform(30, m * k); var b = TestData.Uniform(31, k * n);
        var c0 = TestData.Uniform(32, m * n); var bias = TestData.Uniform(33, n);
        foreach (var (ta, tb) in Transposes)
        {
            var got = Run(ta, tb, m, n, k, a, b, 0.8f, 1f, c0, bias, Activation.Gelu);
            var expected = Expected(ta, tb, m, n, k, a, b, 0.8, 1, c0, bias, Activation.Gelu, 0);
            Tol.ForGemmEpilogue(k).AssertClose(got, expected, $"split-K gelu with bias, beta=1, trans=({ta}, {tb})");
        }
    }

    /// <summary>Split-K adds its partial sums in a fixed order: two runs agree bit for bit.</summary>
    [Theory, Backends]
    public void SplitKIsDeterministic(string backend)
    {
        Use(backend);
        const int m = 7, n = 9, k = 1500;
        Assert.True(GemmOp.ChooseSplit(m, n, k).Splits > 1);
        var a = TestData.Uniform(34, m * k); var b = TestData.Uniform(35, k * n);
        var first = Run(false, true, m, n, k, a, b, 1f, 0f, new float[m * n], null, Activation.Identity);
        var second = Run(false, true, m, n, k, a, b, 1f, 0f, new float[m * n], null, Activation.Identity);
        Assert.Equal(first, second);
    }

    // (M, N, K): all multiples of 4, so only the views' offsets rule out 128-bit loads; the second splits K.
    public static TheoryData<int, int, int> UnalignedShapes => new() { { 12, 20, 36 }, { 8, 4, 512 } };

    /// <summary>Operands and output as views at offsets 1, 2, 3 of larger buffers (not 16-byte aligned): scalar loads.</summary>
    [Theory, Backends(nameof(UnalignedShapes))]
    public void UnalignedViewsMatchReference(string backend, int m, int n, int k)
    {
        Use(backend);
        var a = TestData.Uniform(36, m * k); var b = TestData.Uniform(37, k * n); var c0 = TestData.Uniform(38, m * n);
        foreach (var (ta, tb) in Transposes)
        {
            using var bufA = D.FromArray([0f, .. a]); using var bufB = D.FromArray([0f, 0f, .. b]);
            using var bufC = D.FromArray([0f, 0f, 0f, .. c0]);
            using var tA = bufA.Slice(1, ta ? [k, m] : [m, k]);
            using var tB = bufB.Slice(2, tb ? [n, k] : [k, n]);
            using var tC = bufC.Slice(3, m, n);
            D.Gemm(tA, tB, tC, ta, tb, 1.5f, 0.5f);
            var expected = Expected(ta, tb, m, n, k, a, b, 1.5, 0.5, c0, null, Activation.Identity, 0);
            Tol.ForGemm(k).AssertClose(tC.ToArray(), expected, $"unaligned views m={m} n={n} k={k} trans=({ta}, {tb})");
            Assert.Equal(0f, bufC.ToArray()[..3].Max(float.Abs)); // nothing written before the view
        }
    }

    /// <summary>
    /// The split rule: splits cover K's slices exactly with none empty, each of at least MinTilesPerSplit slices, at
    /// most MaxSplits; no split for a full grid or a shallow K; mnist-mlp's fc1 forward (128, 256, 784) splits.
    /// </summary>
    [Fact]
    public void ChooseSplitCoversKWithoutEmptySplits()
    {
        int[] sizes = [1, 3, 17, 64, 128, 130, 256, 784, 1000, 4096, 100_000];
        foreach (int m in sizes) foreach (int n in sizes) foreach (int k in sizes)
        {
            var (splits, per) = GemmOp.ChooseSplit(m, n, k);
            int tiles = (k + GemmOp.BlockK - 1) / GemmOp.BlockK;
            long groups = (long)((m + GemmOp.BlockM - 1) / GemmOp.BlockM) * ((n + GemmOp.BlockN - 1) / GemmOp.BlockN);
            string at = $"(M, N, K) = ({m}, {n}, {k}): {splits} splits of {per} slices";
            Assert.True(splits >= 1 && splits <= GemmOp.MaxSplits, at);
            Assert.True((long)splits * per >= tiles && (long)(splits - 1) * per < tiles, at);
            if (splits > 1) Assert.True(per >= GemmOp.MinTilesPerSplit && groups < GemmOp.SplitTargetGroups, at);
            if (groups >= GemmOp.SplitTargetGroups || tiles < 2 * GemmOp.MinTilesPerSplit) Assert.True(splits == 1, at);
        }
        Assert.True(GemmOp.ChooseSplit(128, 256, 784).Splits > 1);
    }

    [Theory, Backends]
    public void EmptyInnerDimensionGivesEpilogueOfBetaC(string backend)
    {
        Use(backend);
        const int m = 3, n = 4;
        var c0 = TestData.Uniform(24, m * n); var bias = TestData.Uniform(25, n);
        using var a = D.Zeros(m, 0); using var b = D.Zeros(0, n);
        using var c = D.FromArray(c0, m, n); using var tBias = D.FromArray(bias);
        D.Gemm(a, b, c, beta: 2f, bias: tBias, activation: Activation.Relu);
        var expected = Expected(false, false, m, n, 0, [], [], 1, 2, c0, bias, Activation.Relu, 0);
        Tol.ForGemm(1).AssertClose(c.ToArray(), expected, "K = 0");
    }

    [Theory, Backends]
    public void EmptyOutputLaunchesNothing(string backend)
    {
        Use(backend);
        using var a = D.Zeros(0, 5); using var b = D.Zeros(5, 4); using var c = D.Zeros(0, 4);
        long before = D.Counters.Launches;
        D.Gemm(a, b, c);
        Assert.Equal(before, D.Counters.Launches);
    }

    [Theory, Backends]
    public void OneGemmIsOneLaunch(string backend)
    {
        Use(backend);
        using var a = D.Zeros(70, 3); using var b = D.Zeros(3, 70); using var c = D.Zeros(70, 70); using var bias = D.Zeros(70);
        long before = D.Counters.Launches;
        D.Gemm(a, b, c, beta: 1f, bias: bias, activation: Activation.Gelu);
        Assert.Equal(before + 1, D.Counters.Launches);
    }

    [Theory, Backends]
    public void BackwardMatchesFiniteDifferences(string backend)
    {
        Use(backend);
        // L = sum(G o (A B)); dL/dA = G B^T (NT), dL/dB = A^T G (TN).
        const int m = 3, k = 5, n = 4;
        var a = TestData.Uniform(26, m * k); var b = TestData.Uniform(27, k * n); var g = TestData.Uniform(28, m * n);
        double[] gd = TestData.D(g), ad = TestData.D(a), bd = TestData.D(b);
        double Loss(double[] x, double[] y)
        {
            var prod = new double[m * n];
            GemmOp.Reference(false, false, m, n, k, 1, x, y, 0, prod, ReadOnlySpan<double>.Empty, Activation.Identity, 0);
            return TestData.Dot(gd, prod);
        }

        using var tA = D.FromArray(a, m, k); using var tB = D.FromArray(b, k, n); using var tG = D.FromArray(g, m, n);
        using var dA = D.Zeros(m, k); using var dB = D.Zeros(k, n);
        D.Gemm(tG, tB, dA, transB: true);
        D.Gemm(tA, tG, dB, transA: true);
        Tol.FiniteDifference.AssertClose(dA.ToArray(), TestData.FiniteDifference(x => Loss(x, bd), ad), "dA = G B^T");
        Tol.FiniteDifference.AssertClose(dB.ToArray(), TestData.FiniteDifference(y => Loss(ad, y), bd), "dB = A^T G");
    }

    [Theory, Backends]
    public void WrongInnerDimensionNamesBothOperands(string backend)
    {
        Use(backend);
        using var a = D.Zeros(3, 5); using var b = D.Zeros(6, 4); using var c = D.Zeros(3, 4);
        var e = Assert.Throws<ShapeMismatchException>(() => D.Gemm(a, b, c));
        Assert.Equal("Gemm", e.Operation);
        Assert.Equal("(5, 4)", e.Expected);
        Assert.Equal("(6, 4)", e.Actual);
        Assert.Contains("'b'", e.Message);
        Assert.Contains("inner dimensions disagree", e.Message);
        Assert.Contains("(3, 5)", e.Message);

        using var bt = D.Zeros(4, 6);
        e = Assert.Throws<ShapeMismatchException>(() => D.Gemm(a, bt, c, transB: true));
        Assert.Equal("(4, 5)", e.Expected);
        Assert.Contains("K = 5 vs 6", e.Message);
    }

    [Theory, Backends]
    public void WrongOutputShapeIsRejected(string backend)
    {
        Use(backend);
        using var a = D.Zeros(5, 3); using var b = D.Zeros(5, 4); using var c = D.Zeros(4, 3);
        var e = Assert.Throws<ShapeMismatchException>(() => D.Gemm(a, b, c, transA: true));
        Assert.Equal("(3, 4)", e.Expected);
        Assert.Equal("(4, 3)", e.Actual);
        Assert.Contains("'c'", e.Message);
    }

    [Theory, Backends]
    public void WrongBiasLengthIsRejected(string backend)
    {
        Use(backend);
        using var a = D.Zeros(3, 5); using var b = D.Zeros(5, 4); using var c = D.Zeros(3, 4); using var bias = D.Zeros(3);
        var e = Assert.Throws<ShapeMismatchException>(() => D.Gemm(a, b, c, bias: bias));
        Assert.Equal("(4)", e.Expected);
        Assert.Equal("(3)", e.Actual);
        Assert.Contains("'bias'", e.Message);
    }

    [Theory, Backends]
    public void RankOtherThanTwoIsRejected(string backend)
    {
        Use(backend);
        using var a = D.Zeros(2, 3, 5); using var b = D.Zeros(5, 4); using var c = D.Zeros(3, 4); using var v = D.Zeros(5);
        var e = Assert.Throws<ShapeMismatchException>(() => D.Gemm(a, b, c));
        Assert.Equal("(2, 3, 5)", e.Actual);
        Assert.Contains("'a' must be 2-D, it has rank 3", e.Message);
        using var a2 = D.Zeros(3, 5);
        e = Assert.Throws<ShapeMismatchException>(() => D.Gemm(a2, v, c));
        Assert.Contains("'b' must be 2-D, it has rank 1", e.Message);
    }

    [Theory, Backends]
    public void TensorFromAnotherDeviceIsRejected(string backend)
    {
        Use(backend);
        using var other = Device.Create("cpu");
        using var foreign = other.Zeros(5, 4);
        using var a = D.Zeros(3, 5); using var c = D.Zeros(3, 4);
        var e = Assert.Throws<ArgumentException>(() => D.Gemm(a, foreign, c));
        Assert.Equal("b", e.ParamName);
        Assert.Contains("Gemm", e.Message);
        Assert.Contains($"runs on '{D.Name}'", e.Message);
    }

    [Theory, Backends]
    public void OutputOverlappingAnInputIsRejected(string backend)
    {
        Use(backend);
        using var x = D.Zeros(4, 4);
        var e = Assert.Throws<ArgumentException>(() => D.Gemm(x, x, x));
        Assert.Equal("c", e.ParamName);
        Assert.Contains("overlaps input 'a'", e.Message);
    }
}

