namespace GpuNet.Init;

/// <summary>
/// Base of the schemes whose scale depends on the weight's fans (<see cref="Fans.Compute"/>): they need at least 2
/// dimensions, and a 1-D tensor (a bias) is an <see cref="ArgumentException"/>, as in PyTorch.
/// </summary>
public abstract class FanScaledInitializer : Initializer
{
    /// <summary>The standard deviation of the values for a weight of shape <paramref name="shape"/>.</summary>
    /// <param name="shape">The weight's shape, at least 2 dimensions.</param>
    /// <exception cref="ArgumentException">Fewer than 2 dimensions.</exception>
    public abstract double Std(ReadOnlySpan<int> shape);

    /// <inheritdoc/>
    protected override void CheckShape(ReadOnlySpan<int> shape) => Fans.Compute(shape, Name);

    /// <summary>True for the uniform variants: U(-sqrt(3) std, sqrt(3) std); else N(0, std^2).</summary>
    protected abstract bool IsUniform { get; }

    /// <summary>The half-width sqrt(3) * <see cref="Std"/> of the uniform variants (a uniform of that half-width has that std).</summary>
    /// <param name="shape">The weight's shape, at least 2 dimensions.</param>
    public double Bound(ReadOnlySpan<int> shape) => Math.Sqrt(3.0) * Std(shape);

    /// <inheritdoc/>
    protected override void GenerateCore(ReadOnlySpan<int> shape, ref SplitMix64 rng, Span<float> destination)
    {
        double std = Std(shape);
        if (IsUniform)
        {
            double bound = Math.Sqrt(3.0) * std;
            Sampling.Uniform(ref rng, -bound, bound, destination);
        }
        else Sampling.Normal(ref rng, 0.0, std, destination);
    }
}

/// <summary>
/// Xavier/Glorot (Glorot and Bengio 2010; PyTorch's <c>xavier_uniform_</c>/<c>xavier_normal_</c>):
/// std = gain * sqrt(2 / (fan_in + fan_out)); the uniform variant is U(-sqrt(3) std, sqrt(3) std), the normal one N(0, std^2).
/// </summary>
public sealed class Xavier : FanScaledInitializer
{
    private readonly bool _uniform;

    /// <summary>Xavier uniform (<paramref name="uniform"/> true) or normal with gain <paramref name="gain"/>.</summary>
    /// <param name="uniform">Uniform or normal variant.</param>
    /// <param name="gain">Scale factor, finite and &gt; 0 (see <see cref="Fans.Gain"/>).</param>
    /// <exception cref="ArgumentOutOfRangeException">gain &lt;= 0 or non-finite.</exception>
    public Xavier(bool uniform, double gain = 1.0)
    {
        _uniform = uniform;
        InitChecks.Positive(SchemeName, nameof(gain), gain);
        Gain = gain;
    }

    /// <summary>Xavier uniform with gain <paramref name="gain"/>.</summary>
    /// <param name="gain">Scale factor, finite and &gt; 0.</param>
    public static Xavier Uniform(double gain = 1.0) => new(true, gain);
    /// <summary>Xavier normal with gain <paramref name="gain"/>.</summary>
    /// <param name="gain">Scale factor, finite and &gt; 0.</param>
    public static Xavier Normal(double gain = 1.0) => new(false, gain);

    /// <summary>The gain.</summary>
    public double Gain { get; }

    private string SchemeName => _uniform ? "xavier_uniform" : "xavier_normal";

    /// <inheritdoc/>
    public override string Name => $"{SchemeName}(gain={F(Gain)})";

    /// <inheritdoc/>
    protected override bool IsUniform => _uniform;

    /// <inheritdoc/>
    public override double Std(ReadOnlySpan<int> shape)
    {
        var (fanIn, fanOut) = Fans.Compute(shape, Name);
        return Gain * Math.Sqrt(2.0 / (fanIn + fanOut));
    }
}

/// <summary>
/// He/Kaiming (He et al. 2015; PyTorch's <c>kaiming_uniform_</c>/<c>kaiming_normal_</c>):
/// std = gain / sqrt(fan) with gain = <see cref="Fans.Gain"/>(nonlinearity, a) and fan selected by the mode; the
/// uniform variant is U(-sqrt(3) std, sqrt(3) std), the normal one N(0, std^2). PyTorch's defaults: a = 0,
/// fan_in, leaky_relu (so gain sqrt(2)). With a = sqrt(5) the uniform variant is U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
/// PyTorch's Linear and Conv default (<see cref="Defaults.LinearWeight"/>).
/// </summary>
public sealed class Kaiming : FanScaledInitializer
{
    private readonly bool _uniform;

    /// <summary>Kaiming uniform (<paramref name="uniform"/> true) or normal.</summary>
    /// <param name="uniform">Uniform or normal variant.</param>
    /// <param name="a">The negative slope of the leaky ReLU that follows (finite); used only with <see cref="Nonlinearity.LeakyRelu"/>.</param>
    /// <param name="mode">Scale by fan in (forward variance) or fan out (backward variance).</param>
    /// <param name="nonlinearity">The activation that follows.</param>
    /// <exception cref="ArgumentOutOfRangeException">A non-finite a, or an undefined mode or nonlinearity.</exception>
    public Kaiming(bool uniform, double a = 0.0, FanMode mode = FanMode.FanIn, Nonlinearity nonlinearity = Nonlinearity.LeakyRelu)
    {
        _uniform = uniform;
        InitChecks.Finite(SchemeName, nameof(a), a);
        InitChecks.Defined(SchemeName, nameof(mode), mode);
        InitChecks.Defined(SchemeName, nameof(nonlinearity), nonlinearity);
        A = a;
        Mode = mode;
        Nonlinearity = nonlinearity;
        Gain = Fans.Gain(nonlinearity, a);
    }

    /// <summary>Kaiming uniform (see the constructor for the parameters).</summary>
    /// <param name="a">Leaky ReLU's negative slope.</param>
    /// <param name="mode">Fan in or fan out.</param>
    /// <param name="nonlinearity">The activation that follows.</param>
    public static Kaiming Uniform(double a = 0.0, FanMode mode = FanMode.FanIn, Nonlinearity nonlinearity = Nonlinearity.LeakyRelu)
        => new(true, a, mode, nonlinearity);

    /// <summary>Kaiming normal (see the constructor for the parameters).</summary>
    /// <param name="a">Leaky ReLU's negative slope.</param>
    /// <param name="mode">Fan in or fan out.</param>
    /// <param name="nonlinearity">The activation that follows.</param>
    public static Kaiming Normal(double a = 0.0, FanMode mode = FanMode.FanIn, Nonlinearity nonlinearity = Nonlinearity.LeakyRelu)
        => new(false, a, mode, nonlinearity);

    /// <summary>Leaky ReLU's negative slope.</summary>
    public double A { get; }
    /// <summary>Which fan scales the values.</summary>
    public FanMode Mode { get; }
    /// <summary>The activation that follows.</summary>
    public Nonlinearity Nonlinearity { get; }
    /// <summary>The gain, <see cref="Fans.Gain"/>(<see cref="Nonlinearity"/>, <see cref="A"/>).</summary>
    public double Gain { get; }

    private string SchemeName => _uniform ? "kaiming_uniform" : "kaiming_normal";

    /// <inheritdoc/>
    public override string Name => $"{SchemeName}(a={F(A)}, {(Mode == FanMode.FanIn ? "fan_in" : "fan_out")}, {Fans.Spell(Nonlinearity)})";

    /// <inheritdoc/>
    protected override bool IsUniform => _uniform;

    /// <inheritdoc/>
    public override double Std(ReadOnlySpan<int> shape) => Gain / Math.Sqrt(Fans.Select(shape, Mode, Name));
}

/// <summary>
/// LeCun (LeCun et al. 1998, "Efficient BackProp"): variance 1/fan_in, i.e. std = sqrt(1/fan_in); the uniform
/// variant is U(-sqrt(3/fan_in), sqrt(3/fan_in)), the normal one N(0, 1/fan_in) (untruncated; Keras's
/// <c>lecun_normal</c> truncates, use <see cref="TruncatedNormal"/> for that). Equal to Kaiming with the linear gain
/// and fan_in.
/// </summary>
public sealed class LeCun : FanScaledInitializer
{
    private readonly bool _uniform;

    /// <summary>LeCun uniform (<paramref name="uniform"/> true) or normal.</summary>
    /// <param name="uniform">Uniform or normal variant.</param>
    public LeCun(bool uniform) => _uniform = uniform;

    /// <summary>LeCun uniform.</summary>
    public static LeCun Uniform() => new(true);
    /// <summary>LeCun normal.</summary>
    public static LeCun Normal() => new(false);

    /// <inheritdoc/>
    public override string Name => _uniform ? "lecun_uniform" : "lecun_normal";

    /// <inheritdoc/>
    protected override bool IsUniform => _uniform;

    /// <inheritdoc/>
    public override double Std(ReadOnlySpan<int> shape) => Math.Sqrt(1.0 / Fans.Compute(shape, Name).FanIn);
}
