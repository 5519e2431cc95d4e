using GpuNet.Backends;

namespace GpuNet;

/// <summary>
/// What a device has done and holds: launches, host&lt;-&gt;device copies, live buffers and bytes, the peak, and
/// how often the caching pool had to allocate for real. Values are read atomically; <see cref="Snapshot"/> copies them.
/// </summary>
public sealed class DeviceCounters
{
    private readonly Backend _backend;
    internal long _launches, _synchronizations, _hostToDevice, _deviceToHost, _liveBytes, _liveBuffers, _peakBytes, _allocations, _pooledBytes;

    internal DeviceCounters(Backend backend) => _backend = backend;

    /// <summary>
    /// Device ops dispatched: one per call of a <see cref="Device"/> op method that does work (0 for a call on empty
    /// tensors), whatever the backend runs for it. The same model counts the same launches per step on every device;
    /// this is the unit of the graph executor and of <see cref="Nn.ModelSummary.LaunchesPerTrainingStep"/>.
    /// </summary>
    public long Launches => Interlocked.Read(ref _launches);
    /// <summary>
    /// ILGPU kernels actually launched (0 on the <c>cpu</c> device, which runs host code). At least
    /// <see cref="Launches"/> on an accelerator: some ops launch several kernels (a split-K GEMM or convolution filter
    /// gradient its partial products then their sum, a loss its partial sums then their total, a clipped optimizer
    /// step a norm pass then the step).
    /// </summary>
    public long KernelLaunches => _backend.KernelLaunches;
    /// <summary>
    /// Times the host waited for the whole device to finish: <see cref="Device.Synchronize"/>, every read to the host,
    /// and every synchronous upload (<see cref="Tensor.CopyFrom(ReadOnlySpan{float})"/>; ILGPU 1.5.3's copy from host
    /// memory synchronises the stream). Uploads through a <see cref="StagingBuffer"/> are asynchronous and not counted.
    /// A training step makes none.
    /// </summary>
    public long Synchronizations => Interlocked.Read(ref _synchronizations);
    /// <summary>Copies from host memory to the device.</summary>
    public long HostToDeviceCopies => Interlocked.Read(ref _hostToDevice);
    /// <summary>Copies from the device to host memory.</summary>
    public long DeviceToHostCopies => Interlocked.Read(ref _deviceToHost);
    /// <summary>Bytes held by live (undisposed) tensors.</summary>
    public long LiveBytes => Interlocked.Read(ref _liveBytes);
    /// <summary>Buffers held by live (undisposed) tensors.</summary>
    public long LiveBuffers => Interlocked.Read(ref _liveBuffers);
    /// <summary>The largest value <see cref="LiveBytes"/> has reached.</summary>
    public long PeakBytes => Interlocked.Read(ref _peakBytes);
    /// <summary>Real allocations made on the device (a pool hit is not one). Flat in steady-state training.</summary>
    public long DeviceAllocations => Interlocked.Read(ref _allocations);
    /// <summary>Bytes of freed buffers kept by the caching pool for reuse.</summary>
    public long PooledBytes => Interlocked.Read(ref _pooledBytes);

    /// <summary>A copy of the current values.</summary>
    public CounterSnapshot Snapshot() => new(Launches, HostToDeviceCopies, DeviceToHostCopies, LiveBytes, LiveBuffers, PeakBytes, DeviceAllocations, PooledBytes, KernelLaunches, Synchronizations);

    internal void Allocated(long bytes)
    {
        long live = Interlocked.Add(ref _liveBytes, bytes);
        Interlocked.Increment(ref _liveBuffers);
        long peak;
        while (live > (peak = Interlocked.Read(ref _peakBytes)) && Interlocked.CompareExchange(ref _peakBytes, live, peak) != peak) { }
    }

    internal void Released(long bytes)
    {
        Interlocked.Add(ref _liveBytes, -bytes);
        Interlocked.Decrement(ref _liveBuffers);
    }
}

/// <summary>Values of <see cref="DeviceCounters"/> at one moment.</summary>
public readonly record struct CounterSnapshot(long Launches, long HostToDeviceCopies, long DeviceToHostCopies, long LiveBytes, long LiveBuffers, long PeakBytes, long DeviceAllocations, long PooledBytes, long KernelLaunches, long Synchronizations);
