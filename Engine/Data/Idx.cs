using System.Buffers.Binary;
using System.IO.Compression;

namespace GpuNet.Data;

/// <summary>
/// Reader (and, for tests and tools, writer) of the IDX format of MNIST and Fashion-MNIST: a big-endian int32 magic
/// number <c>0x00000800 | rank</c> for unsigned bytes (2049 for labels, rank 1; 2051 for images, rank 3), then
/// <c>rank</c> big-endian int32 dimensions, then exactly <c>prod(dims)</c> bytes. Raw and gzip-compressed files are
/// both accepted; gzip is detected by its magic bytes <c>1f 8b</c>, not by the file name.
/// </summary>
public static class Idx
{
    /// <summary>Magic number of an IDX label file (unsigned bytes, rank 1).</summary>
    public const int LabelMagic = 2049;
    /// <summary>Magic number of an IDX image file (unsigned bytes, rank 3).</summary>
    public const int ImageMagic = 2051;

    /// <summary>Reads an image file: returns the pixels (count * rows * cols bytes) and the dimensions.</summary>
    /// <exception cref="DataFormatException">Wrong magic, bad dimensions, truncated or over-long data, corrupt gzip.</exception>
    public static byte[] ReadImages(string path, out int count, out int rows, out int cols)
    {
        var (data, dims) = Read(path, ImageMagic, "image");
        count = dims[0]; rows = dims[1]; cols = dims[2];
        return data;
    }

    /// <summary>Reads a label file: returns one byte per sample.</summary>
    /// <exception cref="DataFormatException">Wrong magic, truncated or over-long data, corrupt gzip.</exception>
    public static byte[] ReadLabels(string path) => Read(path, LabelMagic, "label").Data;

    /// <summary>
    /// Loads an image file and its label file as a classification <see cref="Dataset"/>: features (1, rows, cols)
    /// scaled to [0, 1] by /255, labels checked against <paramref name="classCount"/>.
    /// </summary>
    /// <exception cref="DataFormatException">Either file is malformed, the counts differ, or a label is out of range.</exception>
    public static Dataset Load(string name, string imagesPath, string labelsPath, int classCount)
    {
        var pixels = ReadImages(imagesPath, out int count, out int rows, out int cols);
        var raw = ReadLabels(labelsPath);
        if (raw.Length != count)
            throw new DataFormatException(labelsPath, $"count mismatch: holds {raw.Length} labels but the image file {imagesPath} holds {count} images");
        var labels = new int[count];
        for (int i = 0; i < count; i++)
        {
            if (raw[i] >= classCount)
                throw new DataFormatException(labelsPath, $"label out of range: sample {i} has label {raw[i]}, expected 0..{classCount - 1}");
            labels[i] = raw[i];
        }
        var features = GC.AllocateUninitializedArray<float>(pixels.Length);
        Parallel.For(0, count, i =>
        {
            int n = rows * cols, o = i * n;
            for (int j = 0; j < n; j++) features[o + j] = pixels[o + j] / 255f; // correctly rounded: exactly b/255 in float32
        });
        return Dataset.Classification(name, features, [1, rows, cols], labels, classCount);
    }

    /// <summary>The whole file, decompressed when it starts with the gzip magic bytes.</summary>
    internal static byte[] ReadAllMaybeGzip(string path)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new DataFormatException(path, "file not found", e);
        }
        if (bytes.Length < 2 || bytes[0] != 0x1f || bytes[1] != 0x8b) return bytes;
        try
        {
            using var gz = new GZipStream(new MemoryStream(bytes), CompressionMode.Decompress);
            using var ms = new MemoryStream(bytes.Length * 4);
            gz.CopyTo(ms);
            return ms.ToArray();
        }
        catch (InvalidDataException e)
        {
            throw new DataFormatException(path, $"corrupt or truncated gzip stream ({e.Message})", e);
        }
        catch (EndOfStreamException e)
        {
            throw new DataFormatException(path, "truncated gzip stream", e);
        }
    }

    private static (byte[] Data, int[] Dims) Read(string path, int expectedMagic, string what)
    {
        var bytes = ReadAllMaybeGzip(path);
        int rank = expectedMagic & 0xff;
        int headerBytes = 4 + 4 * rank;
        if (bytes.Length < 4)
            throw new DataFormatException(path, $"truncated: {bytes.Length} bytes, too short for the IDX magic number");
        int magic = BinaryPrimitives.ReadInt32BigEndian(bytes);
        if (magic != expectedMagic)
            throw new DataFormatException(path, $"wrong magic number {magic} (0x{magic:x8}), expected {expectedMagic} for an IDX {what} file");
        if (bytes.Length < headerBytes)
            throw new DataFormatException(path, $"truncated header: {bytes.Length} bytes, an IDX {what} header is {headerBytes} bytes");
        var dims = new int[rank];
        long expected = 1;
        for (int d = 0; d < rank; d++)
        {
            dims[d] = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(4 + 4 * d));
            if (dims[d] < 0 || (d > 0 && dims[d] == 0))
                throw new DataFormatException(path, $"bad dimension {d}: {dims[d]} (dimensions are ({string.Join(", ", dims[..(d + 1)])}...))");
            expected *= dims[d];
        }
        long actual = bytes.Length - headerBytes;
        if (actual < expected)
            throw new DataFormatException(path, $"truncated: the header promises ({string.Join(", ", dims)}) = {expected} bytes of data, the file holds {actual}");
        if (actual > expected)
            throw new DataFormatException(path, $"{actual - expected} trailing bytes after the ({string.Join(", ", dims)}) = {expected} bytes the header promises");
        return (bytes.AsSpan(headerBytes).ToArray(), dims);
    }

    /// <summary>Writes an IDX unsigned-byte file with the given magic and dimensions (gzip-compressed when asked).</summary>
    internal static void Write(string path, int magic, int[] dims, ReadOnlySpan<byte> data, bool gzip)
    {
        var header = new byte[4 + 4 * dims.Length];
        BinaryPrimitives.WriteInt32BigEndian(header, magic);
        for (int d = 0; d < dims.Length; d++) BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4 + 4 * d), dims[d]);
        using var file = File.Create(path);
        using Stream s = gzip ? new GZipStream(file, CompressionLevel.Fastest) : file;
        s.Write(header);
        s.Write(data);
    }
}
