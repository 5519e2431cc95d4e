using System.Globalization;

namespace GpuNet.Schedules;

/// <summary>What one "step" of a schedule counts; the training loop reads it to decide when to advance the step.</summary>
public enum ScheduleUnit
{
    /// <summary>The step is the number of optimizer steps (mini-batches) taken so far.</summary>
    Step,
    /// <summary>The step is the number of completed epochs; the lr stays fixed within an epoch.</summary>
    Epoch,
}

/// <summary>
/// A learning-rate schedule: a pure function from the 0-based step count to the learning rate, scaling a base
/// learning rate. Every subclass matches the closed form (<c>_get_closed_form_lr</c>) of the PyTorch
/// <c>torch.optim.lr_scheduler</c> class of the same name, so <c>LearningRate(t)</c> is the lr PyTorch uses after
/// <c>t</c> calls to <c>scheduler.step()</c>. Pure schedules hold no state: a checkpoint stores only the step count
/// (and the hyperparameters); the stateful <see cref="ReduceLROnPlateau"/> is a separate class with its own state.
/// </summary>
public abstract class LearningRateSchedule
{
    /// <summary>Creates a schedule around <paramref name="baseLearningRate"/>, which must be finite and &gt; 0.</summary>
    /// <param name="baseLearningRate">The learning rate the schedule scales (see <see cref="BaseLearningRate"/>).</param>
    /// <param name="parameterName">The name of the constructor parameter that carried it, for error messages.</param>
    protected LearningRateSchedule(double baseLearningRate, string parameterName = "baseLr")
    {
        ScheduleChecks.Positive(Name, parameterName, baseLearningRate);
        BaseLearningRate = baseLearningRate;
    }

    /// <summary>
    /// The learning rate the schedule scales: the lr at step 0 for the decaying schedules, the lower bound for
    /// <see cref="CyclicLR"/>, the peak for <see cref="OneCycleLR"/>.
    /// </summary>
    public double BaseLearningRate { get; }

    /// <summary>
    /// What the step passed to <see cref="LearningRate"/> counts: optimizer steps (the default) or epochs. The
    /// schedule itself does not use it; the training loop advances the step once per optimizer step or once per
    /// epoch accordingly. Set it with an object initializer: <c>new StepLR(0.1, 30) { Unit = ScheduleUnit.Epoch }</c>.
    /// </summary>
    public ScheduleUnit Unit { get; init; } = ScheduleUnit.Step;

    /// <summary>The schedule's name as PyTorch spells it (for messages and <see cref="Describe"/>).</summary>
    public abstract string Name { get; }

    /// <summary>The learning rate to use for step <paramref name="step"/> (0-based count of steps already taken).</summary>
    /// <param name="step">The number of steps (or epochs, see <see cref="Unit"/>) already taken; must be &gt;= 0.</param>
    /// <exception cref="ArgumentOutOfRangeException">When <paramref name="step"/> is negative.</exception>
    public double LearningRate(long step)
    {
        if (step < 0)
            throw new ArgumentOutOfRangeException(nameof(step), step, $"{Name}: step must be in [0, {long.MaxValue}], got {step}");
        return Compute(step);
    }

    /// <summary>The closed form of the schedule at a validated step (&gt;= 0).</summary>
    /// <param name="step">The step, already checked to be &gt;= 0.</param>
    protected abstract double Compute(long step);

    /// <summary>The hyperparameters as <c>name=value</c> pairs, in constructor order, for <see cref="Describe"/>.</summary>
    protected abstract IEnumerable<(string Name, object Value)> Parameters();

    /// <summary>Names the schedule and every hyperparameter, e.g. <c>StepLR(base_lr=0.1, step_size=30, gamma=0.1, unit=Step)</c>.</summary>
    public string Describe()
    {
        var parts = Parameters().Select(p => $"{p.Name}={Format(p.Value)}").Append($"unit={Unit}");
        return $"{Name}({string.Join(", ", parts)})";
    }

    /// <summary>The same text as <see cref="Describe"/>.</summary>
    public override string ToString() => Describe();

    internal static string Format(object value) => value switch
    {
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        IEnumerable<long> xs => "[" + string.Join(", ", xs.Select(x => x.ToString(CultureInfo.InvariantCulture))) + "]",
        LearningRateSchedule s => s.Describe(),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };
}
