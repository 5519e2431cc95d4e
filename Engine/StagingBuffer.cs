namespace GpuNet;

/// <summary>
/// Pinned (page-locked where the device supports it) host memory from which <see cref="Tensor.CopyFromAsync"/>
/// uploads without synchronising the device: the copy is queued behind the launched work and the call returns at
/// once. The buffer remembers its last upload; reading <see cref="Array"/> or <see cref="Span"/> to fill it again
/// first waits for that one copy to have read it (on CUDA an event, on OpenCL a marker; on ILGPU's CPU accelerator
/// and the <c>cpu</c> device the copy is done when the call returns), never for the whole device. Fill two buffers
/// in turn and the wait is for the copy of two batches ago. Dispose it before its device.
/// </summary>
public sealed class StagingBuffer : IDisposable
{
    private readonly float[] _array;

    internal StagingBuffer(Device device, float[] array, IDisposable? native)
    {
        Device = device;
        _array = array;
        Native = native;
    }

    /// <summary>The device this buffer uploads to.</summary>
    public Device Device { get; }
    /// <summary>Capacity in 4-byte elements.</summary>
    public int Length => _array.Length;
    /// <summary>True once disposed.</summary>
    public bool IsDisposed { get; private set; }

    /// <summary>The backend's page-locked allocation behind <see cref="Array"/> (null on the <c>cpu</c> device).</summary>
    internal IDisposable? Native { get; }
    /// <summary>The backend's event of the last upload that read this buffer (zero: none pending).</summary>
    internal IntPtr PendingUpload { get; set; }

    /// <summary>The pinned host memory, safe to overwrite: waits first for the last upload that read it.</summary>
    public float[] Array
    {
        get
        {
            ObjectDisposedException.ThrowIf(IsDisposed, this);
            Device.WaitForUpload(this);
            return _array;
        }
    }

    /// <summary><see cref="Array"/> as a span (waits the same way).</summary>
    public Span<float> Span => Array.AsSpan();

    /// <summary>The memory without waiting: for the backend's copy only.</summary>
    internal float[] Unsynchronized => _array;

    /// <summary>Waits for the last upload, then frees the memory.</summary>
    public void Dispose()
    {
        if (IsDisposed) return;
        Device.WaitForUpload(this);
        IsDisposed = true;
        Device.FreeStaging(this);
    }

    /// <inheritdoc/>
    public override string ToString() => $"StagingBuffer({Length}) for {Device.Name}{(IsDisposed ? " (disposed)" : "")}";
}
