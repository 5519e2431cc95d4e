using System.CommandLine;
using System.Globalization;
using GpuNet.Data;
using GpuNet.Schedules;

namespace GpuNet.Bench;

/// <summary>
/// <c>train &lt;preset&gt;</c>: trains a preset network on its data set with the public library API (model, optimizer,
/// schedule, regularisers, Fit with callbacks, Evaluate), prints a header, per-epoch lines and the test metrics, and
/// optionally writes a JSON summary, the best checkpoint and a PNG of the curves.
/// </summary>
internal static class TrainCommand
{
    internal static readonly string[] Optimizers = ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"];
    internal static readonly string[] Schedules = ["none", "step", "exponential", "cosine", "cosine-restarts", "onecycle", "cyclic"];

    public static Command Create()
    {
        var preset = new Argument<string>("preset") { Description = $"one of: {string.Join(", ", Preset.All.Concat(Preset.Cnn).Select(p => p.Name))}" };
        preset.Validators.Add(r =>
        {
            var v = r.GetValueOrDefault<string>();
            if (Preset.Find(v) is null) r.AddError($"unknown preset '{v}'; allowed: {string.Join(", ", Preset.All.Concat(Preset.Cnn).Select(p => p.Name))}");
        });
        var device = Cli.DeviceOption();
        var epochs = new Option<int?>("--epochs") { Description = "epochs (>= 1; default: the preset's)" };
        var batch = new Option<int?>("--batch-size") { Description = "batch size (>= 1; default: the preset's)" };
        var optimizer = new Option<string?>("--optimizer") { Description = $"one of {string.Join(", ", Optimizers)} (default: the preset's)" };
        var lr = new Option<double?>("--lr") { Description = "learning rate (> 0; default: the preset's)" };
        var schedule = new Option<string?>("--schedule") { Description = $"one of {string.Join(", ", Schedules)} (default: the preset's)" };
        var wd = new Option<double?>("--weight-decay") { Description = "weight decay (>= 0): decoupled for adamw, coupled L2 otherwise; weights only" };
        var l1 = new Option<double?>("--l1") { Description = "L1 penalty (>= 0), weights only" };
        var l2 = new Option<double?>("--l2") { Description = "L2 penalty added to the gradient (>= 0), weights only" };
        var dropout = new Option<float?>("--dropout") { Description = "dropout probability in [0, 1) for presets with dropout layers" };
        var patience = new Option<int?>("--patience") { Description = "early-stopping patience in epochs (>= 0); restores the best weights" };
        var seed = new Option<ulong?>("--seed") { Description = "seed of initialisation, splits, shuffles and dropout (default 1)" };
        var outDir = new Option<string?>("--out") { Description = "directory for best.safetensors, last.safetensors, curves.png, confusion.png and (image sets) mistakes.png" };
        var json = new Option<string?>("--json") { Description = "write a JSON summary to this path" };
        var resume = new Option<string?>("--resume") { Description = "continue from a checkpoint written by --out (last.safetensors)" };
        var onnx = new Option<string?>("--onnx") { Description = "after training, export the model the run ends with (the best weights when early stopping restored them) as ONNX to this path" };
        var tensorBoard = new Option<string?>("--tensorboard") { Description = "write TensorBoard event files (scalars, weight and gradient histograms, the model summary) into this directory" };
        var csv = new Option<string?>("--csv") { Description = "write one CSV row per epoch (the columns of --json's history) to this path" };
        var quiet = new Option<bool>("--quiet") { Description = "no progress bar, plain lines only" };
        var initFrom = new Option<string?>("--init-from") { Description = "initialise the weights from a safetensors state_dict of the same network (e.g. saved by PyTorch; F16/BF16/F32/F64), then train (fine-tune)" };
        var math = GemmCommand.MathOption();
        var cmd = new Command("train", "Train a preset network on real data and report accuracy, throughput and MFU.")
        {
            preset, device, epochs, batch, optimizer, lr, schedule, wd, l1, l2, dropout, patience, seed, outDir, json, resume, onnx, quiet, math, tensorBoard, csv, initFrom,
        };
        cmd.SetAction(p => Cli.Guard(() =>
        {
            var pr = Preset.Find(p.GetValue(preset)!)!;
            var d = pr.Defaults;
            var s = d with
            {
                Epochs = Check(p.GetValue(epochs), d.Epochs, v => v >= 1, "--epochs", ">= 1"),
                BatchSize = Check(p.GetValue(batch), d.BatchSize, v => v >= 1, "--batch-size", ">= 1"),
                Optimizer = Check(p.GetValue(optimizer)?.ToLowerInvariant(), d.Optimizer, Optimizers.Contains, "--optimizer", string.Join(", ", Optimizers)),
                LearningRate = Check(p.GetValue(lr), d.LearningRate, v => v > 0 && double.IsFinite(v), "--lr", "> 0"),
                Schedule = Check(p.GetValue(schedule)?.ToLowerInvariant(), d.Schedule, Schedules.Contains, "--schedule", string.Join(", ", Schedules)),
                WeightDecay = Check(p.GetValue(wd), d.WeightDecay, v => v >= 0 && double.IsFinite(v), "--weight-decay", ">= 0"),
                L1 = Check(p.GetValue(l1), d.L1, v => v >= 0 && double.IsFinite(v), "--l1", ">= 0"),
                L2 = Check(p.GetValue(l2), d.L2, v => v >= 0 && double.IsFinite(v), "--l2", ">= 0"),
                Dropout = Check(p.GetValue(dropout), d.Dropout, v => v >= 0 && v < 1, "--dropout", "in [0, 1)"),
                Patience = p.GetValue(patience) is int pa ? (pa >= 0 ? pa : throw new UsageException($"--patience: {pa} is not allowed; expected >= 0")) : d.Patience,
                Seed = p.GetValue(seed) ?? d.Seed,
            };
            if (p.GetValue(onnx) is string onnxPath && !Directory.Exists(Path.GetDirectoryName(Path.GetFullPath(onnxPath))))
                throw new UsageException($"--onnx: the directory of '{onnxPath}' does not exist");
            var options = new TrainRunOptions(pr, s, p.GetValue(device), p.GetValue(outDir), p.GetValue(json), p.GetValue(resume), p.GetValue(quiet), p.GetValue(onnx))
            {
                TensorBoardDir = p.GetValue(tensorBoard), CsvPath = p.GetValue(csv), InitFrom = p.GetValue(initFrom),
            };
            if (options.InitFrom is not null && options.ResumePath is not null)
                throw new UsageException("--init-from and --resume exclude each other: --resume restores the whole run, --init-from only the weights");
            var mathMode = GemmCommand.ParseMath(p.GetValue(math));
            using var dev = Cli.OpenDevice(options.Device);
            if (mathMode is { } mm) dev.MathMode = mm;
            return TrainRun.Run(dev, options, Console.Out);
        }));
        return cmd;
    }

    private static T Check<T>(T? given, T fallback, Func<T, bool> valid, string option, string allowed) where T : struct
    {
        if (given is not T v) return fallback;
        if (!valid(v)) throw new UsageException(string.Create(CultureInfo.InvariantCulture, $"{option}: {v} is not allowed; expected {allowed}"));
        return v;
    }

    private static string Check(string? given, string fallback, Func<string, bool> valid, string option, string allowed)
    {
        if (given is null) return fallback;
        if (!valid(given)) throw new UsageException($"{option}: '{given}' is not allowed; expected one of {allowed}");
        return given;
    }

    /// <summary>The schedule a name stands for, over a run of <paramref name="epochs"/> x <paramref name="stepsPerEpoch"/> steps.</summary>
    internal static LearningRateSchedule? MakeSchedule(string name, double lr, int epochs, int stepsPerEpoch)
    {
        long total = Math.Max(1L, (long)epochs * stepsPerEpoch);
        return name switch
        {
            "none" => null,
            "step" => new StepLR(lr, Math.Max(1, epochs / 2), 0.1) { Unit = ScheduleUnit.Epoch },
            "exponential" => new ExponentialLR(lr, 0.8) { Unit = ScheduleUnit.Epoch },
            "cosine" => new CosineAnnealingLR(lr, total),
            "cosine-restarts" => new CosineAnnealingWarmRestarts(lr, Math.Max(1, stepsPerEpoch), 2),
            "onecycle" => new OneCycleLR(lr, total + 1),
            "cyclic" => new CyclicLR(lr / 10, lr, Math.Max(1, stepsPerEpoch * 2)),
            _ => throw new UsageException($"--schedule: '{name}' is not one of {string.Join(", ", Schedules)}"),
        };
    }
}

/// <summary>Everything <see cref="TrainRun.Run"/> needs from the command line.</summary>
internal sealed record TrainRunOptions(Preset Preset, TrainSettings Settings, string? Device, string? OutDir, string? JsonPath, string? ResumePath, bool Quiet, string? OnnxPath = null)
{
    /// <summary><c>--tensorboard</c>: the directory of the event file, or null.</summary>
    public string? TensorBoardDir { get; init; }
    /// <summary><c>--csv</c>: the per-epoch CSV file, or null.</summary>
    public string? CsvPath { get; init; }
    /// <summary>A state_dict to initialise the weights from (strict: same names and shapes), or null.</summary>
    public string? InitFrom { get; init; }
}
