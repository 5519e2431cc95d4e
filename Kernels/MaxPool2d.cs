using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
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
                if (a.Is2x2Stride2 && Avx512F.IsSupported) { Backward2x2(a, g, ix, d); continue; }
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

    private static readonly Vector512<int> Lanes = Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    private static readonly Vector512<int> EvenLanes = Lanes * 2;
    private static readonly Vector512<int> InterleaveLow = Vector512.Create(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    private static readonly Vector512<int> InterleaveHigh = InterleaveLow + Vector512.Create(8);

    /// <summary>
    /// <see cref="HostBackward"/> of one plane for 2x2 stride-2 unpadded windows, which do not overlap: each dx element
    /// lies in at most one window, so dx[2p + i, 2q + j] = 0 + (indices[p, q] == (2p + i) W + 2q + j ? dy[p, q] : 0),
    /// 16 windows at a time (the sum the gather forms, bit for bit). A last odd row or column lies in no window: 0.
    /// </summary>
    private static unsafe void Backward2x2(in Pool2dArgs a, ReadOnlySpan<float> dy, ReadOnlySpan<int> indices, Span<float> dx)
    {
        int w = a.W;
        fixed (float* pdy = dy, pdx = dx)
        fixed (int* pix = indices)
        {
            for (int p = 0; p < a.P; p++)
            {
                float* d0 = pdx + 2 * p * w, d1 = d0 + w;
                for (int q = 0; q < a.Q; q += 16)
                {
                    int n = Math.Min(16, a.Q - q);
                    var keep = Vector512.LessThan(Lanes, Vector512.Create(n));
                    var g = Avx512F.MaskLoad(pdy + p * a.Q + q, keep.AsSingle(), Vector512<float>.Zero);
                    var at = Avx512F.MaskLoad(pix + p * a.Q + q, keep, Vector512.Create(-1));
                    var i0 = Vector512.Create(2 * p * w + 2 * q) + EvenLanes;
                    Store(d0 + 2 * q, Pick(at, i0, g), Pick(at, i0 + Vector512<int>.One, g), 2 * n);
                    Store(d1 + 2 * q, Pick(at, i0 + Vector512.Create(w), g), Pick(at, i0 + Vector512.Create(w + 1), g), 2 * n);
                }
                if ((w & 1) != 0) { d0[w - 1] = 0f; d1[w - 1] = 0f; }
            }
            if ((a.H & 1) != 0) new Span<float>(pdx + (a.H - 1) * w, w).Clear();
        }
    }

    // 0 + (at == index ? g : 0), lane by lane (the + turns a -0 gradient into +0, as the gather's sum does).
    private static Vector512<float> Pick(Vector512<int> at, Vector512<int> index, Vector512<float> g)
        => Vector512<float>.Zero + (Vector512.Equals(at, index).AsSingle() & g);

    // dst[0 .. count) = the lanes of even and odd interleaved (even[0], odd[0], even[1], ...), count <= 32.
    private static unsafe void Store(float* dst, Vector512<float> even, Vector512<float> odd, int count)
    {
        var lo = Avx512F.PermuteVar16x32x2(even, InterleaveLow, odd);
        var hi = Avx512F.PermuteVar16x32x2(even, InterleaveHigh, odd);
        if (count == 32) { lo.Store(dst); hi.Store(dst + 16); return; }
        Avx512F.MaskStore(dst, Vector512.LessThan(Lanes, Vector512.Create(count)).AsSingle(), lo);
        Avx512F.MaskStore(dst + 16, Vector512.LessThan(Lanes, Vector512.Create(count - 16)).AsSingle(), hi);
    }

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
