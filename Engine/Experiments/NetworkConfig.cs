using System.Globalization;
using GpuNet.Init;
using GpuNet.Kernels;
using GpuNet.Nn;

namespace GpuNet.Experiments;

/// <summary>
/// Builds layers from config components, inferring the per-sample shape layer by layer so that an impossible shape is
/// an error naming the key path, and turns built layers back into components (<see cref="FromLayer"/>). A list of one
/// layer is that layer; a longer list is an unnamed <see cref="Sequential"/>.
/// </summary>
public static class NetworkConfig
{
    /// <summary>
    /// Builds <paramref name="layers"/> for samples of <paramref name="sampleShape"/>; returns the network and its
    /// per-sample output shape, or throws with every problem found.
    /// </summary>
    /// <exception cref="ConfigException">A layer does not fit the shape that reaches it, or an argument is out of range.</exception>
    public static (Layer Network, int[] OutputShape) Build(IReadOnlyList<Component> layers, int[] sampleShape, string source = "layers")
    {
        var errors = new List<ConfigError>();
        var (net, shape) = Build(layers, sampleShape, "layers", errors);
        if (errors.Count > 0 || net is null || shape is null) throw new ConfigException(source, errors);
        return (net, shape);
    }

    internal static (Layer? Layer, int[]? Shape) Build(IReadOnlyList<Component> layers, int[] input, string path, List<ConfigError> errors)
    {
        if (layers.Count == 0) { errors.Add(new ConfigError(path, "expected at least one layer, got an empty list")); return (null, null); }
        var built = new List<Layer>();
        int[]? shape = input;
        for (int i = 0; i < layers.Count; i++)
        {
            var (l, next) = BuildOne(layers[i], shape, $"{path}[{i}]", errors);
            if (l is null || next is null) return (null, null);
            built.Add(l);
            shape = next;
        }
        return (built.Count == 1 ? built[0] : new Sequential(null, built.ToArray()), shape);
    }

    private static (Layer?, int[]?) BuildOne(Component c, int[] input, string path, List<ConfigError> errors)
    {
        string? name = c.String("name") is { Length: > 0 } n ? n : null;
        int errorsBefore = errors.Count;
        string shape = ShapeUtil.Format(input);
        int Infer(string key, int rank, int dim, string what)
        {
            if (input.Length != rank) return -1;
            int actual = input[dim];
            if (c.Args.ContainsKey(key) && c.Int(key) != actual)
                errors.Add(new ConfigError($"{path}.{key}", $"expected {actual} ({what} of the incoming {shape}), got {c.Int(key)}"));
            return actual;
        }
        bool NeedRank(int rank, string needs)
        {
            if (input.Length == rank) return true;
            errors.Add(new ConfigError(path, $"{c.Type} needs {needs} samples, got {shape}{(rank == 1 ? "; add a flatten (or global_avg_pool) before it" : "")}"));
            return false;
        }
        Layer? layer;
        try
        {
            switch (c.Type)
            {
                case "linear":
                    if (!NeedRank(1, "(features)")) return (null, null);
                    layer = new Linear(Infer("in_features", 1, 0, "the size"), c.Int("out_features")!.Value, c.Bool("bias"), name,
                        Init(c, "weight_init", path, errors), Init(c, "bias_init", path, errors));
                    break;
                case "conv2d":
                    if (!NeedRank(3, "(C, H, W)")) return (null, null);
                    layer = new Conv2d(Infer("in_channels", 3, 0, "the channels"), c.Int("out_channels")!.Value, c.Int("kernel_size")!.Value, c.Int("stride")!.Value,
                        c.Int("padding")!.Value, c.Int("dilation")!.Value, c.Int("groups")!.Value, c.Bool("bias"), name, Init(c, "weight_init", path, errors));
                    break;
                case "depthwise_conv2d":
                    if (!NeedRank(3, "(C, H, W)")) return (null, null);
                    layer = new DepthwiseConv2d(Infer("channels", 3, 0, "the channels"), c.Int("kernel_size")!.Value, c.Int("stride")!.Value, c.Int("padding")!.Value,
                        c.Int("dilation")!.Value, c.Bool("bias"), name);
                    break;
                case "batch_norm1d":
                    if (!NeedRank(1, "(features)")) return (null, null);
                    layer = new BatchNorm1d(Infer("features", 1, 0, "the size"), (float)c.Double("momentum")!.Value, (float)c.Double("eps")!.Value, name);
                    break;
                case "batch_norm2d":
                    if (!NeedRank(3, "(C, H, W)")) return (null, null);
                    layer = new BatchNorm2d(Infer("channels", 3, 0, "the channels"), (float)c.Double("momentum")!.Value, (float)c.Double("eps")!.Value, name);
                    break;
                case "dropout":
                    layer = new Dropout((float)c.Double("p")!.Value, name);
                    break;
                case "max_pool2d":
                    layer = new MaxPool2d(c.Int("kernel_size")!.Value, c.Int("stride"), c.Int("padding")!.Value, name);
                    break;
                case "avg_pool2d":
                    layer = new AvgPool2d(c.Int("kernel_size")!.Value, c.Int("stride"), c.Int("padding")!.Value, c.Bool("count_include_pad"), name);
                    break;
                case "global_avg_pool":
                    layer = new GlobalAvgPool(name);
                    break;
                case "flatten":
                    layer = new Flatten(name);
                    break;
                case "sequential":
                {
                    var (inner, _) = Build(c.Layers("layers")!, input, $"{path}.layers", errors);
                    if (inner is null) return (null, null);
                    layer = inner is Sequential { Name: null } s ? new Sequential(name, [.. s.Children]) : new Sequential(name, inner);
                    break;
                }
                case "residual":
                {
                    var (block, _) = Build(c.Layers("block")!, input, $"{path}.block", errors);
                    var shortcutList = c.Layers("shortcut")!;
                    Layer? shortcut = null;
                    if (shortcutList.Count > 0) (shortcut, _) = Build(shortcutList, input, $"{path}.shortcut", errors);
                    if (block is null || (shortcutList.Count > 0 && shortcut is null)) return (null, null);
                    layer = new Residual(block, shortcut, name);
                    break;
                }
                case "basic_residual":
                    if (!NeedRank(3, "(C, H, W)")) return (null, null);
                    layer = Blocks.BasicResidual(Infer("in_channels", 3, 0, "the channels"), c.Int("out_channels")!.Value, c.Int("stride")!.Value, name);
                    break;
                case "depthwise_separable":
                    if (!NeedRank(3, "(C, H, W)")) return (null, null);
                    layer = Blocks.DepthwiseSeparable(Infer("in_channels", 3, 0, "the channels"), c.Int("out_channels")!.Value, c.Int("stride")!.Value, name);
                    break;
                default:
                    layer = new ActivationLayer(ActivationOf(c.Type), c.Type is "leaky_relu" or "elu" ? (float)c.Double("alpha")!.Value : null, name);
                    break;
            }
        }
        catch (ArgumentException e) when (e is not LayerShapeException)
        {
            errors.Add(new ConfigError(path, $"{c.Type}: {e.Message.Split(" (Parameter")[0]}"));
            return (null, null);
        }
        if (errors.Count > errorsBefore) return (null, null);
        try { return (layer, layer.OutputShape(input)); }
        catch (LayerShapeException e)
        {
            errors.Add(new ConfigError(path, $"{c.Type}: {e.Message}"));
            return (null, null);
        }
    }

    private static Activation ActivationOf(string type) => type switch
    {
        "identity" => Activation.Identity,
        "relu" => Activation.Relu,
        "leaky_relu" => Activation.LeakyRelu,
        "elu" => Activation.Elu,
        "sigmoid" => Activation.Sigmoid,
        "tanh" => Activation.Tanh,
        "gelu" => Activation.Gelu,
        "softplus" => Activation.Softplus,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "not an activation kind"),
    };

    private static string KindOf(Activation a) => a switch
    {
        Activation.Identity => "identity",
        Activation.Relu => "relu",
        Activation.LeakyRelu => "leaky_relu",
        Activation.Elu => "elu",
        Activation.Sigmoid => "sigmoid",
        Activation.Tanh => "tanh",
        Activation.Gelu => "gelu",
        Activation.Softplus => "softplus",
        _ => throw new ArgumentOutOfRangeException(nameof(a), a, "activation without a config kind"),
    };

    private static IInitializer? Init(Component c, string key, string path, List<ConfigError> errors)
    {
        if (c.Init(key) is not { } init) return null;
        try { return CreateInit(init); }
        catch (ArgumentException e)
        {
            errors.Add(new ConfigError($"{path}.{key}", $"{init.Type}: {e.Message.Split(" (Parameter")[0]}"));
            return null;
        }
    }

    /// <summary>The initialiser a component describes.</summary>
    public static IInitializer CreateInit(Component c)
    {
        ArgumentNullException.ThrowIfNull(c);
        double D(string k) => c.Double(k)!.Value;
        FanMode Mode() => c.String("mode") == "fan_out" ? FanMode.FanOut : FanMode.FanIn;
        Nonlinearity Nl() => c.String("nonlinearity") switch
        {
            "linear" => Nonlinearity.Linear,
            "sigmoid" => Nonlinearity.Sigmoid,
            "tanh" => Nonlinearity.Tanh,
            "relu" => Nonlinearity.Relu,
            "selu" => Nonlinearity.Selu,
            _ => Nonlinearity.LeakyRelu,
        };
        return c.Type switch
        {
            "zeros" => new Zeros(),
            "ones" => new Constant(1.0),
            "constant" => new Constant(D("value")),
            "uniform" => new Uniform(D("low"), D("high")),
            "normal" => new Normal(D("mean"), D("std")),
            "trunc_normal" => new TruncatedNormal(D("mean"), D("std"), D("a"), D("b")),
            "xavier_uniform" => Xavier.Uniform(D("gain")),
            "xavier_normal" => Xavier.Normal(D("gain")),
            "kaiming_uniform" => Kaiming.Uniform(D("a"), Mode(), Nl()),
            "kaiming_normal" => Kaiming.Normal(D("a"), Mode(), Nl()),
            "lecun_uniform" => LeCun.Uniform(),
            "lecun_normal" => LeCun.Normal(),
            "orthogonal" => new Orthogonal(D("gain")),
            _ => throw new ArgumentException($"unknown initialiser '{c.Type}'", nameof(c)),
        };
    }

    /// <summary>
    /// The components that rebuild <paramref name="network"/> (the inverse of <see cref="Build(IReadOnlyList{Component}, int[], string)"/>):
    /// inferred sizes (in_features, in_channels, features) and default arguments are left out, so a printed config stays
    /// valid when a width is changed. An unnamed <see cref="Sequential"/> becomes its list of layers.
    /// </summary>
    /// <exception cref="ArgumentException">A layer or initialiser type the config cannot describe.</exception>
    public static IReadOnlyList<Component> FromLayer(Layer network)
    {
        ArgumentNullException.ThrowIfNull(network);
        return network is Sequential { Name: null } s ? s.Children.Select(One).ToArray() : [One(network)];
    }

    private static Component One(Layer l)
    {
        var c = Component.Of(ConfigKinds.Find(ConfigKinds.Layers, l switch
        {
            Linear => "linear", Conv2d => "conv2d", DepthwiseConv2d => "depthwise_conv2d", BatchNorm1d => "batch_norm1d",
            BatchNorm2d => "batch_norm2d", Dropout => "dropout", MaxPool2d => "max_pool2d", AvgPool2d => "avg_pool2d",
            GlobalAvgPool => "global_avg_pool", Flatten => "flatten", Sequential => "sequential", Residual => "residual",
            ActivationLayer a => KindOf(a.Function),
            _ => throw new ArgumentException($"layer '{l.Name ?? l.Kind}' of type {l.GetType().Name} has no config kind", nameof(l)),
        }));
        Component Set(string key, object value, object? defaultValue) => Equals(value, defaultValue) ? c : c = c.With(key, value);
        switch (l)
        {
            case Linear lin:
                c = c.With("out_features", lin.OutFeatures);
                Set("bias", lin.HasBias, true);
                InitArg(ref c, "weight_init", lin.ParameterSpecs[0].Initializer, Defaults.LinearWeight);
                if (lin.HasBias) InitArg(ref c, "bias_init", lin.ParameterSpecs[1].Initializer, Defaults.LinearBias(lin.InFeatures));
                break;
            case Conv2d conv:
                c = c.With("out_channels", conv.OutChannels).With("kernel_size", conv.KernelSize);
                Set("stride", (long)conv.Params.StrideH, 1L);
                Set("padding", (long)conv.Params.PadH, 0L);
                Set("dilation", (long)conv.Params.DilationH, 1L);
                Set("groups", (long)conv.Params.Groups, 1L);
                Set("bias", conv.HasBias, true);
                InitArg(ref c, "weight_init", conv.ParameterSpecs[0].Initializer, Defaults.ConvWeight);
                break;
            case DepthwiseConv2d dw:
                c = c.With("kernel_size", dw.KernelSize);
                Set("stride", (long)dw.Stride, 1L);
                Set("padding", (long)dw.Padding, 0L);
                Set("dilation", (long)dw.Dilation, 1L);
                Set("bias", dw.HasBias, true);
                break;
            case BatchNorm bn:
                Set("momentum", Exact(bn.Momentum), 0.1);
                Set("eps", Exact(bn.Eps), 1e-5);
                break;
            case Dropout d:
                c = c.With("p", Exact(d.P));
                break;
            case Pool2d p:
                c = c.With("kernel_size", p.Kernel);
                Set("stride", (long)p.Stride, (long)p.Kernel);
                Set("padding", (long)p.Padding, 0L);
                if (p is AvgPool2d avg) Set("count_include_pad", avg.CountIncludePad, true);
                break;
            case Sequential s:
                c = c.With("layers", s.Children.Select(One).ToArray());
                break;
            case Residual r:
                c = c.With("block", FromLayer(r.Block));
                if (r.Shortcut is not null) c = c.With("shortcut", FromLayer(r.Shortcut));
                break;
            case ActivationLayer a when a.Function is Activation.LeakyRelu or Activation.Elu:
                Set("alpha", Exact(a.Alpha), a.Function == Activation.LeakyRelu ? 0.01 : 1.0);
                break;
        }
        if (l.Name is { } name) c = c.With("name", name);
        return c;
    }

    // The double whose shortest text is the float's (0.2f -> 0.2, not 0.200000003), so (float)back == the float.
    private static double Exact(float f) => double.Parse(f.ToString("R", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);

    private static void InitArg(ref Component c, string key, IInitializer init, IInitializer layerDefault)
    {
        if (init.Name == layerDefault.Name) return;
        c = c.With(key, FromInit(init));
    }

    private static Component FromInit(IInitializer init)
    {
        var kind = (string name) => Component.Of(ConfigKinds.Find(ConfigKinds.Inits, name));
        return init switch
        {
            Zeros => kind("zeros"),
            Constant { Value: 1.0 } => kind("ones"),
            Constant k => kind("constant").With("value", k.Value),
            Uniform u => kind("uniform").With("low", u.Low).With("high", u.High),
            Normal n => kind("normal").With("mean", n.Mean).With("std", n.Std),
            TruncatedNormal t => kind("trunc_normal").With("mean", t.Mean).With("std", t.Std).With("a", t.A).With("b", t.B),
            Xavier x => kind(init.Name.StartsWith("xavier_uniform", StringComparison.Ordinal) ? "xavier_uniform" : "xavier_normal").With("gain", x.Gain),
            Kaiming k => kind(init.Name.StartsWith("kaiming_uniform", StringComparison.Ordinal) ? "kaiming_uniform" : "kaiming_normal").With("a", k.A)
                .With("mode", k.Mode == FanMode.FanOut ? "fan_out" : "fan_in").With("nonlinearity", Spell(k.Nonlinearity)),
            LeCun => kind(init.Name == "lecun_uniform" ? "lecun_uniform" : "lecun_normal"),
            Orthogonal o => kind("orthogonal").With("gain", o.Gain),
            _ => throw new ArgumentException($"initialiser '{init.Name}' has no config kind", nameof(init)),
        };
    }

    private static string Spell(Nonlinearity n) => n switch
    {
        Nonlinearity.Linear => "linear",
        Nonlinearity.Sigmoid => "sigmoid",
        Nonlinearity.Tanh => "tanh",
        Nonlinearity.Relu => "relu",
        Nonlinearity.Selu => "selu",
        _ => "leaky_relu",
    };
}
