namespace GpuNet.Experiments;

/// <summary>Where the data comes from and how it is split, preprocessed and augmented.</summary>
/// <param name="Source">A <see cref="ConfigKinds.Sources"/> component.</param>
/// <param name="ValidationFraction">Share of the training set held out for validation, in [0, 1); 0: none.</param>
/// <param name="Stratified">Keep class proportions in the split (else a uniform random split).</param>
/// <param name="Standardize">Per-feature (x - mean) / std with statistics of the training split only.</param>
/// <param name="Scale">Features are multiplied by this before standardising.</param>
/// <param name="Augment">Training-batch augmentations (<see cref="ConfigKinds.Augments"/>), in order.</param>
public sealed record DataConfig(Component Source, double ValidationFraction, bool Stratified, bool Standardize, double Scale, IReadOnlyList<Component> Augment);

/// <summary>Early stopping: stop after <paramref name="Patience"/> epochs without an improvement of at least <paramref name="MinDelta"/>, then restore the best weights.</summary>
/// <param name="Patience">Epochs without improvement before stopping (&gt;= 0).</param>
/// <param name="MinDelta">Smallest change that counts as an improvement.</param>
/// <param name="Monitor">The metric (<c>val_loss</c>, <c>val_accuracy</c>, <c>train_loss</c>, ...); empty: val_loss when there is a validation split, else train_loss.</param>
public sealed record EarlyStoppingConfig(string Monitor, int Patience, double MinDelta);

/// <summary>The training loop's settings.</summary>
/// <param name="Epochs">Epochs to train (&gt;= 1).</param>
/// <param name="BatchSize">Samples per step (&gt;= 1).</param>
/// <param name="Seed">Seed of initialisation, splits, shuffles, augmentation and dropout.</param>
/// <param name="Precision">Number format of the run; only <c>fp32</c> exists.</param>
/// <param name="EarlyStopping">Null: train every epoch.</param>
public sealed record TrainingConfig(int Epochs, int BatchSize, ulong Seed, string Precision, EarlyStoppingConfig? EarlyStopping);

/// <summary>
/// Regularisation of the weights (biases and batch-norm parameters are exempt): <paramref name="L1"/> adds l1 sign(w),
/// <paramref name="L2"/> adds l2 w to the gradient, <paramref name="WeightDecay"/> is coupled L2 too, except for adamw,
/// where it is decoupled (w *= 1 - lr wd).
/// </summary>
public sealed record RegularizationConfig(double L1, double L2, double WeightDecay);

/// <summary>
/// A whole training run described as data: the schema of <c>train --config run.json|run.yaml</c> (docs/config.md).
/// <see cref="Experiment"/> validates it against the data's shapes and builds the pieces.
/// </summary>
/// <param name="Name">A label for logs and checkpoints.</param>
/// <param name="Description">Free text.</param>
/// <param name="Data">Data, splits, preprocessing, augmentation.</param>
/// <param name="Regularization">Penalties on the weights.</param>
/// <param name="Training">Epochs, batch size, seed, precision, early stopping.</param>
/// <param name="Layers">The network, <see cref="ConfigKinds.Layers"/> components in order.</param>
/// <param name="Loss">A <see cref="ConfigKinds.Losses"/> component.</param>
/// <param name="Optimizer">A <see cref="ConfigKinds.Optimizers"/> component.</param>
/// <param name="Schedule">A <see cref="ConfigKinds.Schedules"/> component.</param>
public sealed record ExperimentConfig(string Name, string Description, DataConfig Data, IReadOnlyList<Component> Layers, Component Loss,
    Component Optimizer, Component Schedule, RegularizationConfig Regularization, TrainingConfig Training)
{
    internal static readonly string[] Sections = ["name", "description", "data", "layers", "loss", "optimizer", "schedule", "regularization", "training"];

    /// <summary>Settings of the <c>data</c> section besides <c>source</c> and <c>augment</c>.</summary>
    public static IReadOnlyList<ArgSpec> DataSettings { get; } =
    [
        new("validation_fraction", ArgType.Double, 0.0, "share of the training set held out for validation; 0: no validation split", 0, 1, MaxExclusive: true),
        new("stratified", ArgType.Bool, true, "keep class proportions in the validation split (false: uniform random)"),
        new("standardize", ArgType.Bool, false, "per-feature (x - mean) / std, statistics from the training split only"),
        new("scale", ArgType.Double, 1.0, "multiply every feature by this (before standardising)", 0, double.PositiveInfinity, MinExclusive: true),
    ];

    /// <summary>Settings of the <c>training</c> section besides <c>early_stopping</c>.</summary>
    public static IReadOnlyList<ArgSpec> TrainingSettings { get; } =
    [
        new("epochs", ArgType.Int, null, "epochs to train", 1, int.MaxValue),
        new("batch_size", ArgType.Int, null, "samples per step", 1, int.MaxValue),
        new("seed", ArgType.Int, 1L, "seed of initialisation, splits, shuffles, augmentation and dropout", 0, 9007199254740992),
        new("precision", ArgType.String, "fp32", "number format of parameters and arithmetic", Choices: ["fp32"]),
    ];

    /// <summary>Settings of <c>training.early_stopping</c>.</summary>
    public static IReadOnlyList<ArgSpec> EarlyStoppingSettings { get; } =
    [
        new("monitor", ArgType.String, "", "val_loss, val_accuracy, val_f1, val_auc, train_loss, train_accuracy; empty: val_loss with a validation split, else train_loss",
            Choices: ["", "val_loss", "val_accuracy", "val_precision", "val_recall", "val_f1", "val_auc", "train_loss", "train_accuracy"]),
        new("patience", ArgType.Int, null, "epochs without improvement before stopping", 0, int.MaxValue),
        new("min_delta", ArgType.Double, 0.0, "smallest change that counts as an improvement", 0),
    ];

    /// <summary>Settings of the <c>regularization</c> section.</summary>
    public static IReadOnlyList<ArgSpec> RegularizationSettings { get; } =
    [
        new("l1", ArgType.Double, 0.0, "L1 penalty on weights", 0),
        new("l2", ArgType.Double, 0.0, "L2 penalty on weights, added to the gradient", 0),
        new("weight_decay", ArgType.Double, 0.0, "weight decay: decoupled for adamw, coupled L2 otherwise", 0),
    ];

    /// <summary>
    /// Parses config text and checks it against the schema only: no data file is opened and no shape is checked (that is
    /// <see cref="Experiment.Parse"/>). For reading back the config a checkpoint was trained from, e.g. to rebuild its
    /// network on the checkpoint's input shape with <see cref="NetworkConfig.Build(IReadOnlyList{Component}, int[], string)"/>.
    /// </summary>
    /// <exception cref="ConfigException">Syntax and schema errors, all of them.</exception>
    public static ExperimentConfig ParseSchema(string text, ConfigFormat format, string source = "config")
    {
        ArgumentNullException.ThrowIfNull(text);
        var errors = new List<ConfigError>();
        var config = Read(ConfigNode.Parse(text, format, source), errors);
        if (config is null || errors.Count > 0) throw new ConfigException(source, errors);
        return config;
    }

    /// <summary>
    /// Reads the schema from a parsed tree; <paramref name="errors"/> receives every unknown key, wrong type and
    /// out-of-range value (with its key path). Returns null when an error leaves no usable config.
    /// </summary>
    internal static ExperimentConfig? Read(ConfigNode root, List<ConfigError> errors) => Read(root, errors, out _);

    /// <summary>As <see cref="Read(ConfigNode, List{ConfigError})"/>; <paramref name="partial"/> holds the parts that did parse, so their shapes can be checked too.</summary>
    internal static ExperimentConfig? Read(ConfigNode root, List<ConfigError> errors, out (Component? Source, IReadOnlyList<Component>? Layers, Component? Loss, int Augments, ulong Seed) partial)
    {
        partial = default;
        var r = new ConfigReader();
        var top = r.Map(root, "$", Sections);
        if (top is null) { errors.AddRange(r.Errors); return null; }
        foreach (var required in new[] { "data", "layers", "loss", "optimizer", "training" })
            if (top[required] is null) r.Error(required, "missing section", top);

        string Text(string key)
        {
            var v = top[key];
            if (v is null) return "";
            if (v is ConfigScalar { Kind: ScalarKind.String } s) return s.Text;
            r.Error(key, $"expected a string, got {v.Describe()}", v);
            return "";
        }

        IReadOnlyList<Component>? LayerList(ConfigNode node, string path)
        {
            if (node is not ConfigList list) { r.Error(path, $"expected a list of layers, got {node.Describe()}", node); return null; }
            var items = new List<Component>();
            bool ok = true;
            for (int i = 0; i < list.Items.Count; i++)
            {
                var c = r.Component(list.Items[i], $"{path}[{i}]", ConfigKinds.Layers, "layer", LayerList, InitOf);
                if (c is null) ok = false; else items.Add(c);
            }
            return ok ? items : null;
        }
        Component? InitOf(ConfigNode node, string path) => r.Component(node, path, ConfigKinds.Inits, "initialiser");

        var data = r.Map(top["data"], "data", ["source", "augment", .. DataSettings.Select(s => s.Key)]);
        int before = r.Errors.Count;
        var source = data is null ? null : r.Component(data["source"], "data.source", ConfigKinds.Sources, "data source");
        bool sourceOk = r.Errors.Count == before;
        if (data is not null && data["source"] is null) r.Error("data.source", $"missing; expected one of {string.Join(", ", ConfigKinds.Sources.Select(k => k.Name))}", data);
        var augment = new List<Component>();
        if (data?["augment"] is { } aug)
        {
            if (aug is ConfigList al)
                for (int i = 0; i < al.Items.Count; i++)
                    if (r.Component(al.Items[i], $"data.augment[{i}]", ConfigKinds.Augments, "augmentation") is { } a) augment.Add(a);
            if (aug is not ConfigList && aug is not ConfigScalar { Kind: ScalarKind.Null }) r.Error("data.augment", $"expected a list of augmentations, got {aug.Describe()}", aug);
        }
        var dataValues = DataSettings.Select(s => r.Setting(data, "data", s)).ToArray();

        before = r.Errors.Count;
        var layers = top["layers"] is { } ln ? LayerList(ln, "layers") : null;
        bool layersOk = r.Errors.Count == before;
        var loss = r.Component(top["loss"], "loss", ConfigKinds.Losses, "loss");
        var optimizer = r.Component(top["optimizer"], "optimizer", ConfigKinds.Optimizers, "optimizer");
        var schedule = top["schedule"] is null ? Component.Of(ConfigKinds.Find(ConfigKinds.Schedules, "none"))
            : r.Component(top["schedule"], "schedule", ConfigKinds.Schedules, "schedule");

        var reg = r.Map(top["regularization"], "regularization", RegularizationSettings.Select(s => s.Key).ToArray());
        var regValues = RegularizationSettings.Select(s => (double)r.Setting(reg, "regularization", s)!).ToArray();

        var training = r.Map(top["training"], "training", ["early_stopping", .. TrainingSettings.Select(s => s.Key)]);
        var trainValues = TrainingSettings.Select(s => r.Setting(training, "training", s)).ToArray();
        EarlyStoppingConfig? early = null;
        if (training?["early_stopping"] is { } esNode and not ConfigScalar { Kind: ScalarKind.Null })
        {
            var es = r.Map(esNode, "training.early_stopping", EarlyStoppingSettings.Select(s => s.Key).ToArray());
            if (es is not null)
            {
                var v = EarlyStoppingSettings.Select(s => r.Setting(es, "training.early_stopping", s)).ToArray();
                if (v[1] is long patience) early = new EarlyStoppingConfig((string)v[0]!, (int)patience, (double)v[2]!);
            }
        }

        errors.AddRange(r.Errors);
        partial = (sourceOk ? source : null, layersOk ? layers : null, loss, augment.Count, trainValues[2] is long seed ? (ulong)seed : 1);
        if (r.Errors.Count > 0 || source is null || layers is null || loss is null || optimizer is null || schedule is null
            || trainValues[0] is null || trainValues[1] is null)
            return null;
        return new ExperimentConfig(Text("name"), Text("description"),
            new DataConfig(source, (double)dataValues[0]!, (bool)dataValues[1]!, (bool)dataValues[2]!, (double)dataValues[3]!, augment),
            layers, loss, optimizer, schedule, new RegularizationConfig(regValues[0], regValues[1], regValues[2]),
            new TrainingConfig(checked((int)(long)trainValues[0]!), checked((int)(long)trainValues[1]!), (ulong)(long)trainValues[2]!, (string)trainValues[3]!, early));
    }

    /// <summary>The config as a tree (defaults of the sections written out, those of components left out), for <see cref="ConfigWriter"/>.</summary>
    public ConfigNode ToNode()
    {
        static KeyValuePair<string, ConfigNode> E(string k, object v) => new(k, ComponentWriter.Value(v));
        static KeyValuePair<string, ConfigNode> N(string k, ConfigNode v) => new(k, v);
        var top = new List<KeyValuePair<string, ConfigNode>>();
        if (Name.Length > 0) top.Add(E("name", Name));
        if (Description.Length > 0) top.Add(E("description", Description));
        var data = new List<KeyValuePair<string, ConfigNode>>
        {
            N("source", ComponentWriter.Write(Data.Source)),
            E("validation_fraction", Data.ValidationFraction),
            E("stratified", Data.Stratified),
            E("standardize", Data.Standardize),
            E("scale", Data.Scale),
        };
        if (Data.Augment.Count > 0) data.Add(N("augment", new ConfigList(0, Data.Augment.Select(a => ComponentWriter.Write(a, bareWhenEmpty: false)).ToArray())));
        top.Add(N("data", new ConfigMap(0, data)));
        top.Add(E("layers", Layers));
        top.Add(N("loss", ComponentWriter.Write(Loss)));
        top.Add(N("optimizer", ComponentWriter.Write(Optimizer, bareWhenEmpty: false)));
        top.Add(N("schedule", ComponentWriter.Write(Schedule)));
        top.Add(N("regularization", new ConfigMap(0, [E("l1", Regularization.L1), E("l2", Regularization.L2), E("weight_decay", Regularization.WeightDecay)])));
        var training = new List<KeyValuePair<string, ConfigNode>>
        {
            E("epochs", (long)Training.Epochs), E("batch_size", (long)Training.BatchSize), E("seed", Training.Seed), E("precision", Training.Precision),
        };
        if (Training.EarlyStopping is { } es)
        {
            var e = new List<KeyValuePair<string, ConfigNode>>();
            if (es.Monitor.Length > 0) e.Add(E("monitor", es.Monitor));
            e.Add(E("patience", (long)es.Patience));
            e.Add(E("min_delta", es.MinDelta));
            training.Add(N("early_stopping", new ConfigMap(0, e)));
        }
        top.Add(N("training", new ConfigMap(0, training)));
        return new ConfigMap(0, top);
    }

    /// <summary>The config as JSON or YAML text that <see cref="Experiment.Parse"/> reads back to an equal config.</summary>
    public string ToText(ConfigFormat format) => ConfigWriter.Write(ToNode(), format);
}
