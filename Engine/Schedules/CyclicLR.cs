namespace GpuNet.Schedules;

/// <summary>The amplitude policy of <see cref="CyclicLR"/>.</summary>
public enum CyclicMode
{
    /// <summary>Triangular cycles of constant amplitude (PyTorch's <c>triangular</c>).</summary>
    Triangular,
    /// <summary>Triangular cycles whose amplitude halves every cycle: scale <c>1 / 2^(cycle - 1)</c> (PyTorch's <c>triangular2</c>).</summary>
    Triangular2,
    /// <summary>Triangular cycles whose amplitude is scaled by <c>gamma^t</c>, t the step (PyTorch's <c>exp_range</c>).</summary>
    ExpRange,
    /// <summary>
    /// Smooth cycles of constant amplitude: a half cosine rises over the up phase and another falls over the down phase,
    /// <c>lr = base + (max - base) * (1 - cos(pi * p / up)) / 2</c> for the position <c>p</c> in [0, up] of the cycle, and
    /// <c>lr = base + (max - base) * (1 + cos(pi * (p - up) / down)) / 2</c> for p in [up, up + down). With
    /// up = down = period / 2 this is <c>base + (max - base) * (1 + sin(2 pi t / period - pi / 2)) / 2</c>. Not in PyTorch.
    /// </summary>
    Sine,
}

/// <summary>
/// PyTorch's <c>CyclicLR</c> (learning rate only; momentum cycling is not part of a learning-rate schedule): the lr
/// rises linearly from base_lr to max_lr over <c>step_size_up</c> steps, then falls back over <c>step_size_down</c>
/// steps, and repeats. With <c>total = up + down</c>, <c>cycle = 1 + floor(t / total)</c> and the position
/// <c>p = t mod total</c>, the height is <c>h = p / up</c> while <c>p &lt;= up</c>, else <c>h = (total - p) / down</c>,
/// and <c>lr(t) = base_lr + (max_lr - base_lr) * h * scale</c>, the scale given by <see cref="CyclicMode"/>. This is
/// PyTorch's <c>x = 1 + t / total - cycle</c>, <c>h = x / ratio</c> or <c>(x - 1) / (ratio - 1)</c> rewritten in
/// integers, so phase boundaries are exact (PyTorch's values differ by rounding only).
/// </summary>
public sealed class CyclicLR : LearningRateSchedule
{
    /// <summary>Creates a cyclic schedule.</summary>
    /// <param name="baseLr">The lower bound of the cycle and the lr at step 0; finite and &gt; 0.</param>
    /// <param name="maxLr">The upper bound of the cycle; finite and &gt;= base_lr.</param>
    /// <param name="stepSizeUp">Steps of the rising half of a cycle; &gt;= 1.</param>
    /// <param name="stepSizeDown">Steps of the falling half; &gt;= 1; null means equal to <paramref name="stepSizeUp"/>.</param>
    /// <param name="mode">The amplitude policy.</param>
    /// <param name="gamma">The per-step amplitude factor of <see cref="CyclicMode.ExpRange"/>; in (0, 1] (PyTorch requires the scale in [0, 1]).</param>
    public CyclicLR(double baseLr, double maxLr, long stepSizeUp = 2000, long? stepSizeDown = null,
        CyclicMode mode = CyclicMode.Triangular, double gamma = 1.0) : base(baseLr)
    {
        if (!(maxLr >= baseLr) || !double.IsFinite(maxLr))
            throw ScheduleChecks.Fail(Name, nameof(maxLr), maxLr, $"[base_lr = {Format(baseLr)}, +inf)");
        ScheduleChecks.AtLeast(Name, nameof(stepSizeUp), stepSizeUp, 1);
        long down = stepSizeDown ?? stepSizeUp;
        ScheduleChecks.AtLeast(Name, nameof(stepSizeDown), down, 1);
        if (stepSizeUp > long.MaxValue - down)
            throw ScheduleChecks.Fail(Name, nameof(stepSizeDown), down, $"[1, {long.MaxValue - stepSizeUp}] (stepSizeUp + stepSizeDown must fit a long)");
        if (!Enum.IsDefined(mode))
            throw new ArgumentOutOfRangeException(nameof(mode), mode, $"{Name}: mode must be one of {string.Join(", ", Enum.GetNames<CyclicMode>())}, got {mode}");
        ScheduleChecks.OpenLow(Name, nameof(gamma), gamma, 0, 1, includeHi: true);
        MaxLearningRate = maxLr;
        StepSizeUp = stepSizeUp;
        StepSizeDown = down;
        Mode = mode;
        Gamma = gamma;
    }

    /// <summary>The upper bound of the cycle.</summary>
    public double MaxLearningRate { get; }

    /// <summary>Steps of the rising half of a cycle.</summary>
    public long StepSizeUp { get; }

    /// <summary>Steps of the falling half of a cycle.</summary>
    public long StepSizeDown { get; }

    /// <summary>The amplitude policy.</summary>
    public CyclicMode Mode { get; }

    /// <summary>The per-step amplitude factor of <see cref="CyclicMode.ExpRange"/> (unused by the other modes).</summary>
    public double Gamma { get; }

    /// <inheritdoc/>
    public override string Name => "CyclicLR";

    /// <inheritdoc/>
    protected override double Compute(long step)
    {
        long total = StepSizeUp + StepSizeDown;
        long cycle = 1 + step / total;
        long p = step % total;
        double h = Mode == CyclicMode.Sine
            ? (p <= StepSizeUp
                ? (1 - Math.Cos(Math.PI * p / StepSizeUp)) / 2
                : (1 + Math.Cos(Math.PI * (p - StepSizeUp) / StepSizeDown)) / 2)
            : (p <= StepSizeUp ? (double)p / StepSizeUp : (double)(total - p) / StepSizeDown);
        double scale = Mode switch
        {
            CyclicMode.Triangular2 => 1 / Math.Pow(2.0, cycle - 1),
            CyclicMode.ExpRange => Math.Pow(Gamma, step),
            _ => 1.0,
        };
        return BaseLearningRate + (MaxLearningRate - BaseLearningRate) * h * scale;
    }

    /// <inheritdoc/>
    protected override IEnumerable<(string Name, object Value)> Parameters() =>
        [("base_lr", BaseLearningRate), ("max_lr", MaxLearningRate), ("step_size_up", StepSizeUp),
         ("step_size_down", StepSizeDown), ("mode", Mode), ("gamma", Gamma)];
}
