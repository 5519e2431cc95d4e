namespace GpuNet.Nn;

/// <summary>
/// Inverted dropout: in training, each element is kept with probability 1 - p and scaled by 1 / (1 - p); in
/// evaluation it is the identity. The mask comes from a counter-based generator keyed by (seed, step, element), so it
/// is identical on every device and reproducible.
/// </summary>
public sealed class Dropout : Layer
{
    /// <summary>
    /// Creates the layer; <paramref name="p"/> in [0, 1) is the probability of dropping an element (p = 1 would zero
    /// every activation and every gradient, so the layer rejects it; the op itself accepts it).
    /// </summary>
    public Dropout(float p, string? name = null) : base(name)
    {
        if (!(p >= 0f && p < 1f)) throw new ArgumentOutOfRangeException(nameof(p), p, $"Dropout: p must be in [0, 1), got {p}");
        P = p;
    }

    /// <summary>Drop probability.</summary>
    public float P { get; }
    /// <inheritdoc/>
    public override string Kind => "dropout";
    /// <inheritdoc/>
    public override bool IsStochastic => true;
    /// <inheritdoc/>
    public override int[] OutputShape(int[] input) => (int[])input.Clone();
    /// <inheritdoc/>
    public override double ForwardFlops(int[] input) => ShapeUtil.Count(input);
    /// <summary>Absent: evaluation-mode dropout is the identity, so the input value is the output.</summary>
    internal override string ExportOnnx(Onnx.OnnxGraph graph, string input) => input;
    internal override Node CreateNode(BuildContext ctx, Tensor input, bool needInputGrad) => new DropoutNode(this, ctx, input, needInputGrad);
}

internal sealed class DropoutNode : Node
{
    private readonly Dropout _layer;
    private readonly ulong _seed;

    /// <summary>The seed of this node's masks (the model seed mixed with the node's position).</summary>
    public ulong Seed => _seed;
    private readonly StepClock _clock;

    public DropoutNode(Dropout layer, BuildContext ctx, Tensor input, bool needInputGrad)
        : base(layer, ctx, input, input.Shape[1..].ToArray())
    {
        _layer = layer;
        // each dropout node draws its own stream: mix the node's position into the model seed (SplitMix64 constant)
        _seed = ctx.Seed ^ (0x9E3779B97F4A7C15UL * (ulong)(ctx.NodeIndex + 1));
        _clock = ctx.Clock;
        Output = ctx.Batched(OutputShape);
        if (ctx.Training && needInputGrad) InputGrad = ctx.Batched(InputShape);
    }

    protected override void ForwardCore(bool training)
    {
        if (training && _layer.P > 0f) Device.DropoutForward(Input, Output, _layer.P, _seed, _clock.Step);
        else Device.Copy(Input, Output);
    }

    protected override void BackwardCore()
    {
        if (InputGrad is null) return;
        if (_layer.P > 0f) Device.DropoutBackward(OutputGrad!, InputGrad, _layer.P, _seed, _clock.Step);
        else Device.Copy(OutputGrad!, InputGrad);
    }
}
