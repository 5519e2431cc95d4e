using System.Globalization;

namespace GpuNet.Experiments;

/// <summary>The type of one argument of a config component.</summary>
public enum ArgType
{
    /// <summary>A whole number.</summary>
    Int,
    /// <summary>A number.</summary>
    Double,
    /// <summary>true or false.</summary>
    Bool,
    /// <summary>Text (one of <see cref="ArgSpec.Choices"/> when given).</summary>
    String,
    /// <summary>An initialiser: a name (<c>kaiming_normal</c>) or a mapping with <c>type</c> and its arguments.</summary>
    Init,
    /// <summary>A list of layers.</summary>
    Layers,
}

/// <summary>
/// One argument of a component kind: its key, type, default (null: required, or inferred when <paramref name="Inferred"/>
/// is set), inclusive or exclusive range and what it means.
/// </summary>
public sealed record ArgSpec(string Key, ArgType Type, object? Default, string Doc, double Min = double.NegativeInfinity,
    double Max = double.PositiveInfinity, bool MinExclusive = false, bool MaxExclusive = false, string? Inferred = null, string[]? Choices = null)
{
    /// <summary>True when the config must give this argument.</summary>
    public bool Required => Default is null && Inferred is null;

    /// <summary>The allowed values in words (<c>an integer &gt;= 1</c>, <c>a number in [0, 1)</c>).</summary>
    public string Expected()
    {
        string what = Type switch
        {
            ArgType.Int => "an integer",
            ArgType.Double => "a number",
            ArgType.Bool => "true or false",
            ArgType.String => Choices is null ? "a string" : "one of " + string.Join(", ", Choices.Select(c => c.Length == 0 ? "\"\"" : c)),
            ArgType.Init => "an initialiser (a name or a mapping with 'type')",
            _ => "a list of layers",
        };
        bool lo = !double.IsNegativeInfinity(Min), hi = !double.IsPositiveInfinity(Max);
        if (lo && hi) return $"{what} in {(MinExclusive ? "(" : "[")}{F(Min)}, {F(Max)}{(MaxExclusive ? ")" : "]")}";
        if (lo) return $"{what} {(MinExclusive ? ">" : ">=")} {F(Min)}";
        if (hi) return $"{what} {(MaxExclusive ? "<" : "<=")} {F(Max)}";
        return what;
    }

    internal static string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);
}

/// <summary>One kind of a component (a layer type, an optimizer, a data source, ...): its name, meaning and arguments.</summary>
public sealed record KindSpec(string Name, string Doc, IReadOnlyList<ArgSpec> Args);

/// <summary>
/// A configured component: its kind and the arguments the file gave (validated against the kind's <see cref="ArgSpec"/>s;
/// absent ones take their defaults when read). Values are <c>long</c>, <c>double</c>, <c>bool</c>, <c>string</c>,
/// <see cref="Component"/> (initialisers) or <c>IReadOnlyList&lt;Component&gt;</c> (layer lists).
/// </summary>
public sealed record Component(KindSpec Kind, IReadOnlyDictionary<string, object> Args)
{
    /// <summary>The kind's name.</summary>
    public string Type => Kind.Name;

    /// <summary>A component with no arguments given.</summary>
    public static Component Of(KindSpec kind) => new(kind, new Dictionary<string, object>());

    /// <summary>A copy with <paramref name="key"/> set (null: removed, so the default applies).</summary>
    public Component With(string key, object? value)
    {
        if (Kind.Args.All(a => a.Key != key)) throw new ArgumentException($"'{Type}' has no argument '{key}'; it has: {string.Join(", ", Kind.Args.Select(a => a.Key))}", nameof(key));
        var d = new Dictionary<string, object>(Args);
        if (value is null) d.Remove(key);
        else d[key] = value is int i ? (long)i : value is float f ? (double)f : value;
        return this with { Args = d };
    }

    private object? Value(string key)
    {
        var spec = Kind.Args.FirstOrDefault(a => a.Key == key) ?? throw new ArgumentException($"'{Type}' has no argument '{key}'", nameof(key));
        return Args.TryGetValue(key, out var v) ? v : spec.Default;
    }

    /// <summary>The integer argument, or null when absent and without default (inferred).</summary>
    public int? Int(string key) => Value(key) is { } v ? checked((int)Convert.ToInt64(v, CultureInfo.InvariantCulture)) : null;
    /// <summary>The number argument, or null when absent and without default.</summary>
    public double? Double(string key) => Value(key) is { } v ? Convert.ToDouble(v, CultureInfo.InvariantCulture) : null;
    /// <summary>The boolean argument.</summary>
    public bool Bool(string key) => (bool)Value(key)!;
    /// <summary>The string argument, or null.</summary>
    public string? String(string key) => (string?)Value(key);
    /// <summary>The initialiser argument, or null (the layer's default).</summary>
    public Component? Init(string key) => Value(key) as Component;
    /// <summary>The layer-list argument, or null.</summary>
    public IReadOnlyList<Component>? Layers(string key) => Value(key) as IReadOnlyList<Component>;
}

/// <summary>
/// Reads a <see cref="ConfigNode"/> tree against the schema, collecting every error with its key path instead of
/// stopping at the first.
/// </summary>
internal sealed class ConfigReader
{
    public List<ConfigError> Errors { get; } = new();

    public void Error(string path, string message, ConfigNode? at) => Errors.Add(new ConfigError(path, message, at?.Line ?? 0));

    public static string Join(string path, string key) => path == "$" ? key : $"{path}.{key}";

    /// <summary>The mapping at <paramref name="path"/>, with unknown keys reported; null (and an error) when it is not one.</summary>
    public ConfigMap? Map(ConfigNode? node, string path, IReadOnlyCollection<string> allowed)
    {
        if (node is null) return null;
        if (node is not ConfigMap m)
        {
            Error(path, $"expected a mapping with keys {string.Join(", ", allowed)}, got {node.Describe()}", node);
            return null;
        }
        foreach (var (k, v) in m.Entries)
            if (!allowed.Contains(k))
                Error(Join(path, k), $"unknown key; expected one of {string.Join(", ", allowed)}{Suggest(k, allowed)}", v);
        return m;
    }

    private static string Suggest(string key, IEnumerable<string> allowed)
    {
        var best = allowed.Select(a => (a, d: Distance(key, a))).OrderBy(x => x.d).FirstOrDefault();
        return best.a is not null && best.d <= Math.Max(2, key.Length / 3) ? $" (did you mean '{best.a}'?)" : "";
    }

    private static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
            for (int j = 1; j <= b.Length; j++)
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
        return d[a.Length, b.Length];
    }

    /// <summary>Reads a scalar or list value of <paramref name="spec"/>'s type and range; null (and an error) when it does not fit.</summary>
    public object? Value(ConfigNode node, string path, ArgSpec spec, Func<ConfigNode, string, IReadOnlyList<Component>?> layers,
        Func<ConfigNode, string, Component?> init)
    {
        switch (spec.Type)
        {
            case ArgType.Layers:
                return layers(node, path);
            case ArgType.Init:
                return init(node, path);
        }
        if (node is not ConfigScalar s) { Error(path, $"expected {spec.Expected()}, got {node.Describe()}", node); return null; }
        switch (spec.Type)
        {
            case ArgType.Bool when s.Kind == ScalarKind.Bool:
                return s.Text == "true";
            case ArgType.String when s.Kind == ScalarKind.String:
                if (spec.Choices is not null && !spec.Choices.Contains(s.Text)) break;
                return s.Text;
            case ArgType.Int when s.Kind == ScalarKind.Number:
                if (!long.TryParse(s.Text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long l) || !InRange(spec, l)) break;
                return l;
            case ArgType.Double when s.Kind == ScalarKind.Number:
                if (!double.TryParse(s.Text, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) || !double.IsFinite(d) || !InRange(spec, d)) break;
                return d;
        }
        Error(path, $"expected {spec.Expected()}, got {s.Describe()}", node);
        return null;
    }

    private static bool InRange(ArgSpec a, double v)
        => (a.MinExclusive ? v > a.Min : v >= a.Min) && (a.MaxExclusive ? v < a.Max : v <= a.Max);

    /// <summary>
    /// Reads a component: a bare name (<c>relu</c>) or a mapping with <c>type</c> (plus <paramref name="extraKeys"/>, read
    /// by the caller) and the kind's arguments. Null (and errors) when the type is missing or unknown.
    /// </summary>
    public Component? Component(ConfigNode? node, string path, IReadOnlyList<KindSpec> kinds, string what,
        Func<ConfigNode, string, IReadOnlyList<Component>?>? layers = null, Func<ConfigNode, string, Component?>? init = null, params string[] extraKeys)
    {
        if (node is null) return null;
        string names = string.Join(", ", kinds.Select(k => k.Name));
        if (node is ConfigScalar { Kind: ScalarKind.String } name)
        {
            var k = kinds.FirstOrDefault(k => k.Name == name.Text);
            if (k is null) { Error(path, $"unknown {what} \"{name.Text}\"; expected one of {names}", node); return null; }
            foreach (var a in k.Args.Where(a => a.Required))
                Error(path, $"{what} \"{k.Name}\" needs '{a.Key}' ({a.Expected()}); write it as a mapping with type: {k.Name}", node);
            return global::GpuNet.Experiments.Component.Of(k);
        }
        if (node is not ConfigMap m) { Error(path, $"expected a {what}: one of {names}, or a mapping with 'type', got {node.Describe()}", node); return null; }
        if (m["type"] is not ConfigScalar { Kind: ScalarKind.String } t)
        {
            Error(Join(path, "type"), m["type"] is null ? $"missing; expected one of {names}" : $"expected one of {names}, got {m["type"]!.Describe()}", m["type"] ?? m);
            return null;
        }
        var kind = kinds.FirstOrDefault(k => k.Name == t.Text);
        if (kind is null) { Error(Join(path, "type"), $"unknown {what} \"{t.Text}\"; expected one of {names}", t); return null; }
        Map(m, path, ["type", .. extraKeys, .. kind.Args.Select(a => a.Key)]);
        var args = new Dictionary<string, object>();
        foreach (var a in kind.Args)
        {
            var v = m[a.Key];
            if (v is null || v is ConfigScalar { Kind: ScalarKind.Null })
            {
                if (a.Required) Error(Join(path, a.Key), $"missing; {what} \"{kind.Name}\" needs {a.Expected()}", m);
                continue;
            }
            var value = Value(v, Join(path, a.Key), a, layers ?? NoLayers, init ?? NoInit);
            if (value is not null) args[a.Key] = value;
        }
        return new Component(kind, args);
    }

    private IReadOnlyList<Component>? NoLayers(ConfigNode n, string p) { Error(p, "layer lists are not allowed here", n); return null; }
    private Component? NoInit(ConfigNode n, string p) { Error(p, "initialisers are not allowed here", n); return null; }

    /// <summary>A top-level setting of <paramref name="spec"/> inside <paramref name="map"/>, or its default.</summary>
    public object? Setting(ConfigMap? map, string path, ArgSpec spec)
    {
        var v = map?[spec.Key];
        if (v is null || v is ConfigScalar { Kind: ScalarKind.Null })
        {
            if (spec.Required) Error(Join(path, spec.Key), $"missing; expected {spec.Expected()}", map);
            return spec.Default;
        }
        return Value(v, Join(path, spec.Key), spec, NoLayers, NoInit) ?? spec.Default;
    }
}

/// <summary>Turns components back into <see cref="ConfigNode"/>s: only the arguments the config gave are written.</summary>
internal static class ComponentWriter
{
    public static ConfigNode Write(Component c, bool bareWhenEmpty = true)
    {
        if (bareWhenEmpty && c.Args.Count == 0) return Str(c.Type);
        var entries = new List<KeyValuePair<string, ConfigNode>> { new("type", Str(c.Type)) };
        foreach (var a in c.Kind.Args)
            if (c.Args.TryGetValue(a.Key, out var v)) entries.Add(new(a.Key, Value(v)));
        return new ConfigMap(0, entries);
    }

    public static ConfigNode Value(object v) => v switch
    {
        bool b => new ConfigScalar(0, b ? "true" : "false", ScalarKind.Bool),
        long or int => new ConfigScalar(0, Convert.ToInt64(v, CultureInfo.InvariantCulture).ToString(CultureInfo.InvariantCulture), ScalarKind.Number),
        double d => new ConfigScalar(0, Number(d), ScalarKind.Number),
        float f => new ConfigScalar(0, Number(f), ScalarKind.Number),
        ulong u => new ConfigScalar(0, u.ToString(CultureInfo.InvariantCulture), ScalarKind.Number),
        string s => Str(s),
        Component c => Write(c),
        IReadOnlyList<Component> l => new ConfigList(0, l.Select(x => Write(x)).ToArray()),
        _ => throw new ArgumentException($"cannot write a {v.GetType().Name} into a config", nameof(v)),
    };

    // Shortest round-trip text, always with a '.' or an exponent so it reads back as a number (never as an integer-only form).
    private static string Number(double d)
    {
        string s = d.ToString("R", CultureInfo.InvariantCulture);
        return s.Contains('.') || s.Contains('E') || s.Contains('e') ? s : s + ".0";
    }

    public static ConfigScalar Str(string s) => new(0, s, ScalarKind.String);
}
