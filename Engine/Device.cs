using System.Runtime.InteropServices;
using GpuNet.Backends;
using GpuNet.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace GpuNet;

/// <summary>The kinds of device GpuNet runs on.</summary>
public enum DeviceKind
{
    /// <summary>The SIMD host implementation (Vector256/Vector512, TensorPrimitives), multi-threaded. The fast CPU path.</summary>
    Cpu,
    /// <summary>ILGPU's CPU accelerator running the real GPU kernels: for tests and debugging, slow by design.</summary>
    IlgpuCpu,
    /// <summary>An NVIDIA GPU through ILGPU's CUDA backend.</summary>
    Cuda,
    /// <summary>An OpenCL 2.0+ device (a GPU, or a CPU runtime such as PoCL) through ILGPU's OpenCL backend.</summary>
    OpenCL,
}

/// <summary>What a device's hardware is: decides whether <c>auto</c> may pick it.</summary>
public enum DeviceHardware
{
    /// <summary>A GPU (every CUDA device; an OpenCL device of type CL_DEVICE_TYPE_GPU).</summary>
    Gpu,
    /// <summary>The host's cores: the <c>cpu</c> device, or an OpenCL CPU runtime (PoCL, Intel's CPU runtime).</summary>
    Cpu,
    /// <summary>ILGPU's CPU accelerator: one OS thread per simulated GPU thread.</summary>
    Simulator,
    /// <summary>An OpenCL accelerator or custom device (FPGA, DSP): neither a GPU nor a CPU.</summary>
    Other,
}

/// <summary>What is known about a device before or after it is opened.</summary>
/// <param name="Name">The name that selects it (<c>cpu</c>, <c>ilgpu-cpu</c>, <c>cuda</c>, <c>cuda:1</c>, <c>opencl</c>, ...).</param>
/// <param name="Kind">The device kind.</param>
/// <param name="Description">Hardware name.</param>
/// <param name="MemoryBytes">Device memory (host memory for the CPU kinds).</param>
/// <param name="WarpSize">Threads per warp (SIMD lanes of float32 for <c>cpu</c>).</param>
/// <param name="MaxThreadsPerGroup">Largest thread group a kernel may use.</param>
/// <param name="Multiprocessors">Multiprocessors (cores for <c>cpu</c>).</param>
/// <param name="Hardware">What runs the kernels: an OpenCL device can be a GPU or a CPU runtime, which <c>auto</c> never picks.</param>
public sealed record DeviceInfo(string Name, DeviceKind Kind, string Description, long MemoryBytes, int WarpSize, int MaxThreadsPerGroup, int Multiprocessors, DeviceHardware Hardware);

/// <summary>
/// One place tensors live and ops run: the host SIMD path (<c>cpu</c>) or an ILGPU accelerator (<c>cuda</c>,
/// <c>opencl</c>, <c>ilgpu-cpu</c>). A device owns a caching pool: a disposed tensor's buffer is kept and handed to
/// the next allocation of the same length, so steady-state training allocates nothing. Each op validates its
/// arguments (alive, on this device, dtype, shapes) once, then dispatches once to the device's backend (the host SIMD
/// code or the ILGPU kernels) and counts one launch, so launch counts agree across devices.
/// </summary>
public sealed partial class Device : IDisposable
{
    /// <summary>Environment variable that selects the device when none is named.</summary>
    public const string EnvironmentVariable = "GPUNET_DEVICE";

    private readonly Backend _backend;
    private readonly Dictionary<long, Stack<DeviceBuffer>> _pool = new();
    private readonly object _poolLock = new();
    private bool _disposed;

    // The host backend when there is no accelerator; otherwise the ILGPU backend, which takes over the context too.
    private Device(DeviceInfo info, Context? context, Accelerator? accelerator)
    {
        Info = info;
        _backend = accelerator is null ? new HostBackend()
            : new IlgpuBackend(this, context ?? throw new ArgumentNullException(nameof(context), $"device '{info.Name}': an accelerator needs its ILGPU context"), accelerator);
        Counters = new DeviceCounters(_backend);
    }

    /// <summary>Name, kind and properties.</summary>
    public DeviceInfo Info { get; }
    /// <summary>The name that selected this device.</summary>
    public string Name => Info.Name;
    /// <summary>The device kind.</summary>
    public DeviceKind Kind => Info.Kind;
    /// <summary>Launch, copy and memory counters.</summary>
    public DeviceCounters Counters { get; }
    /// <summary>True for the host SIMD path (the <c>cpu</c> device), false for an ILGPU accelerator.</summary>
    public bool IsHost => _backend is HostBackend;
    internal KernelCache Kernels => (_backend as IlgpuBackend)?.Kernels ?? throw new InvalidOperationException("the cpu device has no kernel cache");

    /// <summary>
    /// The one place an op dispatches: counts one launch and returns the backend that runs it. Every op method calls
    /// it exactly once, after validating and after returning early for empty tensors, so <see cref="DeviceCounters.Launches"/>
    /// counts Device op calls and agrees across backends.
    /// </summary>
    private Backend Launch()
    {
        Interlocked.Increment(ref Counters._launches);
        return _backend;
    }

    // ---- memory -------------------------------------------------------------------------------------------------

    /// <summary>A new tensor of <paramref name="shape"/>, all elements zero.</summary>
    public Tensor Allocate(int[] shape, DType dtype = DType.Float32)
    {
        var t = AllocateUninitialized(shape, dtype);
        if (t.Length > 0) FillCore(t, 0f);
        return t;
    }

    /// <summary>A new float32 tensor of <paramref name="shape"/>, all elements zero.</summary>
    public Tensor Zeros(params int[] shape) => Allocate(shape);

    /// <summary>A new tensor of <paramref name="shape"/> whose contents are unspecified (possibly a reused buffer).</summary>
    public Tensor AllocateUninitialized(int[] shape, DType dtype = DType.Float32)
    {
        ThrowIfDisposed();
        ShapeUtil.Validate(shape, nameof(shape));
        long n = ShapeUtil.Count(shape);
        return new Tensor(Rent(n), 0, (int[])shape.Clone(), dtype, owner: true);
    }

    /// <summary>A new float32 tensor holding a copy of <paramref name="data"/> with <paramref name="shape"/> (default: 1-D).</summary>
    public Tensor FromArray(float[] data, params int[] shape)
    {
        ArgumentNullException.ThrowIfNull(data);
        return FromHost(data, shape, DType.Float32);
    }

    /// <summary>A new int32 tensor holding a copy of <paramref name="data"/> with <paramref name="shape"/> (default: 1-D).</summary>
    public Tensor FromArray(int[] data, params int[] shape)
    {
        ArgumentNullException.ThrowIfNull(data);
        return FromHost(MemoryMarshal.Cast<int, float>(data.AsSpan()), shape, DType.Int32);
    }

    // data: the elements' 4-byte patterns (int32 bits for DType.Int32).
    private Tensor FromHost(ReadOnlySpan<float> data, int[] shape, DType dtype)
    {
        if (shape.Length == 0) shape = [data.Length];
        ShapeUtil.Validate(shape, nameof(shape));
        if (ShapeUtil.Count(shape) != data.Length)
            throw new ShapeMismatchException("FromArray", ShapeUtil.Format(shape), $"({data.Length})", $"shape holds {ShapeUtil.Count(shape)} elements, data has {data.Length}");
        var t = AllocateUninitialized(shape, dtype);
        t.CopyBitsFrom(data, "FromArray");
        return t;
    }

    /// <summary>Frees every buffer the caching pool holds.</summary>
    public void TrimPool()
    {
        lock (_poolLock)
        {
            foreach (var stack in _pool.Values)
                while (stack.TryPop(out var b))
                {
                    Interlocked.Add(ref Counters._pooledBytes, -b.Bytes);
                    b.Free();
                }
            _pool.Clear();
        }
    }

    /// <summary>Waits until every launched kernel has finished.</summary>
    public void Synchronize() => _backend.Synchronize();

    /// <summary>A buffer of <paramref name="length"/> elements from the pool, else newly allocated; counted live.</summary>
    internal DeviceBuffer Rent(long length)
    {
        lock (_poolLock)
        {
            if (_pool.TryGetValue(length, out var stack) && stack.TryPop(out var reused))
            {
                Interlocked.Add(ref Counters._pooledBytes, -reused.Bytes);
                Counters.Allocated(reused.Bytes);
                return reused;
            }
        }
        var b = _backend.Allocate(this, length);
        Interlocked.Increment(ref Counters._allocations);
        Counters.Allocated(b.Bytes);
        return b;
    }

    internal void Release(DeviceBuffer buffer)
    {
        buffer.Generation++;
        Counters.Released(buffer.Bytes);
        if (_disposed) { buffer.Free(); return; }
        lock (_poolLock)
        {
            if (!_pool.TryGetValue(buffer.Length, out var stack)) _pool[buffer.Length] = stack = new Stack<DeviceBuffer>();
            stack.Push(buffer);
            Interlocked.Add(ref Counters._pooledBytes, buffer.Bytes);
        }
    }

    internal void CopyToHost(Tensor source, Span<float> destination)
    {
        if (source.Length == 0) return;
        _backend.CopyToHost(source, destination);
        Interlocked.Increment(ref Counters._deviceToHost);
    }

    internal void CopyFromHost(ReadOnlySpan<float> source, Tensor destination)
    {
        if (destination.Length == 0) return;
        _backend.CopyFromHost(source, destination);
        Interlocked.Increment(ref Counters._hostToDevice);
    }

    private void ThrowIfDisposed()
    {
        if (_disposed) throw new ObjectDisposedException(nameof(Device), $"device '{Name}' was disposed");
    }

    /// <summary>Frees the pool and the accelerator. Tensors still alive become unusable.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        TrimPool();
        _disposed = true;
        _backend.Dispose();
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Name} ({Info.Description})";
}
