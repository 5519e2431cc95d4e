using System.Text.Json;
using GpuNet.Bench;
using GpuNet.Data;
using GpuNet.Kernels;
using GpuNet.Nn;
using GpuNet.Training;

namespace GpuNet.Tests;

/// <summary>
/// The training step: only the gradients someone needs are computed (the input-gradient need propagates through
/// <see cref="Flatten"/> and other parameterless layers), uploads go through staging buffers without synchronising
/// the device, and a training step waits for the device zero times.
/// </summary>
public sealed class StepTests(BackendFixture f) : DeviceTestBase(f), IClassFixture<BackendFixture>
{
    private static Layer Head(bool flatten)
    {
        var layers = new List<Layer>();
        if (flatten) layers.Add(new Flatten());
        layers.AddRange([new Linear(12, 8, name: "fc1"), new ActivationLayer(Activation.Tanh, name: "act1"),
            new Linear(8, 3, name: "out")]);   // no dropout: its masks are keyed by the node's position, which Flatten shifts
        return new Sequential([.. layers]);
    }

    /// <summary>
    /// After a Flatten (a view) the first Linear computes no input gradient, and the parameter gradients are those of
    /// the same network on already-flat input, which never computed one.
    /// </summary>
    [Theory, Backends]
    public void FlattenPassesNoNeedForTheInputGradientOn(string backend)
    {
        Use(backend);
        var x = TestData.Uniform(7, 5 * 12);
        int[] labels = [0, 2, 1, 1, 0];
        using var a = Model.Build(D, Head(flatten: true), [3, 2, 2], 5, new ModelOptions { Seed = 11 });
        using var b = Model.Build(D, Head(flatten: false), [12], 5, new ModelOptions { Seed = 11 });
        Assert.Equal(b.Parameters.ToArray(), a.Parameters.ToArray());
        var fc1 = Leaves(a.RootNode(5)).Single(n => n.Layer.Name == "fc1");
        Assert.Null(fc1.InputGrad);
        Assert.NotNull(Leaves(a.RootNode(5)).Single(n => n.Layer.Name == "out").InputGrad);

        using var xa = D.FromArray(x, 5, 3, 2, 2);
        using var xb = D.FromArray(x, 5, 12);
        using var y = D.FromArray(labels, 5);
        using var la = D.Zeros(1);
        using var lb = D.Zeros(1);
        var loss = new CrossEntropyLoss();
        a.ForwardBackward(xa, y, loss, la);
        b.ForwardBackward(xb, y, loss, lb);
        var ga = a.Gradients!.ToArray();
        Assert.Contains(ga, g => g != 0f);
        Assert.Equal(b.Gradients!.ToArray(), ga);
        Assert.Equal(lb.ToArray(), la.ToArray());
    }

    /// <summary>mnist-mlp's FLOPs per step drop by exactly fc1's input-gradient GEMM (2 * 784 * 256 per sample).</summary>
    [Fact]
    public void MnistMlpSkipsTheInputGradientGemm()
    {
        using var d = Device.Create("cpu");
        var fc1 = new Linear(784, 256, name: "fc1");
        var fc2 = new Linear(256, 128, name: "fc2");
        var relu = new ActivationLayer(Activation.Relu);
        var net = new Sequential(new Flatten(), fc1, new ActivationLayer(Activation.Relu), new Dropout(0.2f),
            fc2, new ActivationLayer(Activation.Relu), new Dropout(0.2f), new Linear(128, 10, name: "out"));
        using var model = Model.Build(d, net, [1, 28, 28], 4);
        var summary = model.Summary();
        var row1 = summary.Layers.Single(r => r.Name.StartsWith("fc1", StringComparison.Ordinal));
        var row2 = summary.Layers.Single(r => r.Name.StartsWith("fc2", StringComparison.Ordinal));
        Assert.Equal(fc1.BackwardFlops([784]) - 2.0 * 784 * 256 + relu.BackwardFlops([256]), row1.BackwardFlops);
        Assert.Equal(fc2.BackwardFlops([256]) + relu.BackwardFlops([128]), row2.BackwardFlops);   // fc2's input gradient is needed
        Assert.Equal(summary.Layers.Sum(r => r.ForwardFlops + r.BackwardFlops), summary.TrainingFlopsPerSample);
    }

    /// <summary>
    /// A staged upload lands in the tensor; refilling the staging buffer (after the getter's wait) does not change
    /// what was uploaded before; two buffers in turn keep both batches intact.
    /// </summary>
    [Theory, Backends]
    public void StagedUploadsLandAndTheBufferMayBeRefilled(string backend)
    {
        Use(backend);
        using var s0 = D.AllocateStaging(10);
        using var s1 = D.AllocateStaging(10);
        using var t0 = D.Zeros(7);
        using var t1 = D.Zeros(7);
        using var t2 = D.Zeros(2, 5);
        for (int i = 0; i < 10; i++) s0.Array[i] = i + 1;
        t0.CopyFromAsync(s0);
        s1.Span.Fill(-3f);
        t1.CopyFromAsync(s1);
        var again = s0.Array;            // waits for t0's upload, then may be overwritten
        for (int i = 0; i < 10; i++) again[i] = 100 + i;
        t2.CopyFromAsync(s0);
        Assert.Equal([1f, 2, 3, 4, 5, 6, 7], t0.ToArray());
        Assert.Equal(Enumerable.Repeat(-3f, 7), t1.ToArray());
        Assert.Equal(Enumerable.Range(100, 10).Select(v => (float)v), t2.ToArray());
        using var small = D.Zeros(11);
        var e = Assert.Throws<ArgumentException>(() => small.CopyFromAsync(s0));
        Assert.Contains("holds 10 elements", e.Message);
    }

    /// <summary>
    /// Trainer.Fit over both batch sources: between one step's end and the next one's (its upload included) the
    /// host never waits for the device; the epoch's one read-back is the only synchronisation.
    /// </summary>
    [Theory, Backends]
    public void TrainingStepsNeverSynchronize(string backend)
    {
        Use(backend);
        var (x, y) = TrainerTests.Blobs(40, 5);
        using var array = new ArrayBatchSource(D, x, [2], y, 8, shuffle: true, seed: 2);
        using var loader = new DataLoader(D, Dataset.Classification("blobs", x, [2], y, 3), 8, shuffle: true, dropLast: false, seed: 2, prefetch: true);
        foreach (IBatchSource source in new IBatchSource[] { array, loader })
        {
            using var model = Model.Build(D, new Sequential(new Linear(2, 8), new ActivationLayer(Activation.Tanh), new Linear(8, 3)), [2], 8);
            using var opt = OptimizerFactory.Adam(model, 1e-2);
            var trainer = new Trainer(model, new CrossEntropyLoss(), opt, options: new TrainerOptions { TrainAccuracy = false });
            var perStep = new List<long>();
            trainer.BatchCompleted += _ => perStep.Add(D.Counters.Synchronizations);
            long before = D.Counters.Synchronizations;
            var fit = trainer.Fit(source, null, 2);
            Assert.Equal(10, perStep.Count);
            for (int i = 1; i < 5; i++) Assert.True(perStep[i] == perStep[i - 1], $"{source.GetType().Name}: step {i + 1} synchronised {perStep[i] - perStep[i - 1]} times on {D.Name}");
            for (int i = 6; i < 10; i++) Assert.True(perStep[i] == perStep[i - 1], $"{source.GetType().Name}: step {i + 1} synchronised {perStep[i] - perStep[i - 1]} times on {D.Name}");
            Assert.True(D.Counters.Synchronizations - before <= 4, $"two epochs synchronised {D.Counters.Synchronizations - before} times");
            Assert.True(fit.History[^1].TrainLoss < fit.History[0].TrainLoss + 1e-3);
        }
    }

    private static IEnumerable<Node> Leaves(Node n) => n.Children.Count == 0 ? [n] : n.Children.SelectMany(Leaves);
}

/// <summary><c>Bench summary</c> on a small preset.</summary>
[Collection(nameof(ConsoleCollection))]
public sealed class SummaryCommandTests
{
    [Theory]
    [InlineData("cpu")]
    [InlineData("ilgpu-cpu")]
    public void SummaryCountsTheLaunchesOfAFullTrainingStep(string device)
    {
        using var dir = new TempDir();
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        var (o, e) = (new StringWriter(), new StringWriter());
        Console.SetOut(o);
        Console.SetError(e);
        int code;
        try { code = BenchApp.Run(["summary", "digits-mlp", "--device", device, "--batch-size", "16", "--json", dir.File("s.json")]); }
        finally
        {
            Console.SetOut(oldOut);
            Console.SetError(oldErr);
        }
        Assert.True(code == 0, e.ToString());
        Assert.Contains("launches per step", o.ToString());
        using var json = JsonDocument.Parse(File.ReadAllText(dir.File("s.json")));
        var r = json.RootElement;
        long ops = r.GetProperty("device_ops_per_step").GetInt64();
        long perStep = r.GetProperty("launches_per_step").GetInt64();
        // zero-grad 1, input copy 1, fc1+relu 1, dropout 1, out 1, loss 1, backward (out 3, dropout 1, fc1 3), optimizer 1, accumulation 1
        Assert.Equal(15, ops);
        var phases = r.GetProperty("phases").EnumerateArray().ToList();
        Assert.Equal(ops, phases.Sum(p => p.GetProperty("device_ops").GetInt64()));
        Assert.Equal(0, r.GetProperty("synchronizations_per_step").GetInt64());
        Assert.Equal(16, r.GetProperty("batch_size").GetInt32());
        Assert.Equal(64 * 128 + 128 + 128 * 10 + 10, r.GetProperty("parameters").GetInt64());
        if (device == "cpu") Assert.Equal(ops, perStep);
        else
        {
            Assert.True(perStep >= ops, $"{perStep} kernel launches for {ops} device ops");
            Assert.Equal(perStep, phases.Sum(p => p.GetProperty("kernel_launches").GetInt64()));
        }
    }
}
