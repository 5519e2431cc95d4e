using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using ILGPU.Algorithms;

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
    /// <summary>A 2x2 window with stride 2 and no padding: the host's vectorised case (<see cref="PoolWindows.Max2x2"/>, <see cref="PoolWindows.Avg2x2"/>).</summary>
    public readonly bool Is2x2Stride2 => KH == 2 && KW == 2 && SH == 2 && SW == 2 && PH == 0 && PW == 0;
}

/// <summary>
/// The input window of one output (plane, p, q): its unclipped top-left corner (H0, W0) in input coordinates (negative
/// inside the padding) and its rows [HStart, HEnd) and columns [WStart, WEnd) clipped to the input plane.
/// </summary>
public struct PoolWindow
{
    /// <summary>Plane (n * C + c) of the output.</summary>
    public int Plane;
    /// <summary>Unclipped first row, p * SH - PH.</summary>
    public int H0;
    /// <summary>Unclipped first column, q * SW - PW.</summary>
    public int W0;
    /// <summary>First input row inside the window.</summary>
    public int HStart;
    /// <summary>End (exclusive) of the input rows inside the window.</summary>
    public int HEnd;
    /// <summary>First input column inside the window.</summary>
    public int WStart;
    /// <summary>End (exclusive) of the input columns inside the window.</summary>
    public int WEnd;

    /// <summary>Whether input element (h, w) of the plane lies in the window. Kernel-safe.</summary>
    public readonly bool Contains(int h, int w) => h >= HStart && h < HEnd && w >= WStart && w < WEnd;
}

/// <summary>
/// The outputs whose windows contain one input element: rows [PLo, PHi] and columns [QLo, QHi] of its plane's
/// output (empty when PLo &gt; PHi or QLo &gt; QHi), in the row-major order both backward gathers sum in.
/// </summary>
public struct PoolCover
{
    /// <summary>Plane (n * C + c) of the element.</summary>
    public int Plane;
    /// <summary>The element's index h * W + w within its plane.</summary>
    public int At;
    /// <summary>First output row.</summary>
    public int PLo;
    /// <summary>Last output row (inclusive).</summary>
    public int PHi;
    /// <summary>First output column.</summary>
    public int QLo;
    /// <summary>Last output column (inclusive).</summary>
    public int QHi;
}

/// <summary>Window arithmetic and plane loops shared by the pooling ops (kernel-safe helpers first).</summary>
public static class PoolWindows
{
    /// <summary>The window of output (p, q) of <paramref name="plane"/>. Kernel-safe.</summary>
    public static PoolWindow Window(Pool2dArgs a, int plane, int p, int q)
    {
        int h0 = p * a.SH - a.PH, w0 = q * a.SW - a.PW;
        return new PoolWindow
        {
            Plane = plane, H0 = h0, W0 = w0,
            HStart = XMath.Max(h0, 0), HEnd = XMath.Min(h0 + a.KH, a.H), WStart = XMath.Max(w0, 0), WEnd = XMath.Min(w0 + a.KW, a.W),
        };
    }

    /// <summary>The window of output element <paramref name="i"/> of y: (N, C, P, Q). Kernel-safe.</summary>
    public static PoolWindow OfOutput(Pool2dArgs a, int i)
    {
        int outPlane = a.P * a.Q;
        int plane = i / outPlane;
        int o = i - plane * outPlane;
        int p = o / a.Q;
        return Window(a, plane, p, o - p * a.Q);
    }

    /// <summary>The outputs whose windows contain element <paramref name="i"/> of x: (N, C, H, W). Kernel-safe.</summary>
    public static PoolCover Cover(Pool2dArgs a, int i)
    {
        int inPlane = a.H * a.W;
        int plane = i / inPlane;
        int at = i - plane * inPlane;
        int h = at / a.W, w = at - h * a.W;
        return new PoolCover
        {
            Plane = plane, At = at,
            PLo = First(h, a.KH, a.SH, a.PH), PHi = Last(h, a.SH, a.PH, a.P),
            QLo = First(w, a.KW, a.SW, a.PW), QHi = Last(w, a.SW, a.PW, a.Q),
        };
    }

    /// <summary>First window index whose span [i stride - pad, i stride - pad + kernel) contains input position <paramref name="at"/>.</summary>
    private static int First(int at, int kernel, int stride, int pad)
    {
        int t = at + pad - kernel;
        return t < 0 ? 0 : t / stride + 1;
    }

    /// <summary>Last window index (below <paramref name="count"/>) whose span starts at or before <paramref name="at"/>.</summary>
    private static int Last(int at, int stride, int pad, int count)
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
    public static unsafe void Max2x2(in Pool2dArgs a, ReadOnlySpan<float> x, Span<float> y, Span<int> indices)
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
                for (; q < a.Q; q += 16)
                {
                    // The last step of a row (fewer than 16 outputs) reads and writes through masks.
                    int n = Math.Min(16, a.Q - q);
                    var (e0, o0) = Split(ref p0, 2 * q, 2 * n);
                    var (e1, o1) = Split(ref p1, 2 * q, 2 * n);
                    var i0 = Vector512.Create(2 * p * w + 2 * q) + EvenLanes;
                    var best = e0; var at = i0;
                    Take(ref best, ref at, o0, i0 + Vector512<int>.One);
                    Take(ref best, ref at, e1, i0 + Vector512.Create(w));
                    Take(ref best, ref at, o1, i0 + Vector512.Create(w + 1));
                    if (n == 16)
                    {
                        best.StoreUnsafe(ref MemoryMarshal.GetReference(yr), (nuint)q);
                        at.StoreUnsafe(ref MemoryMarshal.GetReference(ir), (nuint)q);
                        continue;
                    }
                    var keep = Vector512.LessThan(Lanes, Vector512.Create(n));
                    fixed (float* py = &yr[q])
                    fixed (int* pi = &ir[q])
                    {
                        Avx512F.MaskStore(py, keep.AsSingle(), best);
                        Avx512F.MaskStore(pi, keep, at);
                    }
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

    private static readonly Vector512<int> Lanes = Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);

    // Even and odd columns of row[start .. start + count), count <= 32 (lanes past it are 0 and read nothing).
    private static unsafe (Vector512<float> Even, Vector512<float> Odd) Split(ref float row, int start, int count)
    {
        if (count == 32) return Split(ref row, start);
        fixed (float* p = &Unsafe.Add(ref row, start))
        {
            var lo = Avx512F.MaskLoad(p, Vector512.LessThan(Lanes, Vector512.Create(count)).AsSingle(), Vector512<float>.Zero);
            var hi = Avx512F.MaskLoad(p + 16, Vector512.LessThan(Lanes, Vector512.Create(count - 16)).AsSingle(), Vector512<float>.Zero);
            return (Avx512F.PermuteVar16x32x2(lo, EvenLanes, hi), Avx512F.PermuteVar16x32x2(lo, OddLanes, hi));
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
