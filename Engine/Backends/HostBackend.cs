using GpuNet.Kernels;

namespace GpuNet.Backends;

/// <summary>
/// The <c>cpu</c> device: every op is the kernel's SIMD host implementation (<c>XxxOp.Host</c>) over managed arrays,
/// run synchronously on the calling thread (multi-threaded inside). No ILGPU context, no scratch workspace.
/// </summary>
internal sealed class HostBackend : Backend
{
    private static ArraySegment<float> Seg(Tensor? t) => t?.Host ?? ArraySegment<float>.Empty;

    /// <inheritdoc/>
    public override long KernelLaunches => 0;

    // ---- memory ---------------------------------------------------------------------------------------------------

    public override DeviceBuffer Allocate(Device device, long length) => new HostBuffer(device, length);
    public override void CopyToHost(Tensor source, Span<float> destination) => source.Host.AsSpan().CopyTo(destination);
    public override void CopyFromHost(ReadOnlySpan<float> source, Tensor destination) => source.CopyTo(destination.Host.AsSpan());
    public override void Synchronize() { }
    public override void Dispose() { }

    // Host code runs synchronously: the copy is done when UploadAsync returns, so nothing is ever pending.
    public override StagingBuffer AllocateStaging(Device device, int length)
        => new(device, GC.AllocateUninitializedArray<float>(length, pinned: true), null);
    public override void UploadAsync(StagingBuffer source, Tensor destination)
        => source.Unsynchronized.AsSpan(0, (int)destination.Length).CopyTo(destination.Host.AsSpan());
    public override void WaitForUpload(StagingBuffer buffer) { }
    public override void FreeStaging(StagingBuffer buffer) { }

    // ---- elementwise ----------------------------------------------------------------------------------------------

    public override void Binary(BinaryOp op, Tensor a, Tensor b, Tensor c) => ElementwiseOp.Host(op, a.Host, b.Host, c.Host);
    public override void Scale(float alpha, Tensor x, Tensor y) => ElementwiseOp.HostScale(alpha, x.Host, y.Host);
    public override void Axpy(float alpha, Tensor x, Tensor y) => ElementwiseOp.HostAxpy(alpha, x.Host, y.Host);
    public override void Fill(Tensor x, float value) => ElementwiseOp.HostFill(value, x.Host);
    public override void Copy(Tensor src, Tensor dst) => ElementwiseOp.HostCopy(src.Host, dst.Host);

    // ---- activations, softmax, dropout ----------------------------------------------------------------------------

    public override void ActivationForward(Activation act, float alpha, Tensor x, Tensor y) => ActivationOp.Host(act, alpha, x.Host, y.Host);

    public override void ActivationBackward(Activation act, float alpha, Tensor x, Tensor y, Tensor dy, Tensor dx)
        => ActivationOp.HostBackward(act, alpha, x.Host, y.Host, dy.Host, dx.Host);

    public override void Softmax(bool log, int rows, int cols, Tensor x, Tensor y) => SoftmaxOp.Host(log, rows, cols, x.Host, y.Host);

    public override void SoftmaxBackward(bool log, int rows, int cols, Tensor y, Tensor dy, Tensor dx)
        => SoftmaxOp.HostBackward(log, rows, cols, y.Host, dy.Host, dx.Host);

    public override void Dropout(float p, ulong seed, long step, Tensor x, Tensor y) => DropoutOp.Host(p, seed, step, x.Host, y.Host);

    // ---- GEMM and convolutions ------------------------------------------------------------------------------------

    public override void Gemm(bool transA, bool transB, int m, int n, int k, float alpha, Tensor a, Tensor b, float beta, Tensor c,
        Tensor? bias, Activation activation, float activationAlpha)
        => GemmOp.Host(transA, transB, m, n, k, alpha, a.Host, b.Host, beta, c.Host, Seg(bias), activation, activationAlpha);

    public override void Conv2dForward(in Conv2dShape s, Tensor x, Tensor w, Tensor? b, Tensor y) => Conv2dOp.Host(s, x.Host, w.Host, Seg(b), y.Host);
    public override void Conv2dBackwardData(in Conv2dShape s, Tensor dy, Tensor w, Tensor dx) => Conv2dOp.HostBackwardData(s, dy.Host, w.Host, dx.Host);

    public override void Conv2dBackwardFilter(in Conv2dShape s, Tensor x, Tensor dy, Tensor dw, Tensor? db)
        => Conv2dOp.HostBackwardFilter(s, x.Host, dy.Host, dw.Host, Seg(db));

    public override void DepthwiseConv2dForward(in DepthwiseParams a, Tensor x, Tensor w, Tensor? b, Tensor y)
        => DepthwiseConv2dOp.Host(a, x.Host, w.Host, Seg(b), y.Host);

    public override void DepthwiseConv2dBackwardData(in DepthwiseParams a, Tensor dy, Tensor w, Tensor dx)
        => DepthwiseConv2dOp.HostBackwardData(a, dy.Host, w.Host, dx.Host);

    public override void DepthwiseConv2dBackwardFilter(in DepthwiseParams a, Tensor x, Tensor dy, Tensor dw, Tensor? db)
        => DepthwiseConv2dOp.HostBackwardFilter(a, x.Host, dy.Host, dw.Host, Seg(db));

    // ---- normalisation and pooling --------------------------------------------------------------------------------

    public override void BatchNormForward(in BatchNormArgs a, Tensor x, Tensor gamma, Tensor beta, Tensor? runningMean, Tensor? runningVar,
        Tensor? saveMean, Tensor? saveInvStd, Tensor y)
        => BatchNormOp.Host(a, x.Host, gamma.Host, beta.Host, Seg(runningMean), Seg(runningVar), Seg(saveMean), Seg(saveInvStd), y.Host);

    public override void BatchNormBackward(in BatchNormArgs a, Tensor x, Tensor dy, Tensor? y, Tensor gamma, Tensor saveMean, Tensor saveInvStd,
        Tensor dx, Tensor dGamma, Tensor dBeta)
        => BatchNormOp.HostBackward(a, x.Host, dy.Host, Seg(y), gamma.Host, saveMean.Host, saveInvStd.Host, dx.Host, dGamma.Host, dBeta.Host);

    public override void MaxPool2dForward(in Pool2dArgs a, Tensor x, Tensor y, Tensor indices) => MaxPool2dOp.Host(a, x.Host, y.Host, indices.Host);
    public override void MaxPool2dBackward(in Pool2dArgs a, Tensor dy, Tensor indices, Tensor dx) => MaxPool2dOp.HostBackward(a, dy.Host, indices.Host, dx.Host);
    public override void AvgPool2dForward(in Pool2dArgs a, Tensor x, Tensor y) => AvgPool2dOp.Host(a, x.Host, y.Host);
    public override void AvgPool2dBackward(in Pool2dArgs a, Tensor dy, Tensor dx) => AvgPool2dOp.HostBackward(a, dy.Host, dx.Host);
    public override void GlobalAvgPoolForward(int planes, int size, Tensor x, Tensor y) => GlobalAvgPoolOp.Host(planes, size, x.Host, y.Host);
    public override void GlobalAvgPoolBackward(int planes, int size, Tensor dy, Tensor dx) => GlobalAvgPoolOp.HostBackward(planes, size, dy.Host, dx.Host);

    // ---- reductions -----------------------------------------------------------------------------------------------

    public override void ReduceRows(ReduceOp op, int rows, int cols, Tensor x, Tensor y) => ReductionOp.HostRows(op, rows, cols, x.Host, y.Host);
    public override void ReduceCols(ReduceOp op, int rows, int cols, Tensor x, float beta, Tensor y) => ReductionOp.HostCols(op, rows, cols, x.Host, beta, y.Host);
    public override void Sum(Tensor x, Tensor result) => result.Host.AsSpan()[0] = (float)GlobalSumOp.Host(x.Host);
    public override void ArgmaxRows(int rows, int cols, Tensor x, Tensor indices) => ArgmaxOp.Host(rows, cols, x.Host, indices.Host);

    // ---- losses ---------------------------------------------------------------------------------------------------

    public override void PointwiseLoss(PointwiseLossKind kind, Tensor input, Tensor target, Tensor loss, Tensor? grad,
        LossReduction reduction, float gradScale)
    {
        var g = Seg(grad);
        switch (kind)
        {
            case PointwiseLossKind.MeanSquaredError: MseLossOp.Host(input.Host, target.Host, loss.Host, g, reduction, gradScale); break;
            case PointwiseLossKind.BceWithLogits: BceWithLogitsLossOp.Host(input.Host, target.Host, loss.Host, g, reduction, gradScale); break;
            default: HingeLossOp.Host(input.Host, target.Host, loss.Host, g, reduction, gradScale); break;
        }
    }

    public override void ClassLoss(ClassLossKind kind, Tensor input, Tensor labels, Tensor loss, Tensor? grad, int rows, int classes,
        LossReduction reduction, float labelSmoothing, float gradScale)
    {
        var g = Seg(grad);
        if (kind == ClassLossKind.SoftmaxCrossEntropy)
            SoftmaxCrossEntropyLossOp.Host(input.Host, labels.Host, loss.Host, g, rows, classes, reduction, labelSmoothing, gradScale);
        else
            MultiMarginLossOp.Host(input.Host, labels.Host, loss.Host, g, rows, classes, reduction, gradScale);
    }

    // ---- optimizer ------------------------------------------------------------------------------------------------

    public override void OptimizerStep(Tensor p, Tensor g, Tensor? s1, Tensor? s2, Tensor? s3, Tensor? segs, Tensor? table, Tensor? norm,
        int[] segStarts, int[] segGroups, float[] hostTable, in OptimizerParams a, ref double hostSumSquares)
    {
        if ((a.Flags & OptimizerParams.FlagClipNorm) != 0)
            hostSumSquares = OptimizerOp.HostSumSquares(g.Host, segStarts, segGroups, hostTable, a.Segments);
        OptimizerOp.Host(p.Host, g.Host, Seg(s1), Seg(s2), Seg(s3), segStarts, segGroups, hostTable, a, (float)hostSumSquares);
    }
}
