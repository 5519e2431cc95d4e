using ILGPU;
using ILGPU.Runtime;

namespace GpuNet.Kernels;

/// <summary>
/// Sum of every element of x: (n), any n >= 0, into result: (1) (overwrite), computed carefully:
/// on ILGPU in two passes of float32 compensated sums (<see cref="CompensatedSum"/>: consumer GPUs are slow at
/// float64): pass 1 gives each group a grid-stride slice of x and tree-reduces its threads' (sum, error) pairs in shared
/// memory into partials: (2 * groups) = (sums..., errors...); pass 2 is one group that reduces the partials the same
/// way and writes sum + error. On the host, float64 vector lanes per block of <see cref="HostBlock"/> elements, blocks in
/// parallel, block sums added in float64.
/// Gradient contract: a building block (loss totals, norms); its backward is dx[i] = dresult (broadcast), no kernel.
/// </summary>
public static class GlobalSumOp
{
    /// <summary>Largest thread group used (a power of two; shared memory holds two floats per thread).</summary>
    public const int MaxGroupSize = 256;

    /// <summary>Most groups pass 1 launches, so the partials buffer holds at most 2 * MaxGroups floats.</summary>
    public const int MaxGroups = 1024;

    /// <summary>Elements per host block.</summary>
    public const int HostBlock = 1 << 16;

    // ---- float64 reference (the spec) ---------------------------------------------------------------------------

    /// <summary>Reference: the float64 sum of <paramref name="x"/>.</summary>
    public static double Reference(ReadOnlySpan<double> x)
    {
        double s = 0;
        foreach (double v in x) s += v;
        return s;
    }

    // ---- ILGPU kernels ------------------------------------------------------------------------------------------

    /// <summary>
    /// Pass 1. Thread t of group g sums x[i] for i = g*G + t + k*(groups*G), compensated; the group tree-reduces the
    /// pairs in shared memory; thread 0 writes partials[g] = sum, partials[groups + g] = error.
    /// x: (n), partials: (2 * groups). Group size G: a power of two &lt;= <see cref="MaxGroupSize"/>.
    /// </summary>
    [GpuKernel(ExplicitlyGrouped = true)]
    public static void PartialsKernel(ArrayView<float> x, ArrayView<float> partials, long n)
    {
        int tid = Group.IdxX, size = Group.DimX, g = Grid.IdxX, groups = Grid.DimX;
        long stride = (long)groups * size;
        var acc = default(CompensatedSum);
        for (long i = (long)g * size + tid; i < n; i += stride) acc = acc.Add(x[i]);
        acc = GroupReduce(acc, tid, size);
        if (tid == 0)
        {
            partials[g] = acc.S;
            partials[groups + g] = acc.C;
        }
    }

    /// <summary>
    /// Pass 2, one group: result[0] = the compensated sum of the (sum, error) pairs in partials: (2 * count).
    /// </summary>
    [GpuKernel(ExplicitlyGrouped = true)]
    public static void FinishKernel(ArrayView<float> partials, ArrayView<float> result, int count)
    {
        int tid = Group.IdxX, size = Group.DimX;
        var acc = default(CompensatedSum);
        for (int j = tid; j < count; j += size) acc = acc.Add(new CompensatedSum(partials[j], partials[count + j]));
        acc = GroupReduce(acc, tid, size);
        if (tid == 0) result[0] = acc.Value;
    }

    /// <summary>Tree reduction of one (sum, error) pair per thread in shared memory; thread 0 gets the group's total.</summary>
    private static CompensatedSum GroupReduce(CompensatedSum acc, int tid, int size)
    {
        var sums = SharedMemory.Allocate<float>(MaxGroupSize);
        var errs = SharedMemory.Allocate<float>(MaxGroupSize);
        sums[tid] = acc.S;
        errs[tid] = acc.C;
        Group.Barrier();
        for (int half = size / 2; half > 0; half /= 2)
        {
            if (tid < half)
            {
                var r = new CompensatedSum(sums[tid], errs[tid]).Add(new CompensatedSum(sums[tid + half], errs[tid + half]));
                sums[tid] = r.S;
                errs[tid] = r.C;
            }
            Group.Barrier();
        }
        return new CompensatedSum(sums[0], errs[0]);
    }

    // ---- launchers ----------------------------------------------------------------------------------------------

    /// <summary>
    /// Threads per group on <paramref name="acc"/>: the largest power of two &lt;= min(256, its limit); 32 on ILGPU's CPU
    /// accelerator, which simulates each thread with an OS thread and each barrier with OS waits (tests run there).
    /// </summary>
    public static int GroupSize(Accelerator acc) => ReductionLaunch.MaxGroupSize(acc, MaxGroupSize);

    /// <summary>
    /// Groups of pass 1 for n elements: enough for about 8 elements per thread, at most 8 per multiprocessor and
    /// <see cref="MaxGroups"/>, at least 1. The caller provides partials of 2 * this many floats.
    /// </summary>
    public static int PartialCount(Accelerator acc, long n)
    {
        long perGroup = 8L * GroupSize(acc);
        long wanted = (n + perGroup - 1) / perGroup;
        long cap = Math.Min(MaxGroups, 8L * Math.Max(1, acc.NumMultiprocessors));
        return (int)Math.Clamp(wanted, 1, cap);
    }

    /// <summary>
    /// Launches both passes: result[0] = sum of x. partials: (2 * <see cref="PartialCount"/>(n)) scratch floats.
    /// </summary>
    public static void Launch(KernelCache k, ArrayView<float> x, ArrayView<float> partials, ArrayView<float> result)
    {
        var acc = k.Accelerator;
        int size = GroupSize(acc), groups = PartialCount(acc, x.Length);
        if (partials.Length < 2L * groups)
            throw new ArgumentException($"GlobalSum: partials must hold {2 * groups} floats, has {partials.Length}", nameof(partials));
        k.Get(PartialsKernel, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, long>(PartialsKernel))
            (new KernelConfig(groups, size), x, partials, x.Length);
        k.CountLaunch();
        k.Get(FinishKernel, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int>(FinishKernel))
            (new KernelConfig(1, size), partials, result, groups);
        k.CountLaunch();
    }

    // ---- SIMD host implementation -------------------------------------------------------------------------------

    /// <summary>Host sum of x in float64 (blocks in parallel, each block in float64 vector lanes).</summary>
    public static double Host(ArraySegment<float> x)
    {
        int blocks = (x.Count + HostBlock - 1) / HostBlock;
        if (blocks <= 1 || Environment.ProcessorCount == 1) return ReductionOp.SumWide(x);
        using var frame = HostPool.Enter();
        var partial = HostPool.DoubleSegment(blocks);
        HostSimd.For(blocks, true, (x, partial), static (t, b) =>
        {
            int s = b * HostBlock;
            t.partial[b] = ReductionOp.SumWide(t.x.AsSpan(s, Math.Min(HostBlock, t.x.Count - s)));
        });
        double total = 0;
        foreach (double p in partial) total += p;
        return total;
    }

    // ---- cost ---------------------------------------------------------------------------------------------------

    /// <summary>n additions (the compensation's extra arithmetic is not counted); reads x, writes one float.</summary>
    public static OpCost Cost(long n) => new(n, 4.0 * n + 4);
}
