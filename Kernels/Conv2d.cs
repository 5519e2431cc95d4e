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
/// Accelerators (Conv2d.Implicit.cs): each pass is one implicit GEMM over the whole batch whose operands are gathered
/// from x, w and dy as the tiles load (no column buffer); the filter gradient splits its N P Q reduction over several
/// groups when its output is small, then adds the partials in a second launch. Host: Conv2d.Host.cs. See
/// docs/kernels/conv.md.
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
