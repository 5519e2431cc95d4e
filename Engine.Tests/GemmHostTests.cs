using GpuNet.Kernels;

namespace GpuNet.Tests;

/// <summary>
/// The blocked SIMD host GEMM against the float64 reference, called directly (no device): shapes that cross the
/// micro-tile (12x32 with AVX-512, 6x16 with Vector256), the K slice (256), the row block (240 rows) and the column
/// panel (3072 columns) by one either way, every transpose, every epilogue, and operands inside larger arrays.
/// Both micro-kernels, the serial and the parallel paths, and the M = 1 path run on any host.
/// </summary>
public sealed class GemmHostTests
{
    // (m, n, k)
    public static TheoryData<int, int, int> Shapes =>
    [
        (1, 1, 1), (7, 13, 17), (11, 31, 5), (12, 32, 8), (13, 33, 9), (6, 16, 3), (5, 15, 2), (7, 17, 4),
        (3, 7, 1000), (200, 97, 3), (1, 300, 50), (1, 64, 3), (1, 33, 1000), (300, 1, 50),
        (25, 65, 255), (24, 64, 256), (23, 63, 257), (37, 29, 513),
        (239, 31, 20), (241, 33, 20), (480, 9, 7),
        (130, 100, 70), (131, 157, 263), (50, 40, 800),
    ];

    public static TheoryData<bool, int> Kernels => [(true, 1), (true, 2), (false, 1), (false, 2)];

    [Theory, MemberData(nameof(Shapes))]
    public void AllTransposesMatchReference(int m, int n, int k)
    {
        foreach (var (wide, threads) in new[] { (true, 1), (true, 2), (false, 2) })
            foreach (bool ta in new[] { false, true })
                foreach (bool tb in new[] { false, true })
                    Check(ta, tb, m, n, k, 1f, 0f, false, Activation.Identity, wide, threads, offset: 0, seed: m * 31 + n * 7 + k);
    }

    [Fact]
    public void ColumnPanelBoundary()
    {
        // N around the 3072-column panel; the transposes change which operand is packed by transposition.
        foreach (int n in new[] { 3071, 3073 })
            foreach (bool tb in new[] { false, true })
                Check(false, tb, 3, n, 5, 1f, 0f, false, Activation.Identity, wide: true, threads: 1, offset: 0, seed: n);
        Check(true, false, 2, 3073, 3, 1f, 0f, false, Activation.Identity, wide: false, threads: 2, offset: 0, seed: 1);
    }

    [Theory, MemberData(nameof(Kernels))]
    public void EpiloguesMatchReference(bool wide, int threads)
    {
        // k = 300 crosses the K slice: the first slice applies beta and the bias, the last the activation.
        foreach (var act in Enum.GetValues<Activation>())
            foreach (var (m, n, k) in new[] { (29, 45, 300), (64, 70, 90), (1, 45, 300) })
            {
                float actAlpha = act == Activation.LeakyRelu ? 0.1f : act == Activation.Elu ? 0.7f : 0f;
                Check(false, true, m, n, k, 1.5f, -0.75f, true, act, wide, threads, offset: 0, seed: (int)act + m);
                Check(true, false, m, n, k, -0.5f, 2f, false, act, wide, threads, offset: 0, seed: (int)act + n);
            }
    }

    [Theory, MemberData(nameof(Kernels))]
    public void BetaZeroDoesNotReadC(bool wide, int threads)
    {
        foreach (var (m, n, k) in new[] { (13, 33, 7), (70, 90, 300) })
            foreach (bool bias in new[] { false, true })
                Check(false, false, m, n, k, 0.5f, 0f, bias, Activation.Relu, wide, threads, offset: 0, seed: m + n, nanC: true);
    }

    [Theory, MemberData(nameof(Kernels))]
    public void OperandsAtOffsetsInsideLargerArrays(bool wide, int threads)
    {
        foreach (bool ta in new[] { false, true })
            foreach (bool tb in new[] { false, true })
            {
                Check(ta, tb, 17, 35, 260, 1.25f, 0.5f, true, Activation.Tanh, wide, threads, offset: 5, seed: 3);
                Check(ta, tb, 100, 67, 60, 1f, 0f, true, Activation.Identity, wide, threads, offset: 19, seed: 4);
            }
    }

    [Fact]
    public void KZeroAppliesTheEpilogueOnly()
    {
        foreach (bool bias in new[] { false, true })
        {
            Check(false, false, 5, 9, 0, 2f, 0.5f, bias, Activation.Sigmoid, wide: true, threads: 2, offset: 3, seed: 7);
            Check(true, true, 5, 9, 0, 2f, 0f, bias, Activation.Elu, wide: true, threads: 2, offset: 0, seed: 8, nanC: true);
        }
    }

    [Fact]
    public void EmptyOutputTouchesNothing()
    {
        var guard = new[] { 1f, 2f, 3f };
        foreach (var (m, n, k) in new[] { (0, 5, 3), (4, 0, 3), (0, 0, 0) })
        {
            GemmOp.Host(false, false, m, n, k, 1f, new float[m * k], new float[k * n], 0f,
                new ArraySegment<float>(guard, 1, 0), default, Activation.Identity, 0f);
            Assert.Equal(new[] { 1f, 2f, 3f }, guard);
        }
    }

    [Fact]
    public void TooShortOperandsAreRejected()
    {
        var e = Assert.Throws<ArgumentException>(() => GemmOp.Host(false, false, 4, 5, 6, 1f, new float[23], new float[30], 0f,
            new float[20], default, Activation.Identity, 0f));
        Assert.Equal("a", e.ParamName);
        Assert.Contains("24", e.Message);
    }

    [Fact]
    public void SteadyStateAllocatesNothing()
    {
        const int m = 96, n = 200, k = 300;  // parallel (shared B panels), two K slices
        var a = TestData.Uniform(1, m * k); var b = TestData.Uniform(2, n * k);
        var c = new float[m * n]; var bias = TestData.Uniform(3, n);
        void Calls()
        {
            GemmOp.Host(false, true, m, n, k, 1f, a, b, 0f, c, bias, Activation.Relu, 0f);
            GemmOp.Host(true, false, m, n, k, 1f, a, b, 1f, c, default, Activation.Identity, 0f);
        }
        // Buffers grow to the shape on first use: on the serial path (the largest per-thread need) and, when the
        // pool is free, the parallel one. Another test may hold the pool for a while (this call then runs serially),
        // so a few attempts are allowed; a per-call allocation fails every attempt.
        GemmOp.Host(false, true, m, n, k, 1f, a, b, 0f, c, bias, Activation.Relu, 0f, wide: System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated, threads: 1);
        Calls();
        Calls();
        long grew = -1;
        for (int attempt = 0; attempt < 5 && grew != 0; attempt++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            Calls();
            grew = GC.GetAllocatedBytesForCurrentThread() - before;
        }
        Assert.True(grew == 0, $"GemmOp.Host allocated {grew} bytes on a warm call");
    }

    /// <summary>
    /// Runs one host GEMM with its operands placed at <paramref name="offset"/> inside arrays padded with sentinels
    /// and compares C with the float64 reference; the padding around C must be untouched.
    /// </summary>
    private static void Check(bool ta, bool tb, int m, int n, int k, float alpha, float beta, bool withBias,
        Activation act, bool wide, int threads, int offset, int seed, bool nanC = false)
    {
        var a = TestData.Uniform(seed, m * k); var b = TestData.Uniform(seed + 1, k * n);
        var c0 = nanC ? Enumerable.Repeat(float.NaN, m * n).ToArray() : TestData.Uniform(seed + 2, m * n);
        var bias = withBias ? TestData.Uniform(seed + 3, n) : [];
        const float Pad = -12345f;
        ArraySegment<float> Place(float[] x)
        {
            var big = Enumerable.Repeat(Pad, x.Length + 2 * offset + 3).ToArray();
            x.CopyTo(big, offset);
            return new ArraySegment<float>(big, offset, x.Length);
        }
        var sc = Place(c0);
        float actAlpha = act == Activation.LeakyRelu ? 0.1f : act == Activation.Elu ? 0.7f : 0f;
        GemmOp.Host(ta, tb, m, n, k, alpha, Place(a), Place(b), beta, sc, withBias ? Place(bias) : default, act, actAlpha, wide, threads);

        var expected = TestData.D(c0);
        GemmOp.Reference(ta, tb, m, n, k, alpha, TestData.D(a), TestData.D(b), beta, expected, TestData.D(bias), act, actAlpha);
        string what = $"{(ta ? 'T' : 'N')}{(tb ? 'T' : 'N')} m={m} n={n} k={k} alpha={alpha} beta={beta} bias={withBias} {act} wide={wide} threads={threads} offset={offset}";
        Tol.ForGemm(k).AssertClose(sc.AsSpan(), expected, what);
        var whole = sc.Array!;
        for (int i = 0; i < whole.Length; i++)
            if (i < offset || i >= offset + m * n) Assert.True(whole[i] == Pad, $"{what}: wrote outside C at {i}");
    }
}
