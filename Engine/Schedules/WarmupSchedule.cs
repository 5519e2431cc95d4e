namespace GpuNet.Schedules;

/// <summary>The shape of the warm-up ramp of <see cref="WarmupSchedule"/>.</summary>
public enum WarmupKind
{
    /// <summary><c>factor(t) = start + (1 - start) * t / W</c>.</summary>
    Linear,
    /// <summary><c>factor(t) = start + (1 - start) * (1 - cos(pi * t / W)) / 2</c>.</summary>
    Cosine,
}

/// <summary>
/// A warm-up in front of any schedule: for steps <c>t &lt; W</c> the lr is <c>inner.LearningRate(0) * factor(t)</c>,
/// the factor rising from <c>start_factor</c> at t = 0 towards 1 (see <see cref="WarmupKind"/>); from step W on the
/// inner schedule runs <b>shifted</b> by W: <c>lr(t) = inner.LearningRate(t - W)</c>, so the inner schedule starts
/// at its own step 0 (its full lr) right after the warm-up and the curve is continuous at W.
/// <see cref="LearningRateSchedule.Unit"/> defaults to the inner schedule's unit; the wrapper's unit is the one that
/// counts, since the inner schedule only ever sees the wrapper's (shifted) step.
/// </summary>
public sealed class WarmupSchedule : LearningRateSchedule
{
    /// <summary>Wraps <paramref name="inner"/> with a warm-up.</summary>
    /// <param name="inner">The schedule that runs after the warm-up.</param>
    /// <param name="warmupSteps">The length W of the warm-up; &gt;= 1.</param>
    /// <param name="kind">The shape of the ramp.</param>
    /// <param name="startFactor">The factor at step 0; in [0, 1].</param>
    public WarmupSchedule(LearningRateSchedule inner, long warmupSteps, WarmupKind kind = WarmupKind.Linear, double startFactor = 0)
        : base((inner ?? throw new ArgumentNullException(nameof(inner))).BaseLearningRate)
    {
        ScheduleChecks.AtLeast(Name, nameof(warmupSteps), warmupSteps, 1);
        if (!Enum.IsDefined(kind))
            throw new ArgumentOutOfRangeException(nameof(kind), kind, $"{Name}: kind must be Linear or Cosine, got {kind}");
        ScheduleChecks.ClosedLow(Name, nameof(startFactor), startFactor, 0, 1, includeHi: true);
        Inner = inner;
        WarmupSteps = warmupSteps;
        Kind = kind;
        StartFactor = startFactor;
        Unit = inner.Unit;
    }

    /// <summary>The schedule that runs after the warm-up, with its step shifted by <see cref="WarmupSteps"/>.</summary>
    public LearningRateSchedule Inner { get; }

    /// <summary>The length of the warm-up.</summary>
    public long WarmupSteps { get; }

    /// <summary>The shape of the ramp.</summary>
    public WarmupKind Kind { get; }

    /// <summary>The factor applied at step 0.</summary>
    public double StartFactor { get; }

    /// <inheritdoc/>
    public override string Name => "Warmup";

    /// <inheritdoc/>
    protected override double Compute(long step)
    {
        if (step >= WarmupSteps) return Inner.LearningRate(step - WarmupSteps);
        double ramp = Kind == WarmupKind.Linear
            ? (double)step / WarmupSteps
            : (1 - Math.Cos(Math.PI * step / WarmupSteps)) / 2;
        return Inner.LearningRate(0) * (StartFactor + (1 - StartFactor) * ramp);
    }

    /// <inheritdoc/>
    protected override IEnumerable<(string Name, object Value)> Parameters() =>
        [("warmup_steps", WarmupSteps), ("kind", Kind), ("start_factor", StartFactor), ("inner", Inner)];
}
