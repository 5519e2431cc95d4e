using GpuNet.Nn;
using GpuNet.Optim;
using System.Globalization;

namespace GpuNet.Checkpoints;

/// <summary>
/// Checkpoints as safetensors files that PyTorch reads with <c>safetensors.torch.load_file</c>: every parameter and
/// buffer under its PyTorch-style name (<c>linear1.weight</c>, <c>batchnorm1.running_mean</c>) as F32, the optimizer's
/// state as flat <c>optimizer.&lt;state&gt;</c> tensors (PyTorch users can ignore them), and in the metadata strings
/// (<c>gpunet.*</c> keys, plus <c>format = pt</c> as <c>save_file</c> writes): the format version, the caller's
/// description, the model's input/output shapes, step and parameter table (JSON), the optimizer's kind, step count and
/// learning rate, and the <see cref="TrainingState"/> (JSON). Writes are atomic; reads validate everything.
/// Restoring into a freshly built model and optimizer resumes bit for bit, on any device.
/// </summary>
public static class Checkpoint
{
    /// <summary>The version written to <c>gpunet.format_version</c>; a reader refuses newer versions.</summary>
    public const int FormatVersion = 1;
    /// <summary>Prefix of the optimizer's state tensors.</summary>
    public const string OptimizerPrefix = "optimizer.";

    /// <summary>The metadata keys.</summary>
    internal static class Keys
    {
        public const string Format = "format";
        public const string Version = "gpunet.format_version";
        public const string Description = "gpunet.description";
        public const string Model = "gpunet.model";
        public const string OptimizerKind = "gpunet.optimizer.kind";
        public const string OptimizerStep = "gpunet.optimizer.step_count";
        public const string OptimizerLr = "gpunet.optimizer.learning_rate";
        public const string TrainingState = "gpunet.training_state";
    }

    /// <summary>
    /// Saves <paramref name="model"/>'s parameters and buffers, <paramref name="optimizer"/>'s state when given,
    /// <paramref name="state"/> and <paramref name="description"/> to <paramref name="path"/>, atomically: the file is
    /// written next to it under a temporary name, flushed to the disk and moved over <paramref name="path"/>; on any
    /// failure the temporary file is deleted and an existing checkpoint at <paramref name="path"/> is left as it was.
    /// </summary>
    /// <param name="path">The file to write (its directory must exist).</param>
    /// <param name="model">The model.</param>
    /// <param name="optimizer">The optimizer over <paramref name="model"/>'s parameters, or null.</param>
    /// <param name="state">Where training stands, or null.</param>
    /// <param name="description">Free text (layer list, summary), or null.</param>
    /// <param name="metadata">Extra metadata strings, e.g. the <see cref="CheckpointMetadata"/> keys that <c>predict</c>
    /// reads; none may be a key this method writes itself.</param>
    /// <exception cref="ArgumentException">The optimizer covers another number of parameters, a model tensor's name
    /// starts with <see cref="OptimizerPrefix"/>, or <paramref name="metadata"/> repeats a key written here.</exception>
    public static void Save(string path, Model model, Optimizer? optimizer = null, TrainingState? state = null, string? description = null,
        IReadOnlyDictionary<string, string>? metadata = null)
        => Save(path, model, optimizer, state, description, wrap: null, metadata);

    /// <summary><see cref="Save(string, Model, Optimizer?, TrainingState?, string?, IReadOnlyDictionary{string, string}?)"/> with the file stream wrapped (tests inject failures).</summary>
    internal static void Save(string path, Model model, Optimizer? optimizer, TrainingState? state, string? description, Func<Stream, Stream>? wrap,
        IReadOnlyDictionary<string, string>? extra = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(model);
        if (optimizer is not null && optimizer.Parameters.Length != model.ParameterCount)
            throw new ArgumentException($"Checkpoint.Save: the optimizer covers {optimizer.Parameters.Length} parameters, the model has {model.ParameterCount}", nameof(optimizer));
        var clash = model.ParameterTable.FirstOrDefault(e => e.Name.StartsWith(OptimizerPrefix, StringComparison.Ordinal));
        if (clash is not null)
            throw new ArgumentException($"Checkpoint.Save: model tensor '{clash.Name}' collides with the '{OptimizerPrefix}' prefix of optimizer state; rename its layer", nameof(model));

        var metadata = new Dictionary<string, string>
        {
            [Keys.Format] = "pt",
            [Keys.Version] = FormatVersion.ToString(CultureInfo.InvariantCulture),
            [Keys.Model] = ModelJson(model),
        };
        if (description is not null) metadata[Keys.Description] = description;
        if (state is not null) metadata[Keys.TrainingState] = state.ToJson();
        OptimizerState? opt = optimizer?.Save();
        if (opt is not null)
        {
            metadata[Keys.OptimizerKind] = opt.Optimizer;
            metadata[Keys.OptimizerStep] = opt.StepCount.ToString(CultureInfo.InvariantCulture);
            metadata[Keys.OptimizerLr] = opt.LearningRate.ToString("R", CultureInfo.InvariantCulture);
        }
        foreach (var (key, value) in extra ?? new Dictionary<string, string>())
        {
            if (!metadata.TryAdd(key, value))
                throw new ArgumentException($"Checkpoint.Save: metadata key '{key}' is written by Save itself; expected another key (e.g. a {nameof(CheckpointMetadata)} key)", "metadata");
        }
        SafeTensorsFormat.WriteAtomic(path, () =>
        {
            var tensors = new List<CheckpointTensor>(model.ParameterTable.Count + 3);
            foreach (var e in model.ParameterTable)
            {
                using var view = (e.IsBuffer ? model.Buffers : model.Parameters).Slice(e.Offset, e.Shape);
                tensors.Add(CheckpointTensor.Float32(e.Name, e.Shape, view.ToArray()));
            }
            if (opt is not null)
                foreach (var (name, values) in opt.Tensors.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                    tensors.Add(CheckpointTensor.Float32(OptimizerPrefix + name, [values.Length], values));
            return tensors;
        }, metadata, wrap);
    }

    /// <summary>
    /// Writes arbitrary named tensors (F32 or I32) and metadata as a safetensors file, atomically as
    /// <see cref="Save(string, Model, Optimizer?, TrainingState?, string?, IReadOnlyDictionary{string, string}?)"/>; the data is laid out in the given order.
    /// </summary>
    /// <exception cref="ArgumentException">Two tensors share a name.</exception>
    public static void Write(string path, IReadOnlyList<CheckpointTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        SafeTensorsFormat.WriteAtomic(path, () => tensors, metadata);
    }

    /// <summary>
    /// Reads and validates a safetensors file (from GpuNet or any other writer): header length, JSON, dtypes,
    /// shapes, data offsets (in range, contiguous, matching shape and dtype size) and the GpuNet metadata.
    /// </summary>
    /// <exception cref="CheckpointException">Anything wrong with the file; the message names the file, the tensor and the numbers.</exception>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    public static CheckpointFile Read(string path)
    {
        var (tensors, metadata, headerLength) = SafeTensorsFormat.Read(path);
        return new CheckpointFile(path, headerLength, tensors, metadata);
    }

    /// <summary>Reads <paramref name="path"/> and restores it: see <see cref="Restore(CheckpointFile, Model, Optimizer?)"/>.</summary>
    public static TrainingState? Restore(string path, Model model, Optimizer? optimizer = null) => Restore(Read(path), model, optimizer);

    /// <summary>
    /// Strict restore for an exact resume: every parameter and buffer of <paramref name="model"/> must be in the file
    /// with the same shape and a floating-point dtype, and the file may hold no other tensors besides
    /// <c>optimizer.*</c>; the model's <see cref="Model.Step"/> is restored when saved. A network with dropout must
    /// have been built with the saved <see cref="ModelOptions.Seed"/>, which keys the masks (with another seed the
    /// resumed run would draw other masks). With <paramref name="optimizer"/>,
    /// the file must hold the state of an optimizer of the same kind and configuration, which is restored too.
    /// Everything is checked before anything is written, so a failed restore changes nothing.
    /// </summary>
    /// <returns>The saved training state, or null when the file has none.</returns>
    /// <exception cref="CheckpointException">The file does not fit: the message lists missing and unexpected names,
    /// shape mismatches (name, expected, actual), dtypes, and optimizer differences.</exception>
    public static TrainingState? Restore(CheckpointFile file, Model model, Optimizer? optimizer = null)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(model);
        var problems = TensorMismatches(file, model, ignoreBatchCounters: false);
        if (file.InputShape is { } input && !input.SequenceEqual(model.InputShape))
            problems.Add($"input shape: the model takes {ShapeUtil.Format(model.InputShape)}, the checkpoint was saved from a model taking {ShapeUtil.Format(input)}");
        if (file.ModelSeed is { } seed && seed != model.Options.Seed && HasDropout(model))
            problems.Add($"dropout masks are keyed by ModelOptions.Seed: the checkpoint was saved from a model built with Seed = {seed}, this one has " +
                $"{model.Options.Seed}; build it with Seed = {seed} to resume exactly");
        if (optimizer is not null)
        {
            if (file.Optimizer is null) problems.Add($"the file holds no optimizer state, an {optimizer.Name} was given");
            else if (file.Optimizer.Optimizer != optimizer.Name) problems.Add($"optimizer: the file holds {file.Optimizer.Optimizer} state, the optimizer given is {optimizer.Name}");
            if (optimizer.Parameters.Length != model.ParameterCount)
                problems.Add($"optimizer: it covers {optimizer.Parameters.Length} parameters, the model has {model.ParameterCount}");
        }
        if (problems.Count > 0) throw new CheckpointException(file.Path, $"does not match the model: {string.Join("; ", problems)}");

        if (optimizer is not null)
        {
            try { optimizer.Restore(file.Optimizer!); }
            catch (ArgumentException e) { throw new CheckpointException(file.Path, $"optimizer state does not fit: {e.Message}", e); }
        }
        var parameters = new float[model.Parameters.Length];
        var buffers = new float[model.Buffers.Length];
        foreach (var e in model.ParameterTable)
            file[e.Name].Floats.CopyTo((e.IsBuffer ? buffers : parameters).AsSpan((int)e.Offset, (int)e.Length));
        model.Parameters.CopyFrom(parameters);
        model.Buffers.CopyFrom(buffers);
        if (file.ModelStep is { } step) model.Step = step;
        return file.TrainingState;
    }

    /// <summary>
    /// Pretrained initialisation: copies every tensor of <paramref name="path"/> whose name and shape match a parameter
    /// or buffer of <paramref name="model"/> (floating-point dtypes only; F16/BF16/F64 are converted) and leaves the
    /// others at their initialiser's values. The model's step and the optimizer's state are not touched. With
    /// <paramref name="freeze"/>, the optimizer's groups of the loaded trainable parameters are frozen: this needs one
    /// group per parameter, i.e. an optimizer built with <see cref="CheckpointGroups.PerParameter"/> options.
    /// </summary>
    /// <param name="model">The model to initialise.</param>
    /// <param name="path">A safetensors file (GpuNet's or PyTorch's, with matching names).</param>
    /// <param name="freeze">Freeze the loaded parameters in <paramref name="optimizer"/>.</param>
    /// <param name="optimizer">The optimizer over <paramref name="model"/>'s parameters (needed when freezing).</param>
    /// <param name="strict">Require the file to be a state_dict of the same architecture, as PyTorch's
    /// <c>load_state_dict(strict=True)</c>: every parameter and buffer present with the same shape and a floating-point
    /// dtype, and no other tensor except <c>optimizer.*</c> and PyTorch's BatchNorm <c>*.num_batches_tracked</c>
    /// counters (GpuNet keeps no such counter). On a mismatch nothing is loaded and the error lists every problem.</param>
    /// <returns>What was loaded, missing, skipped (with both shapes), unused, and frozen.</returns>
    /// <exception cref="CheckpointException">The file cannot be read; with <paramref name="strict"/>, the file does not
    /// match: the message lists the missing and the unexpected names, the shape mismatches (name, model shape, file
    /// shape) and the non-float dtypes.</exception>
    /// <exception cref="ArgumentException">Freezing without an optimizer, or with one whose groups are not one per parameter.</exception>
    public static LoadReport InitializeFrom(Model model, string path, bool freeze = false, Optimizer? optimizer = null, bool strict = false)
    {
        ArgumentNullException.ThrowIfNull(model);
        var trainable = CheckpointGroups.Trainable(model);
        if (freeze)
        {
            if (optimizer is null) throw new ArgumentException("InitializeFrom: freezing needs the optimizer", nameof(optimizer));
            if (!ReferenceEquals(optimizer.Parameters, model.Parameters))
                throw new ArgumentException("InitializeFrom: the optimizer does not update this model's Parameters tensor", nameof(optimizer));
            if (optimizer.Groups.Count != trainable.Count)
                throw new ArgumentException($"InitializeFrom: freezing needs one parameter group per trainable parameter ({trainable.Count}), the optimizer has " +
                    $"{optimizer.Groups.Count}; build it with CheckpointGroups.PerParameter(model) options", nameof(optimizer));
        }
        var file = Read(path);
        if (strict) CheckStrict(file, model);
        var loaded = new List<string>();
        var missing = new List<string>();
        var skipped = new List<SkippedTensor>();
        foreach (var e in model.ParameterTable)
        {
            if (!file.Contains(e.Name)) { missing.Add(e.Name); continue; }
            var t = file[e.Name];
            if (!t.Shape.SequenceEqual(e.Shape))
            {
                skipped.Add(new(e.Name, e.Shape, t.Shape.ToArray(), $"shape mismatch: model {ShapeUtil.Format(e.Shape)}, file {ShapeUtil.Format(t.Shape)}"));
                continue;
            }
            if (!t.IsFloat)
            {
                skipped.Add(new(e.Name, e.Shape, t.Shape.ToArray(), $"dtype {t.DType} is not floating point"));
                continue;
            }
            using var view = (e.IsBuffer ? model.Buffers : model.Parameters).Slice(e.Offset, e.Shape);
            view.CopyFrom(t.Floats);
            loaded.Add(e.Name);
        }
        var taken = loaded.ToHashSet();
        var unused = file.Tensors.Select(t => t.Name).Where(n => !taken.Contains(n)).ToList();
        var frozen = new List<string>();
        if (freeze)
            for (int i = 0; i < trainable.Count; i++)
                if (taken.Contains(trainable[i].Name))
                {
                    optimizer!.SetGroup(i, optimizer.Groups[i] with { Frozen = true });
                    frozen.Add(trainable[i].Name);
                }
        return new LoadReport(path, loaded, missing, skipped, unused, frozen);
    }

    private static void CheckStrict(CheckpointFile file, Model model)
    {
        var problems = TensorMismatches(file, model, ignoreBatchCounters: true);
        if (problems.Count > 0)
            throw new CheckpointException(file.Path, $"is not a state_dict of this model (strict): {string.Join("; ", problems)}; nothing was loaded");
    }

    /// <summary>
    /// Every way the file's tensors differ from the model's parameters and buffers, each kind listed in full: missing,
    /// unexpected (optimizer state is never unexpected; PyTorch's <c>*.num_batches_tracked</c> counters are not when
    /// <paramref name="ignoreBatchCounters"/>), shape and dtype (F16, BF16, F32 and F64 load) mismatches.
    /// </summary>
    private static List<string> TensorMismatches(CheckpointFile file, Model model, bool ignoreBatchCounters)
    {
        var missing = new List<string>();
        var shapes = new List<string>();
        var dtypes = new List<string>();
        foreach (var e in model.ParameterTable)
        {
            if (!file.Contains(e.Name)) { missing.Add(e.Name); continue; }
            var t = file[e.Name];
            if (!t.Shape.SequenceEqual(e.Shape)) shapes.Add($"{e.Name}: expected {ShapeUtil.Format(e.Shape)}, file has {ShapeUtil.Format(t.Shape)}");
            else if (!t.IsFloat) dtypes.Add($"{e.Name}: expected F16, BF16, F32 or F64, file has {t.DType}");
        }
        var names = model.ParameterTable.Select(e => e.Name).ToHashSet();
        var unexpected = file.Tensors.Select(t => t.Name)
            .Where(n => !names.Contains(n) && !n.StartsWith(OptimizerPrefix, StringComparison.Ordinal)
                        && !(ignoreBatchCounters && n.EndsWith(".num_batches_tracked", StringComparison.Ordinal)))
            .ToList();
        var problems = new List<string>();
        if (missing.Count > 0) problems.Add($"missing tensors [{string.Join(", ", missing)}]");
        if (unexpected.Count > 0) problems.Add($"unexpected tensors [{string.Join(", ", unexpected)}]");
        if (shapes.Count > 0) problems.Add($"shape mismatches [{string.Join("; ", shapes)}]");
        if (dtypes.Count > 0) problems.Add($"dtype mismatches [{string.Join("; ", dtypes)}]");
        return problems;
    }

    private static bool HasDropout(Model model) => model.Layers.Any(l => l.IsStochastic);

    private static string ModelJson(Model model) => SafeTensorsFormat.Json(w =>
    {
        w.WriteStartObject();
        w.WriteStartArray("input_shape");
        foreach (int d in model.InputShape) w.WriteNumberValue(d);
        w.WriteEndArray();
        w.WriteStartArray("output_shape");
        foreach (int d in model.OutputShape) w.WriteNumberValue(d);
        w.WriteEndArray();
        w.WriteNumber("batch_size", model.BatchSize);
        w.WriteNumber("step", model.Step);
        w.WriteString("seed", model.Options.Seed.ToString(CultureInfo.InvariantCulture));
        w.WriteBoolean("dropout", HasDropout(model));
        w.WriteStartArray("parameters");
        foreach (var e in model.ParameterTable)
        {
            w.WriteStartObject();
            w.WriteString("name", e.Name);
            w.WriteStartArray("shape");
            foreach (int d in e.Shape) w.WriteNumberValue(d);
            w.WriteEndArray();
            w.WriteBoolean("buffer", e.IsBuffer);
            w.WriteBoolean("decay", e.Decay);
            w.WriteString("layer", e.Layer.Kind);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    });
}
