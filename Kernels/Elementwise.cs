using System.Numerics.Tensors;
using ILGPU;
using ILGPU.Runtime;

namespace GpuNet.Kernels;

/// <summary>Binary elementwise operations.</summary>
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
/// Elementwise ops over flat arrays of equal length: add, sub, mul, scale, axpy, fill, copy.
/// Gradient contract: these are building blocks; the caller decides overwrite (=) or accumulate (axpy, +=).
/// Backward: d(a+b) = (dc, dc); d(a-b) = (dc, -dc); d(a*b) = (dc*b, dc*a), i.e. Mul and Scale again.
/// </summary>
public static class ElementwiseOp
{
    // ---- float64 reference -------------------------------------------------------------------------------------

    /// <summary>Reference of <see cref="BinaryOp"/>: c[i] = a[i] op b[i].</summary>
    public static void Reference(BinaryOp op, ReadOnlySpan<double> a, ReadOnlySpan<double> b, Span<double> c)
    {
        for (int i = 0; i < c.Length; i++)
            c[i] = op switch { BinaryOp.Add => a[i] + b[i], BinaryOp.Sub => a[i] - b[i], _ => a[i] * b[i] };
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

    /// <summary>c[i] = a[i] op b[i].</summary>
    [GpuKernel]
    public static void BinaryKernel(Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, int op)
    {
        float x = a[i], y = b[i];
        c[i] = op == 0 ? x + y : op == 1 ? x - y : x * y;
    }

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

    /// <summary>Launches <see cref="BinaryKernel"/>.</summary>
    public static void Launch(KernelCache k, BinaryOp op, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c)
    {
        k.Get(BinaryKernel, acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int>(BinaryKernel))
            ((int)c.Length, a, b, c, (int)op);
        k.CountLaunch();
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

    /// <summary>Host c = a op b.</summary>
    public static void Host(BinaryOp op, ArraySegment<float> a, ArraySegment<float> b, ArraySegment<float> c)
        => HostSimd.ForChunks(c.Count, (op, a, b, c), static (t, s, n) =>
        {
            var x = t.a.AsSpan(s, n); var y = t.b.AsSpan(s, n); var z = t.c.AsSpan(s, n);
            switch (t.op)
            {
                case BinaryOp.Add: TensorPrimitives.Add(x, y, z); break;
                case BinaryOp.Sub: TensorPrimitives.Subtract(x, y, z); break;
                default: TensorPrimitives.Multiply(x, y, z); break;
            }
        });

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
