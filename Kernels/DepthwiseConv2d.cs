using ILGPU;
using ILGPU.Runtime;

namespace GpuNet.Kernels;

/// <summary>
/// Shape and hyperparameters of one depthwise convolution, passed to the kernels as one struct (kernels take at most
/// 14 parameters). x: (N, C, H, W), w: (C, 1, R, S), y: (N, C, P, Q) with
/// P = (H + 2 PadH - DilationH (R - 1) - 1) / StrideH + 1 and Q likewise.
/// </summary>
public struct DepthwiseParams
{
    /// <summary>Batch size.</summary>
    public int N;
    /// <summary>Channels (each has its own R x S filter).</summary>
    public int C;
    /// <summary>Input height.</summary>
    public int H;
    /// <summary>Input width.</summary>
    public int W;
    /// <summary>Filter height.</summary>
    public int R;
    /// <summary>Filter width.</summary>
    public int S;
    /// <summary>Output height.</summary>
    public int P;
    /// <summary>Output width.</summary>
    public int Q;
    /// <summary>Vertical stride (&gt;= 1).</summary>
    public int StrideH;
    /// <summary>Horizontal stride (&gt;= 1).</summary>
    public int StrideW;
    /// <summary>Zero rows added above and below (&gt;= 0).</summary>
    public int PadH;
    /// <summary>Zero columns added left and right (&gt;= 0).</summary>
    public int PadW;
    /// <summary>Vertical filter dilation (&gt;= 1).</summary>
    public int DilationH;
    /// <summary>Horizontal filter dilation (&gt;= 1).</summary>
    public int DilationW;
    /// <summary>1: a bias is added (forward) or its gradient accumulated (backward filter).</summary>
    public int HasBias;

    /// <summary>Output size of one spatial dimension: (in + 2 pad - dilation (k - 1) - 1) / stride + 1 (may be &lt;= 0).</summary>
    public static int OutSize(int input, int kernel, int stride, int pad, int dilation)
        => (int)Math.Floor(((double)input + 2.0 * pad - (double)dilation * (kernel - 1) - 1) / stride) + 1;

    /// <summary>Parameters with P and Q computed from the input size.</summary>
    public static DepthwiseParams Create(int n, int c, int h, int w, int r, int s, int strideH, int strideW, int padH, int padW,
        int dilationH, int dilationW, bool bias) => new()
    {
        N = n, C = c, H = h, W = w, R = r, S = s,
        P = OutSize(h, r, strideH, padH, dilationH), Q = OutSize(w, s, strideW, padW, dilationW),
        StrideH = strideH, StrideW = strideW, PadH = padH, PadW = padW, DilationH = dilationH, DilationW = dilationW,
        HasBias = bias ? 1 : 0,
    };
}

/// <summary>
/// Depthwise 2-D convolution (channel multiplier 1), NCHW, zero padding:
///   y[n,c,p,q] = b[c] + sum_{r,s} w[c,0,r,s] * x[n,c, p*sh - ph + r*dh, q*sw - pw + s*dw]   (out-of-range x reads are 0)
/// Backward, gradient contract: activation gradients overwrite (=), parameter gradients accumulate (+=):
///   dx[n,c,h,w] = sum over (p,q,r,s) with h = p*sh - ph + r*dh, w = q*sw - pw + s*dw of dy[n,c,p,q] * w[c,0,r,s]   (=)
///   dw[c,0,r,s] += sum_{n,p,q} dy[n,c,p,q] * x[n,c, p*sh - ph + r*dh, q*sw - pw + s*dw]                       (+=)
///   db[c]       += sum_{n,p,q} dy[n,c,p,q]                                                                   (+=)
/// GPU: forward one thread per output; dx one thread per input element, gathering the outputs it feeds (no atomics);
/// dw/db one group per (channel, tap) work item with a shared-memory tree reduction (deterministic, no float atomics).
/// Host: planes (n, c) in parallel; each plane is copied into a zero-padded scratch plane so that every row is a run
/// of full Vector512 FMAs with no bounds checks (horizontal stride s is computed densely and subsampled; the backward
/// scatters a zero-interleaved dy row).
/// </summary>
public static partial class DepthwiseConv2dOp
{
    // ---- float64 reference (the spec) ---------------------------------------------------------------------------

    /// <summary>Reference forward. x: (N, C, H, W); w: (C, 1, R, S); b: (C) or empty; y: (N, C, P, Q) (overwritten).</summary>
    public static void Reference(in DepthwiseParams a, ReadOnlySpan<double> x, ReadOnlySpan<double> w, ReadOnlySpan<double> b, Span<double> y)
    {
        for (int n = 0; n < a.N; n++)
            for (int c = 0; c < a.C; c++)
                for (int p = 0; p < a.P; p++)
                    for (int q = 0; q < a.Q; q++)
                    {
                        double acc = b.IsEmpty ? 0 : b[c];
                        for (int r = 0; r < a.R; r++)
                            for (int s = 0; s < a.S; s++)
                            {
                                int h = p * a.StrideH - a.PadH + r * a.DilationH, ww = q * a.StrideW - a.PadW + s * a.DilationW;
                                if (h < 0 || h >= a.H || ww < 0 || ww >= a.W) continue;
                                acc += w[(c * a.R + r) * a.S + s] * x[((n * a.C + c) * a.H + h) * a.W + ww];
                            }
                        y[((n * a.C + c) * a.P + p) * a.Q + q] = acc;
                    }
    }

    /// <summary>
    /// Reference backward. dy: (N, C, P, Q); x: (N, C, H, W); w: (C, 1, R, S). dx (N, C, H, W) is overwritten;
    /// dw (C, 1, R, S) and db (C, or empty: skipped) accumulate.
    /// </summary>
    public static void ReferenceBackward(in DepthwiseParams a, ReadOnlySpan<double> x, ReadOnlySpan<double> w, ReadOnlySpan<double> dy,
        Span<double> dx, Span<double> dw, Span<double> db)
    {
        dx.Clear();
        for (int n = 0; n < a.N; n++)
            for (int c = 0; c < a.C; c++)
                for (int p = 0; p < a.P; p++)
                    for (int q = 0; q < a.Q; q++)
                    {
                        double g = dy[((n * a.C + c) * a.P + p) * a.Q + q];
                        if (!db.IsEmpty) db[c] += g;
                        for (int r = 0; r < a.R; r++)
                            for (int s = 0; s < a.S; s++)
                            {
                                int h = p * a.StrideH - a.PadH + r * a.DilationH, ww = q * a.StrideW - a.PadW + s * a.DilationW;
                                if (h < 0 || h >= a.H || ww < 0 || ww >= a.W) continue;
                                int xi = ((n * a.C + c) * a.H + h) * a.W + ww, wi = (c * a.R + r) * a.S + s;
                                dx[xi] += g * w[wi];
                                dw[wi] += g * x[xi];
                            }
                    }
    }

    // ---- ILGPU kernels: forward -----------------------------------------------------------------------------------

    /// <summary>
    /// One thread per output element i of y: (N, C, P, Q). x: (N, C, H, W); w: (C, 1, R, S); b: (C), read only when
    /// a.HasBias (else any view).
    /// </summary>
    [GpuKernel]
    public static void ForwardKernel(Index1D i, ArrayView<float> x, ArrayView<float> w, ArrayView<float> b, ArrayView<float> y, DepthwiseParams a)
    {
        int q = i % a.Q, t = i / a.Q;
        int p = t % a.P;
        int nc = t / a.P;
        int c = nc % a.C;
        int h0 = p * a.StrideH - a.PadH, w0 = q * a.StrideW - a.PadW;
        int plane = nc * a.H * a.W, filter = c * a.R * a.S;
        float acc = a.HasBias != 0 ? b[c] : 0f;
        for (int r = 0; r < a.R; r++)
        {
            int h = h0 + r * a.DilationH;
            if (h < 0 || h >= a.H) continue;
            int row = plane + h * a.W;
            for (int s = 0; s < a.S; s++)
            {
                int ww = w0 + s * a.DilationW;
                if (ww >= 0 && ww < a.W) acc += w[filter + r * a.S + s] * x[row + ww];
            }
        }
        y[i] = acc;
    }

    // ---- ILGPU kernels: backward ----------------------------------------------------------------------------------

    /// <summary>
    /// dx, one thread per input element i of dx: (N, C, H, W), gathering the outputs it feeds: tap (r, s) reads
    /// dy[p, q] with p = (h + ph - r dh) / sh when that division is exact and 0 &lt;= p &lt; P (q likewise).
    /// dy: (N, C, P, Q); w: (C, 1, R, S). Overwrites dx.
    /// </summary>
    [GpuKernel]
    public static void BackwardDataKernel(Index1D i, ArrayView<float> dy, ArrayView<float> w, ArrayView<float> dx, DepthwiseParams a)
    {
        int ww = i % a.W, t = i / a.W;
        int h = t % a.H;
        int nc = t / a.H;
        int c = nc % a.C;
        int plane = nc * a.P * a.Q, filter = c * a.R * a.S;
        float acc = 0f;
        for (int r = 0; r < a.R; r++)
        {
            int hp = h + a.PadH - r * a.DilationH;
            if (hp < 0) break;                       // hp only decreases with r
            int p = hp / a.StrideH;
            if (p * a.StrideH != hp || p >= a.P) continue;
            int row = plane + p * a.Q;
            for (int s = 0; s < a.S; s++)
            {
                int wq = ww + a.PadW - s * a.DilationW;
                if (wq < 0) break;
                int q = wq / a.StrideW;
                if (q * a.StrideW == wq && q < a.Q) acc += dy[row + q] * w[filter + r * a.S + s];
            }
        }
        dx[i] = acc;
    }

    /// <summary>Largest group the reduction kernel uses (the size of its shared-memory scratch).</summary>
    public const int MaxGroupSize = 256;

    /// <summary>
    /// dw and db: work items are (channel c, tap t) for t in [0, R*S + a.HasBias), item = c * taps + t; group g handles
    /// items g, g + groups, ... (any power-of-two group size &lt;= <see cref="MaxGroupSize"/>). The group's threads stride
    /// over the N*P*Q outputs of channel c, summing dy * x(tap) (or dy for the bias tap), then tree-reduce in shared
    /// memory; thread 0 accumulates dw[c, 0, r, s] += sum or db[c] += sum. x: (N, C, H, W); dy: (N, C, P, Q).
    /// </summary>
    [GpuKernel(ExplicitlyGrouped = true)]
    public static void BackwardFilterKernel(ArrayView<float> x, ArrayView<float> dy, ArrayView<float> dw, ArrayView<float> db, DepthwiseParams a)
    {
        var scratch = SharedMemory.Allocate<float>(MaxGroupSize);
        int t = Group.IdxX, g = Group.DimX, groups = Grid.DimX;
        int rs = a.R * a.S, taps = rs + a.HasBias, items = a.C * taps;
        int pq = a.P * a.Q, m = a.N * pq, hw = a.H * a.W;
        for (int item = Grid.IdxX; item < items; item += groups)
        {
            int c = item / taps, tap = item - c * taps;
            float sum = 0f;
            if (tap == rs)
            {
                for (int j = t; j < m; j += g)
                {
                    int n = j / pq;
                    sum += dy[(n * a.C + c) * pq + (j - n * pq)];
                }
            }
            else
            {
                int r = tap / a.S, s = tap - r * a.S;
                int offH = r * a.DilationH - a.PadH, offW = s * a.DilationW - a.PadW;
                for (int j = t; j < m; j += g)
                {
                    int n = j / pq, k = j - n * pq;
                    int p = k / a.Q, q = k - p * a.Q;
                    int h = p * a.StrideH + offH, ww = q * a.StrideW + offW;
                    if (h >= 0 && h < a.H && ww >= 0 && ww < a.W)
                        sum += dy[(n * a.C + c) * pq + k] * x[(n * a.C + c) * hw + h * a.W + ww];
                }
            }
            scratch[t] = sum;
            Group.Barrier();
            for (int half = g >> 1; half > 0; half >>= 1)
            {
                if (t < half) scratch[t] += scratch[t + half];
                Group.Barrier();
            }
            if (t == 0)
            {
                if (tap == rs) db[c] += scratch[0];
                else dw[c * rs + tap] += scratch[0];
            }
            Group.Barrier();   // the next item reuses the scratch
        }
    }

    // ---- launchers ----------------------------------------------------------------------------------------------

    /// <summary>Launches <see cref="ForwardKernel"/> over y. b: any view when !a.HasBias.</summary>
    public static void Launch(KernelCache k, in DepthwiseParams a, ArrayView<float> x, ArrayView<float> w, ArrayView<float> b, ArrayView<float> y)
    {
        k.Get(ForwardKernel, acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, DepthwiseParams>(ForwardKernel))((int)y.Length, x, w, b, y, a);
        k.CountLaunch();
    }

    /// <summary>Launches <see cref="BackwardDataKernel"/> over dx.</summary>
    public static void LaunchBackwardData(KernelCache k, in DepthwiseParams a, ArrayView<float> dy, ArrayView<float> w, ArrayView<float> dx)
    {
        k.Get(BackwardDataKernel, acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            DepthwiseParams>(BackwardDataKernel))((int)dx.Length, dy, w, dx, a);
        k.CountLaunch();
    }

    /// <summary>
    /// Launches <see cref="BackwardFilterKernel"/>: one group per (channel, tap) item on a GPU, one per simulated
    /// multiprocessor on ILGPU's CPU accelerator. db: any view when !a.HasBias.
    /// </summary>
    public static void LaunchBackwardFilter(KernelCache k, in DepthwiseParams a, ArrayView<float> x, ArrayView<float> dy, ArrayView<float> dw, ArrayView<float> db)
    {
        var accel = k.Accelerator;
        var config = new KernelConfig(ReductionLaunch.GridSize(accel, a.C * (a.R * a.S + a.HasBias)),
            ReductionLaunch.GroupSize(accel, (long)a.N * a.P * a.Q, MaxGroupSize));
        k.Get(BackwardFilterKernel, acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            DepthwiseParams>(BackwardFilterKernel))(config, x, dy, dw, db, a);
        k.CountLaunch();
    }

    // ---- cost ---------------------------------------------------------------------------------------------------

    /// <summary>Forward: 2 FLOPs per (output, tap) plus the bias add; reads x, w, b once and writes y.</summary>
    public static OpCost ForwardCost(in DepthwiseParams a)
    {
        double outs = (double)a.N * a.C * a.P * a.Q;
        return new(outs * (2.0 * a.R * a.S + a.HasBias), 4.0 * ((double)a.N * a.C * a.H * a.W + outs + (double)a.C * (a.R * a.S + a.HasBias)));
    }

    /// <summary>Backward data: 2 FLOPs per (output, tap); reads dy and w once and writes dx.</summary>
    public static OpCost BackwardDataCost(in DepthwiseParams a)
    {
        double outs = (double)a.N * a.C * a.P * a.Q;
        return new(outs * 2.0 * a.R * a.S, 4.0 * ((double)a.N * a.C * a.H * a.W + outs + (double)a.C * a.R * a.S));
    }

    /// <summary>Backward filter: 2 FLOPs per (output, tap) plus one per output for db; reads x and dy, reads and writes dw, db.</summary>
    public static OpCost BackwardFilterCost(in DepthwiseParams a)
    {
        double outs = (double)a.N * a.C * a.P * a.Q;
        return new(outs * (2.0 * a.R * a.S + a.HasBias), 4.0 * ((double)a.N * a.C * a.H * a.W + outs + 2.0 * a.C * (a.R * a.S + a.HasBias)));
    }
}
