using System.Numerics.Tensors;
using ILGPU;
using ILGPU.Runtime;

namespace GpuNet.Kernels;

/// <summary>
/// Global average pooling, NCHW: x: (N, C, H, W) -> y: (N, C), y[n, c] = (sum of the plane, in order) / (H * W).
/// Gradient contract: activation gradient, overwritten: dx[n, c, h, w] = dy[n, c] / (H * W).
/// </summary>
public static class GlobalAvgPoolOp
{
    // ---- float64 reference (the spec) ---------------------------------------------------------------------------

    /// <summary>Reference forward. x: (planes, size) with size = H * W; y: (planes).</summary>
    public static void Reference(int planes, int size, ReadOnlySpan<double> x, Span<double> y)
    {
        for (int i = 0; i < planes; i++)
        {
            double sum = 0;
            for (int j = 0; j < size; j++) sum += x[i * size + j];
            y[i] = sum / size;
        }
    }

    /// <summary>Reference backward. dy: (planes); dx: (planes, size).</summary>
    public static void ReferenceBackward(int planes, int size, ReadOnlySpan<double> dy, Span<double> dx)
    {
        for (int i = 0; i < planes; i++)
            for (int j = 0; j < size; j++) dx[i * size + j] = dy[i] / size;
    }

    // ---- ILGPU kernels --------------------------------------------------------------------------------------------

    /// <summary>
    /// One thread per plane i: y[i] = mean of x[i, :]. x: (planes, size). CNN heads pool a few dozen elements per plane
    /// over thousands of planes, so a sequential loop per thread keeps every thread busy without a block reduction.
    /// </summary>
    [GpuKernel]
    public static void ForwardKernel(Index1D i, ArrayView<float> x, ArrayView<float> y, int size)
    {
        long start = (long)i.X * size;
        float sum = 0f;
        for (int j = 0; j < size; j++) sum += x[start + j];
        y[i] = sum / size;
    }

    /// <summary>One thread per input element i of (planes, size): dx[i] = dy[i / size] / size.</summary>
    [GpuKernel]
    public static void BackwardKernel(Index1D i, ArrayView<float> dy, ArrayView<float> dx, int size)
        => dx[i] = dy[i.X / size] / size;

    // ---- launchers ------------------------------------------------------------------------------------------------

    /// <summary>Launches <see cref="ForwardKernel"/>.</summary>
    public static void Launch(KernelCache k, int planes, int size, ArrayView<float> x, ArrayView<float> y)
    {
        k.Get(ForwardKernel, acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int>(ForwardKernel))
            (planes, x, y, size);
        k.CountLaunch();
    }

    /// <summary>Launches <see cref="BackwardKernel"/>.</summary>
    public static void LaunchBackward(KernelCache k, int planes, int size, ArrayView<float> dy, ArrayView<float> dx)
    {
        k.Get(BackwardKernel, acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int>(BackwardKernel))
            (planes * size, dy, dx, size);
        k.CountLaunch();
    }

    // ---- SIMD host implementation ---------------------------------------------------------------------------------

    /// <summary>Host forward: TensorPrimitives.Sum per plane, planes split across cores for large inputs.</summary>
    public static void Host(int planes, int size, ArraySegment<float> x, ArraySegment<float> y)
        => HostSimd.ForRanges(planes, PlanesPerItem(planes), (long)planes * size >= HostSimd.ParallelThreshold, (size, x, y), static (t, p0, count) =>
        {
            for (int i = p0; i < p0 + count; i++)
                t.y[i] = TensorPrimitives.Sum<float>(t.x.AsSpan(i * t.size, t.size)) / t.size;
        });

    /// <summary>Host backward: each plane of dx filled with dy / size.</summary>
    public static void HostBackward(int planes, int size, ArraySegment<float> dy, ArraySegment<float> dx)
        => HostSimd.ForRanges(planes, PlanesPerItem(planes), (long)planes * size >= HostSimd.ParallelThreshold, (size, dy, dx), static (t, p0, count) =>
        {
            for (int i = p0; i < p0 + count; i++)
                t.dx.AsSpan(i * t.size, t.size).Fill(t.dy[i] / t.size);
        });

    private static int PlanesPerItem(int planes) => Math.Max(1, (planes + 4 * HostSimd.PoolThreads - 1) / (4 * HostSimd.PoolThreads));

    // ---- cost -----------------------------------------------------------------------------------------------------

    /// <summary>Forward: one add per element; reads x, writes y.</summary>
    public static OpCost Cost(int planes, int size) => new((double)planes * size, 4.0 * ((double)planes * size + planes));

    /// <summary>Backward: one division per plane (the fill is a store); reads dy, writes dx.</summary>
    public static OpCost BackwardCost(int planes, int size) => new(planes, 4.0 * ((double)planes * size + planes));
}
