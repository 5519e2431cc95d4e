using GpuNet.Nn;
using GpuNet.Optim;
using System.Text;

namespace GpuNet.Checkpoints;

/// <summary>A model tensor the file has under the same name but could not supply.</summary>
/// <param name="Name">The tensor's name.</param>
/// <param name="ModelShape">The shape in the model.</param>
/// <param name="FileShape">The shape in the file.</param>
/// <param name="Reason">Why it was skipped (shape or dtype mismatch).</param>
public sealed record SkippedTensor(string Name, int[] ModelShape, int[] FileShape, string Reason)
{
    /// <inheritdoc/>
    public override string ToString() => $"{Name}: {Reason}";
}

/// <summary>What <see cref="Checkpoint.InitializeFrom"/> did, name by name.</summary>
/// <param name="Path">The file read.</param>
/// <param name="Loaded">Model tensors whose values came from the file (same name and shape).</param>
/// <param name="Missing">Model tensors the file lacks: left at their initialiser's values.</param>
/// <param name="Skipped">Model tensors present in the file with another shape or a non-float dtype: left at their initialiser's values.</param>
/// <param name="Unused">Tensors of the file no model tensor took (including <c>optimizer.*</c>).</param>
/// <param name="Frozen">Trainable parameters whose optimizer group was frozen.</param>
public sealed record LoadReport(string Path, IReadOnlyList<string> Loaded, IReadOnlyList<string> Missing,
    IReadOnlyList<SkippedTensor> Skipped, IReadOnlyList<string> Unused, IReadOnlyList<string> Frozen)
{
    /// <summary>A readable multi-line account.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder($"initialised from '{Path}': {Loaded.Count} loaded, {Missing.Count} missing, {Skipped.Count} skipped, {Unused.Count} unused, {Frozen.Count} frozen");
        if (Loaded.Count > 0) sb.Append("\n  loaded: ").AppendJoin(", ", Loaded);
        if (Missing.Count > 0) sb.Append("\n  missing (left at initialiser): ").AppendJoin(", ", Missing);
        foreach (var s in Skipped) sb.Append("\n  skipped ").Append(s);
        if (Unused.Count > 0) sb.Append("\n  unused in file: ").AppendJoin(", ", Unused);
        if (Frozen.Count > 0) sb.Append("\n  frozen: ").AppendJoin(", ", Frozen);
        return sb.ToString();
    }
}

/// <summary>
/// Parameter groups with one group per trainable parameter, which lets <see cref="Checkpoint.InitializeFrom"/> (or the
/// caller, through <see cref="Optimizer.SetGroup"/>) freeze and thaw parameters one by one.
/// </summary>
public static class CheckpointGroups
{
    /// <summary>
    /// <paramref name="options"/> (or defaults) with one segment and one group per trainable parameter of
    /// <paramref name="model"/>, in <see cref="Model.ParameterTable"/> order without buffers: group i is
    /// <see cref="ParamGroup.Default"/> for parameters with weight decay and <see cref="ParamGroup.NoDecay"/> for the others.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="options"/> already sets segments or groups.</exception>
    public static OptimizerOptions PerParameter(Model model, OptimizerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (options is { Segments: not null } or { Groups: not null })
            throw new ArgumentException("PerParameter makes the segments and groups itself; pass options without them", nameof(options));
        var trainable = Trainable(model);
        return (options ?? new OptimizerOptions()) with
        {
            Segments = trainable.Select((e, i) => new ParamSegment(e.Offset, checked((int)e.Length), i)).ToArray(),
            Groups = trainable.Select(e => e.Decay ? ParamGroup.Default : ParamGroup.NoDecay).ToArray(),
        };
    }

    /// <summary>The index of the group of parameter <paramref name="name"/> in a <see cref="PerParameter"/> layout.</summary>
    /// <exception cref="KeyNotFoundException">No trainable parameter of that name.</exception>
    public static int GroupOf(Model model, string name)
    {
        ArgumentNullException.ThrowIfNull(model);
        int i = Trainable(model).FindIndex(e => e.Name == name);
        return i >= 0 ? i : throw new KeyNotFoundException($"no trainable parameter '{name}'; the model has: {string.Join(", ", Trainable(model).Select(e => e.Name))}");
    }

    internal static List<ParameterEntry> Trainable(Model model) => model.ParameterTable.Where(e => !e.IsBuffer).ToList();
}
