using System.Runtime.CompilerServices;
using ILGPU;
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

    // ---- ILGPU kernel: block tile in shared memory, thread tile in registers ------------------------------------
    //
    // Loop nest (CUTLASS names): one thread group computes a BlockM x BlockN block tile of C and walks K in slices
    // of BlockK; each of its ThreadsM x ThreadsN threads accumulates a ThreadM x ThreadN thread tile in registers.
    // The thread tile is strided: thread (ty, tx) owns rows ty + ThreadsM * r and columns tx + ThreadsN * c, so a warp's
    // shared reads of B are consecutive words (no bank conflicts), its reads of A are broadcasts and its stores to C
    // are coalesced. The shared tiles are k-major (As[kk][row], Bs[kk][col]) and double-buffered: the next K slice
    // is fetched from global memory into registers while the current one is multiplied, then stored into the other
    // buffer, so one barrier per K slice suffices. Each slice load reads whole contiguous runs of the source matrix
    // whatever the transpose (coalesced); out-of-range elements load as 0, so any M, N, K works.

    /// <summary>Rows of C per thread group (block tile, M).</summary>
    public const int BlockM = 64;
    /// <summary>Columns of C per thread group (block tile, N).</summary>
    public const int BlockN = 64;
    /// <summary>Depth of one K slice held in shared memory (block tile, K).</summary>
    public const int BlockK = 16;
    /// <summary>Rows of C per thread (thread tile, M).</summary>
    public const int ThreadM = 4;
    /// <summary>Columns of C per thread (thread tile, N).</summary>
    public const int ThreadN = 4;
    /// <summary>Threads along M in a group.</summary>
    public const int ThreadsM = BlockM / ThreadM;
    /// <summary>Threads along N in a group.</summary>
    public const int ThreadsN = BlockN / ThreadN;
    /// <summary>Threads per group (256: the limit of the 'ilgpu-cpu' device and of many OpenCL devices).</summary>
    public const int GroupSize = ThreadsM * ThreadsN;

    // Padded k-major rows of the shared tiles: the transposing store of a row-major slice (A untransposed,
    // B transposed) then spreads a warp over distinct banks instead of hitting one bank 16 times.
    private const int StrideA = BlockM + 1;
    private const int StrideB = BlockN + 1;
    private const int TileA = BlockK * StrideA;
    private const int TileB = BlockK * StrideB;

    /// <summary>
    /// Tiled GEMM with fused epilogue; launch with a grid of (ceil(M / BlockM), ceil(N / BlockN)) groups of
    /// <see cref="GroupSize"/> threads (1-D). a, b, c, bias: flat row-major, see <see cref="Reference"/>.
    /// bias is read only when <see cref="GemmArgs.HasBias"/> is set; c only when beta != 0. The epilogue's
    /// activation is <typeparamref name="TAct"/> (ILGPU compiles one kernel per activation struct).
    /// </summary>
    [GpuKernel(ExplicitlyGrouped = true)]
    public static void Kernel<TAct>(GemmArgs p, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, ArrayView<float> bias)
        where TAct : struct, IActivation
    {
        var sa = SharedMemory.Allocate<float>(2 * TileA); // As[2][BlockK][StrideA]
        var sb = SharedMemory.Allocate<float>(2 * TileB); // Bs[2][BlockK][StrideB]
        int tid = Group.IdxX;
        int tx = tid % ThreadsN, ty = tid / ThreadsN;
        int row0 = Grid.IdxX * BlockM, col0 = Grid.IdxY * BlockN;
        int m = p.M, n = p.N, k = p.K, ta = p.TransA, tb = p.TransB;
        int tiles = (k + BlockK - 1) / BlockK;

        float c00 = 0f, c01 = 0f, c02 = 0f, c03 = 0f;
        float c10 = 0f, c11 = 0f, c12 = 0f, c13 = 0f;
        float c20 = 0f, c21 = 0f, c22 = 0f, c23 = 0f;
        float c30 = 0f, c31 = 0f, c32 = 0f, c33 = 0f;

        if (tiles > 0)
        {
            // Slice 0 into buffer 0. Each thread moves 4 elements of each tile (BlockM * BlockK / GroupSize = 4).
            float ra0 = LoadA(a, ta, m, k, row0, 0, tid), ra1 = LoadA(a, ta, m, k, row0, 0, tid + GroupSize);
            float ra2 = LoadA(a, ta, m, k, row0, 0, tid + 2 * GroupSize), ra3 = LoadA(a, ta, m, k, row0, 0, tid + 3 * GroupSize);
            float rb0 = LoadB(b, tb, n, k, col0, 0, tid), rb1 = LoadB(b, tb, n, k, col0, 0, tid + GroupSize);
            float rb2 = LoadB(b, tb, n, k, col0, 0, tid + 2 * GroupSize), rb3 = LoadB(b, tb, n, k, col0, 0, tid + 3 * GroupSize);
            sa[SharedA(ta, tid)] = ra0; sa[SharedA(ta, tid + GroupSize)] = ra1;
            sa[SharedA(ta, tid + 2 * GroupSize)] = ra2; sa[SharedA(ta, tid + 3 * GroupSize)] = ra3;
            sb[SharedB(tb, tid)] = rb0; sb[SharedB(tb, tid + GroupSize)] = rb1;
            sb[SharedB(tb, tid + 2 * GroupSize)] = rb2; sb[SharedB(tb, tid + 3 * GroupSize)] = rb3;
            Group.Barrier();

            for (int t = 0; t < tiles; t++)
            {
                int cur = t & 1;
                bool more = t + 1 < tiles;
                if (more)
                {
                    // Prefetch slice t + 1 into registers; its global latency hides behind the FMAs below.
                    int k0 = (t + 1) * BlockK;
                    ra0 = LoadA(a, ta, m, k, row0, k0, tid); ra1 = LoadA(a, ta, m, k, row0, k0, tid + GroupSize);
                    ra2 = LoadA(a, ta, m, k, row0, k0, tid + 2 * GroupSize); ra3 = LoadA(a, ta, m, k, row0, k0, tid + 3 * GroupSize);
                    rb0 = LoadB(b, tb, n, k, col0, k0, tid); rb1 = LoadB(b, tb, n, k, col0, k0, tid + GroupSize);
                    rb2 = LoadB(b, tb, n, k, col0, k0, tid + 2 * GroupSize); rb3 = LoadB(b, tb, n, k, col0, k0, tid + 3 * GroupSize);
                }

                int pa = cur * TileA + ty, pb = cur * TileB + tx;
                // Two k steps per iteration (BlockK is even): halves the loop's integer and branch overhead.
                for (int kk = 0; kk < BlockK; kk += 2)
                {
                    // Sub-views with constant offsets: the backend folds those into the shared loads' immediates.
                    var fa = sa.SubView(pa, StrideA + 3 * ThreadsM + 1);
                    var fb = sb.SubView(pb, StrideB + 3 * ThreadsN + 1);
                    float a0 = fa[0], a1 = fa[ThreadsM], a2 = fa[2 * ThreadsM], a3 = fa[3 * ThreadsM];
                    float b0 = fb[0], b1 = fb[ThreadsN], b2 = fb[2 * ThreadsN], b3 = fb[3 * ThreadsN];
                    c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
                    c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
                    c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
                    c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
                    a0 = fa[StrideA]; a1 = fa[StrideA + ThreadsM]; a2 = fa[StrideA + 2 * ThreadsM]; a3 = fa[StrideA + 3 * ThreadsM];
                    b0 = fb[StrideB]; b1 = fb[StrideB + ThreadsN]; b2 = fb[StrideB + 2 * ThreadsN]; b3 = fb[StrideB + 3 * ThreadsN];
                    c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
                    c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
                    c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
                    c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
                    pa += 2 * StrideA; pb += 2 * StrideB;
                }

                if (more)
                {
                    // Buffer 1 - cur was last read in step t - 1, which every thread finished before the last barrier.
                    int na = (1 - cur) * TileA, nb = (1 - cur) * TileB;
                    sa[na + SharedA(ta, tid)] = ra0; sa[na + SharedA(ta, tid + GroupSize)] = ra1;
                    sa[na + SharedA(ta, tid + 2 * GroupSize)] = ra2; sa[na + SharedA(ta, tid + 3 * GroupSize)] = ra3;
                    sb[nb + SharedB(tb, tid)] = rb0; sb[nb + SharedB(tb, tid + GroupSize)] = rb1;
                    sb[nb + SharedB(tb, tid + 2 * GroupSize)] = rb2; sb[nb + SharedB(tb, tid + 3 * GroupSize)] = rb3;
                    Group.Barrier();
                }
            }
        }

        // Epilogue: C = act(alpha * acc + beta * C + bias), bounds-checked.
        int i0 = row0 + ty, i1 = i0 + ThreadsM, i2 = i0 + 2 * ThreadsM, i3 = i0 + 3 * ThreadsM;
        int j0 = col0 + tx, j1 = j0 + ThreadsN, j2 = j0 + 2 * ThreadsN, j3 = j0 + 3 * ThreadsN;
        Epilogue<TAct>(p, c, bias, i0, j0, c00); Epilogue<TAct>(p, c, bias, i0, j1, c01); Epilogue<TAct>(p, c, bias, i0, j2, c02); Epilogue<TAct>(p, c, bias, i0, j3, c03);
        Epilogue<TAct>(p, c, bias, i1, j0, c10); Epilogue<TAct>(p, c, bias, i1, j1, c11); Epilogue<TAct>(p, c, bias, i1, j2, c12); Epilogue<TAct>(p, c, bias, i1, j3, c13);
        Epilogue<TAct>(p, c, bias, i2, j0, c20); Epilogue<TAct>(p, c, bias, i2, j1, c21); Epilogue<TAct>(p, c, bias, i2, j2, c22); Epilogue<TAct>(p, c, bias, i2, j3, c23);
        Epilogue<TAct>(p, c, bias, i3, j0, c30); Epilogue<TAct>(p, c, bias, i3, j1, c31); Epilogue<TAct>(p, c, bias, i3, j2, c32); Epilogue<TAct>(p, c, bias, i3, j3, c33);
    }

    /// <summary>Element idx (0 .. BlockM * BlockK) of the A slice at (row0, k0); 0 outside A.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float LoadA(ArrayView<float> a, int transA, int m, int k, int row0, int k0, int idx)
    {
        int r, kk;
        if (transA != 0) { r = idx % BlockM; kk = idx / BlockM; } // A stored (K, M): runs of BlockM along M
        else { kk = idx % BlockK; r = idx / BlockK; }              // A stored (M, K): runs of BlockK along K
        int i = row0 + r, q = k0 + kk;
        if (i >= m || q >= k) return 0f;
        return transA != 0 ? a[q * m + i] : a[i * k + q];
    }

    /// <summary>Element idx (0 .. BlockK * BlockN) of the B slice at (k0, col0); 0 outside B.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float LoadB(ArrayView<float> b, int transB, int n, int k, int col0, int k0, int idx)
    {
        int j, kk;
        if (transB != 0) { kk = idx % BlockK; j = idx / BlockK; } // B stored (N, K): runs of BlockK along K
        else { j = idx % BlockN; kk = idx / BlockN; }             // B stored (K, N): runs of BlockN along N
        int col = col0 + j, q = k0 + kk;
        if (col >= n || q >= k) return 0f;
        return transB != 0 ? b[col * k + q] : b[q * n + col];
    }

    /// <summary>Shared offset of A-slice element idx (same numbering as <see cref="LoadA"/>) in As[kk][row].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int SharedA(int transA, int idx)
        => transA != 0 ? idx / BlockM * StrideA + idx % BlockM : idx % BlockK * StrideA + idx / BlockK;

    /// <summary>Shared offset of B-slice element idx (same numbering as <see cref="LoadB"/>) in Bs[kk][col].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int SharedB(int transB, int idx)
        => transB != 0 ? idx % BlockK * StrideB + idx / BlockK : idx / BlockN * StrideB + idx % BlockN;

    /// <summary>c[i, j] = act(alpha * acc + beta * c[i, j] + bias[j]) when (i, j) lies inside C; C is read only when beta != 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Epilogue<TAct>(GemmArgs p, ArrayView<float> c, ArrayView<float> bias, int i, int j, float acc)
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

    /// <summary>
    /// Launches <see cref="Kernel{TAct}"/> with the epilogue activation <paramref name="act"/>; see
    /// <see cref="Launch{TAct}"/>.
    /// </summary>
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
    /// Launches <see cref="Kernel{TAct}"/>: C = act(alpha * op(A) op(B) + beta * C + bias), one launch (none when M or N
    /// is 0), act being <typeparamref name="TAct"/> with <paramref name="actAlpha"/>. An empty <paramref name="bias"/>
    /// means no bias. K = 0 gives C = act(beta * C + bias).
    /// </summary>
    public static void Launch<TAct>(KernelCache kernels, bool transA, bool transB, int m, int n, int k, float alpha,
        ArrayView<float> a, ArrayView<float> b, float beta, ArrayView<float> c, ArrayView<float> bias, float actAlpha)
        where TAct : struct, IActivation
    {
        if (m == 0 || n == 0) return;
        if (kernels.Accelerator.MaxNumThreadsPerGroup < GroupSize)
            throw new NotSupportedException($"Gemm: the kernel needs {GroupSize} threads per group, accelerator '{kernels.Accelerator.Name}' allows {kernels.Accelerator.MaxNumThreadsPerGroup}");
        bool hasBias = bias.Length > 0;
        var args = new GemmArgs(m, n, k, transA, transB, alpha, beta, hasBias, actAlpha);
        // Grid: (ceil(M / BlockM), ceil(N / BlockN)); M goes on x, the dimension with the largest limit (2^31 - 1 on CUDA).
        int groupsM = (m + BlockM - 1) / BlockM, groupsN = (n + BlockN - 1) / BlockN;
        var maxGrid = kernels.Accelerator.MaxGridSize;
        if (groupsM > maxGrid.X || groupsN > maxGrid.Y)
            throw new NotSupportedException($"Gemm: C ({m}, {n}) needs a grid of ({groupsM}, {groupsN}) groups, accelerator '{kernels.Accelerator.Name}' allows ({maxGrid.X}, {maxGrid.Y})");
        var config = new KernelConfig(new Index2D(groupsM, groupsN), new Index2D(GroupSize, 1));
        kernels.Get(Kernel<TAct>, acc => acc.LoadStreamKernel<GemmArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(Kernel<TAct>))
            // Without a bias the kernel never reads the bias view; c stands in so that no empty view is passed.
            (config, args, a, b, c, hasBias ? bias : c);
        kernels.CountLaunch();
    }

    // ---- cost ---------------------------------------------------------------------------------------------------

    /// <summary>2MNK FLOPs (+ MN for beta, bias, activation); bytes: A, B read once, C read (beta != 0) and written.</summary>
    public static OpCost Cost(int m, int n, int k, bool readsC = false, bool hasBias = false)
        => new(2.0 * m * n * k + (readsC ? 2.0 * m * n : 0) + (hasBias ? (double)m * n : 0),
               4.0 * ((double)m * k + (double)k * n + (readsC ? 2.0 : 1.0) * m * n + (hasBias ? n : 0)));
}

/// <summary>
/// Scalar arguments of <see cref="GemmOp.Kernel{TAct}"/>, packed in one struct (flags as ints: kernel-friendly). The
/// activation itself is the kernel's type argument.
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
