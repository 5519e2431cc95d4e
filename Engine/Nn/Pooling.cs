namespace GpuNet.Nn;

/// <summary>
/// A square window slid over (C, H, W) samples: kernel size, stride (default: the kernel size) and padding on each
/// side (at most half the kernel).
/// </summary>
public abstract class Pool2d : Layer
{
    private protected Pool2d(int kernelSize, int? stride, int padding, string? name) : base(name)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(kernelSize, 1);
        Kernel = kernelSize;
        Stride = stride ?? kernelSize;
        ArgumentOutOfRangeException.ThrowIfLessThan(Stride, 1, nameof(stride));
        if (padding < 0 || padding > kernelSize / 2) throw new ArgumentOutOfRangeException(nameof(padding), padding, $"padding must be in [0, kernel/2 = {kernelSize / 2}]");
        Padding = padding;
    }

    /// <summary>Window size.</summary>
    public int Kernel { get; }
    /// <summary>Stride.</summary>
    public int Stride { get; }
    /// <summary>Padding on each side (-infinity for max pooling, zeros for average pooling).</summary>
    public int Padding { get; }

    /// <inheritdoc/>
    public override int[] OutputShape(int[] input)
    {
        if (input.Length != 3) throw new LayerShapeException(Name ?? Kind, input, $"{GetType().Name} needs (C, H, W) per sample");
        if (input[1] + 2 * Padding < Kernel || input[2] + 2 * Padding < Kernel)
            throw new LayerShapeException(Name ?? Kind, input, $"a {Kernel}x{Kernel} window (padding {Padding}) does not fit");
        return [input[0], (input[1] + 2 * Padding - Kernel) / Stride + 1, (input[2] + 2 * Padding - Kernel) / Stride + 1];
    }

    /// <inheritdoc/>
    public override double ForwardFlops(int[] input) => ShapeUtil.Count(OutputShape(input)) * (double)Kernel * Kernel;

    /// <summary>The window attributes of ONNX's pooling operators (output size rounded down, as here).</summary>
    private protected global::Onnx.AttributeProto[] WindowAttributes() =>
    [
        Onnx.OnnxGraph.Ints("kernel_shape", Kernel, Kernel),
        Onnx.OnnxGraph.Ints("strides", Stride, Stride),
        Onnx.OnnxGraph.Ints("pads", Padding, Padding, Padding, Padding),
    ];
}

/// <summary>Max pooling over (C, H, W) samples; the argmax of each window is saved for the backward.</summary>
public sealed class MaxPool2d : Pool2d
{
    /// <summary>Creates the layer; <paramref name="stride"/> defaults to the kernel size.</summary>
    public MaxPool2d(int kernelSize, int? stride = null, int padding = 0, string? name = null) : base(kernelSize, stride, padding, name) { }

    /// <inheritdoc/>
    public override string Kind => "maxpool";
    /// <summary><c>MaxPool</c> (padding counts as -infinity, as here).</summary>
    internal override string ExportOnnx(Onnx.OnnxGraph graph, string input) => graph.Node("MaxPool", Name!, [input], WindowAttributes());
    /// <inheritdoc/>
    public override double BackwardFlops(int[] input) => ShapeUtil.Count(input);
    internal override Node CreateNode(BuildContext ctx, Tensor input, bool needInputGrad) => new MaxPoolNode(this, ctx, input, needInputGrad);
}

/// <summary>Average pooling over (C, H, W) samples, with or without the padding counted in the divisor.</summary>
public sealed class AvgPool2d : Pool2d
{
    /// <summary>Creates the layer; <paramref name="stride"/> defaults to the kernel size.</summary>
    public AvgPool2d(int kernelSize, int? stride = null, int padding = 0, bool countIncludePad = true, string? name = null)
        : base(kernelSize, stride, padding, name) => CountIncludePad = countIncludePad;

    /// <summary>Whether padded positions count in the divisor (PyTorch's default: true).</summary>
    public bool CountIncludePad { get; }
    /// <inheritdoc/>
    public override string Kind => "avgpool";
    /// <summary><c>AveragePool</c> with <c>count_include_pad</c> as <see cref="CountIncludePad"/>.</summary>
    internal override string ExportOnnx(Onnx.OnnxGraph graph, string input)
        => graph.Node("AveragePool", Name!, [input], [.. WindowAttributes(), Onnx.OnnxGraph.Int("count_include_pad", CountIncludePad ? 1 : 0)]);
    internal override Node CreateNode(BuildContext ctx, Tensor input, bool needInputGrad) => new AvgPoolNode(this, ctx, input, needInputGrad);
}

/// <summary>Global average pooling: (C, H, W) -> (C).</summary>
public sealed class GlobalAvgPool : Layer
{
    /// <summary>Creates the layer.</summary>
    public GlobalAvgPool(string? name = null) : base(name) { }
    /// <inheritdoc/>
    public override string Kind => "gap";
    /// <summary><c>GlobalAveragePool</c> gives (batch, C, 1, 1); <c>Flatten</c> makes it (batch, C).</summary>
    internal override string ExportOnnx(Onnx.OnnxGraph graph, string input)
        => graph.Node("Flatten", Name!, [graph.Node("GlobalAveragePool", $"{Name}.pool", [input])], Onnx.OnnxGraph.Int("axis", 1));
    /// <inheritdoc/>
    public override int[] OutputShape(int[] input)
    {
        if (input.Length != 3) throw new LayerShapeException(Name ?? Kind, input, "GlobalAvgPool needs (C, H, W) per sample");
        return [input[0]];
    }
    /// <inheritdoc/>
    public override double ForwardFlops(int[] input) => ShapeUtil.Count(input);
    internal override Node CreateNode(BuildContext ctx, Tensor input, bool needInputGrad) => new GlobalAvgPoolNode(this, ctx, input, needInputGrad);
}

internal sealed class MaxPoolNode : Node
{
    private readonly MaxPool2d _l;
    private readonly Tensor _indices;

    public MaxPoolNode(MaxPool2d layer, BuildContext ctx, Tensor input, bool needInputGrad)
        : base(layer, ctx, input, layer.OutputShape(input.Shape[1..].ToArray()))
    {
        _l = layer;
        Output = ctx.Batched(OutputShape);
        _indices = ctx.Batched(OutputShape, DType.Int32);
        if (ctx.Training && needInputGrad) InputGrad = ctx.Batched(InputShape);
    }

    protected override void ForwardCore(bool training)
        => Device.MaxPool2dForward(Input, Output, _indices, _l.Kernel, _l.Kernel, _l.Stride, _l.Stride, _l.Padding, _l.Padding);

    protected override void BackwardCore()
    {
        if (InputGrad is not null) Device.MaxPool2dBackward(OutputGrad!, _indices, InputGrad, _l.Kernel, _l.Kernel, _l.Stride, _l.Stride, _l.Padding, _l.Padding);
    }
}

internal sealed class AvgPoolNode : Node
{
    private readonly AvgPool2d _l;

    public AvgPoolNode(AvgPool2d layer, BuildContext ctx, Tensor input, bool needInputGrad)
        : base(layer, ctx, input, layer.OutputShape(input.Shape[1..].ToArray()))
    {
        _l = layer;
        Output = ctx.Batched(OutputShape);
        if (ctx.Training && needInputGrad) InputGrad = ctx.Batched(InputShape);
    }

    protected override void ForwardCore(bool training)
        => Device.AvgPool2dForward(Input, Output, _l.Kernel, _l.Kernel, _l.Stride, _l.Stride, _l.Padding, _l.Padding, _l.CountIncludePad);

    protected override void BackwardCore()
    {
        if (InputGrad is not null) Device.AvgPool2dBackward(OutputGrad!, InputGrad, _l.Kernel, _l.Kernel, _l.Stride, _l.Stride, _l.Padding, _l.Padding, _l.CountIncludePad);
    }
}

internal sealed class GlobalAvgPoolNode : Node
{
    public GlobalAvgPoolNode(GlobalAvgPool layer, BuildContext ctx, Tensor input, bool needInputGrad)
        : base(layer, ctx, input, layer.OutputShape(input.Shape[1..].ToArray()))
    {
        Output = ctx.Batched(OutputShape);
        if (ctx.Training && needInputGrad) InputGrad = ctx.Batched(InputShape);
    }

    protected override void ForwardCore(bool training) => Device.GlobalAvgPoolForward(Input, Output);

    protected override void BackwardCore()
    {
        if (InputGrad is not null) Device.GlobalAvgPoolBackward(OutputGrad!, InputGrad);
    }
}
