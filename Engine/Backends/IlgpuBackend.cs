using GpuNet.Kernels;
using ILGPU;
using System.Runtime.InteropServices;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;

namespace GpuNet.Backends;

/// <summary>
/// An ILGPU accelerator (<c>cuda</c>, <c>opencl</c>, <c>ilgpu-cpu</c>): owns the <see cref="Context"/>, the
/// <see cref="Accelerator"/> and the <see cref="KernelCache"/>, and runs every op through the kernel's launcher
/// (<c>XxxOp.Launch</c>), asynchronously on the accelerator's default stream. One op may launch several kernels (a
/// convolution's filter gradient its split-K partials, then their sum); <see cref="KernelLaunches"/> counts them. Workspace an op needs
/// is rented from the device's caching pool and given back when the op returns: launches stay ordered on the stream,
/// so the next op that rents the buffer runs after the kernels that used it.
/// </summary>
internal sealed class IlgpuBackend : Backend
{
    private readonly Device _device;
    private readonly Context _context;
    private readonly Accelerator _accelerator;

    public IlgpuBackend(Device device, Context context, Accelerator accelerator)
    {
        _device = device;
        _context = context;
        _accelerator = accelerator;
        Kernels = new KernelCache(accelerator);
    }

    /// <summary>The loaded kernels (and through it the accelerator).</summary>
    public KernelCache Kernels { get; }

    /// <inheritdoc/>
    public override long KernelLaunches => Kernels.Launches;

    private static ArrayView<int> Ints(Tensor t) => t.View.Cast<int>();

    // ---- memory ---------------------------------------------------------------------------------------------------

    public override DeviceBuffer Allocate(Device device, long length) => new IlgpuBuffer(device, _accelerator, length);

    public override void CopyToHost(Tensor source, Span<float> destination)
    {
        _accelerator.Synchronize();
        source.View.CopyToCPU(destination);
    }

    public override void CopyFromHost(ReadOnlySpan<float> source, Tensor destination) => destination.View.CopyFromCPU(source);
    public override void Synchronize() => _accelerator.Synchronize();

    // Staged uploads. ILGPU 1.5.3's CopyFromCPU and CopyFromPageLockedAsync synchronise the stream on every backend
    // but CUDA (no page-lock support on OpenCL and the CPU accelerator). The buffer-level copy on the stream does not:
    // CUDA cuMemcpyHtoDAsync from page-locked memory, OpenCL a non-blocking clEnqueueWriteBuffer, the CPU accelerator
    // a memcpy on the calling thread (its launches are synchronous too). What marks the copy's completion, so the
    // host knows when it may overwrite the staging memory: a CUDA event, an OpenCL marker event, nothing on the CPU
    // accelerator (done on return).
    public override StagingBuffer AllocateStaging(Device device, int length)
    {
        var pinned = new PinnedStaging(_accelerator, length);
        return new StagingBuffer(device, pinned.Array, pinned);
    }

    public override void UploadAsync(StagingBuffer source, Tensor destination)
    {
        var stream = _accelerator.DefaultStream;
        destination.View.CopyFrom(stream, ((PinnedStaging)source.Native!).Source(destination.Length));
        switch (stream)
        {
            case CudaStream cuda:
            {
                using var bind = _accelerator.BindScoped();
                IntPtr e = source.PendingUpload;
                if (e == IntPtr.Zero) CudaException.ThrowIfFailed(CudaAPI.CurrentAPI.CreateEvent(out e, CudaEventFlags.CU_EVENT_DISABLE_TIMING));
                CudaException.ThrowIfFailed(CudaAPI.CurrentAPI.RecordEvent(e, cuda.StreamPtr));
                source.PendingUpload = e;
                _cudaEvents.Add(e);
                break;
            }
            case CLStream cl:
                if (source.PendingUpload != IntPtr.Zero) OpenClEvents.Release(source.PendingUpload);
                source.PendingUpload = OpenClEvents.Marker(cl.CommandQueue);
                break;
        }
    }

    public override void WaitForUpload(StagingBuffer buffer)
    {
        IntPtr e = buffer.PendingUpload;
        if (_accelerator is CudaAccelerator)
        {
            // the event is kept for the buffer's next upload; a completed event waits for nothing
            using var bind = _accelerator.BindScoped();
            CudaException.ThrowIfFailed(CudaAPI.CurrentAPI.SynchronizeEvent(e));
            return;
        }
        OpenClEvents.Wait(e);
        OpenClEvents.Release(e);
        buffer.PendingUpload = IntPtr.Zero;
    }

    public override void FreeStaging(StagingBuffer buffer)
    {
        if (buffer.PendingUpload != IntPtr.Zero && _accelerator is CudaAccelerator)
        {
            using var bind = _accelerator.BindScoped();
            CudaAPI.CurrentAPI.DestroyEvent(buffer.PendingUpload);
            _cudaEvents.Remove(buffer.PendingUpload);
        }
        buffer.PendingUpload = IntPtr.Zero;
        buffer.Native!.Dispose();
    }

    /// <summary>
    /// A page-locked host array and, per upload length, a CPU buffer over its first elements: ILGPU 1.5.3's OpenCL
    /// copy writes the source *buffer's* whole length whatever the view's (CLMemoryBuffer.CLCopy), so each length
    /// gets a buffer of exactly that length, made once (a staging buffer sees one or two lengths: full and short batch).
    /// </summary>
    private sealed class PinnedStaging(Accelerator accelerator, int length) : IDisposable
    {
        private readonly PageLockedArray1D<float> _pinned = accelerator.AllocatePageLocked1D<float>(length, uninitialized: true);
        private readonly Dictionary<long, MemoryBuffer> _byLength = new();

        public float[] Array => _pinned.GetArray();

        public ArrayView<float> Source(long length)
        {
            if (!_byLength.TryGetValue(length, out var b))
                _byLength[length] = b = CPUMemoryBuffer.Create(accelerator, Marshal.UnsafeAddrOfPinnedArrayElement(Array, 0), length, sizeof(float));
            return b.AsArrayView<float>(0, length);
        }

        public void Dispose()
        {
            foreach (var b in _byLength.Values) b.Dispose();
            _pinned.Dispose();
        }
    }

    // CUDA events of live staging buffers (one per buffer, reused), destroyed with the accelerator if still alive.
    private readonly HashSet<IntPtr> _cudaEvents = new();

    /// <summary>The three OpenCL 1.2 calls a staged upload needs and ILGPU 1.5.3 does not expose.</summary>
    private static class OpenClEvents
    {
        [DllImport("OpenCL")] private static extern int clEnqueueMarkerWithWaitList(IntPtr queue, uint count, IntPtr waitList, out IntPtr evt);
        [DllImport("OpenCL")] private static extern int clWaitForEvents(uint count, ref IntPtr events);
        [DllImport("OpenCL")] private static extern int clReleaseEvent(IntPtr evt);

        /// <summary>An event that completes when everything queued on <paramref name="queue"/> so far has.</summary>
        public static IntPtr Marker(IntPtr queue)
        {
            Check(clEnqueueMarkerWithWaitList(queue, 0, IntPtr.Zero, out var e), "clEnqueueMarkerWithWaitList");
            return e;
        }

        public static void Wait(IntPtr e) => Check(clWaitForEvents(1, ref e), "clWaitForEvents");
        public static void Release(IntPtr e) => Check(clReleaseEvent(e), "clReleaseEvent");

        private static void Check(int error, string call)
        {
            if (error != 0) throw new InvalidOperationException($"{call} failed with OpenCL error {error}");
        }
    }

    public override void Dispose()
    {
        if (_cudaEvents.Count > 0)
        {
            using (_accelerator.BindScoped())
                foreach (var e in _cudaEvents) CudaAPI.CurrentAPI.DestroyEvent(e);
            _cudaEvents.Clear();
        }
        _accelerator.Dispose();
        _context.Dispose();
    }

    /// <summary>Workspace of <paramref name="length"/> floats from the device's pool, given back by Dispose.</summary>
    private Scratch RentScratch(int length) => new(_device, _device.Rent(length), length);

    /// <summary>
    /// A rented workspace. A struct, so a steady-state op allocates neither device nor managed memory for it.
    /// </summary>
    private readonly struct Scratch(Device device, DeviceBuffer buffer, int length) : IDisposable
    {
        public ArrayView<float> View => ((IlgpuBuffer)buffer).Memory.View.SubView(0, length);
        public void Dispose() => device.Release(buffer);
    }

    // ---- elementwise ----------------------------------------------------------------------------------------------

    public override void Binary(BinaryOp op, Tensor a, Tensor b, Tensor c) => ElementwiseOp.Launch(Kernels, op, a.View, b.View, c.View);
    public override void Scale(float alpha, Tensor x, Tensor y) => ElementwiseOp.LaunchScale(Kernels, alpha, x.View, y.View);
    public override void Axpy(float alpha, Tensor x, Tensor y) => ElementwiseOp.LaunchAxpy(Kernels, alpha, x.View, y.View);
    public override void Fill(Tensor x, float value) => ElementwiseOp.LaunchFill(Kernels, value, x.View);
    public override void Copy(Tensor src, Tensor dst) => ElementwiseOp.LaunchCopy(Kernels, src.View, dst.View);

    // ---- activations, softmax, dropout ----------------------------------------------------------------------------

    public override void ActivationForward(Activation act, float alpha, Tensor x, Tensor y) => ActivationOp.Launch(Kernels, act, alpha, x.View, y.View);

    public override void ActivationBackward(Activation act, float alpha, Tensor x, Tensor y, Tensor dy, Tensor dx)
        => ActivationOp.LaunchBackward(Kernels, act, alpha, x.View, y.View, dy.View, dx.View);

    public override void Softmax(bool log, int rows, int cols, Tensor x, Tensor y) => SoftmaxOp.Launch(Kernels, log, rows, cols, x.View, y.View);

    public override void SoftmaxBackward(bool log, int rows, int cols, Tensor y, Tensor dy, Tensor dx)
        => SoftmaxOp.LaunchBackward(Kernels, log, rows, cols, y.View, dy.View, dx.View);

    public override void Dropout(float p, ulong seed, long step, Tensor x, Tensor y) => DropoutOp.Launch(Kernels, p, seed, step, x.View, y.View);

    // ---- GEMM and convolutions ------------------------------------------------------------------------------------

    // The device's math mode picks the kernel: TF32 tensor cores (a software model of them off CUDA) or float32, whose
    // split-K partial sums (when the shape splits) are rented from the pool.
    public override void Gemm(bool transA, bool transB, int m, int n, int k, float alpha, Tensor a, Tensor b, float beta, Tensor c,
        Tensor? bias, Activation activation, float activationAlpha)
    {
        if (_device.MathMode == MatmulMath.Tf32)
        {
            GemmTf32Op.Launch(Kernels, transA, transB, m, n, k, alpha, a.View, b.View, beta, c.View, bias?.View ?? default, activation, activationAlpha);
            return;
        }
        using var partials = RentScratch((int)Math.Max(1, GemmOp.WorkspaceFloats(m, n, k)));
        GemmOp.Launch(Kernels, transA, transB, m, n, k, alpha, a.View, b.View, beta, c.View, bias?.View ?? default, activation, activationAlpha,
            partials.View);
    }

    // Convolutions: one implicit-GEMM launch per pass; the filter gradient rents split-K partials when it splits.
    public override void Conv2dForward(in Conv2dShape s, Tensor x, Tensor w, Tensor? b, Tensor y)
        => Conv2dOp.Launch(Kernels, s, x.View, w.View, b?.View ?? default, y.View);

    public override void Conv2dBackwardData(in Conv2dShape s, Tensor dy, Tensor w, Tensor dx)
        => Conv2dOp.LaunchBackwardData(Kernels, s, dy.View, w.View, dx.View);

    public override void Conv2dBackwardFilter(in Conv2dShape s, Tensor x, Tensor dy, Tensor dw, Tensor? db)
    {
        using var ws = RentScratch(Math.Max(1, Conv2dOp.WorkspaceFloats(s)));
        Conv2dOp.LaunchBackwardFilter(Kernels, s, x.View, dy.View, dw.View, db?.View ?? default, ws.View);
    }

    // Depthwise kernels take any view in place of an absent bias (a.HasBias says whether it is read).
    public override void DepthwiseConv2dForward(in DepthwiseParams a, Tensor x, Tensor w, Tensor? b, Tensor y)
        => DepthwiseConv2dOp.Launch(Kernels, a, x.View, w.View, (b ?? w).View, y.View);

    public override void DepthwiseConv2dBackwardData(in DepthwiseParams a, Tensor dy, Tensor w, Tensor dx)
        => DepthwiseConv2dOp.LaunchBackwardData(Kernels, a, dy.View, w.View, dx.View);

    public override void DepthwiseConv2dBackwardFilter(in DepthwiseParams a, Tensor x, Tensor dy, Tensor dw, Tensor? db)
        => DepthwiseConv2dOp.LaunchBackwardFilter(Kernels, a, x.View, dy.View, dw.View, (db ?? dw).View);

    // ---- normalisation and pooling --------------------------------------------------------------------------------

    public override void BatchNormForward(in BatchNormArgs a, Tensor x, Tensor gamma, Tensor beta, Tensor? runningMean, Tensor? runningVar,
        Tensor? saveMean, Tensor? saveInvStd, Tensor y)
        => BatchNormOp.Launch(Kernels, a, x.View, gamma.View, beta.View, runningMean?.View ?? default, runningVar?.View ?? default,
            saveMean?.View ?? default, saveInvStd?.View ?? default, y.View);

    // The backward's per-channel sums (2C) as workspace; y is read only with a.Relu, so dy stands in for it otherwise.
    public override void BatchNormBackward(in BatchNormArgs a, Tensor x, Tensor dy, Tensor? y, Tensor gamma, Tensor saveMean, Tensor saveInvStd,
        Tensor dx, Tensor dGamma, Tensor dBeta)
    {
        using var sums = RentScratch(2 * a.C);
        BatchNormOp.LaunchBackward(Kernels, a, x.View, dy.View, (y ?? dy).View, gamma.View, saveMean.View, saveInvStd.View,
            dx.View, dGamma.View, dBeta.View, sums.View);
    }

    public override void MaxPool2dForward(in Pool2dArgs a, Tensor x, Tensor y, Tensor indices) => MaxPool2dOp.Launch(Kernels, a, x.View, y.View, Ints(indices));
    public override void MaxPool2dBackward(in Pool2dArgs a, Tensor dy, Tensor indices, Tensor dx) => MaxPool2dOp.LaunchBackward(Kernels, a, dy.View, Ints(indices), dx.View);
    public override void AvgPool2dForward(in Pool2dArgs a, Tensor x, Tensor y) => AvgPool2dOp.Launch(Kernels, a, x.View, y.View);
    public override void AvgPool2dBackward(in Pool2dArgs a, Tensor dy, Tensor dx) => AvgPool2dOp.LaunchBackward(Kernels, a, dy.View, dx.View);
    public override void GlobalAvgPoolForward(int planes, int size, Tensor x, Tensor y) => GlobalAvgPoolOp.Launch(Kernels, planes, size, x.View, y.View);
    public override void GlobalAvgPoolBackward(int planes, int size, Tensor dy, Tensor dx) => GlobalAvgPoolOp.LaunchBackward(Kernels, planes, size, dy.View, dx.View);

    // ---- reductions -----------------------------------------------------------------------------------------------

    public override void ReduceRows(ReduceOp op, int rows, int cols, Tensor x, Tensor y) => ReductionOp.LaunchRows(Kernels, op, rows, cols, x.View, y.View);
    public override void ReduceCols(ReduceOp op, int rows, int cols, Tensor x, float beta, Tensor y) => ReductionOp.LaunchCols(Kernels, op, rows, cols, x.View, beta, y.View);

    // Compensated partial sums (value and compensation per partial) as workspace, then one finishing kernel.
    public override void Sum(Tensor x, Tensor result)
    {
        using var partials = RentScratch(2 * GlobalSumOp.PartialCount(_accelerator, x.Length));
        GlobalSumOp.Launch(Kernels, x.View, partials.View, result.View);
    }

    public override void ArgmaxRows(int rows, int cols, Tensor x, Tensor indices) => ArgmaxOp.Launch(Kernels, rows, cols, x.View, Ints(indices));

    // ---- losses ---------------------------------------------------------------------------------------------------

    // Per-block partial losses as workspace, summed in a fixed order by a second kernel (bit-identical run to run).
    public override void PointwiseLoss(PointwiseLossKind kind, Tensor input, Tensor target, Tensor loss, Tensor? grad,
        LossReduction reduction, float gradScale)
    {
        using var partial = RentScratch(LossCommon.PartialCount((int)input.Length));
        var (i, t, l, g, p) = (input.View, target.View, loss.View, grad?.View ?? default, partial.View);
        switch (kind)
        {
            case PointwiseLossKind.MeanSquaredError: MseLossOp.Launch(Kernels, i, t, l, g, grad is not null, p, reduction, gradScale); break;
            case PointwiseLossKind.BceWithLogits: BceWithLogitsLossOp.Launch(Kernels, i, t, l, g, grad is not null, p, reduction, gradScale); break;
            default: HingeLossOp.Launch(Kernels, i, t, l, g, grad is not null, p, reduction, gradScale); break;
        }
    }

    // Per-row losses as workspace, summed in a fixed order.
    public override void ClassLoss(ClassLossKind kind, Tensor input, Tensor labels, Tensor loss, Tensor? grad, int rows, int classes,
        LossReduction reduction, float labelSmoothing, float gradScale)
    {
        using var rowLoss = RentScratch(rows);
        var g = grad?.View ?? default;
        if (kind == ClassLossKind.SoftmaxCrossEntropy)
            SoftmaxCrossEntropyLossOp.Launch(Kernels, input.View, Ints(labels), loss.View, g, grad is not null, rowLoss.View, rows, classes,
                reduction, labelSmoothing, gradScale);
        else
            MultiMarginLossOp.Launch(Kernels, input.View, Ints(labels), loss.View, g, grad is not null, rowLoss.View, rows, classes,
                reduction, gradScale);
    }

    // ---- optimizer ------------------------------------------------------------------------------------------------

    // Absent states are never read: the parameter view stands in for them. The norm stays on the device (slot a.Slot).
    public override void OptimizerStep(Tensor p, Tensor g, Tensor? s1, Tensor? s2, Tensor? s3, Tensor? segs, Tensor? table, Tensor? norm,
        int[] segStarts, int[] segGroups, float[] hostTable, in OptimizerParams a, ref double hostSumSquares)
    {
        var segView = Ints(segs!);
        if ((a.Flags & OptimizerParams.FlagClipNorm) != 0)
            OptimizerOp.LaunchSumSquares(Kernels, g.View, segView, table!.View, norm!.View, a.Segments, a.Slot);
        var pv = p.View;
        OptimizerOp.Launch(Kernels, pv, g.View, s1?.View ?? pv, s2?.View ?? pv, s3?.View ?? pv, segView, table!.View, norm!.View, a);
    }
}
