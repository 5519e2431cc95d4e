namespace GpuNet.Schedules;

/// <summary>
/// PyTorch's <c>CosineAnnealingLR</c> in its closed form (<c>_get_closed_form_lr</c>):
/// <c>lr(t) = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2</c>.
/// It reaches <c>eta_min</c> at <c>t = T_max</c>; past <c>T_max</c> the closed form keeps cycling (it rises back to
/// <c>base_lr</c> at <c>2 T_max</c>, period <c>2 T_max</c>), exactly as PyTorch's closed form does. Wrap it or pick
/// <c>T_max</c> &gt;= the number of steps if the lr should stay at <c>eta_min</c>.
/// </summary>
public sealed class CosineAnnealingLR : LearningRateSchedule
{
    /// <summary>Creates a cosine annealing schedule.</summary>
    /// <param name="baseLr">The lr at step 0 (eta_max); finite and &gt; 0.</param>
    /// <param name="tMax">Steps from base_lr down to eta_min (PyTorch's <c>T_max</c>); &gt;= 1.</param>
    /// <param name="etaMin">The lowest lr (PyTorch's <c>eta_min</c>); in [0, base_lr].</param>
    public CosineAnnealingLR(double baseLr, long tMax, double etaMin = 0) : base(baseLr)
    {
        ScheduleChecks.AtLeast(Name, nameof(tMax), tMax, 1);
        ScheduleChecks.ClosedLow(Name, nameof(etaMin), etaMin, 0, baseLr, includeHi: true);
        TMax = tMax;
        EtaMin = etaMin;
    }

    /// <summary>Steps of the half cosine from base_lr to eta_min.</summary>
    public long TMax { get; }

    /// <summary>The lowest lr, reached at step T_max.</summary>
    public double EtaMin { get; }

    /// <inheritdoc/>
    public override string Name => "CosineAnnealingLR";

    /// <inheritdoc/>
    protected override double Compute(long step)
    {
        // Reduce the angle modulo the 2*T_max period first so late steps keep full precision.
        double t = step % (2 * TMax);
        return EtaMin + (BaseLearningRate - EtaMin) * (1 + Math.Cos(Math.PI * t / TMax)) / 2;
    }

    /// <inheritdoc/>
    protected override IEnumerable<(string Name, object Value)> Parameters() =>
        [("base_lr", BaseLearningRate), ("T_max", TMax), ("eta_min", EtaMin)];
}

/// <summary>
/// PyTorch's <c>CosineAnnealingWarmRestarts</c> (SGDR): cosine annealing from base_lr towards eta_min over a cycle
/// of <c>T_i</c> steps, then a restart at base_lr; the cycle length starts at <c>T_0</c> and is multiplied by
/// <c>T_mult</c> after each restart. <c>lr(t) = eta_min + (base_lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2</c>.
/// <para>
/// <c>T_cur</c> and <c>T_i</c> are computed in closed form from the step, as PyTorch's <c>step(epoch)</c> does:
/// for <c>T_mult = 1</c>, <c>T_i = T_0</c> and <c>T_cur = t mod T_0</c>; for <c>T_mult &gt; 1</c>, the cycle index is
/// <c>n = floor(log_{T_mult}(t / T_0 * (T_mult - 1) + 1))</c>, <c>T_i = T_0 * T_mult^n</c> and
/// <c>T_cur = t - T_0 * (T_mult^n - 1) / (T_mult - 1)</c>. The logarithm is only an estimate here: <c>n</c> is then
/// corrected with exact integer arithmetic, so a restart step always gets <c>T_cur = 0</c> (PyTorch's floating-point
/// <c>math.log</c> can land just below an integer at a restart, e.g. T_0 = 1, T_mult = 10, t = 111, and give
/// <c>T_cur = T_i</c>, i.e. eta_min instead of the restart).
/// </para>
/// </summary>
public sealed class CosineAnnealingWarmRestarts : LearningRateSchedule
{
    /// <summary>Creates a cosine schedule with warm restarts.</summary>
    /// <param name="baseLr">The lr at step 0 and at each restart (eta_max); finite and &gt; 0.</param>
    /// <param name="t0">The length of the first cycle (PyTorch's <c>T_0</c>); &gt;= 1.</param>
    /// <param name="tMult">The factor by which the cycle length grows after each restart (PyTorch's <c>T_mult</c>); &gt;= 1.</param>
    /// <param name="etaMin">The lowest lr (PyTorch's <c>eta_min</c>); in [0, base_lr].</param>
    public CosineAnnealingWarmRestarts(double baseLr, long t0, long tMult = 1, double etaMin = 0) : base(baseLr)
    {
        ScheduleChecks.AtLeast(Name, nameof(t0), t0, 1);
        ScheduleChecks.AtLeast(Name, nameof(tMult), tMult, 1);
        ScheduleChecks.ClosedLow(Name, nameof(etaMin), etaMin, 0, baseLr, includeHi: true);
        T0 = t0;
        TMult = tMult;
        EtaMin = etaMin;
    }

    /// <summary>The length of the first cycle.</summary>
    public long T0 { get; }

    /// <summary>The growth factor of the cycle length.</summary>
    public long TMult { get; }

    /// <summary>The lowest lr, approached at the end of each cycle.</summary>
    public double EtaMin { get; }

    /// <inheritdoc/>
    public override string Name => "CosineAnnealingWarmRestarts";

    /// <summary>
    /// The position inside the current cycle (<c>T_cur</c>) and the cycle length (<c>T_i</c>) at a step;
    /// <c>T_i</c> saturates at <see cref="long.MaxValue"/> for absurd <c>T_mult</c> (the lr uses the exact value).
    /// </summary>
    /// <param name="step">The step; &gt;= 0.</param>
    public (long TCur, long TI) Cycle(long step)
    {
        var (tCur, tI) = CycleExact(step);
        return (tCur, tI > long.MaxValue ? long.MaxValue : (long)tI);
    }

    (long TCur, Int128 TI) CycleExact(long step)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(step);
        if (TMult == 1) return (step % T0, T0);
        if (step < T0) return (step, T0);
        long m = TMult;
        int n = (int)Math.Floor(Math.Log((double)step / T0 * (m - 1) + 1) / Math.Log(m));
        // Exact integer correction of the floating-point estimate (at most one off).
        while (n > 0 && CycleStart(n) > step) n--;
        while (CycleStart(n + 1) <= step) n++;
        return ((long)(step - CycleStart(n)), T0 * Int128Pow(m, n));
    }

    // The step at which cycle n starts: T_0 (T_mult^n - 1) / (T_mult - 1). Any value above 2^100 is past every
    // long step, so it is returned as Int128.MaxValue instead of being computed (which could overflow Int128).
    Int128 CycleStart(int n)
    {
        if (n * Math.Log2(TMult) + Math.Log2(T0) > 100) return Int128.MaxValue;
        return T0 * (Int128Pow(TMult, n) - 1) / (TMult - 1);
    }

    static Int128 Int128Pow(long b, int e)
    {
        Int128 r = 1;
        for (int i = 0; i < e; i++) r *= b;
        return r;
    }

    /// <inheritdoc/>
    protected override double Compute(long step)
    {
        var (tCur, tI) = CycleExact(step);
        return EtaMin + (BaseLearningRate - EtaMin) * (1 + Math.Cos(Math.PI * tCur / (double)tI)) / 2;
    }

    /// <inheritdoc/>
    protected override IEnumerable<(string Name, object Value)> Parameters() =>
        [("base_lr", BaseLearningRate), ("T_0", T0), ("T_mult", TMult), ("eta_min", EtaMin)];
}
