namespace GpuNet.Schedules;

/// <summary>A constant learning rate: <c>lr(t) = base_lr</c> for every step.</summary>
public sealed class ConstantSchedule : LearningRateSchedule
{
    /// <summary>Creates a constant schedule.</summary>
    /// <param name="baseLr">The learning rate; finite and &gt; 0.</param>
    public ConstantSchedule(double baseLr) : base(baseLr) { }

    /// <inheritdoc/>
    public override string Name => "Constant";

    /// <inheritdoc/>
    protected override double Compute(long step) => BaseLearningRate;

    /// <inheritdoc/>
    protected override IEnumerable<(string Name, object Value)> Parameters() => [("base_lr", BaseLearningRate)];
}

/// <summary>
/// PyTorch's <c>StepLR</c>: decays by <c>gamma</c> every <c>step_size</c> steps,
/// <c>lr(t) = base_lr * gamma^floor(t / step_size)</c>.
/// </summary>
public sealed class StepLR : LearningRateSchedule
{
    /// <summary>Creates a step decay.</summary>
    /// <param name="baseLr">The lr for steps [0, step_size); finite and &gt; 0.</param>
    /// <param name="stepSize">The period of the decay; &gt;= 1.</param>
    /// <param name="gamma">The multiplicative factor per period; finite and &gt; 0 (above 1 grows the lr, as PyTorch allows).</param>
    public StepLR(double baseLr, long stepSize, double gamma = 0.1) : base(baseLr)
    {
        ScheduleChecks.AtLeast(Name, nameof(stepSize), stepSize, 1);
        ScheduleChecks.Positive(Name, nameof(gamma), gamma);
        StepSize = stepSize;
        Gamma = gamma;
    }

    /// <summary>The period of the decay, in steps.</summary>
    public long StepSize { get; }

    /// <summary>The multiplicative factor applied once per period.</summary>
    public double Gamma { get; }

    /// <inheritdoc/>
    public override string Name => "StepLR";

    /// <inheritdoc/>
    protected override double Compute(long step) => BaseLearningRate * Math.Pow(Gamma, step / StepSize);

    /// <inheritdoc/>
    protected override IEnumerable<(string Name, object Value)> Parameters() =>
        [("base_lr", BaseLearningRate), ("step_size", StepSize), ("gamma", Gamma)];
}

/// <summary>
/// PyTorch's <c>MultiStepLR</c>: decays by <c>gamma</c> at each milestone,
/// <c>lr(t) = base_lr * gamma^(number of milestones &lt;= t)</c> (PyTorch's <c>bisect_right</c>), so the decay
/// is in effect from the milestone step itself.
/// </summary>
public sealed class MultiStepLR : LearningRateSchedule
{
    readonly long[] _milestones;

    /// <summary>Creates a multi-step decay.</summary>
    /// <param name="baseLr">The lr before the first milestone; finite and &gt; 0.</param>
    /// <param name="milestones">Steps at which the lr is multiplied by gamma; each &gt;= 0, strictly increasing, at least one.</param>
    /// <param name="gamma">The multiplicative factor per milestone; finite and &gt; 0.</param>
    public MultiStepLR(double baseLr, IEnumerable<long> milestones, double gamma = 0.1) : base(baseLr)
    {
        ArgumentNullException.ThrowIfNull(milestones);
        _milestones = milestones.ToArray();
        if (_milestones.Length == 0)
            throw new ArgumentOutOfRangeException(nameof(milestones), 0, $"{Name}: milestones must hold at least 1 step, got 0");
        for (int i = 0; i < _milestones.Length; i++)
        {
            if (_milestones[i] < 0 || (i > 0 && _milestones[i] <= _milestones[i - 1]))
                throw new ArgumentOutOfRangeException(nameof(milestones), _milestones[i],
                    $"{Name}: milestones must be >= 0 and strictly increasing, got milestones[{i}] = {_milestones[i]}"
                    + (i > 0 ? $" after milestones[{i - 1}] = {_milestones[i - 1]}" : ""));
        }
        ScheduleChecks.Positive(Name, nameof(gamma), gamma);
        Gamma = gamma;
    }

    /// <summary>The milestones, strictly increasing.</summary>
    public IReadOnlyList<long> Milestones => _milestones;

    /// <summary>The multiplicative factor applied at each milestone.</summary>
    public double Gamma { get; }

    /// <inheritdoc/>
    public override string Name => "MultiStepLR";

    /// <inheritdoc/>
    protected override double Compute(long step)
    {
        // bisect_right: the number of milestones <= step.
        int i = Array.BinarySearch(_milestones, step);
        int passed = i >= 0 ? i + 1 : ~i;
        return BaseLearningRate * Math.Pow(Gamma, passed);
    }

    /// <inheritdoc/>
    protected override IEnumerable<(string Name, object Value)> Parameters() =>
        [("base_lr", BaseLearningRate), ("milestones", _milestones), ("gamma", Gamma)];
}

/// <summary>PyTorch's <c>ExponentialLR</c>: <c>lr(t) = base_lr * gamma^t</c>.</summary>
public sealed class ExponentialLR : LearningRateSchedule
{
    /// <summary>Creates an exponential decay.</summary>
    /// <param name="baseLr">The lr at step 0; finite and &gt; 0.</param>
    /// <param name="gamma">The multiplicative factor per step; finite and &gt; 0.</param>
    public ExponentialLR(double baseLr, double gamma) : base(baseLr)
    {
        ScheduleChecks.Positive(Name, nameof(gamma), gamma);
        Gamma = gamma;
    }

    /// <summary>The multiplicative factor per step.</summary>
    public double Gamma { get; }

    /// <inheritdoc/>
    public override string Name => "ExponentialLR";

    /// <inheritdoc/>
    protected override double Compute(long step) => BaseLearningRate * Math.Pow(Gamma, step);

    /// <inheritdoc/>
    protected override IEnumerable<(string Name, object Value)> Parameters() =>
        [("base_lr", BaseLearningRate), ("gamma", Gamma)];
}
