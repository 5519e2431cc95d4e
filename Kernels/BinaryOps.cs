using System.Numerics.Tensors;
using System.Runtime.CompilerServices;

namespace GpuNet.Kernels;

// One struct per BinaryOp value: scalar (kernel-safe) form, host span form (TensorPrimitives), float64 reference.

/// <summary>c = a + b.</summary>
public readonly struct AddOp : IBinaryOp
{
    /// <inheritdoc/>
    public BinaryOp Kind => BinaryOp.Add;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Apply(float a, float b) => a + b;
    /// <inheritdoc/>
    public double Reference(double a, double b) => a + b;
    /// <inheritdoc/>
    public void ApplySpan(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c) => TensorPrimitives.Add(a, b, c);
}

/// <summary>c = a - b.</summary>
public readonly struct SubOp : IBinaryOp
{
    /// <inheritdoc/>
    public BinaryOp Kind => BinaryOp.Sub;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Apply(float a, float b) => a - b;
    /// <inheritdoc/>
    public double Reference(double a, double b) => a - b;
    /// <inheritdoc/>
    public void ApplySpan(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c) => TensorPrimitives.Subtract(a, b, c);
}

/// <summary>c = a * b.</summary>
public readonly struct MulOp : IBinaryOp
{
    /// <inheritdoc/>
    public BinaryOp Kind => BinaryOp.Mul;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Apply(float a, float b) => a * b;
    /// <inheritdoc/>
    public double Reference(double a, double b) => a * b;
    /// <inheritdoc/>
    public void ApplySpan(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c) => TensorPrimitives.Multiply(a, b, c);
}
