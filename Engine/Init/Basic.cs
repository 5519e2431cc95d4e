namespace GpuNet.Init;

/// <summary>Every element 0 (PyTorch's <c>zeros_</c>). Draws nothing.</summary>
public sealed class Zeros : Initializer
{
    /// <inheritdoc/>
    public override string Name => "zeros";

    /// <inheritdoc/>
    protected override void GenerateCore(ReadOnlySpan<int> shape, ref SplitMix64 rng, Span<float> destination) => destination.Clear();
}

/// <summary>Every element <see cref="Value"/> (PyTorch's <c>constant_</c>, <c>ones_</c>). Draws nothing.</summary>
public sealed class Constant : Initializer
{
    /// <summary>Fills with <paramref name="value"/>, rounded to float32.</summary>
    /// <param name="value">A finite value.</param>
    /// <exception cref="ArgumentOutOfRangeException">NaN or infinite.</exception>
    public Constant(double value)
    {
        InitChecks.Finite("constant", nameof(value), value);
        Value = value;
    }

    /// <summary>The value.</summary>
    public double Value { get; }

    /// <inheritdoc/>
    public override string Name => $"constant({F(Value)})";

    /// <inheritdoc/>
    protected override void GenerateCore(ReadOnlySpan<int> shape, ref SplitMix64 rng, Span<float> destination) => destination.Fill((float)Value);
}

/// <summary>
/// U(<see cref="Low"/>, <see cref="High"/>) (PyTorch's <c>uniform_</c>): each element is
/// <c>(float)(low + (high - low) * u)</c> with u = <see cref="SplitMix64.NextDouble"/> in [0, 1), one draw per element;
/// a value that float32 rounding would put on <c>high</c> becomes the largest float below it, so for float32-representable
/// bounds every element lies in [low, high).
/// </summary>
public sealed class Uniform : Initializer
{
    /// <summary>U(<paramref name="low"/>, <paramref name="high"/>).</summary>
    /// <param name="low">Inclusive lower bound, finite.</param>
    /// <param name="high">Exclusive upper bound, finite, &gt; <paramref name="low"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException">A non-finite bound or <paramref name="low"/> &gt;= <paramref name="high"/>.</exception>
    public Uniform(double low = 0.0, double high = 1.0)
    {
        InitChecks.Ordered("uniform", nameof(low), low, nameof(high), high, allowInfinite: false);
        Low = low;
        High = high;
    }

    /// <summary>Inclusive lower bound.</summary>
    public double Low { get; }
    /// <summary>Exclusive upper bound.</summary>
    public double High { get; }

    /// <inheritdoc/>
    public override string Name => $"uniform({F(Low)}, {F(High)})";

    /// <inheritdoc/>
    protected override void GenerateCore(ReadOnlySpan<int> shape, ref SplitMix64 rng, Span<float> destination)
        => Sampling.Uniform(ref rng, Low, High, destination);
}

/// <summary>
/// N(<see cref="Mean"/>, <see cref="Std"/>^2) (PyTorch's <c>normal_</c>): each element is
/// <c>(float)(mean + std * z)</c> with z from <see cref="SplitMix64.NextNormal"/> (Box-Muller in float64, both values
/// of each pair used, in order).
/// </summary>
public sealed class Normal : Initializer
{
    /// <summary>N(<paramref name="mean"/>, <paramref name="std"/>^2).</summary>
    /// <param name="mean">Finite mean.</param>
    /// <param name="std">Standard deviation, finite and &gt;= 0 (0 fills with the mean).</param>
    /// <exception cref="ArgumentOutOfRangeException">A non-finite mean, or std &lt; 0 or non-finite.</exception>
    public Normal(double mean = 0.0, double std = 1.0)
    {
        InitChecks.Finite("normal", nameof(mean), mean);
        InitChecks.NonNegative("normal", nameof(std), std);
        Mean = mean;
        Std = std;
    }

    /// <summary>The mean.</summary>
    public double Mean { get; }
    /// <summary>The standard deviation.</summary>
    public double Std { get; }

    /// <inheritdoc/>
    public override string Name => $"normal({F(Mean)}, {F(Std)})";

    /// <inheritdoc/>
    protected override void GenerateCore(ReadOnlySpan<int> shape, ref SplitMix64 rng, Span<float> destination)
        => Sampling.Normal(ref rng, Mean, Std, destination);
}

/// <summary>The element samplers shared by the schemes (one stream, row-major order).</summary>
internal static class Sampling
{
    /// <summary>(float)(lo + (hi - lo) u), kept in [(float)lo, (float)hi) against float32 rounding.</summary>
    internal static void Uniform(ref SplitMix64 rng, double lo, double hi, Span<float> destination)
    {
        float flo = (float)lo, fhi = (float)hi;
        float top = fhi > flo ? MathF.BitDecrement(fhi) : flo;
        double width = hi - lo;
        for (int i = 0; i < destination.Length; i++)
        {
            float f = (float)(lo + width * rng.NextDouble());
            if (f < flo) f = flo;
            if (f > top) f = top;
            destination[i] = f;
        }
    }

    /// <summary>(float)(mean + std z), z standard normal (Box-Muller).</summary>
    internal static void Normal(ref SplitMix64 rng, double mean, double std, Span<float> destination)
    {
        for (int i = 0; i < destination.Length; i++)
            destination[i] = (float)(mean + std * rng.NextNormal());
    }
}
