using GpuNet.Kernels;

namespace GpuNet;

public sealed partial class Device
{
    /// <summary>
    /// The fused optimizer step (called by <see cref="Optim.Optimizer"/>, which validated everything): with clipping
    /// by norm, a sum-of-squares pass into norm[slot] first (kept on the device), then the step; one launch either way.
    /// States the algorithm does not use are null. The tables exist as tensors only on accelerators.
    /// </summary>
    internal void OptimizerStep(Tensor p, Tensor g, Tensor? s1, Tensor? s2, Tensor? s3, Tensor? segs, Tensor? table, Tensor? norm,
        int[] segStarts, int[] segGroups, float[] hostTable, in OptimizerParams a, ref double hostSumSquares)
        => Launch().OptimizerStep(p, g, s1, s2, s3, segs, table, norm, segStarts, segGroups, hostTable, a, ref hostSumSquares);
}
