namespace GpuNet.Init;

/// <summary>
/// N(<see cref="Mean"/>, <see cref="Std"/>^2) truncated to [<see cref="A"/>, <see cref="B"/>] (PyTorch's
/// <c>trunc_normal_</c>): the bounds are absolute values, not multiples of std; the defaults are a = -2, b = 2.
/// <para>
/// Sampling is exact rejection (Robert 1995, "Simulation of truncated normal variables") on the standardised
/// interval [alpha, beta] = [(a - mean)/std, (b - mean)/std], so it needs no erf or inverse CDF and stays exact far in
/// the tails, where PyTorch's inverse-CDF method loses precision:
/// an interval containing 0 and at least sqrt(2 pi) wide draws N(0, 1) until one lands inside; a narrower one
/// containing 0 proposes z ~ U(alpha, beta) accepted with probability exp(-z^2/2); a one-sided interval
/// [alpha, beta] with alpha &gt;= 0 (the negative side by symmetry) proposes either U(alpha, beta), accepted with
/// probability exp((alpha^2 - z^2)/2), or alpha + Exp(lambda) with lambda = (alpha + sqrt(alpha^2 + 4))/2, accepted
/// with probability exp(-(z - lambda)^2/2), whichever Robert's criterion says is more efficient. Each element takes a
/// variable number of draws from the one stream; the element is <c>(float)(mean + std z)</c>, clamped to
/// [(float)a, (float)b] against float32 rounding.
/// </para>
/// </summary>
public sealed class TruncatedNormal : Initializer
{
    private readonly double _alpha, _beta;

    /// <summary>N(<paramref name="mean"/>, <paramref name="std"/>^2) truncated to [<paramref name="a"/>, <paramref name="b"/>].</summary>
    /// <param name="mean">Finite mean of the untruncated normal.</param>
    /// <param name="std">Standard deviation of the untruncated normal, finite and &gt; 0.</param>
    /// <param name="a">Lower bound (absolute), not NaN, may be -infinity.</param>
    /// <param name="b">Upper bound (absolute), &gt; <paramref name="a"/>, may be +infinity.</param>
    /// <exception cref="ArgumentOutOfRangeException">A non-finite mean, std &lt;= 0, a &gt;= b, or a std so small that the
    /// standardised bounds overflow.</exception>
    public TruncatedNormal(double mean = 0.0, double std = 1.0, double a = -2.0, double b = 2.0)
    {
        const string scheme = "trunc_normal";
        InitChecks.Finite(scheme, nameof(mean), mean);
        InitChecks.Positive(scheme, nameof(std), std);
        InitChecks.Ordered(scheme, nameof(a), a, nameof(b), b, allowInfinite: true);
        _alpha = (a - mean) / std;
        _beta = (b - mean) / std;
        if (!(_alpha < _beta) || _alpha == double.PositiveInfinity || _beta == double.NegativeInfinity)
            throw InitChecks.Fail(scheme, nameof(std), std, $"(0, +inf) large enough that (a - mean)/std and (b - mean)/std stay finite and ordered (a = {F(a)}, b = {F(b)}, mean = {F(mean)})");
        Mean = mean;
        Std = std;
        A = a;
        B = b;
    }

    /// <summary>Mean of the untruncated normal.</summary>
    public double Mean { get; }
    /// <summary>Standard deviation of the untruncated normal.</summary>
    public double Std { get; }
    /// <summary>Lower bound (absolute).</summary>
    public double A { get; }
    /// <summary>Upper bound (absolute).</summary>
    public double B { get; }

    /// <inheritdoc/>
    public override string Name => $"trunc_normal({F(Mean)}, {F(Std)}, a={F(A)}, b={F(B)})";

    /// <inheritdoc/>
    protected override void GenerateCore(ReadOnlySpan<int> shape, ref SplitMix64 rng, Span<float> destination)
    {
        float lo = (float)A, hi = (float)B;
        for (int i = 0; i < destination.Length; i++)
        {
            float f = (float)(Mean + Std * SampleStandard(ref rng, _alpha, _beta));
            destination[i] = Math.Clamp(f, lo, hi);
        }
    }

    /// <summary>One draw of N(0, 1) truncated to [lo, hi], lo &lt; hi.</summary>
    internal static double SampleStandard(ref SplitMix64 rng, double lo, double hi)
    {
        if (lo >= 0) return Tail(ref rng, lo, hi);
        if (hi <= 0) return -Tail(ref rng, -hi, -lo);
        if (hi - lo >= Math.Sqrt(2 * Math.PI))
        {
            while (true)
            {
                double z = rng.NextNormal();
                if (z >= lo && z <= hi) return z;
            }
        }
        while (true)
        {
            double z = lo + (hi - lo) * rng.NextDouble();
            if (rng.NextDouble() < Math.Exp(-0.5 * z * z)) return z;
        }
    }

    /// <summary>N(0, 1) truncated to [lo, hi] with 0 &lt;= lo &lt; hi (hi may be +infinity).</summary>
    private static double Tail(ref SplitMix64 rng, double lo, double hi)
    {
        double root = Math.Sqrt(lo * lo + 4);
        double threshold = lo + 2 * Math.Sqrt(Math.E) / (lo + root) * Math.Exp((lo * lo - lo * root) / 4);
        if (hi < threshold)
        {
            while (true)
            {
                double z = lo + (hi - lo) * rng.NextDouble();
                if (rng.NextDouble() < Math.Exp(0.5 * (lo - z) * (lo + z))) return z;
            }
        }
        double lambda = (lo + root) / 2;
        while (true)
        {
            double z = lo - Math.Log(1.0 - rng.NextDouble()) / lambda;
            double u = rng.NextDouble();
            if (z > hi) continue;
            double d = z - lambda;
            if (u < Math.Exp(-0.5 * d * d)) return z;
        }
    }
}
