namespace GpuNet;

public sealed partial class Device
{
    /// <summary>Checks that <paramref name="t"/> is alive, on this device and of <paramref name="dtype"/>.</summary>
    internal void Check(string op, string argument, Tensor t, DType dtype = DType.Float32)
    {
        ArgumentNullException.ThrowIfNull(t, argument);
        ThrowIfDisposed();
        if (t.IsDisposed) t.ThrowIfDisposed($"{op}({argument})");
        if (!ReferenceEquals(t.Device, this))
            throw new ArgumentException($"{op}: '{argument}' lives on device '{t.Device.Name}', the op runs on '{Name}'; copy it first", argument);
        if (t.DType != dtype)
            throw new ArgumentException($"{op}: '{argument}' must be {dtype}, got {t.DType}", argument);
        if (t.Length > int.MaxValue)
            throw new ArgumentOutOfRangeException(argument, t.Length, $"{op}: at most {int.MaxValue} elements per tensor");
    }

    /// <summary>Checks that <paramref name="t"/> has exactly <paramref name="shape"/>.</summary>
    internal static void CheckShape(string op, string argument, Tensor t, params ReadOnlySpan<int> shape)
    {
        if (!t.Shape.SequenceEqual(shape))
            throw new ShapeMismatchException(op, ShapeUtil.Format(shape), ShapeUtil.Format(t.Shape), $"argument '{argument}'");
    }

    /// <summary>Checks that <paramref name="t"/> has as many elements as <paramref name="like"/> (any shape).</summary>
    internal static void CheckSameLength(string op, string argument, Tensor t, Tensor like)
    {
        if (t.Length != like.Length)
            throw new ShapeMismatchException(op, ShapeUtil.Format(like.Shape), ShapeUtil.Format(t.Shape),
                $"argument '{argument}' must have {like.Length} elements like the first operand, it has {t.Length}");
    }

    /// <summary>Rows and columns of a tensor seen as a matrix: the last dimension is the columns.</summary>
    internal static (int Rows, int Cols) AsMatrix(string op, string argument, Tensor t)
    {
        if (t.Rank == 0) throw new ShapeMismatchException(op, "(rows, cols)", "()", $"argument '{argument}' must have at least one dimension");
        int cols = t.Dim(-1);
        long rows = ShapeUtil.Count(t.Shape[..^1]);
        if (rows > int.MaxValue) throw new ArgumentOutOfRangeException(argument, rows, $"{op}: at most {int.MaxValue} rows");
        return ((int)rows, cols);
    }
}
