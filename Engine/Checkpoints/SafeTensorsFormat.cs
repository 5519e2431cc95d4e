using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace GpuNet.Checkpoints;

/// <summary>
/// The safetensors layout (huggingface/safetensors): an 8-byte little-endian header length N, N bytes of UTF-8 JSON
/// <c>{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {string: string}}</c> padded with
/// spaces to a multiple of 8, then the raw little-endian tensor bytes, offsets relative to the start of that data.
/// The reader checks what the reference implementation checks (offsets contiguous, in range, matching shape and
/// dtype, the data fully covered) and names the tensor and the numbers when something does not hold.
/// </summary>
internal static partial class SafeTensorsFormat
{
    public const string MetadataKey = "__metadata__";
    /// <summary>The reference implementation refuses headers over 100 MB.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Writes the header and data of <paramref name="tensors"/>, in that order, to <paramref name="stream"/>.</summary>
    public static void Write(Stream stream, IReadOnlyList<CheckpointTensor> tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("safetensors writing needs a little-endian machine");
        var names = new HashSet<string>();
        foreach (var t in tensors)
            if (!names.Add(t.Name)) throw new ArgumentException($"two tensors are named '{t.Name}'", nameof(tensors));
        var header = new MemoryStream();
        using (var w = new Utf8JsonWriter(header, WriterOptions))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject(MetadataKey);
                foreach (var (k, v) in metadata) w.WriteString(k, v);
                w.WriteEndObject();
            }
            long at = 0;
            foreach (var t in tensors)
            {
                w.WriteStartObject(t.Name);
                w.WriteString("dtype", t.FileDType);
                w.WriteStartArray("shape");
                foreach (int d in t.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(at);
                w.WriteNumberValue(at + t.ByteLength);
                w.WriteEndArray();
                w.WriteEndObject();
                at += t.ByteLength;
            }
            w.WriteEndObject();
        }
        int pad = (int)((8 - header.Length % 8) % 8);
        for (int i = 0; i < pad; i++) header.WriteByte((byte)' ');
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
        stream.Write(len);
        header.Position = 0;
        header.CopyTo(stream);
        foreach (var t in tensors) stream.Write(t.Bytes);
    }

    /// <summary>
    /// Writes atomically and durably: a temporary file in the same directory, flushed and fsynced, renamed over
    /// <paramref name="path"/>, then the directory fsynced so that the rename itself survives a power loss. A crash at
    /// any moment leaves either the previous file or the new one, never a mix. Any failure deletes the temporary file
    /// and leaves an existing file untouched. <paramref name="wrap"/> (tests) wraps the file stream.
    /// </summary>
    public static void WriteAtomic(string path, Func<IReadOnlyList<CheckpointTensor>> tensors, IReadOnlyDictionary<string, string>? metadata,
        Func<Stream, Stream>? wrap = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full) ?? throw new ArgumentException($"'{path}' has no directory", nameof(path));
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"checkpoint '{path}': directory '{dir}' does not exist");
        string temp = Path.Combine(dir, $"{TempPrefix(full)}{Guid.NewGuid():N}.tmp");
        var delay = WriteDelay;
        try
        {
            using (var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                var s = wrap is null ? fs : wrap(fs);
                if (delay > TimeSpan.Zero) s = new DelayedStream(s, delay);
                Write(s, tensors(), metadata);
                s.Flush();
                fs.Flush(flushToDisk: true);
            }
            if (delay > TimeSpan.Zero) Thread.Sleep(delay);
            File.Move(temp, full, overwrite: true);
            FsyncDirectory(dir);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    /// <summary>The name prefix of <see cref="WriteAtomic"/>'s temporary files for <paramref name="fullPath"/> (<c>.last.safetensors.</c>).</summary>
    public static string TempPrefix(string fullPath) => $".{Path.GetFileName(fullPath)}.";

    /// <summary>
    /// Crash tests only (set by Bench's hidden <c>checkpoint-child</c> command): each atomic write sleeps this long after
    /// its first bytes and again between the fsynced temporary file and the rename, so that a kill lands inside writes.
    /// </summary>
    internal static TimeSpan WriteDelay { get; set; }

    /// <summary>fsync of a directory (Linux, macOS): makes a rename inside it durable. A no-op on Windows, where NTFS journals renames.</summary>
    internal static void FsyncDirectory(string dir)
    {
        if (OperatingSystem.IsWindows()) return;
        int fd = Native.Open(dir, 0 /* O_RDONLY */);
        if (fd < 0) throw new IOException($"cannot open directory '{dir}' to fsync it (errno {Marshal.GetLastPInvokeError()})");
        try
        {
            if (Native.Fsync(fd) != 0) throw new IOException($"fsync of directory '{dir}' failed (errno {Marshal.GetLastPInvokeError()})");
        }
        finally { Native.Close(fd); }
    }

    private static partial class Native
    {
        [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        public static partial int Open(string path, int flags);

        [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
        public static partial int Fsync(int fd);

        [LibraryImport("libc", EntryPoint = "close")]
        public static partial int Close(int fd);
    }

    /// <summary>Sleeps once, after the first write: a kill during the delay leaves a partly written temporary file.</summary>
    private sealed class DelayedStream(Stream inner, TimeSpan delay) : Stream
    {
        private bool _slept;
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => inner.Length;
        public override long Position { get => inner.Position; set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override void Write(ReadOnlySpan<byte> buffer)
        {
            inner.Write(buffer);
            if (_slept) return;
            _slept = true;
            inner.Flush();
            Thread.Sleep(delay);
        }
    }

    /// <summary>
    /// Reads and validates a whole file. The header is read and checked first; each tensor's array is allocated only
    /// after its shape, dtype and offsets have been checked against the file's length, and is filled straight from the
    /// file, so a header that claims more than the file holds allocates nothing for it.
    /// </summary>
    public static (List<CheckpointTensor> Tensors, Dictionary<string, string> Metadata, long HeaderLength) Read(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("safetensors reading needs a little-endian machine");
        if (!File.Exists(path)) throw new FileNotFoundException($"checkpoint '{path}' does not exist", path);
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1);
        long fileLength = fs.Length;
        if (fileLength < 8)
            throw Fail(path, $"truncated: the file has {fileLength} bytes, fewer than the 8-byte header length that starts a safetensors file");
        Span<byte> len = stackalloc byte[8];
        ReadExactly(path, fs, len);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(len);
        if (n > (ulong)(fileLength - 8))
            throw Fail(path, $"header length {n} is larger than the file: {fileLength} bytes, {(n > long.MaxValue - 8 ? "more" : (n + 8).ToString())} needed (truncated or not a safetensors file)");
        if (n > MaxHeaderBytes) throw Fail(path, $"header length {n} exceeds the {MaxHeaderBytes}-byte limit of the format");
        int headerLength = (int)n;
        // The header lives in a pooled buffer only while it is parsed: a header length that swallows the file costs no allocation.
        var header = System.Buffers.ArrayPool<byte>.Shared.Rent(headerLength);
        List<(string Name, string DType, int Size, int[] Shape, long Begin, long End)> infos;
        Dictionary<string, string> metadata;
        try
        {
            ReadExactly(path, fs, header.AsSpan(0, headerLength));
            (infos, metadata) = ParseHeader(path, new ReadOnlyMemory<byte>(header, 0, headerLength), fileLength - 8 - headerLength);
        }
        finally { System.Buffers.ArrayPool<byte>.Shared.Return(header); }
        long dataStart = 8 + headerLength;
        var tensors = new List<CheckpointTensor>(infos.Count);
        foreach (var t in infos)
        {
            fs.Position = dataStart + t.Begin;
            tensors.Add(Decode(path, fs, t.Name, t.DType, t.Shape));
        }
        return (tensors, metadata, headerLength);
    }

    private static CheckpointException Fail(string path, string problem, Exception? inner = null) => new(path, problem, inner);

    private static int FirstInvalidUtf8(ReadOnlySpan<byte> s)
    {
        int at = 0;
        Span<char> chars = stackalloc char[256];
        while (at < s.Length)
        {
            var status = System.Text.Unicode.Utf8.ToUtf16(s[at..], chars, out int read, out _, replaceInvalidSequences: false, isFinalBlock: true);
            if (status is System.Buffers.OperationStatus.InvalidData or System.Buffers.OperationStatus.NeedMoreData) return at + read;
            at += read;
            if (status == System.Buffers.OperationStatus.Done) break;
        }
        return Math.Min(at, s.Length - 1);
    }

    private static void ReadExactly(string path, Stream s, Span<byte> into)
    {
        int got = s.ReadAtLeast(into, into.Length, throwOnEndOfStream: false);
        if (got != into.Length) throw Fail(path, $"truncated: expected {into.Length} more bytes at offset {s.Position - got}, the file ended after {got} (it changed while it was read?)");
    }

    // The tensors' entries in data order, checked against a data section of `dataLength` bytes, and the metadata.
    private static (List<(string Name, string DType, int Size, int[] Shape, long Begin, long End)>, Dictionary<string, string>) ParseHeader(
        string path, ReadOnlyMemory<byte> header, long dataLength)
    {
        // A syntax check first, which allocates nothing: JsonDocument's row table is sized by the header's length.
        if (!System.Text.Unicode.Utf8.IsValid(header.Span))
        {
            int at = FirstInvalidUtf8(header.Span);
            throw Fail(path, $"the JSON header ({header.Length} bytes) is not valid UTF-8: invalid sequence at byte {at} (0x{header.Span[at]:x2})");
        }
        try
        {
            var reader = new Utf8JsonReader(header.Span);
            while (reader.Read()) { }
        }
        catch (JsonException e) { throw Fail(path, $"invalid JSON header ({header.Length} bytes): {e.Message}", e); }
        JsonDocument doc;
        try { doc = JsonDocument.Parse(header); }
        catch (JsonException e) { throw Fail(path, $"invalid JSON header ({header.Length} bytes): {e.Message}", e); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw Fail(path, $"the JSON header must be an object, found {doc.RootElement.ValueKind}");
            var metadata = new Dictionary<string, string>();
            var infos = new List<(string Name, string DType, int Size, int[] Shape, long Begin, long End)>();
            var seen = new HashSet<string>();
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (!seen.Add(p.Name)) throw Fail(path, $"the header names '{p.Name}' twice");
                if (p.Name == MetadataKey)
                {
                    if (p.Value.ValueKind != JsonValueKind.Object) throw Fail(path, $"{MetadataKey} must be an object of strings, found {p.Value.ValueKind}");
                    foreach (var m in p.Value.EnumerateObject())
                    {
                        if (m.Value.ValueKind != JsonValueKind.String)
                            throw Fail(path, $"{MetadataKey} value of '{m.Name}' must be a string, found {m.Value.ValueKind}");
                        if (!metadata.TryAdd(m.Name, m.Value.GetString()!)) throw Fail(path, $"{MetadataKey} names '{m.Name}' twice");
                    }
                    continue;
                }
                infos.Add(ParseInfo(path, p));
            }

            foreach (var t in infos)
            {
                if (t.End > dataLength)
                    throw Fail(path, $"tensor '{t.Name}': data_offsets [{t.Begin}, {t.End}] lie outside the data section of {dataLength} bytes (truncated file?)");
                long need = ShapeUtil.Count(t.Shape) * t.Size;
                if (t.End - t.Begin != need)
                    throw Fail(path, $"tensor '{t.Name}': data_offsets [{t.Begin}, {t.End}] hold {t.End - t.Begin} bytes, shape {ShapeUtil.Format(t.Shape)} of {t.DType} needs {need}");
            }
            var ordered = infos.OrderBy(t => t.Begin).ThenBy(t => t.End).ToList();
            long at = 0;
            string? previous = null;
            foreach (var t in ordered)
            {
                if (t.Begin < at)
                    throw Fail(path, $"tensor '{t.Name}': data_offsets [{t.Begin}, {t.End}] overlap tensor '{previous}', which ends at {at}");
                if (t.Begin > at)
                    throw Fail(path, $"tensor '{t.Name}': data_offsets [{t.Begin}, {t.End}] leave a gap after byte {at} (tensors must be contiguous)");
                at = t.End;
                previous = t.Name;
            }
            if (at != dataLength)
                throw Fail(path, $"the tensors cover {at} bytes of data but the data section has {dataLength} (trailing bytes)");
            return (ordered, metadata);
        }
    }

    private static (string, string, int, int[], long, long) ParseInfo(string path, JsonProperty p)
    {
        string name = p.Name;
        if (name.Length == 0) throw Fail(path, "a tensor has an empty name");
        var v = p.Value;
        if (v.ValueKind != JsonValueKind.Object) throw Fail(path, $"tensor '{name}': entry must be an object, found {v.ValueKind}");
        if (!v.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String)
            throw Fail(path, $"tensor '{name}': missing or non-string \"dtype\"");
        string dtype = dt.GetString()!;
        int size = dtype switch
        {
            "F32" or "I32" => 4,
            "F16" or "BF16" => 2,
            "F64" or "I64" => 8,
            _ => throw Fail(path, $"tensor '{name}': unsupported dtype '{dtype}' (supported: F32, I32; converted on read: F16, BF16, F64 to float32, I64 to int32)"),
        };
        if (!v.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array)
            throw Fail(path, $"tensor '{name}': missing or non-array \"shape\"");
        var shape = new int[sh.GetArrayLength()];
        int i = 0;
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt32(out int dim) || dim < 0)
                throw Fail(path, $"tensor '{name}': shape entry {i} ({d.GetRawText()}) is not an integer in [0, {int.MaxValue}]");
            shape[i++] = dim;
        }
        long count = 1;
        foreach (int dim in shape)
            if (dim != 0 && count > long.MaxValue / 8 / dim) throw Fail(path, $"tensor '{name}': shape {ShapeUtil.Format(shape)} is too large");
            else count *= dim;
        if (count > Array.MaxLength) throw Fail(path, $"tensor '{name}': shape {ShapeUtil.Format(shape)} holds {count} elements, more than an array can");
        if (!v.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw Fail(path, $"tensor '{name}': \"data_offsets\" must be an array of two integers [begin, end]");
        var o = off.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out long x) && x >= 0 ? x : -1).ToArray();
        if (o[0] < 0 || o[1] < 0)
            throw Fail(path, $"tensor '{name}': data_offsets {off.GetRawText()} must be non-negative integers");
        if (o[1] < o[0]) throw Fail(path, $"tensor '{name}': data_offsets [{o[0]}, {o[1]}] end before they begin");
        return (name, dtype, size, shape, o[0], o[1]);
    }

    // Reads one tensor's bytes from `s` (positioned at its data) into an array of its element count, converting as it goes.
    private static CheckpointTensor Decode(string path, Stream s, string name, string dtype, int[] shape)
    {
        int n = (int)ShapeUtil.Count(shape);
        switch (dtype)
        {
            case "F32":
            {
                var f = GC.AllocateUninitializedArray<float>(n);
                ReadExactly(path, s, MemoryMarshal.AsBytes(f.AsSpan()));
                return CheckpointTensor.FromFile(name, dtype, shape, f, null);
            }
            case "I32":
            {
                var v = GC.AllocateUninitializedArray<int>(n);
                ReadExactly(path, s, MemoryMarshal.AsBytes(v.AsSpan()));
                return CheckpointTensor.FromFile(name, dtype, shape, null, v);
            }
            case "I64":
            {
                var v = GC.AllocateUninitializedArray<int>(n);
                Convert(path, s, n, 8, (src, i) =>
                {
                    long x = BinaryPrimitives.ReadInt64LittleEndian(src);
                    if (x < int.MinValue || x > int.MaxValue)
                        throw Fail(path, $"tensor '{name}': I64 element {i} = {x} does not fit in int32");
                    v[i] = (int)x;
                });
                return CheckpointTensor.FromFile(name, dtype, shape, null, v);
            }
            default:   // F16, BF16, F64
            {
                var f = GC.AllocateUninitializedArray<float>(n);
                switch (dtype)
                {
                    case "F16": Convert(path, s, n, 2, (src, i) => f[i] = (float)BitConverter.UInt16BitsToHalf(BinaryPrimitives.ReadUInt16LittleEndian(src))); break;
                    case "BF16": Convert(path, s, n, 2, (src, i) => f[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(src) << 16)); break;
                    default: Convert(path, s, n, 8, (src, i) => f[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(src)); break;
                }
                return CheckpointTensor.FromFile(name, dtype, shape, f, null);
            }
        }
    }

    private delegate void ElementReader(ReadOnlySpan<byte> source, int index);

    // Streams `count` elements of `size` bytes through a pooled buffer, calling `read` on each.
    private static void Convert(string path, Stream s, int count, int size, ElementReader read)
    {
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(1 << 16);
        try
        {
            int perChunk = buffer.Length / size;
            for (int i = 0; i < count; i += perChunk)
            {
                int m = Math.Min(perChunk, count - i);
                var chunk = buffer.AsSpan(0, m * size);
                ReadExactly(path, s, chunk);
                for (int j = 0; j < m; j++) read(chunk.Slice(j * size, size), i + j);
            }
        }
        finally { System.Buffers.ArrayPool<byte>.Shared.Return(buffer); }
    }

    /// <summary>UTF-8 text of a JSON value written by <paramref name="write"/>.</summary>
    public static string Json(Action<Utf8JsonWriter> write)
    {
        var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, WriterOptions)) write(w);
        return Encoding.UTF8.GetString(ms.ToArray());
    }
}
