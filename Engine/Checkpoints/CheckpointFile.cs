using GpuNet.Init;
using GpuNet.Optim;
using System.Globalization;
using System.Text.Json;

namespace GpuNet.Checkpoints;

/// <summary>
/// A validated checkpoint held in memory: the safetensors header, every tensor on the host, the raw metadata and the
/// GpuNet entries parsed from it (all null for a file written by another tool, e.g. PyTorch's <c>save_file</c>).
/// </summary>
public sealed class CheckpointFile
{
    private readonly Dictionary<string, CheckpointTensor> _byName;

    internal CheckpointFile(string path, long headerLength, List<CheckpointTensor> tensors, Dictionary<string, string> metadata)
    {
        Path = path;
        HeaderLength = headerLength;
        Tensors = tensors;
        Metadata = metadata;
        _byName = tensors.ToDictionary(t => t.Name);
        try
        {
            if (metadata.TryGetValue(Checkpoint.Keys.Version, out var v))
            {
                if (!int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out int version) || version < 1)
                    throw new FormatException($"{Checkpoint.Keys.Version} = '{v}' is not a positive integer");
                if (version > Checkpoint.FormatVersion)
                    throw new FormatException($"{Checkpoint.Keys.Version} = {version} is newer than this reader's {Checkpoint.FormatVersion}");
                FormatVersion = version;
            }
            Description = metadata.GetValueOrDefault(Checkpoint.Keys.Description);
            if (metadata.TryGetValue(Checkpoint.Keys.Model, out var model)) ParseModel(model);
            if (metadata.TryGetValue(Checkpoint.Keys.TrainingState, out var ts)) TrainingState = TrainingState.FromJson(ts);
            Optimizer = ParseOptimizer();
            Preset = metadata.GetValueOrDefault(CheckpointMetadata.Preset);
            if (metadata.TryGetValue(CheckpointMetadata.Standardization, out var std)) Standardization = SavedStandardization.Parse(std);
            if (metadata.TryGetValue(CheckpointMetadata.ClassNames, out var names)) ClassNames = SavedStandardization.ParseNames(names);
        }
        catch (FormatException e)
        {
            throw new CheckpointException(path, $"metadata: {e.Message}", e);
        }
    }

    /// <summary>The file read.</summary>
    public string Path { get; }
    /// <summary>Length of the JSON header in bytes (a multiple of 8 for files written by the reference or by GpuNet).</summary>
    public long HeaderLength { get; }
    /// <summary>Every tensor, in the order of its data in the file.</summary>
    public IReadOnlyList<CheckpointTensor> Tensors { get; }
    /// <summary>The <c>__metadata__</c> strings.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }
    /// <summary>The GpuNet format version, or null for a file GpuNet did not write.</summary>
    public int? FormatVersion { get; }
    /// <summary>The caller's description (layer list, summary), if saved.</summary>
    public string? Description { get; }
    /// <summary>The per-sample input shape of the saved model, if saved.</summary>
    public int[]? InputShape { get; private set; }
    /// <summary>The per-sample output shape of the saved model, if saved.</summary>
    public int[]? OutputShape { get; private set; }
    /// <summary>The saved model's <see cref="Nn.Model.Step"/> (keys dropout masks), if saved.</summary>
    public long? ModelStep { get; private set; }
    /// <summary>The saved model's <see cref="Nn.ModelOptions.Seed"/> (init and dropout masks), if saved.</summary>
    public ulong? ModelSeed { get; private set; }
    /// <summary>The saved parameter table (name, shape, buffer or parameter), if saved.</summary>
    public IReadOnlyList<SavedParameter>? ParameterTable { get; private set; }
    /// <summary>The optimizer's kind, step count, learning rate and state tensors (from <c>optimizer.*</c>), if saved.</summary>
    public OptimizerState? Optimizer { get; }
    /// <summary>The training state, if saved.</summary>
    public TrainingState? TrainingState { get; }

    /// <summary>The preset the model was trained with (<see cref="CheckpointMetadata.Preset"/>), if saved.</summary>
    public string? Preset { get; }
    /// <summary>The input standardisation of the training data (<see cref="CheckpointMetadata.Standardization"/>), if saved.</summary>
    public SavedStandardization? Standardization { get; }
    /// <summary>The class names by label (<see cref="CheckpointMetadata.ClassNames"/>), if saved.</summary>
    public IReadOnlyList<string>? ClassNames { get; }

    /// <summary>Whether the file holds a tensor named <paramref name="name"/>.</summary>
    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>The tensor named <paramref name="name"/>.</summary>
    /// <exception cref="KeyNotFoundException">No such tensor (the message lists the file's).</exception>
    public CheckpointTensor this[string name] => _byName.TryGetValue(name, out var t) ? t
        : throw new KeyNotFoundException($"checkpoint '{Path}' has no tensor '{name}'; it has: {string.Join(", ", _byName.Keys)}");

    /// <summary>
    /// The "initialise from a saved model" hook: the values of floating-point tensor <paramref name="name"/> as an
    /// initializer for a parameter of the same shape (see <see cref="FromValues"/>).
    /// </summary>
    /// <exception cref="KeyNotFoundException">No such tensor.</exception>
    /// <exception cref="InvalidOperationException">An integer tensor.</exception>
    public FromValues Initializer(string name)
    {
        var t = this[name];
        return new FromValues(t.Floats, t.Shape, $"{Path}:{name}");
    }

    private void ParseModel(string json)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json); }
        catch (JsonException e) { throw new FormatException($"{Checkpoint.Keys.Model} is not valid JSON: {e.Message}", e); }
        using (doc)
        {
            var r = doc.RootElement;
            if (r.ValueKind != JsonValueKind.Object) throw new FormatException($"{Checkpoint.Keys.Model} must be a JSON object");
            InputShape = Shape(r, "input_shape");
            OutputShape = Shape(r, "output_shape");
            if (!r.TryGetProperty("step", out var s) || s.ValueKind != JsonValueKind.Number || !s.TryGetInt64(out long step) || step < 0)
                throw new FormatException($"{Checkpoint.Keys.Model}.step must be an integer >= 0");
            ModelStep = step;
            if (r.TryGetProperty("seed", out var seed))
            {
                if (seed.ValueKind != JsonValueKind.String || !ulong.TryParse(seed.GetString(), NumberStyles.None, CultureInfo.InvariantCulture, out ulong sv))
                    throw new FormatException($"{Checkpoint.Keys.Model}.seed must be a decimal unsigned 64-bit integer string, found {seed.GetRawText()}");
                ModelSeed = sv;
            }
            if (!r.TryGetProperty("parameters", out var ps) || ps.ValueKind != JsonValueKind.Array)
                throw new FormatException($"{Checkpoint.Keys.Model}.parameters must be an array");
            var table = new List<SavedParameter>();
            foreach (var p in ps.EnumerateArray())
            {
                if (p.ValueKind != JsonValueKind.Object || !p.TryGetProperty("name", out var n) || n.ValueKind != JsonValueKind.String
                    || !p.TryGetProperty("buffer", out var b) || b.ValueKind is not (JsonValueKind.True or JsonValueKind.False)
                    || !p.TryGetProperty("decay", out var d) || d.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
                    throw new FormatException($"{Checkpoint.Keys.Model}.parameters entries need name (string), shape, buffer and decay (booleans): {p.GetRawText()}");
                table.Add(new SavedParameter(n.GetString()!, Shape(p, "shape"), b.GetBoolean(), d.GetBoolean()));
            }
            ParameterTable = table;
        }
    }

    private static int[] Shape(JsonElement o, string name)
    {
        if (!o.TryGetProperty(name, out var a) || a.ValueKind != JsonValueKind.Array)
            throw new FormatException($"{Checkpoint.Keys.Model}: '{name}' must be an array of integers");
        return a.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int x) && x >= 0 ? x
            : throw new FormatException($"{Checkpoint.Keys.Model}: '{name}' has a non-integer or negative entry {e.GetRawText()}")).ToArray();
    }

    private OptimizerState? ParseOptimizer()
    {
        var state = Tensors.Where(t => t.Name.StartsWith(Checkpoint.OptimizerPrefix, StringComparison.Ordinal)).ToList();
        bool hasKind = Metadata.TryGetValue(Checkpoint.Keys.OptimizerKind, out var kind);
        if (!hasKind)
        {
            if (state.Count > 0)
                throw new FormatException($"optimizer tensors [{string.Join(", ", state.Select(s => s.Name))}] without {Checkpoint.Keys.OptimizerKind}");
            return null;
        }
        if (!Metadata.TryGetValue(Checkpoint.Keys.OptimizerStep, out var stepText)
            || !long.TryParse(stepText, NumberStyles.None, CultureInfo.InvariantCulture, out long step))
            throw new FormatException($"{Checkpoint.Keys.OptimizerStep} is missing or not an integer >= 0 ('{stepText}')");
        if (!Metadata.TryGetValue(Checkpoint.Keys.OptimizerLr, out var lrText)
            || !double.TryParse(lrText, NumberStyles.Float, CultureInfo.InvariantCulture, out double lr) || !(lr >= 0) || double.IsInfinity(lr))
            throw new FormatException($"{Checkpoint.Keys.OptimizerLr} is missing or not a finite number >= 0 ('{lrText}')");
        var tensors = new Dictionary<string, float[]>();
        foreach (var t in state)
        {
            if (!t.IsFloat) throw new FormatException($"optimizer tensor '{t.Name}' has dtype {t.DType}, expected F32");
            if (t.Shape.Length != 1) throw new FormatException($"optimizer tensor '{t.Name}' has shape {ShapeUtil.Format(t.Shape)}, expected a flat (n)");
            tensors[t.Name[Checkpoint.OptimizerPrefix.Length..]] = t.Floats;
        }
        return new OptimizerState(kind!, step, lr, tensors);
    }
}

/// <summary>One entry of a saved parameter table.</summary>
/// <param name="Name">PyTorch-style name.</param>
/// <param name="Shape">Shape.</param>
/// <param name="IsBuffer">True for non-trainable state (running statistics).</param>
/// <param name="Decay">Whether weight decay applied.</param>
public sealed record SavedParameter(string Name, int[] Shape, bool IsBuffer, bool Decay);
