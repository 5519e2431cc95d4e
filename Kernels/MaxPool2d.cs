using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace GpuNet.Kernels;

/// <summary>
/// Geometry of a 2-D pooling window over x: (N, C, H, W) -> y: (N, C, P, Q) with P = (H + 2 PH - KH) / SH + 1 and
/// Q = (W + 2 PW - KW) / SW + 1 (PyTorch, ceil_mode false). Output (p, q) covers input rows [p SH - PH, p SH - PH + KH)
/// and columns [q SW - PW, q SW - PW + KW), clipped to the input. A plain struct so kernels can take it as one parameter.
/// </summary>
public struct Pool2dArgs
{
    /// <summary>Batch size.</summary>
    public int N;
    /// <summary>Channels.</summary>
    public int C;
    /// <summary>Input height.</summary>
    public int H;
    /// <summary>Input width.</summary>
    public int W;
    /// <summary>Output height.</summary>
    public int P;
    /// <summary>Output width.</summary>
    public int Q;
    /// <summary>Window height.</summary>
    public int KH;
    /// <summary>Window width.</summary>
    public int KW;
    /// <summary>Vertical stride.</summary>
    public int SH;
    /// <summary>Horizontal stride.</summary>
    public int SW;
    /// <summary>Zero (average) or -inf (max) rows added above and below.</summary>
    public int PH;
    /// <summary>Columns added left and right.</summary>
    public int PW;
    /// <summary>Average pooling: 1 divides by KH*KW (padding counts), 0 by the number of input elements in the window.</summary>
    public int IncludePad;

    /// <summary>The geometry of a (kH, kW) window with the given strides and paddings over (n, c, h, w).</summary>
    public static Pool2dArgs Create(int n, int c, int h, int w, int kH, int kW, int sH, int sW, int pH, int pW, bool includePad = true)
        => new()
        {
            N = n, C = c, H = h, W = w, KH = kH, KW = kW, SH = sH, SW = sW, PH = pH, PW = pW,
            P = OutputSize(h, kH, sH, pH), Q = OutputSize(w, kW, sW, pW), IncludePad = includePad ? 1 : 0,
        };

    /// <summary>Output length along one axis: (size + 2 pad - kernel) / stride + 1 (floor; may be &lt; 1 for invalid input).</summary>
    public static int OutputSize(int size, int kernel, int stride, int pad)
    {
        long span = (long)size + 2L * pad - kernel;
        return span < 0 ? 0 : (int)(span / stride + 1);
    }

    /// <summary>N * C planes.</summary>
    public readonly int Planes => N * C;
    /// <summary>Elements of an input plane, H * W.</summary>
    public readonly int InPlane => H * W;
    /// <summary>Elements of an output plane, P * Q.</summary>
    public readonly int OutPlane => P * Q;
}

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
                    int h0 = p * a.SH - a.PH, w0 = q * a.SW - a.PW;
                    int hs = Math.Max(h0, 0), he = Math.Min(h0 + a.KH, a.H), ws = Math.Max(w0, 0), we = Math.Min(w0 + a.KW, a.W);
                    double best = double.NegativeInfinity;
                    int at = hs * a.W + ws;
                    for (int h = hs; h < he; h++)
                        for (int w = ws; w < we; w++)
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
        int outPlane = a.P * a.Q;
        int plane = i.X / outPlane;
        int o = i.X - plane * outPlane;
        int p = o / a.Q, q = o - p * a.Q;
        int h0 = p * a.SH - a.PH, w0 = q * a.SW - a.PW;
        int hs = XMath.Max(h0, 0), he = XMath.Min(h0 + a.KH, a.H), ws = XMath.Max(w0, 0), we = XMath.Min(w0 + a.KW, a.W);
        long planeStart = (long)plane * a.H * a.W;
        float best = float.NegativeInfinity;
        int at = hs * a.W + ws;
        for (int h = hs; h < he; h++)
        {
            for (int w = ws; w < we; w++)
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
        int inPlane = a.H * a.W;
        int plane = i.X / inPlane;
        int r = i.X - plane * inPlane;
        int h = r / a.W, w = r - h * a.W;
        int pLo = PoolWindows.First(h, a.KH, a.SH, a.PH), pHi = PoolWindows.Last(h, a.SH, a.PH, a.P);
        int qLo = PoolWindows.First(w, a.KW, a.SW, a.PW), qHi = PoolWindows.Last(w, a.SW, a.PW, a.Q);
        long outStart = (long)plane * a.P * a.Q;
        float sum = 0f;
        for (int p = pLo; p <= pHi; p++)
        {
            for (int q = qLo; q <= qHi; q++)
            {
                long o = outStart + p * a.Q + q;
                if (indices[o] == r) sum += dy[o];
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
                if (a.KH == 2 && a.KW == 2 && a.SH == 2 && a.SW == 2 && a.PH == 0 && a.PW == 0) PoolWindows.Max2x2(a, xs, ys, ix);
                else ForwardPlane(a, xs, ys, ix);
            }
        });

    private static void ForwardPlane(in Pool2dArgs a, ReadOnlySpan<float> x, Span<float> y, Span<int> indices)
    {
        for (int p = 0; p < a.P; p++)
        {
            int h0 = p * a.SH - a.PH;
            int hs = Math.Max(h0, 0), he = Math.Min(h0 + a.KH, a.H);
            for (int q = 0; q < a.Q; q++)
            {
                int w0 = q * a.SW - a.PW;
                int ws = Math.Max(w0, 0), we = Math.Min(w0 + a.KW, a.W);
                float best = float.NegativeInfinity;
                int at = hs * a.W + ws;
                for (int h = hs; h < he; h++)
                {
                    var row = x.Slice(h * a.W, a.W);
                    for (int w = ws; w < we; w++)
                    {
                        float v = row[w];
                        if (v > best || float.IsNaN(v)) { best = v; at = h * a.W + w; }
                    }
                }
                y[p * a.Q + q] = best;
                indices[p * a.Q + q] = at;
            }
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
                {
                    int h0 = p * a.SH - a.PH;
                    for (int q = 0; q < a.Q; q++)
                    {
                        int at = ix[p * a.Q + q];
                        if ((uint)at >= (uint)a.InPlane) continue;
                        int h = at / a.W, w = at - h * a.W, w0 = q * a.SW - a.PW;
                        if (h >= h0 && h < h0 + a.KH && w >= w0 && w < w0 + a.KW) d[at] += g[p * a.Q + q];
                    }
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

/// <summary>Window arithmetic and plane loops shared by the pooling ops (kernel-safe helpers first).</summary>
public static class PoolWindows
{
    /// <summary>First window index whose span [i stride - pad, i stride - pad + kernel) contains input position <paramref name="at"/>.</summary>
    public static int First(int at, int kernel, int stride, int pad)
    {
        int t = at + pad - kernel;
        return t < 0 ? 0 : t / stride + 1;
    }

    /// <summary>Last window index (below <paramref name="count"/>) whose span starts at or before <paramref name="at"/>.</summary>
    public static int Last(int at, int stride, int pad, int count)
    {
        int last = (at + pad) / stride;
        return last < count - 1 ? last : count - 1;
    }

    /// <summary>Runs body(state, firstPlane, planeCount) over the N*C planes: in parallel for large tensors, about four items per pool thread.</summary>
    public static void ForPlanes<TState>(in Pool2dArgs a, TState state, Action<TState, int, int> body)
    {
        int planes = a.Planes;
        int perItem = Math.Max(1, (planes + 4 * HostSimd.PoolThreads - 1) / (4 * HostSimd.PoolThreads));
        long work = (long)planes * (a.InPlane + a.OutPlane);
        HostSimd.ForRanges(planes, perItem, work >= HostSimd.ParallelThreshold, state, body);
    }

    private static readonly Vector512<int> EvenLanes = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    private static readonly Vector512<int> OddLanes = EvenLanes + Vector512<int>.One;

    /// <summary>
    /// 2x2 stride-2 unpadded max pooling of one plane: 16 outputs per step from 32 columns of two rows, split into even
    /// and odd columns by a two-source permute; the scalar scan's rule (larger or NaN replaces) on the four candidates
    /// in row-major order. x: (H, W); y, indices: (P, Q).
    /// </summary>
    public static void Max2x2(in Pool2dArgs a, ReadOnlySpan<float> x, Span<float> y, Span<int> indices)
    {
        int w = a.W;
        for (int p = 0; p < a.P; p++)
        {
            var r0 = x.Slice(2 * p * w, w);
            var r1 = x.Slice((2 * p + 1) * w, w);
            var yr = y.Slice(p * a.Q, a.Q);
            var ir = indices.Slice(p * a.Q, a.Q);
            int q = 0;
            if (Avx512F.IsSupported)
            {
                ref float p0 = ref MemoryMarshal.GetReference(r0);
                ref float p1 = ref MemoryMarshal.GetReference(r1);
                for (; q <= a.Q - 16; q += 16)
                {
                    var (e0, o0) = Split(ref p0, 2 * q);
                    var (e1, o1) = Split(ref p1, 2 * q);
                    var i0 = Vector512.Create(2 * p * w + 2 * q) + EvenLanes;
                    var best = e0; var at = i0;
                    Take(ref best, ref at, o0, i0 + Vector512<int>.One);
                    Take(ref best, ref at, e1, i0 + Vector512.Create(w));
                    Take(ref best, ref at, o1, i0 + Vector512.Create(w + 1));
                    best.StoreUnsafe(ref MemoryMarshal.GetReference(yr), (nuint)q);
                    at.StoreUnsafe(ref MemoryMarshal.GetReference(ir), (nuint)q);
                }
            }
            for (; q < a.Q; q++)
            {
                int c = 2 * q;
                float best = r0[c]; int at = 2 * p * w + c;
                if (r0[c + 1] > best || float.IsNaN(r0[c + 1])) { best = r0[c + 1]; at = 2 * p * w + c + 1; }
                if (r1[c] > best || float.IsNaN(r1[c])) { best = r1[c]; at = (2 * p + 1) * w + c; }
                if (r1[c + 1] > best || float.IsNaN(r1[c + 1])) { best = r1[c + 1]; at = (2 * p + 1) * w + c + 1; }
                yr[q] = best; ir[q] = at;
            }
        }
    }

    /// <summary>
    /// 2x2 stride-2 unpadded average pooling of one plane, vectorised like <see cref="Max2x2"/>: y = (((0 + a) + b) + c + d) / 4,
    /// the kernel's summation order. x: (H, W); y: (P, Q).
    /// </summary>
    public static void Avg2x2(in Pool2dArgs a, ReadOnlySpan<float> x, Span<float> y)
    {
        int w = a.W;
        for (int p = 0; p < a.P; p++)
        {
            var r0 = x.Slice(2 * p * w, w);
            var r1 = x.Slice((2 * p + 1) * w, w);
            var yr = y.Slice(p * a.Q, a.Q);
            int q = 0;
            if (Avx512F.IsSupported)
            {
                ref float p0 = ref MemoryMarshal.GetReference(r0);
                ref float p1 = ref MemoryMarshal.GetReference(r1);
                var four = Vector512.Create(4f);
                for (; q <= a.Q - 16; q += 16)
                {
                    var (e0, o0) = Split(ref p0, 2 * q);
                    var (e1, o1) = Split(ref p1, 2 * q);
                    var s = ((((Vector512<float>.Zero + e0) + o0) + e1) + o1) / four;
                    s.StoreUnsafe(ref MemoryMarshal.GetReference(yr), (nuint)q);
                }
            }
            for (; q < a.Q; q++)
            {
                int c = 2 * q;
                yr[q] = (0f + r0[c] + r0[c + 1] + r1[c] + r1[c + 1]) / 4f;
            }
        }
    }

    // Even and odd columns of row[start .. start + 32).
    private static (Vector512<float> Even, Vector512<float> Odd) Split(ref float row, int start)
    {
        var lo = Vector512.LoadUnsafe(ref row, (nuint)start);
        var hi = Vector512.LoadUnsafe(ref row, (nuint)(start + 16));
        return (Avx512F.PermuteVar16x32x2(lo, EvenLanes, hi), Avx512F.PermuteVar16x32x2(lo, OddLanes, hi));
    }

    // The scan step: v replaces best where v > best or v is NaN.
    private static void Take(ref Vector512<float> best, ref Vector512<int> at, Vector512<float> v, Vector512<int> index)
    {
        var take = Vector512.GreaterThan(v, best) | ~Vector512.Equals(v, v);
        best = Vector512.ConditionalSelect(take, v, best);
        at = Vector512.ConditionalSelect(take.AsInt32(), index, at);
    }
}
