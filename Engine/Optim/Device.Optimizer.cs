using GpuNet.Kernels;

namespace GpuNet;

public sealed partial class Device
{
    /// <summary>
    /// The fused optimizer step (called by <see cref="Optim.Optimizer"/>, which validated everything): with clipping
    /// by norm, a sum-of-squares pass into norm[slot] first (kept on the device), then one step launch.
    /// States the algorithm does not use are null. The tables exist as tensors only on accelerators.
    /// </summary>
    internal void OptimizerStep(Tensor p, Tensor g, Tensor? s1, Tensor? s2, Tensor? s3, Tensor? segs, Tensor? table, Tensor? norm,
        int[] segStarts, int[] segGroups, float[] hostTable, in OptimizerParams a, ref double hostSumSquares)
    {
        bool clip = (a.Flags & OptimizerParams.FlagClipNorm) != 0;
        if (IsHost)
        {
            if (clip) hostSumSquares = OptimizerOp.HostSumSquares(g.Host, segStarts, segGroups, hostTable, a.Segments);
            OptimizerOp.Host(p.Host, g.Host, s1?.Host ?? ArraySegment<float>.Empty, s2?.Host ?? ArraySegment<float>.Empty, s3?.Host ?? ArraySegment<float>.Empty,
                segStarts, segGroups, hostTable, a, (float)hostSumSquares);
        }
        else
        {
            var segView = segs!.View.Cast<int>();
            if (clip) OptimizerOp.LaunchSumSquares(Kernels, g.View, segView, table!.View, norm!.View, a.Segments, a.Slot);
            var pv = p.View;
            OptimizerOp.Launch(Kernels, pv, g.View, s1?.View ?? pv, s2?.View ?? pv, s3?.View ?? pv, segView, table!.View, norm!.View, a);
        }
        Counted(clip ? 2 : 1);
    }
}
