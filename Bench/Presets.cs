using GpuNet.Experiments;
using GpuNet.Kernels;
using GpuNet.Nn;

namespace GpuNet.Bench;

/// <summary>Hyperparameters a preset sets and the command line may override.</summary>
internal sealed record TrainSettings
{
    public required int Epochs { get; init; }
    public required int BatchSize { get; init; }
    public required string Optimizer { get; init; }
    public required double LearningRate { get; init; }
    public string Schedule { get; init; } = "none";
    public double WeightDecay { get; init; }
    public double L1 { get; init; }
    public double L2 { get; init; }
    public float Dropout { get; init; }
    /// <summary>Early-stopping patience; null: no early stopping.</summary>
    public int? Patience { get; init; }
    public ulong Seed { get; init; } = 1;
}

/// <summary>
/// A named, ready-to-run training configuration: the network built with the public library API, the data and the
/// settings as config values. <see cref="ToConfig"/> turns it into the <see cref="ExperimentConfig"/> that
/// <c>train</c> runs and <c>train &lt;preset&gt; --print-config</c> prints.
/// </summary>
internal sealed record Preset(string Name, string Description, string Floor, TrainSettings Defaults,
    DataConfig DataConfig, Func<TrainSettings, Layer> Network, string LossKind)
{
    public static readonly Preset[] All =
    [
        new("binary", "synthetic 1000 x 10 binary set (2% label noise), MLP 10-64-32-1, BCE, Adam, early stopping", "validation accuracy >= 90% (seeds 1-5)",
            new TrainSettings { Epochs = 100, BatchSize = 32, Optimizer = "adam", LearningRate = 1e-3, Patience = 10 },
            Source("binary", 0.2),
            s => new Sequential(new Linear(10, 64, name: "fc1"), new ActivationLayer(Activation.Relu), new Linear(64, 32, name: "fc2"),
                new ActivationLayer(Activation.Relu), new Linear(32, 1, name: "out")),
            "bce_with_logits"),

        new("digits-mlp", "sklearn 8x8 digits (embedded), 80/20 stratified split, MLP 64-128-10", "validation accuracy >= 96%",
            new TrainSettings { Epochs = 40, BatchSize = 32, Optimizer = "adam", LearningRate = 1e-3, Schedule = "cosine" },
            Source("digits", 0.2, standardize: true),
            s => new Sequential(new Linear(64, 128, name: "fc1"), new ActivationLayer(Activation.Relu), new Dropout(s.Dropout, name: "drop1"),
                new Linear(128, 10, name: "out")),
            "cross_entropy"),

        new("mnist-mlp", "MNIST (54k/6k/10k), MLP 784-256-128-10, ReLU, dropout 0.2, Adam with a one-cycle schedule (max lr 3e-3)", "test accuracy >= 98.0%",
            new TrainSettings { Epochs = 10, BatchSize = 128, Optimizer = "adam", LearningRate = 3e-3, Schedule = "onecycle", Dropout = 0.2f },
            Source("mnist", 0.1), MnistMlp, "cross_entropy"),

        new("mnist-mlp-sgd", "the mnist-mlp network with SGD + momentum 0.9, lr 0.1, divided by 10 after half the epochs", "test accuracy >= 97.8%",
            new TrainSettings { Epochs = 10, BatchSize = 128, Optimizer = "momentum", LearningRate = 0.1, Schedule = "step", Dropout = 0.2f },
            Source("mnist", 0.1), MnistMlp, "cross_entropy"),

        new("fashion-mlp", "Fashion-MNIST (54k/6k/10k), MLP 784-512-256-10 with batch norm, Adam, cosine schedule", "test accuracy >= 88.5%",
            new TrainSettings { Epochs = 12, BatchSize = 128, Optimizer = "adam", LearningRate = 1e-3, Schedule = "cosine", Dropout = 0.2f },
            Source("fashion-mnist", 0.1),
            s => new Sequential(new Flatten(), new Linear(784, 512, name: "fc1"), new BatchNorm1d(512, name: "bn1"), new ActivationLayer(Activation.Relu),
                new Dropout(s.Dropout, name: "drop1"), new Linear(512, 256, name: "fc2"), new BatchNorm1d(256, name: "bn2"), new ActivationLayer(Activation.Relu),
                new Dropout(s.Dropout, name: "drop2"), new Linear(256, 10, name: "out")),
            "cross_entropy"),
    ];

    /// <summary>The CNN presets: MNIST and Fashion-MNIST images as (1, 28, 28).</summary>
    public static readonly Preset[] Cnn =
    [
        new("mnist-cnn", "MNIST, two conv blocks (conv 3x3 + BN + ReLU + max-pool: 32, 64 channels) and a 3136-128-10 head, random shifts and rotations, Adam one-cycle", "test accuracy >= 99.2%",
            new TrainSettings { Epochs = 8, BatchSize = 128, Optimizer = "adam", LearningRate = 3e-3, Schedule = "onecycle", Dropout = 0.3f },
            Source("mnist", 0.1, augment: [Aug("random_crop", ("padding", 2)), Aug("rotation", ("degrees", 10.0))]),
            s => new Sequential(
                new Conv2d(1, 32, 3, padding: 1, bias: false, name: "conv1"), new BatchNorm2d(32, name: "bn1"), new ActivationLayer(Activation.Relu), new MaxPool2d(2),
                new Conv2d(32, 64, 3, padding: 1, bias: false, name: "conv2"), new BatchNorm2d(64, name: "bn2"), new ActivationLayer(Activation.Relu), new MaxPool2d(2),
                new Flatten(), new Linear(64 * 7 * 7, 128, name: "fc1"), new ActivationLayer(Activation.Relu), new Dropout(s.Dropout, name: "drop1"),
                new Linear(128, 10, name: "out")),
            "cross_entropy"),

        new("fashion-cnn", "Fashion-MNIST, 2x(conv-BN-ReLU, conv-BN-ReLU, max-pool) with 32 and 64 channels, 3136-256-10 head, flips and shifts, Adam one-cycle", "test accuracy >= 91.5%",
            new TrainSettings { Epochs = 10, BatchSize = 128, Optimizer = "adam", LearningRate = 3e-3, Schedule = "onecycle", Dropout = 0.3f },
            Source("fashion-mnist", 0.1, augment: [Aug("horizontal_flip"), Aug("random_crop", ("padding", 2))]),
            s => new Sequential(
                ConvBnRelu(1, 32, "conv1"), ConvBnRelu(32, 32, "conv2"), new MaxPool2d(2),
                ConvBnRelu(32, 64, "conv3"), ConvBnRelu(64, 64, "conv4"), new MaxPool2d(2),
                new Flatten(), new Linear(64 * 7 * 7, 256, name: "fc1"), new ActivationLayer(Activation.Relu), new Dropout(s.Dropout, name: "drop1"),
                new Linear(256, 10, name: "out")),
            "cross_entropy"),

        new("fashion-resnet", "Fashion-MNIST, small ResNet (stem 24 + basic residual blocks 24, 48/2, 96/2 + global average pool), flips and shifts, Nesterov SGD with cosine warm restarts", "test accuracy >= 93.0%",
            new TrainSettings { Epochs = 15, BatchSize = 128, Optimizer = "nesterov", LearningRate = 0.1, Schedule = "cosine-restarts", WeightDecay = 5e-4 },
            Source("fashion-mnist", 0.1, augment: [Aug("horizontal_flip"), Aug("random_crop", ("padding", 2))]),
            s => new Sequential(
                ConvBnRelu(1, 24, "stem"),
                Blocks.BasicResidual(24, 24, 1, "layer1"), Blocks.BasicResidual(24, 48, 2, "layer2"), Blocks.BasicResidual(48, 96, 2, "layer3"),
                new GlobalAvgPool(), new Linear(96, 10, name: "fc")),
            "cross_entropy"),

        new("fashion-mobilenet", "Fashion-MNIST, MobileNet-style: stem + depthwise-separable blocks 64, 128/2, 128, 256/2 + global average pool, flips and shifts, Adam one-cycle", "test accuracy >= 90.0%",
            new TrainSettings { Epochs = 12, BatchSize = 128, Optimizer = "adam", LearningRate = 3e-3, Schedule = "onecycle" },
            Source("fashion-mnist", 0.1, augment: [Aug("horizontal_flip"), Aug("random_crop", ("padding", 2))]),
            s => new Sequential(
                ConvBnRelu(1, 32, "stem"),
                Blocks.DepthwiseSeparable(32, 64, 1, "ds1"), Blocks.DepthwiseSeparable(64, 128, 2, "ds2"),
                Blocks.DepthwiseSeparable(128, 128, 1, "ds3"), Blocks.DepthwiseSeparable(128, 256, 2, "ds4"),
                new GlobalAvgPool(), new Linear(256, 10, name: "fc")),
            "cross_entropy"),
    ];

    private static Layer ConvBnRelu(int inChannels, int outChannels, string name)
        => new Sequential(name, new Conv2d(inChannels, outChannels, 3, padding: 1, bias: false, name: $"{name}.conv"),
            new BatchNorm2d(outChannels, name: $"{name}.bn"), new ActivationLayer(Activation.Relu));

    public static Preset? Find(string name) => All.Concat(Cnn).FirstOrDefault(p => p.Name == name);

    /// <summary>The preset with <paramref name="s"/> (its defaults with command-line overrides) as a config.</summary>
    public ExperimentConfig ToConfig(TrainSettings s)
        => new(Name, Description, DataConfig, NetworkConfig.FromLayer(Network(s)), LossConfig,
            OptimizerConfig(s.Optimizer, s.LearningRate), ScheduleConfig(s.Schedule), new RegularizationConfig(s.L1, s.L2, s.WeightDecay),
            new TrainingConfig(s.Epochs, s.BatchSize, s.Seed, "fp32", s.Patience is int p ? new EarlyStoppingConfig("", p, 0) : null));

    private Component LossConfig => Component.Of(ConfigKinds.Find(ConfigKinds.Losses, LossKind));

    /// <summary>A new instance of the preset's loss.</summary>
    public Loss Loss() => Experiment.CreateLoss(LossConfig);

    /// <summary>The preset's data with the split seeded by <paramref name="seed"/>.</summary>
    public ExperimentData Data(ulong seed, TextWriter? log) => Experiment.FromConfig(ToConfig(Defaults with { Seed = seed })).LoadData(log);

    /// <summary>The optimizer a command-line name stands for: momentum and nesterov are SGD with momentum 0.9.</summary>
    public static Component OptimizerConfig(string name, double lr)
    {
        var sgd = Component.Of(ConfigKinds.Find(ConfigKinds.Optimizers, "sgd"));
        return (name switch
        {
            "momentum" => sgd.With("momentum", 0.9),
            "nesterov" => sgd.With("momentum", 0.9).With("nesterov", true),
            _ => Component.Of(ConfigKinds.Find(ConfigKinds.Optimizers, name)),
        }).With("lr", lr);
    }

    /// <summary>The schedule a command-line name stands for, with its default arguments.</summary>
    public static Component ScheduleConfig(string name) => Component.Of(ConfigKinds.Find(ConfigKinds.Schedules, name));

    private static DataConfig Source(string kind, double validation, bool standardize = false, Component[]? augment = null)
        => new(Component.Of(ConfigKinds.Find(ConfigKinds.Sources, kind)), validation, true, standardize, 1.0, augment ?? []);

    private static Component Aug(string kind, params (string Key, object Value)[] args)
        => args.Aggregate(Component.Of(ConfigKinds.Find(ConfigKinds.Augments, kind)), (c, a) => c.With(a.Key, a.Value));

    private static Layer MnistMlp(TrainSettings s)
        => new Sequential(new Flatten(), new Linear(784, 256, name: "fc1"), new ActivationLayer(Activation.Relu), new Dropout(s.Dropout, name: "drop1"),
            new Linear(256, 128, name: "fc2"), new ActivationLayer(Activation.Relu), new Dropout(s.Dropout, name: "drop2"), new Linear(128, 10, name: "out"));
}
