using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;

namespace GpuNet.Kernels;

/// <summary>
/// Max pooling 2-D, NCHW: x: (N, C, H, W) -> y, indices: (N, C, P, Q) (geometry in <see cref="Pool2dArgs"/>).
/// y[n, c, p, q] = max over the window (padding counts as -inf, and never wins since every window holds an input
/// element when pad &lt;= kernel/2); indices[n, c, p, q] = h * W + w of the winner within its input plane (PyTorch's
/// return_indices). The scan is PyTorch's: row-major over the clipped window, starting from (-inf, first element), an
/// element replaces the current best when it is larger or NaN. So ties keep the first maximum, a NaN wins (the last
/// NaN of the window, like PyTorch), and a window of -inf gives its first element.
/// Gradient contract: activation gradient, overwritten: dx[n, c, h, w] = sum of dy[n, c, p, q] over the windows whose
/// index is h * W + w (a gather, so overlapping windows need no atomics and the sum order is fixed: row-major in (p, q)).
/// </summary>
public static class MaxPool2dOp
{
    // ---- float64 reference (the spec) ---------------------------------------------------------------------------

    /// <summary>Reference forward. x: (N, C, H, W); y, indices: (N, C, P, Q).</summary>
    public static void Reference(in Pool2dArgs a, ReadOnlySpan<double> x, Span<double> y, Span<int> indices)
    {
        for (int plane = 0; plane < a.Planes; plane++)
            for (int p = 0; p < a.P; p++)
                for (int q = 0; q < a.Q; q++)
                {
                    var win = PoolWindows.Window(a, plane, p, q);
                    double best = double.NegativeInfinity;
                    int at = win.HStart * a.W + win.WStart;
                    for (int h = win.HStart; h < win.HEnd; h++)
                        for (int w = win.WStart; w < win.WEnd; w++)
                        {
                            double v = x[plane * a.InPlane + h * a.W + w];
                            if (v > best || double.IsNaN(v)) { best = v; at = h * a.W + w; }
                        }
                    int o = plane * a.OutPlane + p * a.Q + q;
                    y[o] = best;
                    indices[o] = at;
                }
    }

    /// <summary>Reference backward: dx = 0, then dx[plane, indices[o]] += dy[o] for every output o. dy, indices: (N, C, P, Q); dx: (N, C, H, W).</summary>
    public static void ReferenceBackward(in Pool2dArgs a, ReadOnlySpan<double> dy, ReadOnlySpan<int> indices, Span<double> dx)
    {
        dx.Clear();
        for (int plane = 0; plane < a.Planes; plane++)
            for (int o = 0; o < a.OutPlane; o++)
                dx[plane * a.InPlane + indices[plane * a.OutPlane + o]] += dy[plane * a.OutPlane + o];
    }

    // ---- ILGPU kernels --------------------------------------------------------------------------------------------

    /// <summary>One thread per output element i of (N, C, P, Q): y[i] and indices[i]. x: (N, C, H, W).</summary>
    [GpuKernel]
    public static void ForwardKernel(Index1D i, ArrayView<float> x, ArrayView<float> y, ArrayView<int> indices, Pool2dArgs a)
    {
        var win = PoolWindows.OfOutput(a, i);
        long planeStart = (long)win.Plane * a.H * a.W;
        float best = float.NegativeInfinity;
        int at = win.HStart * a.W + win.WStart;
        for (int h = win.HStart; h < win.HEnd; h++)
        {
            for (int w = win.WStart; w < win.WEnd; w++)
            {
                float v = x[planeStart + h * a.W + w];
                if (v > best || float.IsNaN(v)) { best = v; at = h * a.W + w; }
            }
        }
        y[i] = best;
        indices[i] = at;
    }

    /// <summary>
    /// One thread per input element i of (N, C, H, W): dx[i] = sum of dy over the windows that contain it and whose
    /// index points at it, in row-major (p, q) order. dy, indices: (N, C, P, Q).
    /// </summary>
    [GpuKernel]
    public static void BackwardKernel(Index1D i, ArrayView<float> dy, ArrayView<int> indices, ArrayView<float> dx, Pool2dArgs a)
    {
        var c = PoolWindows.Cover(a, i);
        long outStart = (long)c.Plane * a.P * a.Q;
        float sum = 0f;
        for (int p = c.PLo; p <= c.PHi; p++)
        {
            for (int q = c.QLo; q <= c.QHi; q++)
            {
                long o = outStart + p * a.Q + q;
                if (indices[o] == c.At) sum += dy[o];
            }
        }
        dx[i] = sum;
    }

    // ---- launchers ------------------------------------------------------------------------------------------------

    /// <summary>Launches <see cref="ForwardKernel"/>. indices: the int32 tensor's view (the caller casts it).</summary>
    public static void Launch(KernelCache k, in Pool2dArgs a, ArrayView<float> x, ArrayView<float> y, ArrayView<int> indices)
    {
        k.Get(ForwardKernel, acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, Pool2dArgs>(ForwardKernel))
            (a.Planes * a.OutPlane, x, y, indices, a);
        k.CountLaunch();
    }

    /// <summary>Launches <see cref="BackwardKernel"/>.</summary>
    public static void LaunchBackward(KernelCache k, in Pool2dArgs a, ArrayView<float> dy, ArrayView<int> indices, ArrayView<float> dx)
    {
        k.Get(BackwardKernel, acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, Pool2dArgs>(BackwardKernel))
            (a.Planes * a.InPlane, dy, indices, dx, a);
        k.CountLaunch();
    }

    // ---- SIMD host implementation (parallel over planes) ----------------------------------------------------------

    /// <summary>Host forward, the kernel's scan per plane. indices: the int32 tensor's storage.</summary>
    public static void Host(Pool2dArgs a, ArraySegment<float> x, ArraySegment<float> y, ArraySegment<float> indices)
        => PoolWindows.ForPlanes(a, (a, x, y, indices), static (t, plane0, count) =>
        {
            var a = t.a;
            for (int plane = plane0; plane < plane0 + count; plane++)
            {
                var xs = t.x.AsSpan(plane * a.InPlane, a.InPlane);
                var ys = t.y.AsSpan(plane * a.OutPlane, a.OutPlane);
                var ix = MemoryMarshal.Cast<float, int>(t.indices.AsSpan(plane * a.OutPlane, a.OutPlane));
                if (a.Is2x2Stride2) PoolWindows.Max2x2(a, xs, ys, ix);
                else ForwardPlane(a, plane, xs, ys, ix);
            }
        });

    private static void ForwardPlane(in Pool2dArgs a, int plane, ReadOnlySpan<float> x, Span<float> y, Span<int> indices)
    {
        for (int p = 0; p < a.P; p++)
            for (int q = 0; q < a.Q; q++)
            {
                var win = PoolWindows.Window(a, plane, p, q);
                float best = float.NegativeInfinity;
                int at = win.HStart * a.W + win.WStart;
                for (int h = win.HStart; h < win.HEnd; h++)
                {
                    var row = x.Slice(h * a.W, a.W);
                    for (int w = win.WStart; w < win.WEnd; w++)
                    {
                        float v = row[w];
                        if (v > best || float.IsNaN(v)) { best = v; at = h * a.W + w; }
                    }
                }
                y[p * a.Q + q] = best;
                indices[p * a.Q + q] = at;
            }
    }

    /// <summary>
    /// Host backward per plane: dx = 0, then dy of each window, in row-major (p, q) order, added at its index when the
    /// index lies inside that window (the gather's sum order and its treatment of out-of-window indices, so the host
    /// and the kernel agree bit for bit).
    /// </summary>
    public static void HostBackward(Pool2dArgs a, ArraySegment<float> dy, ArraySegment<float> indices, ArraySegment<float> dx)
        => PoolWindows.ForPlanes(a, (a, dy, indices, dx), static (t, plane0, count) =>
        {
            var a = t.a;
            for (int plane = plane0; plane < plane0 + count; plane++)
            {
                var g = t.dy.AsSpan(plane * a.OutPlane, a.OutPlane);
                var ix = MemoryMarshal.Cast<float, int>(t.indices.AsSpan(plane * a.OutPlane, a.OutPlane));
                var d = t.dx.AsSpan(plane * a.InPlane, a.InPlane);
                d.Clear();
                for (int p = 0; p < a.P; p++)
                    for (int q = 0; q < a.Q; q++)
                    {
                        int at = ix[p * a.Q + q];
                        if ((uint)at >= (uint)a.InPlane) continue;
                        int h = at / a.W;
                        if (PoolWindows.Window(a, plane, p, q).Contains(h, at - h * a.W)) d[at] += g[p * a.Q + q];
                    }
            }
        });

    // ---- cost -----------------------------------------------------------------------------------------------------

    /// <summary>Forward: one comparison per window element (counted as a FLOP); reads x, writes y and indices.</summary>
    public static OpCost Cost(in Pool2dArgs a)
    {
        double outs = (double)a.Planes * a.OutPlane;
        return new(outs * a.KH * a.KW, 4.0 * ((double)a.Planes * a.InPlane + 2 * outs));
    }

    /// <summary>Backward: one add per output; reads dy and indices, writes dx.</summary>
    public static OpCost BackwardCost(in Pool2dArgs a)
    {
        double outs = (double)a.Planes * a.OutPlane;
        return new(outs, 4.0 * ((double)a.Planes * a.InPlane + 2 * outs));
    }
}
