using GpuNet.Kernels;

namespace GpuNet.Nn;

/// <summary>
/// Fully connected layer y = x W^T + b, W: (out, in), b: (out), x: (batch, in). Followed by an activation whose
/// derivative is a function of its output (identity, ReLU, LeakyReLU, ELU, sigmoid, tanh) inside a Sequential, the
/// pair runs as one GEMM with a fused bias + activation epilogue.
/// Defaults as PyTorch: W and b ~ U(-1/sqrt(in), 1/sqrt(in)).
/// </summary>
public sealed class Linear : Layer
{
    /// <summary>Creates the layer.</summary>
    /// <param name="inFeatures">Input features (> 0).</param>
    /// <param name="outFeatures">Output features (> 0).</param>
    /// <param name="bias">Whether the layer has a bias.</param>
    /// <param name="name">Name for checkpoints; null names it automatically.</param>
    /// <param name="weightInit">Weight initialiser; null = PyTorch's default.</param>
    /// <param name="biasInit">Bias initialiser; null = PyTorch's default.</param>
    public Linear(int inFeatures, int outFeatures, bool bias = true, string? name = null,
        Init.IInitializer? weightInit = null, Init.IInitializer? biasInit = null) : base(name)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(inFeatures, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(outFeatures, 1);
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        HasBias = bias;
        var specs = new List<ParameterSpec> { new("weight", [outFeatures, inFeatures], weightInit ?? Init.Defaults.LinearWeight, true) };
        if (bias) specs.Add(new("bias", [outFeatures], biasInit ?? Init.Defaults.LinearBias(inFeatures), false));
        ParameterSpecs = specs;
    }

    /// <summary>Input features.</summary>
    public int InFeatures { get; }
    /// <summary>Output features.</summary>
    public int OutFeatures { get; }
    /// <summary>Whether the layer has a bias.</summary>
    public bool HasBias { get; }
    /// <inheritdoc/>
    public override string Kind => "linear";
    /// <inheritdoc/>
    public override IReadOnlyList<ParameterSpec> ParameterSpecs { get; }

    /// <inheritdoc/>
    public override int[] OutputShape(int[] input)
    {
        if (input.Length != 1 || input[0] != InFeatures)
            throw new LayerShapeException(Name ?? Kind, input, $"Linear needs ({InFeatures}) per sample (add a Flatten before it for images)");
        return [OutFeatures];
    }

    /// <inheritdoc/>
    public override double ForwardFlops(int[] input) => 2.0 * InFeatures * OutFeatures + (HasBias ? OutFeatures : 0);

    /// <inheritdoc/>
    public override double BackwardFlops(int[] input) => 4.0 * InFeatures * OutFeatures + (HasBias ? OutFeatures : 0);

    /// <inheritdoc/>
    public override double InputGradFlops(int[] input) => 2.0 * InFeatures * OutFeatures;

    /// <summary><c>Gemm</c> with <c>transB = 1</c> on the PyTorch-layout (out, in) weight, and the bias as C when present.</summary>
    internal override string ExportOnnx(Onnx.OnnxGraph graph, string input)
        => graph.Node("Gemm", Name!, HasBias ? [input, graph.Parameter(this, 0), graph.Parameter(this, 1)] : [input, graph.Parameter(this, 0)],
            Onnx.OnnxGraph.Int("transB", 1));

    internal override Node CreateNode(BuildContext ctx, Tensor input, bool needInputGrad)
        => new LinearNode(this, ctx, input, needInputGrad, null);

    /// <summary>Fuses an activation whose derivative the GEMM epilogue can recover from the output (<see cref="ActivationLayer.FusableAfterGemm"/>).</summary>
    internal override Node? CreateFusedNode(BuildContext ctx, Tensor input, bool needInputGrad, Layer next)
        => next is ActivationLayer { FusableAfterGemm: true } act ? new LinearNode(this, ctx, input, needInputGrad, act) : null;
}

internal sealed class LinearNode : Node
{
    private readonly Linear _layer;
    private readonly Activation _act;
    private readonly float _alpha;
    private readonly Tensor? _preGrad; // dZ: (batch, out) when an activation is fused

    public LinearNode(Linear layer, BuildContext ctx, Tensor input, bool needInputGrad, ActivationLayer? fused)
        : base(layer, ctx, input, layer.OutputShape(input.Shape[1..].ToArray()), fused)
    {
        _layer = layer;
        _act = fused?.Function ?? Activation.Identity;
        _alpha = fused?.Alpha ?? 0f;
        Output = ctx.Batched(OutputShape);
        if (ctx.Training)
        {
            if (needInputGrad) InputGrad = ctx.Batched(InputShape);
            if (fused is not null) _preGrad = ctx.Batched(OutputShape);
        }
    }

    protected override void ForwardCore(bool training)
    {
        // x: (batch, in), W: (out, in) -> y = act(x W^T + b): (batch, out)
        var p = _layer.Parameters;
        Device.Gemm(Input, p[0], Output, transB: true, bias: _layer.HasBias ? p[1] : null, activation: _act, activationAlpha: _alpha);
    }

    protected override void BackwardCore()
    {
        var g = _layer.Gradients!;
        var p = _layer.Parameters;
        var dy = OutputGrad!;
        if (_preGrad is not null)
        {
            // fused activations have derivatives that are functions of y (and of the sign of x, which y shares)
            Device.ActivationBackward(_act, Output, Output, dy, _preGrad, _alpha);
            dy = _preGrad;
        }
        Device.Gemm(dy, Input, g[0], transA: true, beta: 1f);          // dW += dZ^T x: (out, in)
        if (_layer.HasBias) Device.SumCols(dy, g[1], beta: 1f);        // db += sum over batch of dZ
        if (InputGrad is not null) Device.Gemm(dy, p[0], InputGrad);   // dx = dZ W: (batch, in)
    }
}
