using GpuNet.Kernels;

namespace GpuNet;

public sealed partial class Device
{
    // x: (N, C, d2, d3, ...) is seen as (N, C, S) with S = d2 * d3 * ... (1 for a matrix): BatchNorm1d on (N, C),
    // BatchNorm2d on (N, C, H, W). Statistics are per channel over its M = N * S elements.

    /// <summary>
    /// Batch normalisation forward. x: (N, C, ...) with rank &gt;= 2, channels on dimension 1; y: the shape of x (y may be x);
    /// gamma, beta: (C). Training (<paramref name="training"/> true): normalises with the batch mean and biased variance,
    /// writes them as <paramref name="saveMean"/> and <paramref name="saveInvStd"/> = 1/sqrt(var + eps) (both (C), required)
    /// for <see cref="BatchNormBackward"/>, and, when given, updates the running statistics like PyTorch:
    /// running = (1 - momentum) * running + momentum * batch, with the unbiased variance var * M/(M - 1) for running_var
    /// (pass null for both to not track them). Eval: normalises with <paramref name="runningMean"/> and
    /// <paramref name="runningVar"/> (required, not changed); saveMean/saveInvStd are optional and, when given, receive
    /// the running mean and 1/sqrt(running_var + eps) for an eval-mode backward.
    /// <paramref name="fuseRelu"/>: y = max(0, bn(x)) in the same pass.
    /// </summary>
    /// <exception cref="ShapeMismatchException">x has rank &lt; 2, or another tensor's shape does not fit x.</exception>
    /// <exception cref="ArgumentException">Training with one value per channel (N * S = 1, as PyTorch), or a required tensor is missing.</exception>
    /// <exception cref="ArgumentOutOfRangeException">momentum not in [0, 1], or eps not finite and &gt; 0.</exception>
    public void BatchNormForward(Tensor x, Tensor gamma, Tensor beta, Tensor? runningMean, Tensor? runningVar,
        Tensor? saveMean, Tensor? saveInvStd, Tensor y, bool training, float momentum = 0.1f, float eps = 1e-5f, bool fuseRelu = false)
    {
        const string op = "BatchNormForward";
        Check(op, nameof(x), x); Check(op, nameof(y), y);
        var (n, c, s) = BatchNormShape(op, x);
        CheckShape(op, nameof(y), y, x.Shape);
        CheckChannels(op, nameof(gamma), gamma, c); CheckChannels(op, nameof(beta), beta, c);
        bool tracked = CheckPair(op, nameof(runningMean), runningMean, nameof(runningVar), runningVar, c);
        bool saved = CheckPair(op, nameof(saveMean), saveMean, nameof(saveInvStd), saveInvStd, c);
        if (training && !saved)
            throw new ArgumentException($"{op}: training needs saveMean and saveInvStd ((C) = ({c}) each) for the backward; got null", nameof(saveMean));
        if (!training && !tracked)
            throw new ArgumentException($"{op}: eval mode normalises with the running statistics: runningMean and runningVar ((C) = ({c}) each) are required; got null", nameof(runningMean));
        if (!(momentum >= 0f && momentum <= 1f))
            throw new ArgumentOutOfRangeException(nameof(momentum), momentum, $"{op}: momentum must be in [0, 1], got {momentum}");
        if (!(eps > 0f && float.IsFinite(eps)))
            throw new ArgumentOutOfRangeException(nameof(eps), eps, $"{op}: eps must be finite and > 0, got {eps}");
        if (training && (long)n * s <= 1)
            throw new ArgumentException($"{op}: Expected more than 1 value per channel when training, got input shape {ShapeUtil.Format(x.Shape)} ({(long)n * s} per channel)", nameof(x));
        if (x.Length == 0) return;

        var a = new BatchNormArgs { N = n, C = c, S = s, Eps = eps, Momentum = momentum, Relu = fuseRelu ? 1 : 0, Training = training ? 1 : 0 };
        Launch().BatchNormForward(a, x, gamma, beta, runningMean, runningVar, saveMean, saveInvStd, y);
    }

    /// <summary>
    /// Batch normalisation backward. x, dy, dx: (N, C, ...) like the forward's x (dx may be dy); gamma, saveMean,
    /// saveInvStd, dGamma, dBeta: (C), where saveMean/saveInvStd are what <see cref="BatchNormForward"/> wrote.
    /// Accumulates dGamma += sum(dy * xhat) and dBeta += sum(dy) (parameter gradients, +=) and overwrites
    /// dx = gamma * invstd / M * (M * dy - sum(dy) - xhat * sum(dy * xhat)) with xhat = (x - mean) * invstd, M = N * S.
    /// <paramref name="fuseRelu"/> (as in the forward): dy is first masked by y &gt; 0, so <paramref name="y"/>, the
    /// forward output, is required. <paramref name="training"/> false gives the eval-mode backward through fixed
    /// running statistics: dx = gamma * invstd * dy.
    /// </summary>
    /// <exception cref="ShapeMismatchException">A tensor's shape does not fit x.</exception>
    /// <exception cref="ArgumentNullException">fuseRelu without y.</exception>
    public void BatchNormBackward(Tensor x, Tensor dy, Tensor gamma, Tensor saveMean, Tensor saveInvStd, Tensor dx,
        Tensor dGamma, Tensor dBeta, bool fuseRelu = false, Tensor? y = null, bool training = true)
    {
        const string op = "BatchNormBackward";
        Check(op, nameof(x), x); Check(op, nameof(dy), dy); Check(op, nameof(dx), dx);
        var (n, c, s) = BatchNormShape(op, x);
        var shape = x.Shape;
        CheckShape(op, nameof(dy), dy, shape); CheckShape(op, nameof(dx), dx, shape);
        CheckChannels(op, nameof(gamma), gamma, c); CheckChannels(op, nameof(saveMean), saveMean, c);
        CheckChannels(op, nameof(saveInvStd), saveInvStd, c); CheckChannels(op, nameof(dGamma), dGamma, c);
        CheckChannels(op, nameof(dBeta), dBeta, c);
        if (fuseRelu)
        {
            if (y is null) throw new ArgumentNullException(nameof(y), $"{op}: fuseRelu masks dy by y > 0, so the forward output y {ShapeUtil.Format(shape)} is required");
            Check(op, nameof(y), y);
            CheckShape(op, nameof(y), y, shape);
        }
        if (x.Length == 0) return;

        var a = new BatchNormArgs { N = n, C = c, S = s, Relu = fuseRelu ? 1 : 0, Training = training ? 1 : 0 };
        Launch().BatchNormBackward(a, x, dy, fuseRelu ? y : null, gamma, saveMean, saveInvStd, dx, dGamma, dBeta);
    }

    private static (int N, int C, int S) BatchNormShape(string op, Tensor x)
    {
        if (x.Rank < 2)
            throw new ShapeMismatchException(op, "(N, C, ...)", ShapeUtil.Format(x.Shape), "argument 'x' needs a batch and a channel dimension (rank >= 2)");
        long s = ShapeUtil.Count(x.Shape[2..]);
        return (x.Dim(0), x.Dim(1), (int)s);   // s <= x.Length <= int.MaxValue when N, C > 0 (Check bounds the length)
    }

    private void CheckChannels(string op, string argument, Tensor t, int c)
    {
        Check(op, argument, t);
        CheckShape(op, argument, t, c);
    }

    // Both tensors or neither; returns true when both are given (then each is checked to be (C)).
    private bool CheckPair(string op, string first, Tensor? a, string second, Tensor? b, int c)
    {
        if ((a is null) != (b is null))
            throw new ArgumentException($"{op}: '{first}' and '{second}' go together: give both or neither; got {(a is null ? first : second)} = null", a is null ? first : second);
        if (a is null) return false;
        CheckChannels(op, first, a, c); CheckChannels(op, second, b!, c);
        return true;
    }
}
