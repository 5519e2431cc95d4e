using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using GpuNet.Checkpoints;
using GpuNet.Data;
using GpuNet.Experiments;
using GpuNet.Nn;
using GpuNet.Onnx;
using GpuNet.Optim;
using GpuNet.Training;

namespace GpuNet.Bench;

/// <summary>One <c>train</c> run: data, model, optimizer, schedule, Fit with callbacks, test evaluation, reports.</summary>
internal static class TrainRun
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static int Run(Device device, TrainRunOptions o, TextWriter log)
    {
        var x = o.Experiment;
        var c = x.Config;
        // MFU is reported against a stable peak (the nominal one, or the best probe cached for this machine), not this run's probe.
        var peakRef = device.IsHost ? PeakReference.ForThisHost(DataSets.CacheDirectory) : null;
        double? peak = peakRef?.Gflops * 1e9;
        var data = x.LoadData(log);
        int batch = c.Training.BatchSize, epochs = c.Training.Epochs;
        ulong seed = c.Training.Seed;
        using var model = Model.Build(device, x.CreateNetwork(), x.SampleShape, batch, new ModelOptions { Seed = seed });
        var loss = x.CreateLoss();
        using var optimizer = x.CreateOptimizer(model);
        using var train = new DataLoader(device, data.Train, batch, shuffle: true, dropLast: false, seed, prefetch: true, data.Targets, data.Augment);
        using var val = data.Validation is null ? null : new DataLoader(device, data.Validation, batch, false, false, seed, prefetch: false, data.Targets);
        using var test = data.Test is null ? null : new DataLoader(device, data.Test, batch, false, false, seed, prefetch: false, data.Targets);
        var schedule = x.CreateSchedule(train.BatchCount);
        var trainer = new Trainer(model, loss, optimizer, schedule, new TrainerOptions { Monitor = x.Monitor(val is not null) });
        var summary = model.Summary();
        double flopsPerSample = summary.TrainingFlopsPerSample;

        log.WriteLine(string.Create(Inv, $"GpuNet train {c.Name} | device {device.Name} ({device.Info.Description}) | math {MathName(device)} | {model.ParameterCount:N0} parameters, {flopsPerSample / 1e6:F2} MFLOP/sample (train) | {summary.LaunchesPerTrainingStep} launches/step"));
        log.WriteLine(string.Create(Inv, $"data: train {data.Train.Count}, validation {data.Validation?.Count ?? 0}, test {data.Test?.Count ?? 0} | batch {batch}, {epochs} epochs, {Describe(c.Optimizer)}, schedule {Describe(c.Schedule)}, seed {seed}"));
        if (peakRef is not null) log.WriteLine("MFU against: " + peakRef.Describe());

        if (o.InitFrom is not null)
        {
            var report = Checkpoint.InitializeFrom(model, o.InitFrom, strict: true);
            log.WriteLine($"initialised {report.Loaded.Count} tensors from {o.InitFrom}");
        }

        int epochsDone = 0;
        if (o.ResumePath is not null)
        {
            var state = TrainerCheckpoints.Resume(o.ResumePath, trainer);
            epochsDone = state.Epoch;
            log.WriteLine($"resumed from {o.ResumePath} at epoch {epochsDone}, step {state.Step}");
            if (epochsDone >= epochs) throw new UsageException($"--resume: the checkpoint is at epoch {epochsDone}; --epochs {epochs} leaves nothing to train");
        }

        var callbacks = new List<ICallback>();
        var finalEval = new FinalEvaluation(trainer, val, test);
        callbacks.Add(finalEval);
        if (x.CreateEarlyStopping(val is not null) is { } early) callbacks.Add(early);
        string? best = null;
        if (o.OutDir is not null)
        {
            // The config as JSON in the checkpoint's description (Experiment.CheckpointKey), so the run can be rebuilt from
            // it, and what predict needs (CheckpointMetadata).
            var checkpoints = new ModelCheckpoint(o.OutDir, seed, c.ToText(ConfigFormat.Json)) { Metadata = PredictMetadata(o.Preset, data) };
            best = checkpoints.BestPath;
            callbacks.Add(checkpoints);
        }
        using var outputs = RunOutputs.Open(o.TensorBoardDir, o.CsvPath, trainer.History, log);
        callbacks.AddRange(outputs.Callbacks);
        bool bar = !o.Quiet && !Console.IsOutputRedirected;
        var progress = new ProgressBar(log, bar);
        trainer.BatchCompleted += progress.OnBatch;
        trainer.EpochCompleted += r =>
        {
            progress.Clear();
            double? mfu = peak is double p ? r.TrainingFlops / r.Seconds / p : null;
            log.WriteLine(string.Create(Inv,
                $"epoch {r.Epoch,3}/{epochs} | lr {r.LearningRate:E2} | train loss {r.TrainLoss:F4} acc {Pct(r.TrainAccuracy)} | val loss {Num(r.ValLoss)} acc {Pct(r.ValAccuracy)} | {r.Seconds:F2}s {r.SamplesPerSecond:N0}/s{(mfu is double m ? $" | MFU {m:P1}" : "")}"));
        };

        var fit = trainer.Fit(train, val, epochs - epochsDone, callbacks.ToArray());
        var bestTest = test is null ? null : trainer.Evaluate(test);
        var bestVal = val is null ? null : trainer.Evaluate(val);

        double trainSeconds = fit.History.Skip(epochsDone).Sum(h => h.Seconds);
        int trainSamples = fit.History.Skip(epochsDone).Sum(h => h.Samples);
        double trainFlops = fit.History.Skip(epochsDone).Sum(h => h.TrainingFlops);
        double? runMfu = peak is double pp && trainSeconds > 0 ? trainFlops / trainSeconds / pp : null;
        var metrics = bestTest?.Metrics ?? bestVal?.Metrics;
        log.WriteLine(fit.StoppedEarly ? $"stopped: {fit.StopReason}" : $"finished {fit.EpochsRun} epoch(s)");
        log.WriteLine(string.Create(Inv, $"train: {trainSeconds:F1}s, {trainSamples / Math.Max(trainSeconds, 1e-9):N0} samples/s{(runMfu is double mm ? $", MFU {mm:P1} of {peak / 1e9:F0} GFLOP/s ({peakRef!.Source}; this run's probe {peakRef.ProbeGflops:F0})" : "")}"));
        if (bestVal is not null) log.WriteLine(string.Create(Inv, $"validation: loss {bestVal.Loss:F4}, accuracy {Pct(bestVal.Accuracy)} (best epoch {fit.BestEpoch})"));
        if (bestTest is not null) log.WriteLine(string.Create(Inv, $"test: loss {bestTest.Loss:F4}, accuracy {Pct(bestTest.Accuracy)}"));
        if (metrics is not null)
            log.WriteLine(string.Create(Inv, $"{(bestTest is null ? "validation" : "test")} metrics: macro precision {metrics.MacroPrecision:F4}, recall {metrics.MacroRecall:F4}, F1 {metrics.MacroF1:F4}{(metrics.RocAuc is double auc ? $", ROC AUC {auc:F4}" : "")}"));

        if (o.OnnxPath is not null)
        {
            model.ExportOnnx(o.OnnxPath);
            log.WriteLine($"onnx: {o.OnnxPath} (opset {OnnxExport.Opset}, dynamic batch)");
        }
        var history = fit.History.Select(HistoryRow.From).ToList();
        if (o.OutDir is not null)
        {
            Plot.Curves(Path.Combine(o.OutDir, "curves.png"), c.Name, history);
            if (val is not null && bestVal is not null) RunPictures.Write(o.OutDir, c.Name, trainer, val, data.Validation!, bestVal);
        }
        if (o.JsonPath is not null)
        {
            var json = new JsonObject
            {
                ["preset"] = c.Name,
                ["device"] = device.Name,
                ["math"] = MathName(device),
                ["seed"] = seed,
                ["epochs_run"] = fit.History.Count,
                ["best_epoch"] = fit.BestEpoch,
                ["stopped_early"] = fit.StoppedEarly,
                ["train_seconds"] = trainSeconds,
                ["samples_per_second"] = trainSamples / Math.Max(trainSeconds, 1e-9),
                ["mfu"] = runMfu,
                ["peak_gflops"] = peakRef?.Gflops,
                ["peak_source"] = peakRef?.Source,
                ["nominal_peak_gflops"] = peakRef?.Nominal?.Gflops,
                ["probe_gflops"] = peakRef?.ProbeGflops,
                ["history"] = new JsonArray(history.Select(h => (JsonNode)h.ToJson()).ToArray()),
                ["final"] = Split(finalEval.Validation ?? fit.Last?.Validation, finalEval.Test),
                ["best"] = Best(fit, c.Training.EarlyStopping is not null, bestVal, bestTest),
                ["test_metrics"] = metrics is null ? null : new JsonObject
                {
                    ["accuracy"] = metrics.Accuracy,
                    ["macro_precision"] = metrics.MacroPrecision,
                    ["macro_recall"] = metrics.MacroRecall,
                    ["macro_f1"] = metrics.MacroF1,
                    ["confusion_matrix"] = Matrix(metrics.ConfusionMatrix),
                },
                ["checkpoint"] = best is not null && File.Exists(best) ? Path.GetFullPath(best) : null,
            };
            AtomicFile.WriteAllText(o.JsonPath, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        }
        return Cli.Ok;
    }

    /// <summary>What <c>predict</c> needs besides the weights: the preset's name (preset runs), the input standardisation, the class names.</summary>
    private static Dictionary<string, string> PredictMetadata(string? preset, ExperimentData data)
    {
        var m = new Dictionary<string, string>();
        if (preset is not null) m[CheckpointMetadata.Preset] = preset;
        if (data.Standardizer is { } std) m[CheckpointMetadata.Standardization] = CheckpointMetadata.StandardizationJson(std);
        if (data.Train.HasLabels) m[CheckpointMetadata.ClassNames] = CheckpointMetadata.ClassNamesJson(data.Train.ClassNames);
        return m;
    }

    internal static Optimizer MakeOptimizer(Model model, TrainSettings s)
    {
        if (!TrainCommand.Optimizers.Contains(s.Optimizer)) throw new UsageException($"--optimizer: '{s.Optimizer}' is not one of {string.Join(", ", TrainCommand.Optimizers)}");
        return Experiment.CreateOptimizer(Preset.OptimizerConfig(s.Optimizer, s.LearningRate), new RegularizationConfig(s.L1, s.L2, s.WeightDecay), model);
    }

    // "adam lr 0.003" or "sgd lr 0.1 momentum 0.9 nesterov true": the kind, then the arguments the config gave.
    private static string Describe(Component c)
        => string.Join(" ", new[] { c.Type }.Concat(c.Args.Select(a => $"{a.Key} {(a.Value is double d ? d.ToString("G4", Inv) : a.Value.ToString()?.ToLowerInvariant())}")));

    /// <summary>
    /// The best epoch's figures: with early stopping the model now holds the best weights, so both splits are evaluated
    /// on them; without it the best epoch's validation figures come from the history, and its test figures only when the
    /// best epoch is the last one (the weights of earlier epochs are gone).
    /// </summary>
    private static JsonObject Best(FitResult fit, bool restored, EvalResult? val, EvalResult? test)
    {
        if (restored || fit.BestEpoch == fit.History.Count) return Split(val, test);
        var h = fit.BestEpoch > 0 ? fit.History[fit.BestEpoch - 1] : null;
        return new JsonObject { ["val_loss"] = h?.ValLoss, ["val_accuracy"] = h?.ValAccuracy, ["test_loss"] = null, ["test_accuracy"] = null };
    }

    private static JsonObject Split(EvalResult? val, EvalResult? test) => new()
    {
        ["val_loss"] = val?.Loss, ["val_accuracy"] = val?.Accuracy, ["test_loss"] = test?.Loss, ["test_accuracy"] = test?.Accuracy,
    };

    private static JsonArray Matrix(long[,] m)
    {
        var rows = new JsonArray();
        for (int i = 0; i < m.GetLength(0); i++)
            rows.Add(new JsonArray(Enumerable.Range(0, m.GetLength(1)).Select(j => (JsonNode)JsonValue.Create(m[i, j])).ToArray()));
        return rows;
    }

    /// <summary>The GEMM precision the run used: tf32 only where the device honours it (not on the cpu device).</summary>
    private static string MathName(Device device) => device.MathMode == MatmulMath.Tf32 && !device.IsHost ? "tf32" : "fp32";

    private static string Pct(double? v) => v is double d ? d.ToString("P2", Inv) : "-";
    private static string Num(double? v) => v is double d ? d.ToString("F4", Inv) : "-";

    /// <summary>Evaluates validation and test on the weights as they are when training ends, before early stopping restores the best.</summary>
    private sealed class FinalEvaluation(Trainer trainer, IBatchSource? validation, IBatchSource? test) : ICallback
    {
        public EvalResult? Validation { get; private set; }
        public EvalResult? Test { get; private set; }

        public void OnTrainEnd(TrainingContext context)
        {
            if (context.Report is null && trainer.History.Count == 0) return;
            Validation = validation is null ? null : trainer.Evaluate(validation);
            Test = test is null ? null : trainer.Evaluate(test);
        }
    }
}

/// <summary>One epoch of the printed, plotted, saved and JSON history.</summary>
internal sealed record HistoryRow(int Epoch, double Lr, double TrainLoss, double? TrainAccuracy, double? ValLoss, double? ValAccuracy, double Seconds)
{
    public static HistoryRow From(EpochReport r) => new(r.Epoch, r.LearningRate, r.TrainLoss, r.TrainAccuracy, r.ValLoss, r.ValAccuracy, r.Seconds);

    public JsonObject ToJson() => new()
    {
        ["epoch"] = Epoch, ["lr"] = Lr, ["train_loss"] = TrainLoss, ["train_accuracy"] = TrainAccuracy,
        ["val_loss"] = ValLoss, ["val_accuracy"] = ValAccuracy, ["seconds"] = Seconds,
    };
}

/// <summary>A one-line progress bar redrawn in place (only on a terminal).</summary>
internal sealed class ProgressBar(TextWriter log, bool enabled)
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private long _last;
    private bool _drawn;

    public void OnBatch(BatchReport b)
    {
        if (!enabled || _clock.ElapsedMilliseconds - _last < 100) return;
        _last = _clock.ElapsedMilliseconds;
        const int width = 30;
        int filled = (int)((long)width * b.SamplesSeen / Math.Max(1, b.EpochSamples));
        log.Write($"\repoch {b.Epoch,3} [{new string('#', filled)}{new string('.', width - filled)}] {b.SamplesSeen}/{b.EpochSamples}");
        _drawn = true;
    }

    public void Clear()
    {
        if (!_drawn) return;
        log.Write("\r" + new string(' ', 80) + "\r");
        _drawn = false;
    }
}

/// <summary>Writes a file atomically: a temporary file in the same directory, flushed, then renamed over the target.</summary>
internal static class AtomicFile
{
    public static void WriteAllText(string path, string text)
    {
        string full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        string tmp = full + ".tmp" + Environment.ProcessId;
        try
        {
            using (var f = new FileStream(tmp, FileMode.Create, FileAccess.Write))
            using (var w = new StreamWriter(f))
            {
                w.Write(text);
                w.Flush();
                f.Flush(true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }
}
