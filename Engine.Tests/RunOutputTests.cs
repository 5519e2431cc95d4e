using System.Globalization;
using System.Text.Json;
using GpuNet.Bench;
using GpuNet.Data;
using GpuNet.Nn;
using GpuNet.Training;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.PixelFormats;

namespace GpuNet.Tests;

/// <summary>What <c>train</c> writes besides its summary: <c>--csv</c>, <c>--tensorboard</c> and the pictures of <c>--out</c>.</summary>
[Collection(nameof(ConsoleCollection))]
public sealed class RunOutputTests
{
    [Fact]
    public void TheCsvHasTheJsonHistorysColumnsAndValues()
    {
        using var dir = new TempDir();
        var (code, output, err) = BenchCli.Run("train", "digits-mlp", "--epochs", "3", "--quiet", "--device", "cpu",
            "--csv", dir.File("logs/h.csv"), "--json", dir.File("s.json"), "--tensorboard", dir.File("tb"));
        Assert.True(code == 0, err);
        Assert.Contains("tensorboard: " + dir.File("tb"), output);
        Assert.Single(Directory.GetFiles(dir.File("tb"), "events.out.tfevents.*"));
        using var json = JsonDocument.Parse(File.ReadAllText(dir.File("s.json")));
        var history = json.RootElement.GetProperty("history").EnumerateArray().ToArray();
        var lines = File.ReadAllLines(dir.File("logs/h.csv"));
        Assert.Equal(history.Length + 1, lines.Length);
        var header = lines[0].Split(',');
        Assert.Equal(history[0].EnumerateObject().Select(p => p.Name).ToArray(), header);
        for (int r = 0; r < history.Length; r++)
        {
            var cells = lines[r + 1].Split(',');
            Assert.Equal(header.Length, cells.Length);
            for (int c = 0; c < header.Length; c++)
            {
                var want = history[r].GetProperty(header[c]);
                if (want.ValueKind == JsonValueKind.Null) Assert.Equal("", cells[c]);
                else Assert.True(want.GetDouble() == double.Parse(cells[c], CultureInfo.InvariantCulture), $"row {r + 1} {header[c]}: csv {cells[c]}, json {want}");
            }
        }
    }

    [Fact]
    public void CsvRowsAreOnDiskAsEachEpochEnds()
    {
        using var dir = new TempDir();
        using var device = Device.Create("cpu");
        var (x, y) = TrainerTests.Blobs(60, 3);
        using var model = Model.Build(device, new Sequential(new Linear(2, 8), new ActivationLayer(Kernels.Activation.Tanh), new Linear(8, 3)), [2], 16);
        using var optimizer = OptimizerFactory.Adam(model, 1e-2);
        using var train = new ArrayBatchSource(device, x, [2], y, 16, true, seed: 1);
        var trainer = new Trainer(model, new CrossEntropyLoss(), optimizer);
        var seen = new List<int>();
        using (var csv = new CsvHistoryLog(dir.File("h.csv"), []))
            trainer.Fit(train, null, 3, csv, new LineCounter(dir.File("h.csv"), seen));
        Assert.Equal([2, 3, 4], seen);   // header + one row per finished epoch, readable while the run goes on
        var cells = File.ReadAllLines(dir.File("h.csv"))[1].Split(',');
        Assert.Equal(("", ""), (cells[4], cells[5]));   // no validation: empty val_loss and val_accuracy
    }

    [Fact]
    public void UnwritableLogPathsFailBeforeTheFirstEpoch()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("file"), "not a directory");
        foreach (var option in new[] { "--tensorboard", "--csv" })
        {
            var (code, output, err) = BenchCli.Run("train", "digits-mlp", "--epochs", "2", "--quiet", "--device", "cpu", option, Path.Combine(dir.File("file"), "x"));
            Assert.Equal(1, code);
            Assert.Contains(Path.Combine(dir.File("file"), "x"), err);
            Assert.DoesNotContain("epoch ", output);
        }
    }

    [Fact]
    public void ATabularRunDrawsTheConfusionMatrixButNoMistakes()
    {
        using var dir = new TempDir();
        var (code, _, err) = BenchCli.Run("train", "digits-mlp", "--epochs", "2", "--quiet", "--device", "cpu", "--out", dir.Path);
        Assert.True(code == 0, err);
        CheckPng(dir.File("confusion.png"), Plot.ConfusionWidth, Plot.ConfusionHeight);
        Assert.False(File.Exists(dir.File("mistakes.png")));
    }

    [Fact]
    public void AnImageRunDrawsTheMostConfidentMistakes()
    {
        using var dir = new TempDir();
        using var device = Device.Create("cpu");
        // the 8x8 digits as (1, 8, 8) images, a small CNN-free model trained briefly so that it still makes mistakes
        var (train, val) = DataSplit.Stratified(DataSets.Digits(), 0.2, seed: 1);
        var std = Standardizer.Fit(train);
        Dataset AsImages(Dataset d) => Dataset.Classification(d.Name, d.Features, [1, 8, 8], d.Labels, d.ClassCount, [.. d.ClassNames]);
        var (trainImages, valImages) = (AsImages(std.Apply(train)), AsImages(std.Apply(val)));
        using var model = Model.Build(device, new Sequential(new Flatten(), new Linear(64, 10)), [1, 8, 8], 32);
        using var optimizer = OptimizerFactory.Adam(model, 1e-3);
        using var trainData = new DataLoader(device, trainImages, 32, shuffle: true, dropLast: false, seed: 1);
        using var valData = new DataLoader(device, valImages, 32, shuffle: false, dropLast: false, seed: 1);
        var trainer = new Trainer(model, new CrossEntropyLoss(), optimizer);
        trainer.Fit(trainData, null, 1);
        var eval = trainer.Evaluate(valData);

        var written = RunPictures.Write(dir.Path, "test", trainer, valData, valImages, eval);
        Assert.Equal([dir.File("confusion.png"), dir.File("mistakes.png")], written);
        CheckPng(dir.File("confusion.png"), Plot.ConfusionWidth, Plot.ConfusionHeight);

        // the chosen mistakes, recomputed here: wrong argmax, sorted by softmax probability of the predicted class
        float[] logits = trainer.PredictScores(valData);
        var wrong = new List<(int Index, double Confidence)>();
        for (int i = 0; i < valImages.Count; i++)
        {
            var row = logits.AsSpan(i * 10, 10).ToArray();
            int pred = Array.IndexOf(row, row.Max());
            if (pred == valImages.Labels[i]) continue;
            wrong.Add((i, 1 / row.Sum(v => Math.Exp((double)v - row.Max()))));
        }
        Assert.True(wrong.Count >= RunPictures.MistakeCount, $"only {wrong.Count} mistakes after one epoch");
        var mistakes = RunPictures.MostConfident(logits, valImages.Labels, 10, RunPictures.MistakeCount);
        Assert.Equal(wrong.OrderByDescending(w => w.Confidence).Take(RunPictures.MistakeCount).Select(w => w.Index), mistakes.Select(m => m.Index));
        Assert.All(mistakes, m => Assert.NotEqual(m.Actual, m.Predicted));
        Assert.Equal(1 - (double)wrong.Count / valImages.Count, eval.Accuracy!.Value, 12);
        int rows = (RunPictures.MistakeCount + Plot.MistakeColumns - 1) / Plot.MistakeColumns;
        CheckPng(dir.File("mistakes.png"), Plot.MistakeColumns * Plot.MistakeCellWidth, rows * Plot.MistakeCellHeight);
    }

    [Fact]
    public void MostConfidentMistakesAreTheWrongOnesRankedByConfidence()
    {
        // 4 samples x 3 classes: sample 0 right; 1 wrong, barely; 2 wrong, confidently; 3 wrong, in between
        float[] logits = [5, 0, 0, /**/ 1, 1.1f, 0, /**/ 0, 0, 9, /**/ 0, 3, 0];
        int[] labels = [0, 0, 1, 2];
        var m = RunPictures.MostConfident(logits, labels, 3, 10);
        Assert.Equal([2, 3, 1], m.Select(x => x.Index));
        Assert.Equal((1, 2), (m[0].Actual, m[0].Predicted));
        Assert.Equal(Math.Exp(9) / (2 + Math.Exp(9)), m[0].Confidence, 12);
        Assert.Equal([2], RunPictures.MostConfident(logits, labels, 3, 1).Select(x => x.Index));
        Assert.Throws<ArgumentException>(() => RunPictures.MostConfident(logits, labels, 4, 1));
    }

    private static void CheckPng(string path, int width, int height)
    {
        using var image = Image.Load<Rgba32>(path, out var format);
        Assert.IsType<PngFormat>(format);
        Assert.Equal((width, height), (image.Width, image.Height));
    }

    /// <summary>After each epoch (after the CSV log's own hook), counts the lines of the CSV file on disk.</summary>
    private sealed class LineCounter(string path, List<int> seen) : ICallback
    {
        public void OnEpochEnd(TrainingContext context)
        {
            using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var r = new StreamReader(f);
            seen.Add(r.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        }
    }
}
