using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using GpuNet.Checkpoints;
using GpuNet.Data;
using GpuNet.Experiments;
using GpuNet.Nn;

namespace GpuNet.Bench;

/// <summary>
/// <c>predict</c>: runs a checkpoint written by <c>train --out</c> on new inputs (an IDX image file with optional
/// IDX labels, a CSV of features with an optional label column, or a folder of images) and prints the top-K classes
/// per sample with their probabilities (softmax of the logits; sigmoid for a one-output binary model) and, when labels
/// are known, the accuracy. The network comes from the preset (from <c>--preset</c> or the checkpoint's
/// <see cref="CheckpointMetadata.Preset"/>), the input shape from the checkpoint, and the inputs get the standardisation
/// the training data got (<see cref="CheckpointMetadata.Standardization"/>).
/// </summary>
internal static class PredictCommand
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "a checkpoint written by train --out (best.safetensors or last.safetensors)", Required = true };
        var preset = new Option<string?>("--preset") { Description = "the preset the checkpoint was trained with (default: the checkpoint's gpunet.preset metadata)" };
        var input = new Option<string>("--input") { Description = "an IDX image file, a CSV of features (optionally a last label column), or a folder of images (class subfolders give labels)", Required = true };
        var labels = new Option<string?>("--labels") { Description = "an IDX label file for an IDX --input" };
        var json = new Option<string?>("--json") { Description = "write the predictions and the accuracy as JSON to this path" };
        var top = Cli.IntOption("--top", "classes printed per sample", 3, 1, 1000);
        var device = Cli.DeviceOption();
        var cmd = new Command("predict", "Predict classes with a trained checkpoint: top-K probabilities per sample, accuracy when labels are given.")
        {
            checkpoint, preset, input, labels, json, top, device,
        };
        cmd.SetAction(p => Cli.Guard(() =>
        {
            using var dev = Cli.OpenDevice(p.GetValue(device));
            return Run(dev, p.GetValue(checkpoint)!, p.GetValue(preset), p.GetValue(input)!, p.GetValue(labels), p.GetValue(json), p.GetValue(top), Console.Out);
        }));
        return cmd;
    }

    /// <summary>
    /// The network to restore into, its name and the factor the run scaled its features by: the preset's (--preset,
    /// else the checkpoint's preset key; a preset scales nothing), else the config the checkpoint was trained from (its
    /// description, written by <c>train --out</c>), rebuilt on the checkpoint's input shape without reading any data.
    /// </summary>
    private static (string Name, Layer Network, double Scale) Network(CheckpointFile file, string path, string? presetName, int[] inputShape)
    {
        string allowed = string.Join(", ", Preset.All.Concat(Preset.Cnn).Select(x => x.Name));
        if ((presetName ?? file.Preset) is string name)
        {
            var preset = Preset.Find(name) ?? throw new UsageException($"--preset: unknown preset '{name}'; allowed: {allowed}");
            return (preset.Name, preset.Network(preset.Defaults), 1.0);
        }
        if (file.Description is string text && text.TrimStart().StartsWith('{'))
        {
            var config = ExperimentConfig.ParseSchema(text, ConfigFormat.Json, $"{path} ({Experiment.CheckpointKey})");
            return (config.Name, NetworkConfig.Build(config.Layers, inputShape).Network, config.Data.Scale);
        }
        throw new UsageException($"no network: --preset is absent and checkpoint '{path}' has neither a '{CheckpointMetadata.Preset}' metadata key nor the config of its run " +
            $"('{Experiment.CheckpointKey}'); give --preset, one of {allowed}");
    }

    /// <summary>Inputs ready for the model: (Count, ...model input shape) features, optional labels, a name per sample.</summary>
    private sealed record Inputs(float[] Features, int Count, int[]? Labels, string[] Names);

    private static int Run(Device device, string checkpointPath, string? presetName, string inputPath, string? labelsPath, string? jsonPath, int topK, TextWriter log)
    {
        var file = Checkpoint.Read(checkpointPath);
        var inputShape = file.InputShape ?? throw new CheckpointException(checkpointPath, "records no input shape (gpunet.model metadata); predict needs a checkpoint written by GpuNet");
        var (runName, network, scale) = Network(file, checkpointPath, presetName, inputShape);
        if (labelsPath is not null && (Directory.Exists(inputPath) || IsCsv(inputPath)))
            throw new UsageException("--labels is for an IDX --input; a CSV gives labels in its last column, a folder in its class subfolders");

        var x = Load(inputPath, labelsPath, inputShape, file.ClassNames);
        if (scale != 1.0)
            for (int i = 0; i < x.Features.Length; i++) x.Features[i] *= (float)scale;
        if (file.Standardization is { } std)
        {
            int per = checked((int)ShapeUtil.Count(inputShape));
            if (std.Mean.Count != per)
                throw new CheckpointException(checkpointPath, $"{CheckpointMetadata.Standardization} has {std.Mean.Count} features, the model input {ShapeUtil.Format(inputShape)} has {per}");
            std.Apply(x.Features);
        }

        int batch = Math.Min(x.Count, 256);
        using var model = Model.Build(device, network, inputShape, batch, new ModelOptions { Seed = file.ModelSeed ?? 1, Training = false });
        Checkpoint.Restore(file, model);
        int outputs = checked((int)ShapeUtil.Count(model.OutputShape));
        int classes = outputs == 1 ? 2 : outputs;
        if (x.Labels is not null && x.Labels.Max() >= classes)
            throw new DataFormatException(labelsPath ?? inputPath, $"label {x.Labels.Max()} is out of range: the model has {classes} classes (0..{classes - 1})");

        // logits: (Count, outputs)
        var logits = new float[checked((long)x.Count * outputs)];
        int per1 = x.Features.Length / x.Count;
        for (int start = 0; start < x.Count; start += batch)
        {
            int n = Math.Min(batch, x.Count - start);
            using var t = device.FromArray(x.Features[(start * per1)..((start + n) * per1)], [n, .. inputShape]);
            model.Forward(t, training: false).ToArray().CopyTo(logits, (long)start * outputs);
        }

        var classNames = file.ClassNames is { } cn && cn.Count == classes ? cn : Enumerable.Range(0, classes).Select(c => c.ToString(Inv)).ToArray();
        int k = Math.Min(topK, classes);
        log.WriteLine(string.Create(Inv, $"GpuNet predict | {runName} from {checkpointPath} | {x.Count} samples from {inputPath} | device {device.Name}"));
        var samples = new JsonArray();
        int correct = 0;
        for (int i = 0; i < x.Count; i++)
        {
            var prob = Probabilities(logits.AsSpan(i * outputs, outputs));
            // Ties keep the lower class first, as the argmax does.
            var order = Enumerable.Range(0, classes).OrderByDescending(c => prob[c]).ThenBy(c => c).Take(k).ToArray();
            int predicted = outputs == 1 ? (logits[i] > 0 ? 1 : 0) : order[0];
            int? label = x.Labels?[i];
            if (label == predicted) correct++;
            log.WriteLine($"{x.Names[i]}: " + string.Join(", ", order.Select(c => string.Create(Inv, $"{classNames[c]} {prob[c]:P2}")))
                + (label is int l ? $" | label {classNames[l]}{(l == predicted ? "" : " (wrong)")}" : ""));
            samples.Add(new JsonObject
            {
                ["name"] = x.Names[i],
                ["label"] = label,
                ["predicted"] = predicted,
                ["top"] = new JsonArray(order.Select(c => (JsonNode)new JsonObject { ["class"] = c, ["name"] = classNames[c], ["probability"] = prob[c] }).ToArray()),
            });
        }
        double? accuracy = x.Labels is null ? null : (double)correct / x.Count;
        if (accuracy is double a) log.WriteLine(string.Create(Inv, $"accuracy {a:P2} ({correct}/{x.Count})"));
        if (jsonPath is not null)
        {
            var doc = new JsonObject
            {
                ["checkpoint"] = Path.GetFullPath(checkpointPath),
                ["preset"] = runName,
                ["input"] = Path.GetFullPath(inputPath),
                ["classes"] = new JsonArray(classNames.Select(c => (JsonNode)JsonValue.Create(c)!).ToArray()),
                ["accuracy"] = accuracy,
                ["correct"] = x.Labels is null ? null : correct,
                ["samples"] = samples,
            };
            AtomicFile.WriteAllText(jsonPath, doc.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        }
        return Cli.Ok;
    }

    /// <summary>Softmax of the logits in float64; for one output the sigmoid as [P(0), P(1)].</summary>
    private static double[] Probabilities(ReadOnlySpan<float> logits)
    {
        if (logits.Length == 1)
        {
            double p1 = 1 / (1 + Math.Exp(-logits[0]));
            return [1 - p1, p1];
        }
        double max = double.NegativeInfinity;
        foreach (float v in logits) max = Math.Max(max, v);
        var p = new double[logits.Length];
        double sum = 0;
        for (int c = 0; c < p.Length; c++) sum += p[c] = Math.Exp(logits[c] - max);
        for (int c = 0; c < p.Length; c++) p[c] /= sum;
        return p;
    }

    private static bool IsCsv(string path)
        => path.EndsWith(".csv", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".csv.gz", StringComparison.OrdinalIgnoreCase);

    private static Inputs Load(string path, string? labelsPath, int[] inputShape, IReadOnlyList<string>? classNames)
    {
        if (Directory.Exists(path)) return LoadImages(path, inputShape, classNames);
        if (!File.Exists(path)) throw new UsageException($"--input: '{path}' is neither a file nor a folder");
        return IsCsv(path) ? LoadCsv(path, inputShape) : LoadIdx(path, labelsPath, inputShape);
    }

    private static Inputs LoadIdx(string path, string? labelsPath, int[] inputShape)
    {
        var pixels = Idx.ReadImages(path, out int count, out int rows, out int cols);
        bool fits = inputShape.Length == 3 ? inputShape[0] == 1 && inputShape[1] == rows && inputShape[2] == cols
            : ShapeUtil.Count(inputShape) == (long)rows * cols;
        if (!fits)
            throw new DataFormatException(path, $"images of {rows}x{cols} do not fit the model input {ShapeUtil.Format(inputShape)}: expected {Describe(inputShape)}");
        if (count == 0) throw new DataFormatException(path, "holds no image, expected at least one");
        var x = new float[pixels.Length];
        for (int i = 0; i < x.Length; i++) x[i] = pixels[i] / 255f; // as Idx.Load: the training data's scaling
        int[]? labels = null;
        if (labelsPath is not null)
        {
            var raw = Idx.ReadLabels(labelsPath);
            if (raw.Length != count)
                throw new DataFormatException(labelsPath, $"count mismatch: holds {raw.Length} labels, the image file {path} holds {count} images");
            labels = raw.Select(b => (int)b).ToArray();
        }
        return new Inputs(x, count, labels, Enumerable.Range(0, count).Select(i => $"#{i}").ToArray());
    }

    private static Inputs LoadCsv(string path, int[] inputShape)
    {
        int features = checked((int)ShapeUtil.Count(inputShape));
        string[] lines;
        using (var s = DecodedFile.OpenDecoded(path))
        using (var r = new StreamReader(s))
            lines = r.ReadToEnd().Split('\n');
        var x = new List<float>();
        var labels = new List<int>();
        var names = new List<string>();
        int cells = -1;
        for (int li = 0; li < lines.Length; li++)
        {
            string line = lines[li].TrimEnd('\r');
            if (line.Trim().Length == 0) continue;
            var parts = line.Split(',');
            if (cells < 0)
            {
                if (parts.Length != features && parts.Length != features + 1)
                    throw new DataFormatException(path, $"line {li + 1}: {parts.Length} columns, expected {features} features for the model input {ShapeUtil.Format(inputShape)} (or {features + 1} with a last label column)");
                cells = parts.Length;
            }
            else if (parts.Length != cells)
                throw new DataFormatException(path, $"line {li + 1}: {parts.Length} columns, expected {cells} as on the first row");
            for (int c = 0; c < features; c++)
            {
                if (!float.TryParse(parts[c], NumberStyles.Float, Inv, out float v) || !float.IsFinite(v))
                    throw new DataFormatException(path, $"line {li + 1}, column {c + 1}: '{parts[c]}' is not a finite number");
                x.Add(v);
            }
            if (cells == features + 1)
            {
                if (!int.TryParse(parts[features], NumberStyles.Integer, Inv, out int l) || l < 0)
                    throw new DataFormatException(path, $"line {li + 1}, column {features + 1}: label '{parts[features]}' is not an integer >= 0");
                labels.Add(l);
            }
            names.Add($"line {li + 1}");
        }
        if (names.Count == 0) throw new DataFormatException(path, "holds no row, expected at least one");
        return new Inputs(x.ToArray(), names.Count, cells == features + 1 ? labels.ToArray() : null, names.ToArray());
    }

    private static Inputs LoadImages(string path, int[] inputShape, IReadOnlyList<string>? classNames)
    {
        // (C, H, W) inputs take images of C channels resized to H x W; flat (n) inputs take sqrt(n) x sqrt(n) grayscale (digits: 8x8).
        ImageFolderOptions options;
        if (inputShape.Length == 3 && inputShape[0] is 1 or 3) options = new(inputShape[1], inputShape[2], inputShape[0]);
        else if (inputShape.Length == 1 && (int)Math.Sqrt(inputShape[0]) is int side && side * side == inputShape[0]) options = new(side, side, 1);
        else throw new DataFormatException(path, $"images cannot feed the model input {ShapeUtil.Format(inputShape)}: expected (1 or 3, H, W) or (n) with n a square");
        if (!ImageFolder.HasClassFolders(path))
        {
            var set = ImageFolder.LoadFlat(path, options);
            return new Inputs(set.Features.ToArray(), set.Count, null, set.Files.Select(f => Path.GetRelativePath(path, f)).ToArray());
        }
        var data = ImageFolder.LoadClasses(path, options, out var files);
        var labels = data.Labels.ToArray();
        if (classNames is not null)
        {
            // Folder names are the model's class names: map them, not their sorted positions.
            var map = new int[data.ClassCount];
            for (int c = 0; c < map.Length; c++)
            {
                map[c] = classNames.ToList().IndexOf(data.ClassNames[c]);
                if (map[c] < 0)
                    throw new DataFormatException(Path.Combine(path, data.ClassNames[c]), $"class folder '{data.ClassNames[c]}' is not a class of the model; expected one of {string.Join(", ", classNames)}");
            }
            for (int i = 0; i < labels.Length; i++) labels[i] = map[labels[i]];
        }
        return new Inputs(data.Features.ToArray(), data.Count, labels, files.Select(f => Path.GetRelativePath(path, f)).ToArray());
    }

    private static string Describe(int[] inputShape) => inputShape.Length == 3
        ? $"{inputShape[1]}x{inputShape[2]} images with {inputShape[0]} channel(s)"
        : $"images of {ShapeUtil.Count(inputShape)} pixels";
}
