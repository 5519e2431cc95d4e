namespace GpuNet.Init;

/// <summary>
/// Sebastiano Vigna's SplitMix64 generator (public domain, <c>splitmix64.c</c>; also Java's <c>SplittableRandom</c>
/// mixer): the state advances by the golden-ratio constant <c>0x9E3779B97F4A7C15</c> and each output is the state
/// through a fixed 64-bit finaliser. The algorithm is spelled out here, so a seed gives the same sequence on every
/// .NET version, operating system and device, unlike <see cref="System.Random"/>, whose algorithm is unspecified.
/// Output <c>i</c> (0-based) of seed <c>s</c> is <c>Mix(s + (i + 1) * 0x9E3779B97F4A7C15)</c>, so the generator is
/// also counter-based (<see cref="At"/>). Seed 1234567 gives 6457827717110365317, 3203168211198807973,
/// 9817491932198370423, 4593380528125082431, 16408922859458223821 (the published reference outputs).
/// </summary>
public struct SplitMix64
{
    /// <summary>The increment of the state per output: 2^64 divided by the golden ratio, made odd.</summary>
    public const ulong Gamma = 0x9E3779B97F4A7C15UL;

    private ulong _state;
    private double _spare;
    private bool _hasSpare;

    /// <summary>A generator whose first output is <c>Mix(seed + Gamma)</c>.</summary>
    /// <param name="seed">Any 64-bit value; equal seeds give equal sequences.</param>
    public SplitMix64(ulong seed)
    {
        _state = seed;
        _spare = 0;
        _hasSpare = false;
    }

    /// <summary>The current state (the seed advanced by <c>Gamma</c> once per 64-bit output drawn).</summary>
    public readonly ulong State => _state;

    /// <summary>SplitMix64's finaliser (a bijection of 64-bit values; Stafford's "Mix13" variant).</summary>
    /// <param name="z">The value to mix.</param>
    public static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>
    /// Output <paramref name="index"/> (0-based) of the sequence of <paramref name="seed"/>, without drawing the
    /// outputs before it. Also a way to derive independent seeds for several parameters from one model seed.
    /// </summary>
    /// <param name="seed">The sequence's seed.</param>
    /// <param name="index">Which output, 0 for the first.</param>
    public static ulong At(ulong seed, ulong index) => Mix(unchecked(seed + (index + 1) * Gamma));

    /// <summary>The next 64 random bits.</summary>
    public ulong NextUInt64()
    {
        _state = unchecked(_state + Gamma);
        return Mix(_state);
    }

    /// <summary>A double uniform in [0, 1): the top 53 bits of <see cref="NextUInt64"/> times 2^-53.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>
    /// A standard normal double by the Box-Muller transform in float64: from u1 in (0, 1] (<c>1 - NextDouble()</c>)
    /// and u2 in [0, 1), r = sqrt(-2 ln u1) gives r cos(2 pi u2), returned now, and r sin(2 pi u2), kept and returned
    /// by the next call. Uses <see cref="Math.Log(double)"/>, <see cref="Math.Cos"/> and <see cref="Math.Sin"/>, which .NET
    /// takes from the platform's C library: results are bit-identical on one machine and across devices; across
    /// operating systems a float64 value may differ in its last bit, which changes its float32 rounding only rarely.
    /// </summary>
    public double NextNormal()
    {
        if (_hasSpare)
        {
            _hasSpare = false;
            return _spare;
        }
        double u1 = 1.0 - NextDouble();
        double u2 = NextDouble();
        double r = Math.Sqrt(-2.0 * Math.Log(u1));
        double theta = 2.0 * Math.PI * u2;
        _spare = r * Math.Sin(theta);
        _hasSpare = true;
        return r * Math.Cos(theta);
    }
}
