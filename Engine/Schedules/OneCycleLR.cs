namespace GpuNet.Schedules;

/// <summary>How <see cref="OneCycleLR"/> interpolates inside a phase.</summary>
public enum AnnealStrategy
{
    /// <summary>Cosine: <c>end + (start - end) * (1 + cos(pi * pct)) / 2</c> (PyTorch's <c>cos</c>).</summary>
    Cos,
    /// <summary>Linear: <c>start + (end - start) * pct</c> (PyTorch's <c>linear</c>).</summary>
    Linear,
}

/// <summary>
/// PyTorch's <c>OneCycleLR</c> (learning rate only): from <c>initial_lr = max_lr / div_factor</c> up to max_lr, then
/// down to <c>min_lr = initial_lr / final_div_factor</c>. Phases end at (floating-point) steps, as in PyTorch:
/// two-phase: <c>pct_start * total_steps - 1</c> (initial to max) and <c>total_steps - 1</c> (max to min);
/// three-phase: <c>pct_start * total_steps - 1</c> (initial to max), <c>2 * pct_start * total_steps - 2</c> (max to
/// initial), <c>total_steps - 1</c> (initial to min). In the phase from <c>s0</c> to <c>s1</c>,
/// <c>pct = (t - s0) / (s1 - s0)</c>. The lr at step <c>total_steps - 1</c> is min_lr. Like PyTorch, step
/// <c>total_steps</c> is still accepted (it extrapolates the last phase) and later steps throw.
/// <see cref="LearningRateSchedule.BaseLearningRate"/> is max_lr.
/// </summary>
public sealed class OneCycleLR : LearningRateSchedule
{
    readonly (double End, double StartLr, double EndLr)[] _phases;

    /// <summary>Creates a one-cycle schedule.</summary>
    /// <param name="maxLr">The peak lr; finite and &gt; 0.</param>
    /// <param name="totalSteps">The number of steps in the cycle; &gt;= 2.</param>
    /// <param name="pctStart">The fraction of the steps spent rising; in (1 / total_steps, 1), and below
    /// (total_steps + 1) / (2 total_steps) with three phases, so that every phase spans a positive number of steps.</param>
    /// <param name="annealStrategy">Cosine or linear interpolation inside a phase.</param>
    /// <param name="divFactor">initial_lr = max_lr / div_factor; finite and &gt; 0.</param>
    /// <param name="finalDivFactor">min_lr = initial_lr / final_div_factor; finite and &gt; 0.</param>
    /// <param name="threePhase">Use PyTorch's three-phase variant (symmetric rise and fall, then annihilation).</param>
    public OneCycleLR(double maxLr, long totalSteps, double pctStart = 0.3, AnnealStrategy annealStrategy = AnnealStrategy.Cos,
        double divFactor = 25, double finalDivFactor = 1e4, bool threePhase = false) : base(maxLr, nameof(maxLr))
    {
        ScheduleChecks.AtLeast(Name, nameof(totalSteps), totalSteps, 2);
        ScheduleChecks.OpenLow(Name, nameof(pctStart), pctStart, 0, 1, includeHi: false);
        double lo = 1.0 / totalSteps, hi = threePhase ? (totalSteps + 1.0) / (2.0 * totalSteps) : 1.0;
        // The same comparisons as the phase lengths below: pct*T - 1 > 0, and (T - 1) > (2 pct T - 2) with three phases.
        if (!(pctStart * totalSteps - 1 > 0) || (threePhase && !(totalSteps - 1.0 > 2 * pctStart * totalSteps - 2)))
            throw ScheduleChecks.Fail(Name, nameof(pctStart), pctStart,
                $"({Format(lo)}, {Format(hi)}) for total_steps = {totalSteps}{(threePhase ? " with three phases" : "")} (every phase must span > 0 steps)");
        if (!Enum.IsDefined(annealStrategy))
            throw new ArgumentOutOfRangeException(nameof(annealStrategy), annealStrategy, $"{Name}: annealStrategy must be Cos or Linear, got {annealStrategy}");
        ScheduleChecks.Positive(Name, nameof(divFactor), divFactor);
        ScheduleChecks.Positive(Name, nameof(finalDivFactor), finalDivFactor);
        TotalSteps = totalSteps;
        PctStart = pctStart;
        Anneal = annealStrategy;
        DivFactor = divFactor;
        FinalDivFactor = finalDivFactor;
        ThreePhase = threePhase;
        InitialLearningRate = maxLr / divFactor;
        MinLearningRate = InitialLearningRate / finalDivFactor;
        double up = pctStart * totalSteps - 1;
        _phases = threePhase
            ? [(up, InitialLearningRate, maxLr), (2 * pctStart * totalSteps - 2, maxLr, InitialLearningRate), (totalSteps - 1, InitialLearningRate, MinLearningRate)]
            : [(up, InitialLearningRate, maxLr), (totalSteps - 1, maxLr, MinLearningRate)];
    }

    /// <summary>The number of steps in the cycle.</summary>
    public long TotalSteps { get; }

    /// <summary>The fraction of the steps spent rising.</summary>
    public double PctStart { get; }

    /// <summary>The interpolation inside a phase.</summary>
    public AnnealStrategy Anneal { get; }

    /// <summary>max_lr / initial_lr.</summary>
    public double DivFactor { get; }

    /// <summary>initial_lr / min_lr.</summary>
    public double FinalDivFactor { get; }

    /// <summary>Whether the three-phase variant is used.</summary>
    public bool ThreePhase { get; }

    /// <summary>The lr at step 0: max_lr / div_factor.</summary>
    public double InitialLearningRate { get; }

    /// <summary>The lr at the last step: initial_lr / final_div_factor.</summary>
    public double MinLearningRate { get; }

    /// <inheritdoc/>
    public override string Name => "OneCycleLR";

    /// <inheritdoc/>
    protected override double Compute(long step)
    {
        if (step > TotalSteps)
            throw new ArgumentOutOfRangeException(nameof(step), step, $"{Name}: step must be in [0, total_steps = {TotalSteps}], got {step}");
        double start = 0;
        for (int i = 0; i < _phases.Length; i++)
        {
            var (end, startLr, endLr) = _phases[i];
            if (step <= end || i == _phases.Length - 1)
            {
                double pct = (step - start) / (end - start);
                return Anneal == AnnealStrategy.Cos
                    ? endLr + (startLr - endLr) / 2.0 * (Math.Cos(Math.PI * pct) + 1)
                    : (endLr - startLr) * pct + startLr;
            }
            start = end;
        }
        throw new InvalidOperationException("unreachable: the last phase always matches");
    }

    /// <inheritdoc/>
    protected override IEnumerable<(string Name, object Value)> Parameters() =>
        [("max_lr", BaseLearningRate), ("total_steps", TotalSteps), ("pct_start", PctStart), ("anneal_strategy", Anneal),
         ("div_factor", DivFactor), ("final_div_factor", FinalDivFactor), ("three_phase", ThreePhase)];
}
