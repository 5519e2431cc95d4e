using GpuNet.Schedules;

namespace GpuNet.Tests;

/// <summary>
/// Learning-rate schedules against closed forms written independently here (PyTorch's formulas, or a simulation of
/// PyTorch's recursive <c>step()</c> where that is the independent route), plus hand-computed spot values.
/// Pure host code: no device.
/// </summary>
public class ScheduleTests
{
    static void Close(double expected, double got, string what, double rtol = 1e-12)
    {
        double err = Math.Abs(got - expected);
        Assert.True(err <= 1e-15 + rtol * Math.Abs(expected), $"{what}: got {got:R}, expected {expected:R}, |err| {err:E3}");
    }

    static readonly long[] ManySteps = [0, 1, 2, 3, 5, 7, 9, 10, 11, 19, 20, 21, 29, 30, 31, 99, 100, 101, 999, 1000, 12345, 1_000_000];

    // ---- Constant, StepLR, MultiStepLR, ExponentialLR ----

    [Fact]
    public void ConstantIsConstant()
    {
        var s = new ConstantSchedule(0.3);
        foreach (long t in ManySteps) Assert.Equal(0.3, s.LearningRate(t));
    }

    [Fact]
    public void StepLRMatchesClosedForm()
    {
        var s = new StepLR(0.05, 30, 0.1);
        foreach (long t in ManySteps.Where(t => t < 2000))
            Close(0.05 * Math.Pow(0.1, Math.Floor(t / 30.0)), s.LearningRate(t), $"StepLR t={t}");
        // PyTorch docstring: 0.05 if epoch < 30, 0.005 if 30 <= epoch < 60, 0.0005 if 60 <= epoch < 90.
        Close(0.05, s.LearningRate(29), "29"); Close(0.005, s.LearningRate(30), "30");
        Close(0.005, s.LearningRate(59), "59"); Close(0.0005, s.LearningRate(60), "60");
        Close(0.0005, s.LearningRate(89), "89");
    }

    [Fact]
    public void MultiStepLRMatchesClosedForm()
    {
        long[] milestones = [30, 80, 81];
        var s = new MultiStepLR(0.05, milestones, 0.5);
        for (long t = 0; t < 200; t++)
        {
            int passed = milestones.Count(m => m <= t);
            Close(0.05 * Math.Pow(0.5, passed), s.LearningRate(t), $"MultiStepLR t={t}");
        }
        // PyTorch docstring (gamma 0.1, milestones [30, 80]): 0.05 if epoch < 30, 0.005 if 30 <= epoch < 80, 0.0005 after.
        var d = new MultiStepLR(0.05, [30, 80]);
        Close(0.05, d.LearningRate(29), "29"); Close(0.005, d.LearningRate(30), "30");
        Close(0.005, d.LearningRate(79), "79"); Close(0.0005, d.LearningRate(80), "80");
        Close(0.0005, d.LearningRate(1_000_000), "late");
    }

    [Fact]
    public void ExponentialLRMatchesClosedForm()
    {
        var s = new ExponentialLR(0.1, 0.95);
        foreach (long t in ManySteps.Where(t => t <= 1000))
            Close(0.1 * Math.Pow(0.95, t), s.LearningRate(t), $"ExponentialLR t={t}");
        Close(0.0125, new ExponentialLR(0.1, 0.5).LearningRate(3), "0.1 * 0.5^3 by hand");
    }

    // ---- Cosine annealing ----

    [Fact]
    public void CosineAnnealingMatchesClosedFormAndKeepsCycling()
    {
        const double baseLr = 0.1, etaMin = 0.001; const long tMax = 50;
        var s = new CosineAnnealingLR(baseLr, tMax, etaMin);
        for (long t = 0; t <= 400; t++)
            Close(etaMin + (baseLr - etaMin) * (1 + Math.Cos(Math.PI * t / tMax)) / 2, s.LearningRate(t), $"cos t={t}", 1e-11);
        Assert.Equal(baseLr, s.LearningRate(0));
        Close(etaMin, s.LearningRate(tMax), "reaches eta_min at T_max");
        Close(etaMin, s.LearningRate(3 * tMax), "eta_min again at 3 T_max");
        Close(baseLr, s.LearningRate(2 * tMax), "back to base at 2 T_max (PyTorch's closed form cycles)");
        Close(baseLr, s.LearningRate(2 * tMax * 1_000_000_000L), "late step, still exact");
        // Hand values for base 1, eta_min 0, T_max 4: t=1 (1 + cos(pi/4))/2 = (1 + 0.7071067811865476)/2; t=2 1/2; t=6 1/2.
        var h = new CosineAnnealingLR(1.0, 4);
        Close(0.8535533905932737, h.LearningRate(1), "hand t=1");
        Close(0.5, h.LearningRate(2), "hand t=2");
        Close(0.0, h.LearningRate(4), "hand t=4");
        Close(0.5, h.LearningRate(6), "hand t=6");
    }

    /// <summary>PyTorch's recursive <c>step()</c> without an epoch: T_cur += 1, and on reaching T_i wrap and grow T_i.</summary>
    static List<double> SimulateWarmRestarts(double baseLr, long t0, long tMult, double etaMin, int steps)
    {
        var lrs = new List<double>();
        long tCur = 0, tI = t0;
        for (int t = 0; t < steps; t++)
        {
            if (t > 0)
            {
                tCur++;
                if (tCur >= tI) { tCur -= tI; tI *= tMult; }
            }
            lrs.Add(etaMin + (baseLr - etaMin) * (1 + Math.Cos(Math.PI * tCur / tI)) / 2);
        }
        return lrs;
    }

    [Theory]
    [InlineData(1L, 1L)]
    [InlineData(5L, 1L)]
    [InlineData(3L, 2L)]
    [InlineData(1L, 2L)]
    [InlineData(2L, 3L)]
    [InlineData(7L, 10L)]
    public void WarmRestartsMatchRecursiveStepping(long t0, long tMult)
    {
        const double baseLr = 0.2, etaMin = 0.01;
        var s = new CosineAnnealingWarmRestarts(baseLr, t0, tMult, etaMin);
        var sim = SimulateWarmRestarts(baseLr, t0, tMult, etaMin, 3000);
        for (int t = 0; t < sim.Count; t++) Close(sim[t], s.LearningRate(t), $"T_0={t0} T_mult={tMult} t={t}", 1e-11);
    }

    [Fact]
    public void WarmRestartsRestartExactlyAtBoundaries()
    {
        // T_mult = 1, T_0 = 10: restarts at 0, 10, 20, ...; step 9 is the last of a cycle (T_cur = 9).
        var a = new CosineAnnealingWarmRestarts(1.0, 10, 1, 0.0);
        foreach (long r in new long[] { 0, 10, 20, 1_000_000_000_000 })
        {
            Assert.Equal((0L, 10L), a.Cycle(r));
            Assert.Equal(1.0, a.LearningRate(r));
            if (r > 0) Assert.Equal((9L, 10L), a.Cycle(r - 1));
        }
        // T_mult = 2, T_0 = 2: cycles [0,2) [2,6) [6,14) [14,30) [30,62): restarts at 0, 2, 6, 14, 30, 62.
        var b = new CosineAnnealingWarmRestarts(1.0, 2, 2, 0.0);
        long start = 0, len = 2;
        for (int n = 0; n < 50; n++)
        {
            Assert.Equal((0L, len), b.Cycle(start));
            Assert.Equal(1.0, b.LearningRate(start));
            Assert.Equal((len - 1, len), b.Cycle(start + len - 1));
            start += len; len *= 2;
        }
        // Hand values (T_0 = 2, T_mult = 2, base 1, eta_min 0): t=3 is T_cur=1 of T_i=4: (1 + cos(pi/4))/2;
        // t=5 is T_cur=3 of T_i=4: (1 + cos(3 pi/4))/2 = (1 - 0.7071067811865476)/2.
        Close(0.8535533905932737, b.LearningRate(3), "hand t=3");
        Close(0.14644660940672627, b.LearningRate(5), "hand t=5");
        // T_0 = 1, T_mult = 10: restarts at 0, 1, 11, 111, 1111. log10(1000) in floating point is 2.9999999999999996,
        // so PyTorch's log formula puts step 111 at T_cur = T_i = 100; the integer correction makes it a restart.
        var c = new CosineAnnealingWarmRestarts(1.0, 1, 10, 0.0);
        Assert.Equal((0L, 1000L), c.Cycle(111));
        Assert.Equal((999L, 1000L), c.Cycle(1110));
        Assert.Equal((0L, 10_000L), c.Cycle(1111));
        Assert.Equal(1.0, c.LearningRate(111));
        // Large steps with a growing cycle do not overflow.
        var (tCur, tI) = b.Cycle(long.MaxValue);
        Assert.True(tCur >= 0 && tCur < tI, $"T_cur {tCur} T_i {tI}");
    }

    // ---- Cyclic ----

    /// <summary>PyTorch's CyclicLR.get_lr, written as in PyTorch with floating-point x.</summary>
    static double PyTorchCyclic(double baseLr, double maxLr, double up, double down, string mode, double gamma, long t)
    {
        double total = up + down, ratio = up / total;
        double cycle = Math.Floor(1 + t / total);
        double x = 1.0 + t / total - cycle;
        double scale = x <= ratio ? x / ratio : (x - 1) / (ratio - 1);
        double fn = mode switch { "triangular2" => 1 / Math.Pow(2.0, cycle - 1), "exp_range" => Math.Pow(gamma, t), _ => 1.0 };
        return baseLr + (maxLr - baseLr) * scale * fn;
    }

    [Theory]
    [InlineData(CyclicMode.Triangular, "triangular", 4L, 4L, 1.0)]
    [InlineData(CyclicMode.Triangular, "triangular", 3L, 7L, 1.0)]
    [InlineData(CyclicMode.Triangular2, "triangular2", 5L, 2L, 1.0)]
    [InlineData(CyclicMode.ExpRange, "exp_range", 6L, 6L, 0.995)]
    [InlineData(CyclicMode.ExpRange, "exp_range", 1L, 9L, 0.9)]
    public void CyclicMatchesPyTorch(CyclicMode mode, string torchMode, long up, long down, double gamma)
    {
        const double baseLr = 0.001, maxLr = 0.006;
        var s = new CyclicLR(baseLr, maxLr, up, down, mode, gamma);
        for (long t = 0; t < 200; t++)
            Close(PyTorchCyclic(baseLr, maxLr, up, down, torchMode, gamma, t), s.LearningRate(t), $"{mode} t={t}", 1e-10);
        // Boundaries between the phases, exactly: base at each cycle start, the (scaled) peak at up.
        long total = up + down;
        for (long c = 0; c < 5; c++)
        {
            Assert.Equal(baseLr, s.LearningRate(c * total));
            double peakScale = mode switch { CyclicMode.Triangular2 => Math.Pow(0.5, c), CyclicMode.ExpRange => Math.Pow(gamma, c * total + up), _ => 1 };
            Close(baseLr + (maxLr - baseLr) * peakScale, s.LearningRate(c * total + up), $"{mode} peak of cycle {c}");
        }
    }

    [Fact]
    public void CyclicHandValues()
    {
        // Paper example (base 0.001, max 0.006, step size 2000): half way up 0.0035, peak 0.006, half way down 0.0035.
        var tri = new CyclicLR(0.001, 0.006, 2000);
        Close(0.0035, tri.LearningRate(1000), "t=1000"); Close(0.006, tri.LearningRate(2000), "t=2000");
        Close(0.0035, tri.LearningRate(3000), "t=3000"); Close(0.001, tri.LearningRate(4000), "t=4000");
        // triangular2: the second cycle's peak (t = 6000) has half the amplitude: 0.001 + 0.005 / 2.
        Close(0.0035, new CyclicLR(0.001, 0.006, 2000, mode: CyclicMode.Triangular2).LearningRate(6000), "tri2 t=6000");
        // exp_range, base 1, max 2, up 2, gamma 0.99: t=2 is the peak scaled by 0.99^2 = 0.9801.
        Close(1.9801, new CyclicLR(1, 2, 2, mode: CyclicMode.ExpRange, gamma: 0.99).LearningRate(2), "exp_range t=2");
    }

    [Fact]
    public void CyclicSineMatchesSineFormula()
    {
        const double baseLr = 0.01, maxLr = 0.1; const long up = 8;
        var s = new CyclicLR(baseLr, maxLr, up, mode: CyclicMode.Sine);
        for (long t = 0; t < 100; t++)
            Close(baseLr + (maxLr - baseLr) * (1 + Math.Sin(2 * Math.PI * t / (2 * up) - Math.PI / 2)) / 2, s.LearningRate(t), $"sine t={t}", 1e-10);
        Assert.Equal(baseLr, s.LearningRate(0)); Assert.Equal(maxLr, s.LearningRate(up)); Assert.Equal(baseLr, s.LearningRate(2 * up));
        // Asymmetric: up 2, down 6 -- a quarter of the way up is (1 - cos(pi/2))/2 = 1/2 of the amplitude, and
        // 3 steps into the down phase is (1 + cos(pi/2))/2 = 1/2 as well.
        var a = new CyclicLR(0.0 + 1, 3, 2, 6, CyclicMode.Sine);
        Close(2.0, a.LearningRate(1), "asym up"); Assert.Equal(3.0, a.LearningRate(2)); Close(2.0, a.LearningRate(5), "asym down");
    }

    // ---- OneCycle ----

    /// <summary>PyTorch's OneCycleLR.get_lr for one group, written out with explicit phase ends.</summary>
    static double PyTorchOneCycle(double maxLr, long total, double pct, bool cos, double div, double finalDiv, bool three, long t)
    {
        double initial = maxLr / div, min = initial / finalDiv;
        double e0 = pct * total - 1;
        (double s, double e, double a, double b) phase;
        if (!three)
            phase = t <= e0 ? (0, e0, initial, maxLr) : (e0, total - 1, maxLr, min);
        else
        {
            double e1 = 2 * pct * total - 2;
            phase = t <= e0 ? (0, e0, initial, maxLr) : t <= e1 ? (e0, e1, maxLr, initial) : (e1, total - 1, initial, min);
        }
        double p = (t - phase.s) / (phase.e - phase.s);
        return cos ? phase.b + (phase.a - phase.b) / 2 * (Math.Cos(Math.PI * p) + 1) : (phase.b - phase.a) * p + phase.a;
    }

    [Theory]
    [InlineData(100L, 0.3, true, false)]
    [InlineData(100L, 0.3, false, false)]
    [InlineData(97L, 0.25, true, true)]
    [InlineData(97L, 0.45, false, true)]
    [InlineData(10L, 0.3, true, false)]
    public void OneCycleMatchesPyTorch(long total, double pct, bool cos, bool three)
    {
        const double maxLr = 0.5, div = 25, finalDiv = 1e4;
        var s = new OneCycleLR(maxLr, total, pct, cos ? AnnealStrategy.Cos : AnnealStrategy.Linear, div, finalDiv, three);
        for (long t = 0; t <= total; t++)
            Close(PyTorchOneCycle(maxLr, total, pct, cos, div, finalDiv, three, t), s.LearningRate(t), $"t={t}", 1e-11);
        Close(maxLr / div, s.LearningRate(0), "starts at initial_lr");
        Close(maxLr / div / finalDiv, s.LearningRate(total - 1), "ends at initial_lr / final_div_factor", 1e-9);
        Assert.Equal(maxLr / div / finalDiv, s.MinLearningRate);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => s.LearningRate(total + 1));
        Assert.Equal("step", ex.ParamName);
    }

    [Fact]
    public void OneCycleHandValuesAndPhaseBoundaries()
    {
        // max 1, total 10, pct 0.3, div 25, final 1e4: initial 0.04, min 4e-6; phase ends at 0.3*10 - 1 = 2 and 9.
        // t=1 is half way up: cos: 1 + (0.04 - 1)/2 * (cos(pi/2) + 1) = 0.52; linear gives the same midpoint.
        var c = new OneCycleLR(1.0, 10);
        Close(0.04, c.LearningRate(0), "t=0"); Close(0.52, c.LearningRate(1), "t=1"); Assert.Equal(1.0, c.LearningRate(2));
        Close(4e-6, c.LearningRate(9), "t=9", 1e-9);
        // Second phase, 7 steps from 2 to 9: t=3 is pct 1/7: 4e-6 + (1 - 4e-6)/2 * (cos(pi/7) + 1).
        Close(4e-6 + (1 - 4e-6) / 2 * (Math.Cos(Math.PI / 7) + 1), c.LearningRate(3), "t=3");
        var l = new OneCycleLR(1.0, 10, annealStrategy: AnnealStrategy.Linear);
        Close(0.52, l.LearningRate(1), "linear t=1");
        Close(1 + (4e-6 - 1) * 3.0 / 7, l.LearningRate(5), "linear t=5: pct 3/7");
        // Three phases: ends 2, 4, 9; t=4 is back at initial_lr, t=3 is half way down: 0.52.
        var t3 = new OneCycleLR(1.0, 10, threePhase: true);
        Assert.Equal(1.0, t3.LearningRate(2)); Close(0.52, t3.LearningRate(3), "3-phase t=3");
        Close(0.04, t3.LearningRate(4), "3-phase t=4"); Close(4e-6, t3.LearningRate(9), "3-phase t=9", 1e-9);
    }

    // ---- Warm-up ----

    [Fact]
    public void LinearWarmupInFrontOfStepDecay()
    {
        var inner = new StepLR(0.1, 2, 0.5);
        var s = new WarmupSchedule(inner, 4, WarmupKind.Linear, 0.0);
        // Hand values: 0.1 * t/4 for t < 4, then StepLR at t - 4: 0.1, 0.1, 0.05, 0.05, 0.025.
        double[] expected = [0, 0.025, 0.05, 0.075, 0.1, 0.1, 0.05, 0.05, 0.025];
        for (int t = 0; t < expected.Length; t++) Close(expected[t], s.LearningRate(t), $"t={t}");
        for (long t = 4; t < 300; t++) Assert.Equal(inner.LearningRate(t - 4), s.LearningRate(t));
        var f = new WarmupSchedule(inner, 10, WarmupKind.Linear, 0.25);
        for (long t = 0; t < 10; t++) Close(0.1 * (0.25 + 0.75 * t / 10.0), f.LearningRate(t), $"start 0.25 t={t}");
    }

    [Fact]
    public void CosineWarmupInFrontOfCosineAnnealing()
    {
        var inner = new CosineAnnealingLR(0.2, 100, 0.002);
        const long w = 16; const double start = 0.1;
        var s = new WarmupSchedule(inner, w, WarmupKind.Cosine, start);
        for (long t = 0; t < w; t++)
            Close(0.2 * (start + (1 - start) * (1 - Math.Cos(Math.PI * t / w)) / 2), s.LearningRate(t), $"warm-up t={t}");
        for (long t = w; t < 400; t++)
            Close(0.002 + (0.2 - 0.002) * (1 + Math.Cos(Math.PI * (t - w) / 100)) / 2, s.LearningRate(t), $"after t={t}", 1e-11);
        Close(0.02, s.LearningRate(0), "start factor 0.1 of 0.2");
        Close(0.2 * (0.1 + 0.9 * 0.5), s.LearningRate(w / 2), "half way: (1 - cos(pi/2))/2 = 1/2");
        Assert.Equal(0.2, s.LearningRate(w));
        Close(0.002, s.LearningRate(w + 100), "eta_min after the shift");
        // Wrapping keeps the inner unit unless overridden.
        var e = new WarmupSchedule(new ConstantSchedule(1) { Unit = ScheduleUnit.Epoch }, 3);
        Assert.Equal(ScheduleUnit.Epoch, e.Unit);
        Assert.Equal(ScheduleUnit.Step, new WarmupSchedule(new ConstantSchedule(1) { Unit = ScheduleUnit.Epoch }, 3) { Unit = ScheduleUnit.Step }.Unit);
    }

    // ---- ReduceLROnPlateau ----

    [Fact]
    public void PlateauMinRelWithPatience()
    {
        // patience 2, factor 0.5, rel threshold 0.1 (better means < best * 0.9).
        var p = new ReduceLROnPlateau(1.0, PlateauMode.Min, 0.5, patience: 2, threshold: 0.1);
        // step: metric -> best, bad, lr
        // 1: 10 -> best 10 (inf * 0.9 = inf), bad 0, lr 1
        // 2: 9.5 -> not < 9, bad 1
        // 3: 8.9 -> < 9, best 8.9, bad 0
        // 4,5: 8.5, 8.5 -> not < 8.01, bad 1, 2 (not > 2)
        // 6: 8.5 -> bad 3 > 2: lr 0.5, bad 0
        // 7,8: 9, 9 -> bad 1, 2;  9: 9 -> bad 3: lr 0.25
        double[] metrics = [10, 9.5, 8.9, 8.5, 8.5, 8.5, 9, 9, 9];
        double[] lrs = [1, 1, 1, 1, 1, 0.5, 0.5, 0.5, 0.25];
        for (int i = 0; i < metrics.Length; i++) Assert.Equal(lrs[i], p.Step(metrics[i]));
        Assert.Equal(8.9, p.Best); Assert.Equal(0, p.NumBadEpochs); Assert.Equal(9, p.LastEpoch);
    }

    [Fact]
    public void PlateauMaxAbsWithCooldownAndMinLr()
    {
        // max mode, abs threshold 0.01 (better means > best + 0.01), patience 0, cooldown 2, factor 0.1, min_lr 0.002.
        var p = new ReduceLROnPlateau(1.0, PlateauMode.Max, 0.1, patience: 0, threshold: 0.01, thresholdMode: ThresholdMode.Abs, cooldown: 2, minLr: 0.002);
        // 1: 0.5 -> best 0.5, lr 1
        // 2: 0.505 -> not > 0.51: bad 1 > 0: lr 0.1, cooldown 2, bad 0
        // 3: 0.4 -> bad 1; in cooldown: counter 1, bad 0 -> lr 0.1
        // 4: 0.4 -> bad 1; in cooldown: counter 0, bad 0 -> lr 0.1
        // 5: 0.4 -> bad 1 > 0: lr max(0.01, 0.002) = 0.01, cooldown 2
        // 6: 0.6 -> better: best 0.6, bad 0; cooldown counter 1
        // 7: 0.6 -> bad 1; cooldown counter 0, bad 0
        // 8: 0.6 -> bad 1: lr max(0.001, 0.002) = 0.002, cooldown 2
        // 9, 10: 0.6 in cooldown; 11: 0.6 -> reduce to max(0.0002, 0.002) = 0.002: no change (0 <= eps)
        double[] metrics = [0.5, 0.505, 0.4, 0.4, 0.4, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6];
        double[] lrs = [1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.002, 0.002, 0.002, 0.002];
        for (int i = 0; i < metrics.Length; i++) Close(lrs[i], p.Step(metrics[i]), $"step {i + 1}");
        Assert.Equal(0.6, p.Best);
        Assert.Equal(2, p.CooldownCounter);
    }

    [Fact]
    public void PlateauThresholdModesAndEps()
    {
        // min/rel: 0.95 is not < 1 * (1 - 0.1); min/abs: 0.95 is < 1 - 0.01; max/rel: 1.05 is not > 1 * 1.1; max/abs: 1.05 > 1 + 0.01.
        Assert.False(new ReduceLROnPlateau(1, PlateauMode.Min, threshold: 0.1).IsBetter(0.95, 1));
        Assert.True(new ReduceLROnPlateau(1, PlateauMode.Min, threshold: 0.01, thresholdMode: ThresholdMode.Abs).IsBetter(0.95, 1));
        Assert.False(new ReduceLROnPlateau(1, PlateauMode.Max, threshold: 0.1).IsBetter(1.05, 1));
        Assert.True(new ReduceLROnPlateau(1, PlateauMode.Max, threshold: 0.01, thresholdMode: ThresholdMode.Abs).IsBetter(1.05, 1));
        // NaN is never better: it counts as a bad step.
        var n = new ReduceLROnPlateau(1, patience: 0);
        n.Step(1); Assert.Equal(0.1, n.Step(double.NaN), 15);
        // eps: a reduction by no more than eps is ignored (lr 1e-8 * 0.5 lowers it by 5e-9 <= 1e-8).
        var e = new ReduceLROnPlateau(1e-8, patience: 0);
        e.Step(1); Assert.Equal(1e-8, e.Step(2));
    }

    [Fact]
    public void PlateauStateRoundTrips()
    {
        var a = new ReduceLROnPlateau(1.0, factor: 0.5, patience: 1, cooldown: 1);
        double[] metrics = [5, 6, 6, 6, 4, 7, 7, 7, 7, 3, 8, 8];
        var b = new ReduceLROnPlateau(1.0, factor: 0.5, patience: 1, cooldown: 1);
        for (int i = 0; i < 6; i++) a.Step(metrics[i]);
        var state = a.GetState();
        b.RestoreState(state);
        Assert.Equal(state, b.GetState());
        for (int i = 6; i < metrics.Length; i++) Assert.Equal(a.Step(metrics[i]), b.Step(metrics[i]));
        Assert.Equal(a.GetState(), b.GetState());
        Assert.True(a.LearningRate < 1.0, "the sequence reduced the lr");
        var fresh = new ReduceLROnPlateau(1.0).GetState();
        Assert.Equal(new PlateauState(1.0, double.PositiveInfinity, 0, 0, 0), fresh);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => b.RestoreState(state with { NumBadEpochs = -1 }));
        Assert.Equal("state.NumBadEpochs", ex.ParamName);
    }

    // ---- Describe, units, argument validation ----

    [Fact]
    public void DescribeNamesScheduleAndParameters()
    {
        Assert.Equal("StepLR(base_lr=0.1, step_size=30, gamma=0.5, unit=Epoch)", new StepLR(0.1, 30, 0.5) { Unit = ScheduleUnit.Epoch }.Describe());
        Assert.Equal("MultiStepLR(base_lr=0.1, milestones=[3, 7], gamma=0.1, unit=Step)", new MultiStepLR(0.1, [3, 7]).ToString());
        Assert.Equal("Warmup(warmup_steps=5, kind=Cosine, start_factor=0, inner=CosineAnnealingLR(base_lr=0.1, T_max=10, eta_min=0, unit=Step), unit=Step)",
            new WarmupSchedule(new CosineAnnealingLR(0.1, 10), 5, WarmupKind.Cosine).Describe());
        Assert.Contains("T_0=3, T_mult=2", new CosineAnnealingWarmRestarts(0.1, 3, 2).Describe());
        Assert.Contains("mode=ExpRange, gamma=0.9", new CyclicLR(0.1, 1, 4, mode: CyclicMode.ExpRange, gamma: 0.9).Describe());
        Assert.Contains("OneCycleLR(max_lr=1, total_steps=10, pct_start=0.3, anneal_strategy=Cos, div_factor=25, final_div_factor=10000, three_phase=False",
            new OneCycleLR(1, 10).Describe());
        Assert.StartsWith("Constant(base_lr=0.5", new ConstantSchedule(0.5).Describe());
        Assert.StartsWith("ExponentialLR(base_lr=0.5, gamma=0.9", new ExponentialLR(0.5, 0.9).Describe());
        Assert.Equal("ReduceLROnPlateau(initial_lr=0.1, mode=Max, factor=0.5, patience=3, threshold=0.0001, threshold_mode=Rel, cooldown=0, min_lr=0, eps=1E-08, unit=Epoch)",
            new ReduceLROnPlateau(0.1, PlateauMode.Max, 0.5, 3).Describe());
    }

    public static TheoryData<string, string, string> InvalidArguments => new()
    {
        // (case, expected ParamName, text the message must contain)
        { "const base 0", "baseLr", "(0, +inf), got 0" },
        { "const base NaN", "baseLr", "got NaN" },
        { "step size 0", "stepSize", "stepSize must be in [1," },
        { "step gamma 0", "gamma", "StepLR: gamma must be in (0, +inf), got 0" },
        { "step gamma inf", "gamma", "got Infinity" },
        { "multistep empty", "milestones", "at least 1" },
        { "multistep unsorted", "milestones", "milestones[1] = 3 after milestones[0] = 5" },
        { "multistep negative", "milestones", "milestones[0] = -1" },
        { "exp gamma -1", "gamma", "got -1" },
        { "cos tmax 0", "tMax", "[1, " },
        { "cos etamin -1", "etaMin", "[0, 0.1], got -1" },
        { "cos etamin > base", "etaMin", "[0, 0.1], got 0.2" },
        { "sgdr t0 0", "t0", "t0 must be in [1," },
        { "sgdr tmult 0", "tMult", "tMult must be in [1," },
        { "sgdr etamin -0.5", "etaMin", "got -0.5" },
        { "cyclic max < base", "maxLr", "[base_lr = 0.1, +inf), got 0.05" },
        { "cyclic up 0", "stepSizeUp", "got 0" },
        { "cyclic down 0", "stepSizeDown", "got 0" },
        { "cyclic gamma 1.5", "gamma", "(0, 1], got 1.5" },
        { "cyclic mode 9", "mode", "Triangular, Triangular2, ExpRange, Sine" },
        { "onecycle max 0", "maxLr", "got 0" },
        { "onecycle total 1", "totalSteps", "[2, " },
        { "onecycle pct 0", "pctStart", "(0, 1), got 0" },
        { "onecycle pct 1", "pctStart", "(0, 1), got 1" },
        { "onecycle pct too small", "pctStart", "(0.1, 1) for total_steps = 10" },
        { "onecycle pct three-phase", "pctStart", "(0.1, 0.55) for total_steps = 10 with three phases" },
        { "onecycle div 0", "divFactor", "got 0" },
        { "onecycle final div -1", "finalDivFactor", "got -1" },
        { "warmup steps 0", "warmupSteps", "[1, " },
        { "warmup factor 1.5", "startFactor", "[0, 1], got 1.5" },
        { "plateau lr 0", "initialLr", "got 0" },
        { "plateau factor 1", "factor", "(0, 1), got 1" },
        { "plateau factor 0", "factor", "(0, 1), got 0" },
        { "plateau patience -1", "patience", "[0, " },
        { "plateau threshold rel 1", "threshold", "[0, 1), got 1" },
        { "plateau threshold abs -1", "threshold", "[0, +inf), got -1" },
        { "plateau cooldown -1", "cooldown", "got -1" },
        { "plateau min lr > lr", "minLr", "[0, 0.1], got 0.5" },
        { "plateau eps -1", "eps", "got -1" },
        { "step negative", "step", "got -1" },
    };

    static void Construct(string c)
    {
        _ = c switch
        {
            "const base 0" => new ConstantSchedule(0),
            "const base NaN" => new ConstantSchedule(double.NaN),
            "step size 0" => new StepLR(0.1, 0),
            "step gamma 0" => new StepLR(0.1, 10, 0),
            "step gamma inf" => new StepLR(0.1, 10, double.PositiveInfinity),
            "multistep empty" => new MultiStepLR(0.1, []),
            "multistep unsorted" => new MultiStepLR(0.1, [5, 3]),
            "multistep negative" => new MultiStepLR(0.1, [-1, 3]),
            "exp gamma -1" => new ExponentialLR(0.1, -1),
            "cos tmax 0" => new CosineAnnealingLR(0.1, 0),
            "cos etamin -1" => new CosineAnnealingLR(0.1, 10, -1),
            "cos etamin > base" => new CosineAnnealingLR(0.1, 10, 0.2),
            "sgdr t0 0" => new CosineAnnealingWarmRestarts(0.1, 0),
            "sgdr tmult 0" => new CosineAnnealingWarmRestarts(0.1, 10, 0),
            "sgdr etamin -0.5" => new CosineAnnealingWarmRestarts(0.1, 10, 1, -0.5),
            "cyclic max < base" => new CyclicLR(0.1, 0.05),
            "cyclic up 0" => new CyclicLR(0.1, 1, 0),
            "cyclic down 0" => new CyclicLR(0.1, 1, 5, 0),
            "cyclic gamma 1.5" => new CyclicLR(0.1, 1, 5, mode: CyclicMode.ExpRange, gamma: 1.5),
            "cyclic mode 9" => new CyclicLR(0.1, 1, 5, mode: (CyclicMode)9),
            "onecycle max 0" => new OneCycleLR(0, 10),
            "onecycle total 1" => new OneCycleLR(1, 1),
            "onecycle pct 0" => new OneCycleLR(1, 10, 0),
            "onecycle pct 1" => new OneCycleLR(1, 10, 1),
            "onecycle pct too small" => new OneCycleLR(1, 10, 0.1),
            "onecycle pct three-phase" => new OneCycleLR(1, 10, 0.6, threePhase: true),
            "onecycle div 0" => new OneCycleLR(1, 10, divFactor: 0),
            "onecycle final div -1" => new OneCycleLR(1, 10, finalDivFactor: -1),
            "warmup steps 0" => new WarmupSchedule(new ConstantSchedule(1), 0),
            "warmup factor 1.5" => new WarmupSchedule(new ConstantSchedule(1), 3, startFactor: 1.5),
            "plateau lr 0" => new ReduceLROnPlateau(0),
            "plateau factor 1" => new ReduceLROnPlateau(0.1, factor: 1),
            "plateau factor 0" => new ReduceLROnPlateau(0.1, factor: 0),
            "plateau patience -1" => new ReduceLROnPlateau(0.1, patience: -1),
            "plateau threshold rel 1" => new ReduceLROnPlateau(0.1, threshold: 1),
            "plateau threshold abs -1" => new ReduceLROnPlateau(0.1, threshold: -1, thresholdMode: ThresholdMode.Abs),
            "plateau cooldown -1" => new ReduceLROnPlateau(0.1, cooldown: -1),
            "plateau min lr > lr" => new ReduceLROnPlateau(0.1, minLr: 0.5),
            "plateau eps -1" => new ReduceLROnPlateau(0.1, eps: -1),
            "step negative" => (object)new ConstantSchedule(1).LearningRate(-1),
            _ => throw new InvalidOperationException($"unknown case {c}"),
        };
    }

    [Theory, MemberData(nameof(InvalidArguments))]
    public void InvalidArgumentsAreRejected(string c, string paramName, string messagePart)
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => Construct(c));
        Assert.Equal(paramName, ex.ParamName);
        Assert.Contains(messagePart, ex.Message);
    }

    [Fact]
    public void ValidEdgeArgumentsAreAccepted()
    {
        Assert.Equal(0.1, new CosineAnnealingLR(0.1, 1, 0.1).LearningRate(7));   // eta_min == base: flat
        Assert.Equal(0.1, new CyclicLR(0.1, 0.1, 1).LearningRate(3));           // max == base: flat
        Assert.Equal(0.0, new WarmupSchedule(new ConstantSchedule(1), 1).LearningRate(0));
        Assert.Equal(1.0, new WarmupSchedule(new ConstantSchedule(1), 1, startFactor: 1).LearningRate(0));
        Assert.Equal(2.0, new StepLR(1, 1, 2).LearningRate(1));                 // gamma > 1 grows, as PyTorch allows
        var shortest = new OneCycleLR(0.5, 2, 0.51);                             // up phase ends at 0.51 * 2 - 1 = 0.02
        Close(0.02, shortest.LearningRate(0), "shortest t=0");
        Close(2e-6, shortest.LearningRate(1), "shortest t=1", 1e-9);
    }
}
