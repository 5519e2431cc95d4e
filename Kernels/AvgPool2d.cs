using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace GpuNet.Kernels;

/// <summary>
/// Average pooling 2-D, NCHW: x: (N, C, H, W) -> y: (N, C, P, Q) (geometry in <see cref="Pool2dArgs"/>).
/// y[n, c, p, q] = (sum of the window's input elements, row-major) / count, where count is the window's size inside the
/// padded input when <see cref="Pool2dArgs.IncludePad"/> is 1 (PyTorch's count_include_pad=True; KH*KW with ceil_mode
/// false) and the number of input elements in the window when 0. Padding contributes zeros to the sum.
/// Gradient contract: activation gradient, overwritten: dx[n, c, h, w] = sum over the windows containing (h, w) of
/// dy[n, c, p, q] / count(p, q), gathered per input element in row-major (p, q) order (no atomics).
/// </summary>
public static class AvgPool2dOp
{
    // ---- float64 reference (the spec) ---------------------------------------------------------------------------

    /// <summary>Reference forward. x: (N, C, H, W); y: (N, C, P, Q).</summary>
    public static void Reference(in Pool2dArgs a, ReadOnlySpan<double> x, Span<double> y)
    {
        for (int plane = 0; plane < a.Planes; plane++)
            for (int p = 0; p < a.P; p++)
                for (int q = 0; q < a.Q; q++)
                {
                    var win = PoolWindows.Window(a, plane, p, q);
                    double sum = 0;
                    for (int h = win.HStart; h < win.HEnd; h++)
                        for (int w = win.WStart; w < win.WEnd; w++)
                            sum += x[plane * a.InPlane + h * a.W + w];
                    y[plane * a.OutPlane + p * a.Q + q] = sum / Divisor(a, win);
                }
    }

    /// <summary>Reference backward: dx = 0, then each window's dy / count added to each of its input elements. dy: (N, C, P, Q); dx: (N, C, H, W).</summary>
    public static void ReferenceBackward(in Pool2dArgs a, ReadOnlySpan<double> dy, Span<double> dx)
    {
        dx.Clear();
        for (int plane = 0; plane < a.Planes; plane++)
            for (int p = 0; p < a.P; p++)
                for (int q = 0; q < a.Q; q++)
                {
                    var win = PoolWindows.Window(a, plane, p, q);
                    double g = dy[plane * a.OutPlane + p * a.Q + q] / Divisor(a, win);
                    for (int h = win.HStart; h < win.HEnd; h++)
                        for (int w = win.WStart; w < win.WEnd; w++)
                            dx[plane * a.InPlane + h * a.W + w] += g;
                }
    }

    /// <summary>
    /// The divisor of a window: with padding counted, its extent inside [-PH, H + PH) x [-PW, W + PW); without, inside
    /// [0, H) x [0, W). Kernel-safe.
    /// </summary>
    public static int Divisor(Pool2dArgs a, PoolWindow win)
    {
        if (a.IncludePad == 0) return (win.HEnd - win.HStart) * (win.WEnd - win.WStart);
        int he = XMath.Min(win.H0 + a.KH, a.H + a.PH), we = XMath.Min(win.W0 + a.KW, a.W + a.PW);
        return (he - win.H0) * (we - win.W0);
    }

    // ---- ILGPU kernels --------------------------------------------------------------------------------------------

    /// <summary>One thread per output element i of (N, C, P, Q). x: (N, C, H, W).</summary>
    [GpuKernel]
    public static void ForwardKernel(Index1D i, ArrayView<float> x, ArrayView<float> y, Pool2dArgs a)
    {
        var win = PoolWindows.OfOutput(a, i);
        long planeStart = (long)win.Plane * a.H * a.W;
        float sum = 0f;
        for (int h = win.HStart; h < win.HEnd; h++)
            for (int w = win.WStart; w < win.WEnd; w++)
                sum += x[planeStart + h * a.W + w];
        y[i] = sum / Divisor(a, win);
    }

    /// <summary>One thread per input element i of (N, C, H, W): dx[i] = sum over the windows containing it of dy / count. dy: (N, C, P, Q).</summary>
    [GpuKernel]
    public static void BackwardKernel(Index1D i, ArrayView<float> dy, ArrayView<float> dx, Pool2dArgs a)
    {
        var c = PoolWindows.Cover(a, i);
        long outStart = (long)c.Plane * a.P * a.Q;
        float sum = 0f;
        for (int p = c.PLo; p <= c.PHi; p++)
            for (int q = c.QLo; q <= c.QHi; q++)
                sum += dy[outStart + p * a.Q + q] / Divisor(a, PoolWindows.Window(a, c.Plane, p, q));
        dx[i] = sum;
    }

    // ---- launchers ------------------------------------------------------------------------------------------------

    /// <summary>Launches <see cref="ForwardKernel"/>.</summary>
    public static void Launch(KernelCache k, in Pool2dArgs a, ArrayView<float> x, ArrayView<float> y)
    {
        k.Get(ForwardKernel, acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, Pool2dArgs>(ForwardKernel))
            (a.Planes * a.OutPlane, x, y, a);
        k.CountLaunch();
    }

    /// <summary>Launches <see cref="BackwardKernel"/>.</summary>
    public static void LaunchBackward(KernelCache k, in Pool2dArgs a, ArrayView<float> dy, ArrayView<float> dx)
    {
        k.Get(BackwardKernel, acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, Pool2dArgs>(BackwardKernel))
            (a.Planes * a.InPlane, dy, dx, a);
        k.CountLaunch();
    }

    // ---- SIMD host implementation (parallel over planes) ----------------------------------------------------------

    /// <summary>Host forward per plane (2x2 stride 2 unpadded windows vectorised along rows).</summary>
    public static void Host(Pool2dArgs a, ArraySegment<float> x, ArraySegment<float> y)
        => PoolWindows.ForPlanes(a, (a, x, y), static (t, plane0, count) =>
        {
            var a = t.a;
            for (int plane = plane0; plane < plane0 + count; plane++)
            {
                var xs = t.x.AsSpan(plane * a.InPlane, a.InPlane);
                var ys = t.y.AsSpan(plane * a.OutPlane, a.OutPlane);
                if (a.Is2x2Stride2) { PoolWindows.Avg2x2(a, xs, ys); continue; }
                for (int p = 0; p < a.P; p++)
                    for (int q = 0; q < a.Q; q++)
                    {
                        var win = PoolWindows.Window(a, plane, p, q);
                        float sum = 0f;
                        for (int h = win.HStart; h < win.HEnd; h++)
                        {
                            var row = xs.Slice(h * a.W, a.W);
                            for (int w = win.WStart; w < win.WEnd; w++) sum += row[w];
                        }
                        ys[p * a.Q + q] = sum / Divisor(a, win);
                    }
            }
        });

    /// <summary>
    /// Host backward per plane: dx = 0, then each window's dy / count added to its input elements in row-major (p, q)
    /// order (the kernel's gather order, so the two agree bit for bit).
    /// </summary>
    public static void HostBackward(Pool2dArgs a, ArraySegment<float> dy, ArraySegment<float> dx)
        => PoolWindows.ForPlanes(a, (a, dy, dx), static (t, plane0, count) =>
        {
            var a = t.a;
            for (int plane = plane0; plane < plane0 + count; plane++)
            {
                var g = t.dy.AsSpan(plane * a.OutPlane, a.OutPlane);
                var d = t.dx.AsSpan(plane * a.InPlane, a.InPlane);
                d.Clear();
                for (int p = 0; p < a.P; p++)
                    for (int q = 0; q < a.Q; q++)
                    {
                        var win = PoolWindows.Window(a, plane, p, q);
                        float v = g[p * a.Q + q] / Divisor(a, win);
                        for (int h = win.HStart; h < win.HEnd; h++)
                        {
                            var row = d.Slice(h * a.W, a.W);
                            for (int w = win.WStart; w < win.WEnd; w++) row[w] += v;
                        }
                    }
            }
        });

    // ---- cost -----------------------------------------------------------------------------------------------------

    /// <summary>Forward: one add per window element and a division per output; reads x, writes y.</summary>
    public static OpCost Cost(in Pool2dArgs a)
    {
        double outs = (double)a.Planes * a.OutPlane;
        return new(outs * (a.KH * a.KW + 1), 4.0 * ((double)a.Planes * a.InPlane + outs));
    }

    /// <summary>Backward: a division per output and an add per window element; reads dy, writes dx.</summary>
    public static OpCost BackwardCost(in Pool2dArgs a) => Cost(a);
}
