using GpuNet.Init;

namespace GpuNet.Tests;

/// <summary>
/// Initialisation schemes: the generator against published reference outputs, moments of large draws against the
/// formulas (within 5 standard errors), exact bounds, fans and gains against PyTorch's definitions, orthogonality,
/// determinism, validation, and bit-identical fills on the cpu and ilgpu-cpu devices.
/// </summary>
public class InitTests
{
    const int N = 200_000;

    // ---- generator ----

    /// <summary>
    /// SplitMix64 with seed 1234567: the reference outputs published with the algorithm (Rosetta Code's SplitMix64
    /// task), reproduced independently here with a 6-line Python transcription of Vigna's splitmix64.c.
    /// </summary>
    static readonly ulong[] Reference1234567 =
        [6457827717110365317UL, 3203168211198807973UL, 9817491932198370423UL, 4593380528125082431UL, 16408922859458223821UL];

    [Fact]
    public void SplitMix64ReproducesPublishedOutputs()
    {
        var rng = new SplitMix64(1234567);
        for (int i = 0; i < Reference1234567.Length; i++)
        {
            Assert.Equal(Reference1234567[i], rng.NextUInt64());
            Assert.Equal(Reference1234567[i], SplitMix64.At(1234567, (ulong)i));
        }
    }

    [Fact]
    public void UniformAndNormalAreTheDocumentedFunctionsOfTheStream()
    {
        // uniform: (float)(u), u = top 53 bits * 2^-53
        var u = new Uniform(0, 1).Generate([3], 1234567);
        for (int i = 0; i < 3; i++)
            Assert.Equal((float)((Reference1234567[i] >> 11) * Math.Pow(2, -53)), u[i]);
        // normal: Box-Muller on (1 - u0, u1), cos first, then sin
        var z = new Normal(0, 1).Generate([2], 1234567);
        double u0 = (Reference1234567[0] >> 11) * Math.Pow(2, -53), u1 = (Reference1234567[1] >> 11) * Math.Pow(2, -53);
        double r = Math.Sqrt(-2 * Math.Log(1 - u0));
        Assert.Equal((float)(r * Math.Cos(2 * Math.PI * u1)), z[0]);
        Assert.Equal((float)(r * Math.Sin(2 * Math.PI * u1)), z[1]);
    }

    // ---- moments ----

    /// <summary>Sample mean and variance within 5 standard errors (the variance's from the sample's 4th moment).</summary>
    static void AssertMoments(float[] x, double mean, double variance, string what)
    {
        int n = x.Length;
        double m = 0;
        foreach (float v in x) m += v;
        m /= n;
        double m2 = 0, m4 = 0;
        foreach (float v in x) { double d = v - m; m2 += d * d; m4 += d * d * d * d; }
        m2 /= n; m4 /= n;
        double seMean = Math.Sqrt(variance / n), seVar = Math.Sqrt((m4 - m2 * m2) / n);
        Assert.True(Math.Abs(m - mean) <= 5 * seMean, $"{what}: mean {m:R}, expected {mean:R} +- 5*{seMean:E2}");
        Assert.True(Math.Abs(m2 - variance) <= 5 * seVar, $"{what}: variance {m2:R}, expected {variance:R} +- 5*{seVar:E2}");
    }

    /// <summary>A fraction of a large draw against its probability, within 5 binomial standard errors.</summary>
    static void AssertFraction(float[] x, Func<float, bool> inside, double p, string what)
    {
        int count = x.Count(inside);
        double se = Math.Sqrt(p * (1 - p) / x.Length);
        Assert.True(Math.Abs((double)count / x.Length - p) <= 5 * se, $"{what}: fraction {(double)count / x.Length:R}, expected {p:R} +- 5*{se:E2}");
    }

    static void AssertWithin(float[] x, double lo, double hi, bool hiInclusive, string what)
    {
        float min = x.Min(), max = x.Max();
        Assert.True(min >= lo, $"{what}: min {min:R} < {lo:R}");
        Assert.True(hiInclusive ? max <= hi : max < hi, $"{what}: max {max:R} {(hiInclusive ? ">" : ">=")} {hi:R}");
    }

    [Fact]
    public void UniformMomentsAndBounds()
    {
        var x = new Uniform(-0.5, 1.5).Generate([N], 7);
        AssertWithin(x, -0.5, 1.5, hiInclusive: false, "uniform(-0.5, 1.5)");
        AssertMoments(x, 0.5, 4.0 / 12, "uniform(-0.5, 1.5)");
        Assert.True(x.Min() < -0.499 && x.Max() > 1.499, "uniform: the draw does not reach near both bounds");
    }

    [Fact]
    public void UniformNeverReturnsTheUpperBoundAfterRounding()
    {
        // [1, 1 + 2^-20): the double values near the top round to 1 + 2^-20 in float32; they must be pulled below it.
        double hi = 1 + Math.Pow(2, -20);
        var x = new Uniform(1, hi).Generate([20_000], 3);
        AssertWithin(x, 1, hi, hiInclusive: false, "narrow uniform");
    }

    [Fact]
    public void NormalMoments()
    {
        var x = new Normal(0.3, 2).Generate([N], 11);
        AssertMoments(x, 0.3, 4, "normal(0.3, 2)");
        AssertFraction(x, v => Math.Abs(v - 0.3) <= 2, 0.682689492137086, "normal within 1 std");
        AssertFraction(x, v => Math.Abs(v - 0.3) <= 4, 0.954499736103642, "normal within 2 std");
        Assert.All(new Normal(-1.5, 0).Generate([5], 1), v => Assert.Equal(-1.5f, v));
    }

    /// <summary>Mean and variance of N(mean, std^2) truncated to [a, b], by Simpson's rule on the density (float64).</summary>
    static (double Mean, double Variance) TruncatedMoments(double mean, double std, double a, double b)
    {
        double lo = Math.Max((a - mean) / std, -14), hi = Math.Min((b - mean) / std, 14);
        const int steps = 20_000;
        double h = (hi - lo) / steps, z0 = 0, z1 = 0, z2 = 0;
        for (int i = 0; i <= steps; i++)
        {
            double z = lo + i * h, w = (i == 0 || i == steps ? 1 : i % 2 == 1 ? 4 : 2) * Math.Exp(-0.5 * z * z);
            z0 += w; z1 += w * z; z2 += w * z * z;
        }
        double mz = z1 / z0, vz = z2 / z0 - mz * mz;
        return (mean + std * mz, std * std * vz);
    }

    [Theory]
    [InlineData(0.0, 1.0, -2.0, 2.0)]                          // PyTorch's default; N(0,1) rejection
    [InlineData(0.5, 2.0, -1.0, 3.0)]                          // asymmetric, contains the mean, narrow: uniform proposal
    [InlineData(0.0, 1.0, -0.5, 1.0)]                          // narrow around 0: uniform proposal
    [InlineData(0.0, 1.0, 3.0, 4.0)]                           // one-sided tail: exponential proposal
    [InlineData(0.0, 1.0, 3.0, 3.2)]                           // narrow tail: uniform proposal
    [InlineData(1.0, 0.5, double.NegativeInfinity, -0.25)]     // lower tail, unbounded, 2.5 std out
    [InlineData(0.02, 0.02, -0.04, 0.06)]                      // ViT-style weight init
    public void TruncatedNormalMomentsAndBounds(double mean, double std, double a, double b)
    {
        var x = new TruncatedNormal(mean, std, a, b).Generate([N], 5);
        string what = $"trunc_normal({mean}, {std}, {a}, {b})";
        AssertWithin(x, a, b, hiInclusive: true, what);
        var (m, v) = TruncatedMoments(mean, std, a, b);
        AssertMoments(x, m, v, what);
    }

    [Fact]
    public void TruncatedNormalFarTailTerminatesAndStaysInside()
    {
        // 40 standard deviations out: P = 1e-350, beyond float64; rejection from N(0,1) would never end.
        var x = new TruncatedNormal(0, 1, 40, 41).Generate([1000], 9);
        AssertWithin(x, 40, 41, hiInclusive: true, "trunc_normal at 40 std");
        Assert.True(x.Average(v => (double)v) < 40.1, "trunc_normal at 40 std: mass concentrates at the lower bound (mean ~40.025)");
    }

    // ---- fan-based ----

    [Fact]
    public void FansFollowPyTorch()
    {
        Assert.Equal((3L, 10L), Fans.Compute([10, 3]));                 // Linear (out, in)
        Assert.Equal((3L * 5 * 7, 16L * 5 * 7), Fans.Compute([16, 3, 5, 7])); // conv (out, in, kh, kw)
        Assert.Equal((4L * 3, 8L * 3), Fans.Compute([8, 4, 3]));       // conv1d
        Assert.Equal(105L, Fans.Select([16, 3, 5, 7], FanMode.FanIn));
        Assert.Equal(560L, Fans.Select([16, 3, 5, 7], FanMode.FanOut));
        var e = Assert.Throws<ArgumentException>(() => Fans.Compute([10]));
        Assert.Contains("fewer than 2 dimensions", e.Message);
        Assert.Contains("(10)", e.Message);
        Assert.Throws<ArgumentException>(() => Fans.Compute([]));
    }

    [Fact]
    public void GainsFollowPyTorch()
    {
        Assert.Equal(1.0, Fans.Gain(Nonlinearity.Linear));
        Assert.Equal(1.0, Fans.Gain(Nonlinearity.Sigmoid));
        Assert.Equal(5.0 / 3, Fans.Gain(Nonlinearity.Tanh));
        Assert.Equal(Math.Sqrt(2), Fans.Gain(Nonlinearity.Relu));
        Assert.Equal(Math.Sqrt(2 / (1 + 0.01 * 0.01)), Fans.Gain(Nonlinearity.LeakyRelu));
        Assert.Equal(Math.Sqrt(2 / 1.04), Fans.Gain(Nonlinearity.LeakyRelu, 0.2));
        Assert.Equal(0.75, Fans.Gain(Nonlinearity.Selu));
        Assert.Equal(Nonlinearity.Linear, Fans.ParseNonlinearity("conv2d"));
        Assert.Equal(Nonlinearity.LeakyRelu, Fans.ParseNonlinearity("Leaky_ReLU"));
        Assert.Equal(FanMode.FanOut, Fans.ParseMode("fan_out"));
        Assert.Contains("softplus", Assert.Throws<ArgumentException>(() => Fans.ParseNonlinearity("softplus")).Message);
        var e = Assert.Throws<ArgumentException>(() => Fans.ParseMode("fan_avg"));
        Assert.Equal("mode", e.ParamName);
        Assert.Contains("fan_in, fan_out", e.Message);
    }

    static void AssertUniformScheme(FanScaledInitializer init, int[] shape, double expectedBound, string what)
    {
        Assert.Equal(expectedBound, init.Bound(shape), 1e-15);
        var x = init.Generate(shape, 21);
        float fb = (float)expectedBound;
        AssertWithin(x, -fb, fb, hiInclusive: false, what);
        Assert.True(x.Max() > 0.999 * expectedBound && x.Min() < -0.999 * expectedBound, $"{what}: the draw does not reach the bound {expectedBound:R}");
        AssertMoments(x, 0, expectedBound * expectedBound / 3, what);
    }

    static void AssertNormalScheme(FanScaledInitializer init, int[] shape, double expectedStd, string what)
    {
        Assert.Equal(expectedStd, init.Std(shape), 1e-15);
        var x = init.Generate(shape, 22);
        AssertMoments(x, 0, expectedStd * expectedStd, what);
    }

    [Fact]
    public void KaimingUniformAndNormal()
    {
        // default: a = 0, fan_in, leaky_relu -> gain sqrt(2); std = sqrt(2/800) = 0.05
        AssertUniformScheme(Kaiming.Uniform(), [250, 800], Math.Sqrt(3) * Math.Sqrt(2.0 / 800), "kaiming_uniform");
        // conv (64, 32, 5, 5), fan_out = 64*25 = 1600, relu
        AssertNormalScheme(Kaiming.Normal(mode: FanMode.FanOut, nonlinearity: Nonlinearity.Relu), [64, 32, 5, 5], Math.Sqrt(2) / 40, "kaiming_normal fan_out");
        // leaky_relu with a = 0.2, tanh ignores a
        Assert.Equal(Math.Sqrt(2 / 1.04) / Math.Sqrt(30), Kaiming.Normal(a: 0.2).Std([7, 30]), 1e-15);
        Assert.Equal(5.0 / 3 / Math.Sqrt(30), Kaiming.Normal(a: 0.2, nonlinearity: Nonlinearity.Tanh).Std([7, 30]), 1e-15);
    }

    [Fact]
    public void XavierUniformAndNormal()
    {
        double g = 5.0 / 3;
        AssertUniformScheme(Xavier.Uniform(g), [400, 500], Math.Sqrt(3) * g * Math.Sqrt(2.0 / 900), "xavier_uniform");
        AssertNormalScheme(Xavier.Normal(), [300, 700], Math.Sqrt(2.0 / 1000), "xavier_normal");
        // conv: fan_in + fan_out = (3 + 8) * 9
        Assert.Equal(Math.Sqrt(2.0 / 99), Xavier.Normal().Std([8, 3, 3, 3]), 1e-15);
    }

    [Fact]
    public void LeCunUniformAndNormal()
    {
        AssertUniformScheme(LeCun.Uniform(), [200, 1000], Math.Sqrt(3.0 / 1000), "lecun_uniform");
        AssertNormalScheme(LeCun.Normal(), [1000, 200], Math.Sqrt(1.0 / 200), "lecun_normal");
    }

    [Fact]
    public void FanBasedSchemesRejectABias()
    {
        foreach (IInitializer init in new IInitializer[] { Kaiming.Uniform(), Kaiming.Normal(), Xavier.Uniform(), Xavier.Normal(), LeCun.Uniform(), new Orthogonal() })
        {
            var e = Assert.Throws<ArgumentException>(() => init.Generate([16], 1));
            Assert.Contains("2", e.Message);
            Assert.Contains("(16)", e.Message);
            Assert.Throws<ArgumentException>(() => init.Generate([0], 1)); // an empty bias is still a bias
        }
        Assert.Empty(Kaiming.Uniform().Generate([0, 5], 1));
    }

    // ---- defaults ----

    [Fact]
    public void PyTorchLayerDefaults()
    {
        // Linear(in=300, out=100): U(-1/sqrt(300), 1/sqrt(300)) for weight and bias
        double bound = 1 / Math.Sqrt(300);
        Assert.Equal(bound, Defaults.LinearWeight.Bound([100, 300]), 1e-15);
        var w = Defaults.LinearWeight.Generate([100, 300], 1);
        AssertWithin(w, -bound, bound, hiInclusive: false, "Linear weight");
        var bias = Defaults.BiasFor([100, 300]);
        var b = bias.Generate([N], 2);
        AssertWithin(b, -bound, bound, hiInclusive: false, "Linear bias");
        AssertMoments(b, 0, bound * bound / 3, "Linear bias");
        // Conv2d(in=6, out=16, k=5): fan_in = 150
        Assert.Equal(1 / Math.Sqrt(150), Defaults.ConvWeight.Bound([16, 6, 5, 5]), 1e-15);
        Assert.Equal(1 / Math.Sqrt(150), ((Uniform)Defaults.ConvBias(150)).High, 1e-15);
        Assert.IsType<Zeros>(Defaults.LinearBias(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => Defaults.LinearBias(-1));
        Assert.All(Defaults.BatchNormWeight.Generate([7], 1), v => Assert.Equal(1f, v));
        Assert.All(Defaults.BatchNormBias.Generate([7], 1), v => Assert.Equal(0f, v));
        Assert.All(Defaults.BatchNormRunningVar.Generate([7], 1), v => Assert.Equal(1f, v));
        AssertMoments(Defaults.EmbeddingWeight.Generate([1000, 100], 3), 0, 1, "Embedding weight");
    }

    // ---- orthogonal ----

    public static TheoryData<int[]> OrthogonalShapes => new() { new[] { 5, 5 }, new[] { 3, 7 }, new[] { 7, 3 }, new[] { 1, 10 }, new[] { 10, 1 }, new[] { 4, 2, 3, 3 }, new[] { 64, 48 }, new[] { 48, 64 }, new[] { 1, 1 } };

    [Theory]
    [MemberData(nameof(OrthogonalShapes))]
    public void OrthogonalIsOrthonormal(int[] shape)
    {
        foreach (double gain in new[] { 1.0, 2.0 })
        {
            var w = new Orthogonal(gain).Generate(shape, 13);
            int rows = shape[0], cols = w.Length / rows;
            bool wide = rows <= cols;
            int k = wide ? rows : cols, len = wide ? cols : rows;
            // wide: W W^T (rows x rows); tall: W^T W (cols x cols)
            double El(int vec, int i) => wide ? w[vec * cols + i] : w[i * cols + vec];
            for (int p = 0; p < k; p++)
                for (int q = 0; q < k; q++)
                {
                    double s = 0;
                    for (int i = 0; i < len; i++) s += El(p, i) * El(q, i);
                    double expected = p == q ? gain * gain : 0;
                    Assert.True(Math.Abs(s - expected) <= 1e-5 * gain * gain, $"orthogonal {ShapeUtil.Format(shape)} gain {gain}: product[{p},{q}] = {s:R}, expected {expected}");
                }
        }
    }

    [Theory]
    [InlineData(7, 3)]
    [InlineData(3, 7)]
    [InlineData(6, 6)]
    public void OrthogonalIsTheQOfTheSeededGaussianWithPositiveRDiagonal(int rows, int cols)
    {
        // Redraw the Gaussian (rows, cols) matrix from the same stream; A' = A (tall) or A^T (wide), (m, n), m >= n.
        var rng = new SplitMix64(17);
        var g = new double[rows, cols];
        for (int r = 0; r < rows; r++) for (int c = 0; c < cols; c++) g[r, c] = rng.NextNormal();
        var w = new Orthogonal().Generate([rows, cols], 17);
        bool t = rows < cols;
        int m = t ? cols : rows, n = t ? rows : cols;
        double A(int i, int j) => t ? g[j, i] : g[i, j];
        double Q(int i, int j) => t ? w[j * cols + i] : w[i * cols + j];
        // R = Q^T A' must be upper triangular with a positive diagonal.
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int l = 0; l < m; l++) s += Q(l, i) * A(l, j);
                if (i > j) Assert.True(Math.Abs(s) <= 1e-5, $"R[{i},{j}] = {s:R} below the diagonal");
                if (i == j) Assert.True(s > 0.1, $"R[{i},{i}] = {s:R} must be positive");
            }
    }

    // ---- determinism ----

    static IEnumerable<IInitializer> AllSchemes() =>
    [
        new Uniform(-1, 1), new Normal(0, 1), new TruncatedNormal(), Xavier.Uniform(), Xavier.Normal(),
        Kaiming.Uniform(), Kaiming.Normal(), LeCun.Uniform(), LeCun.Normal(), new Orthogonal(),
    ];

    [Fact]
    public void SameSeedSameValuesDifferentSeedDifferentValues()
    {
        int[] shape = [13, 7, 3];
        foreach (var init in AllSchemes())
        {
            var a = init.Generate(shape, 99);
            Assert.Equal(a, init.Generate(shape, 99));
            var b = init.Generate(shape, 100);
            int same = 0;
            for (int i = 0; i < a.Length; i++) if (a[i] == b[i]) same++;
            Assert.True(same <= a.Length / 20, $"{init.Name}: seeds 99 and 100 agree on {same} of {a.Length} values");
        }
    }

    // ---- validation ----

    static void AssertBadParameter(Action make, string parameter, params string[] fragments)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(make);
        Assert.Equal(parameter, e.ParamName);
        foreach (var f in fragments) Assert.Contains(f, e.Message);
    }

    [Fact]
    public void BadParametersAreRejectedWithNameValueAndRange()
    {
        AssertBadParameter(() => new Normal(0, -1), "std", "normal", "-1", "[0, +inf)");
        AssertBadParameter(() => new Normal(double.NaN, 1), "mean", "NaN");
        AssertBadParameter(() => new Uniform(1, 1), "high", "uniform", "(1, +inf)");
        AssertBadParameter(() => new Uniform(2, 1), "high", "(2, +inf)");
        AssertBadParameter(() => new Uniform(0, double.PositiveInfinity), "high", "finite");
        AssertBadParameter(() => new TruncatedNormal(0, 1, 2, -2), "b", "trunc_normal", "-2");
        AssertBadParameter(() => new TruncatedNormal(0, 0), "std", "(0, +inf)");
        AssertBadParameter(() => new TruncatedNormal(0, 1e-320, 1, 2), "std", "finite and ordered");
        AssertBadParameter(() => Xavier.Uniform(0), "gain", "xavier_uniform", "(0, +inf)");
        AssertBadParameter(() => Xavier.Normal(-1), "gain", "xavier_normal", "-1");
        AssertBadParameter(() => new Orthogonal(-0.5), "gain", "orthogonal", "-0.5");
        AssertBadParameter(() => Kaiming.Uniform(a: double.NaN), "a", "kaiming_uniform");
        AssertBadParameter(() => Kaiming.Normal(mode: (FanMode)5), "mode", "FanIn, FanOut", "5");
        AssertBadParameter(() => Kaiming.Uniform(nonlinearity: (Nonlinearity)99), "nonlinearity", "Relu", "99");
        AssertBadParameter(() => new Constant(double.PositiveInfinity), "value", "constant");
        AssertBadParameter(() => new Uniform().Generate([3, -1], 1), "shape", "(3, -1)");
        Assert.Equal("destination", Assert.Throws<ArgumentException>(() => new Uniform().Generate([3, 2], 1, new float[5])).ParamName);
    }

    // ---- the checkpoint hook ----

    [Fact]
    public void FromValuesSuppliesSavedValuesForItsShapeOnly()
    {
        float[] saved = [1, 2, 3, 4, 5, 6];
        var init = new FromValues(saved, [2, 3], "ckpt.bin:fc1.weight");
        Assert.Equal(saved, init.Generate([2, 3], 1));
        Assert.Equal(saved, init.Generate([2, 3], 2)); // the seed is ignored
        var e = Assert.Throws<ShapeMismatchException>(() => init.Generate([3, 2], 1));
        Assert.Contains("fc1.weight", e.Message);
        Assert.Throws<ShapeMismatchException>(() => new FromValues(saved, [4, 2]));
    }

    // ---- devices ----

    static int[] Bits(float[] x) => Array.ConvertAll(x, BitConverter.SingleToInt32Bits);

    [Fact]
    public void FillIsBitIdenticalOnCpuAndIlgpuCpu()
    {
        int[] shape = [33, 17];
        var schemes = AllSchemes().Append(new FromValues(Enumerable.Range(0, 33 * 17).Select(i => (float)i).ToArray(), shape)).ToList();
        var results = new List<float[]>[2];
        string[] names = ["cpu", "ilgpu-cpu"];
        for (int d = 0; d < 2; d++)
        {
            using var device = Device.Create(names[d]);
            results[d] = [];
            foreach (var init in schemes)
            {
                using var t = device.Allocate(shape);
                using var view = t.Reshape(3, 11, 17); // orthogonal: (3, 187) from the view's shape
                init.Fill(init is Orthogonal ? view : t, 2024);
                results[d].Add(t.ToArray());
            }
            using (var ints = device.Allocate([4], DType.Int32))
                Assert.Throws<ArgumentException>(() => Defaults.Ones.Fill(ints, 1));
            var gone = device.Allocate([4]);
            gone.Dispose();
            Assert.Throws<ObjectDisposedException>(() => Defaults.Ones.Fill(gone, 1));
            Assert.Equal(0, device.Counters.LiveBytes);
        }
        for (int i = 0; i < schemes.Count; i++)
        {
            int[] s = schemes[i] is Orthogonal ? [3, 11, 17] : shape;
            Assert.Equal(Bits(schemes[i].Generate(s, 2024)), Bits(results[0][i]));
            Assert.Equal(Bits(results[0][i]), Bits(results[1][i]));
        }
    }
}
