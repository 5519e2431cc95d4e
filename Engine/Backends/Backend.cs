using GpuNet.Kernels;

namespace GpuNet.Backends;

/// <summary>The element-wise losses that share one validation and one dispatch path.</summary>
internal enum PointwiseLossKind
{
    /// <summary>Mean squared error (<see cref="MseLossOp"/>).</summary>
    MeanSquaredError,
    /// <summary>Binary cross-entropy on logits (<see cref="BceWithLogitsLossOp"/>).</summary>
    BceWithLogits,
    /// <summary>Binary hinge (<see cref="HingeLossOp"/>).</summary>
    BinaryHinge,
}

/// <summary>The losses over (rows, classes) with int32 labels that share one validation and one dispatch path.</summary>
internal enum ClassLossKind
{
    /// <summary>Softmax cross-entropy with label smoothing (<see cref="SoftmaxCrossEntropyLossOp"/>).</summary>
    SoftmaxCrossEntropy,
    /// <summary>Weston-Watkins multi-class hinge (<see cref="MultiMarginLossOp"/>).</summary>
    MultiMarginHinge,
}

/// <summary>
/// What one kind of device implements: its memory (buffers, copies to and from the host, synchronisation, scratch
/// workspace) and one method per op family. <see cref="Device"/> validates every argument, returns early for empty
/// tensors and counts one launch, then calls exactly one op method here; a backend neither validates nor counts
/// launches. Tensors passed in live on this backend's device, are alive and have the shapes the op's documentation on
/// <see cref="Device"/> states; shape values (rows, <see cref="Conv2dShape"/>, ...) are already derived and checked.
/// Gradient contract as in the kernels: parameter gradients accumulate (+=), activation gradients overwrite (=).
/// </summary>
internal abstract class Backend : IDisposable
{
    /// <summary>Kernels this backend launched on an accelerator so far (0 for host code).</summary>
    public abstract long KernelLaunches { get; }

    // ---- memory ---------------------------------------------------------------------------------------------------

    /// <summary>A new uninitialised buffer of <paramref name="length"/> elements owned by <paramref name="device"/>.</summary>
    public abstract DeviceBuffer Allocate(Device device, long length);

    /// <summary>Copies the non-empty <paramref name="source"/> to the host (waits for pending work first).</summary>
    public abstract void CopyToHost(Tensor source, Span<float> destination);

    /// <summary>Copies host memory into the non-empty <paramref name="destination"/>.</summary>
    public abstract void CopyFromHost(ReadOnlySpan<float> source, Tensor destination);

    /// <summary>Waits until every launched op has finished.</summary>
    public abstract void Synchronize();

    /// <summary>Pinned host memory of <paramref name="length"/> elements for <see cref="UploadAsync"/>.</summary>
    public abstract StagingBuffer AllocateStaging(Device device, int length);

    /// <summary>
    /// Queues a copy of the first <c>destination.Length</c> elements of <paramref name="source"/> into the non-empty
    /// <paramref name="destination"/> without waiting for the device, and records in
    /// <see cref="StagingBuffer.PendingUpload"/> what <see cref="WaitForUpload"/> waits on (zero when the copy is already done).
    /// </summary>
    public abstract void UploadAsync(StagingBuffer source, Tensor destination);

    /// <summary>Waits until the upload recorded in <see cref="StagingBuffer.PendingUpload"/> has read the buffer, and clears it.</summary>
    public abstract void WaitForUpload(StagingBuffer buffer);

    /// <summary>Frees a staging buffer's memory (its upload is complete).</summary>
    public abstract void FreeStaging(StagingBuffer buffer);

    /// <summary>Frees what the backend owns beyond buffers (accelerator, context).</summary>
    public abstract void Dispose();

    // ---- elementwise ----------------------------------------------------------------------------------------------

    /// <summary>c = a op b.</summary>
    public abstract void Binary(BinaryOp op, Tensor a, Tensor b, Tensor c);
    /// <summary>y = alpha x.</summary>
    public abstract void Scale(float alpha, Tensor x, Tensor y);
    /// <summary>y += alpha x.</summary>
    public abstract void Axpy(float alpha, Tensor x, Tensor y);
    /// <summary>x = value (float32 or int32 bits).</summary>
    public abstract void Fill(Tensor x, float value);
    /// <summary>dst = src (same length).</summary>
    public abstract void Copy(Tensor src, Tensor dst);

    // ---- activations, softmax, dropout ----------------------------------------------------------------------------

    /// <summary>y = act(x).</summary>
    public abstract void ActivationForward(Activation act, float alpha, Tensor x, Tensor y);
    /// <summary>dx = dy * act'(x, y).</summary>
    public abstract void ActivationBackward(Activation act, float alpha, Tensor x, Tensor y, Tensor dy, Tensor dx);
    /// <summary>Row-wise (log-)softmax of x: (rows, cols).</summary>
    public abstract void Softmax(bool log, int rows, int cols, Tensor x, Tensor y);
    /// <summary>Row-wise (log-)softmax backward from the forward output y: (rows, cols).</summary>
    public abstract void SoftmaxBackward(bool log, int rows, int cols, Tensor y, Tensor dy, Tensor dx);
    /// <summary>Inverted dropout with the counter-based mask of (seed, step, index).</summary>
    public abstract void Dropout(float p, ulong seed, long step, Tensor x, Tensor y);

    // ---- GEMM and convolutions ------------------------------------------------------------------------------------

    /// <summary>C (M, N) = act(alpha op(A) op(B) + beta C + bias).</summary>
    public abstract void Gemm(bool transA, bool transB, int m, int n, int k, float alpha, Tensor a, Tensor b, float beta, Tensor c,
        Tensor? bias, Activation activation, float activationAlpha);
    /// <summary>y (N, K, P, Q) = conv(x (N, C, H, W), w (K, C/groups, R, S)) + b.</summary>
    public abstract void Conv2dForward(in Conv2dShape s, Tensor x, Tensor w, Tensor? b, Tensor y);
    /// <summary>dx (N, C, H, W) = the input gradient of the convolution (overwrite).</summary>
    public abstract void Conv2dBackwardData(in Conv2dShape s, Tensor dy, Tensor w, Tensor dx);
    /// <summary>dw += the filter gradient; db += sum of dy over (N, P, Q) when given.</summary>
    public abstract void Conv2dBackwardFilter(in Conv2dShape s, Tensor x, Tensor dy, Tensor dw, Tensor? db);
    /// <summary>Depthwise convolution forward: x (N, C, H, W), w (C, 1, R, S), b (C) or null, y (N, C, P, Q).</summary>
    public abstract void DepthwiseConv2dForward(in DepthwiseParams a, Tensor x, Tensor w, Tensor? b, Tensor y);
    /// <summary>Depthwise convolution input gradient (overwrite).</summary>
    public abstract void DepthwiseConv2dBackwardData(in DepthwiseParams a, Tensor dy, Tensor w, Tensor dx);
    /// <summary>Depthwise convolution parameter gradients (accumulate); db may be null.</summary>
    public abstract void DepthwiseConv2dBackwardFilter(in DepthwiseParams a, Tensor x, Tensor dy, Tensor dw, Tensor? db);

    // ---- normalisation and pooling --------------------------------------------------------------------------------

    /// <summary>Batch norm forward; the optional tensors are null when the mode does not use them.</summary>
    public abstract void BatchNormForward(in BatchNormArgs a, Tensor x, Tensor gamma, Tensor beta, Tensor? runningMean, Tensor? runningVar,
        Tensor? saveMean, Tensor? saveInvStd, Tensor y);
    /// <summary>Batch norm backward; y is the forward output when a.Relu is set, else null.</summary>
    public abstract void BatchNormBackward(in BatchNormArgs a, Tensor x, Tensor dy, Tensor? y, Tensor gamma, Tensor saveMean, Tensor saveInvStd,
        Tensor dx, Tensor dGamma, Tensor dBeta);
    /// <summary>Max pooling forward: y and int32 indices (N, C, P, Q).</summary>
    public abstract void MaxPool2dForward(in Pool2dArgs a, Tensor x, Tensor y, Tensor indices);
    /// <summary>Max pooling backward through the saved int32 indices (overwrites dx).</summary>
    public abstract void MaxPool2dBackward(in Pool2dArgs a, Tensor dy, Tensor indices, Tensor dx);
    /// <summary>Average pooling forward.</summary>
    public abstract void AvgPool2dForward(in Pool2dArgs a, Tensor x, Tensor y);
    /// <summary>Average pooling backward (overwrites dx).</summary>
    public abstract void AvgPool2dBackward(in Pool2dArgs a, Tensor dy, Tensor dx);
    /// <summary>y (planes) = the mean of each plane of x (planes, size).</summary>
    public abstract void GlobalAvgPoolForward(int planes, int size, Tensor x, Tensor y);
    /// <summary>dx (planes, size) = dy (planes) / size.</summary>
    public abstract void GlobalAvgPoolBackward(int planes, int size, Tensor dy, Tensor dx);

    // ---- reductions -----------------------------------------------------------------------------------------------

    /// <summary>y (rows) = reduce over the columns of x (rows, cols).</summary>
    public abstract void ReduceRows(ReduceOp op, int rows, int cols, Tensor x, Tensor y);
    /// <summary>y (cols) = beta y + reduce over the rows of x (rows, cols).</summary>
    public abstract void ReduceCols(ReduceOp op, int rows, int cols, Tensor x, float beta, Tensor y);
    /// <summary>result (1) = the sum of every element of x (any length, 0 included).</summary>
    public abstract void Sum(Tensor x, Tensor result);
    /// <summary>indices (rows, int32) = the first argmax of each row of x (rows, cols).</summary>
    public abstract void ArgmaxRows(int rows, int cols, Tensor x, Tensor indices);

    // ---- losses ---------------------------------------------------------------------------------------------------

    /// <summary>An element-wise loss of non-empty input and target into loss (1); grad (shape of input) or null.</summary>
    public abstract void PointwiseLoss(PointwiseLossKind kind, Tensor input, Tensor target, Tensor loss, Tensor? grad,
        LossReduction reduction, float gradScale);
    /// <summary>
    /// A loss of input (rows, classes) against int32 labels (rows), rows and classes &gt;= 1, into loss (1); grad or null.
    /// <paramref name="labelSmoothing"/> is read by softmax cross-entropy only.
    /// </summary>
    public abstract void ClassLoss(ClassLossKind kind, Tensor input, Tensor labels, Tensor loss, Tensor? grad, int rows, int classes,
        LossReduction reduction, float labelSmoothing, float gradScale);

    // ---- optimizer ------------------------------------------------------------------------------------------------

    /// <summary>
    /// The fused optimizer step (with clipping by norm, the sum of squares first). The host path takes the segment and
    /// group tables as arrays and keeps the sum of squares in <paramref name="hostSumSquares"/>; an accelerator takes
    /// them as the tensors <paramref name="segs"/>, <paramref name="table"/> and <paramref name="norm"/>.
    /// </summary>
    public abstract void OptimizerStep(Tensor p, Tensor g, Tensor? s1, Tensor? s2, Tensor? s3, Tensor? segs, Tensor? table, Tensor? norm,
        int[] segStarts, int[] segGroups, float[] hostTable, in OptimizerParams a, ref double hostSumSquares);
}
