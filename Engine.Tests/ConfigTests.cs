using System.Text.Json;
using GpuNet.Bench;
using GpuNet.Checkpoints;
using GpuNet.Experiments;
using GpuNet.Nn;

namespace GpuNet.Tests;

/// <summary>
/// Runs described in a config file (<c>train --config</c>, <c>train &lt;preset&gt; --print-config</c>): every preset
/// round-trips through both formats to the same network and settings, every kind of bad input is an error naming the
/// key path (and the line for syntax errors) before any data is read, and a config trains end to end.
/// </summary>
[Collection(nameof(ConsoleCollection))]
public sealed class ConfigTests(BackendFixture f) : DeviceTestBase(f), IClassFixture<BackendFixture>
{
    public static TheoryData<string, string> PresetsAndFormats()
    {
        var data = new TheoryData<string, string>();
        foreach (var p in Preset.All.Concat(Preset.Cnn))
            foreach (var fmt in new[] { "json", "yaml" }) data.Add(p.Name, fmt);
        return data;
    }

    private static string PrintConfig(string preset, string format)
    {
        var (code, output, err) = BenchCli.Run("train", preset, "--print-config", "--format", format);
        Assert.True(code == 0, err);
        return output;
    }

    private static ConfigFormat Format(string f) => f == "json" ? ConfigFormat.Json : ConfigFormat.Yaml;

    /// <summary>
    /// print-config -> parse -> build gives the preset's own network (the C# definition in Presets.cs): same layer
    /// names, parameter names, shapes and count, bit-identical initial weights for the same seed; and the preset's
    /// settings (epochs, batch, seed, optimizer and lr, schedule, regularisation, early stopping, data split).
    /// </summary>
    [Theory, MemberData(nameof(PresetsAndFormats))]
    public void EveryPresetPrintsAConfigThatRebuildsTheSameRun(string name, string format)
    {
        Use("cpu");
        var preset = Preset.Find(name)!;
        var s = preset.Defaults;
        var x = Experiment.Parse(PrintConfig(name, format), Format(format), name);

        using var expected = Model.Build(D, preset.Network(s), x.SampleShape, 3, new ModelOptions { Seed = 7 });
        using var actual = Model.Build(D, x.CreateNetwork(), x.SampleShape, 3, new ModelOptions { Seed = 7 });
        Assert.Equal(expected.ParameterCount, actual.ParameterCount);
        Assert.Equal(expected.ParameterTable.Select(e => (e.Name, string.Join('x', e.Shape), e.Offset, e.IsBuffer)),
            actual.ParameterTable.Select(e => (e.Name, string.Join('x', e.Shape), e.Offset, e.IsBuffer)));
        Assert.Equal(expected.Summary().Layers.Select(l => (l.Name, l.Kind, string.Join('x', l.OutputShape))),
            actual.Summary().Layers.Select(l => (l.Name, l.Kind, string.Join('x', l.OutputShape))));
        Assert.Equal(expected.Parameters.ToArray(), actual.Parameters.ToArray());
        Assert.Equal(expected.Buffers.ToArray(), actual.Buffers.ToArray());

        var c = x.Config;
        Assert.Equal((s.Epochs, s.BatchSize, s.Seed, "fp32"), (c.Training.Epochs, c.Training.BatchSize, c.Training.Seed, c.Training.Precision));
        Assert.Equal(s.LearningRate, c.Optimizer.Double("lr"));
        Assert.Equal(s.Optimizer switch { "momentum" or "nesterov" => "sgd", var o => o }, c.Optimizer.Type);
        Assert.Equal(s.Optimizer is "momentum" or "nesterov" ? 0.9 : null, c.Optimizer.Type == "sgd" ? c.Optimizer.Double("momentum") : null);
        Assert.Equal(s.Optimizer == "nesterov", c.Optimizer.Type == "sgd" && c.Optimizer.Bool("nesterov"));
        Assert.Equal(s.Schedule, c.Schedule.Type);
        Assert.Empty(c.Schedule.Args);
        Assert.Equal(new RegularizationConfig(s.L1, s.L2, s.WeightDecay), c.Regularization);
        Assert.Equal(s.Patience, c.Training.EarlyStopping?.Patience);
        Assert.Equal(preset.DataConfig.Source.Type, c.Data.Source.Type);
        Assert.Equal((preset.DataConfig.ValidationFraction, preset.DataConfig.Standardize), (c.Data.ValidationFraction, c.Data.Standardize));
        Assert.Equal(preset.DataConfig.Augment.Select(a => a.Type), c.Data.Augment.Select(a => a.Type));
        Assert.Equal(preset.Loss().GetType(), x.CreateLoss().GetType());
        // The same config, whichever format it went through.
        Assert.Equal(preset.ToConfig(s).ToText(ConfigFormat.Json), c.ToText(ConfigFormat.Json));
    }

    /// <summary>JSON -> YAML -> JSON gives the same text, and the YAML parses to the same tree as the JSON.</summary>
    /// <summary>A component built in code from another table's kind is refused by name, never built as some default.</summary>
    [Fact]
    public void BuildersRefuseAKindOfAnotherTable()
    {
        var cosine = Component.Of(ConfigKinds.Schedules.Single(k => k.Name == "cosine"));
        var e = Assert.Throws<ArgumentException>(() => Experiment.CreateLoss(cosine));
        Assert.Equal("loss", e.ParamName);
        Assert.Contains("unknown kind 'cosine'; expected one of cross_entropy, bce_with_logits, mse, hinge, multi_margin", e.Message);
        var mse = Component.Of(ConfigKinds.Losses.Single(k => k.Name == "mse"));
        e = Assert.Throws<ArgumentException>(() => Experiment.CreateSchedule(mse, 0.1, 2, 10));
        Assert.Equal("schedule", e.ParamName);
        Assert.Contains("unknown kind 'mse'", e.Message);
    }

    [Fact]
    public void JsonAndYamlRoundTripToTheSameConfig()
    {
        foreach (var p in Preset.All.Concat(Preset.Cnn))
        {
            string json = PrintConfig(p.Name, "json");
            string yaml = Experiment.Parse(json, ConfigFormat.Json).Config.ToText(ConfigFormat.Yaml);
            Assert.Equal(yaml, PrintConfig(p.Name, "yaml"));
            Assert.Equal(json, Experiment.Parse(yaml, ConfigFormat.Yaml).Config.ToText(ConfigFormat.Json));
        }
    }

    private const string Good = """
        data: {source: digits, validation_fraction: 0.2, standardize: true}
        layers:
          - {type: linear, out_features: 32, name: fc1}
          - relu
          - {type: linear, out_features: 10, name: out}
        loss: cross_entropy
        optimizer: {type: adam, lr: 0.001}
        training: {epochs: 2, batch_size: 32}
        """;

    private static ConfigException Bad(string yaml, string? baseDirectory = null)
        => Assert.Throws<ConfigException>(() => Experiment.Parse(yaml, ConfigFormat.Yaml, "run.yaml", baseDirectory));

    public static TheoryData<string, string, string> BadConfigs() => new()
    {
        // what changes in the good config, then the expected error text
        { "layers:\n  - {type: linear, out_featurs: 32, name: fc1}", "layers[0].out_featurs: unknown key", "did you mean 'out_features'?" },
        { "layers:\n  - {type: linear, out_features: many}", "layers[0].out_features: expected an integer in [1, 2147483647], got \"many\"", "" },
        { "layers:\n  - {type: linear, out_features: 0}", "layers[0].out_features: expected an integer in [1, 2147483647], got 0", "" },
        { "layers:\n  - {type: linear}", "layers[0].out_features: missing; layer \"linear\" needs an integer", "" },
        { "layers:\n  - {type: linear, in_features: 60, out_features: 10}", "layers[0].in_features: expected 64 (the size of the incoming (64)), got 60", "" },
        { "layers:\n  - {type: conv2d, out_channels: 4, kernel_size: 3}", "layers[0]: conv2d needs (C, H, W) samples, got (64)", "" },
        { "layers:\n  - {type: dense, units: 4}", "layers[0].type: unknown layer \"dense\"; expected one of linear, conv2d", "" },
        { "layers:\n  - {type: linear, out_features: 5}", "layers: loss cross_entropy needs an output of (10)", "the last layer gives (5)" },
        { "layers:\n  - {type: dropout, p: 1.0}\n  - {type: linear, out_features: 10}", "layers[0].p: expected a number in [0, 1), got 1.0", "" },
        { "layers:\n  - {type: linear, out_features: 10, weight_init: {type: normal, std: -1}}", "layers[0].weight_init.std: expected a number > 0, got -1", "" },
        { "training: {epochs: 2, batch_size: 32, precision: fp16}", "training.precision: expected one of fp32, got \"fp16\"", "" },
        { "training: {epochs: 2.5, batch_size: 32}", "training.epochs: expected an integer in [1, 2147483647], got 2.5", "" },
        { "optimizer: {type: adam, lr: 0}", "optimizer.lr: expected a number > 0, got 0", "" },
        { "optimizer: lbfgs", "optimizer: unknown optimizer \"lbfgs\"; expected one of sgd, adagrad, rmsprop, adam, adamw", "" },
        { "schedule: {type: step, gamma: 2}", "schedule.gamma: expected a number in (0, 1], got 2", "" },
        { "loss: [cross_entropy]", "loss: expected a loss: one of cross_entropy", "got a list of 1" },
        { "epochs: 3", "epochs: unknown key; expected one of name, description, data", "" },
        { "data: {source: digits, augment: [{type: random_crop, padding: 2}]}", "data.augment: augmentation needs (C, H, W) images, got samples of (64)", "" },
        { "data: {source: {type: csv, path: missing.csv, label_column: y}}", "data.source.path: no such file:", "missing.csv" },
    };

    /// <summary>Each bad config is rejected with the key path, the expected and the actual value, before any data is read.</summary>
    [Theory, MemberData(nameof(BadConfigs))]
    public void BadConfigsNameTheKeyPathTheExpectedAndTheActualValue(string change, string expected, string more)
    {
        var e = Bad(Replace(Good, change));
        Assert.Contains(expected, e.Message);
        Assert.Contains(more, e.Message);
        Assert.Contains("run.yaml", e.Message);
    }

    // Replaces the top-level section the change starts with (the lines up to the next top-level key).
    private static string Replace(string yaml, string change)
    {
        string key = change[..change.IndexOf(':')];
        var lines = yaml.Split('\n').ToList();
        int at = lines.FindIndex(l => l.StartsWith(key + ":", StringComparison.Ordinal));
        if (at < 0) return yaml + "\n" + change;
        int end = at + 1;
        while (end < lines.Count && lines[end].StartsWith(' ')) end++;
        lines.RemoveRange(at, end - at);
        lines.Insert(at, change);
        return string.Join('\n', lines);
    }

    /// <summary>Every error at once: schema errors and the shape errors of the parts that did parse, in JSON and YAML alike.</summary>
    [Fact]
    public void AllErrorsAreReportedAtOnceAndTheSameInBothFormats()
    {
        const string yaml = """
            data: {source: mnist, validation_fraction: 1.5}
            layers:
              - {type: conv2d, out_channels: 8, kernel_size: 3}
              - {type: max_pool2d, kernel_size: 40}
            loss: cross_entropy
            optimizer: {type: sgd, lr: -1}
            training: {epochs: 1, batch_size: 0}
            """;
        const string json = """
            {"data": {"source": "mnist", "validation_fraction": 1.5},
             "layers": [{"type": "conv2d", "out_channels": 8, "kernel_size": 3}, {"type": "max_pool2d", "kernel_size": 40}],
             "loss": "cross_entropy", "optimizer": {"type": "sgd", "lr": -1}, "training": {"epochs": 1, "batch_size": 0}}
            """;
        var fromYaml = Assert.Throws<ConfigException>(() => Experiment.Parse(yaml, ConfigFormat.Yaml)).Errors;
        var fromJson = Assert.Throws<ConfigException>(() => Experiment.Parse(json, ConfigFormat.Json)).Errors;
        Assert.Equal(fromJson.Select(e => e.Path + ": " + e.Message), fromYaml.Select(e => e.Path + ": " + e.Message));
        Assert.Equal(["data.validation_fraction", "optimizer.lr", "training.batch_size", "layers[1]"], fromYaml.Select(e => e.Path));
        Assert.Contains("a 40x40 window (padding 0) does not fit", fromYaml[3].Message);
        Assert.Contains("(8, 26, 26)", fromYaml[3].Message);
        Assert.Equal([1, 6, 7], fromYaml.Take(3).Select(e => e.Line));   // YAML values carry their line
    }

    [Theory]
    [InlineData("yaml", "data:\n  source: digits\n layers: [\n", 3, "YAML syntax error")]
    [InlineData("yaml", "data: {source: digits}\nlayers: [relu\nloss: mse\n", 3, "YAML syntax error")]
    [InlineData("json", "{\"data\": {\"source\": \"digits\"},\n \"layers\": [\n  \"relu\"\n,],,\n}", 4, "JSON syntax error")]
    [InlineData("json", "{\"data\": 1,\n \"data\": 2}", 0, "data: duplicate key")]
    [InlineData("yaml", "data: 1\ndata: 2\n", 2, "Duplicate key")]
    public void SyntaxErrorsGiveTheLine(string format, string text, int line, string expected)
    {
        var e = Assert.Throws<ConfigException>(() => Experiment.Parse(text, Format(format), "run." + format));
        Assert.Contains(expected, e.Message);
        Assert.Equal(line, e.Errors[0].Line);
        if (line > 0) Assert.Contains($"line {line}:", e.Message);
    }

    /// <summary>The command line: a bad config exits 2 naming the file and key; preset and --config together, or neither, exit 2.</summary>
    [Fact]
    public void TheCommandLineRejectsBadConfigsWithExit2()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("bad.yaml"), Replace(Good, "optimizer: {type: adam, lr: -0.5}"));
        File.WriteAllText(dir.File("run.txt"), Good);
        var (code, _, err) = BenchCli.Run("train", "--config", dir.File("bad.yaml"), "--device", "cpu");
        Assert.Equal(2, code);
        Assert.Contains("bad.yaml", err);
        Assert.Contains("line 7: optimizer.lr: expected a number > 0, got -0.5", err);
        Assert.Equal(2, BenchCli.Run("train", "--config", dir.File("run.txt")).Code);
        Assert.Equal(2, BenchCli.Run("train", "--config", dir.File("missing.yaml")).Code);
        Assert.Contains("expected a preset name or --config PATH", BenchCli.Run("train").Err);
        Assert.Contains("not both", BenchCli.Run("train", "digits-mlp", "--config", dir.File("bad.yaml")).Err);
    }

    /// <summary>Command-line options override a config file; --print-config shows the result (named after the file when the config has no name).</summary>
    [Fact]
    public void OptionsOverrideAConfigFile()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("run.yaml"), Replace(Good, "layers:\n  - {type: linear, out_features: 32}\n  - {type: dropout, p: 0.1}\n  - {type: sequential, layers: [{type: dropout, p: 0.1}, {type: linear, out_features: 10}]}"));
        var (code, output, err) = BenchCli.Run("train", "--config", dir.File("run.yaml"), "--print-config", "--epochs", "7", "--dropout", "0.25",
            "--optimizer", "nesterov", "--lr", "0.05", "--schedule", "step", "--weight-decay", "0.001", "--patience", "3", "--seed", "9");
        Assert.True(code == 0, err);
        var c = Experiment.Parse(output, ConfigFormat.Yaml).Config;
        Assert.Equal("run", c.Name);
        Assert.Equal((7, 9UL, 3), (c.Training.Epochs, c.Training.Seed, c.Training.EarlyStopping!.Patience));
        Assert.Equal(("sgd", 0.05, 0.9, true), (c.Optimizer.Type, c.Optimizer.Double("lr"), c.Optimizer.Double("momentum"), c.Optimizer.Bool("nesterov")));
        Assert.Equal(("step", 0.001), (c.Schedule.Type, c.Regularization.WeightDecay));
        Assert.Equal([0.25, 0.25], [c.Layers[1].Double("p")!.Value, c.Layers[2].Layers("layers")![0].Double("p")!.Value]);
    }

    /// <summary>
    /// digits-mlp's printed config, trained through <c>train --config</c>, reaches the preset's floor (validation accuracy
    /// &gt;= 96%), and its checkpoint carries the config (gpunet.description), which parses back to the same run.
    /// </summary>
    [Fact]
    public void ADigitsConfigTrainsToThePresetsAccuracyAndTheCheckpointCarriesIt()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("run.yaml"), PrintConfig("digits-mlp", "yaml"));
        var (code, output, err) = BenchCli.Run("train", "--config", dir.File("run.yaml"), "--device", "cpu", "--quiet", "--out", dir.File("out"), "--json", dir.File("s.json"));
        Assert.True(code == 0, err);
        Assert.Contains("GpuNet train digits-mlp", output);
        using var json = JsonDocument.Parse(File.ReadAllText(dir.File("s.json")));
        double acc = json.RootElement.GetProperty("best").GetProperty("val_accuracy").GetDouble();
        Assert.True(acc >= 0.96, $"validation accuracy {acc:P2} < 96%");
        var stored = Checkpoint.Read(Path.Combine(dir.File("out"), "best.safetensors")).Description!;
        Assert.Equal(Experiment.Parse(File.ReadAllText(dir.File("run.yaml")), ConfigFormat.Yaml).Config.ToText(ConfigFormat.Json), stored);
        Assert.Equal(stored, Experiment.Parse(stored, ConfigFormat.Json).Config.ToText(ConfigFormat.Json));
    }

    /// <summary>The README's recipe: copy mnist-cnn's config, change the channels (nothing else: sizes are inferred), and it builds and trains a step.</summary>
    [Fact]
    public void AModifiedMnistCnnConfigBuildsAndRunsOneStep()
    {
        Use("cpu");
        string yaml = PrintConfig("mnist-cnn", "yaml").Replace("out_channels: 32", "out_channels: 12").Replace("out_channels: 64", "out_channels: 20");
        var x = Experiment.Parse(yaml, ConfigFormat.Yaml);
        using var model = Model.Build(D, x.CreateNetwork(), x.SampleShape, 4, new ModelOptions { Seed = 3 });
        Assert.Equal([12, 1, 3, 3], model.ParameterTable.Single(e => e.Name == "conv1.weight").Shape);
        Assert.Equal([20, 12, 3, 3], model.ParameterTable.Single(e => e.Name == "conv2.weight").Shape);
        Assert.Equal([128, 20 * 7 * 7], model.ParameterTable.Single(e => e.Name == "fc1.weight").Shape);
        using var optimizer = x.CreateOptimizer(model);
        using var input = D.FromArray(TestData.Uniform(5, 4 * 28 * 28), 4, 1, 28, 28);
        using var labels = D.FromArray(new[] { 3, 1, 4, 1 }, 4);
        using var loss = D.Zeros(1);
        var before = model.Parameters.ToArray();
        model.ForwardBackward(input, labels, x.CreateLoss(), loss);
        optimizer.Step();
        Assert.True(float.IsFinite(loss.ToArray()[0]));
        Assert.NotEqual(before, model.Parameters.ToArray());
    }

    /// <summary>A CSV with a named label column: features from the other columns, class names from the labels; a missing column or a bad cell names the file.</summary>
    [Fact]
    public void ACsvSourceReadsTheNamedLabelColumnAndRejectsBadFiles()
    {
        using var dir = new TempDir();
        var rows = Enumerable.Range(0, 40).Select(i => $"{i % 5}.5,{(i % 2 == 0 ? "setosa" : "virginica")},{i * 0.25}");
        File.WriteAllLines(dir.File("flowers.csv"), ["width,species,length", .. rows]);
        string cfg = Replace(Replace(Good, "data: {source: {type: csv, path: flowers.csv, label_column: species}, validation_fraction: 0.25}"),
            "layers:\n  - {type: linear, out_features: 2}");
        var x = Experiment.Parse(cfg, ConfigFormat.Yaml, "run.yaml", dir.Path);
        Assert.Equal([2], x.SampleShape);
        var data = x.LoadData();
        Assert.Equal((30, 10), (data.Train.Count, data.Validation!.Count));
        Assert.Equal(["setosa", "virginica"], data.Train.ClassNames);
        Assert.Equal([15, 15], data.Train.ClassCounts());
        Assert.Equal([0.5f, 0f], data.Validation.Sample(0).ToArray());   // row 0 (width, length), drawn into validation by seed 1
        Assert.Equal([1.5f, 0.25f], data.Train.Sample(0).ToArray());  // row 1

        var missing = Bad(cfg.Replace("label_column: species", "label_column: kind"), dir.Path);
        Assert.Contains("data.source.label_column: \"kind\" is not a column of", missing.Message);
        Assert.Contains("flowers.csv; its columns are width, species, length", missing.Message);

        File.WriteAllLines(dir.File("flowers.csv"), ["width,species,length", "1,setosa,2", "1,setosa,x"]);
        var bad = Assert.Throws<Data.DataFormatException>(() => Experiment.Parse(cfg, ConfigFormat.Yaml, "run.yaml", dir.Path).LoadData());
        Assert.Contains("flowers.csv", bad.Message);
        Assert.Contains("line 3, column 'length': 'x' is not a finite number", bad.Message);
    }

    /// <summary>An IDX pair: the shape comes from the 16-byte header; a missing labels file or a bad magic number is a config error.</summary>
    [Fact]
    public void AnIdxSourceReadsTheShapeFromTheHeader()
    {
        using var dir = new TempDir();
        var pixels = Enumerable.Range(0, 6 * 4 * 3).Select(i => (byte)i).ToArray();
        Data.Idx.Write(dir.File("x.idx"), Data.Idx.ImageMagic, [6, 4, 3], pixels, gzip: true);
        Data.Idx.Write(dir.File("y.idx"), Data.Idx.LabelMagic, [6], new byte[] { 0, 1, 2, 0, 1, 2 }, gzip: false);
        string cfg = Replace(Replace(Good, "data: {source: {type: idx, images: x.idx, labels: y.idx, classes: 3}}"), "layers:\n  - flatten\n  - {type: linear, out_features: 3}");
        var x = Experiment.Parse(cfg, ConfigFormat.Yaml, "run.yaml", dir.Path);
        Assert.Equal([1, 4, 3], x.SampleShape);
        var data = x.LoadData();
        Assert.Equal(6, data.Train.Count);
        Assert.Equal(12f / 255f, data.Train.Sample(1)[0]);
        Assert.Contains("data.source.labels: no such file:", Bad(cfg.Replace("labels: y.idx", "labels: z.idx"), dir.Path).Message);
        var magic = Bad(cfg.Replace("images: x.idx", "images: y.idx"), dir.Path).Errors.Single();
        Assert.Equal("data.source.images", magic.Path);
        Assert.Contains("y.idx", magic.Message);
        Assert.Contains("wrong magic number 2049, expected 2051", magic.Message);
    }

    /// <summary>
    /// An image folder: the shape comes from the first image's header and the classes from the subfolders before any
    /// pixel is decoded; a folder of mixed sizes fails at loading, naming the file, before training.
    /// </summary>
    [Fact]
    public void AnImageFolderSourceInfersTheShapeAndRejectsMixedSizes()
    {
        using var dir = new TempDir();
        foreach (var (cls, n) in new[] { ("cat", 3), ("dog", 2) })
        {
            Directory.CreateDirectory(dir.File($"img/{cls}"));
            for (int i = 0; i < n; i++)
                using (var img = new SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.L8>(6, 5, new SixLabors.ImageSharp.PixelFormats.L8((byte)(40 * i))))
                    SixLabors.ImageSharp.ImageExtensions.SaveAsPng(img, dir.File($"img/{cls}/{i}.png"));
        }
        string cfg = Replace(Replace(Good, "data: {source: {type: image_folder, path: img}}"), "layers:\n  - flatten\n  - {type: linear, out_features: 2}");
        var x = Experiment.Parse(cfg, ConfigFormat.Yaml, "run.yaml", dir.Path);
        Assert.Equal([1, 5, 6], x.SampleShape);
        Assert.Equal(2, x.ClassCount);
        var data = x.LoadData();
        Assert.Equal([3, 2], data.Train.ClassCounts());
        Assert.Equal(40f / 255f, data.Train.Sample(1)[0]);

        var wrongHead = Bad(cfg.Replace("out_features: 2", "out_features: 3"), dir.Path);
        Assert.Contains("loss cross_entropy needs an output of (2)", wrongHead.Message);
        Assert.Contains("data.source.path: no such folder:", Bad(cfg.Replace("path: img", "path: imgs"), dir.Path).Message);

        using (var big = new SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.L8>(7, 5))
            SixLabors.ImageSharp.ImageExtensions.SaveAsPng(big, dir.File("img/dog/9.png"));
        var e = Assert.Throws<Data.DataFormatException>(() => Experiment.Parse(cfg, ConfigFormat.Yaml, "run.yaml", dir.Path).LoadData());
        Assert.Contains("9.png", e.Message);
    }

    /// <summary>The example of docs/config.md and the README's config section parse and validate (no data is read).</summary>
    [Fact]
    public void TheDocumentedExamplesAreValidConfigs()
    {
        foreach (var file in new[] { "docs/config.md", "README.md" })
        {
            string text = File.ReadAllText(Path.Combine(RepoRoot(), file)).ReplaceLineEndings("\n");
            int start = text.IndexOf("```yaml\n", StringComparison.Ordinal);
            Assert.True(start >= 0, $"{file} has no yaml example");
            start += "```yaml\n".Length;
            string yaml = text[start..text.IndexOf("```", start, StringComparison.Ordinal)];
            var x = Experiment.Parse(yaml, ConfigFormat.Yaml, file);
            Assert.Equal([1, 28, 28], x.SampleShape);
        }
    }

    private static string RepoRoot()
    {
        string root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "GpuNet.sln"))) root = Path.GetDirectoryName(root) ?? throw new DirectoryNotFoundException("GpuNet.sln not found above the test binaries");
        return root;
    }

    /// <summary>docs/config.md holds the reference generated from the schema tables, so a new key cannot go undocumented.</summary>
    [Fact]
    public void TheDocsHoldTheSchemaReference()
    {
        string docs = File.ReadAllText(Path.Combine(RepoRoot(), "docs", "config.md")).ReplaceLineEndings("\n");
        Assert.Contains(ConfigDocs.Reference(), docs);
    }
}
