namespace GpuNet.Nn;

/// <summary>
/// Depthwise 2-D convolution (groups = channels, one filter per channel): weight (C, 1, k, k), optional bias (C).
/// Runs on its own kernel, not as a grouped GEMM. Defaults as PyTorch's Conv2d with groups = C (fan_in = k * k).
/// </summary>
public sealed class DepthwiseConv2d : Layer
{
    /// <summary>Creates the layer.</summary>
    public DepthwiseConv2d(int channels, int kernelSize, int stride = 1, int padding = 0, int dilation = 1, bool bias = true, string? name = null) : base(name)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(channels, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(kernelSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(stride, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(padding);
        ArgumentOutOfRangeException.ThrowIfLessThan(dilation, 1);
        Channels = channels;
        KernelSize = kernelSize;
        Stride = stride;
        Padding = padding;
        Dilation = dilation;
        HasBias = bias;
        var specs = new List<ParameterSpec> { new("weight", [channels, 1, kernelSize, kernelSize], Init.Defaults.ConvWeight, true) };
        if (bias) specs.Add(new("bias", [channels], Init.Defaults.ConvBias(kernelSize * kernelSize), false));
        ParameterSpecs = specs;
    }

    /// <summary>Channels in and out.</summary>
    public int Channels { get; }
    /// <summary>Kernel size.</summary>
    public int KernelSize { get; }
    /// <summary>Stride.</summary>
    public int Stride { get; }
    /// <summary>Zero padding on each side.</summary>
    public int Padding { get; }
    /// <summary>Dilation.</summary>
    public int Dilation { get; }
    /// <summary>Whether the layer has a bias.</summary>
    public bool HasBias { get; }
    /// <inheritdoc/>
    public override string Kind => "dwconv";
    /// <inheritdoc/>
    public override IReadOnlyList<ParameterSpec> ParameterSpecs { get; }

    /// <inheritdoc/>
    public override int[] OutputShape(int[] input)
    {
        if (input.Length != 3 || input[0] != Channels)
            throw new LayerShapeException(Name ?? Kind, input, $"DepthwiseConv2d({Channels}) needs ({Channels}, H, W) per sample");
        int p = (input[1] + 2 * Padding - Dilation * (KernelSize - 1) - 1) / Stride + 1;
        int q = (input[2] + 2 * Padding - Dilation * (KernelSize - 1) - 1) / Stride + 1;
        if (input[1] + 2 * Padding < Dilation * (KernelSize - 1) + 1 || input[2] + 2 * Padding < Dilation * (KernelSize - 1) + 1 || p < 1 || q < 1) throw new LayerShapeException(Name ?? Kind, input, $"a {KernelSize}x{KernelSize} kernel leaves no output");
        return [Channels, p, q];
    }

    /// <inheritdoc/>
    public override double ForwardFlops(int[] input)
    {
        var o = OutputShape(input);
        return (double)o[0] * o[1] * o[2] * (2.0 * KernelSize * KernelSize + (HasBias ? 1 : 0));
    }

    /// <inheritdoc/>
    public override double BackwardFlops(int[] input) => 2 * ForwardFlops(input);

    /// <inheritdoc/>
    public override double InputGradFlops(int[] input)
    {
        var o = OutputShape(input);
        return (double)o[0] * o[1] * o[2] * 2.0 * KernelSize * KernelSize;
    }

    /// <summary><c>Conv</c> with <c>group</c> = channels on the (C, 1, k, k) weight.</summary>
    internal override string ExportOnnx(Onnx.OnnxGraph graph, string input)
        => graph.Node("Conv", Name!, HasBias ? [input, graph.Parameter(this, 0), graph.Parameter(this, 1)] : [input, graph.Parameter(this, 0)],
            Onnx.OnnxGraph.Ints("kernel_shape", KernelSize, KernelSize),
            Onnx.OnnxGraph.Ints("strides", Stride, Stride),
            Onnx.OnnxGraph.Ints("pads", Padding, Padding, Padding, Padding),
            Onnx.OnnxGraph.Ints("dilations", Dilation, Dilation),
            Onnx.OnnxGraph.Int("group", Channels));

    internal override Node CreateNode(BuildContext ctx, Tensor input, bool needInputGrad) => new DepthwiseConv2dNode(this, ctx, input, needInputGrad);
}

internal sealed class DepthwiseConv2dNode : Node
{
    private readonly DepthwiseConv2d _l;

    public DepthwiseConv2dNode(DepthwiseConv2d layer, BuildContext ctx, Tensor input, bool needInputGrad)
        : base(layer, ctx, input, layer.OutputShape(input.Shape[1..].ToArray()))
    {
        _l = layer;
        Output = ctx.Batched(OutputShape);
        if (ctx.Training && needInputGrad) InputGrad = ctx.Batched(InputShape);
    }

    protected override void ForwardCore(bool training)
    {
        var p = _l.Parameters;
        Device.DepthwiseConv2dForward(Input, p[0], _l.HasBias ? p[1] : null, Output, _l.Stride, _l.Stride, _l.Padding, _l.Padding, _l.Dilation, _l.Dilation);
    }

    protected override void BackwardCore()
    {
        var p = _l.Parameters;
        var g = _l.Gradients!;
        Device.DepthwiseConv2dBackwardFilter(Input, OutputGrad!, g[0], _l.HasBias ? g[1] : null, _l.Stride, _l.Stride, _l.Padding, _l.Padding, _l.Dilation, _l.Dilation);
        if (InputGrad is not null)
            Device.DepthwiseConv2dBackwardData(OutputGrad!, p[0], InputGrad, _l.Stride, _l.Stride, _l.Padding, _l.Padding, _l.Dilation, _l.Dilation);
    }
}
