using ILGPU;
using ILGPU.Runtime;

namespace GpuNet;

/// <summary>
/// Raw storage of 4-byte elements on one device. Owned by exactly one <see cref="Tensor"/> at a time; when that tensor
/// is disposed the buffer goes back to its device's caching pool and its <see cref="Generation"/> advances, which
/// invalidates every view taken of the old owner.
/// </summary>
internal abstract class DeviceBuffer
{
    protected DeviceBuffer(Device device, long length)
    {
        Device = device;
        Length = length;
    }

    public Device Device { get; }
    public long Length { get; }
    public long Bytes => Length * sizeof(float);
    public int Generation { get; set; }

    /// <summary>Frees the memory for real (called by the pool, never by a tensor).</summary>
    public abstract void Free();
}

/// <summary>Host memory of the <c>cpu</c> device: a plain managed array.</summary>
internal sealed class HostBuffer : DeviceBuffer
{
    public HostBuffer(Device device, long length) : base(device, length)
    {
        if (length > System.Array.MaxLength) throw new ArgumentOutOfRangeException(nameof(length), length, $"a cpu buffer holds at most {System.Array.MaxLength} elements");
        Array = GC.AllocateUninitializedArray<float>((int)length, pinned: true);
    }

    public float[] Array { get; }
    public override void Free() { }
}

/// <summary>Memory of an ILGPU accelerator (CUDA, OpenCL or the CPU accelerator).</summary>
internal sealed class IlgpuBuffer : DeviceBuffer
{
    public IlgpuBuffer(Device device, Accelerator accelerator, long length) : base(device, length)
        => Memory = accelerator.Allocate1D<float>(Math.Max(length, 1));

    public MemoryBuffer1D<float, Stride1D.Dense> Memory { get; }
    public override void Free() => Memory.Dispose();
}
