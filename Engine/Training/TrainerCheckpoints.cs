using GpuNet.Checkpoints;

namespace GpuNet.Training;

/// <summary>
/// Checkpoints of a whole training run: the model's parameters and buffers, the optimizer state and the trainer's
/// progress (epoch, global step, best metric, per-epoch history) in one safetensors file, so that
/// <see cref="Resume"/> into a freshly built model, optimizer and trainer (same preset and seed) continues the run
/// exactly: the shuffles are a function of (seed, epoch), the schedule of the global step, dropout masks of
/// (model seed, step).
/// </summary>
public static class TrainerCheckpoints
{
    /// <summary>Writes the checkpoint atomically; <paramref name="metadata"/> adds strings (see <see cref="CheckpointMetadata"/>).</summary>
    public static void Save(string path, Trainer trainer, ulong seed, string? description = null, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(trainer);
        var st = trainer.State;
        var state = new TrainingState
        {
            Epoch = st.Epoch, Step = st.GlobalStep, Seed = seed, ScheduleStep = st.GlobalStep,
            BestMetric = double.IsNaN(st.BestMetric) ? null : st.BestMetric, BestEpoch = st.BestEpoch,
            History = st.History.Select(ToMetrics).ToArray(),
        };
        Checkpoint.Save(path, trainer.Model, trainer.Optimizer, state, description, metadata);
    }

    /// <summary>Restores weights, buffers, optimizer state and progress; returns the restored training state.</summary>
    /// <exception cref="CheckpointException">The file does not match the model or optimizer, or holds no training state.</exception>
    public static TrainingState Resume(string path, Trainer trainer)
    {
        ArgumentNullException.ThrowIfNull(trainer);
        var file = Checkpoint.Read(path);
        if (file.TrainingState is null) throw new CheckpointException(path, "it holds no training state (it was not written by a trainer)");
        var state = Checkpoint.Restore(file, trainer.Model, trainer.Optimizer)!;
        trainer.Restore(new TrainerState(state.Epoch, state.Step, state.BestMetric ?? double.NaN, state.BestEpoch ?? 0,
            state.History.Select(ToReport).ToArray()));
        return state;
    }

    private static EpochMetrics ToMetrics(EpochReport r)
    {
        var d = new Dictionary<string, double>
        {
            ["lr"] = r.LearningRate, ["train_loss"] = r.TrainLoss, ["seconds"] = r.Seconds, ["total_seconds"] = r.TotalSeconds,
            ["samples"] = r.Samples, ["steps"] = r.Steps, ["step"] = r.GlobalStep, ["flops"] = r.TrainingFlops,
        };
        if (r.TrainAccuracy is double ta) d["train_accuracy"] = ta;
        if (r.Validation is { } v)
        {
            d["val_loss"] = v.Loss;
            d["val_samples"] = v.Samples;
            if (v.Accuracy is double va) d["val_accuracy"] = va;
        }
        return new EpochMetrics(r.Epoch, d);
    }

    private static EpochReport ToReport(EpochMetrics m)
    {
        double? Get(string k) => m.Values.TryGetValue(k, out double v) ? v : null;
        return new EpochReport
        {
            Epoch = m.Epoch, GlobalStep = (long)(Get("step") ?? 0), Steps = (int)(Get("steps") ?? 0), Samples = (int)(Get("samples") ?? 0),
            TrainLoss = Get("train_loss") ?? double.NaN, TrainAccuracy = Get("train_accuracy"),
            Validation = Get("val_loss") is double vl ? new EvalResult(vl, (int)(Get("val_samples") ?? 0), null, 0) { Accuracy = Get("val_accuracy") } : null,
            LearningRate = Get("lr") ?? 0, Seconds = Get("seconds") ?? 0, TotalSeconds = Get("total_seconds") ?? 0, TrainingFlops = Get("flops") ?? 0,
        };
    }
}

/// <summary>
/// Best-model checkpointing: after every epoch writes <c>last.safetensors</c> (the whole run: weights, optimizer state,
/// progress; what <see cref="TrainerCheckpoints.Resume"/> reads) into <see cref="Directory"/>, and, when the trainer's
/// monitored metric improved in that epoch, <c>best.safetensors</c> first. Both writes are atomic and durable
/// (<see cref="TrainerCheckpoints.Save"/>): a crash at any moment leaves each
/// file either as it was or as the new complete checkpoint. Writing best before last keeps them consistent: if the
/// process dies between the two, last is still the previous epoch, and a resumed run repeats the epoch and rewrites
/// best identically.
/// </summary>
public sealed class ModelCheckpoint : ICallback
{
    /// <summary>Creates the callback; the directory is created when missing, and temporary files of interrupted writes are deleted.</summary>
    /// <param name="directory">Where the two files go.</param>
    /// <param name="seed">The run's seed, recorded in the checkpoint.</param>
    /// <param name="description">Free text stored in the checkpoint's metadata.</param>
    public ModelCheckpoint(string directory, ulong seed, string? description = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        Directory = System.IO.Directory.CreateDirectory(directory).FullName;
        Seed = seed;
        Description = description;
        foreach (var target in new[] { LastPath, BestPath })
            foreach (var stale in System.IO.Directory.EnumerateFiles(Directory, SafeTensorsFormat.TempPrefix(target) + "*.tmp"))
                File.Delete(stale);
    }

    /// <summary>The directory of the checkpoints.</summary>
    public string Directory { get; }
    /// <summary>The run's seed.</summary>
    public ulong Seed { get; }
    /// <summary>Metadata text.</summary>
    public string? Description { get; }
    /// <summary>Extra metadata strings written into both files (e.g. <see cref="CheckpointMetadata"/> keys).</summary>
    public IReadOnlyDictionary<string, string>? Metadata { get; init; }
    /// <summary>Path of the checkpoint written after every epoch.</summary>
    public string LastPath => Path.Combine(Directory, "last.safetensors");
    /// <summary>Path of the best epoch's checkpoint.</summary>
    public string BestPath => Path.Combine(Directory, "best.safetensors");

    /// <inheritdoc/>
    public void OnEpochEnd(TrainingContext context)
    {
        var trainer = context.Trainer;
        if (trainer.State.BestEpoch == trainer.State.Epoch) TrainerCheckpoints.Save(BestPath, trainer, Seed, Description, Metadata);
        TrainerCheckpoints.Save(LastPath, trainer, Seed, Description, Metadata);
    }
}
