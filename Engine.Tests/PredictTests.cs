using System.Globalization;
using System.Text;
using System.Text.Json;
using GpuNet.Bench;
using GpuNet.Checkpoints;
using GpuNet.Data;
using GpuNet.Nn;
using GpuNet.Optim;
using GpuNet.Training;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace GpuNet.Tests;

/// <summary>A digits-mlp checkpoint trained once for <see cref="PredictTests"/> (3 epochs on the cpu device).</summary>
public sealed class TrainedDigits : IDisposable
{
    private readonly TempDir _dir = new();

    public TrainedDigits()
    {
        var (code, _, err) = BenchCli.Run("train", "digits-mlp", "--epochs", "3", "--quiet", "--out", _dir.Path, "--device", "cpu");
        Assert.True(code == 0, err);
    }

    public string Checkpoint => _dir.File("best.safetensors");

    public void Dispose() => _dir.Dispose();
}

/// <summary>The <c>predict</c> command on a trained digits-mlp: CSV, IDX and image folders against the library's own evaluation.</summary>
[Collection(nameof(ConsoleCollection))]
public sealed class PredictTests(TrainedDigits trained) : IClassFixture<TrainedDigits>
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>The library's accuracy on raw digits-like features: standardised as digits-mlp's training split, evaluated by a Trainer.</summary>
    private (double Accuracy, int Correct) LibraryAccuracy(Dataset raw)
    {
        var (train, _) = DataSplit.Stratified(DataSets.Digits(), 0.2, 1);
        var data = Standardizer.Fit(train).Apply(raw);
        using var device = Device.Create("cpu");
        var preset = Preset.Find("digits-mlp")!;
        using var model = Model.Build(device, preset.Network(preset.Defaults), [64], 64, new ModelOptions { Seed = 1 });
        Checkpoint.Restore(trained.Checkpoint, model);
        using var adam = new Adam(device, model.Parameters, model.Gradients!);
        var trainer = new Trainer(model, preset.Loss(), adam);
        using var loader = new DataLoader(device, data, 64, false, false, 1, prefetch: false, BatchTargets.Labels);
        var r = trainer.Evaluate(loader);
        var predicted = trainer.Predict(loader);
        return (r.Accuracy!.Value, predicted.Zip(raw.Labels.ToArray()).Count(p => p.First == p.Second));
    }

    private static void AssertAccuracy(string output, string json, (double Accuracy, int Correct) expected, int count)
    {
        Assert.Contains(string.Create(Inv, $"accuracy {expected.Accuracy:P2} ({expected.Correct}/{count})"), output);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        Assert.Equal(expected.Correct, doc.RootElement.GetProperty("correct").GetInt32());
        Assert.Equal(count, doc.RootElement.GetProperty("samples").GetArrayLength());
    }

    [Fact]
    public void TrainRecordsWhatPredictNeeds()
    {
        var file = Checkpoint.Read(trained.Checkpoint);
        Assert.Equal("digits-mlp", file.Preset);
        Assert.Equal([64], file.InputShape!);
        Assert.Equal(Enumerable.Range(0, 10).Select(i => i.ToString(Inv)), file.ClassNames);
        var (train, _) = DataSplit.Stratified(DataSets.Digits(), 0.2, 1);
        var std = Standardizer.Fit(train);
        Assert.Equal(std.Mean, file.Standardization!.Mean);
        Assert.Equal(std.Std, file.Standardization.Std);
    }

    [Fact]
    public void CsvWithLabelsPrintsTheLibrarysAccuracy()
    {
        using var t = new TempDir();
        var digits = DataSets.Digits();
        var sb = new StringBuilder();
        for (int i = 0; i < digits.Count; i++)
            sb.Append(string.Join(',', digits.Sample(i).ToArray().Select(v => v.ToString("R", Inv)))).Append(',').Append(digits.Labels[i]).Append('\n');
        File.WriteAllText(t["digits.csv"], sb.ToString());
        var (code, output, err) = BenchCli.Run("predict", "--checkpoint", trained.Checkpoint, "--input", t["digits.csv"], "--json", t["p.json"], "--top", "2", "--device", "cpu");
        Assert.True(code == 0, err);
        AssertAccuracy(output, t["p.json"], LibraryAccuracy(digits), digits.Count);
        // Top-2 per sample, probabilities in decreasing order.
        using var doc = JsonDocument.Parse(File.ReadAllText(t["p.json"]));
        var top = doc.RootElement.GetProperty("samples")[0].GetProperty("top");
        Assert.Equal(2, top.GetArrayLength());
        Assert.True(top[0].GetProperty("probability").GetDouble() >= top[1].GetProperty("probability").GetDouble());
        Assert.True(top[0].GetProperty("probability").GetDouble() + top[1].GetProperty("probability").GetDouble() <= 1 + 1e-12);
    }

    [Fact]
    public void ImageFolderAndIdxGiveTheLibrarysAccuracy()
    {
        using var t = new TempDir();
        var digits = DataSets.Digits();
        const int n = 40;
        // 8x8 gray images: pixel = round(feature * 255); the features the model sees are pixel / 255.
        var pixels = new byte[n * 64];
        for (int i = 0; i < pixels.Length; i++) pixels[i] = (byte)Math.Round(digits.Features[i] * 255);
        var labels = digits.Labels[..n].ToArray();
        for (int i = 0; i < n; i++)
        {
            Directory.CreateDirectory(t[$"img/{labels[i]}"]);
            using var img = Image.LoadPixelData<L8>(pixels.AsSpan(i * 64, 64), 8, 8);
            img.SaveAsPng(t[$"img/{labels[i]}/{i:D3}.png"]);
        }
        var raw = Dataset.Classification("digits-png", pixels.Select(b => b / 255f).ToArray(), [64], labels, 10);
        // The folder gives samples by class then name: the library's order must be the same for the per-sample count.
        var order = Enumerable.Range(0, n).OrderBy(i => labels[i].ToString(Inv), StringComparer.Ordinal).ThenBy(i => i).ToArray();
        var expected = LibraryAccuracy(raw.Subset(order));

        var (code, output, err) = BenchCli.Run("predict", "--checkpoint", trained.Checkpoint, "--input", t["img"], "--json", t["img.json"], "--device", "cpu");
        Assert.True(code == 0, err);
        AssertAccuracy(output, t["img.json"], expected, n);

        Idx.Write(t["x.idx"], Idx.ImageMagic, [n, 8, 8], pixels, false);
        Idx.Write(t["y.idx"], Idx.LabelMagic, [n], labels.Select(l => (byte)l).ToArray(), false);
        (code, output, err) = BenchCli.Run("predict", "--checkpoint", trained.Checkpoint, "--input", t["x.idx"], "--labels", t["y.idx"], "--json", t["idx.json"], "--device", "cpu");
        Assert.True(code == 0, err);
        AssertAccuracy(output, t["idx.json"], expected, n);

        // A flat folder: predictions by file name, no accuracy.
        Directory.CreateDirectory(t["flat"]);
        File.Copy(t[$"img/{labels[0]}/000.png"], t["flat/a.png"]);
        (code, output, err) = BenchCli.Run("predict", "--checkpoint", trained.Checkpoint, "--input", t["flat"], "--device", "cpu");
        Assert.True(code == 0, err);
        Assert.Contains("a.png: ", output);
        Assert.DoesNotContain("accuracy", output);
    }

    [Fact]
    public void WrongInputsNameTheFileTheExpectedAndTheActual()
    {
        using var t = new TempDir();
        File.WriteAllText(t["short.csv"], "1,2,3\n");
        var (code, _, err) = BenchCli.Run("predict", "--checkpoint", trained.Checkpoint, "--input", t["short.csv"], "--device", "cpu");
        Assert.Equal(1, code);
        Assert.Contains(t["short.csv"], err);
        Assert.Contains("3 columns, expected 64 features for the model input (64) (or 65 with a last label column)", err);

        File.WriteAllText(t["label.csv"], string.Join(',', Enumerable.Repeat("0", 64)) + ",12\n");
        (code, _, err) = BenchCli.Run("predict", "--checkpoint", trained.Checkpoint, "--input", t["label.csv"], "--device", "cpu");
        Assert.Equal(1, code);
        Assert.Contains(t["label.csv"] + ": label 12 is out of range: the model has 10 classes (0..9)", err);

        Idx.Write(t["x.idx"], Idx.ImageMagic, [2, 5, 5], new byte[50], false);
        (code, _, err) = BenchCli.Run("predict", "--checkpoint", trained.Checkpoint, "--input", t["x.idx"], "--device", "cpu");
        Assert.Equal(1, code);
        Assert.Contains(t["x.idx"], err);
        Assert.Contains("images of 5x5 do not fit the model input (64)", err);

        Directory.CreateDirectory(t["img/cat"]);
        using (var img = new Image<L8>(8, 8)) img.SaveAsPng(t["img/cat/a.png"]);
        (code, _, err) = BenchCli.Run("predict", "--checkpoint", trained.Checkpoint, "--input", t["img"], "--device", "cpu");
        Assert.Equal(1, code);
        Assert.Contains("class folder 'cat' is not a class of the model; expected one of 0, 1, 2", err);
    }

    [Fact]
    public void MetadataKeysAreValidatedOnSaveAndRead()
    {
        using var t = new TempDir();
        using var device = Device.Create("cpu");
        using var model = Model.Build(device, new Linear(2, 2, name: "fc"), [2], 1);
        var e = Assert.Throws<ArgumentException>(() => Checkpoint.Save(t["a.safetensors"], model, metadata: new Dictionary<string, string> { ["format"] = "x" }));
        Assert.Contains("metadata key 'format' is written by Save itself", e.Message);
        Assert.False(File.Exists(t["a.safetensors"]));
        Checkpoint.Save(t["b.safetensors"], model, metadata: new Dictionary<string, string> { [CheckpointMetadata.Standardization] = """{"mean": [1, 2], "std": [1, 0]}""" });
        var r = Assert.Throws<CheckpointException>(() => Checkpoint.Read(t["b.safetensors"]));
        Assert.Contains("finite positive standard deviations", r.Message);
        Checkpoint.Save(t["c.safetensors"], model, metadata: new Dictionary<string, string> { [CheckpointMetadata.ClassNames] = "[1, 2]" });
        r = Assert.Throws<CheckpointException>(() => Checkpoint.Read(t["c.safetensors"]));
        Assert.Contains("gpunet.class_names holds 1, expected strings", r.Message);
    }

    [Fact]
    public void WithoutPresetMetadataPredictNeedsThePresetOption()
    {
        using var t = new TempDir();
        using var device = Device.Create("cpu");
        var preset = Preset.Find("digits-mlp")!;
        using (var model = Model.Build(device, preset.Network(preset.Defaults), [64], 8))
        {
            Checkpoint.Restore(trained.Checkpoint, model);
            Checkpoint.Save(t["plain.safetensors"], model);
        }
        File.WriteAllText(t["x.csv"], string.Join(',', Enumerable.Repeat("0.5", 64)) + "\n");
        var (code, _, err) = BenchCli.Run("predict", "--checkpoint", t["plain.safetensors"], "--input", t["x.csv"], "--device", "cpu");
        Assert.Equal(2, code);
        Assert.Contains("--preset is absent", err);
        Assert.Contains("'gpunet.preset' metadata key", err);
        (code, var output, err) = BenchCli.Run("predict", "--checkpoint", t["plain.safetensors"], "--preset", "digits-mlp", "--input", t["x.csv"], "--device", "cpu");
        Assert.True(code == 0, err);
        Assert.Contains("line 1: ", output);
    }

    /// <summary>
    /// A run from a config file records no preset: predict rebuilds the network from the config in the checkpoint (here
    /// a 48-wide hidden layer and a feature scale of 0.5, which the preset would get wrong) and applies the run's scale
    /// and standardisation.
    /// </summary>
    [Fact]
    public void ConfigRunsPredictFromTheirOwnConfig()
    {
        using var t = new TempDir();
        var (code, json, err) = BenchCli.Run("train", "digits-mlp", "--print-config", "--format", "json");
        Assert.True(code == 0, err);
        json = json.Replace("\"out_features\": 128", "\"out_features\": 48").Replace("\"scale\": 1.0", "\"scale\": 0.5").Replace("\"name\": \"digits-mlp\"", "\"name\": \"digits-48\"");
        File.WriteAllText(t["digits-48.json"], json);
        (code, _, err) = BenchCli.Run("train", "--config", t["digits-48.json"], "--epochs", "3", "--quiet", "--out", t["run"], "--device", "cpu");
        Assert.True(code == 0, err);
        var file = Checkpoint.Read(t["run/best.safetensors"]);
        Assert.Null(file.Preset);
        Assert.Equal([48, 64], file["fc1.weight"].Shape);

        // The library's view: the config's own data (scaled, standardised) through the restored network.
        var experiment = GpuNet.Experiments.Experiment.Load(t["digits-48.json"]);
        var data = experiment.LoadData();
        using var device = Device.Create("cpu");
        using var model = Model.Build(device, experiment.CreateNetwork(), [64], 64, new ModelOptions { Seed = 1 });
        Checkpoint.Restore(file, model);
        using var adam = new Adam(device, model.Parameters, model.Gradients!);
        var trainer = new Trainer(model, new CrossEntropyLoss(), adam);
        using var loader = new DataLoader(device, data.Validation!, 64, false, false, 1, prefetch: false, BatchTargets.Labels);
        var predicted = trainer.Predict(loader);
        int correct = predicted.Zip(data.Validation!.Labels.ToArray()).Count(p => p.First == p.Second);

        // The same validation samples, raw, as a CSV with labels.
        var (train, val) = DataSplit.Stratified(DataSets.Digits(), 0.2, 1);
        var sb = new StringBuilder();
        for (int i = 0; i < val.Count; i++)
            sb.Append(string.Join(',', val.Sample(i).ToArray().Select(v => v.ToString("R", Inv)))).Append(',').Append(val.Labels[i]).Append('\n');
        File.WriteAllText(t["val.csv"], sb.ToString());
        (code, var output, err) = BenchCli.Run("predict", "--checkpoint", t["run/best.safetensors"], "--input", t["val.csv"], "--json", t["p.json"], "--device", "cpu");
        Assert.True(code == 0, err);
        Assert.Contains("GpuNet predict | digits-48 from", output);
        AssertAccuracy(output, t["p.json"], ((double)correct / val.Count, correct), val.Count);
    }
}
