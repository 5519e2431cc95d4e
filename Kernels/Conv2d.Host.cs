using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace GpuNet.Kernels;

public static unsafe partial class Conv2dOp
{
    // ---- SIMD host implementation -------------------------------------------------------------------------------
    //
    // Per sample: im2col into this thread's pinned column buffer (row copies with zeroed borders), then one blocked host
    // GEMM per group (HostGemm, packed FMA micro-kernels). Large batches run samples in parallel on the HostSimd pool,
    // each with a single-threaded GEMM; a batch too small to split evenly runs samples in order with the GEMM itself
    // parallel. The filter gradient sums over samples: each of a fixed number of sample ranges accumulates into its own
    // partial (dw, db) in a buffer of the calling thread, and the partials are added to dw, db in a fixed order, so the
    // result does not depend on thread timing. Nothing is allocated per call once the buffers have grown.

    /// <summary>This thread's im2col buffer (pinned, grown on demand, never shrunk; its contents are scratch).</summary>
    [ThreadStatic] private static float[]? t_col;
    /// <summary>The calling thread's buffer of filter-gradient partials (pinned, grown on demand).</summary>
    [ThreadStatic] private static float[]? t_partials;

    /// <summary>Host forward: y = conv(x, w) + b (b empty: no bias). Same contract as <see cref="Reference"/>.</summary>
    public static void Host(in Conv2dShape s, ArraySegment<float> x, ArraySegment<float> w, ArraySegment<float> b, ArraySegment<float> y)
    {
        if (s.N == 0 || s.K == 0 || s.PQ == 0) return;
        bool parallel = SampleParallel(s);
        int threads = parallel ? 1 : HostGemmPool.Threads;
        fixed (float* px = x.AsSpan(), pw = w.AsSpan(), pb = b.AsSpan(), py = y.AsSpan())
        {
            HostSimd.For(s.N, parallel, (s, (nint)px, (nint)pw, b.Count > 0 ? (nint)pb : 0, (nint)py, threads),
                static (st, n) => ForwardSample(st.s, (float*)st.Item2, (float*)st.Item3, (float*)st.Item4, (float*)st.Item5, n, st.threads));
        }
    }

    /// <summary>Host backward data: dx = conv^T(dy, w), overwritten. Same contract as <see cref="ReferenceBackwardData"/>.</summary>
    public static void HostBackwardData(in Conv2dShape s, ArraySegment<float> dy, ArraySegment<float> w, ArraySegment<float> dx)
    {
        if (s.N == 0 || s.C == 0 || s.H == 0 || s.W == 0) return;
        bool parallel = SampleParallel(s);
        int threads = parallel ? 1 : HostGemmPool.Threads;
        fixed (float* pdy = dy.AsSpan(), pw = w.AsSpan(), pdx = dx.AsSpan())
        {
            HostSimd.For(s.N, parallel, (s, (nint)pdy, (nint)pw, (nint)pdx, threads),
                static (st, n) => BackwardDataSample(st.s, (float*)st.Item2, (float*)st.Item3, (float*)st.Item4, n, st.threads));
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

    /// <summary>Samples in parallel (single-threaded GEMMs) when the batch splits evenly enough over the pool's threads.</summary>
    private static bool SampleParallel(in Conv2dShape s)
    {
        int threads = HostSimd.PoolThreads;
        if (threads == 1 || s.N == 1) return false;
        if (Macs(s) < HostGemm.ParallelMacs) return false;
        return s.N % threads == 0 || s.N >= 4 * threads;
    }

    private static void ForwardSample(in Conv2dShape s, float* x, float* w, float* b, float* y, int n, int threads)
    {
        int pq = s.PQ, cgrs = s.CgRS, kg = s.Kg;
        float* xn = x + (long)n * s.C * s.H * s.W, yn = y + (long)n * s.K * pq;
        float* col = s.Pointwise ? xn : Im2Col(s, xn, Pinned(ref t_col, (long)s.CRS * pq));
        for (int g = 0; g < s.Groups; g++)
            Mm(w + (long)g * kg * cgrs, col + (long)g * cgrs * pq, yn + (long)g * kg * pq, kg, pq, cgrs, false, false, 0f, threads);
        if (b != null)
            for (int k = 0; k < s.K; k++)
            {
                var row = new Span<float>(yn + (long)k * pq, pq);
                TensorPrimitives.Add(row, b[k], row);
            }
    }

    private static void BackwardDataSample(in Conv2dShape s, float* dy, float* w, float* dx, int n, int threads)
    {
        int pq = s.PQ, cgrs = s.CgRS, kg = s.Kg, chw = s.C * s.H * s.W;
        float* dyn = dy + (long)n * s.K * pq, dxn = dx + (long)n * chw;
        float* dcol = s.Pointwise ? dxn : Pinned(ref t_col, (long)s.CRS * pq);
        // dcol_g (CgRS, PQ) = W_g^T (CgRS, Kg) dy_g (Kg, PQ)
        for (int g = 0; g < s.Groups; g++)
            Mm(w + (long)g * kg * cgrs, dyn + (long)g * kg * pq, dcol + (long)g * cgrs * pq, cgrs, pq, kg, true, false, 0f, threads);
        if (!s.Pointwise)
        {
            new Span<float>(dxn, chw).Clear();
            Col2ImAdd(s, dcol, dxn);
        }
    }

    /// <summary>
    /// dw (+)= sum over samples [n0, n1) of dy_n col_n^T, db (+)= row sums of dy_n (db null: none). The first sample uses
    /// <paramref name="firstBeta"/> (0: dw is overwritten, 1: accumulated); db is always added to.
    /// </summary>
    private static void FilterRange(in Conv2dShape s, float* x, float* dy, float* dw, float* db, int n0, int n1, float firstBeta, int threads)
    {
        int pq = s.PQ, cgrs = s.CgRS, kg = s.Kg;
        for (int n = n0; n < n1; n++)
        {
            float* xn = x + (long)n * s.C * s.H * s.W, dyn = dy + (long)n * s.K * pq;
            float* col = s.Pointwise ? xn : Im2Col(s, xn, Pinned(ref t_col, (long)s.CRS * pq));
            float beta = n == n0 ? firstBeta : 1f;
            // dW_g (Kg, CgRS) += dy_g (Kg, PQ) col_g^T, col_g stored (CgRS, PQ)
            for (int g = 0; g < s.Groups; g++)
                Mm(dyn + (long)g * kg * pq, col + (long)g * cgrs * pq, dw + (long)g * kg * cgrs, kg, cgrs, pq, false, true, beta, threads);
            if (db != null)
                for (int k = 0; k < s.K; k++) db[k] += TensorPrimitives.Sum(new ReadOnlySpan<float>(dyn + (long)k * pq, pq));
        }
    }

    /// <summary>C (m, n) = op(A) op(B) + beta C on the host GEMM, <paramref name="threads"/> threads at most.</summary>
    private static void Mm(float* a, float* b, float* c, int m, int n, int k, bool transA, bool transB, float beta, int threads)
    {
        var job = new HostGemm.Job
        {
            A = a, B = b, C = c, Bias = null, M = m, N = n, K = k, TransA = transA, TransB = transB,
            Alpha = 1f, Beta = beta, ActAlpha = 0f,
        };
        HostGemm.Run(ref job, Vector512.IsHardwareAccelerated, threads);
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

    /// <summary>Unfolds one sample x_n (C, H, W) into col (C R S, P Q); returns col.</summary>
    private static float* Im2Col(in Conv2dShape s, float* xn, float* col)
    {
        int pq = s.PQ, sw = s.StrideW;
        for (int c = 0; c < s.C; c++)
            for (int r = 0; r < s.R; r++)
                for (int t = 0; t < s.S; t++)
                {
                    float* dst = col + (long)((c * s.R + r) * s.S + t) * pq;
                    var (lo, hi) = ValidColumns(s, t);
                    int off = t * s.DilW - s.PadW;
                    for (int p = 0; p < s.P; p++)
                    {
                        float* d = dst + p * s.Q;
                        int h = p * s.StrideH - s.PadH + r * s.DilH;
                        if (h < 0 || h >= s.H) { new Span<float>(d, s.Q).Clear(); continue; }
                        float* src = xn + (long)(c * s.H + h) * s.W + off;
                        if (lo > 0) new Span<float>(d, lo).Clear();
                        if (sw == 1) new ReadOnlySpan<float>(src + lo, hi - lo).CopyTo(new Span<float>(d + lo, hi - lo));
                        else for (int q = lo; q < hi; q++) d[q] = src[q * sw];
                        if (hi < s.Q) new Span<float>(d + hi, s.Q - hi).Clear();
                    }
                }
        return col;
    }

    /// <summary>Folds dcol (C R S, P Q) back onto dx_n (C, H, W), adding (the inverse scatter of <see cref="Im2Col"/>).</summary>
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
