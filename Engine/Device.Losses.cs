using GpuNet.Backends;
using GpuNet.Kernels;

namespace GpuNet;

public sealed partial class Device
{
    // Every loss: the reduced loss goes into a 1-element float32 tensor that stays on the device (read it with
    // loss.ToArray() when needed: that is the only host sync). The gradient, when a tensor is given, is overwritten
    // (it is an activation gradient) and multiplied by gradScale (loss scaling); the loss value is never scaled.
    // The same inputs give a bit-identical loss on every run of a given device. Forward and backward run fused.

    /// <summary>
    /// Mean squared error, like PyTorch's <c>MSELoss</c>: loss = reduce (pred - target)^2 over all elements;
    /// gradPred = gradScale * 2 (pred - target) / n (Mean) or gradScale * 2 (pred - target) (Sum).
    /// </summary>
    /// <param name="pred">Predictions, any shape.</param>
    /// <param name="target">Targets, the shape of <paramref name="pred"/>.</param>
    /// <param name="loss">A 1-element tensor that receives the loss.</param>
    /// <param name="gradPred">Receives dloss/dpred (shape of <paramref name="pred"/>), or null for the loss only.</param>
    /// <param name="reduction">Mean over all elements, or the sum.</param>
    /// <param name="gradScale">Multiplies the gradient (not the loss); finite.</param>
    public void MeanSquaredError(Tensor pred, Tensor target, Tensor loss, Tensor? gradPred,
        LossReduction reduction = LossReduction.Mean, float gradScale = 1f)
        => PointwiseLoss(PointwiseLossKind.MeanSquaredError, "MeanSquaredError", nameof(pred), pred, nameof(target), target,
            loss, nameof(gradPred), gradPred, reduction, gradScale);

    /// <summary>
    /// Binary cross-entropy on logits, like PyTorch's <c>BCEWithLogitsLoss</c> (no weights): per element
    /// max(z, 0) - z y + log(1 + exp(-|z|)), which never overflows; targets are floats in [0, 1] (not checked).
    /// gradLogits = gradScale * (sigmoid(z) - y) / n (Mean) or without the 1/n (Sum).
    /// </summary>
    /// <param name="logits">Logits z, any shape.</param>
    /// <param name="targets">Targets y, the shape of <paramref name="logits"/>.</param>
    /// <param name="loss">A 1-element tensor that receives the loss.</param>
    /// <param name="gradLogits">Receives dloss/dz, or null for the loss only.</param>
    /// <param name="reduction">Mean over all elements, or the sum.</param>
    /// <param name="gradScale">Multiplies the gradient (not the loss); finite.</param>
    public void BceWithLogits(Tensor logits, Tensor targets, Tensor loss, Tensor? gradLogits,
        LossReduction reduction = LossReduction.Mean, float gradScale = 1f)
        => PointwiseLoss(PointwiseLossKind.BceWithLogits, "BceWithLogits", nameof(logits), logits, nameof(targets), targets,
            loss, nameof(gradLogits), gradLogits, reduction, gradScale);

    /// <summary>
    /// Binary hinge loss: per element max(0, 1 - s z) with s = +1 where target &gt; 0 and -1 otherwise, so targets in
    /// {-1, +1} or {0, 1} both work (0 means the negative class). Subgradient -s where 1 - s z &gt; 0, and 0 at and beyond
    /// the hinge point; times gradScale / n (Mean) or gradScale (Sum).
    /// </summary>
    /// <param name="scores">Raw scores z, any shape.</param>
    /// <param name="targets">Targets, the shape of <paramref name="scores"/>.</param>
    /// <param name="loss">A 1-element tensor that receives the loss.</param>
    /// <param name="gradScores">Receives dloss/dz, or null for the loss only.</param>
    /// <param name="reduction">Mean over all elements, or the sum.</param>
    /// <param name="gradScale">Multiplies the gradient (not the loss); finite.</param>
    public void BinaryHinge(Tensor scores, Tensor targets, Tensor loss, Tensor? gradScores,
        LossReduction reduction = LossReduction.Mean, float gradScale = 1f)
        => PointwiseLoss(PointwiseLossKind.BinaryHinge, "BinaryHinge", nameof(scores), scores, nameof(targets), targets,
            loss, nameof(gradScores), gradScores, reduction, gradScale);

    /// <summary>
    /// Softmax cross-entropy on logits with class labels, exactly PyTorch's
    /// <c>CrossEntropyLoss(reduction, label_smoothing)</c> (no class weights, no ignore_index): target distribution
    /// (1 - eps) onehot(label) + eps / classes; gradLogits = gradScale * (softmax(z) - target) / rows (Mean) or without
    /// the 1/rows (Sum). Logits of any magnitude are safe (the row max is subtracted).
    /// A label outside [0, classes) is not read back to the host: that row's loss is NaN, so the loss is NaN, and its
    /// gradient row is all NaN (on every device; no memory outside the tensors is touched).
    /// </summary>
    /// <param name="logits">Logits, (..., classes): every dimension but the last is a row.</param>
    /// <param name="labels">Int32 class indices, the shape of <paramref name="logits"/> without its last dimension.</param>
    /// <param name="loss">A 1-element tensor that receives the loss.</param>
    /// <param name="gradLogits">Receives dloss/dlogits (shape of <paramref name="logits"/>), or null for the loss only.</param>
    /// <param name="reduction">Mean over rows, or the sum.</param>
    /// <param name="labelSmoothing">eps in [0, 1).</param>
    /// <param name="gradScale">Multiplies the gradient (not the loss); finite.</param>
    public void SoftmaxCrossEntropy(Tensor logits, Tensor labels, Tensor loss, Tensor? gradLogits,
        LossReduction reduction = LossReduction.Mean, float labelSmoothing = 0f, float gradScale = 1f)
        => ClassLoss(ClassLossKind.SoftmaxCrossEntropy, "SoftmaxCrossEntropy", nameof(logits), logits, labels,
            loss, nameof(gradLogits), gradLogits, reduction, labelSmoothing, gradScale);

    /// <summary>
    /// Multi-class hinge loss, Weston-Watkins, exactly PyTorch's <c>MultiMarginLoss(p=1, margin=1)</c> (no weights):
    /// per row sum over j != label of max(0, 1 - z_label + z_j), divided by the number of classes; then Mean over rows or
    /// Sum. Subgradient 0 exactly at the hinge point, like PyTorch; times gradScale.
    /// A label outside [0, classes): that row's loss is NaN (so the loss is NaN) and its gradient row is all NaN.
    /// </summary>
    /// <param name="scores">Scores, (..., classes): every dimension but the last is a row.</param>
    /// <param name="labels">Int32 class indices, the shape of <paramref name="scores"/> without its last dimension.</param>
    /// <param name="loss">A 1-element tensor that receives the loss.</param>
    /// <param name="gradScores">Receives dloss/dscores, or null for the loss only.</param>
    /// <param name="reduction">Mean over rows, or the sum.</param>
    /// <param name="gradScale">Multiplies the gradient (not the loss); finite.</param>
    public void MultiMarginHinge(Tensor scores, Tensor labels, Tensor loss, Tensor? gradScores,
        LossReduction reduction = LossReduction.Mean, float gradScale = 1f)
        => ClassLoss(ClassLossKind.MultiMarginHinge, "MultiMarginHinge", nameof(scores), scores, labels,
            loss, nameof(gradScores), gradScores, reduction, 0f, gradScale);

    // ---- validation and dispatch --------------------------------------------------------------------------------------

    private void PointwiseLoss(PointwiseLossKind kind, string op, string inputName, Tensor input, string targetName, Tensor target,
        Tensor loss, string gradName, Tensor? grad, LossReduction reduction, float gradScale)
    {
        Check(op, inputName, input); Check(op, targetName, target);
        CheckShape(op, targetName, target, input.Shape);
        CheckLossCommon(op, inputName, input, loss, gradName, grad, reduction, gradScale);
        if (input.Length == 0) { FillEmptyLoss(loss, reduction); return; }
        Launch().PointwiseLoss(kind, input, target, loss, grad, reduction, gradScale);
    }

    // labelSmoothing is validated for every kind (callers without it pass 0) and read by softmax cross-entropy only.
    private void ClassLoss(ClassLossKind kind, string op, string inputName, Tensor input, Tensor labels, Tensor loss,
        string gradName, Tensor? grad, LossReduction reduction, float labelSmoothing, float gradScale)
    {
        Check(op, inputName, input);
        Check(op, nameof(labels), labels, DType.Int32);
        var (rows, classes) = AsMatrix(op, inputName, input);
        CheckShape(op, nameof(labels), labels, input.Shape[..^1]);
        CheckLossCommon(op, inputName, input, loss, gradName, grad, reduction, gradScale);
        if (!(labelSmoothing >= 0f && labelSmoothing < 1f))
            throw new ArgumentOutOfRangeException(nameof(labelSmoothing), labelSmoothing, $"{op}: 'labelSmoothing' must lie in [0, 1), got {labelSmoothing}");
        if (rows == 0 || classes == 0) { FillEmptyLoss(loss, reduction); return; }
        Launch().ClassLoss(kind, input, labels, loss, grad, rows, classes, reduction, labelSmoothing, gradScale);
    }

    private void CheckLossCommon(string op, string inputName, Tensor input, Tensor loss, string gradName, Tensor? grad,
        LossReduction reduction, float gradScale)
    {
        Check(op, nameof(loss), loss);
        if (loss.Length != 1)
            throw new ShapeMismatchException(op, "(1)", ShapeUtil.Format(loss.Shape), "argument 'loss' must hold exactly 1 element");
        if (grad is not null)
        {
            Check(op, gradName, grad);
            CheckShape(op, gradName, grad, input.Shape);
            if (Overlaps(grad, input))
                throw new ArgumentException($"{op}: '{gradName}' overlaps '{inputName}'; the gradient needs its own memory", gradName);
        }
        if (Overlaps(loss, input) || (grad is not null && Overlaps(loss, grad)))
            throw new ArgumentException($"{op}: 'loss' overlaps '{inputName}' or '{gradName}'", nameof(loss));
        if (!Enum.IsDefined(reduction))
            throw new ArgumentOutOfRangeException(nameof(reduction), reduction, $"{op}: 'reduction' must be Mean or Sum, got {(int)reduction}");
        if (!float.IsFinite(gradScale))
            throw new ArgumentOutOfRangeException(nameof(gradScale), gradScale, $"{op}: 'gradScale' must be finite, got {gradScale}");
    }

    private static bool Overlaps(Tensor a, Tensor b)
        => ReferenceEquals(a.Buffer, b.Buffer) && a.Length > 0 && b.Length > 0
           && a.Offset < b.Offset + b.Length && b.Offset < a.Offset + a.Length;

    /// <summary>A loss over no elements: NaN for Mean (0/0, as PyTorch), 0 for Sum; no gradient to write.</summary>
    private void FillEmptyLoss(Tensor loss, LossReduction reduction)
    {
        FillCore(loss, reduction == LossReduction.Mean ? float.NaN : 0f);
    }
}
