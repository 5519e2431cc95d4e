using ILGPU;
using ILGPU.Runtime;

namespace GpuNet.Kernels;

/// <summary>How a loss turns per-element (or per-row) losses into one number. The numeric value is stable.</summary>
public enum LossReduction
{
    /// <summary>The mean: the sum divided by the number of elements (or rows, for the class-label losses).</summary>
    Mean = 0,
    /// <summary>The plain sum.</summary>
    Sum = 1,
}

/// <summary>
/// What every loss shares: the deterministic two-step reduction and the host chunking policy.
/// Device path: the loss kernel writes one partial sum per thread (thread t of T handles elements t, t+T, t+2T, ...,
/// or one row) into a workspace; <see cref="SumPartialsKernel"/>, one group, adds the partials in a fixed order
/// (strided per thread, then a shared-memory tree). T and the group size depend only on the shape, so the same inputs
/// give a bit-identical loss on every run; no float atomics. The loss stays on the device in a 1-element tensor.
/// Host path: fixed-size chunks (independent of the core count) give float partials that are added in chunk order
/// in float64.
/// </summary>
public static class LossCommon
{
    /// <summary>Most partial sums an elementwise loss writes (threads of its first kernel).</summary>
    public const int MaxPartials = 32768;

    /// <summary>Largest group of <see cref="SumPartialsKernel"/> (its shared-memory size).</summary>
    public const int MaxReduceGroup = 256;

    /// <summary>Elements per host chunk of an elementwise loss.</summary>
    public const int HostChunk = 4096;

    /// <summary>Partial sums (threads) an elementwise loss over <paramref name="n"/> elements uses on a device.</summary>
    public static int PartialCount(int n) => Math.Min(n, MaxPartials);

    /// <summary>The divisor of <paramref name="reduction"/> over <paramref name="count"/> terms.</summary>
    public static float Divisor(LossReduction reduction, int count) => reduction == LossReduction.Mean ? count : 1f;

    // ---- ILGPU kernel -------------------------------------------------------------------------------------------

    /// <summary>
    /// One group of power-of-two size: loss[0] = (sum of partial[0..count)) / divisor. Thread t adds partial[t],
    /// partial[t + G], ... in order; then a shared-memory tree combines the G sums. The order depends only on count and G.
    /// </summary>
    [GpuKernel(ExplicitlyGrouped = true)]
    public static void SumPartialsKernel(ArrayView<float> partial, ArrayView<float> loss, int count, float divisor)
    {
        var shared = SharedMemory.Allocate<float>(MaxReduceGroup);
        int t = Group.IdxX;
        int g = Group.DimX;
        float acc = 0f;
        for (int i = t; i < count; i += g) acc += partial[i];
        shared[t] = acc;
        Group.Barrier();
        for (int s = g / 2; s > 0; s >>= 1)
        {
            if (t < s) shared[t] += shared[t + s];
            Group.Barrier();
        }
        if (t == 0) loss[0] = shared[0] / divisor;
    }

    // ---- launcher -----------------------------------------------------------------------------------------------

    /// <summary>
    /// The group size for <paramref name="count"/> partials: the next power of two, at least 32, at most
    /// <see cref="MaxReduceGroup"/> and the accelerator's limit (small groups keep ILGPU's CPU simulator fast).
    /// </summary>
    public static int ReduceGroupSize(int count, int maxThreadsPerGroup)
    {
        int limit = Math.Min(MaxReduceGroup, maxThreadsPerGroup);
        int g = 32;
        while (g < count && g < limit) g <<= 1;
        while (g > limit) g >>= 1;
        return g;
    }

    /// <summary>Launches <see cref="SumPartialsKernel"/> over <paramref name="count"/> partials into <paramref name="loss"/>[0].</summary>
    public static void LaunchSumPartials(KernelCache k, ArrayView<float> partial, ArrayView<float> loss, int count, float divisor)
    {
        int group = ReduceGroupSize(count, k.Accelerator.MaxNumThreadsPerGroup);
        k.Get(SumPartialsKernel, acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, float>(SumPartialsKernel))
            (new KernelConfig(1, group), partial, loss, count, divisor);
        k.CountLaunch();
    }

    // ---- host ---------------------------------------------------------------------------------------------------

    /// <summary>
    /// Runs <paramref name="chunkSum"/>(start, count) over <paramref name="length"/> units in chunks of
    /// <paramref name="chunk"/> (in parallel when <paramref name="parallel"/> and there are several) and adds the chunk
    /// results in chunk order in float64, so the result does not depend on the core count or the scheduling.
    /// </summary>
    public static double HostSum<TState>(int length, int chunk, bool parallel, TState state, Func<TState, int, int, double> chunkSum)
    {
        int chunks = (length + chunk - 1) / chunk;
        if (chunks <= 1) return length == 0 ? 0 : chunkSum(state, 0, length);
        using var frame = HostPool.Enter();
        var partial = HostPool.DoubleSegment(chunks);
        HostSimd.For(chunks, parallel, (state, chunkSum, partial, chunk, length), static (t, c) =>
            t.partial[c] = t.chunkSum(t.state, c * t.chunk, Math.Min(t.chunk, t.length - c * t.chunk)));
        double total = 0;
        foreach (double p in partial) total += p;
        return total;
    }
}
