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
    {
        using var stream = OpenFile(path);
        return ReadLabelled(stream, path, name, features, classCount, scale);
    }

    /// <summary>As <see cref="ReadLabelled(string, string, int, int, float)"/> from a stream; <paramref name="displayName"/> names it in errors.</summary>
    public static Dataset ReadLabelled(Stream stream, string displayName, string name, int features, int classCount, float scale = 1f)
    {
        using var reader = Open(stream, displayName);
        var (x, y, _) = ReadRows(reader, displayName, features, classCount, firstLine: 1);
        if (scale != 1f) for (int i = 0; i < x.Length; i++) x[i] *= scale;
        return Dataset.Classification(name, x, [features], y, classCount);
    }

    /// <summary>
    /// Reads an sklearn data file whose first line is <c>n_samples,n_features,class names...</c>: the row count and
    /// the column count are checked against the header, labels against the number of class names.
    /// </summary>
    /// <exception cref="DataFormatException">Bad header, count mismatch, ragged row, non-numeric cell, label out of range.</exception>
    public static Dataset ReadSklearn(string path, string name)
    {
        using var stream = OpenFile(path);
        using var reader = Open(stream, path);
        string? header = reader.ReadLine();
        if (header is null) throw new DataFormatException(path, "empty file: expected a header line n_samples,n_features,class names...");
        var cells = header.Split(',');
        if (cells.Length < 3 || !int.TryParse(cells[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out int samples) || samples < 1
            || !int.TryParse(cells[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out int features) || features < 1)
            throw new DataFormatException(path, $"line 1: bad header '{Truncate(header)}', expected n_samples,n_features,class names... (at least one class)");
        var classNames = cells[2..].Select(c => c.Trim()).ToArray();
        var (x, y, rows) = ReadRows(reader, path, features, classNames.Length, firstLine: 2);
        if (rows != samples)
            throw new DataFormatException(path, $"count mismatch: the header says {samples} samples, the file holds {rows} rows");
        return Dataset.Classification(name, x, [features], y, classNames.Length, classNames);
    }

    private static Stream OpenFile(string path)
    {
        try { return File.OpenRead(path); }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new DataFormatException(path, "file not found", e);
        }
    }

    private static StreamReader Open(Stream stream, string displayName)
    {
        var buffered = new BufferedStream(stream, 1 << 16);
        Span<byte> magic = stackalloc byte[2];
        int got = buffered.Read(magic);
        buffered.Seek(0, SeekOrigin.Begin);
        Stream s = got == 2 && magic[0] == 0x1f && magic[1] == 0x8b ? new GZipStream(buffered, CompressionMode.Decompress) : buffered;
        return new StreamReader(s, Encoding.UTF8);
    }

    // Rows of `features` numbers then a label; `firstLine` is the file line number of the first row read.
    private static (float[] X, int[] Y, int Rows) ReadRows(StreamReader reader, string path, int features, int classCount, int firstLine)
    {
        var x = new List<float>(1 << 16);
        var y = new List<int>(1 << 12);
        int line = firstLine - 1;
        int columns = features + 1;
        try
        {
            string? text;
            while ((text = reader.ReadLine()) is not null)
            {
                line++;
                if (text.Length == 0 || (text.Length == 1 && text[0] == '\r'))
                {
                    if (reader.Peek() < 0) break; // a final empty line
                    throw new DataFormatException(path, $"line {line}: empty line inside the data");
                }
                var span = text.AsSpan().TrimEnd('\r');
                int cell = 0;
                foreach (var range in span.Split(','))
                {
                    var token = span[range].Trim();
                    if (cell >= columns) { cell++; continue; }
                    if (!double.TryParse(token, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) || !double.IsFinite(v))
                        throw new DataFormatException(path, $"line {line}, column {cell + 1}: '{Truncate(token.ToString())}' is not a finite number");
                    if (cell < features) x.Add((float)v);
                    else
                    {
                        if (v != Math.Floor(v) || v < 0 || v >= classCount)
                            throw new DataFormatException(path, $"line {line}: label out of range: {token.ToString()}, expected an integer in 0..{classCount - 1}");
                        y.Add((int)v);
                    }
                    cell++;
                }
                if (cell != columns)
                    throw new DataFormatException(path, $"line {line}: ragged row with {cell} cells, expected {columns} ({features} features and a label)");
            }
        }
        catch (InvalidDataException e)
        {
            throw new DataFormatException(path, $"corrupt or truncated gzip stream after line {line} ({e.Message})", e);
        }
        if (y.Count == 0) throw new DataFormatException(path, "no data rows");
        return (x.ToArray(), y.ToArray(), y.Count);
    }

    private static string Truncate(string s) => s.Length <= 40 ? s : s[..40] + "...";
}
