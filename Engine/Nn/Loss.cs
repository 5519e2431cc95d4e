using GpuNet.Kernels;
using GpuNet.Training;

namespace GpuNet.Nn;

/// <summary>
/// A loss on a model's output: computes the loss value into a 1-element device tensor and, in the same fused call,
/// overwrites the gradient w.r.t. the output (an activation gradient, =). Nothing is copied to the host.
/// </summary>
public abstract class Loss
{
    /// <summary>Creates the loss.</summary>
    protected Loss(LossReduction reduction)
    {
        if (!Enum.IsDefined(reduction)) throw new ArgumentOutOfRangeException(nameof(reduction), reduction, "unknown reduction");
        Reduction = reduction;
    }

    /// <summary>Mean over samples (elements for MSE/BCE) or sum.</summary>
    public LossReduction Reduction { get; }
    /// <summary>Int32 class labels or Float32 targets.</summary>
    public abstract DType TargetType { get; }
    /// <summary>Per-sample target shape for a per-sample output shape.</summary>
    public virtual int[] TargetShape(int[] outputShape) => TargetType == DType.Int32 ? outputShape[..^1] : (int[])outputShape.Clone();
    /// <summary>
    /// True for a loss on one score per sample that separates two classes: a score &gt; 0 predicts class 1
    /// (BCE on logits, binary hinge). False by default.
    /// </summary>
    public virtual bool IsBinary => false;

    /// <summary>For a binary loss: whether a target counts as class 1 in metrics (default: target &gt;= 0.5).</summary>
    public virtual bool IsPositive(float target) => target >= 0.5f;

    /// <summary>
    /// What accuracy and metrics mean for outputs of <paramref name="outputShape"/> per sample under this loss:
    /// multi-class for Int32 labels over a vector of at least two scores, binary for a binary loss on one score,
    /// regression otherwise.
    /// </summary>
    public TaskKind Task(int[] outputShape)
    {
        ArgumentNullException.ThrowIfNull(outputShape);
        long outPer = ShapeUtil.Count(outputShape);
        return TargetType == DType.Int32 && outputShape.Length == 1 && outPer >= 2 ? TaskKind.MultiClass
            : IsBinary && outPer == 1 ? TaskKind.Binary
            : TaskKind.Regression;
    }

    /// <summary>Loss value into <paramref name="loss"/> (1 element) and, when non-null, its gradient into <paramref name="grad"/>.</summary>
    public abstract void Compute(Device device, Tensor output, Tensor target, Tensor loss, Tensor? grad, float gradScale = 1f);
}

/// <summary>Mean squared error.</summary>
public sealed class MseLoss(LossReduction reduction = LossReduction.Mean) : Loss(reduction)
{
    /// <inheritdoc/>
    public override DType TargetType => DType.Float32;
    /// <inheritdoc/>
    public override void Compute(Device device, Tensor output, Tensor target, Tensor loss, Tensor? grad, float gradScale = 1f)
        => device.MeanSquaredError(output, target, loss, grad, Reduction, gradScale);
}

/// <summary>Binary cross-entropy on logits (stable form); targets in [0, 1].</summary>
public sealed class BceWithLogitsLoss(LossReduction reduction = LossReduction.Mean) : Loss(reduction)
{
    /// <inheritdoc/>
    public override DType TargetType => DType.Float32;
    /// <inheritdoc/>
    public override bool IsBinary => true;
    /// <inheritdoc/>
    public override void Compute(Device device, Tensor output, Tensor target, Tensor loss, Tensor? grad, float gradScale = 1f)
        => device.BceWithLogits(output, target, loss, grad, Reduction, gradScale);
}

/// <summary>Softmax cross-entropy on logits with Int32 class labels, optional label smoothing (PyTorch's CrossEntropyLoss).</summary>
public sealed class CrossEntropyLoss : Loss
{
    /// <summary>Creates the loss; <paramref name="labelSmoothing"/> in [0, 1).</summary>
    public CrossEntropyLoss(LossReduction reduction = LossReduction.Mean, float labelSmoothing = 0f) : base(reduction)
    {
        if (!(labelSmoothing >= 0f && labelSmoothing < 1f))
            throw new ArgumentOutOfRangeException(nameof(labelSmoothing), labelSmoothing, "label smoothing must lie in [0, 1)");
        LabelSmoothing = labelSmoothing;
    }

    /// <summary>Label smoothing epsilon.</summary>
    public float LabelSmoothing { get; }
    /// <inheritdoc/>
    public override DType TargetType => DType.Int32;
    /// <inheritdoc/>
    public override void Compute(Device device, Tensor output, Tensor target, Tensor loss, Tensor? grad, float gradScale = 1f)
        => device.SoftmaxCrossEntropy(output, target, loss, grad, Reduction, LabelSmoothing, gradScale);
}

/// <summary>Binary hinge max(0, 1 - y z); a target &gt; 0 is +1, anything else -1.</summary>
public sealed class HingeLoss(LossReduction reduction = LossReduction.Mean) : Loss(reduction)
{
    /// <inheritdoc/>
    public override DType TargetType => DType.Float32;
    /// <inheritdoc/>
    public override bool IsBinary => true;
    /// <summary>A target &gt; 0 is class 1 (the +1 side of the margin).</summary>
    public override bool IsPositive(float target) => target > 0f;
    /// <inheritdoc/>
    public override void Compute(Device device, Tensor output, Tensor target, Tensor loss, Tensor? grad, float gradScale = 1f)
        => device.BinaryHinge(output, target, loss, grad, Reduction, gradScale);
}

/// <summary>Multi-class hinge, Weston-Watkins, exactly PyTorch's MultiMarginLoss(p = 1, margin = 1); Int32 labels.</summary>
public sealed class MultiMarginLoss(LossReduction reduction = LossReduction.Mean) : Loss(reduction)
{
    /// <inheritdoc/>
    public override DType TargetType => DType.Int32;
    /// <inheritdoc/>
    public override void Compute(Device device, Tensor output, Tensor target, Tensor loss, Tensor? grad, float gradScale = 1f)
        => device.MultiMarginHinge(output, target, loss, grad, Reduction, gradScale);
}
