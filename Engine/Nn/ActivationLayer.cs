using GpuNet.Kernels;

namespace GpuNet.Nn;

/// <summary>A pointwise activation layer (any <see cref="Activation"/>).</summary>
public sealed class ActivationLayer : Layer
{
    /// <summary>Creates the layer; <paramref name="alpha"/> null takes the activation's default (0.01 LeakyReLU, 1 ELU).</summary>
    public ActivationLayer(Activation function, float? alpha = null, string? name = null) : base(name)
    {
        if (!Enum.IsDefined(function)) throw new ArgumentOutOfRangeException(nameof(function), function, "unknown activation");
        Function = function;
        Alpha = alpha ?? ActivationMath.DefaultAlpha(function);
        if (!float.IsFinite(Alpha)) throw new ArgumentOutOfRangeException(nameof(alpha), alpha, "alpha must be finite");
    }

    /// <summary>The function.</summary>
    public Activation Function { get; }
    /// <summary>Its parameter (negative slope of LeakyReLU, scale of ELU).</summary>
    public float Alpha { get; }
    /// <inheritdoc/>
    public override string Kind => Function.ToString().ToLowerInvariant();

    /// <summary>
    /// True when the derivative can be computed from the output alone, so a preceding Linear can fuse this activation
    /// into its GEMM epilogue without keeping the pre-activation.
    /// </summary>
    public bool FusableAfterGemm => Function switch
    {
        Activation.Identity or Activation.Relu or Activation.Sigmoid or Activation.Tanh => true,
        Activation.LeakyRelu or Activation.Elu => Alpha > 0,
        _ => false,
    };

    /// <inheritdoc/>
    public override int[] OutputShape(int[] input) => (int[])input.Clone();

    /// <inheritdoc/>
    public override double ForwardFlops(int[] input) => ShapeUtil.Count(input) * ActivationOp.FlopsPerElement(Function, backward: false);

    /// <summary>
    /// The activation's own ONNX form (<see cref="IActivation.ToOnnx"/>): the operator of the same name where opset 17
    /// has one (alpha as its attribute), GELU composed from its tanh form, nothing for the identity.
    /// </summary>
    internal override string ExportOnnx(Onnx.OnnxGraph graph, string input)
        => ActivationMath.Definition(Function).ToOnnx(new Onnx.OnnxActivationWriter(graph, Name!), input, Alpha);

    internal override Node CreateNode(BuildContext ctx, Tensor input, bool needInputGrad) => new ActivationNode(this, ctx, input, needInputGrad);
}

internal sealed class ActivationNode : Node
{
    private readonly ActivationLayer _layer;

    public ActivationNode(ActivationLayer layer, BuildContext ctx, Tensor input, bool needInputGrad)
        : base(layer, ctx, input, input.Shape[1..].ToArray())
    {
        _layer = layer;
        Output = ctx.Batched(OutputShape);
        if (ctx.Training && needInputGrad) InputGrad = ctx.Batched(InputShape);
    }

    protected override void ForwardCore(bool training) => Device.ActivationForward(_layer.Function, Input, Output, _layer.Alpha);

    protected override void BackwardCore()
    {
        if (InputGrad is not null) Device.ActivationBackward(_layer.Function, Input, Output, OutputGrad!, InputGrad, _layer.Alpha);
    }
}
