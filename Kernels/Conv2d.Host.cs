using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GpuNet.Kernels;

public static unsafe partial class Conv2dOp
{
    // ---- SIMD host implementation -------------------------------------------------------------------------------
    //
    // Every pass is host GEMMs (HostGemm: packed panels, FMA micro-kernels) whose B panels are built straight from the
    // activations: the packer (PackColumns, PackColumnsTransposed) writes one im2col row of the panel's columns at a
    // time into a small per-thread buffer (L1: masked 16-wide loads of each input row, zeros for the padding) and copies
    // it into the panel's slivers, so no C R S x P Q column matrix is written and read back. The weights, the A operand
    // of forward and backward data, are packed once per call and shared by every sample and thread.
    //   forward          y_n,g (Kg, PQ)  = W_g (Kg, Cg R S) col(x_n,g) (Cg R S, PQ)
    //   backward data    stride 1: a forward convolution of dy with the flipped, transposed filter
    //                    W'_g[c, k, r, t] = W_g[k, c, R-1-r, S-1-t] and padding dil (R - 1) - pad:
    //                    dx_n,g (Cg, HW) = W'_g (Cg, Kg R S) col'(dy_n,g) (Kg R S, HW), so it needs no scatter;
    //                    stride > 1: dcol = W_g^T dy_n,g into a per-thread buffer, then col2im (a scatter-add).
    //   backward filter  dW_g (Kg, Cg R S) += sum_n dy_n,g (Kg, PQ) col(x_n,g)^T (PQ, Cg R S): K = N P Q in slices
    //                    of one sample's P Q; B panels are transposed im2col rows.
    // Large batches run samples in parallel on the HostSimd pool, each with a single-threaded GEMM; a batch too small to
    // split evenly runs samples in order with the GEMM itself parallel (the packers are called from several threads
    // then: they only read the sample and write their own slivers). The filter gradient sums over samples: each of a
    // fixed number of sample ranges accumulates into its own partial (dw, db) in a buffer of the calling thread, and the
    // partials are added to dw, db in a fixed order, so the result does not depend on thread timing. Nothing is allocated
    // per call once the buffers have grown.

    /// <summary>Shallowest K (C R S) that runs on the dense grid (see <see cref="UseDense"/>).</summary>
    private const int DenseMinDepth = 32;

    /// <summary>This thread's dcol buffer of a strided backward data (pinned, grown on demand, never shrunk; scratch).</summary>
    [ThreadStatic] private static float[]? t_col;
    /// <summary>The calling thread's buffer of filter-gradient partials (pinned, grown on demand).</summary>
    [ThreadStatic] private static float[]? t_partials;
    /// <summary>The calling thread's packed weights of the current call (every group), read by every sample.</summary>
    [ThreadStatic] private static float[]? t_packedW;
    /// <summary>The calling thread's flipped, transposed weights of a stride-1 backward data.</summary>
    [ThreadStatic] private static float[]? t_flipped;
    /// <summary>This thread's im2col rows of the sliver being packed (L1-sized).</summary>
    [ThreadStatic] private static float[]? t_rows;
    /// <summary>This thread's zero-padded input planes of the dense grid.</summary>
    [ThreadStatic] private static float[]? t_padded;
    /// <summary>This thread's output on the dense grid, before its dropped columns are squeezed out.</summary>
    [ThreadStatic] private static float[]? t_dense;

    /// <summary>
    /// The im2col matrix of one sample and group, B[kr, j] = X[c, p sh - ph + r dh, q sw - pw + t dw] (0 outside the
    /// input) for row kr = (c R + r) S + t and column j = p Q + q; X: (C, H, W), output P x Q.
    /// </summary>
    private struct ColSource
    {
        public float* X;
        public int C, H, W, P, Q, R, S, StrideH, StrideW, PadH, PadW, DilH, DilW;

        /// <summary>The columns of one sample and group of the convolution <paramref name="s"/>; x: (Cg, H, W).</summary>
        public ColSource(in Conv2dShape s, float* x)
        {
            X = x; C = s.Cg; H = s.H; W = s.W; P = s.P; Q = s.Q; R = s.R; S = s.S;
            StrideH = s.StrideH; StrideW = s.StrideW; PadH = s.PadH; PadW = s.PadW; DilH = s.DilH; DilW = s.DilW;
        }
    }

    private static readonly Vector512<int> Lanes = Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);

    /// <summary>
    /// dst[i] = B[kr, j0 + i] for i in [0, count): row kr of <paramref name="g"/>'s im2col matrix over columns
    /// j0 .. j0 + count, one output row p at a time (zeros, or a copy of an input row's valid stretch with zeros around
    /// it). May write zeros to dst[count .. count + 16).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ColRow(in ColSource g, int kr, int j0, int count, float* dst)
    {
        int rs = g.R * g.S;
        int c = kr / rs, rt = kr - c * rs, r = rt / g.S, t = rt - r * g.S;
        float* xc = g.X + (long)c * g.H * g.W;
        int off = t * g.DilW - g.PadW, sw = g.StrideW;
        // Valid output columns [lo, hi): 0 <= q sw + off < W.
        int lo = off >= 0 ? 0 : (-off + sw - 1) / sw;
        int hi = g.W - 1 - off < 0 ? 0 : Math.Min(g.Q, (g.W - 1 - off) / sw + 1);
        lo = Math.Min(lo, g.Q);
        hi = Math.Max(hi, lo);
        bool masked = sw == 1 && Avx512F.IsSupported;
        int end = j0 + count;
        for (int p = j0 / g.Q, rowStart = p * g.Q; rowStart < end; p++, rowStart += g.Q)
        {
            int qa = Math.Max(0, j0 - rowStart), qb = Math.Min(g.Q, end - rowStart);
            float* d = dst + (rowStart - j0);   // d[q] for q in [qa, qb)
            int h = p * g.StrideH - g.PadH + r * g.DilH;
            int va = Math.Max(qa, lo), vb = Math.Min(qb, hi);
            if ((uint)h >= (uint)g.H || vb <= va)
            {
                new Span<float>(d + qa, qb - qa).Clear();
                continue;
            }
            float* src = xc + (long)h * g.W + off;   // src[q sw] = X[c, h, q sw + off]
            if (masked)
            {
                // 16 columns at a time: lanes outside [va, vb) load nothing and give 0; lanes past qb are stored too
                // (the next output row, written after this one, or dst's 16 floats of slack).
                for (int q0 = qa; q0 < qb; q0 += 16)
                {
                    var inside = Vector512.GreaterThanOrEqual(Lanes, Vector512.Create(va - q0)) & Vector512.LessThan(Lanes, Vector512.Create(vb - q0));
                    Avx512F.MaskLoad(src + q0, inside.AsSingle(), Vector512<float>.Zero).Store(d + q0);
                }
                continue;
            }
            int q = qa;
            for (; q < va; q++) d[q] = 0f;
            for (; q < vb; q++) d[q] = src[q * sw];
            for (; q < qb; q++) d[q] = 0f;
        }
    }

    /// <summary>
    /// The <see cref="HostGemm.Job.PackBFrom"/> of forward and stride-1 backward data: B = the im2col matrix (rows
    /// kr, columns j) of the <see cref="ColSource"/> at <paramref name="state"/>; rows [pc, pc + kc), columns
    /// [jc, jc + nc) into nr-column slivers (zero past jc + nc).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackColumns(void* state, int pc, int kc, int jc, int nc, int nr, float* dst)
    {
        ref readonly var g = ref *(ColSource*)state;
        int full = nc / nr * nr;
        float* row = Pinned(ref t_rows, full + 2L * nr + 16);
        for (int i = 0; i < kc; i++)
        {
            ColRow(g, pc + i, jc, nc, row);
            float* d = dst + i * nr;
            for (int s = 0; s < full; s += nr) HostGemm.CopyRow(row + s, d + (long)s * kc, nr);
            if (full < nc)
            {
                new Span<float>(row + nc, full + nr - nc).Clear();
                HostGemm.CopyRow(row + full, d + (long)full * kc, nr);
            }
        }
    }

    /// <summary>
    /// The <see cref="HostGemm.Job.PackBFrom"/> of backward filter: B = the transposed im2col matrix (rows j = p Q + q,
    /// columns kr) of the <see cref="ColSource"/> at <paramref name="state"/>; rows [pc, pc + kc), columns [jc, jc + nc)
    /// into nr-column slivers: each sliver's nr im2col rows are built in a per-thread buffer, then transposed in.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackColumnsTransposed(void* state, int pc, int kc, int jc, int nc, int nr, float* dst)
    {
        ref readonly var g = ref *(ColSource*)state;
        float* rows = Pinned(ref t_rows, (long)nr * kc + 16);
        for (int s = 0; s < nc; s += nr, dst += nr * kc)
        {
            int cols = Math.Min(nr, nc - s);
            // Row i's slack overlaps row i + 1, which is written after it.
            for (int i = 0; i < cols; i++) ColRow(g, jc + s + i, pc, kc, rows + (long)i * kc);
            HostGemm.PackTransposed(rows, kc, cols, kc, dst, nr);
            for (int j = cols; j < nr; j++)
                for (int p = 0; p < kc; p++) dst[p * nr + j] = 0f;
        }
    }

    /// <summary>Host forward: y = conv(x, w) + b (b empty: no bias). Same contract as <see cref="Reference"/>.</summary>
    public static void Host(in Conv2dShape s, ArraySegment<float> x, ArraySegment<float> w, ArraySegment<float> b, ArraySegment<float> y)
    {
        if (s.N == 0 || s.K == 0 || s.PQ == 0) return;
        bool parallel = SampleParallel(s), wide = Vector512.IsHardwareAccelerated;
        int threads = parallel ? 1 : HostGemmPool.Threads;
        fixed (float* px = x.AsSpan(), pw = w.AsSpan(), pb = b.AsSpan(), py = y.AsSpan())
        {
            // W_g (Kg, Cg R S), packed once for every sample.
            long perGroup = HostGemm.PackedAFloats(s.Kg, s.CgRS, wide);
            float* packed = Pinned(ref t_packedW, perGroup * s.Groups);
            for (int g = 0; g < s.Groups; g++)
                HostGemm.PrepackA(pw + (long)g * s.Kg * s.CgRS, false, s.Kg, s.CgRS, wide, packed + g * perGroup);
            var st = new SampleJob
            {
                Shape = s, In = px, Out = py, Bias = b.Count > 0 ? pb : null, Packed = packed, PackedPerGroup = perGroup,
                Threads = threads, Wide = wide,
            };
            HostSimd.For(s.N, parallel, st, static (st, n) => ForwardSample(st, n));
        }
    }

    /// <summary>Host backward data: dx = conv^T(dy, w), overwritten. Same contract as <see cref="ReferenceBackwardData"/>.</summary>
    public static void HostBackwardData(in Conv2dShape s, ArraySegment<float> dy, ArraySegment<float> w, ArraySegment<float> dx)
    {
        if (s.N == 0 || s.C == 0 || s.H == 0 || s.W == 0) return;
        bool parallel = SampleParallel(s), wide = Vector512.IsHardwareAccelerated;
        int threads = parallel ? 1 : HostGemmPool.Threads;
        bool gather = s.StrideH == 1 && s.StrideW == 1;
        fixed (float* pdy = dy.AsSpan(), pw = w.AsSpan(), pdx = dx.AsSpan())
        {
            int cg = s.Cg, kg = s.Kg, rs = s.R * s.S;
            long perGroup = HostGemm.PackedAFloats(cg, kg * rs, wide);
            float* packed = Pinned(ref t_packedW, perGroup * s.Groups);
            if (gather)
            {
                // W'_g[c, k, r, t] = W_g[k, c, R-1-r, S-1-t]: (Cg, Kg R S), packed as A.
                float* flipped = Pinned(ref t_flipped, (long)cg * kg * rs);
                for (int g = 0; g < s.Groups; g++)
                {
                    float* wg = pw + (long)g * kg * cg * rs;
                    for (int c = 0; c < cg; c++)
                        for (int k = 0; k < kg; k++)
                        {
                            float* src = wg + ((long)k * cg + c) * rs;
                            float* dst = flipped + ((long)c * kg + k) * rs;
                            for (int i = 0; i < rs; i++) dst[i] = src[rs - 1 - i];
                        }
                    HostGemm.PrepackA(flipped, false, cg, kg * rs, wide, packed + g * perGroup);
                }
            }
            else
            {
                // W_g^T: (Cg R S, Kg).
                for (int g = 0; g < s.Groups; g++)
                    HostGemm.PrepackA(pw + (long)g * kg * s.CgRS, true, s.CgRS, kg, wide, packed + g * perGroup);
            }
            var st = new SampleJob
            {
                Shape = s, In = pdy, Out = pdx, Packed = packed, PackedPerGroup = perGroup, Threads = threads, Wide = wide,
            };
            if (gather) HostSimd.For(s.N, parallel, st, static (st, n) => BackwardDataGather(st, n));
            else HostSimd.For(s.N, parallel, st, static (st, n) => BackwardDataScatter(st, n));
        }
    }

    /// <summary>
    /// Host backward filter: dw += sum_n dy_n col_n^T, db += sum dy (db empty: no bias). Same contract as
    /// <see cref="ReferenceBackwardFilter"/>.
    /// </summary>
    public static void HostBackwardFilter(in Conv2dShape s, ArraySegment<float> x, ArraySegment<float> dy, ArraySegment<float> dw, ArraySegment<float> db)
    {
        if (s.N == 0 || s.K == 0 || s.PQ == 0) return;
        bool parallel = SampleParallel(s);
        int parts = parallel ? Math.Min(HostSimd.PoolThreads, s.N) : 1;
        bool hasBias = db.Count > 0;
        int dwLen = s.K * s.CgRS, partLen = dwLen + s.K;
        fixed (float* px = x.AsSpan(), pdy = dy.AsSpan(), pdw = dw.AsSpan(), pdb = db.AsSpan())
        {
            if (parts == 1)
            {
                // One range: accumulate straight into dw, db, with the GEMM parallel.
                FilterRange(s, px, pdy, pdw, hasBias ? pdb : null, 0, s.N, 1f, HostGemmPool.Threads);
                return;
            }
            float* partials = Pinned(ref t_partials, (long)parts * partLen);
            HostSimd.For(parts, true, (s, (nint)px, (nint)pdy, (nint)partials, hasBias, parts, partLen),
                static (st, part) =>
                {
                    float* dwp = (float*)st.Item4 + (long)part * st.partLen;
                    int n0 = (int)((long)st.s.N * part / st.parts), n1 = (int)((long)st.s.N * (part + 1) / st.parts);
                    // beta = 0 on the first sample: the partial need not be cleared; db's partial is cleared here.
                    if (st.hasBias) new Span<float>(dwp + st.s.K * st.s.CgRS, st.s.K).Clear();
                    FilterRange(st.s, (float*)st.Item2, (float*)st.Item3, dwp, st.hasBias ? dwp + st.s.K * st.s.CgRS : null, n0, n1, 0f, 1);
                });
            var dwSpan = new Span<float>(pdw, dwLen);
            for (int part = 0; part < parts; part++)
            {
                float* dwp = partials + (long)part * partLen;
                TensorPrimitives.Add(dwSpan, new ReadOnlySpan<float>(dwp, dwLen), dwSpan);
                if (hasBias)
                {
                    var dbSpan = new Span<float>(pdb, s.K);
                    TensorPrimitives.Add(dbSpan, new ReadOnlySpan<float>(dwp + dwLen, s.K), dbSpan);
                }
            }
        }
    }

    /// <summary>What every sample of a forward or backward-data call shares: the shape, the tensors, the packed weights.</summary>
    private struct SampleJob
    {
        public Conv2dShape Shape;
        public float* In, Out, Bias, Packed;
        public long PackedPerGroup;
        public int Threads;
        public bool Wide;
    }

    /// <summary>Samples in parallel (single-threaded GEMMs) when the batch splits evenly enough over the pool's threads.</summary>
    private static bool SampleParallel(in Conv2dShape s)
    {
        int threads = HostSimd.PoolThreads;
        if (threads == 1 || s.N == 1) return false;
        if (Macs(s) < HostGemm.ParallelMacs) return false;
        return s.N % threads == 0 || s.N >= 4 * threads;
    }

    private static void ForwardSample(in SampleJob st, int n)
    {
        ref readonly var s = ref st.Shape;
        int pq = s.PQ, kg = s.Kg;
        float* xn = st.In + (long)n * s.C * s.H * s.W, yn = st.Out + (long)n * s.K * pq;
        for (int g = 0; g < s.Groups; g++)
            ConvGemm(new ColSource(s, xn + (long)g * s.Cg * s.H * s.W), st.Packed + g * st.PackedPerGroup, kg,
                yn + (long)g * kg * pq, s.Pointwise, st.Wide, st.Threads);
        if (st.Bias != null)
            for (int k = 0; k < s.K; k++)
            {
                var row = new Span<float>(yn + (long)k * pq, pq);
                TensorPrimitives.Add(row, st.Bias[k], row);
            }
    }

    /// <summary>Stride-1 backward data of sample n: the forward of dy_n,g with the flipped filter (see the file's notes).</summary>
    private static void BackwardDataGather(in SampleJob st, int n)
    {
        ref readonly var s = ref st.Shape;
        int pq = s.PQ, kg = s.Kg, cg = s.Cg, hw = s.H * s.W;
        float* dyn = st.In + (long)n * s.K * pq, dxn = st.Out + (long)n * s.C * hw;
        for (int g = 0; g < s.Groups; g++)
        {
            var src = new ColSource
            {
                X = dyn + (long)g * kg * pq, C = kg, H = s.P, W = s.Q, P = s.H, Q = s.W, R = s.R, S = s.S, StrideH = 1, StrideW = 1,
                PadH = s.DilH * (s.R - 1) - s.PadH, PadW = s.DilW * (s.S - 1) - s.PadW, DilH = s.DilH, DilW = s.DilW,
            };
            ConvGemm(src, st.Packed + g * st.PackedPerGroup, cg, dxn + (long)g * cg * hw, s.Pointwise, st.Wide, st.Threads);
        }
    }

    /// <summary>
    /// output (M, P Q) = A (M, C R S; packed by <see cref="HostGemm.PrepackA"/>) col(src) (C R S, P Q), overwritten:
    /// x itself as B when <paramref name="pointwise"/>, the dense grid when <see cref="UseDense"/>, else
    /// <see cref="PackColumns"/>.
    /// </summary>
    private static void ConvGemm(ColSource src, float* packedA, int m, float* output, bool pointwise, bool wide, int threads)
    {
        var job = new HostGemm.Job { PackedA = packedA, M = m, K = src.C * src.R * src.S, Alpha = 1f, Beta = 0f };
        if (pointwise)
        {
            job.B = src.X; job.C = output; job.N = src.P * src.Q;
            HostGemm.Run(ref job, wide, threads);
            return;
        }
        if (!UseDense(src))
        {
            job.PackBFrom = &PackColumns; job.PackBState = &src; job.C = output; job.N = src.P * src.Q;
            HostGemm.Run(ref job, wide, threads);
            return;
        }
        // Dense grid: the input planes zero-padded to (Hp, Wp), the output computed on P x Wp columns (q >= Q dropped).
        int wp = src.W + 2 * src.PadW, hp = src.H + 2 * src.PadH, nd = src.P * wp;
        long plane = (long)hp * wp, slack = (long)(src.S - 1) * src.DilW;
        float* xp = Pinned(ref t_padded, src.C * plane + slack);
        PadPlanes(src, xp, hp, wp);
        new Span<float>(xp + src.C * plane, (int)slack).Clear();
        float* dense = Pinned(ref t_dense, (long)m * nd);
        var rows = new DenseSource { Xp = xp, Plane = plane, Wp = wp, R = src.R, S = src.S, DilH = src.DilH, DilW = src.DilW };
        job.PackBFrom = &PackDenseRows; job.PackBState = &rows; job.C = dense; job.N = nd;
        HostGemm.Run(ref job, wide, threads);
        int pq = src.P * src.Q;
        for (int i = 0; i < m; i++)
            for (int p = 0; p < src.P; p++)
                CopyShort(dense + (long)i * nd + p * wp, output + (long)i * pq + p * src.Q, src.Q);
    }

    /// <summary>
    /// Whether a convolution runs on the dense grid: stride 1, no negative padding, a K (C R S) of at least
    /// <see cref="DenseMinDepth"/> (the grid's extra pass over the output is paid once per K), and the P x Wp grid
    /// (Wp = W + 2 pw) needs at most 1/8 more 32-column slivers than the P x Q output.
    /// </summary>
    private static bool UseDense(in ColSource src)
    {
        if (src.StrideH != 1 || src.StrideW != 1 || src.PadH < 0 || src.PadW < 0) return false;
        if (src.C * src.R * src.S < DenseMinDepth) return false;
        long dense = (long)src.P * (src.W + 2 * src.PadW), exact = (long)src.P * src.Q;
        return (dense + 31) / 32 * 8 <= (exact + 31) / 32 * 9;
    }

    /// <summary>
    /// Stride-1 im2col over the dense grid: row kr = (c, r, t) of B is the contiguous run of P Wp floats from
    /// Xp[c, r dh, t dw] of the padded planes (C, Hp, Wp); a valid column (p, q &lt; Q) reads Xp[c, p + r dh, q + t dw]
    /// inside its plane, the dropped ones may run (S - 1) dw floats into the next plane (or the slack after the last).
    /// </summary>
    private struct DenseSource
    {
        public float* Xp;
        public long Plane;
        public int Wp, R, S, DilH, DilW;
    }

    /// <summary>The <see cref="HostGemm.Job.PackBFrom"/> of the dense grid: plain copies of the rows of <see cref="DenseSource"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackDenseRows(void* state, int pc, int kc, int jc, int nc, int nr, float* dst)
    {
        ref readonly var g = ref *(DenseSource*)state;
        int rs = g.R * g.S, full = nc / nr * nr;
        int c = pc / rs, rt = pc - c * rs, r = rt / g.S, t = rt - r * g.S;
        for (int i = 0; i < kc; i++)
        {
            float* src = g.Xp + c * g.Plane + (long)r * g.DilH * g.Wp + t * g.DilW + jc;
            float* d = dst + i * nr;
            for (int s = 0; s < full; s += nr) HostGemm.CopyRow(src + s, d + (long)s * kc, nr);
            if (full < nc)
            {
                float* dt = d + (long)full * kc;
                int j = 0;
                for (; j < nc - full; j++) dt[j] = src[full + j];
                for (; j < nr; j++) dt[j] = 0f;
            }
            if (++t == g.S) { t = 0; if (++r == g.R) { r = 0; c++; } }
        }
    }

    /// <summary>Copies the planes of <paramref name="src"/> (C, H, W) into xp (C, hp, wp) at (PadH, PadW), zeroing the border.</summary>
    private static void PadPlanes(in ColSource src, float* xp, int hp, int wp)
    {
        int h0 = src.PadH, w0 = src.PadW, w = src.W;
        long plane = (long)hp * wp;
        for (int c = 0; c < src.C; c++)
        {
            float* d = xp + c * plane, x = src.X + (long)c * src.H * w;
            new Span<float>(d, h0 * wp + w0).Clear();
            for (int h = 0; h < src.H; h++)
            {
                float* row = d + (long)(h0 + h) * wp + w0;
                CopyShort(x + (long)h * w, row, w);
                new Span<float>(row + w, 2 * w0).Clear();   // this row's right border, the next row's left one
            }
            long done = (long)(h0 + src.H) * wp + w0;
            new Span<float>(d + done, (int)(plane - done)).Clear();
        }
    }

    /// <summary>dst[0 .. count) = src[0 .. count): one masked load and store when count &lt;= 16 (AVX-512).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CopyShort(float* src, float* dst, int count)
    {
        if (count <= 16 && Avx512F.IsSupported)
        {
            var mask = Vector512.LessThan(Lanes, Vector512.Create(count)).AsSingle();
            Avx512F.MaskStore(dst, mask, Avx512F.MaskLoad(src, mask, Vector512<float>.Zero));
            return;
        }
        Buffer.MemoryCopy(src, dst, (long)count * sizeof(float), (long)count * sizeof(float));
    }

    /// <summary>Strided backward data of sample n: dcol_g (Cg R S, PQ) = W_g^T dy_n,g, then col2im onto dx_n.</summary>
    private static void BackwardDataScatter(in SampleJob st, int n)
    {
        ref readonly var s = ref st.Shape;
        int pq = s.PQ, cgrs = s.CgRS, kg = s.Kg, chw = s.C * s.H * s.W;
        float* dyn = st.In + (long)n * s.K * pq, dxn = st.Out + (long)n * chw;
        float* dcol = Pinned(ref t_col, (long)s.CRS * pq);
        for (int g = 0; g < s.Groups; g++)
        {
            var job = new HostGemm.Job
            {
                PackedA = st.Packed + g * st.PackedPerGroup, B = dyn + (long)g * kg * pq, C = dcol + (long)g * cgrs * pq,
                M = cgrs, N = pq, K = kg, Alpha = 1f, Beta = 0f,
            };
            HostGemm.Run(ref job, st.Wide, st.Threads);
        }
        new Span<float>(dxn, chw).Clear();
        Col2ImAdd(s, dcol, dxn);
    }

    /// <summary>
    /// dw (+)= sum over samples [n0, n1) of dy_n col_n^T, db (+)= row sums of dy_n (db null: none). The first sample uses
    /// <paramref name="firstBeta"/> (0: dw is overwritten, 1: accumulated); db is always added to.
    /// </summary>
    private static void FilterRange(in Conv2dShape s, float* x, float* dy, float* dw, float* db, int n0, int n1, float firstBeta, int threads)
    {
        int pq = s.PQ, cgrs = s.CgRS, kg = s.Kg;
        bool wide = Vector512.IsHardwareAccelerated;
        for (int n = n0; n < n1; n++)
        {
            float* xn = x + (long)n * s.C * s.H * s.W, dyn = dy + (long)n * s.K * pq;
            float beta = n == n0 ? firstBeta : 1f;
            // dW_g (Kg, CgRS) += dy_g (Kg, PQ) col_g^T
            for (int g = 0; g < s.Groups; g++)
            {
                float* xg = xn + (long)g * s.Cg * s.H * s.W;
                var src = new ColSource(s, xg);
                var job = new HostGemm.Job
                {
                    A = dyn + (long)g * kg * pq, C = dw + (long)g * kg * cgrs, M = kg, N = cgrs, K = pq,
                    Alpha = 1f, Beta = beta,
                };
                // 1x1 stride 1 unpadded: col_g is x_n,g (Cg, HW), read transposed.
                if (s.Pointwise) { job.B = xg; job.TransB = true; }
                else { job.PackBFrom = &PackColumnsTransposed; job.PackBState = &src; }
                HostGemm.Run(ref job, wide, threads);
            }
            if (db != null)
                for (int k = 0; k < s.K; k++) db[k] += TensorPrimitives.Sum(new ReadOnlySpan<float>(dyn + (long)k * pq, pq));
        }
    }

    /// <summary>Valid output columns [qlo, qhi) of kernel column t: those whose input column q Sw - Pw + t Dw lies in [0, W).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (int Lo, int Hi) ValidColumns(in Conv2dShape s, int t)
    {
        int off = t * s.DilW - s.PadW;
        int lo = off >= 0 ? 0 : (-off + s.StrideW - 1) / s.StrideW;
        int hi = s.W - 1 - off < 0 ? 0 : Math.Min(s.Q, (s.W - 1 - off) / s.StrideW + 1);
        return (Math.Min(lo, s.Q), Math.Max(hi, Math.Min(lo, s.Q)));
    }

    /// <summary>Folds dcol (C R S, P Q) back onto dx_n (C, H, W), adding (the inverse scatter of im2col).</summary>
    private static void Col2ImAdd(in Conv2dShape s, float* dcol, float* dxn)
    {
        int pq = s.PQ, sw = s.StrideW;
        for (int c = 0; c < s.C; c++)
            for (int r = 0; r < s.R; r++)
                for (int t = 0; t < s.S; t++)
                {
                    float* src = dcol + (long)((c * s.R + r) * s.S + t) * pq;
                    var (lo, hi) = ValidColumns(s, t);
                    if (hi <= lo) continue;
                    int off = t * s.DilW - s.PadW;
                    for (int p = 0; p < s.P; p++)
                    {
                        int h = p * s.StrideH - s.PadH + r * s.DilH;
                        if (h < 0 || h >= s.H) continue;
                        float* d = dxn + (long)(c * s.H + h) * s.W + off;
                        float* v = src + p * s.Q;
                        if (sw == 1)
                        {
                            var dst = new Span<float>(d + lo, hi - lo);
                            TensorPrimitives.Add(dst, new ReadOnlySpan<float>(v + lo, hi - lo), dst);
                        }
                        else for (int q = lo; q < hi; q++) d[q * sw] += v[q];
                    }
                }
    }

    /// <summary>A pinned buffer of at least <paramref name="floats"/> floats held in <paramref name="slot"/> (grown on demand).</summary>
    private static float* Pinned(ref float[]? slot, long floats)
    {
        if (floats > Array.MaxLength) throw new ArgumentOutOfRangeException(nameof(floats), floats, $"Conv2d: a workspace of {floats} floats is too large");
        floats = Math.Max(floats, 1);
        if (slot is null || slot.Length < floats)
            slot = GC.AllocateUninitializedArray<float>((int)Math.Max(floats, slot is null ? 0 : Math.Min(2L * slot.Length, Array.MaxLength)), pinned: true);
        return (float*)Unsafe.AsPointer(ref slot[0]);
    }
}
