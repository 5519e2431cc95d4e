using ILGPU;
using ILGPU.Runtime;

namespace GpuNet.Kernels;

public static partial class GemmOp
{
    // ---- launcher -----------------------------------------------------------------------------------------------

    /// <summary>Grids below this many block tiles are skinny: they get split-K when K is deep enough.</summary>
    public const int SplitTargetGroups = 128;
    /// <summary>Fewest K slices (of <see cref="BlockK"/>) one split multiplies: 8 slices = 64 of K.</summary>
    public const int MinTilesPerSplit = 8;
    /// <summary>Most splits of K.</summary>
    public const int MaxSplits = 16;

    /// <summary>
    /// Launches the tiled GEMM with the epilogue activation <paramref name="act"/>; see <see cref="Launch{TAct}"/>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="act"/> is not a defined <see cref="Activation"/>.</exception>
    public static void Launch(KernelCache kernels, bool transA, bool transB, int m, int n, int k, float alpha,
        ArrayView<float> a, ArrayView<float> b, float beta, ArrayView<float> c, ArrayView<float> bias,
        Activation act, float actAlpha, ArrayView<float> workspace)
    {
        var v = new LaunchVisitor(kernels, transA, transB, m, n, k, alpha, a, b, beta, c, bias, actAlpha, workspace);
        ActivationMath.Visit(act, ref v);
    }

    private readonly struct LaunchVisitor(KernelCache kernels, bool transA, bool transB, int m, int n, int k, float alpha,
        ArrayView<float> a, ArrayView<float> b, float beta, ArrayView<float> c, ArrayView<float> bias, float actAlpha,
        ArrayView<float> workspace) : IActivationVisitor
    {
        public void Visit<TAct>(TAct act) where TAct : struct, IActivation
            => Launch<TAct>(kernels, transA, transB, m, n, k, alpha, a, b, beta, c, bias, actAlpha, workspace);
    }

    /// <summary>
    /// Floats of split-K partial sums a GEMM of (M, N, K) needs (splits x M x N; 0 when it does not split): the
    /// caller owns this workspace and passes it to <see cref="Launch{TAct}"/>.
    /// </summary>
    public static long WorkspaceFloats(int m, int n, int k)
    {
        int splits = ChooseSplit(m, n, k).Splits;
        return splits > 1 ? (long)splits * m * n : 0;
    }

    /// <summary>
    /// The K split for a GEMM of (M, N, K), a function of the shape only (so every backend sums in the same order):
    /// one split unless the grid has fewer than <see cref="SplitTargetGroups"/> block tiles and K holds at least
    /// 2 * <see cref="MinTilesPerSplit"/> slices; then as many splits as fill the target, each of at least
    /// <see cref="MinTilesPerSplit"/> slices, at most <see cref="MaxSplits"/>. Returns (splits, slices per split).
    /// </summary>
    public static (int Splits, int TilesPerSplit) ChooseSplit(int m, int n, int k)
    {
        int tilesK = (k + BlockK - 1) / BlockK;
        long groups = (long)((m + BlockM - 1) / BlockM) * ((n + BlockN - 1) / BlockN);
        int splits = 1;
        if (groups < SplitTargetGroups && tilesK >= 2 * MinTilesPerSplit)
            splits = (int)Math.Min(Math.Min(SplitTargetGroups / groups, tilesK / MinTilesPerSplit), MaxSplits);
        int perSplit = Math.Max(1, (tilesK + splits - 1) / splits);
        return (Math.Max(1, (tilesK + perSplit - 1) / perSplit), perSplit);
    }

    /// <summary>
    /// Launches the tiled GEMM: C = act(alpha * op(A) op(B) + beta * C + bias), act being <typeparamref name="TAct"/>
    /// with <paramref name="actAlpha"/>: one kernel launch, or two with split-K (<see cref="ChooseSplit"/>; the
    /// partial sums go to <paramref name="workspace"/>, at least <see cref="WorkspaceFloats"/> floats, unused when the
    /// GEMM does not split). None when M or N is 0. An empty <paramref name="bias"/> means no bias. K = 0 gives
    /// C = act(beta * C + bias).
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="workspace"/> is shorter than <see cref="WorkspaceFloats"/>.</exception>
    public static void Launch<TAct>(KernelCache kernels, bool transA, bool transB, int m, int n, int k, float alpha,
        ArrayView<float> a, ArrayView<float> b, float beta, ArrayView<float> c, ArrayView<float> bias, float actAlpha,
        ArrayView<float> workspace)
        where TAct : struct, IActivation
    {
        if (m == 0 || n == 0) return;
        long need = WorkspaceFloats(m, n, k);
        if (workspace.Length < need)
            throw new ArgumentException($"Gemm: the split-K workspace has {workspace.Length} floats, ({m}, {n}, {k}) needs {need}", nameof(workspace));
        var acc = kernels.Accelerator;
        if (acc.MaxNumThreadsPerGroup < GroupSize)
            throw new NotSupportedException($"Gemm: the kernel needs {GroupSize} threads per group, accelerator '{acc.Name}' allows {acc.MaxNumThreadsPerGroup}");
        bool hasBias = bias.Length > 0;
        var args = new GemmArgs(m, n, k, transA, transB, alpha, beta, hasBias, actAlpha);
        var (splits, perSplit) = ChooseSplit(m, n, k);
        // 128-bit loads need the operand's contiguous dimension (K when A is (M, K) or B is (N, K); M or N otherwise)
        // to be a multiple of 4, and the view to start on a 16-byte boundary.
        bool vectorA = (transA ? m : k) % 4 == 0 && IndexInBytes(a) % 16 == 0;
        bool vectorB = (transB ? k : n) % 4 == 0 && IndexInBytes(b) % 16 == 0;
        var tiling = new GemmTiling((k + BlockK - 1) / BlockK, perSplit, splits, vectorA, vectorB);
        // Grid: (ceil(M / BlockM), ceil(N / BlockN), splits); M goes on x, the dimension with the largest limit.
        int groupsM = (m + BlockM - 1) / BlockM, groupsN = (n + BlockN - 1) / BlockN;
        var maxGrid = acc.MaxGridSize;
        if (groupsM > maxGrid.X || groupsN > maxGrid.Y)
            throw new NotSupportedException($"Gemm: C ({m}, {n}) needs a grid of ({groupsM}, {groupsN}) groups, accelerator '{acc.Name}' allows ({maxGrid.X}, {maxGrid.Y})");
        var config = new KernelConfig(new Index3D(groupsM, groupsN, splits), new Index3D(GroupSize, 1, 1));
        if (splits == 1) workspace = c;   // never read: c stands in so that no empty view is passed
        // Without a bias the kernels never read the bias view; c stands in so that no empty view is passed.
        var biasView = hasBias ? bias : c;
        TiledLauncher<TAct>(kernels, transA, transB)(config, args, tiling, a, b, c, biasView, workspace);
        kernels.CountLaunch();
        if (splits == 1) return;
        kernels.Get(SplitKReduceKernel<TAct>, static x => x.LoadAutoGroupedStreamKernel<Index2D, GemmArgs, int, ArrayView<float>, ArrayView<float>, ArrayView<float>>(SplitKReduceKernel<TAct>))
            (new Index2D(n, m), args, splits, workspace, c, biasView);
        kernels.CountLaunch();
    }

    /// <summary>The view's offset in its buffer, in bytes (a constrained call: no boxing, no allocation).</summary>
    private static long IndexInBytes<TView>(TView view) where TView : IContiguousArrayView => view.IndexInBytes;

    // Static lambdas, no captures: a warm launch allocates nothing.
    private static Action<KernelConfig, GemmArgs, GemmTiling, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>
        TiledLauncher<TAct>(KernelCache kernels, bool transA, bool transB) where TAct : struct, IActivation
        => (transA, transB) switch
        {
            (false, false) => kernels.Get(Kernel<TAct>, static x => x.LoadStreamKernel<GemmArgs, GemmTiling, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(Kernel<TAct>)),
            (false, true) => kernels.Get(KernelNT<TAct>, static x => x.LoadStreamKernel<GemmArgs, GemmTiling, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(KernelNT<TAct>)),
            (true, false) => kernels.Get(KernelTN<TAct>, static x => x.LoadStreamKernel<GemmArgs, GemmTiling, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(KernelTN<TAct>)),
            _ => kernels.Get(KernelTT<TAct>, static x => x.LoadStreamKernel<GemmArgs, GemmTiling, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(KernelTT<TAct>)),
        };
}
