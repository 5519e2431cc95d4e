using GpuNet.Kernels;

namespace GpuNet;

public sealed partial class Device
{
    /// <summary>
    /// y = f(x) elementwise for activation <paramref name="act"/>; x and y have the same element count and y may be x.
    /// <paramref name="alpha"/> is the LeakyReLU slope or the ELU scale (default <see cref="ActivationMath.DefaultAlpha"/>).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="act"/> is not an <see cref="Activation"/>, or alpha is not finite.</exception>
    public void ActivationForward(Activation act, Tensor x, Tensor y, float? alpha = null)
    {
        const string op = "ActivationForward";
        float a = ActivationAlpha(op, act, alpha);
        Check(op, nameof(x), x); Check(op, nameof(y), y);
        CheckSameLength(op, nameof(y), y, x);
        if (y.Length == 0) return;
        Launch().ActivationForward(act, a, x, y);
    }

    /// <summary>
    /// dx = dy * f'(x) elementwise (overwrites dx), given the forward's input x and output y = f(x);
    /// all four have the same element count and dx may be dy.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="act"/> is not an <see cref="Activation"/>, or alpha is not finite.</exception>
    public void ActivationBackward(Activation act, Tensor x, Tensor y, Tensor dy, Tensor dx, float? alpha = null)
    {
        const string op = "ActivationBackward";
        float a = ActivationAlpha(op, act, alpha);
        Check(op, nameof(x), x); Check(op, nameof(y), y); Check(op, nameof(dy), dy); Check(op, nameof(dx), dx);
        CheckSameLength(op, nameof(y), y, x); CheckSameLength(op, nameof(dy), dy, x); CheckSameLength(op, nameof(dx), dx, x);
        if (dx.Length == 0) return;
        Launch().ActivationBackward(act, a, x, y, dy, dx);
    }

    /// <summary>Row-wise softmax over the last dimension: y = exp(x - max) / sum(exp(x - max)); y has x's shape and may be x.</summary>
    public void Softmax(Tensor x, Tensor y) => SoftmaxForward("Softmax", false, x, y);

    /// <summary>Row-wise log-softmax over the last dimension: y = x - max - log(sum(exp(x - max))); y has x's shape and may be x.</summary>
    public void LogSoftmax(Tensor x, Tensor y) => SoftmaxForward("LogSoftmax", true, x, y);

    /// <summary>Softmax backward: dx = y * (dy - sum_j(dy_j * y_j)) per row (overwrites dx); y is the softmax output, dx may be dy.</summary>
    public void SoftmaxBackward(Tensor y, Tensor dy, Tensor dx) => SoftmaxBackwardCore("SoftmaxBackward", false, y, dy, dx);

    /// <summary>Log-softmax backward: dx = dy - exp(y) * sum_j(dy_j) per row (overwrites dx); y is the log-softmax output, dx may be dy.</summary>
    public void LogSoftmaxBackward(Tensor y, Tensor dy, Tensor dx) => SoftmaxBackwardCore("LogSoftmaxBackward", true, y, dy, dx);

    private static float ActivationAlpha(string op, Activation act, float? alpha)
    {
        if (!Enum.IsDefined(act))
            throw new ArgumentOutOfRangeException(nameof(act), act, $"{op}: unknown activation {(int)act}; expected one of {string.Join(", ", Enum.GetNames<Activation>())}");
        float a = alpha ?? ActivationMath.DefaultAlpha(act);
        if (!float.IsFinite(a))
            throw new ArgumentOutOfRangeException(nameof(alpha), a, $"{op}: alpha of {act} must be finite");
        return a;
    }

    private void SoftmaxForward(string op, bool log, Tensor x, Tensor y)
    {
        Check(op, nameof(x), x); Check(op, nameof(y), y);
        var (rows, cols) = AsMatrix(op, nameof(x), x);
        CheckShape(op, nameof(y), y, x.Shape);
        if (y.Length == 0) return;
        Launch().Softmax(log, rows, cols, x, y);
    }

    private void SoftmaxBackwardCore(string op, bool log, Tensor y, Tensor dy, Tensor dx)
    {
        Check(op, nameof(y), y); Check(op, nameof(dy), dy); Check(op, nameof(dx), dx);
        var (rows, cols) = AsMatrix(op, nameof(y), y);
        CheckShape(op, nameof(dy), dy, y.Shape); CheckShape(op, nameof(dx), dx, y.Shape);
        if (dx.Length == 0) return;
        Launch().SoftmaxBackward(log, rows, cols, y, dy, dx);
    }
}
