using GpuNet.Kernels;

namespace GpuNet.Nn;

/// <summary>
/// Batch normalisation over dimension 1: training mode normalises with the batch statistics and updates the running
/// mean and (unbiased) variance with <see cref="Momentum"/>; evaluation mode uses the running statistics. Affine
/// gamma (<c>weight</c>, initialised to 1) and beta (<c>bias</c>, 0), no weight decay on either by default. Followed by
/// a ReLU inside a Sequential, the ReLU is fused into the normalisation pass.
/// </summary>
public abstract class BatchNorm : Layer
{
    private protected BatchNorm(int features, float momentum, float eps, string? name) : base(name)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(features, 1);
        if (!(momentum >= 0f && momentum <= 1f)) throw new ArgumentOutOfRangeException(nameof(momentum), momentum, "momentum must be in [0, 1]");
        if (!(eps > 0f && float.IsFinite(eps))) throw new ArgumentOutOfRangeException(nameof(eps), eps, "eps must be finite and > 0");
        Features = features;
        Momentum = momentum;
        Eps = eps;
        ParameterSpecs = [new("weight", [features], Init.Defaults.BatchNormWeight, false), new("bias", [features], Init.Defaults.BatchNormBias, false)];
        BufferSpecs = [new("running_mean", [features], Init.Defaults.BatchNormRunningMean, false), new("running_var", [features], Init.Defaults.BatchNormRunningVar, false)];
    }

    /// <summary>Channels (features).</summary>
    public int Features { get; }
    /// <summary>Running-statistics momentum (PyTorch's convention: new = (1 - m) old + m batch).</summary>
    public float Momentum { get; }
    /// <summary>Added to the variance.</summary>
    public float Eps { get; }
    /// <inheritdoc/>
    public override IReadOnlyList<ParameterSpec> ParameterSpecs { get; }
    /// <inheritdoc/>
    public override IReadOnlyList<ParameterSpec> BufferSpecs { get; }

    /// <summary>Per-sample rank this layer takes (1 for (C), 3 for (C, H, W)).</summary>
    private protected abstract int SampleRank { get; }

    /// <inheritdoc/>
    public override int[] OutputShape(int[] input)
    {
        if (input.Length != SampleRank || input[0] != Features)
            throw new LayerShapeException(Name ?? Kind, input, $"{GetType().Name}({Features}) needs {(SampleRank == 1 ? $"({Features})" : $"({Features}, H, W)")} per sample");
        return (int[])input.Clone();
    }

    /// <inheritdoc/>
    public override double ForwardFlops(int[] input) => 8.0 * ShapeUtil.Count(input);
    /// <inheritdoc/>
    public override double BackwardFlops(int[] input) => 10.0 * ShapeUtil.Count(input);

    /// <summary><c>BatchNormalization</c> in inference mode: (x - running_mean) / sqrt(running_var + eps) * weight + bias.</summary>
    internal override string ExportOnnx(Onnx.OnnxGraph graph, string input)
        => graph.Node("BatchNormalization", Name!,
            [input, graph.Parameter(this, 0), graph.Parameter(this, 1), graph.Buffer(this, 0), graph.Buffer(this, 1)],
            Onnx.OnnxGraph.Float("epsilon", Eps));

    internal override Node CreateNode(BuildContext ctx, Tensor input, bool needInputGrad) => new BatchNormNode(this, ctx, input, needInputGrad, null);

    /// <summary>Fuses a ReLU into the normalisation pass.</summary>
    internal override Node? CreateFusedNode(BuildContext ctx, Tensor input, bool needInputGrad, Layer next)
        => next is ActivationLayer { Function: Activation.Relu } relu ? new BatchNormNode(this, ctx, input, needInputGrad, relu) : null;
}

/// <summary>Batch normalisation of (N, C) inputs: statistics per feature over the batch.</summary>
public sealed class BatchNorm1d(int features, float momentum = 0.1f, float eps = 1e-5f, string? name = null) : BatchNorm(features, momentum, eps, name)
{
    /// <inheritdoc/>
    public override string Kind => "bn";
    private protected override int SampleRank => 1;
}

/// <summary>Batch normalisation of (N, C, H, W) inputs: statistics per channel over N, H and W.</summary>
public sealed class BatchNorm2d(int channels, float momentum = 0.1f, float eps = 1e-5f, string? name = null) : BatchNorm(channels, momentum, eps, name)
{
    /// <inheritdoc/>
    public override string Kind => "bn";
    private protected override int SampleRank => 3;
}

internal sealed class BatchNormNode : Node
{
    private readonly BatchNorm _layer;
    private readonly bool _relu;
    private readonly Tensor _saveMean, _saveInvStd;
    private readonly Tensor? _dxBuffer;

    public BatchNormNode(BatchNorm layer, BuildContext ctx, Tensor input, bool needInputGrad, ActivationLayer? relu)
        : base(layer, ctx, input, layer.OutputShape(input.Shape[1..].ToArray()), relu)
    {
        _layer = layer;
        _relu = relu is not null;
        Output = ctx.Batched(OutputShape);
        _saveMean = ctx.Buffer([layer.Features]);
        _saveInvStd = ctx.Buffer([layer.Features]);
        // dgamma and dbeta need the backward even where dx is not wanted: the sums kernel writes dx alongside
        if (ctx.Training) _dxBuffer = ctx.Batched(InputShape);
        if (needInputGrad) InputGrad = _dxBuffer;
    }

    protected override void ForwardCore(bool training)
    {
        var p = _layer.Parameters;
        var r = _layer.Buffers;   // running_mean, running_var
        Device.BatchNormForward(Input, p[0], p[1], r[0], r[1], _saveMean, _saveInvStd, Output, training, _layer.Momentum, _layer.Eps, fuseRelu: _relu);
    }

    protected override void BackwardCore()
    {
        var p = _layer.Parameters;
        var g = _layer.Gradients!;
        Device.BatchNormBackward(Input, OutputGrad!, p[0], _saveMean, _saveInvStd, _dxBuffer!, g[0], g[1], fuseRelu: _relu, y: _relu ? Output : null);
    }
}
