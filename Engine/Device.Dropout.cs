using GpuNet.Kernels;

namespace GpuNet;

public sealed partial class Device
{
    /// <summary>
    /// Inverted dropout: y[i] = x[i] / (1 - p) where element i is kept, 0 where it is dropped (probability p). The mask
    /// is a pure function of (<paramref name="seed"/>, <paramref name="step"/>, i) (see <see cref="CounterRng"/>): the
    /// same on every device, and recomputed by <see cref="DropoutBackward"/> instead of being stored. Use a new step per
    /// training step for a new mask. p = 0 copies x; p = 1 gives zeros. x and y: same element count (any shapes); y may be x.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="p"/> is not in [0, 1].</exception>
    public void DropoutForward(Tensor x, Tensor y, float p, ulong seed, long step) => DropoutCore("DropoutForward", x, y, p, seed, step, nameof(x), nameof(y));

    /// <summary>
    /// Backward of <see cref="DropoutForward"/> with the same (p, seed, step): dx[i] = dy[i] / (1 - p) where the forward
    /// kept element i, 0 where it dropped it (overwrite). dy and dx: same element count; dx may be dy.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="p"/> is not in [0, 1].</exception>
    public void DropoutBackward(Tensor dy, Tensor dx, float p, ulong seed, long step) => DropoutCore("DropoutBackward", dy, dx, p, seed, step, nameof(dy), nameof(dx));

    private void DropoutCore(string op, Tensor x, Tensor y, float p, ulong seed, long step, string xName, string yName)
    {
        Check(op, xName, x); Check(op, yName, y); CheckSameLength(op, yName, y, x);
        if (!(p >= 0f && p <= 1f))
            throw new ArgumentOutOfRangeException(nameof(p), p, $"{op}: dropout probability p must be in [0, 1], got {p}");
        if (y.Length == 0) return;
        Launch().Dropout(p, seed, step, x, y);
    }
}
