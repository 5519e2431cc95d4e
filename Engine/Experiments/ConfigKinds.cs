namespace GpuNet.Experiments;

/// <summary>
/// Every kind a config may name, with its arguments, defaults and ranges: the schema itself (docs/config.md is generated
/// from these tables by <see cref="ConfigDocs"/>).
/// </summary>
public static class ConfigKinds
{
    private const double Inf = double.PositiveInfinity;

    private static ArgSpec Name => new("name", ArgType.String, "", "name for checkpoints (fc1 gives fc1.weight); empty: automatic (linear1, bn2, ...)");
    private static ArgSpec IntArg(string key, object? def, string doc, double min = 1, string? inferred = null) => new(key, ArgType.Int, def, doc, min, int.MaxValue, Inferred: inferred);
    private static ArgSpec Num(string key, object? def, string doc, double min = double.NegativeInfinity, double max = Inf, bool minEx = false, bool maxEx = false)
        => new(key, ArgType.Double, def, doc, min, max, minEx, maxEx);
    private static ArgSpec Flag(string key, bool def, string doc) => new(key, ArgType.Bool, def, doc);
    private static ArgSpec Text(string key, string doc) => new(key, ArgType.String, null, doc);
    private static ArgSpec OptText(string key, string doc) => new(key, ArgType.String, "", doc);
    private static KindSpec K(string name, string doc, params ArgSpec[] args) => new(name, doc, args);

    /// <summary>Layer kinds (<c>layers[i].type</c>); every layer also takes <c>name</c>.</summary>
    public static IReadOnlyList<KindSpec> Layers { get; } =
    [
        K("linear", "fully connected y = x W^T + b over (features) samples",
            IntArg("in_features", null, "input features", inferred: "the incoming (features)"), IntArg("out_features", null, "output features"),
            Flag("bias", true, "whether the layer has a bias"), new("weight_init", ArgType.Init, "", "weight initialiser; empty: kaiming_uniform(a=sqrt 5), PyTorch's default"),
            new("bias_init", ArgType.Init, "", "bias initialiser; empty: U(-1/sqrt(in), 1/sqrt(in))"), Name),
        K("conv2d", "2-D convolution over (C, H, W) samples, square kernel, zero padding",
            IntArg("in_channels", null, "input channels", inferred: "the incoming C"), IntArg("out_channels", null, "output channels"),
            IntArg("kernel_size", null, "kernel size"), IntArg("stride", 1L, "stride"), IntArg("padding", 0L, "zero padding on each side", min: 0),
            IntArg("dilation", 1L, "dilation"), IntArg("groups", 1L, "groups (divides in_channels and out_channels)"), Flag("bias", true, "whether the layer has a bias"),
            new("weight_init", ArgType.Init, "", "weight initialiser; empty: kaiming_uniform(a=sqrt 5)"), Name),
        K("depthwise_conv2d", "depthwise 2-D convolution (one filter per channel)",
            IntArg("channels", null, "channels", inferred: "the incoming C"), IntArg("kernel_size", null, "kernel size"), IntArg("stride", 1L, "stride"),
            IntArg("padding", 0L, "zero padding on each side", min: 0), IntArg("dilation", 1L, "dilation"), Flag("bias", true, "whether the layer has a bias"), Name),
        K("batch_norm1d", "batch normalisation over (features) samples",
            IntArg("features", null, "features", inferred: "the incoming (features)"), Num("momentum", 0.1, "running-statistics momentum", 0, 1), Num("eps", 1e-5, "added to the variance", 0, Inf, true), Name),
        K("batch_norm2d", "batch normalisation per channel over (C, H, W) samples",
            IntArg("channels", null, "channels", inferred: "the incoming C"), Num("momentum", 0.1, "running-statistics momentum", 0, 1), Num("eps", 1e-5, "added to the variance", 0, Inf, true), Name),
        K("identity", "f(x) = x", Name),
        K("relu", "f(x) = max(x, 0)", Name),
        K("leaky_relu", "f(x) = x for x > 0, alpha x otherwise", Num("alpha", 0.01, "negative slope"), Name),
        K("elu", "f(x) = x for x > 0, alpha (exp(x) - 1) otherwise", Num("alpha", 1.0, "scale"), Name),
        K("sigmoid", "f(x) = 1 / (1 + exp(-x))", Name),
        K("tanh", "f(x) = tanh(x)", Name),
        K("gelu", "GELU, tanh form", Name),
        K("softplus", "f(x) = log(1 + exp(x))", Name),
        K("dropout", "inverted dropout in training, identity in evaluation", Num("p", null, "drop probability", 0, 1, maxEx: true), Name),
        K("max_pool2d", "max pooling over (C, H, W) samples",
            IntArg("kernel_size", null, "window size"), IntArg("stride", null, "stride", inferred: "kernel_size"), IntArg("padding", 0L, "padding on each side (at most kernel_size / 2)", min: 0), Name),
        K("avg_pool2d", "average pooling over (C, H, W) samples",
            IntArg("kernel_size", null, "window size"), IntArg("stride", null, "stride", inferred: "kernel_size"), IntArg("padding", 0L, "padding on each side (at most kernel_size / 2)", min: 0),
            Flag("count_include_pad", true, "whether padded zeros count in the average"), Name),
        K("global_avg_pool", "(C, H, W) to (C): the mean of each channel", Name),
        K("flatten", "(C, H, W) to (C*H*W)", Name),
        K("sequential", "the layers in order", new("layers", ArgType.Layers, null, "the layers"), Name),
        K("residual", "y = block(x) + shortcut(x); the shortcut defaults to the identity",
            new("block", ArgType.Layers, null, "the main branch (run as a sequential)"), new("shortcut", ArgType.Layers, Array.Empty<Component>(), "the shortcut branch; empty: identity"), Name),
        K("basic_residual", "ResNet basic block (Blocks.BasicResidual): conv3x3(stride)-BN-ReLU, conv3x3-BN, plus the shortcut (1x1 conv + BN when the shape changes), then ReLU",
            IntArg("in_channels", null, "input channels", inferred: "the incoming C"), IntArg("out_channels", null, "output channels"), IntArg("stride", 1L, "stride of the first convolution"), Name),
        K("depthwise_separable", "MobileNet block (Blocks.DepthwiseSeparable): depthwise 3x3(stride)-BN-ReLU, pointwise 1x1-BN-ReLU",
            IntArg("in_channels", null, "input channels", inferred: "the incoming C"), IntArg("out_channels", null, "output channels"), IntArg("stride", 1L, "stride of the depthwise convolution"), Name),
    ];

    private static readonly string[] FanModes = ["fan_in", "fan_out"];
    private static readonly string[] Nonlinearities = ["linear", "sigmoid", "tanh", "relu", "leaky_relu", "selu"];

    /// <summary>Initialiser kinds (<c>weight_init</c>, <c>bias_init</c>), as <c>torch.nn.init</c>.</summary>
    public static IReadOnlyList<KindSpec> Inits { get; } =
    [
        K("zeros", "all 0"),
        K("ones", "all 1"),
        K("constant", "all equal", Num("value", null, "the value")),
        K("uniform", "U(low, high)", Num("low", 0.0, "lower bound"), Num("high", 1.0, "upper bound (> low)")),
        K("normal", "N(mean, std^2)", Num("mean", 0.0, "mean"), Num("std", 1.0, "standard deviation", 0, Inf, true)),
        K("trunc_normal", "N(mean, std^2) truncated to [a, b]", Num("mean", 0.0, "mean"), Num("std", 1.0, "standard deviation", 0, Inf, true), Num("a", -2.0, "lower cut"), Num("b", 2.0, "upper cut (> a)")),
        K("xavier_uniform", "Glorot uniform", Num("gain", 1.0, "gain", 0, Inf, true)),
        K("xavier_normal", "Glorot normal", Num("gain", 1.0, "gain", 0, Inf, true)),
        K("kaiming_uniform", "He uniform", Num("a", 0.0, "negative slope for leaky_relu", 0), new("mode", ArgType.String, "fan_in", "fan_in or fan_out", Choices: FanModes),
            new("nonlinearity", ArgType.String, "leaky_relu", "the gain's nonlinearity", Choices: Nonlinearities)),
        K("kaiming_normal", "He normal", Num("a", 0.0, "negative slope for leaky_relu", 0), new("mode", ArgType.String, "fan_in", "fan_in or fan_out", Choices: FanModes),
            new("nonlinearity", ArgType.String, "leaky_relu", "the gain's nonlinearity", Choices: Nonlinearities)),
        K("lecun_uniform", "U with std sqrt(1 / fan_in)"),
        K("lecun_normal", "N with std sqrt(1 / fan_in)"),
        K("orthogonal", "a (semi-)orthogonal matrix", Num("gain", 1.0, "gain", 0, Inf, true)),
    ];

    /// <summary>Augmentation kinds (<c>data.augment[i]</c>), applied to training batches of (C, H, W) images.</summary>
    public static IReadOnlyList<KindSpec> Augments { get; } =
    [
        K("horizontal_flip", "mirror left-right", Num("p", 0.5, "probability", 0, 1)),
        K("rotation", "rotate by an angle uniform in [-degrees, degrees], bilinear", Num("degrees", null, "largest angle", 0, 180), Num("fill", 0.0, "value outside the image")),
        K("random_crop", "pad by padding pixels and crop a random window of the original size", IntArg("padding", null, "pixels of padding", min: 0), Num("fill", 0.0, "value of the padding")),
        K("color_jitter", "brightness and contrast factors uniform in [1-b, 1+b] and [1-c, 1+c]",
            Num("brightness", 0.0, "brightness jitter", 0, 1, maxEx: true), Num("contrast", 0.0, "contrast jitter", 0, 1, maxEx: true)),
        K("random_erasing", "erase a random rectangle (torchvision RandomErasing)", Num("p", 0.5, "probability", 0, 1),
            Num("scale_lo", 0.02, "smallest area fraction", 0, 1, minEx: true), Num("scale_hi", 0.33, "largest area fraction", 0, 1, minEx: true),
            Num("ratio_lo", 0.3, "smallest aspect ratio", 0, Inf, minEx: true), Num("ratio_hi", 3.3, "largest aspect ratio", 0, Inf, minEx: true), Num("fill", 0.0, "value of the erased pixels")),
    ];

    /// <summary>Data sources (<c>data.source</c>). Relative paths are relative to the config file.</summary>
    public static IReadOnlyList<KindSpec> Sources { get; } =
    [
        K("digits", "scikit-learn's 8x8 digits, embedded: 1797 samples of (64) in [0, 1], 10 classes"),
        K("binary", "the synthetic binary set: x ~ N(0, I), 2% label noise, 2 classes (seeded by training.seed)",
            IntArg("samples", 1000L, "samples"), IntArg("features", 10L, "features", min: 2)),
        K("mnist", "MNIST: 60000 train + 10000 test images of (1, 28, 28) in [0, 1], 10 classes; fetched into the cache"),
        K("fashion-mnist", "Fashion-MNIST: as mnist, 10 named classes; fetched into the cache"),
        K("idx", "an IDX images file (uint8, n x rows x cols) and its IDX labels file, raw or gzip; samples (1, rows, cols) scaled by /255",
            Text("images", "images file"), Text("labels", "labels file"), IntArg("classes", null, "number of classes (labels in 0..classes-1)"),
            OptText("test_images", "test images file (empty: no test split)"), OptText("test_labels", "test labels file")),
        K("csv", "a CSV file with a header row: every column but the label is a numeric feature; labels are class names (sorted; numerically when all are integers)",
            Text("path", "the file, raw or gzip"), Text("label_column", "the header name of the label column"), OptText("test_path", "a test file with the same header (empty: none)")),
        K("image_folder", "PNG/JPEG/BMP images in path/<class>/<image> (class names sorted give the labels), samples (channels, height, width)",
            Text("path", "the folder of class folders"), OptText("test_path", "a test folder with the same classes (empty: none)"),
            IntArg("height", null, "resize every image to this height (bicubic; with width)", inferred: "the first image's height (then all must share its size)"),
            IntArg("width", null, "resize width (with height)", inferred: "the first image's width"),
            IntArg("channels", 1L, "1: grayscale (BT.709 luminance), 3: RGB"), Flag("scale", true, "true: values in [0, 1] (byte / 255); false: 0..255")),
    ];

    /// <summary>Loss kinds (<c>loss</c>).</summary>
    public static IReadOnlyList<KindSpec> Losses { get; } =
    [
        K("cross_entropy", "softmax cross-entropy over (classes) logits, integer labels", Num("label_smoothing", 0.0, "label smoothing", 0, 1, maxEx: true)),
        K("bce_with_logits", "binary cross-entropy on a (1) logit, labels 0/1 as floats"),
        K("mse", "mean squared error on float targets (labels as floats for a classification set)"),
        K("hinge", "binary hinge loss on a (1) score, labels 0/1"),
        K("multi_margin", "multi-class hinge loss over (classes) scores, integer labels"),
    ];

    private static ArgSpec Lr(double def) => Num("lr", def, "learning rate", 0, Inf, minEx: true);
    private static readonly ArgSpec MaxGradNorm = Num("max_grad_norm", 0.0, "clip the gradient to this global L2 norm; 0: off", 0);
    private static readonly ArgSpec ClipValue = Num("clip_value", 0.0, "clip each gradient element to [-v, v]; 0: off", 0);

    /// <summary>Optimizer kinds (<c>optimizer</c>), with PyTorch's defaults.</summary>
    public static IReadOnlyList<KindSpec> Optimizers { get; } =
    [
        K("sgd", "SGD with optional momentum and Nesterov", Lr(1e-3), Num("momentum", 0.0, "momentum", 0, 1, maxEx: true), Num("dampening", 0.0, "dampening", 0, 1),
            Flag("nesterov", false, "Nesterov momentum (needs momentum > 0, dampening 0)"), MaxGradNorm, ClipValue),
        K("adagrad", "AdaGrad", Lr(1e-2), Num("lr_decay", 0.0, "learning-rate decay", 0), Num("initial_accumulator_value", 0.0, "initial accumulator", 0),
            Num("eps", 1e-10, "epsilon", 0, Inf, true), MaxGradNorm, ClipValue),
        K("rmsprop", "RMSprop", Lr(1e-2), Num("alpha", 0.99, "smoothing constant", 0, 1, maxEx: true), Num("eps", 1e-8, "epsilon", 0, Inf, true),
            Num("momentum", 0.0, "momentum", 0, 1, maxEx: true), Flag("centered", false, "centered variant"), MaxGradNorm, ClipValue),
        K("adam", "Adam (regularization.weight_decay is coupled L2)", Lr(1e-3), Num("beta1", 0.9, "first-moment decay", 0, 1, maxEx: true), Num("beta2", 0.999, "second-moment decay", 0, 1, maxEx: true),
            Num("eps", 1e-8, "epsilon", 0, Inf, true), Flag("amsgrad", false, "AMSGrad variant"), MaxGradNorm, ClipValue),
        K("adamw", "AdamW (regularization.weight_decay is decoupled)", Lr(1e-3), Num("beta1", 0.9, "first-moment decay", 0, 1, maxEx: true), Num("beta2", 0.999, "second-moment decay", 0, 1, maxEx: true),
            Num("eps", 1e-8, "epsilon", 0, Inf, true), Flag("amsgrad", false, "AMSGrad variant"), MaxGradNorm, ClipValue),
    ];

    /// <summary>Learning-rate schedule kinds (<c>schedule</c>); the optimizer's lr is the base (or peak) rate.</summary>
    public static IReadOnlyList<KindSpec> Schedules { get; } =
    [
        K("none", "constant learning rate"),
        K("step", "multiply by gamma every step_size epochs", IntArg("step_size", null, "epochs between decays", inferred: "max(1, epochs / 2)"), Num("gamma", 0.1, "factor", 0, 1, true)),
        K("exponential", "multiply by gamma every epoch", Num("gamma", 0.8, "factor", 0, 1, true)),
        K("cosine", "cosine annealing from lr to eta_min over the whole run, per step", Num("eta_min", 0.0, "final learning rate", 0)),
        K("cosine-restarts", "cosine annealing with warm restarts (SGDR), per step", IntArg("t0_epochs", 1L, "epochs of the first cycle"),
            IntArg("t_mult", 2L, "cycle length factor"), Num("eta_min", 0.0, "lowest learning rate", 0)),
        K("onecycle", "one-cycle: warm up to lr, then anneal (cosine), per step", Num("pct_start", 0.3, "fraction of steps warming up", 0, 1, true, true)),
        K("cyclic", "triangular cyclic learning rate between lr / base_divisor and lr, per step",
            Num("base_divisor", 10.0, "the lowest rate is lr divided by this", 1), IntArg("step_size_up_epochs", 2L, "epochs from the lowest to the highest rate")),
    ];

    /// <summary>The kind called <paramref name="name"/> in <paramref name="kinds"/>.</summary>
    /// <exception cref="ArgumentException">No kind has that name; the message lists those that do.</exception>
    public static KindSpec Find(IReadOnlyList<KindSpec> kinds, string name)
        => kinds.FirstOrDefault(k => k.Name == name) ?? throw new ArgumentException($"unknown kind '{name}'; expected one of {string.Join(", ", kinds.Select(k => k.Name))}", nameof(name));
}
