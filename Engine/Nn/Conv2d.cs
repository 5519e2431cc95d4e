namespace GpuNet.Nn;

/// <summary>
/// 2-D convolution over (C, H, W) samples, NCHW: weight (out, in/groups, k, k), optional bias (out); any stride,
/// zero padding, dilation and groups. Defaults as PyTorch: W, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
/// fan_in = in/groups * k * k. A 1x1 stride-1 unpadded convolution runs as a plain GEMM on the host.
/// </summary>
public sealed class Conv2d : Layer
{
    /// <summary>Creates the layer.</summary>
    /// <param name="inChannels">Input channels (> 0, divisible by <paramref name="groups"/>).</param>
    /// <param name="outChannels">Output channels (> 0, divisible by <paramref name="groups"/>).</param>
    /// <param name="kernelSize">Square kernel size (> 0).</param>
    /// <param name="stride">Stride (> 0).</param>
    /// <param name="padding">Zero padding on each side (>= 0).</param>
    /// <param name="dilation">Dilation (> 0).</param>
    /// <param name="groups">Groups (> 0).</param>
    /// <param name="bias">Whether the layer has a bias (off before a batch norm, which has its own).</param>
    /// <param name="name">Name for checkpoints; null names it automatically.</param>
    /// <param name="weightInit">Weight initialiser; null = PyTorch's default.</param>
    public Conv2d(int inChannels, int outChannels, int kernelSize, int stride = 1, int padding = 0, int dilation = 1, int groups = 1,
        bool bias = true, string? name = null, Init.IInitializer? weightInit = null) : base(name)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(inChannels, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(outChannels, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(kernelSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(stride, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(padding);
        ArgumentOutOfRangeException.ThrowIfLessThan(dilation, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(groups, 1);
        if (inChannels % groups != 0) throw new ArgumentException($"inChannels {inChannels} is not divisible by groups {groups}", nameof(groups));
        if (outChannels % groups != 0) throw new ArgumentException($"outChannels {outChannels} is not divisible by groups {groups}", nameof(groups));
        InChannels = inChannels;
        OutChannels = outChannels;
        KernelSize = kernelSize;
        Params = new Conv2dParams(stride, stride, padding, padding, dilation, dilation, groups);
        HasBias = bias;
        int fanIn = inChannels / groups * kernelSize * kernelSize;
        var specs = new List<ParameterSpec> { new("weight", [outChannels, inChannels / groups, kernelSize, kernelSize], weightInit ?? Init.Defaults.ConvWeight, true) };
        if (bias) specs.Add(new("bias", [outChannels], Init.Defaults.ConvBias(fanIn), false));
        ParameterSpecs = specs;
    }

    /// <summary>Input channels.</summary>
    public int InChannels { get; }
    /// <summary>Output channels.</summary>
    public int OutChannels { get; }
    /// <summary>Kernel size.</summary>
    public int KernelSize { get; }
    /// <summary>Stride, padding, dilation, groups.</summary>
    public Conv2dParams Params { get; }
    /// <summary>Whether the layer has a bias.</summary>
    public bool HasBias { get; }
    /// <inheritdoc/>
    public override string Kind => "conv";
    /// <inheritdoc/>
    public override IReadOnlyList<ParameterSpec> ParameterSpecs { get; }

    /// <inheritdoc/>
    public override int[] OutputShape(int[] input)
    {
        if (input.Length != 3 || input[0] != InChannels)
            throw new LayerShapeException(Name ?? Kind, input, $"Conv2d({InChannels} -> {OutChannels}) needs ({InChannels}, H, W) per sample");
        int p = Conv2dParams.OutputSize(input[1], KernelSize, Params.StrideH, Params.PadH, Params.DilationH);
        int q = Conv2dParams.OutputSize(input[2], KernelSize, Params.StrideW, Params.PadW, Params.DilationW);
        if (p < 1 || q < 1)
            throw new LayerShapeException(Name ?? Kind, input, $"a {KernelSize}x{KernelSize} kernel (stride {Params.StrideH}, padding {Params.PadH}, dilation {Params.DilationH}) leaves no output");
        return [OutChannels, p, q];
    }

    /// <inheritdoc/>
    public override double ForwardFlops(int[] input)
    {
        var o = OutputShape(input);
        double outputs = (double)o[0] * o[1] * o[2];
        return outputs * (2.0 * InChannels / Params.Groups * KernelSize * KernelSize + (HasBias ? 1 : 0));
    }

    /// <inheritdoc/>
    public override double BackwardFlops(int[] input) => 2 * ForwardFlops(input);

    /// <inheritdoc/>
    public override double InputGradFlops(int[] input)
    {
        var o = OutputShape(input);
        return (double)o[0] * o[1] * o[2] * 2.0 * InChannels / Params.Groups * KernelSize * KernelSize;
    }

    /// <summary><c>Conv</c> with the kernel, strides, symmetric pads, dilations and groups, and the bias when present.</summary>
    internal override string ExportOnnx(Onnx.OnnxGraph graph, string input)
        => graph.Node("Conv", Name!, HasBias ? [input, graph.Parameter(this, 0), graph.Parameter(this, 1)] : [input, graph.Parameter(this, 0)],
            Onnx.OnnxGraph.Ints("kernel_shape", KernelSize, KernelSize),
            Onnx.OnnxGraph.Ints("strides", Params.StrideH, Params.StrideW),
            Onnx.OnnxGraph.Ints("pads", Params.PadH, Params.PadW, Params.PadH, Params.PadW),
            Onnx.OnnxGraph.Ints("dilations", Params.DilationH, Params.DilationW),
            Onnx.OnnxGraph.Int("group", Params.Groups));

    internal override Node CreateNode(BuildContext ctx, Tensor input, bool needInputGrad) => new Conv2dNode(this, ctx, input, needInputGrad);
}

internal sealed class Conv2dNode : Node
{
    private readonly Conv2d _layer;

    public Conv2dNode(Conv2d layer, BuildContext ctx, Tensor input, bool needInputGrad)
        : base(layer, ctx, input, layer.OutputShape(input.Shape[1..].ToArray()))
    {
        _layer = layer;
        Output = ctx.Batched(OutputShape);
        if (ctx.Training && needInputGrad) InputGrad = ctx.Batched(InputShape);
    }

    protected override void ForwardCore(bool training)
    {
        // x: (N, C, H, W), w: (K, C/g, R, S) -> y: (N, K, P, Q)
        var p = _layer.Parameters;
        Device.Conv2dForward(Input, p[0], _layer.HasBias ? p[1] : null, Output, _layer.Params);
    }

    protected override void BackwardCore()
    {
        var p = _layer.Parameters;
        var g = _layer.Gradients!;
        Device.Conv2dBackwardFilter(Input, OutputGrad!, g[0], _layer.HasBias ? g[1] : null, _layer.Params);   // dW += , db +=
        if (InputGrad is not null) Device.Conv2dBackwardData(OutputGrad!, p[0], InputGrad, _layer.Params);      // dx =
    }
}
