using System.Globalization;

namespace GpuNet.Init;

/// <summary>
/// Fills a parameter of a given shape with initial values, on the host, as a pure function of the shape and a seed:
/// the same shape and seed give bit-identical values whatever the device the tensor lives on. The schemes in this
/// namespace derive from <see cref="Initializer"/>; a checkpoint loader implements this interface directly and
/// ignores the seed (see <see cref="FromValues"/> for the in-memory form of that hook).
/// </summary>
public interface IInitializer
{
    /// <summary>A readable name with the parameters, e.g. <c>kaiming_uniform(a=2.23606797749979, fan_in, leaky_relu)</c>.</summary>
    string Name { get; }

    /// <summary>Writes the initial values of a parameter of shape <paramref name="shape"/>, row-major, to <paramref name="destination"/>.</summary>
    /// <param name="shape">The parameter's shape, outermost dimension first; every dimension &gt;= 0.</param>
    /// <param name="seed">The seed of the random stream (ignored by deterministic schemes).</param>
    /// <param name="destination">Exactly as many elements as the shape holds.</param>
    /// <exception cref="ArgumentException">A bad shape, a destination of the wrong length, or a shape the scheme cannot fill
    /// (fewer than 2 dimensions for fan-based schemes).</exception>
    void Generate(ReadOnlySpan<int> shape, ulong seed, Span<float> destination);
}

/// <summary>Host-side conveniences for every <see cref="IInitializer"/>.</summary>
public static class InitializerExtensions
{
    /// <summary>Generates the values of a parameter of shape <paramref name="shape"/> into a new array.</summary>
    /// <param name="initializer">The scheme.</param>
    /// <param name="shape">The parameter's shape.</param>
    /// <param name="seed">The seed of the random stream.</param>
    public static float[] Generate(this IInitializer initializer, ReadOnlySpan<int> shape, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(initializer);
        long n = InitChecks.Count(initializer.Name, shape);
        var values = new float[n];
        initializer.Generate(shape, seed, values);
        return values;
    }

    /// <summary>
    /// Generates the values for <paramref name="tensor"/>'s shape on the host and copies them into it (one counted
    /// host-to-device copy): the same seed gives bit-identical tensors on every device.
    /// </summary>
    /// <param name="initializer">The scheme.</param>
    /// <param name="tensor">A float32 tensor (an owner or a view); its shape decides the fans.</param>
    /// <param name="seed">The seed of the random stream.</param>
    /// <exception cref="ArgumentException">The tensor is not float32, or the scheme rejects its shape.</exception>
    /// <exception cref="ObjectDisposedException">The tensor was disposed.</exception>
    public static void Fill(this IInitializer initializer, Tensor tensor, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(initializer);
        ArgumentNullException.ThrowIfNull(tensor);
        tensor.ThrowIfDisposed(initializer.Name);
        tensor.RequireDType(DType.Float32, initializer.Name);
        tensor.CopyFrom(initializer.Generate(tensor.Shape, seed));
    }
}

/// <summary>
/// Base of the random and constant schemes: checks the shape and the destination, then runs the scheme over a
/// <see cref="SplitMix64"/> stream seeded with the seed. Values are drawn in row-major order of the shape.
/// Parameters are validated in the constructors: a bad one is an <see cref="ArgumentOutOfRangeException"/> naming
/// the scheme, the parameter, the valid range and the value.
/// </summary>
public abstract class Initializer : IInitializer
{
    /// <inheritdoc/>
    public abstract string Name { get; }

    /// <inheritdoc/>
    public void Generate(ReadOnlySpan<int> shape, ulong seed, Span<float> destination)
    {
        long n = InitChecks.Count(Name, shape);
        if (destination.Length != n)
            throw new ArgumentException($"{Name}: destination has {destination.Length} elements, shape {ShapeUtil.Format(shape)} holds {n}", nameof(destination));
        CheckShape(shape);
        if (n == 0) return;
        var rng = new SplitMix64(seed);
        GenerateCore(shape, ref rng, destination);
    }

    /// <summary>Rejects shapes the scheme cannot fill (fan-based schemes need at least 2 dimensions). Runs before the
    /// zero-element shortcut, so a bias is rejected even when empty.</summary>
    /// <param name="shape">The validated shape.</param>
    protected virtual void CheckShape(ReadOnlySpan<int> shape) { }

    /// <summary>Writes the values; <paramref name="destination"/> has the shape's element count, which is &gt; 0.</summary>
    /// <param name="shape">The validated shape.</param>
    /// <param name="rng">The stream seeded with the caller's seed.</param>
    /// <param name="destination">The row-major output.</param>
    protected abstract void GenerateCore(ReadOnlySpan<int> shape, ref SplitMix64 rng, Span<float> destination);

    /// <inheritdoc/>
    public override string ToString() => Name;

    /// <summary>Formats a parameter value for <see cref="Name"/> (round-trip, invariant culture).</summary>
    /// <param name="v">The value.</param>
    protected static string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);
}

/// <summary>
/// The "from a saved model" hook: supplies given values for a parameter of a fixed shape and ignores the seed. A
/// checkpoint loader reads a tensor's values and shape and hands them over as a <see cref="FromValues"/> (or
/// implements <see cref="IInitializer"/> itself); reading files is not this class's business.
/// </summary>
public sealed class FromValues : IInitializer
{
    private readonly float[] _values;
    private readonly int[] _shape;

    /// <summary>Keeps a copy of <paramref name="values"/> for parameters of shape <paramref name="shape"/>.</summary>
    /// <param name="values">The row-major values; as many as the shape holds.</param>
    /// <param name="shape">The shape the values belong to.</param>
    /// <param name="source">Where the values came from (a checkpoint path and parameter name), for messages.</param>
    /// <exception cref="ArgumentException">The shape has a negative dimension or does not hold <paramref name="values"/>.Length elements.</exception>
    public FromValues(ReadOnlySpan<float> values, ReadOnlySpan<int> shape, string source = "values")
    {
        ArgumentNullException.ThrowIfNull(source);
        Source = source;
        long n = InitChecks.Count(Name, shape);
        if (n != values.Length)
            throw new ShapeMismatchException(Name, ShapeUtil.Format(shape), $"({values.Length})", $"shape holds {n} elements, {values.Length} values given");
        _values = values.ToArray();
        _shape = shape.ToArray();
    }

    /// <summary>Where the values came from.</summary>
    public string Source { get; }

    /// <summary>The shape the values belong to.</summary>
    public ReadOnlySpan<int> Shape => _shape;

    /// <inheritdoc/>
    public string Name => $"from_values({Source})";

    /// <inheritdoc/>
    /// <exception cref="ShapeMismatchException">The requested shape is not the saved one.</exception>
    public void Generate(ReadOnlySpan<int> shape, ulong seed, Span<float> destination)
    {
        if (!shape.SequenceEqual(_shape))
            throw new ShapeMismatchException(Name, ShapeUtil.Format(_shape), ShapeUtil.Format(shape), "the saved parameter has another shape");
        if (destination.Length != _values.Length)
            throw new ArgumentException($"{Name}: destination has {destination.Length} elements, shape {ShapeUtil.Format(shape)} holds {_values.Length}", nameof(destination));
        _values.CopyTo(destination);
    }

    /// <inheritdoc/>
    public override string ToString() => Name;
}

/// <summary>Validation shared by the schemes: every failure names the scheme, the parameter, the range and the value.</summary>
internal static class InitChecks
{
    static string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    internal static ArgumentOutOfRangeException Fail(string scheme, string name, double value, string range) =>
        new(name, value, $"{scheme}: {name} must be in {range}, got {F(value)}");

    /// <summary>Element count of a shape with every dimension &gt;= 0, fitting one host array.</summary>
    internal static long Count(string scheme, ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (int d in shape)
        {
            if (d < 0)
                throw new ArgumentOutOfRangeException(nameof(shape), ShapeUtil.Format(shape), $"{scheme}: every dimension must be >= 0, got shape {ShapeUtil.Format(shape)}");
            n *= d;
        }
        if (n > Array.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(shape), ShapeUtil.Format(shape), $"{scheme}: shape {ShapeUtil.Format(shape)} holds {n} elements, more than one host array ({Array.MaxLength})");
        return n;
    }

    internal static void Finite(string scheme, string name, double v)
    {
        if (!double.IsFinite(v)) throw Fail(scheme, name, v, "(-inf, +inf) (finite)");
    }

    internal static void NonNegative(string scheme, string name, double v)
    {
        if (!(v >= 0) || !double.IsFinite(v)) throw Fail(scheme, name, v, "[0, +inf)");
    }

    internal static void Positive(string scheme, string name, double v)
    {
        if (!(v > 0) || !double.IsFinite(v)) throw Fail(scheme, name, v, "(0, +inf)");
    }

    /// <summary>lo &lt; hi, neither NaN; infinite bounds only where <paramref name="allowInfinite"/>.</summary>
    internal static void Ordered(string scheme, string loName, double lo, string hiName, double hi, bool allowInfinite)
    {
        if (double.IsNaN(lo) || (!allowInfinite && !double.IsFinite(lo)))
            throw Fail(scheme, loName, lo, allowInfinite ? "[-inf, +inf) (not NaN)" : "(-inf, +inf) (finite)");
        if (double.IsNaN(hi) || (!allowInfinite && !double.IsFinite(hi)))
            throw Fail(scheme, hiName, hi, allowInfinite ? "(-inf, +inf] (not NaN)" : "(-inf, +inf) (finite)");
        if (!(lo < hi))
            throw Fail(scheme, hiName, hi, $"({F(lo)}, +inf) ({hiName} must exceed {loName} = {F(lo)})");
    }

    internal static void Defined<TEnum>(string scheme, string name, TEnum value) where TEnum : struct, Enum
    {
        if (!Enum.IsDefined(value))
            throw new ArgumentOutOfRangeException(name, value, $"{scheme}: {name} must be one of {string.Join(", ", Enum.GetNames<TEnum>())}, got {value}");
    }
}
