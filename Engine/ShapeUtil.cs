namespace GpuNet;

/// <summary>Thrown when an operation gets a tensor whose shape is not the one it needs.</summary>
public sealed class ShapeMismatchException : ArgumentException
{
    /// <summary>Creates the exception.</summary>
    public ShapeMismatchException(string operation, string expected, string actual, string? detail = null)
        : base($"{operation}: expected shape {expected}, got {actual}{(detail is null ? "" : $" ({detail})")}")
    {
        Operation = operation;
        Expected = expected;
        Actual = actual;
    }

    /// <summary>The operation that rejected the tensor.</summary>
    public string Operation { get; }
    /// <summary>The shape the operation needed.</summary>
    public string Expected { get; }
    /// <summary>The shape it got.</summary>
    public string Actual { get; }
}

internal static class ShapeUtil
{
    public static long Count(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (int d in shape) n *= d;
        return n;
    }

    public static void Validate(int[] shape, string argument)
    {
        ArgumentNullException.ThrowIfNull(shape, argument);
        foreach (int d in shape)
            if (d < 0) throw new ArgumentOutOfRangeException(argument, Format(shape), "every dimension must be >= 0");
    }

    public static string Format(ReadOnlySpan<int> shape) => "(" + string.Join(", ", shape.ToArray()) + ")";
}
