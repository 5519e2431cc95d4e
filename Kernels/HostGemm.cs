using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GpuNet.Kernels;

/// <summary>
/// The loop nest of the host GEMM (GotoBLAS/BLIS): for each NC-wide column panel of C, for each KC-deep slice of K,
/// B[kc, nc] is packed into NR-wide slivers (L3/L2 resident); for each MC-tall row block, A[mc, kc] is packed into
/// MR-tall slivers (L2 resident); the micro-kernel multiplies one A sliver by one B sliver (L1 resident) into an
/// MR x NR register tile. Packing handles the four transpose cases, so the micro-kernel sees one layout; edges are
/// zero-padded in the packed buffers and clipped when the tile is written. The epilogue runs per tile: the first K
/// slice applies alpha, beta * C (C unread when beta == 0) and the bias, later slices add, the last applies the
/// activation. Threads share the packed B panels and claim row blocks dynamically (see <see cref="Shared"/>), or,
/// when M is too small for that, claim independent ranges of columns, each packed separately.
/// </summary>
internal static unsafe class HostGemm
{
    /// <summary>Depth of a packed K slice (kc x NR floats of B, 32 KiB at NR = 32, stays in L1 with an A sliver).</summary>
    internal const int Kc = 256;
    /// <summary>Rows of a packed A block (mc x kc floats, 240 KiB: L2).</summary>
    internal const int McRows = 240;
    /// <summary>Columns of a packed B panel (kc x nc floats, 3 MiB: L3).</summary>
    internal const int NcCols = 3072;
    /// <summary>B slivers a thread claims and packs at a time in shared mode.</summary>
    private const int SliverGroup = 4;
    /// <summary>Below this many multiply-adds (M N K), the call runs on the calling thread.</summary>
    internal const long ParallelMacs = 64L * 64 * 64;

    /// <summary>One GEMM call: pinned operands, shape, epilogue and the thread split.</summary>
    internal struct Job
    {
        public float* A, B, C, Bias;
        public int M, N, K;
        public bool TransA, TransB;
        public float Alpha, Beta, ActAlpha;
        public int Act;
        /// <summary>Number of parts the work is split into, and whether the split runs over rows (else columns).</summary>
        public int Parts;
        public bool SplitRows;
        /// <summary>Threads share packed B panels (double-buffered in the pool's <see cref="SharedBuffer"/>).</summary>
        public bool SharedB;
        public float* SharedBuffer;
        /// <summary>Micro-kernel in use: Vector512 (Mr512 x Nr512) or Vector256 (Mr256 x Nr256), and its tile.</summary>
        public bool Wide;
        public int Mr, Nr;
    }

    /// <summary>Packing buffers of the current thread (pinned, 64-byte aligned, grown on demand, never shrunk).</summary>
    [ThreadStatic] private static float[]? t_buffer;
    [ThreadStatic] private static float* t_aligned;
    [ThreadStatic] private static int t_capacity;

    /// <summary>Runs the GEMM of <paramref name="job"/>: the K = 0 case, a single-threaded call, or a parallel one.</summary>
    /// <param name="job">The call; the split (Parts, SplitRows, SharedB) and the kernel (Wide, Mr, Nr) are set here.</param>
    /// <param name="wide">Use the Vector512 micro-kernel (else the Vector256 one; tests run both on AVX-512 hosts).</param>
    /// <param name="threads">Most threads to use (the pool's size caps it).</param>
    internal static void Run(ref Job job, bool wide, int threads)
    {
        if (job.K == 0) { EpilogueOnly(ref job); return; }
        if (job.M == 1) { RowTimesMatrix(ref job); return; }
        job.Wide = wide;
        int mr = job.Mr = wide ? HostGemmKernels.Mr512 : HostGemmKernels.Mr256;
        int nr = job.Nr = wide ? HostGemmKernels.Nr512 : HostGemmKernels.Nr256;
        threads = Math.Min(threads, HostGemmPool.Threads);
        long macs = (long)job.M * job.N * job.K;
        int tilesM = (job.M + mr - 1) / mr, tilesN = (job.N + nr - 1) / nr;
        if (threads > 1 && macs >= ParallelMacs && (tilesM >= 2 || tilesN >= 2))
        {
            if (tilesM >= 2 * threads)
            {
                // Shared mode: B panels packed once into pool memory; the threads claim B slivers to pack and row
                // blocks to multiply from shared counters (dynamic, so a thread delayed by another process does not
                // leave its share undone).
                job.Parts = threads;
                job.SplitRows = true;
                job.SharedB = true;
            }
            else
            {
                // Too few row tiles to share B: independent parts over the columns (or the rows when N is one
                // sliver), each packing its own panels; a few parts per thread, claimed by whichever thread is free.
                bool rows = tilesN < 2;
                job.Parts = Math.Min(4 * threads, rows ? tilesM : tilesN);
                job.SplitRows = rows;
                job.SharedB = false;
            }
            if (HostGemmPool.TryRun(ref job)) return;
        }
        job.Parts = 1;
        job.SplitRows = true;
        job.SharedB = false;
        RunPart(ref job, 0);
    }

    /// <summary>Floats of one shared B panel of <paramref name="job"/> (the pool double-buffers it).</summary>
    internal static int SharedPanelFloats(in Job job)
        => Math.Min(Kc, job.K) * Math.Min(NcCols / job.Nr * job.Nr, RoundUp(job.N, job.Nr));

    /// <summary>Computes part <paramref name="part"/> of <paramref name="job"/>'s C; in shared mode, whatever this thread claims.</summary>
    internal static void RunPart(ref Job job, int part)
    {
        if (job.SharedB) { Shared(ref job); return; }
        int i0 = 0, i1 = job.M, j0 = 0, j1 = job.N, mr = job.Mr, nr = job.Nr;
        if (job.SplitRows)
        {
            int tiles = (job.M + mr - 1) / mr;
            i0 = Math.Min(job.M, tiles * part / job.Parts * mr);
            i1 = Math.Min(job.M, tiles * (part + 1) / job.Parts * mr);
        }
        else
        {
            int tiles = (job.N + nr - 1) / nr;
            j0 = Math.Min(job.N, tiles * part / job.Parts * nr);
            j1 = Math.Min(job.N, tiles * (part + 1) / job.Parts * nr);
        }
        if (i0 < i1 && j0 < j1) Block(ref job, i0, i1, j0, j1);
    }

    /// <summary>The blocked loop nest over C[i0:i1, j0:j1], on this thread alone.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Block(ref Job job, int i0, int i1, int j0, int j1)
    {
        int mr = job.Mr, nr = job.Nr, k = job.K;
        int mcBlock = McRows / mr * mr, ncBlock = NcCols / nr * nr;
        int kcMax = Math.Min(Kc, k);
        int mcMax = Math.Min(mcBlock, RoundUp(i1 - i0, mr));
        int ncMax = Math.Min(ncBlock, RoundUp(j1 - j0, nr));
        int sizeA = RoundUp(kcMax * mcMax, 16);  // keeps the B panel and the tile 64-byte aligned
        float* bufA = Buffer(sizeA + kcMax * ncMax + mr * nr);
        float* bufB = bufA + sizeA;
        float* tile = bufB + kcMax * ncMax;

        for (int jc = j0; jc < j1; jc += ncBlock)
        {
            int nc = Math.Min(ncBlock, j1 - jc);
            for (int pc = 0; pc < k; pc += Kc)
            {
                int kc = Math.Min(Kc, k - pc);
                PackB(ref job, pc, kc, jc, nc, nr, bufB);
                for (int ic = i0; ic < i1; ic += mcBlock)
                {
                    int mc = Math.Min(mcBlock, i1 - ic);
                    PackA(ref job, pc, kc, ic, mc, mr, bufA);
                    Multiply(ref job, bufA, bufB, tile, ic, mc, jc, nc, kc, pc == 0, pc + kc == k);
                }
            }
        }
    }

    /// <summary>
    /// Shared mode, run by every thread of the call. Panels (jc, pc) go in the same order on every thread; the
    /// counters are cumulative over the call's panels. For panel t: claim and pack groups of B slivers into buffer t % 2 (after
    /// waiting until every row block of panel t - 2, the buffer's last reader, is done), wait until all sliver groups of
    /// panel t are packed and every row block of panel t - 1 is done (the previous K slice of the same C tiles), then
    /// claim row blocks (pack A, multiply).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Shared(ref Job job)
    {
        int mr = job.Mr, nr = job.Nr, k = job.K, m = job.M;
        int ncBlock = NcCols / nr * nr;
        int kcMax = Math.Min(Kc, k);
        int tilesM = (m + mr - 1) / mr;
        // Row blocks of up to McRows rows, at least 4 per thread when M allows (load balance).
        int blockTiles = Math.Clamp(tilesM / (4 * job.Parts), 1, McRows / mr);
        int mcTask = blockTiles * mr;
        int blocks = (tilesM + blockTiles - 1) / blockTiles;
        int sizeA = RoundUp(kcMax * mcTask, 16);
        float* bufA = Buffer(sizeA + mr * nr);
        float* tile = bufA + sizeA;
        int panelFloats = SharedPanelFloats(job);
        int groupEnd = 0, blockEnd = 0, blockEndPrev = 0, blockEndPrev2 = 0, panel = 0;

        for (int jc = 0; jc < job.N; jc += ncBlock)
        {
            int nc = Math.Min(ncBlock, job.N - jc);
            int groups = (nc + SliverGroup * nr - 1) / (SliverGroup * nr);
            for (int pc = 0; pc < k; pc += Kc, panel++)
            {
                int kc = Math.Min(Kc, k - pc);
                float* bufB = job.SharedBuffer + (panel & 1) * panelFloats;
                HostGemmPool.WaitUntil(ref HostGemmPool.BlocksDone, blockEndPrev2);
                groupEnd += groups;
                for (int g; (g = HostGemmPool.Claim(ref HostGemmPool.GroupsClaimed, groupEnd)) >= 0;)
                {
                    // Groups of SliverGroup slivers: longer sequential reads of B rows.
                    int j = (g - (groupEnd - groups)) * SliverGroup * nr;
                    PackB(ref job, pc, kc, jc + j, Math.Min(SliverGroup * nr, nc - j), nr, bufB + j * kc);
                    Interlocked.Increment(ref HostGemmPool.GroupsDone);
                }
                HostGemmPool.WaitUntil(ref HostGemmPool.GroupsDone, groupEnd);
                // Row blocks of the previous K slice write the same C tiles this slice accumulates into.
                HostGemmPool.WaitUntil(ref HostGemmPool.BlocksDone, blockEndPrev);

                blockEnd += blocks;
                for (int b; (b = HostGemmPool.Claim(ref HostGemmPool.BlocksClaimed, blockEnd)) >= 0;)
                {
                    int ic = (b - (blockEnd - blocks)) * mcTask, mc = Math.Min(mcTask, m - ic);
                    PackA(ref job, pc, kc, ic, mc, mr, bufA);
                    Multiply(ref job, bufA, bufB, tile, ic, mc, jc, nc, kc, pc == 0, pc + kc == k);
                    Interlocked.Increment(ref HostGemmPool.BlocksDone);
                }
                blockEndPrev2 = blockEndPrev;
                blockEndPrev = blockEnd;
            }
        }
    }

    /// <summary>
    /// The two inner loops: every nr-wide B sliver (L1) times every mr-tall A sliver of the packed block (L2),
    /// each product written through the epilogue.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Multiply(ref Job job, float* bufA, float* bufB, float* tile, int ic, int mc, int jc, int nc,
        int kc, bool first, bool last)
    {
        int mr = job.Mr, nr = job.Nr;
        bool wide = job.Wide;
        for (int jr = 0; jr < nc; jr += nr)
        {
            float* bp = bufB + jr * kc;
            for (int ir = 0; ir < mc; ir += mr)
            {
                if (wide) HostGemmKernels.Kernel512(kc, bufA + ir * kc, bp, tile);
                else HostGemmKernels.Kernel256(kc, bufA + ir * kc, bp, tile);
                Epilogue(ref job, tile, nr, ic + ir, Math.Min(mr, mc - ir), jc + jr, Math.Min(nr, nc - jr), first, last);
            }
        }
    }

    private static int RoundUp(int x, int to) => (x + to - 1) / to * to;

    /// <summary>The calling thread's packing buffer with room for <paramref name="floats"/> floats.</summary>
    private static float* Buffer(int floats)
    {
        if (t_capacity < floats)
        {
            // Pinned (POH) so the pointer stays valid; 16 spare floats to align to 64 bytes.
            var buf = GC.AllocateUninitializedArray<float>(floats + 16, pinned: true);
            float* p = (float*)Unsafe.AsPointer(ref buf[0]);
            t_aligned = (float*)(((nint)p + 63) & ~(nint)63);
            t_buffer = buf;
            t_capacity = floats;
        }
        return t_aligned;
    }

    /// <summary>
    /// Packs op(A)[ic:ic+mc, pc:pc+kc] into mr-row slivers: sliver s holds, for each p, the mr values of rows
    /// ic + s*mr .. ic + s*mr + mr - 1 (zero past row ic + mc).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackA(ref Job job, int pc, int kc, int ic, int mc, int mr, float* dst)
    {
        int m = job.M, k = job.K;
        for (int s = 0; s < mc; s += mr, dst += mr * kc)
        {
            int rows = Math.Min(mr, mc - s);
            if (job.TransA)
            {
                // A: (K, M); row p of A holds column p of op(A): mr contiguous values per k step.
                float* src = job.A + (long)pc * m + ic + s;
                if (rows == mr)
                    for (int p = 0; p < kc; p++, src += m) CopyRow(src, dst + p * mr, mr);
                else
                    for (int p = 0; p < kc; p++, src += m)
                    {
                        float* d = dst + p * mr;
                        int r = 0;
                        for (; r < rows; r++) d[r] = src[r];
                        for (; r < mr; r++) d[r] = 0f;
                    }
            }
            else
            {
                // A: (M, K); a transposing pack, row r of the sliver becomes every mr-th value.
                PackTransposed(job.A + (long)(ic + s) * k + pc, k, rows, kc, dst, mr);
                for (int r = rows; r < mr; r++)
                    for (int p = 0; p < kc; p++) dst[p * mr + r] = 0f;
            }
        }
    }

    /// <summary>
    /// Packs op(B)[pc:pc+kc, jc:jc+nc] into nr-column slivers: sliver s holds, for each p, the nr values of columns
    /// jc + s*nr .. (zero past column jc + nc).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackB(ref Job job, int pc, int kc, int jc, int nc, int nr, float* dst)
    {
        int n = job.N, k = job.K;
        if (!job.TransB)
        {
            // B: (K, N): row by row (one sequential read of nc values per k step), each row scattered over the
            // slivers, nr contiguous values per sliver.
            int full = nc / nr * nr;
            float* src = job.B + (long)pc * n + jc;
            for (int p = 0; p < kc; p++, src += n)
            {
                float* d = dst + p * nr;
                for (int s = 0; s < full; s += nr) CopyRow(src + s, d + s * kc, nr);
                if (full < nc)
                {
                    float* dt = d + full * kc;
                    int j = 0;
                    for (; j < nc - full; j++) dt[j] = src[full + j];
                    for (; j < nr; j++) dt[j] = 0f;
                }
            }
            return;
        }
        // B: (N, K); a transposing pack, sliver by sliver.
        for (int s = 0; s < nc; s += nr, dst += nr * kc)
        {
            int cols = Math.Min(nr, nc - s);
            PackTransposed(job.B + (long)(jc + s) * k + pc, k, cols, kc, dst, nr);
            for (int j = cols; j < nr; j++)
                for (int p = 0; p < kc; p++) dst[p * nr + j] = 0f;
        }
    }

    /// <summary>
    /// dst[p * stride + r] = src[r * ld + p] for r &lt; rows, p &lt; kc: 4 x 8 blocks transposed in registers
    /// (two unpack and one shuffle stage), the remainder scalar.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackTransposed(float* src, long ld, int rows, int kc, float* dst, int stride)
    {
        int r = 0;
        if (Avx.IsSupported)
            for (; r + 4 <= rows; r += 4)
            {
                float* s0 = src + r * ld, s1 = s0 + ld, s2 = s1 + ld, s3 = s2 + ld;
                float* d = dst + r;
                int p = 0;
                for (; p + 8 <= kc; p += 8)
                {
                    // rows a, b, c, e at columns p .. p + 7 -> columns p + q holding (a, b, c, e)[q].
                    var a = Avx.LoadVector256(s0 + p); var b = Avx.LoadVector256(s1 + p);
                    var c = Avx.LoadVector256(s2 + p); var e = Avx.LoadVector256(s3 + p);
                    var t0 = Avx.UnpackLow(a, b); var t1 = Avx.UnpackHigh(a, b);    // a0 b0 a1 b1 | a4 b4 a5 b5 ; a2 b2 a3 b3 | ...
                    var t2 = Avx.UnpackLow(c, e); var t3 = Avx.UnpackHigh(c, e);
                    var u0 = Avx.Shuffle(t0, t2, 0x44); var u1 = Avx.Shuffle(t0, t2, 0xEE);  // a0 b0 c0 e0 | a4 b4 c4 e4 ; a1 .. | a5 ..
                    var u2 = Avx.Shuffle(t1, t3, 0x44); var u3 = Avx.Shuffle(t1, t3, 0xEE);
                    float* q = d + p * stride;
                    u0.GetLower().Store(q); u1.GetLower().Store(q + stride);
                    u2.GetLower().Store(q + 2 * stride); u3.GetLower().Store(q + 3 * stride);
                    u0.GetUpper().Store(q + 4 * stride); u1.GetUpper().Store(q + 5 * stride);
                    u2.GetUpper().Store(q + 6 * stride); u3.GetUpper().Store(q + 7 * stride);
                }
                for (; p < kc; p++)
                {
                    float* q = d + p * stride;
                    q[0] = s0[p]; q[1] = s1[p]; q[2] = s2[p]; q[3] = s3[p];
                }
            }
        for (; r < rows; r++)
        {
            float* sr = src + r * ld;
            float* d = dst + r;
            for (int p = 0; p < kc; p++) d[p * stride] = sr[p];
        }
    }

    /// <summary>Copies a full sliver row (a multiple of 8 floats).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CopyRow(float* src, float* dst, int count)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i + 16 <= count; i += 16) Vector512.Store(Vector512.Load(src + i), dst + i);
        for (; i + 8 <= count; i += 8) Vector256.Store(Vector256.Load(src + i), dst + i);
        for (; i < count; i++) dst[i] = src[i];
    }

    /// <summary>
    /// Writes the tile (rows x cols of a stride-<paramref name="ts"/> buffer) to C[i, j]: the first K slice gives
    /// alpha * tile + beta * C + bias (C unread when beta == 0), later slices add alpha * tile to C, the last one
    /// applies the activation.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Epilogue(ref Job job, float* tile, int ts, int i, int rows, int j, int cols, bool first, bool last)
    {
        int n = job.N;
        float alpha = job.Alpha, beta = first ? job.Beta : 1f;
        float* bias = first ? job.Bias : null;
        var va = Vector256.Create(alpha);
        var vb = Vector256.Create(beta);
        for (int r = 0; r < rows; r++)
        {
            float* t = tile + r * ts;
            float* c = job.C + (long)(i + r) * n + j;
            int x = 0;
            if (beta == 0f)
            {
                if (bias == null)
                    for (; x + 8 <= cols; x += 8) (va * Vector256.Load(t + x)).Store(c + x);
                else
                    for (; x + 8 <= cols; x += 8) Vector256.FusedMultiplyAdd(va, Vector256.Load(t + x), Vector256.Load(bias + j + x)).Store(c + x);
                for (; x < cols; x++) c[x] = alpha * t[x] + (bias == null ? 0f : bias[j + x]);
            }
            else
            {
                if (bias == null)
                    for (; x + 8 <= cols; x += 8)
                        Vector256.FusedMultiplyAdd(va, Vector256.Load(t + x), vb * Vector256.Load(c + x)).Store(c + x);
                else
                    for (; x + 8 <= cols; x += 8)
                        (Vector256.FusedMultiplyAdd(va, Vector256.Load(t + x), vb * Vector256.Load(c + x)) + Vector256.Load(bias + j + x)).Store(c + x);
                for (; x < cols; x++) c[x] = alpha * t[x] + beta * c[x] + (bias == null ? 0f : bias[j + x]);
            }
            if (last && job.Act != (int)Activation.Identity) ActivateRow(c, cols, job.Act, job.ActAlpha);
        }
    }

    /// <summary>Applies the activation in place (ReLU vectorised with the same NaN rule as the scalar form).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ActivateRow(float* c, int count, int act, float actAlpha)
    {
        int x = 0;
        if (act == (int)Activation.Relu)
            for (; x + 8 <= count; x += 8)
            {
                var v = Vector256.Load(c + x);
                Vector256.ConditionalSelect(Vector256.GreaterThan(v, Vector256<float>.Zero), v, Vector256<float>.Zero).Store(c + x);
            }
        for (; x < count; x++) c[x] = ActivationMath.Forward(act, c[x], actAlpha);
    }

    /// <summary>
    /// M = 1 (a batch of one): C[0, :] = a op(B) without packing, memory-bound. A is contiguous either way; with B
    /// (K, N) the rows of B are streamed into 32 column accumulators, with B (N, K) each C value is a dot product
    /// (4 at a time, sharing the loads of a).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RowTimesMatrix(ref Job job)
    {
        const int Chunk = 32;
        int n = job.N, k = job.K;
        float* a = job.A, tile = stackalloc float[Chunk];
        for (int j0 = 0; j0 < n; j0 += Chunk)
        {
            int cols = Math.Min(Chunk, n - j0);
            if (!job.TransB)
            {
                float* b = job.B + j0;
                if (cols == Chunk)
                {
                    Vector256<float> c0 = default, c1 = default, c2 = default, c3 = default;
                    for (int p = 0; p < k; p++, b += n)
                    {
                        var x = Vector256.Create(a[p]);
                        c0 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b), c0);
                        c1 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b + 8), c1);
                        c2 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b + 16), c2);
                        c3 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b + 24), c3);
                    }
                    c0.Store(tile); c1.Store(tile + 8); c2.Store(tile + 16); c3.Store(tile + 24);
                }
                else
                {
                    for (int j = 0; j < cols; j++) tile[j] = 0f;
                    for (int p = 0; p < k; p++, b += n)
                        for (int j = 0; j < cols; j++) tile[j] = MathF.FusedMultiplyAdd(a[p], b[j], tile[j]);
                }
            }
            else
            {
                int j = 0;
                for (; j + 4 <= cols; j += 4)
                {
                    float* b0 = job.B + (long)(j0 + j) * k, b1 = b0 + k, b2 = b1 + k, b3 = b2 + k;
                    Vector256<float> s0 = default, s1 = default, s2 = default, s3 = default;
                    int p = 0;
                    for (; p + 8 <= k; p += 8)
                    {
                        var x = Vector256.Load(a + p);
                        s0 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b0 + p), s0);
                        s1 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b1 + p), s1);
                        s2 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b2 + p), s2);
                        s3 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b3 + p), s3);
                    }
                    float t0 = Vector256.Sum(s0), t1 = Vector256.Sum(s1), t2 = Vector256.Sum(s2), t3 = Vector256.Sum(s3);
                    for (; p < k; p++)
                    {
                        t0 = MathF.FusedMultiplyAdd(a[p], b0[p], t0); t1 = MathF.FusedMultiplyAdd(a[p], b1[p], t1);
                        t2 = MathF.FusedMultiplyAdd(a[p], b2[p], t2); t3 = MathF.FusedMultiplyAdd(a[p], b3[p], t3);
                    }
                    tile[j] = t0; tile[j + 1] = t1; tile[j + 2] = t2; tile[j + 3] = t3;
                }
                for (; j < cols; j++)
                {
                    float* b0 = job.B + (long)(j0 + j) * k;
                    var s0 = Vector256<float>.Zero;
                    int p = 0;
                    for (; p + 8 <= k; p += 8) s0 = Vector256.FusedMultiplyAdd(Vector256.Load(a + p), Vector256.Load(b0 + p), s0);
                    float t0 = Vector256.Sum(s0);
                    for (; p < k; p++) t0 = MathF.FusedMultiplyAdd(a[p], b0[p], t0);
                    tile[j] = t0;
                }
            }
            Epilogue(ref job, tile, Chunk, 0, 1, j0, cols, first: true, last: true);
        }
    }

    /// <summary>K = 0: C = act(beta * C + bias), C unread when beta == 0.</summary>
    private static void EpilogueOnly(ref Job job)
    {
        for (int i = 0; i < job.M; i++)
        {
            float* c = job.C + (long)i * job.N;
            for (int j = 0; j < job.N; j++)
            {
                float v = (job.Beta == 0f ? 0f : job.Beta * c[j]) + (job.Bias == null ? 0f : job.Bias[j]);
                c[j] = ActivationMath.Forward(job.Act, v, job.ActAlpha);
            }
        }
    }
}
