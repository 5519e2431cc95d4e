using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace GpuNet.Kernels;

/// <summary>
/// General matrix multiply on tensor cores in TF32 (PyTorch's <c>allow_tf32</c>), float32 row-major in and out:
/// C = act(alpha * op(A) op(B) + beta * C + bias), the contract of <see cref="GemmOp"/>, except that every element of
/// A and B is first rounded to TF32 (8-bit exponent, 10-bit mantissa, <c>cvt.rna</c>: to nearest, ties away from
/// zero); products and sums stay float32. A: (M, K), or (K, M) when transA; B: (K, N), or (N, K) when transB;
/// C: (M, N); bias: (N) or empty. When beta == 0, C is not read.
/// On CUDA (sm_80+) the inner product is PTX <c>mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32</c>; on every
/// other accelerator the same kernel runs <see cref="Mma"/>'s software model of that instruction's fragment layout.
/// Gradient contract: as <see cref="GemmOp"/> (beta = 1 accumulates parameter gradients, beta = 0 overwrites).
/// </summary>
public static class GemmTf32Op
{
    // ---- float64 reference (the spec) ---------------------------------------------------------------------------

    /// <summary>x rounded to TF32 as <c>cvt.rna.tf32.f32</c> does (x is a float32 value held in a double).</summary>
    public static double RoundTf32(double x) => Mma.RoundTf32((float)x);

    /// <summary>
    /// float64 reference of the TF32 GEMM with its epilogue: <see cref="GemmOp.Reference"/> over A and B rounded to
    /// TF32 (<see cref="RoundTf32"/>); products and sums in float64, so it differs from the kernel by float32
    /// accumulation only.
    /// </summary>
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
                    s += RoundTf32(transA ? a[p * m + i] : a[i * k + p]) * RoundTf32(transB ? b[j * k + p] : b[p * n + j]);
                double v = alpha * s + (beta == 0 ? 0 : beta * c[i * n + j]) + (bias.Length > 0 ? bias[j] : 0);
                c[i * n + j] = f.Reference(v, actAlpha);
            }
    }

    // ---- ILGPU kernel: block tile in shared memory, warp tile of m16n8k8 MMAs in registers ------------------------
    //
    // Loop nest (CUTLASS names): a group of 4 warps computes a BlockM x BlockN block tile of C; warp w owns the
    // WarpM x WarpN warp tile at ((w >> 1) WarpM, (w & 1) WarpN), made of 2 x 4 MMA tiles of 16 x 8, i.e. 32
    // accumulators per lane in the C fragment layout. K advances in slices of BlockK = 2 MMA k-steps. Each slice is
    // read from global memory in contiguous runs whatever the transpose (out-of-range elements load as 0, so any
    // M, N, K works), rounded to TF32 once, and stored K-contiguous: As[row][k], Bs[col][k], rows padded to 20 words
    // so that a warp's fragment reads (address 20 groupID + threadID_in_group) hit 32 distinct banks. The next slice
    // is fetched into registers while the MMAs of the current one run.

    /// <summary>Rows of C per thread group (block tile, M).</summary>
    public const int BlockM = 64;
    /// <summary>Columns of C per thread group (block tile, N).</summary>
    public const int BlockN = 64;
    /// <summary>Depth of one K slice in shared memory (block tile, K): two m16n8k8 steps.</summary>
    public const int BlockK = 16;
    /// <summary>Rows of C per warp (warp tile, M): two MMA tiles of 16.</summary>
    public const int WarpM = 32;
    /// <summary>Columns of C per warp (warp tile, N): four MMA tiles of 8.</summary>
    public const int WarpN = 32;
    /// <summary>Warps per group.</summary>
    public const int Warps = BlockM / WarpM * (BlockN / WarpN);
    /// <summary>Threads per group (4 warps of 32).</summary>
    public const int GroupSize = Warps * Mma.WarpLanes;

    private const int Stride = BlockK + 4;
    private const int PerThread = BlockM * BlockK / GroupSize; // slice elements each thread moves (8, for A and for B)

    /// <summary>
    /// TF32 tensor-core GEMM with fused epilogue; launch with a grid of (ceil(M / BlockM), ceil(N / BlockN)) groups of
    /// <see cref="GroupSize"/> threads (1-D). a, b, c, bias: flat row-major, see <see cref="Reference"/>.
    /// </summary>
    [GpuKernel(ExplicitlyGrouped = true)]
    public static void Kernel<TAct>(GemmTf32Args p, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, ArrayView<float> bias)
        where TAct : struct, IActivation
    {
        var sa = SharedMemory.Allocate<uint>(BlockM * Stride);  // As[BlockM][Stride], TF32 bits
        var sb = SharedMemory.Allocate<uint>(BlockN * Stride);  // Bs[BlockN][Stride], TF32 bits
        var ex = SharedMemory.Allocate<uint>(Warps * Mma.ExchangeWords); // the software model's exchange (unused on CUDA)
        int tid = Group.IdxX, lane = tid & 31, warp = tid >> 5;
        int g = lane >> 2, t = lane & 3;
        var exchange = ex.SubView(warp * Mma.ExchangeWords, Mma.ExchangeWords);
        int row0 = Grid.IdxX * BlockM, col0 = Grid.IdxY * BlockN;
        int wm = (warp >> 1) * WarpM, wn = (warp & 1) * WarpN;
        int m = p.M, n = p.N, k = p.K, ta = p.TransA, tb = p.TransB;

        var acc = default(WarpTile); // 32 floats per lane, in registers

        Slice ra = default, rb = default;
        if (k > 0) { ra = LoadA(a, ta, m, k, row0, 0, tid); rb = LoadB(b, tb, n, k, col0, 0, tid); }
        for (int k0 = 0; k0 < k; k0 += BlockK)
        {
            StoreA(sa, ta, tid, ra);
            StoreB(sb, tb, tid, rb);
            Group.Barrier();
            if (k0 + BlockK < k)
            {
                // Prefetch the next slice; its global latency hides behind the MMAs below.
                ra = LoadA(a, ta, m, k, row0, k0 + BlockK, tid);
                rb = LoadB(b, tb, n, k, col0, k0 + BlockK, tid);
            }
            // The slice's two k-steps, written out: ILGPU does not unroll loops, and a loop here costs a counter,
            // a compare and a branch per 8 MMAs.
            KStep(ref acc, sa, sb, wm, wn, 0, g, t, exchange, lane);
            KStep(ref acc, sa, sb, wm, wn, 8, g, t, exchange, lane);
            Group.Barrier(); // the slice is overwritten next iteration
        }

        int i0 = row0 + wm + g, i1 = i0 + 16, j0 = col0 + wn + 2 * t;
        Epilogue<TAct>(p, c, bias, i0, j0, acc.C00); Epilogue<TAct>(p, c, bias, i0, j0 + 8, acc.C01);
        Epilogue<TAct>(p, c, bias, i0, j0 + 16, acc.C02); Epilogue<TAct>(p, c, bias, i0, j0 + 24, acc.C03);
        Epilogue<TAct>(p, c, bias, i1, j0, acc.C10); Epilogue<TAct>(p, c, bias, i1, j0 + 8, acc.C11);
        Epilogue<TAct>(p, c, bias, i1, j0 + 16, acc.C12); Epilogue<TAct>(p, c, bias, i1, j0 + 24, acc.C13);
    }

    /// <summary>A warp tile's accumulators: MMA tile (i, j) at rows 16 i, columns 8 j of the 32 x 32 warp tile.</summary>
    private struct WarpTile
    {
        public MmaC C00, C01, C02, C03, C10, C11, C12, C13;
    }

    /// <summary>One k-step (8 of the slice's 16) of the warp tile: 2 A fragments, 4 B fragments, 8 MMAs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void KStep(ref WarpTile acc, ArrayView<uint> sa, ArrayView<uint> sb, int wm, int wn, int kk, int g, int t,
        ArrayView<uint> exchange, int lane)
    {
        var a0 = FragmentA(sa, wm, kk, g, t);
        var a1 = FragmentA(sa, wm + 16, kk, g, t);
        var b0 = FragmentB(sb, wn, kk, g, t);
        var b1 = FragmentB(sb, wn + 8, kk, g, t);
        var b2 = FragmentB(sb, wn + 16, kk, g, t);
        var b3 = FragmentB(sb, wn + 24, kk, g, t);
        Mma.M16N8K8Tf32(ref acc.C00, a0, b0, exchange, lane); Mma.M16N8K8Tf32(ref acc.C01, a0, b1, exchange, lane);
        Mma.M16N8K8Tf32(ref acc.C02, a0, b2, exchange, lane); Mma.M16N8K8Tf32(ref acc.C03, a0, b3, exchange, lane);
        Mma.M16N8K8Tf32(ref acc.C10, a1, b0, exchange, lane); Mma.M16N8K8Tf32(ref acc.C11, a1, b1, exchange, lane);
        Mma.M16N8K8Tf32(ref acc.C12, a1, b2, exchange, lane); Mma.M16N8K8Tf32(ref acc.C13, a1, b3, exchange, lane);
    }

    /// <summary>The <see cref="PerThread"/> slice elements one thread moves (registers, not an array).</summary>
    private struct Slice
    {
        public float V0, V1, V2, V3, V4, V5, V6, V7;
    }

    /// <summary>Elements tid + r GroupSize (r = 0..7) of the A slice at (row0, k0); 0 outside A.</summary>
    private static Slice LoadA(ArrayView<float> a, int ta, int m, int k, int row0, int k0, int tid) => new()
    {
        V0 = ElementA(a, ta, m, k, row0, k0, tid), V1 = ElementA(a, ta, m, k, row0, k0, tid + GroupSize),
        V2 = ElementA(a, ta, m, k, row0, k0, tid + 2 * GroupSize), V3 = ElementA(a, ta, m, k, row0, k0, tid + 3 * GroupSize),
        V4 = ElementA(a, ta, m, k, row0, k0, tid + 4 * GroupSize), V5 = ElementA(a, ta, m, k, row0, k0, tid + 5 * GroupSize),
        V6 = ElementA(a, ta, m, k, row0, k0, tid + 6 * GroupSize), V7 = ElementA(a, ta, m, k, row0, k0, tid + 7 * GroupSize),
    };

    /// <summary>Elements tid + r GroupSize (r = 0..7) of the B slice at (k0, col0); 0 outside B.</summary>
    private static Slice LoadB(ArrayView<float> b, int tb, int n, int k, int col0, int k0, int tid) => new()
    {
        V0 = ElementB(b, tb, n, k, col0, k0, tid), V1 = ElementB(b, tb, n, k, col0, k0, tid + GroupSize),
        V2 = ElementB(b, tb, n, k, col0, k0, tid + 2 * GroupSize), V3 = ElementB(b, tb, n, k, col0, k0, tid + 3 * GroupSize),
        V4 = ElementB(b, tb, n, k, col0, k0, tid + 4 * GroupSize), V5 = ElementB(b, tb, n, k, col0, k0, tid + 5 * GroupSize),
        V6 = ElementB(b, tb, n, k, col0, k0, tid + 6 * GroupSize), V7 = ElementB(b, tb, n, k, col0, k0, tid + 7 * GroupSize),
    };

    private static void StoreA(ArrayView<uint> sa, int ta, int tid, Slice s)
    {
        sa[SharedA(ta, tid)] = Mma.ToTf32(s.V0); sa[SharedA(ta, tid + GroupSize)] = Mma.ToTf32(s.V1);
        sa[SharedA(ta, tid + 2 * GroupSize)] = Mma.ToTf32(s.V2); sa[SharedA(ta, tid + 3 * GroupSize)] = Mma.ToTf32(s.V3);
        sa[SharedA(ta, tid + 4 * GroupSize)] = Mma.ToTf32(s.V4); sa[SharedA(ta, tid + 5 * GroupSize)] = Mma.ToTf32(s.V5);
        sa[SharedA(ta, tid + 6 * GroupSize)] = Mma.ToTf32(s.V6); sa[SharedA(ta, tid + 7 * GroupSize)] = Mma.ToTf32(s.V7);
    }

    private static void StoreB(ArrayView<uint> sb, int tb, int tid, Slice s)
    {
        sb[SharedB(tb, tid)] = Mma.ToTf32(s.V0); sb[SharedB(tb, tid + GroupSize)] = Mma.ToTf32(s.V1);
        sb[SharedB(tb, tid + 2 * GroupSize)] = Mma.ToTf32(s.V2); sb[SharedB(tb, tid + 3 * GroupSize)] = Mma.ToTf32(s.V3);
        sb[SharedB(tb, tid + 4 * GroupSize)] = Mma.ToTf32(s.V4); sb[SharedB(tb, tid + 5 * GroupSize)] = Mma.ToTf32(s.V5);
        sb[SharedB(tb, tid + 6 * GroupSize)] = Mma.ToTf32(s.V6); sb[SharedB(tb, tid + 7 * GroupSize)] = Mma.ToTf32(s.V7);
    }

    /// <summary>Element idx (0 .. BlockM BlockK) of the A slice: runs of BlockK along K (A stored (M, K)) or of BlockM along M (stored (K, M)).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float ElementA(ArrayView<float> a, int ta, int m, int k, int row0, int k0, int idx)
    {
        int r = ta != 0 ? idx & (BlockM - 1) : idx >> 4;   // BlockK = 16
        int kk = ta != 0 ? idx >> 6 : idx & (BlockK - 1); // BlockM = 64
        int i = row0 + r, q = k0 + kk;
        if (i >= m || q >= k) return 0f;
        return ta != 0 ? a[q * m + i] : a[i * k + q];
    }

    /// <summary>Element idx (0 .. BlockK BlockN) of the B slice: runs of BlockN along N (B stored (K, N)) or of BlockK along K (stored (N, K)).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float ElementB(ArrayView<float> b, int tb, int n, int k, int col0, int k0, int idx)
    {
        int j = tb != 0 ? idx >> 4 : idx & (BlockN - 1);
        int kk = tb != 0 ? idx & (BlockK - 1) : idx >> 6;
        int col = col0 + j, q = k0 + kk;
        if (col >= n || q >= k) return 0f;
        return tb != 0 ? b[col * k + q] : b[q * n + col];
    }

    /// <summary>Offset of A-slice element idx (numbered as <see cref="ElementA"/>) in As[row][k].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int SharedA(int ta, int idx)
        => ta != 0 ? (idx & (BlockM - 1)) * Stride + (idx >> 6) : (idx >> 4) * Stride + (idx & (BlockK - 1));

    /// <summary>Offset of B-slice element idx (numbered as <see cref="ElementB"/>) in Bs[col][k].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int SharedB(int tb, int idx)
        => tb != 0 ? (idx >> 4) * Stride + (idx & (BlockK - 1)) : (idx & (BlockN - 1)) * Stride + (idx >> 6);

    /// <summary>The m16n8k8 A fragment of rows r0 .. r0 + 15, k-step kk: a0 (g, t), a1 (g + 8, t), a2 (g, t + 4), a3 (g + 8, t + 4).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static MmaA FragmentA(ArrayView<uint> sa, int r0, int kk, int g, int t)
    {
        int o = (r0 + g) * Stride + kk + t;
        return new MmaA { A0 = sa[o], A1 = sa[o + 8 * Stride], A2 = sa[o + 4], A3 = sa[o + 8 * Stride + 4] };
    }

    /// <summary>The m16n8k8 B fragment of columns c0 .. c0 + 7, k-step kk: b0 (k t, col g), b1 (k t + 4, col g).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static MmaB FragmentB(ArrayView<uint> sb, int c0, int kk, int g, int t)
    {
        int o = (c0 + g) * Stride + kk + t;
        return new MmaB { B0 = sb[o], B1 = sb[o + 4] };
    }

    /// <summary>Stores a C fragment: c0 at (i, j), c1 at (i, j + 1), c2 at (i + 8, j), c3 at (i + 8, j + 1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Epilogue<TAct>(GemmTf32Args p, ArrayView<float> c, ArrayView<float> bias, int i, int j, MmaC acc)
        where TAct : struct, IActivation
    {
        Store<TAct>(p, c, bias, i, j, acc.C0); Store<TAct>(p, c, bias, i, j + 1, acc.C1);
        Store<TAct>(p, c, bias, i + 8, j, acc.C2); Store<TAct>(p, c, bias, i + 8, j + 1, acc.C3);
    }

    /// <summary>c[i, j] = act(alpha * acc + beta * c[i, j] + bias[j]) when (i, j) lies inside C; C is read only when beta != 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store<TAct>(GemmTf32Args p, ArrayView<float> c, ArrayView<float> bias, int i, int j, float acc)
        where TAct : struct, IActivation
    {
        if (i >= p.M || j >= p.N) return;
        int o = i * p.N + j;
        float v = p.Alpha * acc;
        if (p.Beta != 0f) v += p.Beta * c[o];
        if (p.HasBias != 0) v += bias[j];
        c[o] = default(TAct).Forward(v, p.ActAlpha);
    }

    // ---- launcher -----------------------------------------------------------------------------------------------

    /// <summary>Launches <see cref="Kernel{TAct}"/> with the epilogue activation <paramref name="act"/>; see <see cref="Launch{TAct}"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="act"/> is not a defined <see cref="Activation"/>.</exception>
    public static void Launch(KernelCache kernels, bool transA, bool transB, int m, int n, int k, float alpha,
        ArrayView<float> a, ArrayView<float> b, float beta, ArrayView<float> c, ArrayView<float> bias,
        Activation act, float actAlpha)
    {
        var v = new LaunchVisitor(kernels, transA, transB, m, n, k, alpha, a, b, beta, c, bias, actAlpha);
        ActivationMath.Visit(act, ref v);
    }

    private readonly struct LaunchVisitor(KernelCache kernels, bool transA, bool transB, int m, int n, int k, float alpha,
        ArrayView<float> a, ArrayView<float> b, float beta, ArrayView<float> c, ArrayView<float> bias, float actAlpha) : IActivationVisitor
    {
        public void Visit<TAct>(TAct act) where TAct : struct, IActivation
            => Launch<TAct>(kernels, transA, transB, m, n, k, alpha, a, b, beta, c, bias, actAlpha);
    }

    /// <summary>
    /// Launches <see cref="Kernel{TAct}"/>: C = act(alpha * op(A) op(B) + beta * C + bias) with A and B rounded to
    /// TF32, one launch (none when M or N is 0). An empty <paramref name="bias"/> means no bias; K = 0 gives
    /// C = act(beta * C + bias).
    /// </summary>
    /// <exception cref="NotSupportedException">A CUDA device older than sm_80 (no TF32 tensor cores), a group of
    /// <see cref="GroupSize"/> threads or the grid exceeds the accelerator's limits.</exception>
    public static void Launch<TAct>(KernelCache kernels, bool transA, bool transB, int m, int n, int k, float alpha,
        ArrayView<float> a, ArrayView<float> b, float beta, ArrayView<float> c, ArrayView<float> bias, float actAlpha)
        where TAct : struct, IActivation
    {
        if (m == 0 || n == 0) return;
        var acc = kernels.Accelerator;
        if (acc is CudaAccelerator cuda && cuda.Architecture.Major < 8)
            throw new NotSupportedException($"GemmTf32: mma.sync .tf32 needs sm_80 or newer, device '{acc.Name}' is {cuda.Architecture}; use math mode fp32");
        if (acc.MaxNumThreadsPerGroup < GroupSize)
            throw new NotSupportedException($"GemmTf32: the kernel needs {GroupSize} threads per group, accelerator '{acc.Name}' allows {acc.MaxNumThreadsPerGroup}");
        int groupsM = (m + BlockM - 1) / BlockM, groupsN = (n + BlockN - 1) / BlockN;
        if (groupsM > acc.MaxGridSize.X || groupsN > acc.MaxGridSize.Y)
            throw new NotSupportedException($"GemmTf32: C ({m}, {n}) needs a grid of ({groupsM}, {groupsN}) groups, accelerator '{acc.Name}' allows ({acc.MaxGridSize.X}, {acc.MaxGridSize.Y})");
        bool hasBias = bias.Length > 0;
        var args = new GemmTf32Args(m, n, k, transA, transB, alpha, beta, hasBias, actAlpha);
        var config = new KernelConfig(new Index2D(groupsM, groupsN), new Index2D(GroupSize, 1));
        kernels.Get(Kernel<TAct>, x => x.LoadStreamKernel<GemmTf32Args, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(Kernel<TAct>))
            // Without a bias the kernel never reads the bias view; c stands in so that no empty view is passed.
            (config, args, a, b, c, hasBias ? bias : c);
        kernels.CountLaunch();
    }

    // ---- cost ---------------------------------------------------------------------------------------------------

    /// <summary>2MNK FLOPs (+ MN each for beta and bias); bytes: A, B read once, C read (beta != 0) and written.</summary>
    public static OpCost Cost(int m, int n, int k, bool readsC = false, bool hasBias = false)
        => new(2.0 * m * n * k + (readsC ? 2.0 * m * n : 0) + (hasBias ? (double)m * n : 0),
               4.0 * ((double)m * k + (double)k * n + (readsC ? 2.0 : 1.0) * m * n + (hasBias ? n : 0)));
}

/// <summary>Scalar arguments of <see cref="GemmTf32Op.Kernel{TAct}"/> (flags as ints: kernel-friendly).</summary>
public readonly struct GemmTf32Args(int m, int n, int k, bool transA, bool transB, float alpha, float beta, bool hasBias, float actAlpha)
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
