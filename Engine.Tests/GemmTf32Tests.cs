using GpuNet.Compilation;
using GpuNet.Kernels;
using GpuNet.Nn;
using GpuNet.Optim;
using GpuNet.Training;

namespace GpuNet.Tests;

/// <summary>
/// The TF32 math mode: Device.Gemm with <see cref="MatmulMath.Tf32"/> against the TF32 float64 reference on every
/// ILGPU backend (the <c>cpu</c> device keeps float32), the MMA primitives alone, the TF32 rounding, the mode's parsing,
/// and a tiny MLP trained in TF32 next to float32.
/// </summary>
public sealed class GemmTf32Tests(BackendFixture f) : DeviceTestBase(f), IClassFixture<BackendFixture>
{
    // (M, N, K): ones, primes, non-multiples of the 64x64x16 block tile and of the 16x8x8 MMA tile, M < K, K >> M.
    public static TheoryData<int, int, int> Shapes => new()
    {
        { 1, 1, 1 }, { 5, 3, 9 }, { 17, 13, 29 }, { 65, 67, 33 }, { 3, 70, 200 },
    };

    private static readonly (bool A, bool B)[] Transposes = [(false, false), (false, true), (true, false), (true, true)];

    /// <summary>Runs Device.Gemm in TF32 mode (restored to FP32 afterwards) and returns C.</summary>
    private float[] Run(bool ta, bool tb, int m, int n, int k, float[] a, float[] b, float alpha, float beta, float[] c0,
        float[]? bias, Activation act, float? actAlpha = null)
    {
        using var tA = D.FromArray(a, ta ? [k, m] : [m, k]);
        using var tB = D.FromArray(b, tb ? [n, k] : [k, n]);
        using var tC = D.FromArray(c0, m, n);
        using var tBias = bias is null ? null : D.FromArray(bias);
        D.MathMode = MatmulMath.Tf32;
        try { D.Gemm(tA, tB, tC, ta, tb, alpha, beta, tBias, act, actAlpha); }
        finally { D.MathMode = MatmulMath.Fp32; }
        return tC.ToArray();
    }

    /// <summary>The reference this device must match in TF32 mode: TF32 on ILGPU devices, float32 (unchanged) on <c>cpu</c>.</summary>
    private double[] Expected(bool ta, bool tb, int m, int n, int k, float[] a, float[] b, double alpha, double beta,
        float[] c0, float[]? bias, Activation act, double actAlpha)
    {
        var c = TestData.D(c0);
        var biasD = bias is null ? ReadOnlySpan<double>.Empty : TestData.D(bias);
        if (D.IsHost) GemmOp.Reference(ta, tb, m, n, k, alpha, TestData.D(a), TestData.D(b), beta, c, biasD, act, actAlpha);
        else GemmTf32Op.Reference(ta, tb, m, n, k, alpha, TestData.D(a), TestData.D(b), beta, c, biasD, act, actAlpha);
        return c;
    }

    private Tol GemmTol(int k) => D.IsHost ? Tol.ForGemm(k) : Tol.ForGemmTf32(k);

    [Theory, Backends(nameof(Shapes))]
    public void AllTransposesMatchTf32Reference(string backend, int m, int n, int k)
    {
        Use(backend);
        var a = TestData.Uniform(30, m * k); var b = TestData.Uniform(31, k * n);
        var c0 = new float[m * n];
        foreach (var (ta, tb) in Transposes)
        {
            var got = Run(ta, tb, m, n, k, a, b, 1f, 0f, c0, null, Activation.Identity);
            var expected = Expected(ta, tb, m, n, k, a, b, 1, 0, c0, null, Activation.Identity, 0);
            GemmTol(k).AssertClose(got, expected, $"tf32 gemm {(ta ? 'T' : 'N')}{(tb ? 'T' : 'N')} m={m} n={n} k={k} on {D.Name}");
        }
    }

    /// <summary>
    /// The tolerance tells TF32 from float32: on the largest shape, the float32 product misses the TF32 reference
    /// somewhere (so a kernel that skipped the rounding would fail <see cref="AllTransposesMatchTf32Reference"/>).
    /// </summary>
    [Fact]
    public void Tf32ToleranceRejectsFloat32Products()
    {
        const int m = 65, n = 67, k = 200;
        var a = TestData.D(TestData.Uniform(30, m * k)); var b = TestData.D(TestData.Uniform(31, k * n));
        var fp32 = new double[m * n]; var tf32 = new double[m * n];
        GemmOp.Reference(false, false, m, n, k, 1, a, b, 0, fp32, [], Activation.Identity, 0);
        GemmTf32Op.Reference(false, false, m, n, k, 1, a, b, 0, tf32, [], Activation.Identity, 0);
        var asFloat = Array.ConvertAll(fp32, x => (float)x);
        Assert.ThrowsAny<Exception>(() => Tol.ForGemmTf32(k).AssertClose(asFloat, tf32, "float32 against the TF32 reference"));
    }

    /// <summary>
    /// The rounding reaches the kernel: 1 + 2^-12 rounds to 1 and the tie 1 + 2^-11 rounds away from zero to
    /// 1 + 2^-10 (round-to-nearest-even would give 1). With B = 1 and K = 1 the product is exact: C is the rounded A.
    /// On <c>cpu</c> C keeps every bit (float32).
    /// </summary>
    [Theory, Backends]
    public void InputsAreRoundedToTf32TiesAway(string backend)
    {
        Use(backend);
        float[] a = [1f + MathF.Pow(2, -12), 1f + MathF.Pow(2, -11), -(1f + MathF.Pow(2, -11)), 3f];
        var got = Run(false, false, 4, 1, 1, a, [1f], 1f, 0f, new float[4], null, Activation.Identity);
        float[] expected = D.IsHost ? a : [1f, 1f + MathF.Pow(2, -10), -(1f + MathF.Pow(2, -10)), 3f];
        Assert.Equal(expected, got);
    }

    [Theory, Backends]
    public void BetaZeroDoesNotReadC(string backend)
    {
        Use(backend);
        const int m = 9, n = 70, k = 20;
        var a = TestData.Uniform(32, m * k); var b = TestData.Uniform(33, k * n);
        var nan = new float[m * n]; Array.Fill(nan, float.NaN);
        foreach (var (ta, tb) in Transposes)
        {
            var got = Run(ta, tb, m, n, k, a, b, 0.5f, 0f, nan, null, Activation.Identity);
            var expected = Expected(ta, tb, m, n, k, a, b, 0.5, 0, new float[m * n], null, Activation.Identity, 0);
            GemmTol(k).AssertClose(got, expected, $"tf32 beta=0 over NaN C, trans=({ta}, {tb})");
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
        var a = TestData.Uniform(34, m * k); var b = TestData.Uniform(35, k * n); var c0 = TestData.Uniform(36, m * n);
        foreach (var (ta, tb) in Transposes)
        {
            var got = Run(ta, tb, m, n, k, a, b, alpha, beta, c0, null, Activation.Identity);
            var expected = Expected(ta, tb, m, n, k, a, b, alpha, beta, c0, null, Activation.Identity, 0);
            GemmTol(k).AssertClose(got, expected, $"tf32 alpha={alpha} beta={beta} trans=({ta}, {tb})");
        }
    }

    public static TheoryData<Activation> Activations => new(Enum.GetValues<Activation>());

    [Theory, Backends(nameof(Activations))]
    public void BiasAndActivationEpilogue(string backend, Activation act)
    {
        Use(backend);
        const int m = 6, n = 67, k = 19;
        var a = TestData.Uniform(37, m * k, -1.5f, 1.5f); var b = TestData.Uniform(38, k * n, -1.5f, 1.5f);
        var c0 = TestData.Uniform(39, m * n); var bias = TestData.Uniform(40, n);
        var (ta, tb) = Transposes[(int)act % 4];
        var got = Run(ta, tb, m, n, k, a, b, 0.8f, 0.5f, c0, bias, act);
        var expected = Expected(ta, tb, m, n, k, a, b, 0.8, 0.5, c0, bias, act, ActivationMath.DefaultAlpha(act));
        (D.IsHost ? Tol.ForGemmEpilogue(k) : Tol.ForGemmTf32Epilogue(k)).AssertClose(got, expected, $"tf32 {act} with bias, trans=({ta}, {tb})");
        Assert.Contains(got, v => v != 0f);
    }

    [Theory, Backends]
    public void EmptyInnerDimensionGivesEpilogueOfBetaC(string backend)
    {
        Use(backend);
        const int m = 3, n = 4;
        var c0 = TestData.Uniform(41, m * n); var bias = TestData.Uniform(42, n);
        var got = Run(false, false, m, n, 0, [], [], 1f, 2f, c0, bias, Activation.Relu);
        var expected = Expected(false, false, m, n, 0, [], [], 1, 2, c0, bias, Activation.Relu, 0);
        Tol.ForGemmTf32(1).AssertClose(got, expected, "tf32 K = 0");
    }

    [Theory, Backends]
    public void OneGemmIsOneLaunch(string backend)
    {
        Use(backend);
        using var a = D.Zeros(70, 3); using var b = D.Zeros(3, 70); using var c = D.Zeros(70, 70);
        long before = D.Counters.Launches, kernelsBefore = D.Counters.KernelLaunches;
        D.MathMode = MatmulMath.Tf32;
        try { D.Gemm(a, b, c); }
        finally { D.MathMode = MatmulMath.Fp32; }
        Assert.Equal(before + 1, D.Counters.Launches);
        Assert.Equal(D.IsHost ? 0 : 1, D.Counters.KernelLaunches - kernelsBefore);
    }

    // ---- the MMA primitives alone -----------------------------------------------------------------------------------

    /// <summary>One m16n8k8 .tf32 tile through the primitive (fragments loaded by the PTX ISA's formulas) against float64.</summary>
    [Theory, Backends(Except = "cpu")]
    public void MmaTf32TileMatchesReference(string backend)
    {
        Use(backend);
        var a = TestData.Uniform(43, 16 * 8); var b = TestData.Uniform(44, 8 * 8); var c = TestData.Uniform(45, 16 * 8);
        using var ta = D.FromArray(a, 16, 8); using var tb = D.FromArray(b, 8, 8); using var tc = D.FromArray(c, 16, 8);
        using var td = D.Zeros(16, 8);
        Mma.LaunchTileTf32(D.Kernels, ta.View, tb.View, tc.View, td.View);
        var expected = new double[16 * 8];
        Mma.ReferenceTile(16, 8, 8, Array.ConvertAll(a, x => (double)Mma.RoundTf32(x)), Array.ConvertAll(b, x => (double)Mma.RoundTf32(x)), TestData.D(c), expected);
        Tol.ForGemmTf32(8).AssertClose(td.ToArray(), expected, $"m16n8k8 tf32 tile on {D.Name}");
    }

    /// <summary>One m16n8k16 tile with half or bfloat16 operands packed two per register, against float64.</summary>
    [Theory]
    [BackendData(false, Except = "cpu")]
    [BackendData(true, Except = "cpu")]
    public void Mma16816TileMatchesReference(string backend, bool bf16)
    {
        Use(backend);
        var r = new Random(bf16 ? 47 : 46);
        // Values exactly representable in the operand format, with their 16-bit patterns.
        (double Value, int Bits) Operand()
        {
            float x = (float)(2 * r.NextDouble() - 1);
            if (bf16)
            {
                uint bits = BitConverter.SingleToUInt32Bits(x) >> 16;
                return (BitConverter.UInt32BitsToSingle(bits << 16), (int)bits);
            }
            var h = (Half)x;
            return ((double)h, BitConverter.HalfToUInt16Bits(h));
        }
        var a = Enumerable.Range(0, 16 * 16).Select(_ => Operand()).ToArray();
        var b = Enumerable.Range(0, 16 * 8).Select(_ => Operand()).ToArray();
        var c = TestData.Uniform(48, 16 * 8);
        using var ta = D.FromArray(a.Select(x => x.Bits).ToArray(), 16, 16);
        using var tb = D.FromArray(b.Select(x => x.Bits).ToArray(), 16, 8);
        using var tc = D.FromArray(c, 16, 8); using var td = D.Zeros(16, 8);
        Mma.LaunchTile16816(D.Kernels, bf16, ta.View.Cast<uint>(), tb.View.Cast<uint>(), tc.View, td.View);
        var expected = new double[16 * 8];
        Mma.ReferenceTile(16, 8, 16, a.Select(x => x.Value).ToArray(), b.Select(x => x.Value).ToArray(), TestData.D(c), expected);
        Tol.ForGemmTf32(16).AssertClose(td.ToArray(), expected, $"m16n8k16 {(bf16 ? "bf16" : "f16")} tile on {D.Name}");
    }

    // ---- a tiny MLP trained in TF32 next to float32 ----------------------------------------------------------------

    /// <summary>
    /// Six SGD-with-momentum steps of a 2-12-3 MLP on the blobs, once in float32 and once in TF32 from the same seed: the losses
    /// and parameters stay close (<see cref="Tol.Tf32Training"/>) but differ (TF32 was used), and both runs learn.
    /// SGD, not Adam: Adam's first updates are lr sign(g), which TF32 flips for gradient components near zero.
    /// </summary>
    [Theory, Backends(Except = "cpu")]
    public void TinyMlpTrainsInTf32CloseToFp32(string backend)
    {
        Use(backend);
        (float[] Parameters, double[] Losses) Train(MatmulMath math)
        {
            D.MathMode = math;
            try
            {
                var (x, y) = TrainerTests.Blobs(48, 5);
                using var source = new ArrayBatchSource(D, x, [2], y, 16, shuffle: false, seed: 5);
                using var model = Model.Build(D, new Sequential(new Linear(2, 12), new ActivationLayer(Activation.Tanh), new Linear(12, 3)),
                    [2], 16, new ModelOptions { Seed = 9 });
                using var opt = OptimizerFactory.Sgd(model, lr: 0.1, momentum: 0.9);
                var fit = new Trainer(model, new CrossEntropyLoss(), opt).Fit(source, null, 2);
                return (model.Parameters.ToArray(), fit.History.Select(h => h.TrainLoss).ToArray());
            }
            finally { D.MathMode = MatmulMath.Fp32; }
        }
        var fp32 = Train(MatmulMath.Fp32);
        var tf32 = Train(MatmulMath.Tf32);
        Tol.Tf32Training.AssertClose(tf32.Losses, fp32.Losses, "train loss per epoch, tf32 against fp32");
        Tol.Tf32Training.AssertClose(tf32.Parameters, TestData.D(fp32.Parameters), "parameters after 6 steps, tf32 against fp32");
        Assert.NotEqual(fp32.Parameters, tf32.Parameters);
        Assert.True(tf32.Losses[^1] < tf32.Losses[0], $"tf32 loss {tf32.Losses[0]} -> {tf32.Losses[^1]}");
    }
}

/// <summary>TF32 rounding and the math mode's parsing: host only.</summary>
public sealed class Tf32RoundingTests
{
    [Theory]
    [InlineData(1f, 1f)]
    [InlineData(1.000244140625f, 1f)]                 // 1 + 2^-12: below half an ulp (2^-11)
    [InlineData(1.00048828125f, 1.0009765625f)]       // 1 + 2^-11: a tie, away from zero
    [InlineData(-1.00048828125f, -1.0009765625f)]     // the negative tie, away from zero too
    [InlineData(1.00146484375f, 1.001953125f)]         // 1 + 3 2^-11: a tie between 1 + 2^-10 (odd) and 1 + 2^-9, away
    [InlineData(3.4028235e38f, float.PositiveInfinity)] // float.MaxValue rounds up out of range
    [InlineData(float.NegativeInfinity, float.NegativeInfinity)]
    [InlineData(1e-45f, 0f)]                           // the smallest subnormal: below half a TF32 subnormal ulp
    [InlineData(0f, 0f)]
    public void RoundTf32IsNearestTiesAway(float x, float expected)
    {
        Assert.Equal(expected, Mma.RoundTf32(x));
        Assert.Equal(0u, Mma.RoundTf32Bits(x) & 0x1FFFu);
    }

    [Fact]
    public void RoundTf32KeepsNaN()
    {
        float payloadInLowBits = BitConverter.UInt32BitsToSingle(0x7F800001); // a NaN whose payload masking would erase
        Assert.True(float.IsNaN(Mma.RoundTf32(payloadInLowBits)));
        Assert.True(float.IsNaN(Mma.RoundTf32(float.NaN)));
    }

    [Fact]
    public void RoundTf32MatchesTheDefinitionOnRandomFloats()
    {
        var r = new Random(7);
        for (int i = 0; i < 10000; i++)
        {
            float x = BitConverter.UInt32BitsToSingle((uint)r.NextInt64(0, 0x7F000000)) * (i % 2 == 0 ? 1 : -1);
            double got = Mma.RoundTf32(x);
            // Definition: the nearest multiple of the TF32 ulp of |x|'s binade, ties away from zero.
            int exp = Math.ILogB(Math.Abs((double)x));
            double ulp = Math.ScaleB(1.0, Math.Max(exp, -126) - 10);
            double q = Math.Abs(x) / ulp, f = Math.Floor(q);
            double expected = Math.Sign(x) * (q - f >= 0.5 ? f + 1 : f) * ulp;
            Assert.True(got == expected, $"RoundTf32({x:R}) = {got:R}, expected {expected:R}");
        }
    }

    [Theory]
    [InlineData("fp32", MatmulMath.Fp32)]
    [InlineData("TF32", MatmulMath.Tf32)]
    [InlineData(" tf32 ", MatmulMath.Tf32)]
    public void ParseMathModeAcceptsTheNames(string value, MatmulMath expected)
        => Assert.Equal(expected, Device.ParseMathMode(value, Device.MathEnvironmentVariable));

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("  ")]
    public void ParseMathModeOfNothingIsNoChoice(string? value) => Assert.Null(Device.ParseMathMode(value, Device.MathEnvironmentVariable));

    [Fact]
    public void ParseMathModeErrorNamesSourceAllowedValuesAndValue()
    {
        var e = Assert.Throws<ArgumentException>(() => Device.ParseMathMode("fp16", Device.MathEnvironmentVariable));
        Assert.Equal("GPUNET_MATH", e.ParamName);
        Assert.Contains("GPUNET_MATH", e.Message);
        Assert.Contains("'fp16'", e.Message);
        Assert.Contains("fp32 or tf32", e.Message);
    }

    [Fact]
    public void MathModeDefaultsToTheEnvironmentAndRejectsUndefinedValues()
    {
        using var d = Device.Create("cpu");
        var fromEnv = Device.ParseMathMode(Environment.GetEnvironmentVariable(Device.MathEnvironmentVariable), Device.MathEnvironmentVariable) ?? MatmulMath.Fp32;
        Assert.Equal(fromEnv, d.MathMode);
        d.MathMode = MatmulMath.Tf32;
        Assert.Equal(MatmulMath.Tf32, d.MathMode);
        Assert.Throws<ArgumentOutOfRangeException>(() => d.MathMode = (MatmulMath)7);
    }
}

/// <summary>
/// The tensor-core kernels' machine code: ILGPU's PTX assembled by ptxas and disassembled by cuobjdump (beside
/// ptxas) for sm_80 and sm_90 contains the HMMA instructions the inline PTX asks for. Skipped with the reason when
/// the tools are absent (failed under CI, as the other compile tests).
/// </summary>
public sealed class Tf32SassTests(PtxCompilerFixture fixture) : IClassFixture<PtxCompilerFixture>
{
    public static TheoryData<string, string, int> Cases => new()
    {
        { "GemmTf32Op.Kernel<IdentityActivation>", "HMMA.1688.F32.TF32", 16 }, // 2 k-steps x 2 x 4 MMA tiles per K slice
        { "Mma.TileTf32Kernel", "HMMA.1688.F32.TF32", 1 },
        { "Mma.Tile16816Kernel", "HMMA.16816.F32.BF16", 1 },
        { "Mma.Tile16816Kernel", "HMMA.16816.F32 ", 1 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void SassContainsHmma(string kernel, string instruction, int atLeast)
    {
        string ptxas = Toolchain.Require(NativeTools.Ptxas());
        string cuobjdump = Toolchain.Require(NativeTools.Cuobjdump());
        string? ptx = fixture.TryCompilePtx(kernel, KernelCatalog.Kernels[kernel], out var error);
        Assert.True(ptx is not null, error);
        string file = fixture.WriteScratch(KernelCompiler.FileName(kernel) + ".hmma.ptx", ptx);
        foreach (var arch in PtxCompileTests.Architectures)
        {
            string cubin = Path.ChangeExtension(file, arch + ".cubin");
            var (exit, output) = NativeTools.Run(ptxas, $"-arch={arch}", "-v", file, "-o", cubin);
            Assert.True(exit == 0, $"ptxas -arch={arch} failed:\n{output}");
            var (dumpExit, sass) = NativeTools.Run(cuobjdump, "-sass", cubin);
            Assert.True(dumpExit == 0, $"cuobjdump failed:\n{sass}");
            int count = sass.Split('\n').Count(l => l.Contains(instruction, StringComparison.Ordinal));
            string usage = string.Join("; ", output.Split('\n').Where(l => l.Contains("Used", StringComparison.Ordinal) || l.Contains("spill", StringComparison.Ordinal)).Select(l => l.Trim()));
            TestContext.Current.TestOutputHelper?.WriteLine($"{kernel} {arch}: {count} x {instruction.Trim()} | ptxas: {usage}");
            TestContext.Current.SendDiagnosticMessage($"{kernel} {arch}: {count} x {instruction.Trim()} | ptxas: {usage}");
            Assert.True(count >= atLeast, $"{kernel} on {arch}: {count} '{instruction.Trim()}' in the SASS, expected at least {atLeast}");
        }
    }
}

/// <summary>The <c>--math</c> option of <c>Bench gemm</c> and <c>Bench train</c>, driven in-process.</summary>
[Collection(nameof(ConsoleCollection))]
public sealed class MathOptionCommandTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        var (o, e) = (new StringWriter(), new StringWriter());
        Console.SetOut(o);
        Console.SetError(e);
        try { return (GpuNet.Bench.BenchApp.Run(args), o.ToString(), e.ToString()); }
        finally
        {
            Console.SetOut(oldOut);
            Console.SetError(oldErr);
        }
    }

    /// <summary>A small TF32 case on the simulator: checked against the TF32 reference, and cuBLAS is said to be CUDA-only.</summary>
    [Fact]
    public void GemmRunsInTf32OnTheSimulator()
    {
        var (code, output, err) = Run("gemm", "--device", "ilgpu-cpu", "--sizes", "40", "--trans", "NT", "--math", "tf32", "--reps", "1", "--warmup", "0", "--check", "64");
        Assert.True(code == 0, $"exit {code}\n{output}\n{err}");
        Assert.Contains("math: tf32", output);
        Assert.Contains("cuBLAS TF32 comparison: CUDA devices only", output);
        Assert.Contains("NT n=40", output);
    }

    [Fact]
    public void GemmOnCpuSaysItStaysFp32()
    {
        var (code, output, err) = Run("gemm", "--device", "cpu", "--sizes", "16", "--math", "tf32", "--reps", "1", "--warmup", "0");
        Assert.True(code == 0, $"exit {code}\n{output}\n{err}");
        Assert.Contains("math: tf32 requested, but the cpu device computes in fp32", output);
    }

    [Theory]
    [InlineData("gemm", "--sizes", "16")]
    [InlineData("train", "digits-mlp")]
    public void BadMathIsAUsageError(params string[] command)
    {
        var (code, _, err) = Run([.. command, "--device", "cpu", "--math", "fp16"]);
        Assert.Equal(2, code);
        Assert.Contains("--math: 'fp16' is not a math mode; expected fp32 or tf32", err);
    }

    [Fact]
    public void TrainRecordsTheMathItUsed()
    {
        using var dir = new TempDir();
        var (code, output, err) = Run("train", "digits-mlp", "--epochs", "1", "--quiet", "--device", "cpu", "--math", "tf32", "--json", dir.File("s.json"));
        Assert.True(code == 0, $"exit {code}\n{output}\n{err}");
        Assert.Contains("| math fp32 |", output); // the cpu device computes in fp32 whatever --math says
        using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(dir.File("s.json")));
        Assert.Equal("fp32", json.RootElement.GetProperty("math").GetString());
    }
}
