using GpuNet.Kernels;
using GpuNet.Optim;

namespace GpuNet.Tests;

public sealed class OptimizerTests(BackendFixture f) : DeviceTestBase(f), IClassFixture<BackendFixture>
{
    // Layout: weights [0, 200) group 0, a gap [200, 203) in no segment, biases [203, 260) group 1 (no decay),
    // more weights [260, 301) group 0. 301 is prime; 200 is not a multiple of the 16-lane host vector.
    private const int N = 301;
    private static readonly ParamSegment[] Segments = [new(0, 200, 0), new(203, 57, 1), new(260, 41, 0)];

    private delegate GpuNet.Optim.Optimizer Make(Device d, Tensor p, Tensor g, double weightDecay, OptimizerOptions o);

    private sealed record Case(Make Make, OptimizerHyper Hyper, double Lr, bool DecoupledArg = false);

    private static readonly Dictionary<string, Case> Cases = new()
    {
        ["sgd"] = new((d, p, g, wd, o) => new Sgd(d, p, g, lr: 0.1, weightDecay: wd, options: o), new(OptimizerAlgorithm.Sgd), 0.1),
        ["sgd-momentum"] = new((d, p, g, wd, o) => new Sgd(d, p, g, lr: 0.1, momentum: 0.9, weightDecay: wd, options: o),
            new(OptimizerAlgorithm.Sgd) { Momentum = 0.9 }, 0.1),
        ["sgd-dampening"] = new((d, p, g, wd, o) => new Sgd(d, p, g, lr: 0.1, momentum: 0.8, dampening: 0.3, weightDecay: wd, options: o),
            new(OptimizerAlgorithm.Sgd) { Momentum = 0.8, Dampening = 0.3 }, 0.1),
        ["sgd-nesterov"] = new((d, p, g, wd, o) => new Sgd(d, p, g, lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: wd, options: o),
            new(OptimizerAlgorithm.Sgd) { Momentum = 0.9, Nesterov = true }, 0.1),
        ["adagrad"] = new((d, p, g, wd, o) => new Adagrad(d, p, g, lr: 0.1, weightDecay: wd, options: o),
            new(OptimizerAlgorithm.Adagrad) { Eps = 1e-10 }, 0.1),
        ["adagrad-decay"] = new((d, p, g, wd, o) => new Adagrad(d, p, g, lr: 0.1, lrDecay: 0.2, initialAccumulatorValue: 0.5, weightDecay: wd, options: o),
            new(OptimizerAlgorithm.Adagrad) { Eps = 1e-10, LrDecay = 0.2, InitialAccumulatorValue = 0.5 }, 0.1),
        ["rmsprop"] = new((d, p, g, wd, o) => new RmsProp(d, p, g, lr: 0.01, weightDecay: wd, options: o), new(OptimizerAlgorithm.RmsProp), 0.01),
        ["rmsprop-momentum"] = new((d, p, g, wd, o) => new RmsProp(d, p, g, lr: 0.01, momentum: 0.9, alpha: 0.9, weightDecay: wd, options: o),
            new(OptimizerAlgorithm.RmsProp) { Momentum = 0.9, Alpha = 0.9 }, 0.01),
        ["rmsprop-centered"] = new((d, p, g, wd, o) => new RmsProp(d, p, g, lr: 0.01, centered: true, weightDecay: wd, options: o),
            new(OptimizerAlgorithm.RmsProp) { Centered = true }, 0.01),
        ["rmsprop-centered-momentum"] = new((d, p, g, wd, o) => new RmsProp(d, p, g, lr: 0.01, centered: true, momentum: 0.5, weightDecay: wd, options: o),
            new(OptimizerAlgorithm.RmsProp) { Centered = true, Momentum = 0.5 }, 0.01),
        ["adam"] = new((d, p, g, wd, o) => new Adam(d, p, g, lr: 0.01, weightDecay: wd, options: o), new(OptimizerAlgorithm.Adam), 0.01),
        ["adam-amsgrad"] = new((d, p, g, wd, o) => new Adam(d, p, g, lr: 0.01, beta1: 0.8, beta2: 0.99, amsgrad: true, weightDecay: wd, options: o),
            new(OptimizerAlgorithm.Adam) { Beta1 = 0.8, Beta2 = 0.99, Amsgrad = true }, 0.01),
        ["adamw"] = new((d, p, g, wd, o) => Adam.AdamW(d, p, g, lr: 0.01, weightDecay: wd, options: o), new(OptimizerAlgorithm.Adam), 0.01, DecoupledArg: true),
        ["adamw-amsgrad"] = new((d, p, g, wd, o) => Adam.AdamW(d, p, g, lr: 0.01, amsgrad: true, weightDecay: wd, options: o),
            new(OptimizerAlgorithm.Adam) { Amsgrad = true }, 0.01, DecoupledArg: true),
    };

    // (weight_decay constructor argument, options regularisation, proximal L1)
    private static readonly Dictionary<string, (double Wd, Regularization Reg, bool Prox)> Regs = new()
    {
        ["none"] = (0, Regularization.None, false),
        ["wd-arg"] = (0.05, Regularization.None, false),
        ["l2"] = (0, new Regularization { WeightDecay = 0.05 }, false),
        ["l1"] = (0, new Regularization { L1 = 0.02 }, false),
        ["elastic"] = (0, Regularization.ElasticNet(0.04, 0.3), false),
        ["decoupled"] = (0, new Regularization { DecoupledWeightDecay = 0.1 }, false),
        ["l1-proximal"] = (0, new Regularization { L1 = 0.02 }, true),
    };

    public static TheoryData<string, string> AllCases()
    {
        var data = new TheoryData<string, string>();
        foreach (var c in Cases.Keys) foreach (var r in Regs.Keys) data.Add(c, r);
        return data;
    }

    private static int[] GroupOf(IEnumerable<ParamSegment> segments, int n)
    {
        var of = Enumerable.Repeat(-1, n).ToArray();
        foreach (var s in segments) for (long i = s.Offset; i < s.Offset + s.Length; i++) of[i] = s.Group;
        return of;
    }

    private static GroupSettings Settings(double l2, double l1, double dec, ParamGroup g, double lrScale = 1)
        => g.Regularization is { } r ? new(g.LrScale * lrScale, r.WeightDecay, r.L1, r.DecoupledWeightDecay, g.Frozen) : new(g.LrScale * lrScale, l2, l1, dec, g.Frozen);

    /// <summary>A float64 mirror of one optimizer: parameters, three state arrays, the step count.</summary>
    private sealed class RefRun(OptimizerHyper h, float[] p0, int[] groupOf)
    {
        public readonly double[] P = TestData.D(p0);
        public readonly double[] S1 = Enumerable.Repeat(h.Algorithm == OptimizerAlgorithm.Adagrad ? h.InitialAccumulatorValue : 0, p0.Length).ToArray();
        public readonly double[] S2 = new double[p0.Length], S3 = new double[p0.Length];
        public long T;

        public void Step(double lr, GroupSettings[] groups, float[] g) => OptimizerOp.Reference(h, ++T, lr, groups, groupOf, P, TestData.D(g), S1, S2, S3);
    }

    private static float[] Grad(int step, int n, float scale = 1f)
    {
        var g = TestData.Uniform(1000 + step, n);
        for (int i = 0; i < n; i++) g[i] *= scale;
        return g;
    }

    /// <summary>
    /// Runs <paramref name="steps"/> steps on the device and in float64, comparing the parameters at every step and
    /// the saved state at the end.
    /// </summary>
    private void Trajectory(string name, string reg, int n = N, ParamSegment[]? segments = null, int steps = 20,
        Func<int, float[]>? grads = null, double maxGradNorm = 0, double clipValue = 0, Func<int, double>? lrAt = null, ParamGroup[]? groups = null)
    {
        var c = Cases[name];
        var (wd, r, prox) = Regs[reg];
        segments ??= Segments;
        groups ??= [ParamGroup.Default, ParamGroup.NoDecay];
        grads ??= s => Grad(s, n);
        var hyper = c.Hyper with { MaxGradNorm = maxGradNorm, ClipValue = clipValue, ProximalL1 = prox };
        if (c.DecoupledArg && wd == 0) wd = 1e-2;       // AdamW's default decoupled weight decay, passed explicitly
        double l2 = r.WeightDecay + (c.DecoupledArg ? 0 : wd), dec = r.DecoupledWeightDecay + (c.DecoupledArg ? wd : 0);
        var options = new OptimizerOptions { Segments = segments, Groups = groups, Regularization = r, L1Mode = prox ? L1Mode.Proximal : L1Mode.Subgradient, MaxGradNorm = maxGradNorm, ClipValue = clipValue };

        var p0 = TestData.Uniform(1, n);
        using var p = D.FromArray(p0);
        using var g = D.Zeros(n);
        using var opt = c.Make(D, p, g, wd, options);
        var refGroups = groups.Select(gr => Settings(l2, r.L1, dec, gr)).ToArray();
        var reference = new RefRun(hyper, p0, GroupOf(segments, n));
        var tol = Tol.Optimizer;
        for (int s = 1; s <= steps; s++)
        {
            double lr = lrAt?.Invoke(s) ?? c.Lr;
            var gs = grads(s);
            g.CopyFrom(gs);
            opt.LearningRate = lr;
            opt.Step();
            reference.Step(lr, refGroups, gs);
            tol.AssertClose(p.ToArray(), reference.P, $"{name}/{reg} p at step {s}");
        }
        var saved = opt.Save();
        Assert.Equal(steps, saved.StepCount);
        var refState = new Dictionary<string, double[]>
        {
            ["momentum_buffer"] = c.Hyper.Algorithm == OptimizerAlgorithm.RmsProp ? reference.S2 : reference.S1,
            ["sum"] = reference.S1, ["square_avg"] = reference.S1, ["grad_avg"] = reference.S3,
            ["exp_avg"] = reference.S1, ["exp_avg_sq"] = reference.S2, ["max_exp_avg_sq"] = reference.S3,
        };
        Assert.Equal(hyper.States.Count, saved.Tensors.Count);
        foreach (var (stateName, values) in saved.Tensors)
            tol.AssertClose(values, refState[stateName], $"{name}/{reg} state {stateName}");
    }

    [Theory, Backends(nameof(AllCases))]
    public void TwentyStepsMatchReferenceAtEveryStep(string backend, string optimizer, string regularization)
    {
        Use(backend);
        Trajectory(optimizer, regularization);
    }

    [Theory, Backends]
    public void LargeBufferUsesEveryCoreAndMatchesReference(string backend)
    {
        Use(backend);
        // The host path splits buffers of 64K+ elements across cores; segments then straddle chunk boundaries.
        int n = D.IsHost ? 150_001 : 2_003;
        ParamSegment[] segs = [new(0, n / 3, 0), new(n / 3, 1000, 1), new(n / 3 + 1000, n - n / 3 - 1000, 0)];
        Trajectory("adam-amsgrad", "elastic", n, segs, steps: 3, maxGradNorm: 5);
    }

    [Theory]
    [BackendData("adam")]
    [BackendData("adagrad")]
    [BackendData("rmsprop-centered-momentum")]
    [BackendData("sgd-nesterov")]
    public void ZeroGradientsMatchReference(string backend, string optimizer)
    {
        Use(backend);
        Trajectory(optimizer, "none", steps: 5, grads: _ => new float[N]);
        Trajectory(optimizer, "elastic", steps: 5, grads: s => s % 2 == 0 ? new float[N] : Grad(s, N));
    }

    [Theory, Backends]
    public void AdamWithZeroGradientsLeavesParametersExactly(string backend)
    {
        Use(backend);
        var p0 = TestData.Uniform(1, N);
        using var p = D.FromArray(p0); using var g = D.Zeros(N);
        using var opt = new Adam(D, p, g, lr: 0.1);
        for (int s = 0; s < 3; s++) opt.Step();
        Assert.Equal(p0, p.ToArray());
    }

    [Theory]
    [BackendData("sgd-momentum")]
    [BackendData("adam")]
    [BackendData("rmsprop-centered")]
    public void HugeGradientsClippedByGlobalNormMatchReference(string backend, string optimizer)
    {
        Use(backend);
        Trajectory(optimizer, "l2", steps: 6, grads: s => Grad(s, N, 1e4f), maxGradNorm: 1.0);
    }

    [Theory, Backends]
    public void GradNormStaysOnDeviceAndMatchesReference(string backend)
    {
        Use(backend);
        var p0 = TestData.Uniform(1, N);
        using var p = D.FromArray(p0); using var g = D.FromArray(Grad(1, N, 300f));
        ParamGroup[] groups = [ParamGroup.Default, ParamGroup.NoDecay with { Frozen = true }];
        using var opt = new Sgd(D, p, g, lr: 0.1, options: new() { Segments = Segments, Groups = groups, MaxGradNorm = 2 });
        long launches = D.Counters.Launches, kernels = D.Counters.KernelLaunches, reads = D.Counters.DeviceToHostCopies;
        opt.Step();
        opt.Step();
        Assert.Equal(launches + 2, D.Counters.Launches);               // 1 per step
        Assert.Equal(kernels + (D.IsHost ? 0 : 4), D.Counters.KernelLaunches);   // norm pass + step per clipped step
        Assert.Equal(reads, D.Counters.DeviceToHostCopies);            // no read-back during steps
        var settings = groups.Select(gr => Settings(0, 0, 0, gr)).ToArray();
        double expected = OptimizerOp.ReferenceGradNorm(settings, GroupOf(Segments, N), TestData.D(Grad(1, N, 300f)));
        Tol.Reduction.AssertClose([(float)opt.LastGradNorm()], [expected], "global grad norm (frozen group excluded)");
    }

    [Theory, Backends]
    public void ValueClippingMatchesReference(string backend)
    {
        Use(backend);
        Trajectory("adam-amsgrad", "l1", steps: 6, grads: s => Grad(s, N, 10f), clipValue: 0.5);
    }

    [Theory, Backends]
    public void LearningRateScheduleReachingEtaMinMatchesReference(string backend)
    {
        Use(backend);
        // cosine annealing to eta_min = 0 at step 12, then held there: parameters must stop moving (no decay terms).
        static double Lr(int s) => s >= 12 ? 0 : 0.05 * (1 + Math.Cos(Math.PI * (s - 1) / 11)) / 2;
        Trajectory("sgd-momentum", "l2", steps: 16, lrAt: Lr);
        Trajectory("adam", "decoupled", steps: 16, lrAt: Lr);
    }

    [Theory, Backends]
    public void FrozenGroupIsUntouchedAndThawsLikeTheReference(string backend)
    {
        Use(backend);
        var c = Cases["adam"];
        var p0 = TestData.Uniform(1, N);
        using var p = D.FromArray(p0); using var g = D.Zeros(N);
        ParamGroup[] groups = [ParamGroup.Default, new ParamGroup { Frozen = true, LrScale = 2 }];
        using var opt = new Adam(D, p, g, lr: 0.01, weightDecay: 0.1, options: new() { Segments = Segments, Groups = groups, MaxGradNorm = 3 });
        var hyper = c.Hyper with { MaxGradNorm = 3 };
        var reference = new RefRun(hyper, p0, GroupOf(Segments, N));
        for (int s = 1; s <= 8; s++)
        {
            if (s == 5) { opt.SetGroup(1, groups[1] with { Frozen = false }); }
            var refGroups = new[] { new GroupSettings(1, 0.1, 0, 0, false), new GroupSettings(2, 0.1, 0, 0, Frozen: s < 5) };
            var gs = Grad(s, N);
            g.CopyFrom(gs);
            opt.Step();
            reference.Step(0.01, refGroups, gs);
            var got = p.ToArray();
            Tol.Optimizer.AssertClose(got, reference.P, $"step {s}");
            if (s < 5)
            {
                Assert.Equal(p0[203..260], got[203..260]);            // frozen: bit-identical
                Assert.All(opt.Save().Tensors["exp_avg"][203..260], v => Assert.Equal(0f, v));
            }
            Assert.Equal(p0[200..203], got[200..203]);                // the gap belongs to no segment
        }
    }

    [Theory, Backends]
    public void BiasGroupGetsNoWeightDecay(string backend)
    {
        Use(backend);
        var p0 = TestData.Uniform(1, N);
        using var p = D.FromArray(p0); using var g = D.Zeros(N);
        using var opt = new Sgd(D, p, g, lr: 0.5, weightDecay: 0.2, options: new() { Segments = Segments, Groups = [ParamGroup.Default, ParamGroup.NoDecay] });
        opt.Step();
        var got = p.ToArray();
        Assert.Equal(p0[203..260], got[203..260]);
        var expected = TestData.D(p0);
        for (int i = 0; i < 200; i++) expected[i] *= 1 - 0.5 * 0.2;
        Tol.Optimizer.AssertClose(got[..200], expected[..200], "decayed weights");
    }

    [Theory, Backends]
    public void ProximalL1GivesExactZeros(string backend)
    {
        Use(backend);
        var p0 = TestData.Uniform(1, N);
        using var p = D.FromArray(p0); using var g = D.Zeros(N);
        using var opt = new Sgd(D, p, g, lr: 1, options: new() { Regularization = new() { L1 = 0.3 }, L1Mode = L1Mode.Proximal });
        opt.Step();
        var got = p.ToArray();
        for (int i = 0; i < N; i++)
            Assert.Equal(Math.Abs(p0[i]) <= 0.3f ? 0f : p0[i] - MathF.Sign(p0[i]) * 0.3f, got[i], 1e-6f);
        Assert.Contains(0f, got);
        Assert.Equal(got.Count(v => v == 0f), p0.Count(v => Math.Abs(v) <= 0.3f));
    }

    [Theory]
    [BackendData(1, false)]
    [BackendData(10, false)]
    [BackendData(10, true)]
    public void OneLaunchPerStepWhateverTheSegmentCount(string backend, int segmentCount, bool clipped)
    {
        Use(backend);
        const int n = 257;
        var segs = Enumerable.Range(0, segmentCount).Select(k => new ParamSegment(k * (n / segmentCount), k == segmentCount - 1 ? n - k * (n / segmentCount) : n / segmentCount, k % 2)).ToArray();
        using var p = D.FromArray(TestData.Uniform(1, n)); using var g = D.FromArray(TestData.Uniform(2, n));
        using var opt = Adam.AdamW(D, p, g, options: new() { Segments = segs, Groups = [ParamGroup.Default, ParamGroup.NoDecay], MaxGradNorm = clipped ? 1 : 0 });
        long before = D.Counters.Launches, kernels = D.Counters.KernelLaunches;
        for (int s = 0; s < 3; s++) opt.Step();
        Assert.Equal(before + 3, D.Counters.Launches);
        Assert.Equal(kernels + (D.IsHost ? 0 : 3 * (clipped ? 2 : 1)), D.Counters.KernelLaunches);
    }

    [Theory]
    [BackendData("sgd-momentum")]
    [BackendData("adam-amsgrad")]
    [BackendData("rmsprop-centered-momentum")]
    [BackendData("adagrad-decay")]
    public void SaveRestoreMidTrajectoryResumesExactly(string backend, string name)
    {
        Use(backend);
        var c = Cases[name];
        var options = new OptimizerOptions { Segments = Segments, Groups = [ParamGroup.Default, ParamGroup.NoDecay], MaxGradNorm = 4, Regularization = new() { L1 = 0.01 } };
        var p0 = TestData.Uniform(1, N);
        float[] straight;
        using (var p = D.FromArray(p0))
        using (var g = D.Zeros(N))
        using (var opt = c.Make(D, p, g, 0.01, options))
        {
            for (int s = 1; s <= 12; s++) { g.CopyFrom(Grad(s, N, 3f)); opt.LearningRate = c.Lr / s; opt.Step(); }
            straight = p.ToArray();
        }
        OptimizerState state; float[] mid;
        using (var p = D.FromArray(p0))
        using (var g = D.Zeros(N))
        using (var opt = c.Make(D, p, g, 0.01, options))
        {
            for (int s = 1; s <= 6; s++) { g.CopyFrom(Grad(s, N, 3f)); opt.LearningRate = c.Lr / s; opt.Step(); }
            state = opt.Save(); mid = p.ToArray();
        }
        using (var p = D.FromArray(mid))
        using (var g = D.Zeros(N))
        using (var opt = c.Make(D, p, g, 0.01, options))
        {
            opt.Restore(state);
            Assert.Equal(6, opt.StepCount);
            for (int s = 7; s <= 12; s++) { g.CopyFrom(Grad(s, N, 3f)); opt.LearningRate = c.Lr / s; opt.Step(); }
            var resumed = p.ToArray();
            if (D.IsHost) Assert.Equal(straight, resumed);               // bit-identical on the host path
            else Tol.Optimizer.AssertClose(resumed, TestData.D(straight), $"{name} resumed");
        }
    }

    [Theory, Backends]
    public void RestoreRejectsMismatchedStateWithClearErrors(string backend)
    {
        Use(backend);
        using var p = D.Zeros(N); using var g = D.Zeros(N);
        using var adam = new Adam(D, p, g);
        using var ams = new Adam(D, p, g, amsgrad: true);
        using var sgd = new Sgd(D, p, g, momentum: 0.9);
        var e1 = Assert.Throws<ArgumentException>(() => adam.Restore(sgd.Save()));
        Assert.Contains("saved by Sgd", e1.Message);
        var e2 = Assert.Throws<ArgumentException>(() => adam.Restore(ams.Save()));
        Assert.Contains("max_exp_avg_sq", e2.Message);
        var wrongLength = adam.Save() with { Tensors = new Dictionary<string, float[]> { ["exp_avg"] = new float[5], ["exp_avg_sq"] = new float[N] } };
        var e3 = Assert.Throws<ArgumentException>(() => adam.Restore(wrongLength));
        Assert.Contains("'exp_avg' has 5 elements", e3.Message);
        Assert.Contains($"has {N}", e3.Message);
    }

    public static TheoryData<string, string> BadHyperparameters() => new()
    {
        { "lr", "lr" }, { "beta1", "beta1" }, { "beta2", "beta2" }, { "eps", "eps" }, { "weightDecay", "weightDecay" },
        { "momentum", "momentum" }, { "dampening", "dampening" }, { "alpha", "alpha" }, { "lrDecay", "lrDecay" },
        { "l1Ratio", "l1Ratio" }, { "MaxGradNorm", "MaxGradNorm" }, { "ClipValue", "ClipValue" }, { "L1", "L1" }, { "LearningRate", "LearningRate" },
        { "LrScale", "LrScale" },
    };

    [Theory, Backends(nameof(BadHyperparameters))]
    public void InvalidHyperparametersNameParameterValueAndRange(string backend, string which, string paramName)
    {
        Use(backend);
        using var p = D.Zeros(8); using var g = D.Zeros(8);
        Action act = which switch
        {
            "lr" => () => new Sgd(D, p, g, lr: 0).Dispose(),
            "beta1" => () => new Adam(D, p, g, beta1: 1.0).Dispose(),
            "beta2" => () => new Adam(D, p, g, beta2: -0.1).Dispose(),
            "eps" => () => new RmsProp(D, p, g, eps: 0).Dispose(),
            "weightDecay" => () => Adam.AdamW(D, p, g, weightDecay: -1).Dispose(),
            "momentum" => () => new Sgd(D, p, g, momentum: 1.0).Dispose(),
            "dampening" => () => new Sgd(D, p, g, momentum: 0.5, dampening: 1.5).Dispose(),
            "alpha" => () => new RmsProp(D, p, g, alpha: 1.0).Dispose(),
            "lrDecay" => () => new Adagrad(D, p, g, lrDecay: -0.1).Dispose(),
            "l1Ratio" => () => Regularization.ElasticNet(0.1, 1.5),
            "MaxGradNorm" => () => _ = new OptimizerOptions { MaxGradNorm = -1 },
            "ClipValue" => () => _ = new OptimizerOptions { ClipValue = double.NaN },
            "L1" => () => _ = new Regularization { L1 = -0.5 },
            "LearningRate" => () => { using var o = new Sgd(D, p, g); o.LearningRate = -0.25; },
            _ => () => _ = new ParamGroup { LrScale = 0 },
        };
        var e = Assert.Throws<ArgumentOutOfRangeException>(act);
        Assert.Equal(paramName, e.ParamName);
        Assert.Contains($"{paramName} = ", e.Message);
        Assert.Contains("valid range", e.Message);
    }

    [Theory, Backends]
    public void NesterovNeedsMomentumAndNoDampening(string backend)
    {
        Use(backend);
        using var p = D.Zeros(8); using var g = D.Zeros(8);
        Assert.Contains("momentum > 0", Assert.Throws<ArgumentException>(() => new Sgd(D, p, g, nesterov: true).Dispose()).Message);
        Assert.Contains("dampening = 0", Assert.Throws<ArgumentException>(() => new Sgd(D, p, g, momentum: 0.9, dampening: 0.1, nesterov: true).Dispose()).Message);
    }

    [Theory, Backends]
    public void BadSegmentsAndTensorsAreRejected(string backend)
    {
        Use(backend);
        using var p = D.Zeros(10); using var g = D.Zeros(10); using var g9 = D.Zeros(9);
        Assert.Throws<ShapeMismatchException>(() => new Sgd(D, p, g9).Dispose());
        Assert.Throws<ArgumentOutOfRangeException>(() => new Sgd(D, p, g, options: new() { Segments = [new(5, 6, 0)] }).Dispose());
        Assert.Throws<ArgumentOutOfRangeException>(() => new Sgd(D, p, g, options: new() { Segments = [new(0, 5, 1)] }).Dispose());
        var e = Assert.Throws<ArgumentException>(() => new Sgd(D, p, g, options: new() { Segments = [new(0, 5, 0), new(4, 3, 0)] }).Dispose());
        Assert.Contains("overlaps", e.Message);
    }
}

