namespace GpuNet.Optim;

/// <summary>
/// A contiguous range of the flat parameter buffer (one layer's weight or bias, usually) and the parameter group whose
/// settings apply to it. Elements covered by no segment are never updated.
/// </summary>
/// <param name="Offset">First element in the flat buffer.</param>
/// <param name="Length">Number of elements.</param>
/// <param name="Group">Index into the optimizer's group list.</param>
public readonly record struct ParamSegment(long Offset, int Length, int Group);

/// <summary>How the L1 penalty enters the update.</summary>
public enum L1Mode
{
    /// <summary>Default: the subgradient l1 * sign(p) is added to the gradient (sign(0) = 0), like L2 is.</summary>
    Subgradient,
    /// <summary>
    /// Proximal soft-threshold after the update: p = sign(p) * max(|p| - lr * l1, 0), which gives exact zeros. The
    /// threshold uses the plain learning rate (times the group's scale), not an adaptive per-element rate.
    /// </summary>
    Proximal,
}

/// <summary>
/// Regularisation applied inside the fused update. <see cref="WeightDecay"/> is coupled L2 (PyTorch's weight_decay for
/// SGD/AdaGrad/RMSprop/Adam: g += wd * p); <see cref="DecoupledWeightDecay"/> is AdamW's p *= 1 - lr * wd before the
/// update (any optimizer may use it); <see cref="L1"/> adds l1 * sign(p) (or a proximal step, see <see cref="L1Mode"/>).
/// The coupled terms use the parameter value before the step.
/// </summary>
public sealed record Regularization
{
    private readonly double _weightDecay, _l1, _decoupled;

    /// <summary>No regularisation (the usual setting for biases and normalisation parameters).</summary>
    public static Regularization None { get; } = new();

    /// <summary>Coupled L2 coefficient (&gt;= 0).</summary>
    public double WeightDecay { get => _weightDecay; init => _weightDecay = Validate.AtLeastZero(nameof(WeightDecay), value); }
    /// <summary>L1 coefficient (&gt;= 0).</summary>
    public double L1 { get => _l1; init => _l1 = Validate.AtLeastZero(nameof(L1), value); }
    /// <summary>Decoupled weight decay (&gt;= 0).</summary>
    public double DecoupledWeightDecay { get => _decoupled; init => _decoupled = Validate.AtLeastZero(nameof(DecoupledWeightDecay), value); }

    /// <summary>
    /// Elastic net as in scikit-learn: penalty alpha * (l1Ratio * |p| + (1 - l1Ratio) / 2 * p^2), i.e.
    /// L1 = alpha * l1Ratio and coupled L2 = alpha * (1 - l1Ratio).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">alpha &lt; 0 or l1Ratio outside [0, 1].</exception>
    public static Regularization ElasticNet(double alpha, double l1Ratio)
    {
        Validate.AtLeastZero(nameof(alpha), alpha);
        Validate.Range(nameof(l1Ratio), l1Ratio, 0, true, 1, true);
        return new Regularization { L1 = alpha * l1Ratio, WeightDecay = alpha * (1 - l1Ratio) };
    }
}

/// <summary>
/// Settings shared by the segments of one parameter group. The usual default is two groups: weights with the
/// optimizer's regularisation (<see cref="Default"/>) and biases plus batch-norm scales and shifts with none
/// (<see cref="NoDecay"/>).
/// </summary>
public sealed record ParamGroup
{
    private readonly double _lrScale = 1;

    /// <summary>Group with the optimizer's regularisation and learning rate.</summary>
    public static ParamGroup Default { get; } = new();
    /// <summary>Group with no weight decay and no L1: biases and normalisation parameters.</summary>
    public static ParamGroup NoDecay { get; } = new() { Regularization = Regularization.None };

    /// <summary>Multiplies the optimizer's learning rate for this group (&gt; 0).</summary>
    public double LrScale { get => _lrScale; init => _lrScale = Validate.Range(nameof(LrScale), value, 0, false, double.PositiveInfinity, false); }
    /// <summary>Regularisation of this group; null uses the optimizer's.</summary>
    public Regularization? Regularization { get; init; }
    /// <summary>
    /// Frozen (or without gradient this step): parameters and optimizer state stay untouched and the gradient is
    /// left out of the clipping norm. The step count is the optimizer's, so a group thawed later resumes with the
    /// optimizer's bias corrections (PyTorch keeps a step count per parameter instead).
    /// </summary>
    public bool Frozen { get; init; }
}

/// <summary>Options shared by every optimizer: parameter layout, regularisation and gradient clipping.</summary>
public sealed record OptimizerOptions
{
    private readonly double _maxGradNorm, _clipValue;

    /// <summary>Segments of the flat buffer; null: one segment over the whole buffer in group 0.</summary>
    public IReadOnlyList<ParamSegment>? Segments { get; init; }
    /// <summary>Parameter groups; null: one <see cref="ParamGroup.Default"/> group.</summary>
    public IReadOnlyList<ParamGroup>? Groups { get; init; }
    /// <summary>Regularisation of groups that do not set their own (added to the optimizer's weight_decay argument).</summary>
    public Regularization Regularization { get; init; } = Regularization.None;
    /// <summary>How L1 enters (default <see cref="L1Mode.Subgradient"/>).</summary>
    public L1Mode L1Mode { get; init; }
    /// <summary>
    /// Clip the gradient to this global L2 norm (0 = off), as <c>clip_grad_norm_</c>: scale = min(1, max / (norm + 1e-6)).
    /// A clipped step is two launches: a sum-of-squares reduction that stays on the device, then the step kernel, which
    /// reads it (no host synchronisation).
    /// </summary>
    public double MaxGradNorm { get => _maxGradNorm; init => _maxGradNorm = Validate.PositiveOrOff(nameof(MaxGradNorm), value); }
    /// <summary>Clip each gradient element to [-v, v] inside the step (0 = off), as <c>clip_grad_value_</c>.</summary>
    public double ClipValue { get => _clipValue; init => _clipValue = Validate.PositiveOrOff(nameof(ClipValue), value); }
}

/// <summary>Hyperparameter checks: the exception names the parameter, its value and the valid range.</summary>
internal static class Validate
{
    public static double Range(string name, double value, double lo, bool loInclusive, double hi, bool hiInclusive)
    {
        bool ok = (loInclusive ? value >= lo : value > lo) && (hiInclusive ? value <= hi : value < hi) && !double.IsNaN(value);
        if (!ok)
            throw new ArgumentOutOfRangeException(name, value,
                $"{name} = {value} is outside the valid range {(loInclusive ? "[" : "(")}{lo}, {(double.IsPositiveInfinity(hi) ? "inf" : hi.ToString())}{(hiInclusive ? "]" : ")")}");
        return value;
    }

    public static double AtLeastZero(string name, double value) => Range(name, value, 0, true, double.PositiveInfinity, false);

    public static double Positive(string name, double value) => Range(name, value, 0, false, double.PositiveInfinity, false);

    public static double PositiveOrOff(string name, double value)
    {
        if (value == 0 || (value > 0 && double.IsFinite(value))) return value;
        throw new ArgumentOutOfRangeException(name, value, $"{name} = {value} is outside the valid range (0, inf), or 0 for off");
    }
}
