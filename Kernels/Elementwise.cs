using System.Numerics.Tensors;
using ILGPU;
using ILGPU.Runtime;

namespace GpuNet.Kernels;

/// <summary>
/// Binary elementwise operations: the user-facing names. Each value is defined by one struct implementing
/// <see cref="IBinaryOp"/>; <see cref="ElementwiseOp.Visit"/> maps the value to its struct, in the only switch over
/// this enum.
/// </summary>
public enum BinaryOp
{
    /// <summary>c = a + b.</summary>
    Add = 0,
    /// <summary>c = a - b.</summary>
    Sub = 1,
    /// <summary>c = a * b.</summary>
    Mul = 2,
}

/// <summary>
/// The whole definition of one binary elementwise op: its float32 scalar form (kernel-safe), its host span form and
/// its float64 reference. The implementing structs are empty; one generic kernel and host loop serve them all.
/// </summary>
public interface IBinaryOp
{
    /// <summary>The enum value this struct defines.</summary>
    BinaryOp Kind { get; }

    /// <summary>a op b in float32; kernel-safe.</summary>
    float Apply(float a, float b);

    /// <summary>float64 reference of a op b.</summary>
    double Reference(double a, double b);

    /// <summary>Host SIMD c = a op b on one thread; c may be a or b.</summary>
    void ApplySpan(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c);
}

/// <summary>
/// A generic operation over binary ops, called by <see cref="ElementwiseOp.Visit"/> with the struct that defines a
/// <see cref="BinaryOp"/> value; implement it as a (ref) struct holding the operation's arguments.
/// </summary>
public interface IBinaryOpVisitor
{
    /// <summary>Runs the operation for the binary op <typeparamref name="TOp"/>.</summary>
    void Visit<TOp>(TOp op) where TOp : struct, IBinaryOp;
}

/// <summary>
/// Elementwise ops over flat arrays of equal length: add, sub, mul, scale, axpy, fill, copy.
/// Gradient contract: these are building blocks; the caller decides overwrite (=) or accumulate (axpy, +=).
/// Backward: d(a+b) = (dc, dc); d(a-b) = (dc, -dc); d(a*b) = (dc*b, dc*a), i.e. Mul and Scale again.
/// </summary>
public static class ElementwiseOp
{
    // ---- the BinaryOp -> struct map ------------------------------------------------------------------------------

    /// <summary>
    /// Calls <paramref name="visitor"/> with the struct that defines <paramref name="op"/>. This switch is the only
    /// place a <see cref="BinaryOp"/> value is mapped to code.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="op"/> is not a defined <see cref="BinaryOp"/>.</exception>
    public static void Visit<TVisitor>(BinaryOp op, ref TVisitor visitor) where TVisitor : IBinaryOpVisitor, allows ref struct
    {
        switch (op)
        {
            case BinaryOp.Add: visitor.Visit(new AddOp()); return;
            case BinaryOp.Sub: visitor.Visit(new SubOp()); return;
            case BinaryOp.Mul: visitor.Visit(new MulOp()); return;
            default:
                throw new ArgumentOutOfRangeException(nameof(op), op,
                    $"unknown binary op {(int)op}; expected one of {string.Join(", ", Enum.GetNames<BinaryOp>())}");
        }
    }

    /// <summary>The struct defining <paramref name="op"/>, boxed once per op (for cold paths: references, tests).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="op"/> is not a defined <see cref="BinaryOp"/>.</exception>
    public static IBinaryOp Definition(BinaryOp op)
    {
        var v = new DefinitionVisitor();
        Visit(op, ref v);
        return v.Result!;
    }

    private struct DefinitionVisitor : IBinaryOpVisitor
    {
        public IBinaryOp? Result;
        public void Visit<TOp>(TOp op) where TOp : struct, IBinaryOp => Result = Boxed<TOp>.Value;
    }

    private static class Boxed<TOp> where TOp : struct, IBinaryOp
    {
        public static readonly IBinaryOp Value = default(TOp);
    }

    // ---- float64 reference -------------------------------------------------------------------------------------

    /// <summary>Reference of <see cref="BinaryOp"/>: c[i] = a[i] op b[i].</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="op"/> is not a defined <see cref="BinaryOp"/>.</exception>
    public static void Reference(BinaryOp op, ReadOnlySpan<double> a, ReadOnlySpan<double> b, Span<double> c)
    {
        var f = Definition(op);
        for (int i = 0; i < c.Length; i++) c[i] = f.Reference(a[i], b[i]);
    }

    /// <summary>Reference of scale: y[i] = alpha * x[i].</summary>
    public static void ReferenceScale(double alpha, ReadOnlySpan<double> x, Span<double> y)
    {
        for (int i = 0; i < y.Length; i++) y[i] = alpha * x[i];
    }

    /// <summary>Reference of axpy: y[i] += alpha * x[i].</summary>
    public static void ReferenceAxpy(double alpha, ReadOnlySpan<double> x, Span<double> y)
    {
        for (int i = 0; i < y.Length; i++) y[i] += alpha * x[i];
    }

    // ---- ILGPU kernels (x, y, a, b, c: flat (n)) ----------------------------------------------------------------

    /// <summary>c[i] = a[i] op b[i]; one body, specialised by ILGPU for each op struct.</summary>
    [GpuKernel]
    public static void BinaryKernel<TOp>(Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c) where TOp : struct, IBinaryOp
        => c[i] = default(TOp).Apply(a[i], b[i]);

    /// <summary>y[i] = alpha * x[i].</summary>
    [GpuKernel]
    public static void ScaleKernel(Index1D i, ArrayView<float> x, ArrayView<float> y, float alpha) => y[i] = alpha * x[i];

    /// <summary>y[i] += alpha * x[i].</summary>
    [GpuKernel]
    public static void AxpyKernel(Index1D i, ArrayView<float> x, ArrayView<float> y, float alpha) => y[i] += alpha * x[i]; // MathF.FusedMultiplyAdd has no PTX/OpenCL lowering in ILGPU 1.5.3

    /// <summary>x[i] = value.</summary>
    [GpuKernel]
    public static void FillKernel(Index1D i, ArrayView<float> x, float value) => x[i] = value;

    /// <summary>dst[i] = src[i].</summary>
    [GpuKernel]
    public static void CopyKernel(Index1D i, ArrayView<float> src, ArrayView<float> dst) => dst[i] = src[i];

    // ---- launchers ----------------------------------------------------------------------------------------------

    /// <summary>Launches <see cref="BinaryKernel{TOp}"/> over c.Length elements.</summary>
    public static void Launch<TOp>(KernelCache k, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c) where TOp : struct, IBinaryOp
    {
        k.Get(BinaryKernel<TOp>, acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>>(BinaryKernel<TOp>))
            ((int)c.Length, a, b, c);
        k.CountLaunch();
    }

    /// <summary><see cref="Launch{TOp}"/> for the op <paramref name="op"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="op"/> is not a defined <see cref="BinaryOp"/>.</exception>
    public static void Launch(KernelCache k, BinaryOp op, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c)
    {
        var v = new LaunchVisitor(k, a, b, c);
        Visit(op, ref v);
    }

    private readonly struct LaunchVisitor(KernelCache k, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c) : IBinaryOpVisitor
    {
        public void Visit<TOp>(TOp op) where TOp : struct, IBinaryOp => Launch<TOp>(k, a, b, c);
    }

    /// <summary>Launches <see cref="ScaleKernel"/>.</summary>
    public static void LaunchScale(KernelCache k, float alpha, ArrayView<float> x, ArrayView<float> y)
    {
        k.Get(ScaleKernel, acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, float>(ScaleKernel))((int)y.Length, x, y, alpha);
        k.CountLaunch();
    }

    /// <summary>Launches <see cref="AxpyKernel"/>.</summary>
    public static void LaunchAxpy(KernelCache k, float alpha, ArrayView<float> x, ArrayView<float> y)
    {
        k.Get(AxpyKernel, acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, float>(AxpyKernel))((int)y.Length, x, y, alpha);
        k.CountLaunch();
    }

    /// <summary>Launches <see cref="FillKernel"/>.</summary>
    public static void LaunchFill(KernelCache k, float value, ArrayView<float> x)
    {
        k.Get(FillKernel, acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, float>(FillKernel))((int)x.Length, x, value);
        k.CountLaunch();
    }

    /// <summary>Launches <see cref="CopyKernel"/>.</summary>
    public static void LaunchCopy(KernelCache k, ArrayView<float> src, ArrayView<float> dst)
    {
        k.Get(CopyKernel, acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>>(CopyKernel))((int)dst.Length, src, dst);
        k.CountLaunch();
    }

    // ---- SIMD host implementation (TensorPrimitives, split across cores for large arrays) -------------------------

    /// <summary>Host c = a op b; c may be a or b.</summary>
    public static void Host<TOp>(ArraySegment<float> a, ArraySegment<float> b, ArraySegment<float> c) where TOp : struct, IBinaryOp
        => HostSimd.ForChunks(c.Count, (a, b, c), static (t, s, n) => default(TOp).ApplySpan(t.a.AsSpan(s, n), t.b.AsSpan(s, n), t.c.AsSpan(s, n)));

    /// <summary><see cref="Host{TOp}"/> for the op <paramref name="op"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="op"/> is not a defined <see cref="BinaryOp"/>.</exception>
    public static void Host(BinaryOp op, ArraySegment<float> a, ArraySegment<float> b, ArraySegment<float> c)
    {
        var v = new HostVisitor(a, b, c);
        Visit(op, ref v);
    }

    private readonly struct HostVisitor(ArraySegment<float> a, ArraySegment<float> b, ArraySegment<float> c) : IBinaryOpVisitor
    {
        public void Visit<TOp>(TOp op) where TOp : struct, IBinaryOp => Host<TOp>(a, b, c);
    }

    /// <summary>Host y = alpha * x.</summary>
    public static void HostScale(float alpha, ArraySegment<float> x, ArraySegment<float> y)
        => HostSimd.ForChunks(y.Count, (alpha, x, y), static (t, s, n) => TensorPrimitives.Multiply(t.x.AsSpan(s, n), t.alpha, t.y.AsSpan(s, n)));

    /// <summary>Host y += alpha * x.</summary>
    public static void HostAxpy(float alpha, ArraySegment<float> x, ArraySegment<float> y)
        => HostSimd.ForChunks(y.Count, (alpha, x, y), static (t, s, n) => TensorPrimitives.FusedMultiplyAdd(t.x.AsSpan(s, n), t.alpha, t.y.AsSpan(s, n), t.y.AsSpan(s, n)));

    /// <summary>Host x = value.</summary>
    public static void HostFill(float value, ArraySegment<float> x) => x.AsSpan().Fill(value);

    /// <summary>Host dst = src.</summary>
    public static void HostCopy(ArraySegment<float> src, ArraySegment<float> dst) => src.AsSpan().CopyTo(dst.AsSpan());

    // ---- cost ---------------------------------------------------------------------------------------------------

    /// <summary>Binary op: n FLOPs, reads 2n and writes n floats.</summary>
    public static OpCost Cost(long n) => new(n, 12.0 * n);

    /// <summary>Axpy: 2n FLOPs, reads 2n and writes n floats.</summary>
    public static OpCost AxpyCost(long n) => new(2.0 * n, 12.0 * n);
}
