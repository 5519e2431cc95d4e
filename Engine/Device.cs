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

/// <summary>
/// Precision of a device's float32 matrix multiplies, as PyTorch's <c>allow_tf32</c>: <see cref="Fp32"/> (the default)
/// or <see cref="Tf32"/>, which rounds A and B to TF32 (10-bit mantissa) and runs them on tensor cores.
/// </summary>
public enum MatmulMath
{
    /// <summary>float32 products and sums throughout.</summary>
    Fp32,
    /// <summary>GEMM operands rounded to TF32 (<c>cvt.rna</c>), products and sums in float32: tensor cores on CUDA sm_80+.</summary>
    Tf32,
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

    /// <summary>Environment variable with the default <see cref="MatmulMath"/> of new devices: <c>fp32</c> or <c>tf32</c>.</summary>
    public const string MathEnvironmentVariable = "GPUNET_MATH";

    private readonly Backend _backend;
    private readonly Dictionary<long, Stack<DeviceBuffer>> _pool = new();
    private readonly object _poolLock = new();
    private bool _disposed;

    // The host backend when there is no accelerator; otherwise the ILGPU backend, which takes over the context too.
    private Device(DeviceInfo info, Context? context, Accelerator? accelerator)
    {
        // First, so that a bad GPUNET_MATH fails before a backend exists (the caller disposes the context).
        _mathMode = ParseMathMode(Environment.GetEnvironmentVariable(MathEnvironmentVariable), MathEnvironmentVariable) ?? MatmulMath.Fp32;
        Info = info;
        _backend = accelerator is null ? new HostBackend()
            : new IlgpuBackend(this, context ?? throw new ArgumentNullException(nameof(context), $"device '{info.Name}': an accelerator needs its ILGPU context"), accelerator);
        Counters = new DeviceCounters(_backend);
    }

    private MatmulMath _mathMode;

    /// <summary>
    /// Precision of <see cref="Gemm"/> (and of the layers built on it) on this device; default from
    /// <c>GPUNET_MATH</c>, else <see cref="MatmulMath.Fp32"/>. <see cref="MatmulMath.Tf32"/> runs the TF32 tensor-core
    /// GEMM on every ILGPU device (<c>cuda</c> sm_80+: <c>mma.sync</c>; <c>ilgpu-cpu</c> and <c>opencl</c>: the same
    /// kernel with an exact software model of the instruction). The <c>cpu</c> device always computes in float32:
    /// there the setting is kept but has no effect. Convolutions compute in float32 whatever the mode.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Set to a value that is not a defined <see cref="MatmulMath"/>.</exception>
    public MatmulMath MathMode
    {
        get => _mathMode;
        set => _mathMode = Enum.IsDefined(value) ? value
            : throw new ArgumentOutOfRangeException(nameof(value), value, $"MathMode: expected {string.Join(" or ", Enum.GetNames<MatmulMath>())}, got {(int)value}");
    }

    /// <summary>
    /// Parses a math mode name, <c>fp32</c> or <c>tf32</c> (case-insensitive, surrounding blanks ignored); null or
    /// empty gives null (no choice made). <paramref name="source"/> names where the value came from (an environment
    /// variable, a command-line option) in the error.
    /// </summary>
    /// <exception cref="ArgumentException">Any other value; the message names the source, the allowed values and the value.</exception>
    public static MatmulMath? ParseMathMode(string? value, string source)
    {
        if (string.IsNullOrWhiteSpace(value)) return null;
        return value.Trim().ToLowerInvariant() switch
        {
            "fp32" => MatmulMath.Fp32,
            "tf32" => MatmulMath.Tf32,
            _ => throw new ArgumentException($"{source}: '{value}' is not a math mode; expected fp32 or tf32", source),
        };
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

    /// <summary>Waits until every launched kernel has finished (counted in <see cref="DeviceCounters.Synchronizations"/>).</summary>
    public void Synchronize()
    {
        _backend.Synchronize();
        Interlocked.Increment(ref Counters._synchronizations);
    }

    /// <summary>
    /// Pinned host memory of <paramref name="length"/> elements for asynchronous uploads
    /// (<see cref="Tensor.CopyFromAsync"/>): fill <see cref="StagingBuffer.Array"/>, then upload. Page-locked on CUDA.
    /// </summary>
    public StagingBuffer AllocateStaging(int length)
    {
        ThrowIfDisposed();
        ArgumentOutOfRangeException.ThrowIfLessThan(length, 1);
        return _backend.AllocateStaging(this, length);
    }

    internal void UploadAsync(StagingBuffer source, Tensor destination)
    {
        if (destination.Length == 0) return;
        _backend.UploadAsync(source, destination);
        Interlocked.Increment(ref Counters._hostToDevice);
    }

    internal void WaitForUpload(StagingBuffer buffer)
    {
        if (buffer.PendingUpload != IntPtr.Zero) _backend.WaitForUpload(buffer);
    }

    internal void FreeStaging(StagingBuffer buffer) => _backend.FreeStaging(buffer);

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
        Interlocked.Increment(ref Counters._synchronizations);
    }

    internal void CopyFromHost(ReadOnlySpan<float> source, Tensor destination)
    {
        if (destination.Length == 0) return;
        _backend.CopyFromHost(source, destination);
        Interlocked.Increment(ref Counters._hostToDevice);
        Interlocked.Increment(ref Counters._synchronizations);
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
