namespace GpuNet.Schedules;

/// <summary>Whether <see cref="ReduceLROnPlateau"/> watches a metric that should fall (a loss) or rise (an accuracy).</summary>
public enum PlateauMode
{
    /// <summary>Lower is better (PyTorch's <c>min</c>).</summary>
    Min,
    /// <summary>Higher is better (PyTorch's <c>max</c>).</summary>
    Max,
}

/// <summary>How <see cref="ReduceLROnPlateau"/> decides that a metric improved on the best value so far.</summary>
public enum ThresholdMode
{
    /// <summary>Relative: better than <c>best * (1 - threshold)</c> (min) or <c>best * (1 + threshold)</c> (max) (PyTorch's <c>rel</c>).</summary>
    Rel,
    /// <summary>Absolute: better than <c>best - threshold</c> (min) or <c>best + threshold</c> (max) (PyTorch's <c>abs</c>).</summary>
    Abs,
}

/// <summary>The mutable state of a <see cref="ReduceLROnPlateau"/>, for checkpoints.</summary>
/// <param name="LearningRate">The current learning rate.</param>
/// <param name="Best">The best metric seen so far (+inf in min mode, -inf in max mode before the first step).</param>
/// <param name="NumBadEpochs">Consecutive steps without improvement (reset by a reduction and during cooldown).</param>
/// <param name="CooldownCounter">Steps left in the cooldown after the last reduction.</param>
/// <param name="LastEpoch">The number of <see cref="ReduceLROnPlateau.Step"/> calls so far.</param>
public sealed record PlateauState(double LearningRate, double Best, int NumBadEpochs, int CooldownCounter, long LastEpoch);

/// <summary>
/// PyTorch's <c>ReduceLROnPlateau</c> for one parameter group: not a pure function of the step but a state machine fed
/// one metric per <see cref="Step"/> (usually a validation loss once per epoch). Each step, exactly as PyTorch:
/// if the metric is better than <c>best</c> (by the threshold rule) it becomes the new best and the bad-epoch count
/// resets, else the count grows; during a cooldown the cooldown counter falls by one and the bad-epoch count is
/// forced to 0; when the count exceeds <c>patience</c> the lr becomes <c>max(lr * factor, min_lr)</c> (kept unchanged
/// if that lowers it by no more than <c>eps</c>), the cooldown restarts at <c>cooldown</c> and the count resets.
/// A NaN metric is never better, so it counts as a bad step (PyTorch's comparisons do the same). In rel mode a
/// negative best makes the threshold work the other way (PyTorch's rule, kept as is).
/// </summary>
public sealed class ReduceLROnPlateau
{
    const string Name = "ReduceLROnPlateau";

    /// <summary>Creates a plateau scheduler; the defaults are PyTorch's.</summary>
    /// <param name="initialLr">The lr before any reduction; finite and &gt; 0.</param>
    /// <param name="mode">Whether the metric should fall or rise.</param>
    /// <param name="factor">The multiplicative reduction; in (0, 1).</param>
    /// <param name="patience">Bad steps tolerated before a reduction; &gt;= 0.</param>
    /// <param name="threshold">The minimal significant improvement; in [0, 1) in rel mode, [0, +inf) in abs mode.</param>
    /// <param name="thresholdMode">Relative or absolute threshold.</param>
    /// <param name="cooldown">Steps after a reduction during which bad steps are not counted; &gt;= 0.</param>
    /// <param name="minLr">The lower bound of the lr; in [0, initial_lr].</param>
    /// <param name="eps">Reductions smaller than this are ignored; finite and &gt;= 0.</param>
    public ReduceLROnPlateau(double initialLr, PlateauMode mode = PlateauMode.Min, double factor = 0.1, int patience = 10,
        double threshold = 1e-4, ThresholdMode thresholdMode = ThresholdMode.Rel, int cooldown = 0, double minLr = 0, double eps = 1e-8)
    {
        ScheduleChecks.Positive(Name, nameof(initialLr), initialLr);
        if (!Enum.IsDefined(mode))
            throw new ArgumentOutOfRangeException(nameof(mode), mode, $"{Name}: mode must be Min or Max, got {mode}");
        ScheduleChecks.OpenLow(Name, nameof(factor), factor, 0, 1, includeHi: false);
        ScheduleChecks.AtLeast(Name, nameof(patience), patience, 0);
        if (!Enum.IsDefined(thresholdMode))
            throw new ArgumentOutOfRangeException(nameof(thresholdMode), thresholdMode, $"{Name}: thresholdMode must be Rel or Abs, got {thresholdMode}");
        if (thresholdMode == ThresholdMode.Rel) ScheduleChecks.ClosedLow(Name, nameof(threshold), threshold, 0, 1, includeHi: false);
        else ScheduleChecks.NonNegative(Name, nameof(threshold), threshold);
        ScheduleChecks.AtLeast(Name, nameof(cooldown), cooldown, 0);
        ScheduleChecks.ClosedLow(Name, nameof(minLr), minLr, 0, initialLr, includeHi: true);
        ScheduleChecks.NonNegative(Name, nameof(eps), eps);
        InitialLearningRate = initialLr;
        Mode = mode;
        Factor = factor;
        Patience = patience;
        Threshold = threshold;
        ThresholdMode = thresholdMode;
        Cooldown = cooldown;
        MinLearningRate = minLr;
        Eps = eps;
        LearningRate = initialLr;
        Best = ModeWorse;
    }

    /// <summary>The lr before any reduction.</summary>
    public double InitialLearningRate { get; }

    /// <summary>Whether the metric should fall or rise.</summary>
    public PlateauMode Mode { get; }

    /// <summary>The multiplicative reduction.</summary>
    public double Factor { get; }

    /// <summary>Bad steps tolerated before a reduction.</summary>
    public int Patience { get; }

    /// <summary>The minimal significant improvement.</summary>
    public double Threshold { get; }

    /// <summary>Relative or absolute threshold.</summary>
    public ThresholdMode ThresholdMode { get; }

    /// <summary>Steps after a reduction during which bad steps are not counted.</summary>
    public int Cooldown { get; }

    /// <summary>The lower bound of the lr.</summary>
    public double MinLearningRate { get; }

    /// <summary>Reductions smaller than this are ignored.</summary>
    public double Eps { get; }

    /// <summary>What a step counts; plateau schedulers are usually stepped once per epoch (the default here).</summary>
    public ScheduleUnit Unit { get; init; } = ScheduleUnit.Epoch;

    /// <summary>The current learning rate.</summary>
    public double LearningRate { get; private set; }

    /// <summary>The best metric so far.</summary>
    public double Best { get; private set; }

    /// <summary>Consecutive steps without improvement.</summary>
    public int NumBadEpochs { get; private set; }

    /// <summary>Steps left in the current cooldown.</summary>
    public int CooldownCounter { get; private set; }

    /// <summary>The number of <see cref="Step"/> calls so far.</summary>
    public long LastEpoch { get; private set; }

    /// <summary>Whether a cooldown is running.</summary>
    public bool InCooldown => CooldownCounter > 0;

    double ModeWorse => Mode == PlateauMode.Min ? double.PositiveInfinity : double.NegativeInfinity;

    /// <summary>Whether <paramref name="metric"/> improves on <paramref name="best"/> under the mode and threshold rule.</summary>
    /// <param name="metric">The new metric.</param>
    /// <param name="best">The best value so far.</param>
    public bool IsBetter(double metric, double best) => (Mode, ThresholdMode) switch
    {
        (PlateauMode.Min, ThresholdMode.Rel) => metric < best * (1.0 - Threshold),
        (PlateauMode.Min, ThresholdMode.Abs) => metric < best - Threshold,
        (PlateauMode.Max, ThresholdMode.Rel) => metric > best * (Threshold + 1.0),
        _ => metric > best + Threshold,
    };

    /// <summary>Feeds one metric value and returns the learning rate to use from now on.</summary>
    /// <param name="metric">The monitored quantity (e.g. the validation loss of the epoch just finished).</param>
    public double Step(double metric)
    {
        LastEpoch++;
        if (IsBetter(metric, Best))
        {
            Best = metric;
            NumBadEpochs = 0;
        }
        else
        {
            NumBadEpochs++;
        }
        if (InCooldown)
        {
            CooldownCounter--;
            NumBadEpochs = 0;
        }
        if (NumBadEpochs > Patience)
        {
            double newLr = Math.Max(LearningRate * Factor, MinLearningRate);
            if (LearningRate - newLr > Eps) LearningRate = newLr;
            CooldownCounter = Cooldown;
            NumBadEpochs = 0;
        }
        return LearningRate;
    }

    /// <summary>The state to store in a checkpoint.</summary>
    public PlateauState GetState() => new(LearningRate, Best, NumBadEpochs, CooldownCounter, LastEpoch);

    /// <summary>Restores a state from <see cref="GetState"/> (hyperparameters are not part of it: construct with the same ones).</summary>
    /// <param name="state">The saved state.</param>
    /// <exception cref="ArgumentOutOfRangeException">When a field of the state is outside its valid range.</exception>
    public void RestoreState(PlateauState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        ScheduleChecks.Positive(Name, "state.LearningRate", state.LearningRate);
        if (double.IsNaN(state.Best)) throw ScheduleChecks.Fail(Name, "state.Best", state.Best, "[-inf, +inf] (not NaN)");
        ScheduleChecks.AtLeast(Name, "state.NumBadEpochs", state.NumBadEpochs, 0);
        ScheduleChecks.AtLeast(Name, "state.CooldownCounter", state.CooldownCounter, 0);
        ScheduleChecks.AtLeast(Name, "state.LastEpoch", state.LastEpoch, 0);
        LearningRate = state.LearningRate;
        Best = state.Best;
        NumBadEpochs = state.NumBadEpochs;
        CooldownCounter = state.CooldownCounter;
        LastEpoch = state.LastEpoch;
    }

    /// <summary>Names the scheduler and every hyperparameter.</summary>
    public string Describe() =>
        $"{Name}(initial_lr={LearningRateSchedule.Format(InitialLearningRate)}, mode={Mode}, factor={LearningRateSchedule.Format(Factor)}, "
        + $"patience={Patience}, threshold={LearningRateSchedule.Format(Threshold)}, threshold_mode={ThresholdMode}, cooldown={Cooldown}, "
        + $"min_lr={LearningRateSchedule.Format(MinLearningRate)}, eps={LearningRateSchedule.Format(Eps)}, unit={Unit})";

    /// <summary>The same text as <see cref="Describe"/>.</summary>
    public override string ToString() => Describe();
}
