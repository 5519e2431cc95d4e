namespace GpuNet.Nn;

/// <summary>Flattens each sample to one dimension: (batch, d1, d2, ...) -> (batch, d1*d2*...). A view: no copy, no launch.</summary>
public sealed class Flatten : Layer
{
    /// <summary>Creates the layer.</summary>
    public Flatten(string? name = null) : base(name) { }
    /// <inheritdoc/>
    public override string Kind => "flatten";
    /// <inheritdoc/>
    public override int[] OutputShape(int[] input) => [(int)ShapeUtil.Count(input)];
    /// <summary><c>Flatten</c> with axis 1: (batch, d1, d2, ...) -> (batch, d1*d2*...).</summary>
    internal override string ExportOnnx(Onnx.OnnxGraph graph, string input) => graph.Node("Flatten", Name!, [input], Onnx.OnnxGraph.Int("axis", 1));
    internal override Node CreateNode(BuildContext ctx, Tensor input, bool needInputGrad) => new FlattenNode(this, ctx, input, needInputGrad);
}

internal sealed class FlattenNode : Node
{
    private readonly bool _needInputGrad;

    public FlattenNode(Flatten layer, BuildContext ctx, Tensor input, bool needInputGrad)
        : base(layer, ctx, input, layer.OutputShape(input.Shape[1..].ToArray()))
    {
        _needInputGrad = ctx.Training && needInputGrad;
        Output = input.Reshape(WithBatch(Batch, OutputShape));
    }

    protected override void OnOutputGrad(Tensor? grad)
        => InputGrad = _needInputGrad && grad is not null ? grad.Reshape(WithBatch(Batch, InputShape)) : null;

    protected override void ForwardCore(bool training) { }
    protected override void BackwardCore() { }
}
