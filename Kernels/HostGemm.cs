using System.Runtime.CompilerServices;

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
internal static unsafe partial class HostGemm
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
        /// <summary>
        /// The epilogue's activation, applied in place to a run of C on the last K slice (c, count, ActAlpha); null
        /// for the identity. Set it with <see cref="RowActivation{TAct}"/>.
        /// </summary>
        public delegate*<float*, int, float, void> Activate;
        /// <summary>Number of parts the work is split into, and whether the split runs over rows (else columns).</summary>
        public int Parts;
        public bool SplitRows;
        /// <summary>Threads share packed B panels (double-buffered in the pool's <see cref="SharedBuffer"/>).</summary>
        public bool SharedB;
        public float* SharedBuffer;
        /// <summary>Micro-kernel in use: Vector512 (Mr512 x Nr512) or Vector256 (Mr256 x Nr256), and its tile.</summary>
        public bool Wide;
        public int Mr, Nr;
        /// <summary>
        /// op(A) already packed by <see cref="PrepackA"/> (every K slice, every row sliver; read-only, so threads and
        /// calls share it), or null: A blocks are packed from <see cref="A"/> as they are needed.
        /// </summary>
        public float* PackedA;
        /// <summary>
        /// The packer of op(B)'s slivers (state, pc, kc, jc, nc, nr, dst), with the layout of <see cref="PackB"/>, or
        /// null: packed from <see cref="B"/>. A convolution builds its im2col columns straight into the panels this way.
        /// </summary>
        public delegate*<void*, int, int, int, int, int, float*, void> PackBFrom;
        /// <summary>The state <see cref="PackBFrom"/> receives (it must stay valid for the whole call).</summary>
        public void* PackBState;
    }

    /// <summary>Floats that <see cref="PrepackA"/> writes for an M x K op(A) and the micro-kernel chosen by <paramref name="wide"/>.</summary>
    internal static long PackedAFloats(int m, int k, bool wide) => (long)RoundUp(m, wide ? HostGemmKernels.Mr512 : HostGemmKernels.Mr256) * k;

    /// <summary>
    /// Packs all of op(A) (M x K; A is (K, M) when <paramref name="transA"/>) for <see cref="Job.PackedA"/>: K slice
    /// pc (Kc deep, the last shorter) starts at dst + pc * round(M, mr), laid out as <see cref="PackA"/> lays out a
    /// block of every row. The micro-kernel (<paramref name="wide"/>) must be the one the job runs with.
    /// </summary>
    internal static void PrepackA(float* a, bool transA, int m, int k, bool wide, float* dst)
    {
        int mr = wide ? HostGemmKernels.Mr512 : HostGemmKernels.Mr256;
        var job = new Job { A = a, TransA = transA, M = m, K = k, Mr = mr };
        long mpad = RoundUp(m, mr);
        for (int pc = 0; pc < k; pc += Kc)
            PackA(ref job, pc, Math.Min(Kc, k - pc), 0, m, mr, dst + pc * mpad);
    }

    /// <summary>The packed A block of rows [ic, ic + mc) and K slice [pc, pc + kc): from <see cref="Job.PackedA"/>, or packed into <paramref name="buf"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float* BlockA(ref Job job, int pc, int kc, int ic, int mc, float* buf)
    {
        if (job.PackedA != null) return job.PackedA + (long)pc * RoundUp(job.M, job.Mr) + (long)ic * kc;
        PackA(ref job, pc, kc, ic, mc, job.Mr, buf);
        return buf;
    }

    /// <summary>Packs op(B)[pc:pc+kc, jc:jc+nc] into slivers: by <see cref="Job.PackBFrom"/> when set, else from B.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void BlockB(ref Job job, int pc, int kc, int jc, int nc, float* dst)
    {
        if (job.PackBFrom != null) job.PackBFrom(job.PackBState, pc, kc, jc, nc, job.Nr, dst);
        else PackB(ref job, pc, kc, jc, nc, job.Nr, dst);
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
        if (job.M == 1 && job.PackedA == null && job.PackBFrom == null) { RowTimesMatrix(ref job); return; }
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
                BlockB(ref job, pc, kc, jc, nc, bufB);
                for (int ic = i0; ic < i1; ic += mcBlock)
                {
                    int mc = Math.Min(mcBlock, i1 - ic);
                    Multiply(ref job, BlockA(ref job, pc, kc, ic, mc, bufA), bufB, tile, ic, mc, jc, nc, kc, pc == 0, pc + kc == k);
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
                    BlockB(ref job, pc, kc, jc + j, Math.Min(SliverGroup * nr, nc - j), bufB + j * kc);
                    Interlocked.Increment(ref HostGemmPool.GroupsDone);
                }
                HostGemmPool.WaitUntil(ref HostGemmPool.GroupsDone, groupEnd);
                // Row blocks of the previous K slice write the same C tiles this slice accumulates into.
                HostGemmPool.WaitUntil(ref HostGemmPool.BlocksDone, blockEndPrev);

                blockEnd += blocks;
                for (int b; (b = HostGemmPool.Claim(ref HostGemmPool.BlocksClaimed, blockEnd)) >= 0;)
                {
                    int ic = (b - (blockEnd - blocks)) * mcTask, mc = Math.Min(mcTask, m - ic);
                    Multiply(ref job, BlockA(ref job, pc, kc, ic, mc, bufA), bufB, tile, ic, mc, jc, nc, kc, pc == 0, pc + kc == k);
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
}
