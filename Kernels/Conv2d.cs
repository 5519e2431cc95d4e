using ILGPU;
using ILGPU.Runtime;

namespace GpuNet.Kernels;

/// <summary>
/// Shape and hyperparameters of one 2-D convolution, passed to the kernels as one struct. NCHW layout:
/// x (N, C, H, W), w (K, C/Groups, R, S), b (K), y (N, K, P, Q) with
/// P = (H + 2 PadH - DilH (R - 1) - 1) / StrideH + 1 and Q likewise.
/// </summary>
public struct Conv2dShape
{
    /// <summary>Batch size.</summary>
    public int N;
    /// <summary>Input channels.</summary>
    public int C;
    /// <summary>Input height.</summary>
    public int H;
    /// <summary>Input width.</summary>
    public int W;
    /// <summary>Output channels (filters).</summary>
    public int K;
    /// <summary>Kernel height.</summary>
    public int R;
    /// <summary>Kernel width.</summary>
    public int S;
    /// <summary>Output height.</summary>
    public int P;
    /// <summary>Output width.</summary>
    public int Q;
    /// <summary>Vertical stride.</summary>
    public int StrideH;
    /// <summary>Horizontal stride.</summary>
    public int StrideW;
    /// <summary>Zero rows added above and below.</summary>
    public int PadH;
    /// <summary>Zero columns added left and right.</summary>
    public int PadW;
    /// <summary>Vertical dilation (spacing of the kernel taps).</summary>
    public int DilH;
    /// <summary>Horizontal dilation.</summary>
    public int DilW;
    /// <summary>Groups: input channel block g feeds only output channel block g.</summary>
    public int Groups;

    /// <summary>Input channels per group.</summary>
    public readonly int Cg => C / Groups;
    /// <summary>Output channels per group.</summary>
    public readonly int Kg => K / Groups;
    /// <summary>Rows of one group's im2col matrix: Cg R S (columns of one group's filter matrix).</summary>
    public readonly int CgRS => C / Groups * R * S;
    /// <summary>Rows of one sample's im2col matrix: C R S.</summary>
    public readonly int CRS => C * R * S;
    /// <summary>Output pixels per channel: P Q.</summary>
    public readonly int PQ => P * Q;
    /// <summary>True for a 1x1, stride-1, unpadded convolution: x itself is the im2col matrix.</summary>
    public readonly bool Pointwise => R == 1 && S == 1 && StrideH == 1 && StrideW == 1 && PadH == 0 && PadW == 0;
}

/// <summary>
/// 2-D convolution (cross-correlation, as PyTorch's Conv2d), NCHW, any kernel size, stride, zero padding, dilation,
/// groups, optional bias. Shapes: see <see cref="Conv2dShape"/>.
///   forward:        y[n, k, p, q] = b[k] + sum_{c in group(k), r, s} w[k, c - g Cg, r, s] x[n, c, p Sh - Ph + r Dh, q Sw - Pw + s Dw]
///   backward data:  dx = the transpose of that map applied to dy                  (activation gradient: overwrite =)
///   backward filter: dw[k, c, r, s] += sum_{n, p, q} dy[n, k, p, q] x[n, ...];  db[k] += sum_{n, p, q} dy[n, k, p, q]
///                                                                               (parameter gradients: accumulate +=)
/// Implementation (both backends): im2col + GEMM. Per sample n and group g, with col_n (C R S, P Q) the unfolded input
/// (row c R S + r S + s, column p Q + q), group g's rows being the contiguous block [g CgRS, (g+1) CgRS):
///   y_ng (Kg, PQ) = W_g (Kg, CgRS) col_ng (CgRS, PQ)                   (NN)
///   dcol_ng (CgRS, PQ) = W_g^T dy_ng                                   (TN), then col2im gathers dcol into dx
///   dW_g (Kg, CgRS) += dy_ng (Kg, PQ) col_ng^T                         (NT, beta = 1)
/// A 1x1 stride-1 unpadded convolution needs no im2col: col_n is x_n. See docs/kernels/conv.md for the choice.
/// </summary>
public static partial class Conv2dOp
{
    // ---- float64 reference (the spec) ---------------------------------------------------------------------------

    /// <summary>
    /// Every term of the convolution: (y index, w index, x index) of y[n, k, p, q] += w[k, cl, r, t] x[n, g Cg + cl, h, w]
    /// for each tap inside x (padding contributes nothing), in (n, k, p, q, cl, r, t) order, so an output's terms are
    /// consecutive. The three references are this walk.
    /// </summary>
    private static IEnumerable<(int Y, int W, int X)> Terms(Conv2dShape s)
    {
        int cg = s.Cg, kg = s.Kg;
        for (int n = 0; n < s.N; n++)
            for (int k = 0; k < s.K; k++)
                for (int p = 0; p < s.P; p++)
                    for (int q = 0; q < s.Q; q++)
                        for (int cl = 0; cl < cg; cl++)
                            for (int r = 0; r < s.R; r++)
                                for (int t = 0; t < s.S; t++)
                                {
                                    int h = p * s.StrideH - s.PadH + r * s.DilH, wi = q * s.StrideW - s.PadW + t * s.DilW;
                                    if (h < 0 || h >= s.H || wi < 0 || wi >= s.W) continue;
                                    int c = k / kg * cg + cl;
                                    yield return (((n * s.K + k) * s.P + p) * s.Q + q, ((k * cg + cl) * s.R + r) * s.S + t, ((n * s.C + c) * s.H + h) * s.W + wi);
                                }
    }

    /// <summary>Reference forward: y = conv(x, w) + b. x: (N, C, H, W), w: (K, Cg, R, S), b: (K) or empty, y: (N, K, P, Q).</summary>
    public static void Reference(in Conv2dShape s, ReadOnlySpan<double> x, ReadOnlySpan<double> w, ReadOnlySpan<double> b, Span<double> y)
    {
        for (int i = 0; i < y.Length; i++) y[i] = b.IsEmpty ? 0 : b[i / s.PQ % s.K];
        foreach (var (yi, wi, xi) in Terms(s)) y[yi] += w[wi] * x[xi];
    }

    /// <summary>Reference backward data: dx = d(sum dy * y)/dx (overwritten). dy: (N, K, P, Q), w: (K, Cg, R, S), dx: (N, C, H, W).</summary>
    public static void ReferenceBackwardData(in Conv2dShape s, ReadOnlySpan<double> dy, ReadOnlySpan<double> w, Span<double> dx)
    {
        dx.Clear();
        foreach (var (yi, wi, xi) in Terms(s)) dx[xi] += dy[yi] * w[wi];
    }

    /// <summary>Reference backward filter: dw += sum dy x, db += sum dy (db empty: no bias). Shapes as in <see cref="Reference"/>.</summary>
    public static void ReferenceBackwardFilter(in Conv2dShape s, ReadOnlySpan<double> x, ReadOnlySpan<double> dy, Span<double> dw, Span<double> db)
    {
        if (!db.IsEmpty) for (int i = 0; i < s.N * s.K * s.PQ; i++) db[i / s.PQ % s.K] += dy[i];
        foreach (var (yi, wi, xi) in Terms(s)) dw[wi] += dy[yi] * x[xi];
    }

    // ---- ILGPU kernels ------------------------------------------------------------------------------------------

    /// <summary>
    /// im2col of samples n0 .. n0 + nb - 1: col (nb, C R S, P Q), col[nl, (c R + r) S + t, p Q + q] =
    /// x[n0 + nl, c, p Sh - Ph + r Dh, q Sw - Pw + t Dw], 0 in the padding. One thread per col element (coalesced writes).
    /// </summary>
    [GpuKernel]
    public static void Im2ColKernel(Index1D i, ArrayView<float> x, ArrayView<float> col, Conv2dShape s, int n0)
    {
        int pq = s.P * s.Q, rs = s.R * s.S, crs = s.C * rs;
        int j = i % pq, row = i / pq;
        int crsi = row % crs, nl = row / crs;
        int q = j % s.Q, p = j / s.Q;
        int t = crsi % s.S, r = crsi / s.S % s.R, c = crsi / rs;
        int h = p * s.StrideH - s.PadH + r * s.DilH, w = q * s.StrideW - s.PadW + t * s.DilW;
        float v = 0f;
        if (h >= 0 && h < s.H && w >= 0 && w < s.W) v = x[(((n0 + nl) * s.C + c) * s.H + h) * s.W + w];
        col[i] = v;
    }

    /// <summary>
    /// col2im of samples n0 .. n0 + nb - 1, gathering (no atomics): dx[n0 + nl, c, h, w] = sum of the dcol (nb, C R S, P Q)
    /// entries that im2col fed from (c, h, w). Overwrites dx. One thread per dx element of the block.
    /// </summary>
    [GpuKernel]
    public static void Col2ImKernel(Index1D i, ArrayView<float> dcol, ArrayView<float> dx, Conv2dShape s, int n0)
    {
        int hw = s.H * s.W, pq = s.P * s.Q, rs = s.R * s.S;
        int w = i % s.W, h = i / s.W % s.H, cn = i / hw;   // cn = nl C + c
        float sum = 0f;
        for (int r = 0; r < s.R; r++)
        {
            int hp = h + s.PadH - r * s.DilH;
            if (hp < 0) break;                              // hp only decreases with r
            int p = hp / s.StrideH;
            if (p * s.StrideH != hp || p >= s.P) continue;
            for (int t = 0; t < s.S; t++)
            {
                int wq = w + s.PadW - t * s.DilW;
                if (wq < 0) break;
                int q = wq / s.StrideW;
                if (q * s.StrideW != wq || q >= s.Q) continue;
                sum += dcol[(cn * rs + r * s.S + t) * pq + p * s.Q + q];
            }
        }
        dx[n0 * s.C * hw + i] = sum;
    }

    /// <summary>y[n, k, p, q] += b[k] over the whole y (N, K, P, Q).</summary>
    [GpuKernel]
    public static void BiasKernel(Index1D i, ArrayView<float> y, ArrayView<float> b, int k, int pq)
        => y[i] += b[i / pq % k];

    /// <summary>Threads per group of <see cref="BiasGradKernel"/> (a power of two; the size of its shared buffer).</summary>
    public const int BiasGradGroupSize = 256;

    /// <summary>
    /// db[k] += sum_{n, pq} dy[n, k, pq]: one group per k (grid-stride over k), each thread sums a strided share in
    /// float32, then a shared-memory tree reduction; any power-of-two group size up to <see cref="BiasGradGroupSize"/>.
    /// </summary>
    [GpuKernel(ExplicitlyGrouped = true)]
    public static void BiasGradKernel(ArrayView<float> dy, ArrayView<float> db, int n, int k, int pq)
    {
        var scratch = SharedMemory.Allocate<float>(BiasGradGroupSize);
        int t = Group.IdxX, g = Group.DimX, groups = Grid.DimX;
        int m = n * pq;
        for (int kk = Grid.IdxX; kk < k; kk += groups)
        {
            float sum = 0f;
            for (int j = t; j < m; j += g)
            {
                int b = j / pq;
                sum += dy[(b * k + kk) * pq + (j - b * pq)];
            }
            scratch[t] = sum;
            Group.Barrier();
            for (int half = g / 2; half > 0; half /= 2)
            {
                if (t < half) scratch[t] += scratch[t + half];
                Group.Barrier();
            }
            if (t == 0) db[kk] += scratch[0];
            Group.Barrier();
        }
    }

    // ---- launchers ----------------------------------------------------------------------------------------------

    /// <summary>
    /// Largest im2col workspace the GPU path uses (floats, default 2^24 = 64 MiB): a block of samples is unfolded at
    /// once up to this size. Tests lower it to exercise several blocks on tiny shapes.
    /// </summary>
    internal static int MaxColumnFloats = 1 << 24;

    /// <summary>Samples unfolded per im2col launch (at least 1): as many as fit in <see cref="MaxColumnFloats"/>.</summary>
    public static int SamplesPerBlock(in Conv2dShape s)
    {
        long perSample = (long)s.CRS * s.PQ;
        return (int)Math.Clamp(Volatile.Read(ref MaxColumnFloats) / Math.Max(perSample, 1), 1, Math.Max(s.N, 1));
    }

    /// <summary>
    /// Floats of the workspace <see cref="Launch"/>, <see cref="LaunchBackwardData"/> and <see cref="LaunchBackwardFilter"/>
    /// need: one block of <see cref="SamplesPerBlock"/> samples' im2col columns, 0 for a pointwise convolution (which
    /// reads x / writes dx directly). The launchers derive the block from the length of the workspace they get.
    /// </summary>
    public static int WorkspaceFloats(in Conv2dShape s)
        => s.Pointwise ? 0 : (int)((long)SamplesPerBlock(s) * s.CRS * s.PQ);

    /// <summary>Samples per block that the workspace <paramref name="col"/> holds (all of them when pointwise).</summary>
    private static int BlockOf(in Conv2dShape s, ArrayView<float> col)
    {
        if (s.Pointwise) return Math.Max(s.N, 1);
        long nb = col.Length / ((long)s.CRS * s.PQ);
        if (nb < 1) throw new ArgumentException($"Conv2d: the workspace holds {col.Length} floats, one sample's columns need {(long)s.CRS * s.PQ}", nameof(col));
        return (int)Math.Min(nb, Math.Max(s.N, 1));
    }

    /// <summary>
    /// Forward on an accelerator: per block of samples one im2col launch, per sample and group one GEMM
    /// (y_ng = W_g col_ng), then one bias launch when <paramref name="b"/> is not empty. col: <see cref="WorkspaceFloats"/>
    /// floats (unused when pointwise). Returns the number of launches.
    /// </summary>
    public static int Launch(KernelCache k, in Conv2dShape s, ArrayView<float> x, ArrayView<float> w, ArrayView<float> b,
        ArrayView<float> y, ArrayView<float> col)
    {
        int launches = LaunchGemms(k, s, GemmPass.Forward, x, w, y, col);
        if (b.Length > 0)
        {
            k.Get(BiasKernel, acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int>(BiasKernel))
                ((int)y.Length, y, b, s.K, s.PQ);
            k.CountLaunch();
            launches++;
        }
        return launches;
    }

    /// <summary>
    /// Backward data on an accelerator: per sample and group one GEMM dcol_ng = W_g^T dy_ng, per block one col2im
    /// launch (dx overwritten); pointwise: the GEMM writes dx directly. Returns the number of launches.
    /// </summary>
    public static int LaunchBackwardData(KernelCache k, in Conv2dShape s, ArrayView<float> dy, ArrayView<float> w,
        ArrayView<float> dx, ArrayView<float> col)
        => LaunchGemms(k, s, GemmPass.BackwardData, dx, w, dy, col);

    /// <summary>
    /// Backward filter on an accelerator: per block one im2col launch, per sample and group one GEMM
    /// dW_g += dy_ng col_ng^T (beta = 1); then one bias-gradient launch when <paramref name="db"/> is not empty.
    /// Returns the number of launches.
    /// </summary>
    public static int LaunchBackwardFilter(KernelCache k, in Conv2dShape s, ArrayView<float> x, ArrayView<float> dy,
        ArrayView<float> dw, ArrayView<float> db, ArrayView<float> col)
    {
        int launches = LaunchGemms(k, s, GemmPass.BackwardFilter, x, dw, dy, col);
        if (db.Length > 0)
        {
            var config = new KernelConfig(ReductionLaunch.GridSize(k.Accelerator, s.K), ReductionLaunch.MaxGroupSize(k.Accelerator, BiasGradGroupSize));
            k.Get(BiasGradKernel, acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, int, int>(BiasGradKernel))
                (config, dy, db, s.N, s.K, s.PQ);
            k.CountLaunch();
            launches++;
        }
        return launches;
    }

    private enum GemmPass { Forward, BackwardData, BackwardFilter }

    /// <summary>
    /// The GEMMs of one pass, block by block: the im2col of the block first (forward, backward filter), then per sample
    /// n and group g one GEMM over W_g (Kg, CgRS) = w (or dw), col_ng (CgRS, PQ) = the block's columns (or x / dx itself
    /// when pointwise) and y_ng (Kg, PQ) = y (or dy); then the col2im of the block (backward data). x: x, or dx for the
    /// backward data. Returns the number of launches.
    /// </summary>
    private static int LaunchGemms(KernelCache k, in Conv2dShape s, GemmPass pass, ArrayView<float> x, ArrayView<float> w,
        ArrayView<float> y, ArrayView<float> col)
    {
        int launches = 0, nb = BlockOf(s, col), pq = s.PQ, crs = s.CRS, cgrs = s.CgRS, kg = s.Kg;
        long xs = (long)s.C * s.H * s.W, ys = (long)s.K * pq;
        bool unfold = !s.Pointwise && pass != GemmPass.BackwardData;
        for (int n0 = 0; n0 < s.N; n0 += nb)
        {
            int count = Math.Min(nb, s.N - n0);
            if (unfold) { LaunchIm2Col(k, s, x, col, n0, count); launches++; }
            for (int nl = 0; nl < count; nl++)
            {
                var cols = s.Pointwise ? x.SubView((n0 + nl) * xs, xs) : col.SubView((long)nl * crs * pq, (long)crs * pq);
                for (int g = 0; g < s.Groups; g++)
                {
                    var wg = w.SubView((long)g * kg * cgrs, (long)kg * cgrs);
                    var cg = cols.SubView((long)g * cgrs * pq, (long)cgrs * pq);
                    var yg = y.SubView((n0 + nl) * ys + (long)g * kg * pq, (long)kg * pq);
                    if (pass == GemmPass.Forward) GemmOp.Launch(k, false, false, kg, pq, cgrs, 1f, wg, cg, 0f, yg, default, Activation.Identity, 0f);
                    else if (pass == GemmPass.BackwardData) GemmOp.Launch(k, true, false, cgrs, pq, kg, 1f, wg, yg, 0f, cg, default, Activation.Identity, 0f);
                    else GemmOp.Launch(k, false, true, kg, cgrs, pq, 1f, yg, cg, 1f, wg, default, Activation.Identity, 0f);
                    launches++;
                }
            }
            if (!s.Pointwise && pass == GemmPass.BackwardData)
            {
                k.Get(Col2ImKernel, acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, Conv2dShape, int>(Col2ImKernel))
                    ((int)(count * xs), col, x, s, n0);
                k.CountLaunch();
                launches++;
            }
        }
        return launches;
    }

    private static void LaunchIm2Col(KernelCache k, in Conv2dShape s, ArrayView<float> x, ArrayView<float> col, int n0, int count)
    {
        k.Get(Im2ColKernel, acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, Conv2dShape, int>(Im2ColKernel))
            ((int)((long)count * s.CRS * s.PQ), x, col, s, n0);
        k.CountLaunch();
    }

    // ---- cost ---------------------------------------------------------------------------------------------------

    /// <summary>Multiply-adds of the convolution: N K P Q (C/groups) R S.</summary>
    public static double Macs(in Conv2dShape s) => (double)s.N * s.K * s.PQ * s.Cg * s.R * s.S;

    /// <summary>Forward: 2 MACs FLOPs (+ N K P Q for the bias); bytes: x, w, b read once, y written.</summary>
    public static OpCost ForwardCost(in Conv2dShape s, bool hasBias)
        => new(2 * Macs(s) + (hasBias ? (double)s.N * s.K * s.PQ : 0),
               4.0 * ((double)s.N * s.C * s.H * s.W + (double)s.K * s.CgRS + (hasBias ? s.K : 0) + (double)s.N * s.K * s.PQ));

    /// <summary>Backward data: 2 MACs FLOPs; bytes: dy and w read, dx written.</summary>
    public static OpCost BackwardDataCost(in Conv2dShape s)
        => new(2 * Macs(s), 4.0 * ((double)s.N * s.K * s.PQ + (double)s.K * s.CgRS + (double)s.N * s.C * s.H * s.W));

    /// <summary>Backward filter: 2 MACs FLOPs (+ N K P Q for db); bytes: x and dy read, dw (and db) read and written.</summary>
    public static OpCost BackwardFilterCost(in Conv2dShape s, bool hasBias)
        => new(2 * Macs(s) + (hasBias ? (double)s.N * s.K * s.PQ : 0),
               4.0 * ((double)s.N * s.C * s.H * s.W + (double)s.N * s.K * s.PQ + 2.0 * s.K * s.CgRS + (hasBias ? 2.0 * s.K : 0)));
}
