using System.Globalization;
using System.Text;
using System.Text.Json;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace GpuNet.Experiments;

/// <summary>The two spellings of a config file.</summary>
public enum ConfigFormat
{
    /// <summary>JSON (System.Text.Json; comments and trailing commas allowed).</summary>
    Json,
    /// <summary>YAML 1.1 (YamlDotNet).</summary>
    Yaml,
}

/// <summary>One problem found in a config: where (key path, e.g. <c>layers[3].out_features</c>, and line when known) and what.</summary>
/// <param name="Path">The key path from the root (<c>$</c> for the root itself).</param>
/// <param name="Message">What was expected and what was found.</param>
/// <param name="Line">1-based line in the file, or 0 when unknown (JSON values carry no line).</param>
public sealed record ConfigError(string Path, string Message, int Line = 0)
{
    /// <inheritdoc/>
    public override string ToString() => Line > 0 ? $"line {Line}: {Path}: {Message}" : $"{Path}: {Message}";
}

/// <summary>A config that cannot be used: every problem found, all at once, before any data is read.</summary>
public sealed class ConfigException : Exception
{
    /// <summary>Creates the exception for <paramref name="source"/> (a file name or a description of the text).</summary>
    public ConfigException(string source, IReadOnlyList<ConfigError> errors)
        : base($"{source}: {errors.Count} error(s) in the config:\n  " + string.Join("\n  ", errors))
    {
        Source = source;
        Errors = errors;
    }

    /// <summary>The file (or text) the config came from.</summary>
    public new string Source { get; }
    /// <summary>Every problem, in the order found.</summary>
    public IReadOnlyList<ConfigError> Errors { get; }
}

/// <summary>What a scalar looked like in the file; a JSON string or a quoted YAML scalar is always a string.</summary>
public enum ScalarKind
{
    /// <summary>Text.</summary>
    String,
    /// <summary>A number (JSON number, or a plain YAML scalar that parses as one).</summary>
    Number,
    /// <summary>true or false.</summary>
    Bool,
    /// <summary>null, <c>~</c> or an empty plain YAML scalar.</summary>
    Null,
}

/// <summary>
/// The format-neutral tree a JSON or YAML config is parsed into (maps keep their key order), so both formats go through
/// the same schema and give the same errors.
/// </summary>
public abstract record ConfigNode(int Line)
{
    /// <summary>A short description for "expected X, got Y" messages.</summary>
    public abstract string Describe();

    /// <summary>Parses <paramref name="text"/>; syntax errors become a <see cref="ConfigException"/> with the line.</summary>
    public static ConfigNode Parse(string text, ConfigFormat format, string source)
    {
        ArgumentNullException.ThrowIfNull(text);
        return format == ConfigFormat.Json ? ParseJson(text, source) : ParseYaml(text, source);
    }

    private static ConfigNode ParseJson(string text, string source)
    {
        try
        {
            using var doc = JsonDocument.Parse(text, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
            var errors = new List<ConfigError>();
            var node = FromJson(doc.RootElement, "$", errors);
            if (errors.Count > 0) throw new ConfigException(source, errors);
            return node;
        }
        catch (JsonException e)
        {
            int line = (int)(e.LineNumber ?? 0) + 1, col = (int)(e.BytePositionInLine ?? 0) + 1;
            throw new ConfigException(source, [new ConfigError("$", $"JSON syntax error at column {col}: {FirstSentence(e.Message)}", line)]);
        }
    }

    private static ConfigNode FromJson(JsonElement e, string path, List<ConfigError> errors) => e.ValueKind switch
    {
        JsonValueKind.Object => new ConfigMap(0, JsonEntries(e, path, errors)),
        JsonValueKind.Array => new ConfigList(0, e.EnumerateArray().Select((v, i) => FromJson(v, $"{path}[{i}]", errors)).ToArray()),
        JsonValueKind.String => new ConfigScalar(0, e.GetString()!, ScalarKind.String),
        JsonValueKind.Number => new ConfigScalar(0, e.GetRawText(), ScalarKind.Number),
        JsonValueKind.True => new ConfigScalar(0, "true", ScalarKind.Bool),
        JsonValueKind.False => new ConfigScalar(0, "false", ScalarKind.Bool),
        _ => new ConfigScalar(0, "null", ScalarKind.Null),
    };

    private static IReadOnlyList<KeyValuePair<string, ConfigNode>> JsonEntries(JsonElement e, string path, List<ConfigError> errors)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var list = new List<KeyValuePair<string, ConfigNode>>();
        foreach (var p in e.EnumerateObject())
        {
            string child = path == "$" ? p.Name : $"{path}.{p.Name}";
            if (!seen.Add(p.Name)) { errors.Add(new ConfigError(child, "duplicate key")); continue; }
            list.Add(new(p.Name, FromJson(p.Value, child, errors)));
        }
        return list;
    }

    private static ConfigNode ParseYaml(string text, string source)
    {
        var stream = new YamlStream();
        try { stream.Load(new StringReader(text)); }
        catch (YamlException e)
        {
            string what = e.InnerException is { } inner && inner.Message != e.Message ? $"{e.Message} ({inner.Message})" : e.Message;
            throw new ConfigException(source, [new ConfigError("$", $"YAML syntax error at column {e.Start.Column}: {StripMark(what)}", (int)e.Start.Line)]);
        }
        catch (InvalidOperationException e)
        {
            // YamlDotNet 18 throws this (without a position) for some unterminated flow collections: the line is where
            // the parser's events stop.
            int line = 0;
            try
            {
                var parser = new Parser(new StringReader(text));
                while (parser.MoveNext()) line = (int)parser.Current!.End.Line;
            }
            catch (YamlException ye) { line = (int)ye.Start.Line; }
            catch (InvalidOperationException) { line++; }   // the error is after the last complete event
            throw new ConfigException(source, [new ConfigError("$", $"YAML syntax error: the parser stopped here ({e.GetType().Name}; an unclosed '[' or '{{'?)", line)]);
        }
        if (stream.Documents.Count == 0) return new ConfigMap(1, []);
        if (stream.Documents.Count > 1)
            throw new ConfigException(source, [new ConfigError("$", $"expected one YAML document, got {stream.Documents.Count}", (int)stream.Documents[1].RootNode.Start.Line)]);
        var errors = new List<ConfigError>();
        var node = FromYaml(stream.Documents[0].RootNode, "$", errors);
        if (errors.Count > 0) throw new ConfigException(source, errors);
        return node;
    }

    private static ConfigNode FromYaml(YamlNode n, string path, List<ConfigError> errors)
    {
        int line = (int)n.Start.Line;
        switch (n)
        {
            case YamlMappingNode m:
                var list = new List<KeyValuePair<string, ConfigNode>>();
                foreach (var (k, v) in m.Children)
                {
                    string key = k is YamlScalarNode ks ? ks.Value ?? "" : k.ToString();
                    list.Add(new(key, FromYaml(v, path == "$" ? key : $"{path}.{key}", errors)));
                }
                return new ConfigMap(line, list);
            case YamlSequenceNode s:
                return new ConfigList(line, s.Children.Select((v, i) => FromYaml(v, $"{path}[{i}]", errors)).ToArray());
            case YamlScalarNode sc:
                return Scalar(sc, line);
            default:
                errors.Add(new ConfigError(path, $"unsupported YAML node {n.NodeType}", line));
                return new ConfigScalar(line, "null", ScalarKind.Null);
        }
    }

    // YAML 1.1/1.2 core-schema resolution of plain scalars; quoted or block scalars stay strings.
    private static ConfigScalar Scalar(YamlScalarNode s, int line)
    {
        string v = s.Value ?? "";
        if (s.Style is not (ScalarStyle.Plain or ScalarStyle.Any)) return new ConfigScalar(line, v, ScalarKind.String);
        switch (v)
        {
            case "" or "~" or "null" or "Null" or "NULL": return new ConfigScalar(line, "null", ScalarKind.Null);
            case "true" or "True" or "TRUE": return new ConfigScalar(line, "true", ScalarKind.Bool);
            case "false" or "False" or "FALSE": return new ConfigScalar(line, "false", ScalarKind.Bool);
        }
        bool numeric = v.Length > 0 && (char.IsAsciiDigit(v[0]) || v[0] is '-' or '+' or '.')
                       && double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out _);
        return new ConfigScalar(line, v, numeric ? ScalarKind.Number : ScalarKind.String);
    }

    private static string FirstSentence(string m)
    {
        foreach (var cut in new[] { " Path:", " LineNumber:" })
        {
            int i = m.IndexOf(cut, StringComparison.Ordinal);
            if (i > 0) m = m[..i];
        }
        return m.Trim();
    }

    private static string StripMark(string m)
    {
        // YamlDotNet prefixes "(Line: 3, Col: 5, Idx: 20) - (Line: ...): "; the line and column are reported separately.
        int i = m.LastIndexOf("): ", StringComparison.Ordinal);
        return m.StartsWith("(Line:", StringComparison.Ordinal) && i > 0 ? m[(i + 3)..] : m;
    }
}

/// <summary>A mapping, keys in file order.</summary>
public sealed record ConfigMap(int Line, IReadOnlyList<KeyValuePair<string, ConfigNode>> Entries) : ConfigNode(Line)
{
    /// <inheritdoc/>
    public override string Describe() => "a mapping";

    /// <summary>The value of <paramref name="key"/>, or null.</summary>
    public ConfigNode? this[string key] => Entries.FirstOrDefault(e => e.Key == key).Value;
}

/// <summary>A sequence.</summary>
public sealed record ConfigList(int Line, IReadOnlyList<ConfigNode> Items) : ConfigNode(Line)
{
    /// <inheritdoc/>
    public override string Describe() => $"a list of {Items.Count}";
}

/// <summary>A scalar: its text and what it looked like.</summary>
public sealed record ConfigScalar(int Line, string Text, ScalarKind Kind) : ConfigNode(Line)
{
    /// <inheritdoc/>
    public override string Describe() => Kind == ScalarKind.String ? $"\"{Text}\"" : Text;
}

/// <summary>Writes a <see cref="ConfigNode"/> tree as JSON or YAML that parses back to the same tree.</summary>
public static class ConfigWriter
{
    /// <summary>The tree as indented text in <paramref name="format"/>.</summary>
    public static string Write(ConfigNode node, ConfigFormat format)
    {
        ArgumentNullException.ThrowIfNull(node);
        var sb = new StringBuilder();
        if (format == ConfigFormat.Json) Json(sb, node, 0);
        else if (node is ConfigMap { Entries.Count: > 0 } or ConfigList { Items.Count: > 0 }) Yaml(sb, node, 0);
        else sb.Append(YamlScalar(node));
        return sb.Append('\n').ToString();
    }

    private static void Json(StringBuilder sb, ConfigNode node, int indent)
    {
        string pad = new(' ', indent + 2), end = new(' ', indent);
        switch (node)
        {
            case ConfigMap m when m.Entries.Count == 0: sb.Append("{}"); break;
            case ConfigMap m:
                sb.Append("{\n");
                for (int i = 0; i < m.Entries.Count; i++)
                {
                    sb.Append(pad).Append(Quote(m.Entries[i].Key)).Append(": ");
                    Json(sb, m.Entries[i].Value, indent + 2);
                    sb.Append(i + 1 < m.Entries.Count ? ",\n" : "\n");
                }
                sb.Append(end).Append('}');
                break;
            case ConfigList l when l.Items.Count == 0: sb.Append("[]"); break;
            case ConfigList l when l.Items.All(x => x is ConfigScalar):
                sb.Append('[').Append(string.Join(", ", l.Items.Select(x => JsonScalar((ConfigScalar)x)))).Append(']');
                break;
            case ConfigList l:
                sb.Append("[\n");
                for (int i = 0; i < l.Items.Count; i++)
                {
                    sb.Append(pad);
                    Json(sb, l.Items[i], indent + 2);
                    sb.Append(i + 1 < l.Items.Count ? ",\n" : "\n");
                }
                sb.Append(end).Append(']');
                break;
            case ConfigScalar s: sb.Append(JsonScalar(s)); break;
        }
    }

    private static readonly JsonSerializerOptions Relaxed = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static string Quote(string s) => JsonSerializer.Serialize(s, Relaxed);

    private static string JsonScalar(ConfigScalar s) => s.Kind == ScalarKind.String ? Quote(s.Text) : s.Text;

    private static void Yaml(StringBuilder sb, ConfigNode node, int indent)
    {
        string pad = new(' ', indent);
        switch (node)
        {
            case ConfigMap m:
                foreach (var (k, v) in m.Entries)
                {
                    sb.Append(pad).Append(YamlKey(k)).Append(':');
                    if (v is ConfigMap { Entries.Count: > 0 } || v is ConfigList { Items.Count: > 0 } && !IsFlowList(v))
                    {
                        sb.Append('\n');
                        Yaml(sb, v, v is ConfigList ? indent : indent + 2);
                    }
                    else sb.Append(' ').Append(YamlInline(v)).Append('\n');
                }
                break;
            case ConfigList l:
                foreach (var item in l.Items)
                {
                    sb.Append(pad).Append("- ");
                    if (item is ConfigMap { Entries.Count: > 0 } im)
                    {
                        // The first key on the dash line, the rest aligned under it.
                        var inner = new StringBuilder();
                        Yaml(inner, im, indent + 2);
                        sb.Append(inner.ToString()[(indent + 2)..]);
                    }
                    else if (item is ConfigList { Items.Count: > 0 } && !IsFlowList(item))
                    {
                        sb.Append('\n');
                        Yaml(sb, item, indent + 2);
                    }
                    else sb.Append(YamlInline(item)).Append('\n');
                }
                break;
        }
    }

    private static bool IsFlowList(ConfigNode n) => n is ConfigList l && l.Items.All(x => x is ConfigScalar);

    private static string YamlInline(ConfigNode n) => n switch
    {
        ConfigMap => "{}",
        ConfigList l => "[" + string.Join(", ", l.Items.Select(YamlScalar)) + "]",
        _ => YamlScalar(n),
    };

    private static string YamlScalar(ConfigNode n)
    {
        var s = (ConfigScalar)n;
        if (s.Kind != ScalarKind.String) return s.Text;
        return NeedsQuotes(s.Text) ? Quote(s.Text) : s.Text;
    }

    private static string YamlKey(string k) => NeedsQuotes(k) ? Quote(k) : k;

    // A plain scalar that would resolve to something other than this string, or that YAML would read differently.
    private static bool NeedsQuotes(string t)
    {
        if (t.Length == 0 || t != t.Trim()) return true;
        if (t is "~" or "null" or "Null" or "NULL" or "true" or "True" or "TRUE" or "false" or "False" or "FALSE"
            or "yes" or "no" or "on" or "off" or "Yes" or "No" or "On" or "Off" or "y" or "n") return true;
        if (double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out _)) return true;
        if ("-?:,[]{}#&*!|>'\"%@`".Contains(t[0])) return true;
        return t.Contains(": ", StringComparison.Ordinal) || t.Contains(" #", StringComparison.Ordinal) || t.Any(char.IsControl);
    }
}
