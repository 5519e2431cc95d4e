using GpuNet.Data;
using GpuNet.Nn;
using GpuNet.Optim;
using GpuNet.Schedules;
using GpuNet.Training;

namespace GpuNet.Experiments;

/// <summary>The data of one run: training, validation and (optionally) test splits, preprocessed.</summary>
/// <param name="Train">The training split.</param>
/// <param name="Validation">The validation split, or null.</param>
/// <param name="Test">The test split, or null.</param>
/// <param name="Targets">How batches carry targets (labels or floats), as the loss needs.</param>
/// <param name="Augment">Augmentation of training batches, or null.</param>
/// <param name="Standardizer">The standardisation fitted on the (scaled) training split and applied to every split, or
/// null when the config does not standardise; new inputs need the same scale, then this.</param>
public sealed record ExperimentData(Dataset Train, Dataset? Validation, Dataset? Test, BatchTargets Targets, IAugmentation? Augment,
    Standardizer? Standardizer = null);

/// <summary>
/// A validated <see cref="ExperimentConfig"/>: the schema has been checked, the per-sample shape of the data is known
/// (from the built-in set's description or the files' headers, without reading the data) and every layer fits the
/// shape that reaches it. Creates the network, loss, optimizer, schedule and early stopping, and loads the data.
/// </summary>
public sealed class Experiment
{
    /// <summary>The checkpoint metadata key (<c>gpunet.description</c>) that holds the config, as JSON, of a run started from one.</summary>
    public const string CheckpointKey = "gpunet.description";

    private Experiment(ExperimentConfig config, string baseDirectory, int[] sampleShape, int? classes)
    {
        Config = config;
        BaseDirectory = baseDirectory;
        SampleShape = sampleShape;
        ClassCount = classes;
    }

    /// <summary>The config.</summary>
    public ExperimentConfig Config { get; }
    /// <summary>The directory relative data paths are resolved against (the config file's).</summary>
    public string BaseDirectory { get; }
    /// <summary>The per-sample shape of the data, e.g. (1, 28, 28).</summary>
    public int[] SampleShape { get; }
    /// <summary>The number of classes when known before reading the data (null for a CSV source).</summary>
    public int? ClassCount { get; }

    /// <summary>Reads, parses and validates a config file (.json, .yaml or .yml).</summary>
    /// <exception cref="ConfigException">Syntax errors (with the line), schema errors and impossible shapes, all of them.</exception>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    public static Experiment Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string ext = Path.GetExtension(path).ToLowerInvariant();
        var format = ext switch
        {
            ".json" => ConfigFormat.Json,
            ".yaml" or ".yml" => ConfigFormat.Yaml,
            _ => throw new ConfigException(path, [new ConfigError("$", $"expected a .json, .yaml or .yml file, got '{ext}'")]),
        };
        string text = File.ReadAllText(path);
        return Parse(text, format, path, Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    /// <summary>Parses and validates config text; relative data paths resolve against <paramref name="baseDirectory"/>.</summary>
    /// <exception cref="ConfigException">Every problem found.</exception>
    public static Experiment Parse(string text, ConfigFormat format, string source = "config", string? baseDirectory = null)
    {
        var errors = new List<ConfigError>();
        var config = ExperimentConfig.Read(ConfigNode.Parse(text, format, source), errors, out var part);
        if (config is null)
        {
            // Report the shape errors of the parts that did parse along with the schema errors.
            if (part.Source is not null && part.Layers is not null)
                Check(part.Source, part.Layers, part.Loss?.Type, part.Augments, part.Seed, baseDirectory ?? Directory.GetCurrentDirectory(), errors);
            throw new ConfigException(source, errors);
        }
        return FromConfig(config, baseDirectory, source);
    }

    /// <summary>Validates a config built in code (shapes, files' headers, loss against the network's output).</summary>
    /// <exception cref="ConfigException">Every problem found.</exception>
    public static Experiment FromConfig(ExperimentConfig config, string? baseDirectory = null, string source = "config")
    {
        ArgumentNullException.ThrowIfNull(config);
        string dir = baseDirectory ?? Directory.GetCurrentDirectory();
        var errors = new List<ConfigError>();
        var (shape, classes) = Check(config.Data.Source, config.Layers, config.Loss.Type, config.Data.Augment.Count, config.Training.Seed, dir, errors);
        if (config.Training.EarlyStopping is { } es && es.Monitor.StartsWith("val_", StringComparison.Ordinal) && config.Data.ValidationFraction == 0)
            errors.Add(new ConfigError("training.early_stopping.monitor", $"{es.Monitor} needs a validation split: expected data.validation_fraction > 0, got 0"));
        if (errors.Count > 0) throw new ConfigException(source, errors);
        return new Experiment(config, dir, shape!, classes);
    }

    // The data's sample shape and class count (from descriptions and headers), then every layer against the shape that reaches it.
    private static (int[]? Shape, int? Classes) Check(Component source, IReadOnlyList<Component> layers, string? loss, int augments, ulong seed, string dir, List<ConfigError> errors)
    {
        var (shape, classes) = DataSources.Describe(source, seed, dir, errors);
        if (shape is null) return (null, classes);
        if (augments > 0 && shape.Length != 3)
            errors.Add(new ConfigError("data.augment", $"augmentation needs (C, H, W) images, got samples of {ShapeUtil.Format(shape)}"));
        var (_, output) = NetworkConfig.Build(layers, shape, "layers", errors);
        if (output is not null && loss is not null) CheckOutput(loss, output, classes, errors);
        return (shape, classes);
    }

    private static void CheckOutput(string loss, int[] output, int? classes, List<ConfigError> errors)
    {
        bool perClass = loss is "cross_entropy" or "multi_margin";
        int[]? want = perClass ? (classes is int c ? [c] : null) : loss is "bce_with_logits" or "hinge" ? [1] : null;
        if (perClass && output.Length != 1)
            errors.Add(new ConfigError("layers", $"loss {loss} needs a (classes) output, got {ShapeUtil.Format(output)}"));
        else if (want is not null && !output.SequenceEqual(want))
            errors.Add(new ConfigError("layers", $"loss {loss} needs an output of {ShapeUtil.Format(want)}{(perClass ? $" (one score per class of the {classes} classes)" : "")}, the last layer gives {ShapeUtil.Format(output)}"));
        if (loss is "bce_with_logits" or "hinge" && classes is int k && k != 2)
            errors.Add(new ConfigError("loss", $"{loss} is binary: expected a data set with 2 classes, got {k}"));
    }

    /// <summary>A new network (new layer objects, so parameters are not shared between calls).</summary>
    public Layer CreateNetwork() => NetworkConfig.Build(Config.Layers, SampleShape).Network;

    /// <summary>The loss.</summary>
    public Loss CreateLoss() => CreateLoss(Config.Loss);

    /// <summary>The loss a <see cref="ConfigKinds.Losses"/> component describes.</summary>
    public static Loss CreateLoss(Component loss) => loss.Type switch
    {
        "cross_entropy" => new CrossEntropyLoss(labelSmoothing: (float)loss.Double("label_smoothing")!.Value),
        "bce_with_logits" => new BceWithLogitsLoss(),
        "mse" => new MseLoss(),
        "hinge" => new HingeLoss(),
        "multi_margin" => new MultiMarginLoss(),
        _ => throw Unknown(nameof(loss), loss.Type, ConfigKinds.Losses),
    };

    // A component built in code (not read through the schema) whose kind the table does not list.
    private static ArgumentException Unknown(string argument, string kind, IReadOnlyList<KindSpec> table)
        => new($"unknown kind '{kind}'; expected one of {string.Join(", ", table.Select(k => k.Name))}", argument);

    /// <summary>Labels for the per-class losses, floats for the others.</summary>
    public BatchTargets Targets => Config.Loss.Type is "cross_entropy" or "multi_margin" ? BatchTargets.Labels : BatchTargets.Floats;

    /// <summary>Reads the data (fetching a missing built-in set into the cache), splits, preprocesses and sets up augmentation.</summary>
    /// <exception cref="DataFormatException">A file is malformed; nothing is returned from half-read data.</exception>
    public ExperimentData LoadData(TextWriter? log = null)
    {
        var d = Config.Data;
        ulong seed = Config.Training.Seed;
        var (train, test) = DataSources.Load(d.Source, seed, BaseDirectory, log);
        Dataset? val = null;
        if (d.ValidationFraction > 0)
            (train, val) = d.Stratified ? DataSplit.Stratified(train, d.ValidationFraction, seed) : DataSources.RandomSplit(train, d.ValidationFraction, seed);
        if (d.Scale != 1.0)
        {
            Dataset Scale(Dataset x)
            {
                var f = x.FeatureArray.ToArray();
                float s = (float)d.Scale;
                for (int i = 0; i < f.Length; i++) f[i] *= s;
                return x.WithFeatures(f, x.Name);
            }
            (train, val, test) = (Scale(train), val is null ? null : Scale(val), test is null ? null : Scale(test));
        }
        Standardizer? std = null;
        if (d.Standardize)
        {
            std = Standardizer.Fit(train);
            (train, val, test) = (std.Apply(train), val is null ? null : std.Apply(val), test is null ? null : std.Apply(test));
        }
        IAugmentation? augment = d.Augment.Count == 0 ? null : Augment.Compose(d.Augment.Select(CreateAugmentation).ToArray());
        return new ExperimentData(train, val, test, Targets, augment, std);
    }

    private static IAugmentation CreateAugmentation(Component a) => a.Type switch
    {
        "horizontal_flip" => Augment.HorizontalFlip(a.Double("p")!.Value),
        "rotation" => Augment.Rotation(a.Double("degrees")!.Value, (float)a.Double("fill")!.Value),
        "random_crop" => Augment.RandomCrop(a.Int("padding")!.Value, (float)a.Double("fill")!.Value),
        "color_jitter" => Augment.ColorJitter(a.Double("brightness")!.Value, a.Double("contrast")!.Value),
        "random_erasing" => Augment.RandomErasing(a.Double("p")!.Value, a.Double("scale_lo")!.Value, a.Double("scale_hi")!.Value,
            a.Double("ratio_lo")!.Value, a.Double("ratio_hi")!.Value, (float)a.Double("fill")!.Value),
        _ => throw Unknown(nameof(a), a.Type, ConfigKinds.Augments),
    };

    /// <summary>The optimizer over <paramref name="model"/>'s parameters with the config's regularisation (weights only).</summary>
    public Optimizer CreateOptimizer(Model model) => CreateOptimizer(Config.Optimizer, Config.Regularization, model);

    /// <summary>The optimizer an <see cref="ConfigKinds.Optimizers"/> component describes, with <paramref name="regularization"/> on the weights.</summary>
    public static Optimizer CreateOptimizer(Component optimizer, RegularizationConfig regularization, Model model)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(regularization);
        ArgumentNullException.ThrowIfNull(model);
        bool adamw = optimizer.Type == "adamw";
        var reg = new Regularization { WeightDecay = regularization.L2 + (adamw ? 0 : regularization.WeightDecay), L1 = regularization.L1, DecoupledWeightDecay = adamw ? regularization.WeightDecay : 0 };
        var options = new OptimizerOptions { Regularization = reg, MaxGradNorm = optimizer.Double("max_grad_norm")!.Value, ClipValue = optimizer.Double("clip_value")!.Value }.ForModel(model);
        var (dev, p, g) = (model.Device, model.Parameters, model.Gradients ?? throw new ArgumentException("the model was built for inference", nameof(model)));
        double lr = optimizer.Double("lr")!.Value;
        double D(string k) => optimizer.Double(k)!.Value;
        return optimizer.Type switch
        {
            "sgd" => new Sgd(dev, p, g, lr, D("momentum"), D("dampening"), nesterov: optimizer.Bool("nesterov"), options: options),
            "adagrad" => new Adagrad(dev, p, g, lr, D("lr_decay"), initialAccumulatorValue: D("initial_accumulator_value"), eps: D("eps"), options: options),
            "rmsprop" => new RmsProp(dev, p, g, lr, D("alpha"), D("eps"), momentum: D("momentum"), centered: optimizer.Bool("centered"), options: options),
            "adam" or "adamw" => new Adam(dev, p, g, lr, D("beta1"), D("beta2"), D("eps"), amsgrad: optimizer.Bool("amsgrad"), options: options),
            _ => throw Unknown(nameof(optimizer), optimizer.Type, ConfigKinds.Optimizers),
        };
    }

    /// <summary>The learning-rate schedule for <paramref name="stepsPerEpoch"/> steps per epoch, or null for a constant rate.</summary>
    public LearningRateSchedule? CreateSchedule(int stepsPerEpoch)
        => CreateSchedule(Config.Schedule, Config.Optimizer.Double("lr")!.Value, Config.Training.Epochs, stepsPerEpoch);

    /// <summary>
    /// The schedule a <see cref="ConfigKinds.Schedules"/> component describes, from base rate <paramref name="lr"/> over
    /// <paramref name="epochs"/> x <paramref name="stepsPerEpoch"/> steps; null for <c>none</c>.
    /// </summary>
    public static LearningRateSchedule? CreateSchedule(Component schedule, double lr, int epochs, int stepsPerEpoch)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        long total = Math.Max(1L, (long)epochs * stepsPerEpoch);
        return schedule.Type switch
        {
            "none" => null,
            "step" => new StepLR(lr, schedule.Int("step_size") ?? Math.Max(1, epochs / 2), schedule.Double("gamma")!.Value) { Unit = ScheduleUnit.Epoch },
            "exponential" => new ExponentialLR(lr, schedule.Double("gamma")!.Value) { Unit = ScheduleUnit.Epoch },
            "cosine" => new CosineAnnealingLR(lr, total, schedule.Double("eta_min")!.Value),
            "cosine-restarts" => new CosineAnnealingWarmRestarts(lr, Math.Max(1L, (long)schedule.Int("t0_epochs")!.Value * stepsPerEpoch), schedule.Int("t_mult")!.Value, schedule.Double("eta_min")!.Value),
            "onecycle" => new OneCycleLR(lr, total + 1, schedule.Double("pct_start")!.Value),
            "cyclic" => new CyclicLR(lr / schedule.Double("base_divisor")!.Value, lr, Math.Max(1L, (long)schedule.Int("step_size_up_epochs")!.Value * stepsPerEpoch)),
            _ => throw Unknown(nameof(schedule), schedule.Type, ConfigKinds.Schedules),
        };
    }

    /// <summary>The metric early stopping and best-checkpoint selection follow.</summary>
    public string Monitor(bool hasValidation)
        => Config.Training.EarlyStopping is { Monitor.Length: > 0 } es ? es.Monitor : hasValidation ? MetricNames.ValLoss : MetricNames.TrainLoss;

    /// <summary>The early-stopping callback (restoring the best weights), or null when the config has none.</summary>
    public EarlyStopping? CreateEarlyStopping(bool hasValidation)
        => Config.Training.EarlyStopping is { } es ? new EarlyStopping(Monitor(hasValidation), es.Patience, es.MinDelta) : null;
}
