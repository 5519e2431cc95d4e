using GpuNet.Nn;
using GpuNet.Optim;
using GpuNet.Schedules;
using System.Globalization;

namespace GpuNet.Training;

/// <summary>
/// Hooks into <see cref="Trainer.Fit"/>, called in the order the callbacks were given. Every method has an empty
/// default. <see cref="OnTrainEnd"/> runs even when training ends by an exception, so a callback may free device
/// memory there. The per-batch hooks run on every step: keep them cheap (no host read-back unless needed).
/// </summary>
public interface ICallback
{
    /// <summary>Before the first epoch of a Fit call.</summary>
    void OnTrainBegin(TrainingContext context) { }
    /// <summary>Before each epoch.</summary>
    void OnEpochBegin(TrainingContext context) { }
    /// <summary>Before each step (after the batch was produced, before the forward pass).</summary>
    void OnBatchBegin(TrainingContext context) { }
    /// <summary>After each optimizer step.</summary>
    void OnBatchEnd(TrainingContext context) { }
    /// <summary>After each epoch, with <see cref="TrainingContext.Report"/> set (validation included): checkpoints save here.</summary>
    void OnEpochEnd(TrainingContext context) { }
    /// <summary>After the last epoch, an early stop, or an exception.</summary>
    void OnTrainEnd(TrainingContext context) { }
}

/// <summary>What callbacks see and may change during <see cref="Trainer.Fit"/>.</summary>
public sealed class TrainingContext
{
    private readonly Tensor _stepLoss;

    internal TrainingContext(Trainer trainer, bool hasValidation, Tensor stepLoss)
    {
        Trainer = trainer;
        HasValidation = hasValidation;
        _stepLoss = stepLoss;
    }

    /// <summary>The trainer.</summary>
    public Trainer Trainer { get; }
    /// <summary>The model.</summary>
    public Model Model => Trainer.Model;
    /// <summary>The optimizer (set <see cref="Optimizer.LearningRate"/> to change the learning rate).</summary>
    public Optimizer Optimizer => Trainer.Optimizer;
    /// <summary>Whether Fit received a validation source (val_* metrics exist).</summary>
    public bool HasValidation { get; }
    /// <summary>1-based number of the current epoch.</summary>
    public int Epoch { get; internal set; }
    /// <summary>1-based batch number within the epoch (0 outside a batch).</summary>
    public int Batch { get; internal set; }
    /// <summary>Optimizer steps taken so far (the current step excluded in <see cref="ICallback.OnBatchBegin"/>, included after).</summary>
    public long GlobalStep { get; internal set; }
    /// <summary>The current batch (valid in the per-batch hooks).</summary>
    public Batch CurrentBatch { get; internal set; }
    /// <summary>The report of the epoch just finished (set for <see cref="ICallback.OnEpochEnd"/> and after).</summary>
    public EpochReport? Report { get; internal set; }
    /// <summary>The reason given to <see cref="Stop"/>, or null.</summary>
    public string? StopReason { get; private set; }
    /// <summary>Whether a callback asked to stop.</summary>
    public bool StopRequested => StopReason is not null;

    /// <summary>Stops training after the current step (in a per-batch hook) or epoch; the first reason given wins.</summary>
    public void Stop(string reason)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(reason);
        StopReason ??= reason;
    }

    /// <summary>The loss of the last step, read from the device: a host synchronisation, so call it sparingly.</summary>
    public float ReadStepLoss()
    {
        Span<float> v = stackalloc float[1];
        _stepLoss.CopyTo(v);
        return v[0];
    }

    /// <summary>The value of a monitored metric in <see cref="Report"/>; throws naming the callback when it is missing.</summary>
    internal double RequireMetric(string callback, string monitor)
    {
        var report = Report ?? throw new InvalidOperationException($"{callback}: no epoch report yet");
        return report.Metric(monitor) ?? throw new InvalidOperationException(
            $"{callback} monitors '{monitor}', which epoch {report.Epoch} does not have (task {Trainer.Task}{(HasValidation ? "" : ", no validation source")})");
    }

    internal void CheckMonitor(string callback, string monitor)
    {
        if (monitor.StartsWith("val_", StringComparison.Ordinal) && !HasValidation)
            throw new InvalidOperationException($"{callback} monitors '{monitor}' but Fit received no validation source");
        if (monitor.EndsWith("accuracy", StringComparison.Ordinal) && Trainer.Task == TaskKind.Regression)
            throw new InvalidOperationException($"{callback} monitors '{monitor}' but the task is regression (no class predictions)");
    }
}

/// <summary>
/// Stops training when <see cref="Monitor"/> has not improved by more than <see cref="MinDelta"/> for
/// <see cref="Patience"/> consecutive epochs (Keras' rule: the stop comes at the Patience-th epoch in a row without
/// improvement; patience 0 stops at the first).
/// With <see cref="RestoreBestWeights"/>, the parameters and buffers of the best epoch are kept as device-side copies
/// (two tensors allocated at the start of Fit, one copy launch each per improvement) and copied back when training
/// ends, whether it stopped early or not. The optimizer state is not rolled back. A NaN metric never improves.
/// </summary>
public sealed class EarlyStopping : ICallback
{
    private Tensor? _bestParameters, _bestBuffers;

    /// <summary>Creates the callback.</summary>
    /// <param name="monitor">A name from <see cref="MetricNames"/>.</param>
    /// <param name="patience">Epochs without improvement tolerated; &gt;= 0.</param>
    /// <param name="minDelta">The smallest change that counts as an improvement; finite and &gt;= 0.</param>
    /// <param name="mode">Whether the metric should fall or rise; Auto: losses fall.</param>
    /// <param name="restoreBestWeights">Copy the best epoch's weights back at the end.</param>
    /// <exception cref="ArgumentException">Unknown monitor name.</exception>
    /// <exception cref="ArgumentOutOfRangeException">Negative patience or min_delta.</exception>
    public EarlyStopping(string monitor = MetricNames.ValLoss, int patience = 0, double minDelta = 0, MonitorMode mode = MonitorMode.Auto, bool restoreBestWeights = true)
    {
        Monitor = MetricNames.Validate(monitor, nameof(monitor));
        if (patience < 0) throw new ArgumentOutOfRangeException(nameof(patience), patience, $"EarlyStopping: patience must be >= 0, got {patience}");
        if (!(minDelta >= 0) || double.IsInfinity(minDelta))
            throw new ArgumentOutOfRangeException(nameof(minDelta), minDelta, $"EarlyStopping: min_delta must be finite and >= 0, got {minDelta}");
        if (!Enum.IsDefined(mode)) throw new ArgumentOutOfRangeException(nameof(mode), mode, "EarlyStopping: unknown mode");
        Patience = patience;
        MinDelta = minDelta;
        Mode = MetricNames.Resolve(monitor, mode);
        RestoreBestWeights = restoreBestWeights;
    }

    /// <summary>The monitored metric.</summary>
    public string Monitor { get; }
    /// <summary>Epochs without improvement tolerated.</summary>
    public int Patience { get; }
    /// <summary>The smallest significant change.</summary>
    public double MinDelta { get; }
    /// <summary>Min or Max (resolved).</summary>
    public MonitorMode Mode { get; }
    /// <summary>Whether the best weights are restored at the end.</summary>
    public bool RestoreBestWeights { get; }
    /// <summary>The best value seen in the current Fit.</summary>
    public double Best { get; private set; }
    /// <summary>Epoch of <see cref="Best"/> (0 if none).</summary>
    public int BestEpoch { get; private set; }
    /// <summary>Consecutive epochs without improvement.</summary>
    public int Wait { get; private set; }
    /// <summary>The epoch at which this callback stopped training (0 if it did not).</summary>
    public int StoppedEpoch { get; private set; }

    /// <inheritdoc/>
    public void OnTrainBegin(TrainingContext context)
    {
        context.CheckMonitor(nameof(EarlyStopping), Monitor);
        Best = Mode == MonitorMode.Min ? double.PositiveInfinity : double.NegativeInfinity;
        BestEpoch = 0; Wait = 0; StoppedEpoch = 0;
        FreeCopies();
        if (RestoreBestWeights)
        {
            var d = context.Model.Device;
            _bestParameters = d.AllocateUninitialized([(int)context.Model.Parameters.Length]);
            _bestBuffers = d.AllocateUninitialized([(int)context.Model.Buffers.Length]);
        }
    }

    /// <inheritdoc/>
    public void OnEpochEnd(TrainingContext context)
    {
        double v = context.RequireMetric(nameof(EarlyStopping), Monitor);
        bool better = Mode == MonitorMode.Min ? v < Best - MinDelta : v > Best + MinDelta;
        if (better)
        {
            Best = v;
            BestEpoch = context.Epoch;
            Wait = 0;
            if (_bestParameters is not null)
            {
                context.Model.Device.Copy(context.Model.Parameters, _bestParameters);
                context.Model.Device.Copy(context.Model.Buffers, _bestBuffers!);
            }
            return;
        }
        Wait++;
        if (Wait >= Patience)
        {
            StoppedEpoch = context.Epoch;
            context.Stop(string.Create(CultureInfo.InvariantCulture,
                $"early stopping at epoch {context.Epoch}: {Monitor} did not improve on {Best:G6} (epoch {BestEpoch}) for {Wait} epoch(s), patience {Patience}"));
        }
    }

    /// <inheritdoc/>
    public void OnTrainEnd(TrainingContext context)
    {
        if (_bestParameters is not null && BestEpoch > 0 && !context.Model.Parameters.IsDisposed)
        {
            context.Model.Device.Copy(_bestParameters, context.Model.Parameters);
            context.Model.Device.Copy(_bestBuffers!, context.Model.Buffers);
        }
        FreeCopies();
    }

    private void FreeCopies()
    {
        _bestParameters?.Dispose(); _bestBuffers?.Dispose();
        _bestParameters = _bestBuffers = null;
    }
}

/// <summary>
/// Sets the optimizer's learning rate from a pure <see cref="LearningRateSchedule"/>: before every step to
/// <c>LearningRate(global step)</c> when <see cref="ScheduleUnit.Step"/>, or at the start of every epoch to
/// <c>LearningRate(completed epochs)</c> when <see cref="ScheduleUnit.Epoch"/>. Both counters come from the trainer's
/// state, so a restored trainer resumes the schedule where it was. <see cref="Trainer"/> adds one for its schedule.
/// </summary>
public sealed class LearningRateScheduler(LearningRateSchedule schedule) : ICallback
{
    /// <summary>The schedule.</summary>
    public LearningRateSchedule Schedule { get; } = schedule ?? throw new ArgumentNullException(nameof(schedule));

    /// <inheritdoc/>
    public void OnEpochBegin(TrainingContext context)
    {
        if (Schedule.Unit == ScheduleUnit.Epoch) context.Optimizer.LearningRate = Schedule.LearningRate(context.Epoch - 1);
    }

    /// <inheritdoc/>
    public void OnBatchBegin(TrainingContext context)
    {
        if (Schedule.Unit == ScheduleUnit.Step) context.Optimizer.LearningRate = Schedule.LearningRate(context.GlobalStep);
    }
}

/// <summary>
/// Feeds a monitored metric to a <see cref="ReduceLROnPlateau"/> at the end of every epoch and sets the optimizer's
/// learning rate to the result (the optimizer starts at the plateau's current lr). Not combinable with a schedule.
/// </summary>
public sealed class ReduceLROnPlateauCallback : ICallback
{
    /// <summary>Creates the callback.</summary>
    /// <param name="plateau">The state machine (its mode must match the metric's direction).</param>
    /// <param name="monitor">A name from <see cref="MetricNames"/>.</param>
    /// <exception cref="ArgumentException">Unknown monitor, or a mode that contradicts the metric (a loss in Max mode).</exception>
    public ReduceLROnPlateauCallback(ReduceLROnPlateau plateau, string monitor = MetricNames.ValLoss)
    {
        Plateau = plateau ?? throw new ArgumentNullException(nameof(plateau));
        Monitor = MetricNames.Validate(monitor, nameof(monitor));
        var wanted = MetricNames.Resolve(monitor, MonitorMode.Auto) == MonitorMode.Min ? PlateauMode.Min : PlateauMode.Max;
        if (plateau.Mode != wanted)
            throw new ArgumentException($"ReduceLROnPlateau: '{monitor}' should be {(wanted == PlateauMode.Min ? "minimised" : "maximised")} but the scheduler's mode is {plateau.Mode}", nameof(plateau));
    }

    /// <summary>The plateau state machine.</summary>
    public ReduceLROnPlateau Plateau { get; }
    /// <summary>The monitored metric.</summary>
    public string Monitor { get; }

    /// <inheritdoc/>
    public void OnTrainBegin(TrainingContext context)
    {
        context.CheckMonitor(nameof(ReduceLROnPlateau), Monitor);
        if (context.Trainer.Schedule is not null)
            throw new InvalidOperationException($"ReduceLROnPlateau cannot be combined with the trainer's schedule {context.Trainer.Schedule.Name}: both set the learning rate");
        context.Optimizer.LearningRate = Plateau.LearningRate;
    }

    /// <inheritdoc/>
    public void OnEpochEnd(TrainingContext context)
        => context.Optimizer.LearningRate = Plateau.Step(context.RequireMetric(nameof(ReduceLROnPlateau), Monitor));
}

/// <summary>
/// Stops training at a non-finite (NaN or infinite) training loss, with a message naming where it happened and the
/// last good loss. The trade-off: with <see cref="CheckEverySteps"/> = 0 the guard reads only the epoch's loss,
/// which the trainer reads back anyway (no cost), but it can only say in which epoch (which range of steps) the loss
/// went bad, and the rest of that epoch trains on garbage; with k &gt; 0 it also reads the step loss every k steps,
/// which names the step exactly (to within k) and stops at once but costs a device-to-host synchronisation per check.
/// </summary>
public sealed class NanGuard : ICallback
{
    private double _lastGood = double.NaN;
    private string _lastGoodWhere = "none yet";

    /// <summary>Creates the guard.</summary>
    /// <param name="checkEverySteps">0: once per epoch; k &gt; 0: also every k steps.</param>
    public NanGuard(int checkEverySteps = 0)
    {
        if (checkEverySteps < 0) throw new ArgumentOutOfRangeException(nameof(checkEverySteps), checkEverySteps, "NanGuard: checkEverySteps must be >= 0 (0 = once per epoch)");
        CheckEverySteps = checkEverySteps;
    }

    /// <summary>Steps between step-loss checks (0: per epoch only).</summary>
    public int CheckEverySteps { get; }
    /// <summary>The message of the last stop, or null.</summary>
    public string? Message { get; private set; }

    /// <inheritdoc/>
    public void OnTrainBegin(TrainingContext context)
    {
        Message = null;
        var h = context.Trainer.History;
        if (h.Count > 0 && double.IsFinite(h[^1].TrainLoss)) { _lastGood = h[^1].TrainLoss; _lastGoodWhere = $"mean of epoch {h[^1].Epoch}"; }
    }

    /// <inheritdoc/>
    public void OnBatchEnd(TrainingContext context)
    {
        if (CheckEverySteps == 0 || context.GlobalStep % CheckEverySteps != 0) return;
        float loss = context.ReadStepLoss();
        if (float.IsFinite(loss))
        {
            _lastGood = loss;
            _lastGoodWhere = $"step {context.GlobalStep}";
            return;
        }
        StopWith(context, $"non-finite training loss {F(loss)} at step {context.GlobalStep} (epoch {context.Epoch}, batch {context.Batch})");
    }

    /// <inheritdoc/>
    public void OnEpochEnd(TrainingContext context)
    {
        var r = context.Report!;
        if (double.IsFinite(r.TrainLoss))
        {
            if (CheckEverySteps == 0) { _lastGood = r.TrainLoss; _lastGoodWhere = $"mean of epoch {r.Epoch}"; }
            return;
        }
        StopWith(context, $"non-finite training loss {F(r.TrainLoss)} (epoch mean) in epoch {r.Epoch}, steps {r.GlobalStep - r.Steps + 1}..{r.GlobalStep}");
    }

    private void StopWith(TrainingContext context, string what)
    {
        Message = $"{what}; last good loss {F(_lastGood)} ({_lastGoodWhere}); try a lower learning rate, gradient clipping, or check the inputs";
        context.Stop(Message);
    }

    private static string F(double v) => v.ToString("G6", CultureInfo.InvariantCulture);
}
