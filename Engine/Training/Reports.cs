namespace GpuNet.Training;

/// <summary>What the trainer's accuracy and metrics mean for a model, decided by <see cref="Nn.Loss.Task"/> from the output shape.</summary>
public enum TaskKind
{
    /// <summary>No class prediction (MSE, or multi-output BCE/hinge): loss only.</summary>
    Regression,
    /// <summary>One logit per sample with BCE or hinge: the prediction is logit &gt; 0; the label is target &gt;= 0.5 (BCE) or &gt; 0 (hinge).</summary>
    Binary,
    /// <summary>C logits per sample with Int32 labels (cross-entropy, multi-margin): the prediction is the argmax.</summary>
    MultiClass,
}

/// <summary>The loss and metrics of one pass over a data source in evaluation mode.</summary>
/// <param name="Loss">Mean loss per sample (for a Mean-reduced loss: the mean over samples of the per-batch mean).</param>
/// <param name="Samples">Samples evaluated.</param>
/// <param name="Metrics">Classification metrics, null for regression.</param>
/// <param name="Seconds">Wall time.</param>
public sealed record EvalResult(double Loss, int Samples, ClassificationMetrics? Metrics, double Seconds)
{
    /// <summary>Accuracy, null for regression (set directly for a result restored from a checkpoint's history).</summary>
    public double? Accuracy { get; init; } = Metrics?.Accuracy;
}

/// <summary>One progress event per training step (created only when someone listens).</summary>
/// <param name="Epoch">1-based epoch number.</param>
/// <param name="Batch">1-based batch number within the epoch.</param>
/// <param name="GlobalStep">Optimizer steps taken so far, this one included.</param>
/// <param name="SamplesSeen">Samples trained on in this epoch so far.</param>
/// <param name="EpochSamples">Samples in the epoch (the source's Count), for a progress bar.</param>
/// <param name="LearningRate">Learning rate of this step.</param>
public readonly record struct BatchReport(int Epoch, int Batch, long GlobalStep, int SamplesSeen, int EpochSamples, double LearningRate);

/// <summary>What happened in one epoch; one entry of the history.</summary>
public sealed record EpochReport
{
    /// <summary>1-based epoch number.</summary>
    public required int Epoch { get; init; }
    /// <summary>Optimizer steps taken so far, at the end of the epoch.</summary>
    public required long GlobalStep { get; init; }
    /// <summary>Optimizer steps in this epoch.</summary>
    public required int Steps { get; init; }
    /// <summary>Samples trained on in this epoch.</summary>
    public required int Samples { get; init; }
    /// <summary>Mean training loss per sample, accumulated on the device in training mode (dropout on, weights moving).</summary>
    public required double TrainLoss { get; init; }
    /// <summary>Training accuracy of the predictions made during the epoch's forward passes; null for regression.</summary>
    public double? TrainAccuracy { get; init; }
    /// <summary>Validation result at the end of the epoch, null without a validation source.</summary>
    public EvalResult? Validation { get; init; }
    /// <summary>Learning rate of the epoch's last step.</summary>
    public required double LearningRate { get; init; }
    /// <summary>Wall time of the training part (steps and the end-of-epoch read-back), in seconds.</summary>
    public required double Seconds { get; init; }
    /// <summary>Wall time including validation, in seconds.</summary>
    public required double TotalSeconds { get; init; }
    /// <summary>Training throughput: <see cref="Samples"/> / <see cref="Seconds"/>.</summary>
    public double SamplesPerSecond => Seconds > 0 ? Samples / Seconds : 0;
    /// <summary>Model FLOPs of the epoch's training (forward + backward per sample times samples; optimizer excluded): MFU = TrainingFlops / Seconds / peak.</summary>
    public required double TrainingFlops { get; init; }
    /// <summary>Validation loss, if any.</summary>
    public double? ValLoss => Validation?.Loss;
    /// <summary>Validation accuracy, if any.</summary>
    public double? ValAccuracy => Validation?.Accuracy;

    /// <summary>A metric by its monitor name (see <see cref="MetricNames"/>); null when this epoch does not have it.</summary>
    /// <exception cref="ArgumentException">An unknown name.</exception>
    public double? Metric(string name) => MetricNames.Validate(name, nameof(name)) switch
    {
        MetricNames.TrainLoss => TrainLoss,
        MetricNames.TrainAccuracy => TrainAccuracy,
        MetricNames.ValLoss => ValLoss,
        MetricNames.ValAccuracy => ValAccuracy,
        MetricNames.ValPrecision => Validation?.Metrics?.MacroPrecision,
        MetricNames.ValRecall => Validation?.Metrics?.MacroRecall,
        MetricNames.ValF1 => Validation?.Metrics?.MacroF1,
        MetricNames.ValAuc => Validation?.Metrics?.RocAuc,
        _ => LearningRate,
    };
}

/// <summary>Whether a monitored metric should fall or rise.</summary>
public enum MonitorMode
{
    /// <summary>From the name: losses fall, everything else rises.</summary>
    Auto,
    /// <summary>Lower is better.</summary>
    Min,
    /// <summary>Higher is better.</summary>
    Max,
}

/// <summary>The names a callback may monitor.</summary>
public static class MetricNames
{
    /// <summary>Mean training loss.</summary>
    public const string TrainLoss = "train_loss";
    /// <summary>Training accuracy.</summary>
    public const string TrainAccuracy = "train_accuracy";
    /// <summary>Validation loss.</summary>
    public const string ValLoss = "val_loss";
    /// <summary>Validation accuracy.</summary>
    public const string ValAccuracy = "val_accuracy";
    /// <summary>Validation macro precision.</summary>
    public const string ValPrecision = "val_precision";
    /// <summary>Validation macro recall.</summary>
    public const string ValRecall = "val_recall";
    /// <summary>Validation macro F1.</summary>
    public const string ValF1 = "val_f1";
    /// <summary>Validation ROC AUC (binary tasks).</summary>
    public const string ValAuc = "val_auc";
    /// <summary>Learning rate.</summary>
    public const string LearningRate = "lr";

    /// <summary>Every known name.</summary>
    public static IReadOnlyList<string> All { get; } = [TrainLoss, TrainAccuracy, ValLoss, ValAccuracy, ValPrecision, ValRecall, ValF1, ValAuc, LearningRate];

    /// <summary>Min for losses, Max for the others (an explicit mode wins).</summary>
    public static MonitorMode Resolve(string name, MonitorMode mode)
        => mode != MonitorMode.Auto ? mode : name.EndsWith("loss", StringComparison.Ordinal) ? MonitorMode.Min : MonitorMode.Max;

    /// <summary>Returns <paramref name="name"/> if known, else throws naming the valid names.</summary>
    public static string Validate(string name, string parameter)
    {
        ArgumentNullException.ThrowIfNull(name, parameter);
        if (!All.Contains(name))
            throw new ArgumentException($"unknown metric '{name}'; valid names: {string.Join(", ", All)}", parameter);
        return name;
    }
}

/// <summary>The result of <see cref="Trainer.Fit"/>.</summary>
/// <param name="History">Every epoch of this trainer so far (earlier Fit calls and restored state included).</param>
/// <param name="EpochsRun">Epochs completed by this call.</param>
/// <param name="StopReason">Why a callback stopped training early (early stopping, non-finite loss); null when every epoch ran.</param>
/// <param name="BestEpoch">Best epoch of <see cref="Monitor"/> (1-based, 0 if none).</param>
/// <param name="BestMetric">Its value.</param>
/// <param name="Monitor">The metric that defines "best" (<see cref="TrainerOptions.Monitor"/>).</param>
/// <param name="Seconds">Wall time of the call.</param>
public sealed record FitResult(IReadOnlyList<EpochReport> History, int EpochsRun, string? StopReason, int BestEpoch, double BestMetric, string Monitor, double Seconds)
{
    /// <summary>True when a callback stopped training before the requested epochs.</summary>
    public bool StoppedEarly => StopReason is not null;
    /// <summary>The last epoch's report.</summary>
    public EpochReport? Last => History.Count > 0 ? History[^1] : null;
}

/// <summary>
/// The trainer's resumable progress, for checkpoints: capture it with <see cref="Trainer.State"/> (usually from a
/// callback's <see cref="ICallback.OnEpochEnd"/>) and give it back with <see cref="Trainer.Restore"/>. Model weights,
/// optimizer state and callback state are saved separately.
/// </summary>
/// <param name="Epoch">Epochs completed.</param>
/// <param name="GlobalStep">Optimizer steps taken.</param>
/// <param name="BestMetric">Best value of the monitored metric (NaN before the first epoch).</param>
/// <param name="BestEpoch">Epoch of <paramref name="BestMetric"/> (0 before the first epoch).</param>
/// <param name="History">Every epoch's report.</param>
public sealed record TrainerState(int Epoch, long GlobalStep, double BestMetric, int BestEpoch, IReadOnlyList<EpochReport> History);

/// <summary>Options of a <see cref="Trainer"/>.</summary>
public sealed record TrainerOptions
{
    private readonly int _nanCheckEvery;

    /// <summary>The metric that defines the best epoch in <see cref="TrainerState"/>; null: val_loss with validation, else train_loss.</summary>
    public string? Monitor { get; init; }
    /// <summary>Mode of <see cref="Monitor"/>.</summary>
    public MonitorMode MonitorMode { get; init; }
    /// <summary>
    /// Add a <see cref="NanGuard"/> checking every <see cref="NanCheckEverySteps"/> steps when the callbacks hold none
    /// (default true).
    /// </summary>
    public bool StopOnNonFiniteLoss { get; init; } = true;
    /// <summary>
    /// Steps between loss checks of the automatic <see cref="NanGuard"/>: 0 (default) checks the epoch's accumulated
    /// loss once per epoch at no extra cost; k &gt; 0 also reads the step loss every k steps (a host synchronisation).
    /// </summary>
    public int NanCheckEverySteps
    {
        get => _nanCheckEvery;
        init => _nanCheckEvery = value >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(NanCheckEverySteps), value, "NanCheckEverySteps must be >= 0 (0 = once per epoch)");
    }
    /// <summary>Gather predictions during training to report training accuracy (a small device copy per step, one read-back per epoch).</summary>
    public bool TrainAccuracy { get; init; } = true;
}
