namespace GpuNet.Nn;

/// <summary>Thrown at build time when a layer cannot take the shape that reaches it.</summary>
public sealed class LayerShapeException : ArgumentException
{
    /// <summary>Creates the exception.</summary>
    public LayerShapeException(string layer, ReadOnlySpan<int> incoming, string needs)
        : base($"layer '{layer}': incoming per-sample shape {ShapeUtil.Format(incoming)} does not fit: {needs}")
    {
        Layer = layer;
        Incoming = ShapeUtil.Format(incoming);
    }

    /// <summary>The layer's name.</summary>
    public string Layer { get; }
    /// <summary>The per-sample shape that reached it.</summary>
    public string Incoming { get; }
}

/// <summary>A trainable tensor a layer declares; the model places it in the flat parameter buffer.</summary>
/// <param name="Name">Name inside the layer (<c>weight</c>, <c>bias</c>, <c>running_mean</c>).</param>
/// <param name="Shape">Shape, PyTorch layout (Linear weight: (out, in)).</param>
/// <param name="Initializer">How to fill it before training.</param>
/// <param name="Decay">Whether weight decay applies (false for biases and batch-norm parameters, the usual default).</param>
public sealed record ParameterSpec(string Name, int[] Shape, Init.IInitializer Initializer, bool Decay);

/// <summary>
/// A layer of a model: a description with parameters, from which the model builds one <see cref="Node"/> per use.
/// Using the same layer object twice shares its parameters; their gradients add up.
/// </summary>
public abstract class Layer
{
    private Tensor[]? _parameters, _gradients, _buffers;

    /// <summary>Creates a layer; <paramref name="name"/> null lets the model name it (<c>linear1</c>, <c>bn2</c>, ...).</summary>
    protected Layer(string? name) => Name = name;

    /// <summary>The layer's name, used for checkpoint tensor names (<c>fc1.weight</c>). Set at build time if null.</summary>
    public string? Name { get; internal set; }

    /// <summary>Short kind used for automatic names (<c>linear</c>, <c>relu</c>, <c>bn</c>).</summary>
    public abstract string Kind { get; }

    /// <summary>
    /// Layers this one contains, in forward order (none for a leaf). The model finds every layer, and so every
    /// parameter and buffer, by walking these.
    /// </summary>
    public virtual IReadOnlyList<Layer> Children => [];

    /// <summary>Trainable parameters this layer declares (none by default).</summary>
    public virtual IReadOnlyList<ParameterSpec> ParameterSpecs => [];

    /// <summary>Non-trainable state saved with the model (batch-norm running statistics), none by default.</summary>
    public virtual IReadOnlyList<ParameterSpec> BufferSpecs => [];

    /// <summary>True when the layer draws random numbers keyed by the model seed in training (dropout masks).</summary>
    public virtual bool IsStochastic => false;

    /// <summary>Per-sample output shape for a per-sample input shape; throws <see cref="LayerShapeException"/> if it does not fit.</summary>
    public abstract int[] OutputShape(int[] input);

    /// <summary>FLOPs of the forward pass for one sample with the given per-sample input shape (this layer's own work, children excluded).</summary>
    public virtual double ForwardFlops(int[] input) => 0;

    /// <summary>FLOPs of the backward pass for one sample (default: as many as the forward).</summary>
    public virtual double BackwardFlops(int[] input) => ForwardFlops(input);

    /// <summary>
    /// FLOPs per sample of the part of <see cref="BackwardFlops"/> that computes the gradient of the input (0 by
    /// default): a node whose input gradient nobody needs skips that work, and reports this much less.
    /// </summary>
    public virtual double InputGradFlops(int[] input) => 0;

    /// <summary>True when this layer or one of its descendants declares trainable parameters.</summary>
    public bool HasTrainableParameters => ParameterSpecs.Count > 0 || Children.Any(c => c.HasTrainableParameters);

    /// <summary>Parameter views, in <see cref="ParameterSpecs"/> order (valid once the model is built).</summary>
    public IReadOnlyList<Tensor> Parameters => _parameters ?? throw NotBuilt();

    /// <summary>Gradient views, in <see cref="ParameterSpecs"/> order (null when the model was built for inference).</summary>
    public IReadOnlyList<Tensor>? Gradients => _gradients;

    /// <summary>Buffer views into <see cref="Model.Buffers"/>, in <see cref="BufferSpecs"/> order (valid once the model is built).</summary>
    public IReadOnlyList<Tensor> Buffers => _buffers ?? throw NotBuilt();

    internal bool IsBound => _parameters is not null;

    internal void Bind(Tensor[] parameters, Tensor[]? gradients, Tensor[] buffers)
    {
        _parameters = parameters;
        _gradients = gradients;
        _buffers = buffers;
    }

    internal void Unbind() => _parameters = _gradients = _buffers = null;

    /// <summary>Creates the node that runs this layer at one place in the graph.</summary>
    internal abstract Node CreateNode(BuildContext ctx, Tensor input, bool needInputGrad);

    /// <summary>
    /// Inside a <see cref="Sequential"/>, the node that runs this layer and its successor <paramref name="next"/> as one,
    /// or null (the default) when this layer does not fuse with that one.
    /// </summary>
    internal virtual Node? CreateFusedNode(BuildContext ctx, Tensor input, bool needInputGrad, Layer next) => null;

    /// <summary>
    /// Adds this layer's evaluation-mode computation to an ONNX graph, reading the value named <paramref name="input"/>
    /// (batch, ...per-sample input), and returns the name of its output value. Parameters and buffers become
    /// initializers with their checkpoint names. The default throws: a layer without an ONNX form says so.
    /// </summary>
    /// <exception cref="Onnx.OnnxExportException">The layer (or a child) has no ONNX form.</exception>
    internal virtual string ExportOnnx(Onnx.OnnxGraph graph, string input)
        => throw new Onnx.OnnxExportException(this, $"{GetType().Name} does not implement ONNX export");

    private InvalidOperationException NotBuilt() => new($"layer '{Name}' is not part of a built model");

    /// <inheritdoc/>
    public override string ToString() => $"{Name ?? Kind}";
}
