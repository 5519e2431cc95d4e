using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;

namespace GpuNet;

/// <summary>
/// A shape plus a range of one device buffer. A tensor made by <see cref="Device.Allocate"/> or
/// <see cref="Device.FromArray(float[], int[])"/> owns its buffer and gives it back to the device when disposed.
/// A view (<see cref="Reshape"/>, <see cref="Slice"/>) shares the owner's buffer, owns nothing, and becomes unusable
/// once the owner is disposed. Copies to and from host memory are explicit and counted.
/// </summary>
public sealed class Tensor : IDisposable
{
    private readonly int[] _shape;
    private readonly int _generation;
    private readonly bool _owner;
    private bool _disposed;

    internal Tensor(DeviceBuffer buffer, long offset, int[] shape, DType dtype, bool owner)
    {
        Buffer = buffer;
        Offset = offset;
        _shape = shape;
        DType = dtype;
        Length = ShapeUtil.Count(shape);
        _generation = buffer.Generation;
        _owner = owner;
    }

    internal DeviceBuffer Buffer { get; }
    internal long Offset { get; }

    /// <summary>The device whose memory holds the elements.</summary>
    public Device Device => Buffer.Device;
    /// <summary>Element type.</summary>
    public DType DType { get; }
    /// <summary>Number of elements (product of the shape).</summary>
    public long Length { get; }
    /// <summary>Number of dimensions.</summary>
    public int Rank => _shape.Length;
    /// <summary>The shape, outermost dimension first (row-major).</summary>
    public ReadOnlySpan<int> Shape => _shape;
    /// <summary>Size of dimension <paramref name="axis"/>; negative axes count from the end.</summary>
    public int Dim(int axis) => _shape[axis < 0 ? _shape.Length + axis : axis];
    /// <summary>True for a view that does not own its buffer.</summary>
    public bool IsView => !_owner;
    /// <summary>True once this tensor, or the owner of the buffer it views, was disposed.</summary>
    public bool IsDisposed => _disposed || Buffer.Generation != _generation;

    /// <summary>A view of the same elements with another shape of the same element count.</summary>
    public Tensor Reshape(params int[] shape)
    {
        ThrowIfDisposed("Reshape");
        ShapeUtil.Validate(shape, nameof(shape));
        if (ShapeUtil.Count(shape) != Length)
            throw new ShapeMismatchException("Reshape", ShapeUtil.Format(_shape), ShapeUtil.Format(shape),
                $"element count {Length} vs {ShapeUtil.Count(shape)}");
        return new Tensor(Buffer, Offset, (int[])shape.Clone(), DType, owner: false);
    }

    /// <summary>A view of <c>count(shape)</c> consecutive elements starting at flat index <paramref name="start"/>.</summary>
    public Tensor Slice(long start, params int[] shape)
    {
        ThrowIfDisposed("Slice");
        ShapeUtil.Validate(shape, nameof(shape));
        long n = ShapeUtil.Count(shape);
        if (start < 0 || start + n > Length)
            throw new ArgumentOutOfRangeException(nameof(start), start, $"Slice: range [{start}, {start + n}) must lie inside [0, {Length}) of a tensor of shape {ShapeUtil.Format(_shape)}");
        return new Tensor(Buffer, Offset + start, (int[])shape.Clone(), DType, owner: false);
    }

    /// <summary>Copies the elements to a new host array (float32 tensors).</summary>
    public float[] ToArray()
    {
        RequireDType(DType.Float32, "ToArray");
        var result = new float[Length];
        CopyBitsTo(result, "ToArray");
        return result;
    }

    /// <summary>Copies the elements to a new host array (int32 tensors).</summary>
    public int[] ToInt32Array()
    {
        RequireDType(DType.Int32, "ToInt32Array");
        var result = new int[Length];
        CopyBitsTo(MemoryMarshal.Cast<int, float>(result.AsSpan()), "ToInt32Array");
        return result;
    }

    /// <summary>Copies the elements of a float32 tensor into <paramref name="destination"/>, whose length must equal <see cref="Length"/>.</summary>
    /// <exception cref="ArgumentException">The tensor is not float32, or the length differs.</exception>
    public void CopyTo(Span<float> destination)
    {
        RequireDType(DType.Float32, "CopyTo", nameof(destination));
        CopyBitsTo(destination, "CopyTo");
    }

    /// <summary>Copies the elements of an int32 tensor into <paramref name="destination"/>, whose length must equal <see cref="Length"/>.</summary>
    /// <exception cref="ArgumentException">The tensor is not int32, or the length differs.</exception>
    public void CopyTo(Span<int> destination)
    {
        RequireDType(DType.Int32, "CopyTo", nameof(destination));
        CopyBitsTo(MemoryMarshal.Cast<int, float>(destination), "CopyTo");
    }

    /// <summary>Copies <paramref name="source"/>, whose length must equal <see cref="Length"/>, into a float32 tensor.</summary>
    /// <exception cref="ArgumentException">The tensor is not float32 (int32 labels take the int overload), or the length differs.</exception>
    public void CopyFrom(ReadOnlySpan<float> source)
    {
        RequireDType(DType.Float32, "CopyFrom", nameof(source));
        CopyBitsFrom(source, "CopyFrom");
    }

    /// <summary>
    /// Queues a copy of the first <see cref="Length"/> elements of <paramref name="source"/> (float32, or int32 bits
    /// for an int32 tensor) into the tensor and returns without waiting for the device: the copy runs after the work
    /// launched before it and before the work launched after it. The staging buffer must not be changed until then,
    /// which its <see cref="StagingBuffer.Array"/> getter ensures.
    /// </summary>
    public void CopyFromAsync(StagingBuffer source)
    {
        ArgumentNullException.ThrowIfNull(source);
        ThrowIfDisposed("CopyFromAsync");
        ObjectDisposedException.ThrowIf(source.IsDisposed, source);
        if (!ReferenceEquals(source.Device, Device))
            throw new ArgumentException($"CopyFromAsync: the staging buffer is for device '{source.Device.Name}', the tensor lives on '{Device.Name}'", nameof(source));
        if (source.Length < Length)
            throw new ArgumentException($"CopyFromAsync: the staging buffer holds {source.Length} elements, the tensor {ShapeUtil.Format(_shape)} needs {Length}", nameof(source));
        Device.UploadAsync(source, this);
    }

    /// <summary>Copies int32 <paramref name="source"/>, whose length must equal <see cref="Length"/>, into an int32 tensor.</summary>
    /// <exception cref="ArgumentException">The tensor is not int32, or the length differs.</exception>
    public void CopyFrom(ReadOnlySpan<int> source)
    {
        RequireDType(DType.Int32, "CopyFrom", nameof(source));
        CopyBitsFrom(MemoryMarshal.Cast<int, float>(source), "CopyFrom");
    }

    // The element copies without a dtype check: `bits` holds each element's 4-byte pattern (int32 bits for Int32).
    private void CopyBitsTo(Span<float> bits, string op)
    {
        ThrowIfDisposed(op);
        if (bits.Length != Length)
            throw new ArgumentException($"{op}: destination has {bits.Length} elements, the tensor {ShapeUtil.Format(_shape)} has {Length}", "destination");
        Device.CopyToHost(this, bits);
    }

    internal void CopyBitsFrom(ReadOnlySpan<float> bits, string op)
    {
        ThrowIfDisposed(op);
        if (bits.Length != Length)
            throw new ArgumentException($"{op}: source has {bits.Length} elements, the tensor {ShapeUtil.Format(_shape)} has {Length}", "source");
        Device.CopyFromHost(bits, this);
    }

    /// <summary>Gives an owned buffer back to its device; disposing a view only marks the view unusable.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_owner && Buffer.Generation == _generation) Buffer.Device.Release(Buffer);
    }

    /// <inheritdoc/>
    public override string ToString() => $"Tensor{ShapeUtil.Format(_shape)} {DType} on {Device.Name}{(IsView ? " (view)" : "")}{(IsDisposed ? " (disposed)" : "")}";

    internal void ThrowIfDisposed(string op)
    {
        if (IsDisposed)
            throw new ObjectDisposedException(nameof(Tensor), $"{op}: the tensor of shape {ShapeUtil.Format(_shape)} {(_disposed ? "was disposed" : "is a view of a disposed tensor")}");
    }

    internal void RequireDType(DType expected, string op, string? paramName = null)
    {
        if (DType != expected)
            throw new ArgumentException($"{op}: expected a {expected} tensor, got {DType} of shape {ShapeUtil.Format(_shape)}", paramName);
    }

    /// <summary>Host range of a cpu-device tensor.</summary>
    internal ArraySegment<float> Host => new(((HostBuffer)Buffer).Array, (int)Offset, (int)Length);

    /// <summary>ILGPU view of an accelerator tensor.</summary>
    internal ArrayView<float> View => ((IlgpuBuffer)Buffer).Memory.View.SubView(Offset, Length);
}
