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

    private static (byte[] Data, int[] Dims) Read(string path, int expectedMagic, string what)
    {
        // Nothing is allocated from what the header claims: the dimensions are checked against the decoded length
        // (for gzip, counted by a first decompression pass) before the data array is made.
        long length = DecodedFile.DecodedLength(path);
        using var s = DecodedFile.OpenDecoded(path);
        int rank = expectedMagic & 0xff;
        int headerBytes = 4 + 4 * rank;
        Span<byte> header = stackalloc byte[headerBytes];
        if (length < 4)
            throw new DataFormatException(path, $"truncated: {length} bytes, too short for the IDX magic number");
        DecodedFile.ReadExactly(path, s, header[..4]);
        int magic = BinaryPrimitives.ReadInt32BigEndian(header);
        if (magic != expectedMagic)
            throw new DataFormatException(path, $"wrong magic number {magic} (0x{magic:x8}), expected {expectedMagic} for an IDX {what} file");
        if (length < headerBytes)
            throw new DataFormatException(path, $"truncated header: {length} bytes, an IDX {what} header is {headerBytes} bytes");
        DecodedFile.ReadExactly(path, s, header[4..]);
        var dims = new int[rank];
        long expected = 1;
        for (int d = 0; d < rank; d++)
        {
            dims[d] = BinaryPrimitives.ReadInt32BigEndian(header[(4 + 4 * d)..]);
            if (dims[d] < 0 || (d > 0 && dims[d] == 0))
                throw new DataFormatException(path, $"bad dimension {d}: {dims[d]} (dimensions are ({string.Join(", ", dims[..(d + 1)])}...))");
            expected *= dims[d];   // at most (2^31 - 1)^3 < 2^63
        }
        long actual = length - headerBytes;
        if (actual < expected)
            throw new DataFormatException(path, $"truncated: the header promises ({string.Join(", ", dims)}) = {expected} bytes of data, the file holds {actual}");
        if (actual > expected)
            throw new DataFormatException(path, $"{actual - expected} trailing bytes after the ({string.Join(", ", dims)}) = {expected} bytes the header promises");
        if (expected > Array.MaxLength)
            throw new DataFormatException(path, $"the header promises ({string.Join(", ", dims)}) = {expected} bytes of data, more than one array can hold ({Array.MaxLength})");
        var data = GC.AllocateUninitializedArray<byte>((int)expected);
        DecodedFile.ReadExactly(path, s, data);
        return (data, dims);
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

/// <summary>
/// The decoded content of a data file: the bytes as they are, or decompressed when the file starts with the gzip magic
/// bytes <c>1f 8b</c>. A gzip file is decompressed twice, first only to count its bytes, so that readers can check what
/// a header claims against the real length before allocating anything for it.
/// </summary>
internal static class DecodedFile
{
    /// <summary>Whether <paramref name="path"/> starts with the gzip magic bytes.</summary>
    public static bool IsGzip(string path)
    {
        using var f = Open(path, bufferSize: 1);
        Span<byte> magic = stackalloc byte[2];
        return f.ReadAtLeast(magic, 2, throwOnEndOfStream: false) == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    }

    /// <summary>The number of decoded bytes (the file's length, or the gzip stream's decompressed length).</summary>
    /// <exception cref="DataFormatException">No such file, or a corrupt or truncated gzip stream.</exception>
    public static long DecodedLength(string path)
    {
        if (!IsGzip(path)) return new FileInfo(path).Length;
        var scratch = System.Buffers.ArrayPool<byte>.Shared.Rent(1 << 16);
        try
        {
            using var s = OpenDecoded(path);
            long total = 0;
            int n;
            while ((n = Read(path, s, scratch)) > 0) total += n;
            return total;
        }
        finally { System.Buffers.ArrayPool<byte>.Shared.Return(scratch); }
    }

    /// <summary>A stream of the decoded bytes.</summary>
    /// <exception cref="DataFormatException">No such file.</exception>
    public static Stream OpenDecoded(string path)
    {
        bool gzip = IsGzip(path);
        var f = Open(path, bufferSize: 1);   // unbuffered: callers read large spans, GZipStream has its own buffer
        return gzip ? new GZipStream(f, CompressionMode.Decompress) : f;
    }

    /// <summary>Fills <paramref name="into"/> from <paramref name="s"/>; an early end or a gzip error is a <see cref="DataFormatException"/>.</summary>
    public static void ReadExactly(string path, Stream s, Span<byte> into)
    {
        while (into.Length > 0)
        {
            int n = Read(path, s, into);
            if (n == 0) throw new DataFormatException(path, $"truncated: the data ended {into.Length} bytes early (the file changed while it was read?)");
            into = into[n..];
        }
    }

    /// <summary>One read, with gzip errors turned into <see cref="DataFormatException"/>.</summary>
    public static int Read(string path, Stream s, Span<byte> into)
    {
        try { return s.Read(into); }
        catch (InvalidDataException e) { throw new DataFormatException(path, $"corrupt or truncated gzip stream ({e.Message})", e); }
        catch (EndOfStreamException e) { throw new DataFormatException(path, "truncated gzip stream", e); }
    }

    private static FileStream Open(string path, int bufferSize)
    {
        try { return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize); }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new DataFormatException(path, "file not found", e);
        }
    }
}
