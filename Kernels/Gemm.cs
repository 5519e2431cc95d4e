using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace GpuNet.Kernels;

/// <summary>
/// General matrix multiply, float32, row-major, contiguous:
/// C = act(alpha * op(A) op(B) + beta * C + bias), op(X) = X or X^T.
/// A: (M, K), or (K, M) when transA; B: (K, N), or (N, K) when transB; C: (M, N); bias: (N) or empty.
/// When beta == 0, C is not read (NaN in C does not propagate), as in BLAS.
/// Gradient contract: the GEMM itself only computes; the caller passes beta = 1 to accumulate parameter
/// gradients (+=) and beta = 0 to overwrite activation gradients (=).
/// Linear layer: forward Y = X W^T + b is (NT); dX = dY W is (NN); dW += dY^T X is (TN).
/// </summary>
public static partial class GemmOp
{
    // ---- float64 reference (the spec) ---------------------------------------------------------------------------

    /// <summary>float64 reference of the GEMM with its epilogue.</summary>
    public static void Reference(bool transA, bool transB, int m, int n, int k, double alpha,
        ReadOnlySpan<double> a, ReadOnlySpan<double> b, double beta, Span<double> c,
        ReadOnlySpan<double> bias, Activation act, double actAlpha)
    {
        var f = ActivationMath.Definition(act);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int p = 0; p < k; p++)
                    s += (transA ? a[p * m + i] : a[i * k + p]) * (transB ? b[j * k + p] : b[p * n + j]);
                double v = alpha * s + (beta == 0 ? 0 : beta * c[i * n + j]) + (bias.Length > 0 ? bias[j] : 0);
                c[i * n + j] = f.Reference(v, actAlpha);
            }
    }

    // ---- ILGPU kernels: block tile in shared memory, warp tile, thread tile in registers -------------------------
    //
    // Loop nest (CUTLASS names): a group of GroupSize = 256 threads computes a BlockM x BlockN = 128 x 64 block tile
    // of C and walks its K range in slices of BlockK = 8. The 8 warps split the block tile into 4 x 2 warp tiles of
    // 32 x 32; the 32 lanes of a warp into 4 x 8 thread tiles of ThreadM x ThreadN = 8 x 4, rows in two runs of 4
    // (ty * 4 + 0..3 and 64 + ty * 4 + 0..3) and columns one run of 4 (tx * 4 + 0..3). So each k step a thread reads
    // its 8 values of A and 4 of B as three 128-bit shared loads (LDS.128): a warp's B loads are 8 consecutive
    // float4 (one conflict-free wavefront), its A loads 4 distinct float4 broadcast to 8 lanes each; then 32 FMAs.
    // Shared tiles are k-major (As[kk][m], Bs[kk][n]) and double-buffered: slice t + 1 is loaded from global memory
    // and stored into the other buffer, then slice t is multiplied: one barrier per slice.
    // Global loads are 128-bit (LDG.E.128) when the operand's contiguous dimension is a multiple of 4 and the view
    // starts 16-byte aligned (GemmTiling.VectorA/B); otherwise the same four elements load one by one. Out-of-range
    // elements load as 0, so any M, N, K works. The transposes are type arguments (NoTranspose, Transpose), so each of
    // the four kernels holds only its own load code; all index math except the slice's k offset is hoisted out of
    // the K loop, and every division or remainder is by a power of two (a shift or a mask).
    //
    // Split-K (skinny shapes, see ChooseSplit): grid z = split; split z multiplies K slices [z * TilesPerSplit,
    // (z + 1) * TilesPerSplit) and writes its raw partial product to workspace[z][M][N]; SplitKReduceKernel then
    // adds the partials in the fixed order z = 0, 1, ... and applies the epilogue. No atomics: the result is the
    // same on every run, and beta = 1 accumulates into C exactly once (the gradient contract).

    /// <summary>Rows of C per thread group (block tile, M).</summary>
    public const int BlockM = 128;
    /// <summary>Columns of C per thread group (block tile, N).</summary>
    public const int BlockN = 64;
    /// <summary>Depth of one K slice held in shared memory (block tile, K).</summary>
    public const int BlockK = 8;
    /// <summary>Rows of C per thread (thread tile, M): two runs of 4, 64 rows apart.</summary>
    public const int ThreadM = 8;
    /// <summary>Columns of C per thread (thread tile, N): one run of 4.</summary>
    public const int ThreadN = 4;
    /// <summary>Threads per group (256: the limit of the 'ilgpu-cpu' device and of many OpenCL devices).</summary>
    public const int GroupSize = BlockM / ThreadM * (BlockN / ThreadN);

    // Shared tiles in float4 units: As[2][BlockK][BlockM / 4], Bs[2][BlockK][BlockN / 4].
    private const int RowA4 = BlockM / 4, RowB4 = BlockN / 4;
    private const int TileA4 = BlockK * RowA4, TileB4 = BlockK * RowB4;
    // Threads that load B: a B slice is BlockK * BlockN / 4 = 128 float4.
    private const int LoadersB = BlockK * BlockN / 4;

    /// <summary>NN: A (M, K), B (K, N). See <see cref="Tiled{TA, TB, TAct}"/>.</summary>
    [GpuKernel(ExplicitlyGrouped = true)]
    public static void Kernel<TAct>(GemmArgs p, GemmTiling t, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c,
        ArrayView<float> bias, ArrayView<float> workspace)
        where TAct : struct, IActivation
        => Tiled<NoTranspose, NoTranspose, TAct>(p, t, a, b, c, bias, workspace);

    /// <summary>NT: A (M, K), B (N, K). See <see cref="Tiled{TA, TB, TAct}"/>.</summary>
    [GpuKernel(ExplicitlyGrouped = true)]
    public static void KernelNT<TAct>(GemmArgs p, GemmTiling t, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c,
        ArrayView<float> bias, ArrayView<float> workspace)
        where TAct : struct, IActivation
        => Tiled<NoTranspose, Transpose, TAct>(p, t, a, b, c, bias, workspace);

    /// <summary>TN: A (K, M), B (K, N). See <see cref="Tiled{TA, TB, TAct}"/>.</summary>
    [GpuKernel(ExplicitlyGrouped = true)]
    public static void KernelTN<TAct>(GemmArgs p, GemmTiling t, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c,
        ArrayView<float> bias, ArrayView<float> workspace)
        where TAct : struct, IActivation
        => Tiled<Transpose, NoTranspose, TAct>(p, t, a, b, c, bias, workspace);

    /// <summary>TT: A (K, M), B (N, K). See <see cref="Tiled{TA, TB, TAct}"/>.</summary>
    [GpuKernel(ExplicitlyGrouped = true)]
    public static void KernelTT<TAct>(GemmArgs p, GemmTiling t, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c,
        ArrayView<float> bias, ArrayView<float> workspace)
        where TAct : struct, IActivation
        => Tiled<Transpose, Transpose, TAct>(p, t, a, b, c, bias, workspace);

    /// <summary>
    /// The tiled GEMM body; launch with a grid of (ceil(M / BlockM), ceil(N / BlockN), Splits) groups of
    /// <see cref="GroupSize"/> threads (1-D). a, b, c, bias: flat row-major, see <see cref="Reference"/>; the layouts
    /// of A and B are <typeparamref name="TA"/> and <typeparamref name="TB"/>. With one split the epilogue
    /// act(alpha * acc + beta * C + bias) goes to C (C read only when beta != 0, bias only with HasBias); with more,
    /// the raw sums go to workspace[z][M][N] for <see cref="SplitKReduceKernel{TAct}"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Tiled<TA, TB, TAct>(GemmArgs p, GemmTiling t, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c,
        ArrayView<float> bias, ArrayView<float> workspace)
        where TA : struct, ITranspose where TB : struct, ITranspose where TAct : struct, IActivation
    {
        var sa4 = SharedMemory.Allocate<Float4>(2 * TileA4);
        var sb4 = SharedMemory.Allocate<Float4>(2 * TileB4);
        var sa = sa4.Cast<float>();
        var sb = sb4.Cast<float>();
        int tid = Group.IdxX;
        int m = p.M, n = p.N, k = p.K;
        int row0 = Grid.IdxX * BlockM, col0 = Grid.IdxY * BlockN, split = Grid.IdxZ;

        // Warp tiling: warp w covers rows (w >> 1) * 16 .. + 15 (and + 64) and columns (w & 1) * 32 .. + 31.
        int lane = tid & 31, warp = tid >> 5;
        int ty = ((warp >> 1) << 2) | (lane >> 3);   // 0..15: float4 index of the thread's first 4 rows
        int tx = ((warp & 1) << 3) | (lane & 7);     // 0..15: float4 index of the thread's 4 columns

        int tileBegin = split * t.TilesPerSplit;
        int tileEnd = XMath.Min(tileBegin + t.TilesPerSplit, t.TilesK);

        // Per-thread load coordinates, fixed for the whole K loop (see TileLoad for the elements each covers).
        var la = new TileLoad(default(TA).Transposed, tid, row0, m, k, 5, t.VectorA != 0);
        var lb = new TileLoad(!default(TB).Transposed, tid, col0, n, k, 4, t.VectorB != 0);
        bool loadsB = tid < LoadersB;

        Float4 c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default;

        if (tileBegin < tileEnd)
        {
            int k0 = tileBegin * BlockK;
            StoreA<TA>(sa, sa4, 0, tid, la.Load(a, k0));
            if (loadsB) StoreB<TB>(sb, sb4, 0, tid, lb.Load(b, k0));
            Group.Barrier();

            for (int tile = tileBegin; tile < tileEnd; tile++)
            {
                int cur = (tile - tileBegin) & 1;
                if (tile + 1 < tileEnd)
                {
                    // Slice tile + 1 into the other buffer, last read in the previous slice, which every thread finished
                    // before the last barrier. Stored before the FMAs below rather than held in registers across
                    // them: 8 fewer live registers; the other resident warps hide the load's latency.
                    k0 += BlockK;
                    StoreA<TA>(sa, sa4, 1 - cur, tid, la.Load(a, k0));
                    if (loadsB) StoreB<TB>(sb, sb4, 1 - cur, tid, lb.Load(b, k0));
                }

                // One k step per iteration: 32 FFMAs per 3 LDS.128. Not unrolled: unrolled twice, ptxas hoists 6 shared
                // loads and needs 70 registers (occupancy 0.375); fully, it hoists all 24 and needs ~160.
                int ia = cur * TileA4 + ty, ib = cur * TileB4 + tx, end = ib + TileB4;
                for (; ib < end; ib += RowB4, ia += RowA4)
                {
                    Float4 a0 = sa4[ia], a1 = sa4[ia + RowA4 / 2], bv = sb4[ib];
                    c0 = Float4.Fma(a0.X, bv, c0); c1 = Float4.Fma(a0.Y, bv, c1); c2 = Float4.Fma(a0.Z, bv, c2); c3 = Float4.Fma(a0.W, bv, c3);
                    c4 = Float4.Fma(a1.X, bv, c4); c5 = Float4.Fma(a1.Y, bv, c5); c6 = Float4.Fma(a1.Z, bv, c6); c7 = Float4.Fma(a1.W, bv, c7);
                }
                Group.Barrier();
            }
        }

        // Epilogue: rows i, i + 1, i + 2, i + 3 and i + 64, ..., columns j .. j + 3.
        int i0 = row0 + (ty << 2), j = col0 + (tx << 2);
        if (t.Splits > 1)
        {
            var part = workspace.SubView((long)split * m * n);
            StorePartial(part, m, n, i0, j, c0); StorePartial(part, m, n, i0 + 1, j, c1);
            StorePartial(part, m, n, i0 + 2, j, c2); StorePartial(part, m, n, i0 + 3, j, c3);
            StorePartial(part, m, n, i0 + 64, j, c4); StorePartial(part, m, n, i0 + 65, j, c5);
            StorePartial(part, m, n, i0 + 66, j, c6); StorePartial(part, m, n, i0 + 67, j, c7);
            return;
        }
        var bj = p.HasBias != 0 ? LoadBias(bias, n, j) : default;
        EpilogueRow<TAct>(p, c, bj, i0, j, c0); EpilogueRow<TAct>(p, c, bj, i0 + 1, j, c1);
        EpilogueRow<TAct>(p, c, bj, i0 + 2, j, c2); EpilogueRow<TAct>(p, c, bj, i0 + 3, j, c3);
        EpilogueRow<TAct>(p, c, bj, i0 + 64, j, c4); EpilogueRow<TAct>(p, c, bj, i0 + 65, j, c5);
        EpilogueRow<TAct>(p, c, bj, i0 + 66, j, c6); EpilogueRow<TAct>(p, c, bj, i0 + 67, j, c7);
    }

    /// <summary>
    /// Stores thread tid's 4 A elements of a slice into As[buffer]: transposed A (K, M) is already k-major, one
    /// 128-bit store at As[kk][m..m+3]; A (M, K) holds 4 consecutive k of one row, four scalar stores.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreA<TA>(ArrayView<float> sa, ArrayView<Float4> sa4, int buffer, int tid, Float4 v)
        where TA : struct, ITranspose
    {
        if (default(TA).Transposed) { sa4[buffer * TileA4 + tid] = v; return; }
        int o = buffer * TileA4 * 4 + ((tid & 1) << 2) * BlockM + (tid >> 1);
        sa[o] = v.X; sa[o + BlockM] = v.Y; sa[o + 2 * BlockM] = v.Z; sa[o + 3 * BlockM] = v.W;
    }

    /// <summary>Stores thread tid's 4 B elements into Bs[buffer]: B (K, N) with one 128-bit store, B (N, K) with four scalar ones.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreB<TB>(ArrayView<float> sb, ArrayView<Float4> sb4, int buffer, int tid, Float4 v)
        where TB : struct, ITranspose
    {
        if (!default(TB).Transposed) { sb4[buffer * TileB4 + tid] = v; return; }
        int o = buffer * TileB4 * 4 + ((tid & 1) << 2) * BlockN + (tid >> 1);
        sb[o] = v.X; sb[o + BlockN] = v.Y; sb[o + 2 * BlockN] = v.Z; sb[o + 3 * BlockN] = v.W;
    }

    /// <summary>bias[j .. j + 3], 0 beyond N.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Float4 LoadBias(ArrayView<float> bias, int n, int j) => new(
        j < n ? bias[j] : 0f, j + 1 < n ? bias[j + 1] : 0f, j + 2 < n ? bias[j + 2] : 0f, j + 3 < n ? bias[j + 3] : 0f);

    /// <summary>c[i, j + q] = act(alpha * acc.q + beta * c[i, j + q] + bias.q) for q = 0..3 inside C; C read only when beta != 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void EpilogueRow<TAct>(GemmArgs p, ArrayView<float> c, Float4 bias, int i, int j, Float4 acc)
        where TAct : struct, IActivation
    {
        if (i >= p.M) return;
        int o = i * p.N + j;
        Epilogue<TAct>(p, c, o, j < p.N, acc.X, bias.X);
        Epilogue<TAct>(p, c, o + 1, j + 1 < p.N, acc.Y, bias.Y);
        Epilogue<TAct>(p, c, o + 2, j + 2 < p.N, acc.Z, bias.Z);
        Epilogue<TAct>(p, c, o + 3, j + 3 < p.N, acc.W, bias.W);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Epilogue<TAct>(GemmArgs p, ArrayView<float> c, int o, bool inside, float acc, float bias)
        where TAct : struct, IActivation
    {
        if (!inside) return;
        float v = p.Alpha * acc + bias;
        if (p.Beta != 0f) v += p.Beta * c[o];
        c[o] = default(TAct).Forward(v, p.ActAlpha);
    }

    /// <summary>part[i, j + q] = acc.q for the elements inside (M, N).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StorePartial(ArrayView<float> part, int m, int n, int i, int j, Float4 acc)
    {
        if (i >= m) return;
        int o = i * n + j;
        if (j < n) part[o] = acc.X;
        if (j + 1 < n) part[o + 1] = acc.Y;
        if (j + 2 < n) part[o + 2] = acc.Z;
        if (j + 3 < n) part[o + 3] = acc.W;
    }

    /// <summary>
    /// Split-K epilogue: c[i, j] = act(alpha * sum_z workspace[z, i, j] + beta * c[i, j] + bias[j]), the partials added
    /// in the order z = 0, 1, ..., splits - 1 (deterministic). Index: (X, Y) = (j, i); launch over (N, M).
    /// </summary>
    [GpuKernel]
    public static void SplitKReduceKernel<TAct>(Index2D index, GemmArgs p, int splits, ArrayView<float> workspace,
        ArrayView<float> c, ArrayView<float> bias)
        where TAct : struct, IActivation
    {
        int j = index.X, i = index.Y;
        long mn = (long)p.M * p.N, o = (long)i * p.N + j;
        float s = 0f;
        for (int z = 0; z < splits; z++) s += workspace[z * mn + o];
        float v = p.Alpha * s;
        if (p.Beta != 0f) v += p.Beta * c[o];
        if (p.HasBias != 0) v += bias[j];
        c[o] = default(TAct).Forward(v, p.ActAlpha);
    }

    // ---- cost ---------------------------------------------------------------------------------------------------

    /// <summary>2MNK FLOPs (+ MN for beta, bias, activation); bytes: A, B read once, C read (beta != 0) and written.</summary>
    public static OpCost Cost(int m, int n, int k, bool readsC = false, bool hasBias = false)
        => new(2.0 * m * n * k + (readsC ? 2.0 * m * n : 0) + (hasBias ? (double)m * n : 0),
               4.0 * ((double)m * k + (double)k * n + (readsC ? 2.0 : 1.0) * m * n + (hasBias ? n : 0)));
}

/// <summary>
/// Scalar arguments of the GEMM kernels, packed in one struct (flags as ints: kernel-friendly). The activation is the
/// kernel's type argument; so are the transposes of the fp32 tiled kernels (<see cref="GemmOp.Kernel{TAct}"/> and
/// its NT, TN, TT siblings), which ignore <see cref="TransA"/> and <see cref="TransB"/>.
/// </summary>
public readonly struct GemmArgs(int m, int n, int k, bool transA, bool transB, float alpha, float beta, bool hasBias, float actAlpha)
{
    /// <summary>Rows of C.</summary>
    public readonly int M = m;
    /// <summary>Columns of C.</summary>
    public readonly int N = n;
    /// <summary>Inner dimension.</summary>
    public readonly int K = k;
    /// <summary>1 when A is stored (K, M).</summary>
    public readonly int TransA = transA ? 1 : 0;
    /// <summary>1 when B is stored (N, K).</summary>
    public readonly int TransB = transB ? 1 : 0;
    /// <summary>Scale of the product.</summary>
    public readonly float Alpha = alpha;
    /// <summary>Scale of the old C; 0 means C is not read.</summary>
    public readonly float Beta = beta;
    /// <summary>1 when a bias (N) is added.</summary>
    public readonly int HasBias = hasBias ? 1 : 0;
    /// <summary>The activation's alpha (LeakyReLU slope, ELU scale).</summary>
    public readonly float ActAlpha = actAlpha;
}

/// <summary>
/// How <see cref="GemmOp.Kernel{TAct}"/> and its siblings walk K and load: chosen per shape and view by the launcher.
/// </summary>
public readonly struct GemmTiling(int tilesK, int tilesPerSplit, int splits, bool vectorA, bool vectorB)
{
    /// <summary>K slices of <see cref="GemmOp.BlockK"/> in all: ceil(K / BlockK).</summary>
    public readonly int TilesK = tilesK;
    /// <summary>K slices each split multiplies (the last split may get fewer).</summary>
    public readonly int TilesPerSplit = tilesPerSplit;
    /// <summary>Splits of K (the grid's z extent); above 1 the kernel writes partial sums to the workspace.</summary>
    public readonly int Splits = splits;
    /// <summary>1 when A loads as float4: its contiguous dimension is a multiple of 4 and its view 16-byte aligned.</summary>
    public readonly int VectorA = vectorA ? 1 : 0;
    /// <summary>1 when B loads as float4 (same rule as <see cref="VectorA"/>).</summary>
    public readonly int VectorB = vectorB ? 1 : 0;
}

/// <summary>A GEMM operand's layout as a type argument, so that each kernel is compiled for one layout.</summary>
internal interface ITranspose
{
    /// <summary>True when the operand is stored transposed: A as (K, M), B as (N, K).</summary>
    bool Transposed { get; }
}

/// <summary>A stored (M, K), B stored (K, N).</summary>
internal readonly struct NoTranspose : ITranspose
{
    public bool Transposed => false;
}

/// <summary>A stored (K, M), B stored (N, K).</summary>
internal readonly struct Transpose : ITranspose
{
    public bool Transposed => true;
}

/// <summary>Four floats, 16-byte sized and aligned in GPU memory: ILGPU emits 128-bit loads and stores for it.</summary>
[StructLayout(LayoutKind.Sequential, Size = 16)]
internal readonly struct Float4(float x, float y, float z, float w)
{
    public readonly float X = x, Y = y, Z = z, W = w;

    /// <summary>a * b + c per lane (ptxas contracts each to one FFMA).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float4 Fma(float a, Float4 b, Float4 c) => new(a * b.X + c.X, a * b.Y + c.Y, a * b.Z + c.Z, a * b.W + c.W);
}

/// <summary>
/// One thread's share of loading an operand slice (4 elements per slice), its coordinates fixed for the whole K loop.
/// K-major operands (A stored (K, M), B stored (K, N)) give each thread 4 consecutive m (or n) of one k row of the
/// slice; the others (A (M, K), B (N, K)) 4 consecutive k of one row. Elements outside the matrix load as 0.
/// </summary>
internal readonly struct TileLoad
{
    private readonly bool _kMajor, _vector;
    private readonly int _offset, _kStride, _kOffset, _lanes, _k;

    /// <param name="kMajor">The operand is stored (K, extent) rather than (extent, K).</param>
    /// <param name="tid">The thread (0 .. block * BlockK / 4).</param>
    /// <param name="base0">First row of C (A) or column of C (B) of the block tile.</param>
    /// <param name="extent">M (A) or N (B).</param>
    /// <param name="k">K.</param>
    /// <param name="blockShift">log2(block / 4): 5 for A (BlockM = 128), 4 for B (BlockN = 64).</param>
    /// <param name="vector">Load the 4 elements as one float4 (host-checked alignment).</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TileLoad(bool kMajor, int tid, int base0, int extent, int k, int blockShift, bool vector)
    {
        _kMajor = kMajor; _vector = vector; _k = k;
        if (kMajor)
        {
            // slice element (kk, q .. q + 3) at (k0 + kk) * extent + base0 + q
            int kk = tid >> blockShift, q = (tid & ((1 << blockShift) - 1)) << 2;
            _kOffset = kk; _kStride = extent; _offset = kk * extent + base0 + q; _lanes = extent - base0 - q;
        }
        else
        {
            // slice element (line, kq .. kq + 3) at (base0 + line) * K + k0 + kq
            int line = tid >> 1, kq = (tid & 1) << 2;
            _kOffset = kq; _kStride = 1; _offset = (base0 + line) * k + kq; _lanes = base0 + line < extent ? 4 : 0;
        }
    }

    /// <summary>The thread's 4 elements of the slice starting at k0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Float4 Load(ArrayView<float> v, int k0)
    {
        int q = k0 + _kOffset, idx = _offset + k0 * _kStride;
        if (_vector) return q < _k && _lanes > 0 ? v.Cast<Float4>()[idx >> 2] : default;
        if (_kMajor)
        {
            bool inK = q < _k;
            return new(inK && _lanes > 0 ? v[idx] : 0f, inK && _lanes > 1 ? v[idx + 1] : 0f,
                inK && _lanes > 2 ? v[idx + 2] : 0f, inK && _lanes > 3 ? v[idx + 3] : 0f);
        }
        bool inside = _lanes > 0;
        return new(inside && q < _k ? v[idx] : 0f, inside && q + 1 < _k ? v[idx + 1] : 0f,
            inside && q + 2 < _k ? v[idx + 2] : 0f, inside && q + 3 < _k ? v[idx + 3] : 0f);
    }
}
