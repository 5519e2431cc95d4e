using System.Text.Json;
using GpuNet.Bench;

namespace GpuNet.Tests;

/// <summary>The <c>train</c> command, driven in-process: bad command lines, a full run's outputs, and exact resume.</summary>
[Collection(nameof(ConsoleCollection))]
public sealed class TrainCommandTests
{
    private static (int Code, string Out, string Err) Run(params string[] args) => BenchCli.Run(args);

    [Theory]
    [InlineData("unknown preset 'nope'", "train", "nope")]
    [InlineData("--bogus", "train", "digits-mlp", "--bogus")]
    [InlineData("--lr: 0 is not allowed; expected > 0", "train", "digits-mlp", "--lr", "0")]
    [InlineData("--lr: -0.1 is not allowed", "train", "digits-mlp", "--lr", "-0.1")]
    [InlineData("--patience: -1 is not allowed; expected >= 0", "train", "digits-mlp", "--patience", "-1")]
    [InlineData("--epochs: 0 is not allowed", "train", "digits-mlp", "--epochs", "0")]
    [InlineData("--dropout: 1 is not allowed", "train", "digits-mlp", "--dropout", "1")]
    [InlineData("--optimizer: 'lbfgs' is not allowed", "train", "digits-mlp", "--optimizer", "lbfgs")]
    [InlineData("--schedule: 'warp' is not allowed", "train", "digits-mlp", "--schedule", "warp")]
    [InlineData("device 'cuda:7' is not present", "train", "digits-mlp", "--device", "cuda:7")]
    public void BadCommandLinesExitWith2AndSayWhy(string expected, params string[] args)
    {
        var (code, _, err) = Run(args);
        Assert.Equal(2, code);
        Assert.Contains(expected, err);
    }

    [Fact]
    public void ARunWritesEverySummaryKeyTheCheckpointsAndThePlot()
    {
        using var dir = new TempDir();
        var (code, output, err) = Run("train", "digits-mlp", "--epochs", "3", "--quiet", "--out", dir.Path, "--json", dir.File("s.json"), "--device", "cpu");
        Assert.True(code == 0, err);
        Assert.Contains("epoch   3/3", output);
        Assert.Contains("MFU", output);
        using var json = JsonDocument.Parse(File.ReadAllText(dir.File("s.json")));
        var r = json.RootElement;
        foreach (var key in new[] { "preset", "device", "seed", "epochs_run", "best_epoch", "stopped_early", "train_seconds", "samples_per_second", "mfu", "history", "final", "best", "test_metrics", "checkpoint" })
            Assert.True(r.TryGetProperty(key, out _), $"missing key {key}");
        Assert.Equal(3, r.GetProperty("epochs_run").GetInt32());
        Assert.Equal(3, r.GetProperty("history").GetArrayLength());
        foreach (var key in new[] { "epoch", "lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds" })
            Assert.True(r.GetProperty("history")[0].TryGetProperty(key, out _), $"missing history key {key}");
        Assert.Equal(JsonValueKind.Null, r.GetProperty("final").GetProperty("test_accuracy").ValueKind);   // digits has no test split
        Assert.True(r.GetProperty("final").GetProperty("val_accuracy").GetDouble() > 0.5);
        Assert.Equal(10, r.GetProperty("test_metrics").GetProperty("confusion_matrix").GetArrayLength());
        Assert.True(File.Exists(r.GetProperty("checkpoint").GetString()));
        Assert.True(new FileInfo(dir.File("curves.png")).Length > 1000);
        Assert.True(File.Exists(dir.File("last.safetensors")));
    }

    [Fact]
    public void ResumeContinuesExactly()
    {
        using var a = new TempDir();
        using var b = new TempDir();
        // a schedule that does not depend on --epochs, so "run 2 epochs, stop" equals "run 4, interrupted after 2"
        string[] common = ["train", "digits-mlp", "--quiet", "--device", "cpu", "--dropout", "0.2", "--schedule", "none"];
        Assert.Equal(0, Run([.. common, "--epochs", "4", "--out", a.Path]).Code);
        Assert.Equal(0, Run([.. common, "--epochs", "2", "--out", b.Path]).Code);
        var (code, output, err) = Run([.. common, "--epochs", "4", "--resume", b.File("last.safetensors"), "--out", b.Path]);
        Assert.True(code == 0, err);
        Assert.Contains("resumed from", output);
        var wa = Checkpoints.Checkpoint.Read(a.File("last.safetensors"));
        var wb = Checkpoints.Checkpoint.Read(b.File("last.safetensors"));
        foreach (var t in wa.Tensors) Assert.Equal(t.Floats, wb[t.Name].Floats);
    }
}

/// <summary>Tests that redirect the process-wide console run one at a time.</summary>
[CollectionDefinition(nameof(ConsoleCollection), DisableParallelization = true)]
public sealed class ConsoleCollection;
