namespace GpuNet.Init;

/// <summary>
/// PyTorch's default initialisation of each layer's parameters (its <c>reset_parameters</c> methods):
/// <list type="bullet">
/// <item><c>nn.Linear</c> and <c>nn.Conv1d/2d/3d</c> weight: <c>kaiming_uniform_(w, a=sqrt(5))</c>, i.e.
/// gain sqrt(2/(1+5)) = sqrt(1/3), std = gain/sqrt(fan_in), bound sqrt(3) std = 1/sqrt(fan_in):
/// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = in (Linear) or in/groups*kh*kw (conv).</item>
/// <item>their bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with the weight's fan_in (zeros if fan_in is 0).</item>
/// <item><c>nn.BatchNorm*</c> and <c>nn.LayerNorm</c>: weight 1, bias 0; running mean 0, running variance 1.</item>
/// <item><c>nn.Embedding</c> weight: N(0, 1).</item>
/// </list>
/// Initialisers are immutable and stateless, so the shared instances here may be used for any number of parameters.
/// </summary>
public static class Defaults
{
    /// <summary><c>nn.Linear</c> weight (out, in): <c>kaiming_uniform(a=sqrt(5))</c> = U(-1/sqrt(in), 1/sqrt(in)).</summary>
    public static Kaiming LinearWeight { get; } = Kaiming.Uniform(a: Math.Sqrt(5.0));

    /// <summary><c>nn.Conv*</c> weight (out, in/groups, k...): the same scheme as <see cref="LinearWeight"/>,
    /// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = in/groups * prod(k).</summary>
    public static Kaiming ConvWeight { get; } = Kaiming.Uniform(a: Math.Sqrt(5.0));

    /// <summary><c>nn.Linear</c> bias: U(-1/sqrt(fanIn), 1/sqrt(fanIn)), or zeros when <paramref name="fanIn"/> is 0 (PyTorch's bound 0).</summary>
    /// <param name="fanIn">The weight's fan in (<see cref="Fans.Compute"/>), &gt;= 0.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="fanIn"/> &lt; 0.</exception>
    public static IInitializer LinearBias(long fanIn)
    {
        if (fanIn < 0)
            throw new ArgumentOutOfRangeException(nameof(fanIn), fanIn, $"bias: fanIn must be in [0, {long.MaxValue}], got {fanIn}");
        if (fanIn == 0) return Zeros;
        double bound = 1.0 / Math.Sqrt(fanIn);
        return new Uniform(-bound, bound);
    }

    /// <summary><c>nn.Conv*</c> bias: the same as <see cref="LinearBias"/> with the conv weight's fan in.</summary>
    /// <param name="fanIn">in/groups * prod(kernel), &gt;= 0.</param>
    public static IInitializer ConvBias(long fanIn) => LinearBias(fanIn);

    /// <summary>The default bias of a Linear or conv layer whose weight has shape <paramref name="weightShape"/>.</summary>
    /// <param name="weightShape">The weight's shape, at least 2 dimensions.</param>
    public static IInitializer BiasFor(ReadOnlySpan<int> weightShape) => LinearBias(Fans.Compute(weightShape, "bias").FanIn);

    /// <summary>All zeros: batch/layer norm bias, batch norm running mean.</summary>
    public static Zeros Zeros { get; } = new();

    /// <summary>All ones: batch/layer norm weight, batch norm running variance.</summary>
    public static Constant Ones { get; } = new(1.0);

    /// <summary><c>nn.BatchNorm*</c> weight (gamma): 1.</summary>
    public static Constant BatchNormWeight => Ones;
    /// <summary><c>nn.BatchNorm*</c> bias (beta): 0.</summary>
    public static Zeros BatchNormBias => Zeros;
    /// <summary><c>nn.BatchNorm*</c> running mean: 0.</summary>
    public static Zeros BatchNormRunningMean => Zeros;
    /// <summary><c>nn.BatchNorm*</c> running variance: 1.</summary>
    public static Constant BatchNormRunningVar => Ones;
    /// <summary><c>nn.LayerNorm</c> weight: 1.</summary>
    public static Constant LayerNormWeight => Ones;
    /// <summary><c>nn.LayerNorm</c> bias: 0.</summary>
    public static Zeros LayerNormBias => Zeros;
    /// <summary><c>nn.Embedding</c> weight: N(0, 1).</summary>
    public static Normal EmbeddingWeight { get; } = new(0.0, 1.0);
}
