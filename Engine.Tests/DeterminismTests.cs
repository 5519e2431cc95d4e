using System.Diagnostics;
using System.Text.Json;
using GpuNet.Data;
using GpuNet.Kernels;
using GpuNet.Nn;
using GpuNet.Training;

namespace GpuNet.Tests;

/// <summary>
/// The determinism contract (docs/architecture.md, "Determinism"): the same seed on the same device kind and thread
/// count gives bit-identical loss histories and weights; across thread counts the results agree within
/// <see cref="Tol.ThreadCount"/>. Also: two models trained and summarised on two threads at once do not disturb each
/// other (no process-wide mutable state in Model, ModelSummary or Trainer).
/// </summary>
public sealed class DeterminismTests(BackendFixture f) : DeviceTestBase(f), IClassFixture<BackendFixture>
{
    private const int Classes = 3;

    // n samples of (1, 6, 6) in [0.25, 0.75], label i % 3.
    private static Dataset Images(int n)
    {
        var x = TestData.Uniform(21, n * 36);
        for (int i = 0; i < x.Length; i++) x[i] = 0.5f + 0.25f * x[i];
        return Dataset.Classification("images", x, [1, 6, 6], Enumerable.Range(0, n).Select(i => i % Classes).ToArray(), Classes);
    }

    private static Layer Mlp() => new Sequential(new Flatten(), new Linear(36, 16), new BatchNorm1d(16), new ActivationLayer(Activation.Relu),
        new Dropout(0.3f), new Linear(16, Classes));

    private static Layer Cnn() => new Sequential(new Conv2d(1, 4, 3, padding: 1), new ActivationLayer(Activation.Relu), new MaxPool2d(2),
        new Flatten(), new Dropout(0.2f), new Linear(4 * 3 * 3, Classes));

    private static IAugmentation Augmentation() => Augment.Compose(Augment.HorizontalFlip(0.5), Augment.RandomCrop(1), Augment.RandomErasing(0.3));

    /// <summary>
    /// Trains <paramref name="net"/> for 2 epochs (shuffled, augmented, prefetched, momentum SGD, a short last batch);
    /// returns the per-epoch losses and the weights. The ILGPU CPU simulator gets 2 batches an epoch, the host 6.
    /// </summary>
    private static (double[] Losses, float[] Weights) Train(Device d, Func<Layer> net, ulong seed)
    {
        using var model = Model.Build(d, net(), [1, 6, 6], 8, new ModelOptions { Seed = seed });
        using var optimizer = OptimizerFactory.Sgd(model, 0.05, momentum: 0.9);
        using var train = new DataLoader(d, Images(d.IsHost ? 45 : 13), 8, shuffle: true, dropLast: false, seed, prefetch: true, augment: Augmentation());
        var fit = new Trainer(model, new CrossEntropyLoss(), optimizer).Fit(train, null, 2);
        return (fit.History.Select(h => h.TrainLoss).ToArray(), model.Parameters.ToArray());
    }

    [Theory, Backends]
    public void SameSeedSameDeviceGivesBitIdenticalLossesAndWeights(string backend)
    {
        Use(backend);
        foreach (var (name, net) in new (string, Func<Layer>)[] { ("mlp", Mlp), ("cnn", Cnn) })
        {
            var a = Train(D, net, 5);
            var b = Train(D, net, 5);
            Assert.True(a.Losses.All(double.IsFinite), $"{name}: losses {string.Join(", ", a.Losses)}");
            Assert.Equal(a.Losses, b.Losses);
            Assert.Equal(a.Weights, b.Weights);
            // The seed matters (so the equality above is not vacuous); one more run, on the fast device only.
            if (D.IsHost) Assert.NotEqual(a.Weights, Train(D, net, 6).Weights);
        }
    }

    [Fact]
    public void TwoModelsTrainedAndSummarisedOnTwoThreadsDoNotDisturbEachOther()
    {
        // Alone: each model's summary and training result.
        (string Summary, double[] Losses, float[] Weights) Run(Func<Layer> net, ulong seed)
        {
            using var d = Device.Create("cpu");
            using var model = Model.Build(d, net(), [1, 6, 6], 8, new ModelOptions { Seed = seed });
            string summary = model.Summary().ToString();
            var r = Train(d, net, seed);
            return (summary + model.Summary(), r.Losses, r.Weights);
        }
        var mlp = Run(Mlp, 3);
        var cnn = Run(Cnn, 4);
        // Together, on two threads at once, several times over.
        for (int round = 0; round < 3; round++)
        {
            (string Summary, double[] Losses, float[] Weights) r1 = default, r2 = default;
            Exception? e1 = null, e2 = null;
            var t1 = new Thread(() => { try { r1 = Run(Mlp, 3); } catch (Exception e) { e1 = e; } });
            var t2 = new Thread(() => { try { r2 = Run(Cnn, 4); } catch (Exception e) { e2 = e; } });
            t1.Start(); t2.Start();
            t1.Join(); t2.Join();
            Assert.Null(e1);
            Assert.Null(e2);
            Assert.Equal(mlp.Summary, r1.Summary);
            Assert.Equal(cnn.Summary, r2.Summary);
            Assert.Equal(mlp.Losses, r1.Losses);
            Assert.Equal(mlp.Weights, r1.Weights);
            Assert.Equal(cnn.Losses, r2.Losses);
            Assert.Equal(cnn.Weights, r2.Weights);
        }
    }

    /// <summary>
    /// The host pools split work by <see cref="Environment.ProcessorCount"/>, which <c>DOTNET_PROCESSOR_COUNT</c> sets:
    /// the <c>train</c> command in child processes with 1 and 2 threads. The same count twice gives bit-identical
    /// losses; 1 and 2 threads agree within <see cref="Tol.ThreadCount"/>.
    /// </summary>
    [Fact]
    public void ThreadCountsAgreeWithinTheStatedTolerance()
    {
        using var dir = new TempDir();
        double[] Losses(int threads, string tag)
        {
            string json = dir.File($"{tag}.json");
            var psi = new ProcessStartInfo(Path.Combine(AppContext.BaseDirectory, OperatingSystem.IsWindows() ? "Bench.exe" : "Bench"))
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            foreach (var a in new[] { "train", "digits-mlp", "--epochs", "2", "--device", "cpu", "--quiet", "--json", json }) psi.ArgumentList.Add(a);
            psi.Environment["DOTNET_PROCESSOR_COUNT"] = threads.ToString();
            psi.Environment["GPUNET_DATA"] = dir.Path;   // the peak cache goes here, not to the user's
            psi.Environment.Remove("GPUNET_DEVICE");
            using var p = Process.Start(psi)!;
            var stderr = p.StandardError.ReadToEndAsync();
            p.StandardOutput.ReadToEnd();
            Assert.True(p.WaitForExit(300_000), "train did not finish in 5 minutes");
            Assert.True(p.ExitCode == 0, $"train with {threads} threads exited with {p.ExitCode}: {stderr.Result}");
            using var doc = JsonDocument.Parse(File.ReadAllText(json));
            return doc.RootElement.GetProperty("history").EnumerateArray()
                .SelectMany(h => new[] { h.GetProperty("train_loss").GetDouble(), h.GetProperty("val_loss").GetDouble() }).ToArray();
        }
        var one = Losses(1, "one");
        Assert.Equal(one, Losses(1, "one-again"));
        var two = Losses(2, "two");
        Assert.Equal(two, Losses(2, "two-again"));
        Tol.ThreadCount.AssertClose(two, one, "losses with 2 threads against 1 thread");
    }
}
