using System.Numerics;
using ILGPU.Runtime;

namespace GpuNet.Kernels;

/// <summary>
/// Launch shapes of the shared-memory tree reductions (batch norm, depthwise filter gradient, convolution bias gradient,
/// softmax, global sum, optimizer gradient norm): power-of-two groups, small on ILGPU's CPU accelerator, whose barriers
/// are OS-thread rendezvous and which allocates every group instance's shared memory anew.
/// </summary>
public static class ReductionLaunch
{
    /// <summary>Default group size cap on ILGPU's CPU accelerator.</summary>
    public const int CpuAcceleratorMaxGroupSize = 32;

    /// <summary>
    /// The largest power of two no larger than <paramref name="maxGroupSize"/> (<paramref name="cpuMaxGroupSize"/> on
    /// the CPU accelerator) and the accelerator's largest group.
    /// </summary>
    public static int MaxGroupSize(Accelerator acc, int maxGroupSize, int cpuMaxGroupSize = CpuAcceleratorMaxGroupSize)
    {
        int limit = Math.Min(acc.AcceleratorType == AcceleratorType.CPU ? cpuMaxGroupSize : maxGroupSize, acc.MaxNumThreadsPerGroup);
        return (int)BitOperations.RoundUpToPowerOf2((uint)limit + 1) >> 1;
    }

    /// <summary>
    /// Threads of a group that reduces <paramref name="terms"/> terms: the power of two covering them (at least one warp),
    /// capped by <see cref="MaxGroupSize"/>.
    /// </summary>
    public static int GroupSize(Accelerator acc, long terms, int maxGroupSize, int cpuMaxGroupSize = CpuAcceleratorMaxGroupSize)
    {
        int cap = MaxGroupSize(acc, maxGroupSize, cpuMaxGroupSize);
        long want = (long)BitOperations.RoundUpToPowerOf2((ulong)Math.Max(Math.Max(terms, acc.WarpSize), 1));
        return (int)Math.Min(cap, want);
    }

    /// <summary>
    /// Groups of a kernel whose groups loop over work items g, g + groups, ...: one per item on a GPU; on the CPU
    /// accelerator one per simulated multiprocessor, which runs its groups one after another anyway.
    /// </summary>
    public static int GridSize(Accelerator acc, int items)
        => acc.AcceleratorType == AcceleratorType.CPU ? Math.Max(1, Math.Min(items, acc.NumMultiprocessors)) : Math.Max(1, items);
}
