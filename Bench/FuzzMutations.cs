using System.Buffers.Binary;
using System.Globalization;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace GpuNet.Bench;

/// <summary>
/// Mutations of a valid file: generic byte edits (bit flips, interesting bytes and integers, truncation, extension,
/// insertion, deletion, NaN/Inf payloads) and format-aware edits (safetensors header length and JSON header: dtypes,
/// absurd shapes, offsets, missing and duplicate keys, metadata; IDX magic and dimensions, gzip on and off; CSV cells,
/// labels, ragged rows, header counts). Each returns the new bytes and appends a description to the log, which is what a
/// crash sample prints.
/// </summary>
internal static class FuzzMutations
{
    private static readonly long[] InterestingInts =
        [0, 1, -1, 2, 7, 8, 255, 256, 65535, 65536, int.MaxValue, int.MinValue, (long)int.MaxValue + 1, uint.MaxValue,
         1_000_000_000_000, 1L << 40, long.MaxValue, long.MinValue, 100_000_001];

    private static readonly string[] DTypes = ["F32", "F16", "BF16", "F64", "I32", "I64", "I8", "U8", "BOOL", "F8_E4M3", "", "f32", "F32 "];

    private static readonly string[] CsvTokens =
        ["nan", "NaN", "inf", "-inf", "Infinity", "1e400", "-1e400", "1e-400", "3.5e38", "-3.5e38", "", " ", "x", "0x10", "--1", "1..2",
         "\"1\"", "١", "1e", "+", "-", ".", "1_000", "9999999999999999999999", "1,5", "\t", "\0", "é"];

    /// <summary>Applies one to three mutations chosen by <paramref name="rng"/>.</summary>
    public static byte[] Mutate(byte[] seed, FuzzKind kind, Random rng, StringBuilder log)
    {
        var b = seed;
        int count = 1 + rng.Next(3);
        for (int m = 0; m < count; m++)
        {
            if (m > 0) log.Append("; ");
            b = rng.Next(2) == 0 ? Generic(b, rng, log) : Aware(b, kind, rng, log);
        }
        return b;
    }

    private static byte[] Aware(byte[] b, FuzzKind kind, Random rng, StringBuilder log) => kind switch
    {
        FuzzKind.SafeTensors => SafeTensorsOrGeneric(b, rng, log),
        FuzzKind.Idx => Idx(b, rng, log),
        _ => CsvText(b, kind, rng, log),
    };

    // ---- generic byte edits ----------------------------------------------------------------------------------
    public static byte[] Generic(byte[] b, Random rng, StringBuilder log)
    {
        if (b.Length == 0) { log.Append("extend-empty"); return RandomBytes(rng, 1 + rng.Next(64)); }
        int at = HeadBiased(rng, b.Length);
        switch (rng.Next(9))
        {
            case 0:
            {
                var c = (byte[])b.Clone();
                int k = 1 + rng.Next(8);
                log.Append($"bitflip x{k} from {at}");
                for (int i = 0; i < k; i++) { int p = i == 0 ? at : rng.Next(c.Length); c[p] ^= (byte)(1 << rng.Next(8)); }
                return c;
            }
            case 1:
            {
                var c = (byte[])b.Clone();
                byte v = new byte[] { 0, 1, 0x7f, 0x80, 0xff, (byte)'{', (byte)'"', (byte)',', (byte)'\n' }[rng.Next(9)];
                log.Append($"byte {at} = 0x{v:x2}");
                c[at] = v;
                return c;
            }
            case 2:
            {
                int len = rng.Next(2) == 0 ? at : rng.Next(b.Length);
                log.Append($"truncate to {len}");
                return b[..len];
            }
            case 3:
            {
                int n = 1 + rng.Next(rng.Next(2) == 0 ? 16 : 4096);
                bool repeat = rng.Next(2) == 0;
                log.Append($"extend by {n} {(repeat ? "repeated" : "random")} bytes");
                var tail = repeat ? Enumerable.Range(0, n).Select(i => b[i % b.Length]).ToArray() : RandomBytes(rng, n);
                return [.. b, .. tail];
            }
            case 4:
            {
                int n = 1 + rng.Next(64);
                log.Append($"insert {n} bytes at {at}");
                return [.. b.AsSpan(0, at), .. RandomBytes(rng, n), .. b.AsSpan(at)];
            }
            case 5:
            {
                int n = 1 + rng.Next(Math.Min(256, b.Length - at));
                log.Append($"delete {n} bytes at {at}");
                return [.. b.AsSpan(0, at), .. b.AsSpan(at + n)];
            }
            case 6:
            {
                if (b.Length < 4) goto case 0;
                var c = (byte[])b.Clone();
                int p = Math.Min(at, c.Length - 4);
                long v = InterestingInts[rng.Next(InterestingInts.Length)];
                bool big = rng.Next(2) == 0;
                log.Append($"int32 {(big ? "BE" : "LE")} at {p} = {(int)v}");
                if (big) BinaryPrimitives.WriteInt32BigEndian(c.AsSpan(p), (int)v); else BinaryPrimitives.WriteInt32LittleEndian(c.AsSpan(p), (int)v);
                return c;
            }
            case 7:
            {
                if (b.Length < 8) goto case 0;
                var c = (byte[])b.Clone();
                int p = Math.Min(at, c.Length - 8);
                long v = InterestingInts[rng.Next(InterestingInts.Length)];
                log.Append($"int64 LE at {p} = {v}");
                BinaryPrimitives.WriteInt64LittleEndian(c.AsSpan(p), v);
                return c;
            }
            default:
            {
                if (b.Length < 8) goto case 0;
                var c = (byte[])b.Clone();
                int n = 1 + rng.Next(16);
                float v = new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity, float.Epsilon, float.MaxValue, -0f }[rng.Next(6)];
                log.Append($"{n} float32 payload(s) = {v.ToString(CultureInfo.InvariantCulture)} from the end");
                for (int i = 0; i < n; i++)
                {
                    int p = (c.Length - 4 - 4 * rng.Next(Math.Max(1, c.Length / 8))) & ~3;
                    if (p >= 0) BinaryPrimitives.WriteSingleLittleEndian(c.AsSpan(p), v);
                }
                return c;
            }
        }
    }

    // Half of the positions fall in the first 256 bytes, where the headers are.
    private static int HeadBiased(Random rng, int length) => rng.Next(2) == 0 ? rng.Next(Math.Min(256, length)) : rng.Next(length);

    private static byte[] RandomBytes(Random rng, int n)
    {
        var r = new byte[n];
        rng.NextBytes(r);
        return r;
    }

    // ---- safetensors ------------------------------------------------------------------------------------------
    // A header an earlier mutation broke (invalid UTF-8, duplicate keys) may only fail when a nested node is first read.
    private static byte[] SafeTensorsOrGeneric(byte[] b, Random rng, StringBuilder log)
    {
        int mark = log.Length;
        try { return SafeTensors(b, rng, log); }
        catch (Exception e) when (e is JsonException or ArgumentException or InvalidOperationException or FormatException)
        {
            log.Length = mark;
            return Generic(b, rng, log);
        }
    }

    private static byte[] SafeTensors(byte[] b, Random rng, StringBuilder log)
    {
        if (b.Length < 8) return Generic(b, rng, log);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(b);
        if (n > (ulong)(b.Length - 8)) return Generic(b, rng, log);
        if (rng.Next(6) == 0)
        {
            var c = (byte[])b.Clone();
            long[] choices = [(long)n - 1, (long)n + 1, (long)n - 8, (long)n + 8, 0, 2, b.Length, long.MaxValue, -1, 100_000_001];
            long v = choices[rng.Next(choices.Length)];
            log.Append($"header length = {v}");
            BinaryPrimitives.WriteInt64LittleEndian(c, v);
            return c;
        }
        var headerBytes = b.AsSpan(8, (int)n);
        var data = b.AsSpan(8 + (int)n);
        JsonObject header;
        try { header = JsonNode.Parse(headerBytes.ToArray()) as JsonObject ?? throw new JsonException(); _ = header.Count; }   // Count builds the lazy dictionary: duplicate keys throw here
        catch (Exception e) when (e is JsonException or ArgumentException or InvalidOperationException) { return Generic(b, rng, log); }
        var names = header.Select(kv => kv.Key).Where(k => k != "__metadata__").ToList();
        string text;
        switch (rng.Next(12))
        {
            case 0 when names.Count > 0:
            {
                string t = Pick(rng, names), d = Pick(rng, DTypes);
                log.Append($"tensor '{t}' dtype = '{d}'");
                header[t]!["dtype"] = d;
                break;
            }
            case 1 when names.Count > 0:
            {
                string t = Pick(rng, names);
                var shape = header[t]!["shape"] as JsonArray;
                JsonNode v = rng.Next(8) switch
                {
                    0 => JsonValue.Create(1_000_000_000_000L), 1 => JsonValue.Create(int.MaxValue), 2 => JsonValue.Create(-1), 3 => JsonValue.Create(0),
                    4 => JsonValue.Create(1.5), 5 => JsonValue.Create("8"), 6 => JsonValue.Create(65536), _ => JsonValue.Create(3_000_000_000L),
                };
                if (shape is null || shape.Count == 0 || rng.Next(4) == 0)
                {
                    log.Append($"tensor '{t}' shape gains a dimension {v.ToJsonString()}");
                    if (shape is null) header[t]!["shape"] = new JsonArray(v); else shape.Add(v);
                }
                else
                {
                    int i = rng.Next(shape.Count);
                    log.Append($"tensor '{t}' shape[{i}] = {v.ToJsonString()}");
                    shape[i] = v;
                }
                break;
            }
            case 2 when names.Count > 0:
            {
                string t = Pick(rng, names);
                var off = header[t]!["data_offsets"] as JsonArray;
                if (off is null || off.Count != 2) goto default;
                int i = rng.Next(2);
                long old = off[i]!.GetValue<long>();
                long[] choices = [old + 1, old - 1, old + 4, old * 2, 0, -1, long.MaxValue, 1L << 53, data.Length, data.Length + 4L];
                long v = choices[rng.Next(choices.Length)];
                log.Append($"tensor '{t}' data_offsets[{i}] = {v}");
                off[i] = v;
                break;
            }
            case 3 when names.Count > 0:
            {
                string t = Pick(rng, names);
                string[] fields = ["dtype", "shape", "data_offsets"];
                if (rng.Next(3) == 0) { log.Append($"remove tensor '{t}'"); header.Remove(t); }
                else { string f = Pick(rng, fields); log.Append($"tensor '{t}' loses \"{f}\""); (header[t] as JsonObject)?.Remove(f); }
                break;
            }
            case 4 when names.Count > 0:
            {
                // Duplicate keys cannot live in a JsonObject: splice the raw text.
                string t = Pick(rng, names);
                string entry = $"\"{t}\":{header[t]!.ToJsonString()}";
                string json = header.ToJsonString();
                log.Append($"duplicate key '{t}'");
                text = json.Insert(json.Length - 1, "," + entry);
                return Rebuild(text, data, rng, log);
            }
            case 5 when names.Count > 0:
            {
                string t = Pick(rng, names);
                string to = Pick(rng, ["", "__metadata__", t + ".x", Pick(rng, names), "optimizer.exp_avg", "fc1.weight"]);
                log.Append($"rename tensor '{t}' to '{to}'");
                var v = header[t]!;
                header.Remove(t);
                header[to] = v.DeepClone();
                break;
            }
            case 6:
            case 7:
            {
                var meta = header["__metadata__"] as JsonObject;
                if (meta is null || meta.Count == 0) goto default;
                string k = Pick(rng, meta.Select(kv => kv.Key).ToList());
                string value = meta[k] is JsonValue jv && jv.TryGetValue(out string? sv) ? sv : meta[k]?.ToJsonString() ?? "null";
                string nv = MutateText(value, rng, out string what);
                log.Append($"metadata '{k}': {what}");
                meta[k] = nv;
                break;
            }
            case 8:
            {
                var meta = header["__metadata__"] as JsonObject;
                if (meta is null || meta.Count == 0) { log.Append("metadata = 7"); header["__metadata__"] = 7; break; }
                string k = Pick(rng, meta.Select(kv => kv.Key).ToList());
                if (rng.Next(2) == 0) { log.Append($"metadata loses '{k}'"); meta.Remove(k); }
                else { log.Append($"metadata '{k}' = number"); meta[k] = 12; }
                break;
            }
            case 9:
            {
                log.Append("add tensor 'extra' of 10^12 F32 elements");
                header["extra"] = new JsonObject { ["dtype"] = "F32", ["shape"] = new JsonArray(1_000_000, 1_000_000), ["data_offsets"] = new JsonArray(data.Length, data.Length + 4_000_000_000_000L) };
                break;
            }
            case 10:
            {
                log.Append("header JSON text edit");
                text = Encoding.UTF8.GetString(Generic(Encoding.UTF8.GetBytes(header.ToJsonString()), rng, log));
                return Rebuild(text, data, rng, log);
            }
            default:
            {
                log.Append("header becomes ");
                JsonNode v = rng.Next(3) switch { 0 => new JsonArray(), 1 => JsonValue.Create("x"), _ => new JsonObject() };
                log.Append(v.ToJsonString());
                return Rebuild(v.ToJsonString(), data, rng, log);
            }
        }
        return Rebuild(header.ToJsonString(), data, rng, log);
    }

    private static byte[] Rebuild(string header, ReadOnlySpan<byte> data, Random rng, StringBuilder log)
    {
        bool pad = rng.Next(8) != 0;
        if (!pad) log.Append(" (unpadded)");
        return FuzzTarget.SafeTensorsBytes(Encoding.UTF8.GetBytes(header), data, pad);
    }

    // Metadata values are text (numbers, JSON): mutate them as JSON when they parse, else as text.
    private static string MutateText(string value, Random rng, out string what)
    {
        JsonNode? node = null;
        try { node = JsonNode.Parse(value); Collect(node, []); } catch (Exception e) when (e is JsonException or ArgumentException) { }
        if (node is JsonObject or JsonArray && rng.Next(4) != 0)
        {
            var leaves = new List<(JsonNode Parent, object Key)>();
            Collect(node, leaves);
            if (leaves.Count > 0)
            {
                var (parent, key) = leaves[rng.Next(leaves.Count)];
                JsonNode? v = rng.Next(9) switch
                {
                    0 => -1, 1 => 1_000_000_000_000L, 2 => int.MaxValue, 3 => "NaN", 4 => null, 5 => new JsonArray(), 6 => 1e308, 7 => "x", _ => new JsonObject(),
                };
                what = $"{KeyText(key)} = {v?.ToJsonString() ?? "null"}";
                if (parent is JsonObject o) { if (rng.Next(5) == 0) { o.Remove((string)key); what = $"{KeyText(key)} removed"; } else o[(string)key] = v; }
                else ((JsonArray)parent)[(int)key] = v;
                return node.ToJsonString();
            }
        }
        string nv = Pick(rng, ["", "-1", "0", "2", "999", "1e400", "NaN", "-0", "18446744073709551616", "x", "{", "[]", "1.5", value + value]);
        what = $"'{Short(value)}' -> '{Short(nv)}'";
        return nv;
    }

    private static string KeyText(object key) => key is int i ? $"[{i}]" : $".{key}";

    private static void Collect(JsonNode? node, List<(JsonNode, object)> leaves)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var (k, v) in o.ToList()) { leaves.Add((o, k)); Collect(v, leaves); }
                break;
            case JsonArray a:
                for (int i = 0; i < a.Count; i++) { leaves.Add((a, i)); Collect(a[i], leaves); }
                break;
        }
    }

    private static string Short(string s) => s.Length <= 24 ? s : s[..24] + "...";

    // ---- IDX ---------------------------------------------------------------------------------------------------
    private static byte[] Idx(byte[] b, Random rng, StringBuilder log)
    {
        bool gz = b.Length >= 2 && b[0] == 0x1f && b[1] == 0x8b;
        byte[] raw;
        if (gz)
        {
            try
            {
                using var s = new GZipStream(new MemoryStream(b), CompressionMode.Decompress);
                var ms = new MemoryStream();
                s.CopyTo(ms);
                raw = ms.ToArray();
            }
            catch (Exception e) when (e is InvalidDataException or EndOfStreamException) { return Generic(b, rng, log); }
        }
        else raw = b;
        if (rng.Next(6) == 0)
        {
            log.Append(gz ? "gunzip" : "gzip");
            return gz ? raw : FuzzTarget.Gzip(raw);
        }
        if (raw.Length < 8) return Generic(b, rng, log);
        raw = (byte[])raw.Clone();
        int rank = (raw.Length >= 4 ? raw[3] : 1) & 0xff;
        if (rng.Next(3) == 0)
        {
            int magic = Pick(rng, [2049, 2051, 2050, 0x0803, 0x0c03, 0x0801 | 0xff, 0, -1, 0x0d03]);
            log.Append($"magic = {magic}");
            BinaryPrimitives.WriteInt32BigEndian(raw, magic);
        }
        else
        {
            int d = rng.Next(Math.Max(1, Math.Min(rank, (raw.Length - 4) / 4)));
            int v = Pick(rng, [0, -1, 1, int.MaxValue, int.MinValue, 1_000_000, 65536, 46341, 99, 101, 10_000]);
            log.Append($"dimension {d} = {v}");
            BinaryPrimitives.WriteInt32BigEndian(raw.AsSpan(4 + 4 * d), v);
        }
        if (gz) log.Append(" (re-gzipped)");
        return gz ? FuzzTarget.Gzip(raw) : raw;
    }

    // ---- CSV ---------------------------------------------------------------------------------------------------
    private static byte[] CsvText(byte[] b, FuzzKind kind, Random rng, StringBuilder log)
    {
        bool gz = b.Length >= 2 && b[0] == 0x1f && b[1] == 0x8b;
        byte[] raw = b;
        if (gz)
        {
            try
            {
                using var s = new GZipStream(new MemoryStream(b), CompressionMode.Decompress);
                var ms = new MemoryStream();
                s.CopyTo(ms);
                raw = ms.ToArray();
            }
            catch (Exception e) when (e is InvalidDataException or EndOfStreamException) { return Generic(b, rng, log); }
        }
        var lines = Encoding.UTF8.GetString(raw).Split('\n').ToList();
        int first = kind == FuzzKind.SklearnCsv ? 1 : 0;
        if (lines.Count <= first + 1) return Generic(b, rng, log);
        int li = first + rng.Next(lines.Count - first - 1);
        var cells = lines[li].Split(',').ToList();
        switch (rng.Next(kind == FuzzKind.SklearnCsv ? 10 : 9))
        {
            case 0:
            {
                int c = rng.Next(cells.Count);
                string t = Pick(rng, CsvTokens);
                log.Append($"line {li + 1} cell {c + 1} = '{t}'");
                cells[c] = t;
                break;
            }
            case 1:
            {
                string t = Pick(rng, ["-1", "10", "3", "1.5", "1e10", "2147483648", "-0", "9.0", "1e-300"]);
                log.Append($"line {li + 1} label = '{t}'");
                cells[^1] = t;
                break;
            }
            case 2:
            {
                bool add = rng.Next(2) == 0 || cells.Count < 2;
                log.Append($"line {li + 1} {(add ? "gains" : "loses")} a cell");
                if (add) cells.Insert(rng.Next(cells.Count + 1), "1"); else cells.RemoveAt(rng.Next(cells.Count));
                break;
            }
            case 3:
                log.Append($"empty line before line {li + 1}");
                lines.Insert(li, "");
                return Pack(lines, gz, log);
            case 4:
                log.Append("CRLF line ends");
                return Pack(lines.Select(l => l.TrimEnd('\r') + "\r").ToList(), gz, log);
            case 5:
            {
                log.Append("UTF-8 BOM");
                var with = Encoding.UTF8.GetBytes("\uFEFF" + string.Join('\n', lines));
                return gz ? FuzzTarget.Gzip(with) : with;
            }
            case 6:
            {
                int n = 1 + rng.Next(2000);
                log.Append($"line {li + 1} repeated {n} times");
                lines.InsertRange(li, Enumerable.Repeat(lines[li], n));
                return Pack(lines, gz, log);
            }
            case 7:
            {
                int n = 1 + rng.Next(lines.Count - first);
                log.Append($"drop {n} lines from {li + 1}");
                lines.RemoveRange(li, Math.Min(n, lines.Count - li));
                return Pack(lines, gz, log);
            }
            case 8:
            {
                int n = 1 + rng.Next(100_000);
                log.Append($"line {li + 1} gains {n} cells");
                cells.AddRange(Enumerable.Repeat("0", n));
                break;
            }
            default:
            {
                var h = lines[0].TrimEnd('\r').Split(',').ToList();
                int c = rng.Next(Math.Min(3, h.Count));
                string t = Pick(rng, ["0", "-1", "2147483647", "2147483648", "1000000000000", "x", "", "151", "149", "5", "3"]);
                if (rng.Next(5) == 0 && h.Count > 2) { log.Append("header loses its class names"); h = h.Take(2).ToList(); }
                else { log.Append($"header cell {c + 1} = '{t}'"); h[c] = t; }
                lines[0] = string.Join(',', h);
                return Pack(lines, gz, log);
            }
        }
        lines[li] = string.Join(',', cells);
        return Pack(lines, gz, log);
    }

    private static byte[] Pack(List<string> lines, bool gz, StringBuilder log)
    {
        var raw = Encoding.UTF8.GetBytes(string.Join('\n', lines));
        if (gz) log.Append(" (re-gzipped)");
        return gz ? FuzzTarget.Gzip(raw) : raw;
    }

    private static T Pick<T>(Random rng, IReadOnlyList<T> items) => items[rng.Next(items.Count)];
}
