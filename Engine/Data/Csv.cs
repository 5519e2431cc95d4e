using System.Globalization;
using System.IO.Compression;
using System.Text;

namespace GpuNet.Data;

/// <summary>
/// Reader of numeric CSV files: comma-separated, one sample per line, features then an integer class label in the
/// last column; raw or gzip-compressed (detected by the magic bytes <c>1f 8b</c>). Two layouts: no header (sklearn's
/// <c>digits.csv.gz</c>), or sklearn's header line <c>n_samples,n_features,class names...</c> (<c>iris.csv</c>,
/// <c>breast_cancer.csv</c>, <c>wine_data.csv</c>), whose counts are checked against the rows. Every row must have the
/// same number of cells (a ragged row names its line number), and every cell must be a number.
/// </summary>
public static class Csv
{
    /// <summary>
    /// Reads a headerless file of <paramref name="features"/> numbers then a label per line, as a classification data
    /// set with features of shape (<paramref name="features"/>) multiplied by <paramref name="scale"/>.
    /// </summary>
    /// <exception cref="DataFormatException">Ragged row, non-numeric cell, non-integer or out-of-range label, no rows.</exception>
    public static Dataset ReadLabelled(string path, string name, int features, int classCount, float scale = 1f)
        => ReadLabelled(ReadContent(path), path, name, features, classCount, scale);

    /// <summary>As <see cref="ReadLabelled(string, string, int, int, float)"/> from a stream; <paramref name="displayName"/> names it in errors.</summary>
    public static Dataset ReadLabelled(Stream stream, string displayName, string name, int features, int classCount, float scale = 1f)
    {
        ArgumentNullException.ThrowIfNull(stream);
        return ReadLabelled(ReadContent(stream, displayName), displayName, name, features, classCount, scale);
    }

    private static Dataset ReadLabelled(byte[] text, string path, string name, int features, int classCount, float scale)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(features, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(classCount, 1);
        var (x, y) = ReadRows(text, 0, path, features, classCount, firstLine: 1);
        if (scale != 1f) for (int i = 0; i < x.Length; i++) x[i] *= scale;
        return Dataset.Wrap(name, x, [features], y, classCount, null, [1], ClassNames(classCount));
    }

    /// <summary>
    /// Reads an sklearn data file whose first line is <c>n_samples,n_features,class names...</c>: the row count and
    /// the column count are checked against the header, labels against the number of class names.
    /// </summary>
    /// <exception cref="DataFormatException">Bad header, count mismatch, ragged row, non-numeric cell, label out of range.</exception>
    public static Dataset ReadSklearn(string path, string name)
    {
        var text = ReadContent(path);
        int end = LineEnd(text, 0);
        if (text.Length == 0) throw new DataFormatException(path, "empty file: expected a header line n_samples,n_features,class names...");
        string header = Encoding.UTF8.GetString(text.AsSpan(0, end)).TrimEnd('\r');
        var cells = header.Split(',');
        if (cells.Length < 3 || !int.TryParse(cells[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out int samples) || samples < 1
            || !int.TryParse(cells[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out int features) || features < 1
            || features == int.MaxValue)
            throw new DataFormatException(path, $"line 1: bad header '{Truncate(header)}', expected n_samples,n_features,class names... (counts in [1, {int.MaxValue - 1}], at least one class)");
        var classNames = cells[2..].Select(c => c.Trim()).ToArray();
        var (x, y) = ReadRows(text, Math.Min(end + 1, text.Length), path, features, classNames.Length, firstLine: 2);
        if (y.Length != samples)
            throw new DataFormatException(path, $"count mismatch: the header says {samples} samples, the file holds {y.Length} rows");
        return Dataset.Wrap(name, x, [features], y, classNames.Length, null, [1], classNames);
    }

    private static string[] ClassNames(int classCount) => Enumerable.Range(0, classCount).Select(c => c.ToString(CultureInfo.InvariantCulture)).ToArray();

    // The decoded bytes: nothing is allocated from counts a header claims; the arrays are sized by a first pass over the rows.
    private static byte[] ReadContent(string path)
    {
        long length = DecodedFile.DecodedLength(path);
        if (length > Array.MaxLength) throw new DataFormatException(path, $"the decoded file has {length} bytes, more than {Array.MaxLength}");
        var text = GC.AllocateUninitializedArray<byte>((int)length);
        using var s = DecodedFile.OpenDecoded(path);
        DecodedFile.ReadExactly(path, s, text);
        return text;
    }

    private static byte[] ReadContent(Stream stream, string displayName)
    {
        var raw = new MemoryStream();
        stream.CopyTo(raw);
        if (raw.Length < 2 || raw.GetBuffer()[0] != 0x1f || raw.GetBuffer()[1] != 0x8b) return raw.ToArray();
        raw.Position = 0;
        var text = new MemoryStream();
        try
        {
            using var gz = new GZipStream(raw, CompressionMode.Decompress);
            gz.CopyTo(text);
        }
        catch (InvalidDataException e) { throw new DataFormatException(displayName, $"corrupt or truncated gzip stream ({e.Message})", e); }
        return text.ToArray();
    }

    private static int LineEnd(byte[] text, int from)
    {
        int i = Array.IndexOf(text, (byte)'\n', from);
        return i < 0 ? text.Length : i;
    }

    // Rows of `features` numbers then a label, from byte `start`; `firstLine` is the file line number of the first row.
    // Two passes: the first checks every row and counts them, the second fills arrays of exactly the right size.
    private static (float[] X, int[] Y) ReadRows(byte[] text, int start, string path, int features, int classCount, int firstLine)
    {
        int rows = Scan(text, start, path, features, classCount, firstLine, null, null);
        if (rows == 0) throw new DataFormatException(path, "no data rows");
        if ((long)rows * features > Array.MaxLength)
            throw new DataFormatException(path, $"{rows} rows of {features} features exceed the {Array.MaxLength} elements of an array");
        var x = GC.AllocateUninitializedArray<float>(rows * features);
        var y = new int[rows];
        Scan(text, start, path, features, classCount, firstLine, x, y);
        return (x, y);
    }

    private static int Scan(byte[] text, int start, string path, int features, int classCount, int firstLine, float[]? x, int[]? y)
    {
        int line = firstLine - 1, rows = 0;
        long columns = (long)features + 1;
        int at = start;
        while (at < text.Length)
        {
            int end = LineEnd(text, at);
            var span = text.AsSpan(at, end - at);
            at = end + 1;
            line++;
            if (span.Length > 0 && span[^1] == (byte)'\r') span = span[..^1];
            if (span.Length == 0)
            {
                if (at >= text.Length) break;   // a final empty line
                throw new DataFormatException(path, $"line {line}: empty line inside the data");
            }
            long cell = 0;
            foreach (var range in span.Split((byte)','))
            {
                if (cell >= columns) { cell++; continue; }
                var token = span[range].Trim(" \t"u8);
                if (!TryParseNumber(token, out double v))
                    throw new DataFormatException(path, $"line {line}, column {cell + 1}: '{Truncate(Encoding.UTF8.GetString(token[..Math.Min(token.Length, 64)]))}' is not a finite number");
                if (cell < features)
                {
                    if (!float.IsFinite((float)v))
                        throw new DataFormatException(path, $"line {line}, column {cell + 1}: {v:R} overflows float32");
                    if (x is not null) x[(long)rows * features + cell] = (float)v;
                }
                else
                {
                    if (v != Math.Floor(v) || v < 0 || v >= classCount)
                        throw new DataFormatException(path, $"line {line}: label out of range: {Encoding.UTF8.GetString(token[..Math.Min(token.Length, 64)])}, expected an integer in 0..{classCount - 1}");
                    if (y is not null) y[rows] = (int)v;
                }
                cell++;
            }
            if (cell != columns)
                throw new DataFormatException(path, $"line {line}: ragged row with {cell} cells, expected {columns} ({features} features and a label)");
            rows++;
        }
        return rows;
    }

    // Small non-negative integers (pixel values, labels: most cells) without the general parser, which costs ~10x more.
    private static bool TryParseNumber(ReadOnlySpan<byte> token, out double v)
    {
        if (token.Length is > 0 and <= 9)
        {
            int x = 0, i = 0;
            for (; i < token.Length && (uint)(token[i] - '0') <= 9; i++) x = x * 10 + (token[i] - '0');
            if (i == token.Length) { v = x; return true; }
        }
        return double.TryParse(token, NumberStyles.Float, CultureInfo.InvariantCulture, out v) && double.IsFinite(v);
    }

    private static string Truncate(string s) => s.Length <= 40 ? s : s[..40] + "...";
}
