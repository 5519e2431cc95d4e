using System.CommandLine;
using System.Globalization;
using GpuNet.Experiments;
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
        string presetNames = string.Join(", ", Preset.All.Concat(Preset.Cnn).Select(p => p.Name));
        var preset = new Argument<string?>("preset") { Description = $"one of: {presetNames} (or --config)", Arity = ArgumentArity.ZeroOrOne };
        preset.Validators.Add(r =>
        {
            var v = r.GetValueOrDefault<string?>();
            if (v is not null && Preset.Find(v) is null) r.AddError($"unknown preset '{v}'; allowed: {presetNames}");
        });
        var config = new Option<string?>("--config") { Description = "train the run described in this file (.json, .yaml, .yml; docs/config.md) instead of a preset" };
        var printConfig = new Option<bool>("--print-config") { Description = "print the preset (or --config file) as a config, with the overrides applied, and exit" };
        var format = new Option<string>("--format") { Description = "format of --print-config: json or yaml", DefaultValueFactory = _ => "yaml" };
        format.AcceptOnlyFromAmong("json", "yaml");
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
        var cmd = new Command("train", "Train a preset network, or a run described in a config file, on real data and report accuracy, throughput and MFU.")
        {
            preset, config, printConfig, format, device, epochs, batch, optimizer, lr, schedule, wd, l1, l2, dropout, patience, seed, outDir, json, resume, onnx, quiet, math, tensorBoard, csv, initFrom,
        };
        cmd.SetAction(p => Cli.Guard(() =>
        {
            var o = new Overrides(
                Check(p.GetValue(epochs), v => v >= 1, "--epochs", ">= 1"),
                Check(p.GetValue(batch), v => v >= 1, "--batch-size", ">= 1"),
                Check(p.GetValue(optimizer)?.ToLowerInvariant(), Optimizers.Contains, "--optimizer", string.Join(", ", Optimizers)),
                Check(p.GetValue(lr), v => v > 0 && double.IsFinite(v), "--lr", "> 0"),
                Check(p.GetValue(schedule)?.ToLowerInvariant(), Schedules.Contains, "--schedule", string.Join(", ", Schedules)),
                Check(p.GetValue(wd), v => v >= 0 && double.IsFinite(v), "--weight-decay", ">= 0"),
                Check(p.GetValue(l1), v => v >= 0 && double.IsFinite(v), "--l1", ">= 0"),
                Check(p.GetValue(l2), v => v >= 0 && double.IsFinite(v), "--l2", ">= 0"),
                Check(p.GetValue(dropout), v => v >= 0 && v < 1, "--dropout", "in [0, 1)"),
                Check(p.GetValue(patience), v => v >= 0, "--patience", ">= 0"),
                p.GetValue(seed));
            var experiment = Resolve(p.GetValue(preset), p.GetValue(config), o);
            if (p.GetValue(printConfig))
            {
                Console.Out.Write(experiment.Config.ToText(p.GetValue(format) == "json" ? ConfigFormat.Json : ConfigFormat.Yaml));
                return Cli.Ok;
            }
            if (p.GetValue(onnx) is string onnxPath && !Directory.Exists(Path.GetDirectoryName(Path.GetFullPath(onnxPath))))
                throw new UsageException($"--onnx: the directory of '{onnxPath}' does not exist");
            var options = new TrainRunOptions(experiment, p.GetValue(device), p.GetValue(outDir), p.GetValue(json), p.GetValue(resume), p.GetValue(quiet), p.GetValue(onnx))
            {
                TensorBoardDir = p.GetValue(tensorBoard), CsvPath = p.GetValue(csv), InitFrom = p.GetValue(initFrom),
                Preset = p.GetValue(config) is null ? p.GetValue(preset) : null,
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

    /// <summary>The command-line overrides of a preset's or a config's settings (null: keep).</summary>
    internal sealed record Overrides(int? Epochs, int? BatchSize, string? Optimizer, double? Lr, string? Schedule, double? WeightDecay,
        double? L1, double? L2, float? Dropout, int? Patience, ulong? Seed);

    /// <summary>The validated run a preset name or a config file describes, with the overrides applied.</summary>
    internal static Experiment Resolve(string? presetName, string? configPath, Overrides o)
    {
        if ((presetName is null) == (configPath is null))
            throw new UsageException(presetName is null ? "expected a preset name or --config PATH" : $"give either the preset '{presetName}' or --config {configPath}, not both");
        try
        {
            if (presetName is not null)
            {
                var pr = Preset.Find(presetName)!;
                var d = pr.Defaults;
                var s = d with
                {
                    Epochs = o.Epochs ?? d.Epochs, BatchSize = o.BatchSize ?? d.BatchSize, Optimizer = o.Optimizer ?? d.Optimizer,
                    LearningRate = o.Lr ?? d.LearningRate, Schedule = o.Schedule ?? d.Schedule, WeightDecay = o.WeightDecay ?? d.WeightDecay,
                    L1 = o.L1 ?? d.L1, L2 = o.L2 ?? d.L2, Dropout = o.Dropout ?? d.Dropout, Patience = o.Patience ?? d.Patience, Seed = o.Seed ?? d.Seed,
                };
                return Experiment.FromConfig(pr.ToConfig(s), source: presetName);
            }
            if (!File.Exists(configPath)) throw new UsageException($"--config: no such file: {Path.GetFullPath(configPath!)}");
            var loaded = Experiment.Load(configPath!);
            var c = loaded.Config;
            double rate = o.Lr ?? c.Optimizer.Double("lr")!.Value;
            c = c with
            {
                Name = c.Name.Length > 0 ? c.Name : Path.GetFileNameWithoutExtension(configPath!),
                Layers = o.Dropout is float p ? SetDropout(c.Layers, p) : c.Layers,
                Optimizer = o.Optimizer is { } name ? Preset.OptimizerConfig(name, rate) : o.Lr is double r ? c.Optimizer.With("lr", r) : c.Optimizer,
                Schedule = o.Schedule is { } sch ? Preset.ScheduleConfig(sch) : c.Schedule,
                Regularization = new RegularizationConfig(o.L1 ?? c.Regularization.L1, o.L2 ?? c.Regularization.L2, o.WeightDecay ?? c.Regularization.WeightDecay),
                Training = c.Training with
                {
                    Epochs = o.Epochs ?? c.Training.Epochs, BatchSize = o.BatchSize ?? c.Training.BatchSize, Seed = o.Seed ?? c.Training.Seed,
                    EarlyStopping = o.Patience is int pa ? (c.Training.EarlyStopping ?? new EarlyStoppingConfig("", pa, 0)) with { Patience = pa } : c.Training.EarlyStopping,
                },
            };
            return Experiment.FromConfig(c, loaded.BaseDirectory, configPath!);
        }
        catch (ConfigException e) { throw new UsageException(e.Message); }
    }

    // --dropout sets p of every dropout layer, nested ones included.
    private static IReadOnlyList<Component> SetDropout(IReadOnlyList<Component> layers, float p) => layers.Select(l => l.Type switch
    {
        "dropout" => l.With("p", (double)(decimal)p),
        "sequential" => l.With("layers", SetDropout(l.Layers("layers")!, p)),
        "residual" => l.With("block", SetDropout(l.Layers("block")!, p)).With("shortcut", SetDropout(l.Layers("shortcut")!, p)),
        _ => l,
    }).ToArray();

    private static T? Check<T>(T? given, Func<T, bool> valid, string option, string allowed) where T : struct
    {
        if (given is not T v) return null;
        if (!valid(v)) throw new UsageException(string.Create(CultureInfo.InvariantCulture, $"{option}: {v} is not allowed; expected {allowed}"));
        return v;
    }

    private static string? Check(string? given, Func<string, bool> valid, string option, string allowed)
    {
        if (given is null) return null;
        if (!valid(given)) throw new UsageException($"{option}: '{given}' is not allowed; expected one of {allowed}");
        return given;
    }

    /// <summary>The schedule a name stands for, over a run of <paramref name="epochs"/> x <paramref name="stepsPerEpoch"/> steps.</summary>
    internal static LearningRateSchedule? MakeSchedule(string name, double lr, int epochs, int stepsPerEpoch)
    {
        if (!Schedules.Contains(name)) throw new UsageException($"--schedule: '{name}' is not one of {string.Join(", ", Schedules)}");
        return Experiment.CreateSchedule(Preset.ScheduleConfig(name), lr, epochs, stepsPerEpoch);
    }
}

/// <summary>Everything <see cref="TrainRun.Run"/> needs from the command line.</summary>
internal sealed record TrainRunOptions(Experiment Experiment, string? Device, string? OutDir, string? JsonPath, string? ResumePath, bool Quiet, string? OnnxPath = null)
{
    /// <summary><c>--tensorboard</c>: the directory of the event file, or null.</summary>
    public string? TensorBoardDir { get; init; }
    /// <summary><c>--csv</c>: the per-epoch CSV file, or null.</summary>
    public string? CsvPath { get; init; }
    /// <summary>A state_dict to initialise the weights from (strict: same names and shapes), or null.</summary>
    public string? InitFrom { get; init; }
    /// <summary>The preset's name when the run is a built-in preset (not a config file), recorded for predict; else null.</summary>
    public string? Preset { get; init; }
}
