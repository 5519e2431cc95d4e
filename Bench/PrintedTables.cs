using System.Text.Json.Nodes;

namespace GpuNet.Bench;

/// <summary>
/// The tables a command printed with <see cref="TextTable"/>: a header line, a line of dash runs separated by two
/// spaces (the column extents), then rows up to a blank line or the end.
/// </summary>
internal sealed record PrintedTables(IReadOnlyList<string> Columns, IReadOnlyList<IReadOnlyList<string>> Rows)
{
    public static List<PrintedTables> Parse(string text)
    {
        var lines = text.Replace("\r", "", StringComparison.Ordinal).Split('\n');
        var tables = new List<PrintedTables>();
        for (int i = 1; i < lines.Length; i++)
        {
            string rule = lines[i].TrimEnd();
            if (rule.Length == 0 || rule[0] != '-' || rule.Any(ch => ch is not ('-' or ' ')) || rule.Contains("   ", StringComparison.Ordinal)) continue;
            var spans = new List<(int Start, int Length)>();
            for (int p = 0; p < rule.Length;)
            {
                int start = p;
                while (p < rule.Length && rule[p] == '-') p++;
                spans.Add((start, p - start));
                while (p < rule.Length && rule[p] == ' ') p++;
            }
            string[] Cells(string line) => [.. spans.Select(s => s.Start >= line.Length ? "" : line.Substring(s.Start, Math.Min(s.Length, line.Length - s.Start)).Trim())];
            var rows = new List<IReadOnlyList<string>>();
            int r = i + 1;
            for (; r < lines.Length && lines[r].Trim().Length > 0; r++) rows.Add(Cells(lines[r]));
            tables.Add(new PrintedTables(Cells(lines[i - 1]), rows));
            i = r;
        }
        return tables;
    }

    public JsonObject ToJson() => new()
    {
        ["columns"] = new JsonArray([.. Columns.Select(c => (JsonNode)JsonValue.Create(c))]),
        ["rows"] = new JsonArray([.. Rows.Select(r => (JsonNode)new JsonArray([.. r.Select(c => (JsonNode)JsonValue.Create(c))]))]),
    };
}
