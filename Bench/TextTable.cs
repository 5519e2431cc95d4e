namespace GpuNet.Bench;

/// <summary>A plain-text table: columns padded to their widest cell, numbers right-aligned.</summary>
internal sealed class TextTable(params string[] headers)
{
    private readonly List<string[]> _rows = [];

    public void Add(params string[] cells)
    {
        if (cells.Length != headers.Length) throw new ArgumentException($"row has {cells.Length} cells, the table {headers.Length} columns", nameof(cells));
        _rows.Add(cells);
    }

    public void Write(TextWriter w)
    {
        var widths = headers.Select((h, i) => _rows.Select(r => r[i].Length).Append(h.Length).Max()).ToArray();
        bool[] numeric = headers.Select((_, i) => _rows.Count > 0 && _rows.All(r => IsNumber(r[i]))).ToArray();
        string Line(string[] cells) => string.Join("  ", cells.Select((c, i) => numeric[i] ? c.PadLeft(widths[i]) : c.PadRight(widths[i]))).TrimEnd();
        w.WriteLine(Line(headers));
        w.WriteLine(string.Join("  ", widths.Select(x => new string('-', x))));
        foreach (var r in _rows) w.WriteLine(Line(r));
    }

    private static bool IsNumber(string s) => s.Length > 0 && (char.IsDigit(s[0]) || s[0] == '-' && s.Length > 1) && s.TrimEnd('%', 'x').All(c => char.IsDigit(c) || c is '.' or ',' or '-');
}
