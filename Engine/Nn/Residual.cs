namespace GpuNet.Nn;

/// <summary>
/// A residual block y = block(x) + shortcut(x), with the identity as the default shortcut (give a projection, e.g. a
/// Linear or a 1x1 convolution, when the block changes the shape). The graph becomes a DAG: x feeds two branches and
/// its gradient is the sum of both.
/// </summary>
public sealed class Residual : Layer
{
    /// <summary>Creates the block.</summary>
    public Residual(Layer block, Layer? shortcut = null, string? name = null) : base(name)
    {
        Block = block ?? throw new ArgumentNullException(nameof(block));
        Shortcut = shortcut;
    }

    /// <summary>The main branch.</summary>
    public Layer Block { get; }
    /// <summary>The shortcut branch; null for the identity.</summary>
    public Layer? Shortcut { get; }
    /// <inheritdoc/>
    public override string Kind => "residual";
    /// <inheritdoc/>
    public override IReadOnlyList<Layer> Children => Shortcut is null ? [Block] : [Block, Shortcut];

    /// <inheritdoc/>
    public override int[] OutputShape(int[] input)
    {
        var main = Block.OutputShape(input);
        var skip = Shortcut?.OutputShape(input) ?? input;
        if (!main.SequenceEqual(skip))
            throw new LayerShapeException(Name ?? Kind, input,
                $"the block gives {ShapeUtil.Format(main)} but the {(Shortcut is null ? "identity shortcut" : "shortcut")} gives {ShapeUtil.Format(skip)}; they must match (add a projection shortcut)");
        return main;
    }

    /// <inheritdoc/>
    public override double ForwardFlops(int[] input) => ShapeUtil.Count(OutputShape(input));

    /// <summary>Both branches from the same input, then <c>Add</c>.</summary>
    internal override string ExportOnnx(Onnx.OnnxGraph graph, string input)
    {
        string main = Block.ExportOnnx(graph, input);
        string skip = Shortcut?.ExportOnnx(graph, input) ?? input;
        return graph.Node("Add", Name!, [main, skip]);
    }

    internal override Node CreateNode(BuildContext ctx, Tensor input, bool needInputGrad) => new ResidualNode(this, ctx, input, needInputGrad);
}

internal sealed class ResidualNode : Node
{
    private readonly Node _block;
    private readonly Node? _shortcut;
    private readonly Tensor? _inputGradBuffer;

    public ResidualNode(Residual layer, BuildContext ctx, Tensor input, bool needInputGrad)
        : base(layer, ctx, input, layer.OutputShape(input.Shape[1..].ToArray()))
    {
        _block = layer.Block.CreateNode(ctx, input, needInputGrad);
        ctx.NodeIndex++;
        if (layer.Shortcut is not null)
        {
            _shortcut = layer.Shortcut.CreateNode(ctx, input, needInputGrad);
            ctx.NodeIndex++;
        }
        Output = ctx.Batched(OutputShape);
        if (ctx.Training && needInputGrad) _inputGradBuffer = ctx.Batched(InputShape);
    }

    protected override void OnOutputGrad(Tensor? grad)
    {
        // both branches read the same output gradient; the input gradient is the sum of the branches' (Backward)
        _block.OutputGrad = grad;
        if (_shortcut is not null) _shortcut.OutputGrad = grad;
        InputGrad = _inputGradBuffer;
    }

    protected override void ForwardCore(bool training)
    {
        _block.Forward(training);
        _shortcut?.Forward(training);
        Device.Add(_block.Output, _shortcut?.Output ?? Input, Output);   // y = block(x) + shortcut(x)
    }

    protected override void BackwardCore()
    {
        _shortcut?.Backward();
        _block.Backward();
        if (_inputGradBuffer is not null)
            Device.Add(_block.InputGrad!, _shortcut?.InputGrad ?? OutputGrad!, _inputGradBuffer);   // dx = dblock + dshortcut
    }

    public override IReadOnlyList<Node> Children => _shortcut is null ? [_block] : [_block, _shortcut];
}
