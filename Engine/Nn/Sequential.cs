namespace GpuNet.Nn;

/// <summary>
/// Layers applied one after another. Each layer is offered its successor to fuse with (a Linear takes an activation
/// its GEMM epilogue supports, a batch norm a ReLU); a fused pair runs as one node.
/// </summary>
public sealed class Sequential : Layer
{
    /// <summary>Creates the container.</summary>
    public Sequential(params Layer[] layers) : this(null, layers) { }

    /// <summary>Creates a named container.</summary>
    public Sequential(string? name, params Layer[] layers) : base(name)
    {
        ArgumentNullException.ThrowIfNull(layers);
        if (layers.Length == 0) throw new ArgumentException("a Sequential needs at least one layer", nameof(layers));
        for (int i = 0; i < layers.Length; i++)
            if (layers[i] is null) throw new ArgumentNullException(nameof(layers), $"layer {i} is null");
        Layers = layers.ToArray();
    }

    /// <summary>The layers in order.</summary>
    public IReadOnlyList<Layer> Layers { get; }
    /// <inheritdoc/>
    public override IReadOnlyList<Layer> Children => Layers;
    /// <inheritdoc/>
    public override string Kind => "sequential";

    /// <inheritdoc/>
    public override int[] OutputShape(int[] input)
    {
        foreach (var l in Layers) input = l.OutputShape(input);
        return input;
    }

    /// <summary>Each layer's graph in turn, each reading the previous one's output.</summary>
    internal override string ExportOnnx(Onnx.OnnxGraph graph, string input)
    {
        foreach (var l in Layers) input = l.ExportOnnx(graph, input);
        return input;
    }

    internal override Node CreateNode(BuildContext ctx, Tensor input, bool needInputGrad) => new SequentialNode(this, ctx, input, needInputGrad);
}

internal sealed class SequentialNode : Node
{
    private readonly List<Node> _children = new();

    public SequentialNode(Sequential layer, BuildContext ctx, Tensor input, bool needInputGrad)
        : base(layer, ctx, input, layer.OutputShape(input.Shape[1..].ToArray()))
    {
        var x = input;
        var layers = layer.Layers;
        // layer i needs its input gradient only when something before it does: the caller, or an earlier layer with
        // trainable parameters (a Flatten or an activation after the model's input passes "no need" on)
        bool need = needInputGrad;
        for (int i = 0; i < layers.Count; i++)
        {
            var node = i + 1 < layers.Count ? layers[i].CreateFusedNode(ctx, x, need, layers[i + 1]) : null;
            if (node is not null) i++;
            else node = layers[i].CreateNode(ctx, x, need);
            need |= node.Layer.HasTrainableParameters || (node.Fused?.HasTrainableParameters ?? false);
            ctx.NodeIndex++;
            _children.Add(node);
            x = node.Output;
        }
        Output = x;
    }

    protected override void OnOutputGrad(Tensor? grad)
    {
        // wire from the last node backwards: each node's input gradient is its predecessor's output gradient
        _children[^1].OutputGrad = grad;
        for (int i = _children.Count - 1; i > 0; i--) _children[i - 1].OutputGrad = _children[i].InputGrad;
        InputGrad = _children[0].InputGrad;
    }

    protected override void ForwardCore(bool training)
    {
        foreach (var c in _children) c.Forward(training);
    }

    protected override void BackwardCore()
    {
        for (int i = _children.Count - 1; i >= 0; i--) _children[i].Backward();
    }

    public override IReadOnlyList<Node> Children => _children;
}
