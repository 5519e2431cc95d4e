namespace GpuNet.Checkpoints;

/// <summary>A checkpoint file that cannot be read or does not fit the model: the message names the file and the problem.</summary>
public sealed class CheckpointException : IOException
{
    /// <summary>Creates the exception; the message is prefixed with the path.</summary>
    /// <param name="path">The checkpoint file.</param>
    /// <param name="problem">What is wrong, with the expected and the actual value.</param>
    /// <param name="inner">The underlying error, if any.</param>
    public CheckpointException(string path, string problem, Exception? inner = null)
        : base($"checkpoint '{path}': {problem}", inner)
    {
        Path = path;
        Problem = problem;
    }

    /// <summary>The checkpoint file.</summary>
    public string Path { get; }
    /// <summary>The problem, without the path.</summary>
    public string Problem { get; }
}

/// <summary>
/// One named tensor of a safetensors file, held on the host. Floating-point dtypes read as float32
/// (<see cref="Floats"/>): F32 as is, F16, BF16 and F64 converted on read (F64 rounds to nearest); integer dtypes read
/// as int32 (<see cref="Ints"/>): I32 as is, I64 converted when every value fits. Other dtypes are rejected on read.
/// </summary>
public sealed class CheckpointTensor
{
    private readonly float[]? _floats;
    private readonly int[]? _ints;
    private readonly int[] _shape;

    private CheckpointTensor(string name, string dtype, int[] shape, float[]? floats, int[]? ints)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(shape);
        if (name.Length == 0) throw new ArgumentException("a tensor name must not be empty", nameof(name));
        if (name == SafeTensorsFormat.MetadataKey) throw new ArgumentException($"'{name}' is reserved for the metadata", nameof(name));
        ShapeUtil.Validate(shape, nameof(shape));
        long n = ShapeUtil.Count(shape);
        long have = floats?.LongLength ?? ints!.LongLength;
        if (n != have) throw new ShapeMismatchException($"CheckpointTensor '{name}'", ShapeUtil.Format(shape), $"({have})", $"shape holds {n} elements, {have} values given");
        Name = name;
        DType = dtype;
        _shape = (int[])shape.Clone();
        _floats = floats;
        _ints = ints;
    }

    /// <summary>A float32 tensor (written as F32); keeps <paramref name="values"/> without copying.</summary>
    public static CheckpointTensor Float32(string name, int[] shape, float[] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        return new(name, "F32", shape, values, null);
    }

    /// <summary>An int32 tensor (written as I32); keeps <paramref name="values"/> without copying.</summary>
    public static CheckpointTensor Int32(string name, int[] shape, int[] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        return new(name, "I32", shape, null, values);
    }

    internal static CheckpointTensor FromFile(string name, string dtype, int[] shape, float[]? floats, int[]? ints)
        => new(name, dtype, shape, floats, ints);

    /// <summary>The name (<c>linear1.weight</c>, <c>optimizer.exp_avg</c>).</summary>
    public string Name { get; }
    /// <summary>The dtype as stored in the file (F32, I32, or F16/BF16/F64/I64 for converted tensors).</summary>
    public string DType { get; }
    /// <summary>The shape.</summary>
    public ReadOnlySpan<int> Shape => _shape;
    /// <summary>Number of elements.</summary>
    public long Length => ShapeUtil.Count(_shape);
    /// <summary>True when the values are floating point (<see cref="Floats"/>), false when integers (<see cref="Ints"/>).</summary>
    public bool IsFloat => _floats is not null;

    /// <summary>The values of a floating-point tensor, as float32 (the array itself: do not modify).</summary>
    /// <exception cref="InvalidOperationException">An integer tensor.</exception>
    public float[] Floats => _floats ?? throw new InvalidOperationException($"tensor '{Name}' has dtype {DType}, not a floating-point dtype");

    /// <summary>The values of an integer tensor, as int32 (the array itself: do not modify).</summary>
    /// <exception cref="InvalidOperationException">A floating-point tensor.</exception>
    public int[] Ints => _ints ?? throw new InvalidOperationException($"tensor '{Name}' has dtype {DType}, not an integer dtype");

    internal string FileDType => _floats is not null ? "F32" : "I32";
    internal long ByteLength => Length * 4;
    internal ReadOnlySpan<byte> Bytes => _floats is not null
        ? System.Runtime.InteropServices.MemoryMarshal.AsBytes(_floats.AsSpan())
        : System.Runtime.InteropServices.MemoryMarshal.AsBytes(_ints.AsSpan());

    /// <inheritdoc/>
    public override string ToString() => $"{Name} {DType}{ShapeUtil.Format(_shape)}";
}
