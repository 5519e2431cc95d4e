using GpuNet.Data;
using System.Text.Json;

namespace GpuNet.Checkpoints;

/// <summary>
/// Metadata keys that let a checkpoint be used for prediction without the training command line (written by
/// <c>train --out</c>, read by <c>predict</c> and <see cref="CheckpointFile"/>). The model's per-sample input shape
/// is already in <c>gpunet.model</c> (<see cref="CheckpointFile.InputShape"/>).
/// </summary>
public static class CheckpointMetadata
{
    /// <summary>The name of the preset (network builder) the model was trained with, e.g. <c>digits-mlp</c>.</summary>
    public const string Preset = "gpunet.preset";

    /// <summary>
    /// The input standardisation the training data went through, as JSON <c>{"mean": [...], "std": [...]}</c> (one
    /// value per input feature, float32 round-trip): a raw sample x is fed as (x - mean) / std. Absent: raw inputs.
    /// </summary>
    public const string Standardization = "gpunet.standardization";

    /// <summary>The class names of the training set, as a JSON array of strings indexed by label.</summary>
    public const string ClassNames = "gpunet.class_names";

    /// <summary>The <see cref="Standardization"/> value for <paramref name="standardizer"/>.</summary>
    public static string StandardizationJson(Standardizer standardizer)
    {
        ArgumentNullException.ThrowIfNull(standardizer);
        return JsonSerializer.Serialize(new { mean = standardizer.Mean, std = standardizer.Std });
    }

    /// <summary>The <see cref="ClassNames"/> value for <paramref name="names"/>.</summary>
    public static string ClassNamesJson(IReadOnlyList<string> names)
    {
        ArgumentNullException.ThrowIfNull(names);
        return JsonSerializer.Serialize(names);
    }
}

/// <summary>A saved input standardisation (<see cref="CheckpointMetadata.Standardization"/>): x -> (x - Mean) / Std per feature.</summary>
/// <param name="Mean">Mean of each input feature on the training set.</param>
/// <param name="Std">Standard deviation of each feature (never 0).</param>
public sealed record SavedStandardization(IReadOnlyList<float> Mean, IReadOnlyList<float> Std)
{
    /// <summary>Standardises <paramref name="features"/> in place: (count, Mean.Count) row-major.</summary>
    /// <exception cref="ArgumentException">The length is not a multiple of the feature count.</exception>
    public void Apply(Span<float> features)
    {
        int d = Mean.Count;
        if (d == 0 || features.Length % d != 0)
            throw new ArgumentException($"SavedStandardization.Apply: {features.Length} values are not whole samples of {d} features", nameof(features));
        for (int i = 0; i < features.Length; i++) features[i] = (features[i] - Mean[i % d]) / Std[i % d];
    }

    internal static SavedStandardization Parse(string json)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            var r = doc.RootElement;
            float[] Read(string name) => r.ValueKind == JsonValueKind.Object && r.TryGetProperty(name, out var a) && a.ValueKind == JsonValueKind.Array
                ? a.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Number ? e.GetSingle() : throw new FormatException($"{CheckpointMetadata.Standardization}.{name} holds {e.GetRawText()}, expected numbers")).ToArray()
                : throw new FormatException($"{CheckpointMetadata.Standardization} needs arrays 'mean' and 'std'");
            var mean = Read("mean");
            var std = Read("std");
            if (mean.Length != std.Length || mean.Length == 0)
                throw new FormatException($"{CheckpointMetadata.Standardization}: {mean.Length} means and {std.Length} standard deviations, expected the same non-zero count");
            if (mean.Any(m => !float.IsFinite(m)) || std.Any(s => !(s > 0) || !float.IsFinite(s)))
                throw new FormatException($"{CheckpointMetadata.Standardization}: expected finite means and finite positive standard deviations");
            return new SavedStandardization(mean, std);
        }
        catch (JsonException e) { throw new FormatException($"{CheckpointMetadata.Standardization} is not valid JSON: {e.Message}", e); }
    }

    internal static string[] ParseNames(string json)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            if (doc.RootElement.ValueKind != JsonValueKind.Array) throw new FormatException($"{CheckpointMetadata.ClassNames} must be a JSON array of strings");
            return doc.RootElement.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString()!
                : throw new FormatException($"{CheckpointMetadata.ClassNames} holds {e.GetRawText()}, expected strings")).ToArray();
        }
        catch (JsonException e) { throw new FormatException($"{CheckpointMetadata.ClassNames} is not valid JSON: {e.Message}", e); }
    }
}
