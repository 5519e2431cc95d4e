using GpuNet.Kernels;
using GpuNet.Nn;

namespace GpuNet.Tests;

/// <summary>Small networks and losses used by the model tests, each with its loss and input shape.</summary>
public static class TestNets
{
    public sealed record Case(string Name, Func<Layer> Net, int[] Input, Func<Loss> Loss);

    public static readonly Case[] All =
    [
        new("mlp-ce", () => new Sequential(new Linear(5, 7), new ActivationLayer(Activation.Tanh), new Linear(7, 6),
            new ActivationLayer(Activation.Relu), new Linear(6, 3)), [5], () => new CrossEntropyLoss()),
        new("mlp-bn-dropout", () => new Sequential(new Linear(5, 8), new BatchNorm1d(8), new ActivationLayer(Activation.Relu),
            new Dropout(0.3f), new Linear(8, 6), new ActivationLayer(Activation.Sigmoid), new Linear(6, 3)), [5], () => new CrossEntropyLoss(labelSmoothing: 0.1f)),
        new("residual-mse", () => new Sequential(new Linear(4, 6), new ActivationLayer(Activation.Elu),
            new Residual(new Sequential(new Linear(6, 6), new ActivationLayer(Activation.Gelu), new Linear(6, 6))), new Linear(6, 2)), [4], () => new MseLoss()),
        new("projection-bce", () => new Sequential(new Flatten(), new Residual(new Sequential(new Linear(6, 5), new ActivationLayer(Activation.Softplus)),
            shortcut: new Linear(6, 5)), new Linear(5, 1)), [2, 3], () => new BceWithLogitsLoss()),
        new("shared-hinge", Shared, [5], () => new MultiMarginLoss()),
        new("resnet-block-ce", () => new Sequential(new Conv2d(1, 3, 3, padding: 1), Blocks.BasicResidual(3, 4, stride: 2), Blocks.BasicResidual(4, 4),
            Blocks.DepthwiseSeparable(4, 3), new GlobalAvgPool(), new Linear(3, 3)), [1, 6, 5], () => new CrossEntropyLoss()),
        new("dwconv-pool-ce", () => new Sequential(new DepthwiseConv2d(2, 3, padding: 1), new BatchNorm2d(2), new ActivationLayer(Activation.Relu),
            new MaxPool2d(2), new DepthwiseConv2d(2, 3, stride: 2, padding: 1, bias: false), new ActivationLayer(Activation.Tanh),
            new Residual(new AvgPool2d(3, stride: 1, padding: 1, countIncludePad: false)), new GlobalAvgPool(), new Linear(2, 3)), [2, 7, 7], () => new CrossEntropyLoss()),
        new("leaky-sum", () => new Sequential(new Linear(3, 4), new ActivationLayer(Activation.LeakyRelu, 0.2f), new Linear(4, 2)), [3],
            () => new HingeLoss(LossReduction.Sum)),
    ];

    /// <summary>One Linear used twice: its gradients must add up.</summary>
    private static Layer Shared()
    {
        var twice = new Linear(5, 5, name: "shared");
        return new Sequential(twice, new ActivationLayer(Activation.Tanh), twice, new Linear(5, 3));
    }

    public static TheoryData<string> Names => new(All.Select(c => c.Name));
    public static Case Get(string name) => All.Single(c => c.Name == name);

    /// <summary>Seeded inputs and targets for a batch of <paramref name="n"/>.</summary>
    public static (float[] X, float[]? Targets, int[]? Labels) Data(Case c, Loss loss, int[] outputShape, int n, int seed)
    {
        var x = TestData.Uniform(seed, n * (int)c.Input.Aggregate(1L, (a, b) => a * b), -1.5f, 1.5f);
        var r = new Random(seed + 1);
        int outPer = outputShape.Aggregate(1, (a, b) => a * b);
        if (loss.TargetType == DType.Int32) return (x, null, Enumerable.Range(0, n).Select(_ => r.Next(outputShape[^1])).ToArray());
        var t = Enumerable.Range(0, n * outPer).Select(_ => loss is MseLoss ? (float)(r.NextDouble() * 2 - 1) : r.Next(2)).ToArray();
        return (x, t, null);
    }
}

public sealed class ModelTests(BackendFixture f) : DeviceTestBase(f), IClassFixture<BackendFixture>
{
    private Tensor Target(Loss loss, float[]? t, int[]? labels, int n, int[] outShape)
        => labels is not null ? D.FromArray(labels, n) : D.FromArray(t!, [n, .. outShape]);

    [Theory, Backends(nameof(TestNets.Names), MemberType = typeof(TestNets))]
    public void LossAndGradientsMatchFloat64FiniteDifferences(string backend, string name)
    {
        Use(backend);
        var c = TestNets.Get(name);
        var loss = c.Loss();
        var net = c.Net();
        const int batch = 6, n = 5;   // a model built for 6 running a batch of 5 exercises the short-batch plan
        using var model = Model.Build(D, net, c.Input, batch, new ModelOptions { Seed = 7 });
        var (x, t, labels) = TestNets.Data(c, loss, model.OutputShape, n, seed: name.Length);
        using var tx = D.FromArray(x, [n, .. c.Input]);
        using var target = Target(loss, t, labels, n, model.OutputShape);
        using var lossValue = D.Zeros(1);
        model.ForwardBackward(tx, target, loss, lossValue);
        float got = lossValue.ToArray()[0];
        var grads = model.Gradients!.ToArray();

        var seeds = DropoutSeeds(model, n);
        var flat = TestData.D(model.Parameters.ToArray());
        var buffers = TestData.D(model.Buffers.ToArray());
        long step = model.Step;
        double RefLoss(double[] theta)
        {
            double[] Lookup(string p)
            {
                var e = model.ParameterTable.Single(q => q.Name == p);
                return (e.IsBuffer ? buffers : theta).AsSpan((int)e.Offset, (int)e.Length).ToArray();
            }
            var y = RefNet.Forward(net, TestData.D(x), n, c.Input, Lookup, training: true, step, d => seeds[d]);
            return RefNet.Loss(loss, y, n, t, labels);
        }

        Tol.Loss.AssertClose([got], [RefLoss(flat)], $"{name}: loss");
        var fd = TestData.FiniteDifference(RefLoss, flat);
        Tol.FiniteDifference.AssertClose(grads, fd, $"{name}: parameter gradients vs finite differences");
    }

    /// <summary>The mask seed of every dropout node of the plan for batch <paramref name="n"/>.</summary>
    private static Dictionary<Dropout, ulong> DropoutSeeds(Model model, int n)
    {
        var seeds = new Dictionary<Dropout, ulong>();
        void Walk(Node node)
        {
            if (node is DropoutNode d) seeds[(Dropout)d.Layer] = d.Seed;
            foreach (var ch in node.Children) Walk(ch);
        }
        Walk(model.RootNode(n));
        return seeds;
    }

    [Theory, Backends]
    public void IncompatibleStackFailsAtBuildNamingLayerAndShapes(string backend)
    {
        Use(backend);
        var net = new Sequential(new Linear(4, 8, name: "fc1"), new ActivationLayer(Activation.Relu), new Linear(10, 3, name: "fc2"));
        var e = Assert.Throws<LayerShapeException>(() => Model.Build(D, net, [4], 2));
        Assert.Equal("fc2", e.Layer);
        Assert.Contains("(8)", e.Message);
        Assert.Contains("(10)", e.Message);
        Assert.Equal(0, D.Counters.LiveBytes);
        var res = new Residual(new Linear(4, 5, name: "inner"), name: "res");
        var r = Assert.Throws<LayerShapeException>(() => Model.Build(D, res, [4], 2));
        Assert.Equal("res", r.Layer);
        Assert.Contains("projection", r.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => Model.Build(D, new Linear(4, 2), [4], 0));
    }

    [Theory, Backends]
    public void ParametersLiveInOneFlatBufferWithPyTorchNames(string backend)
    {
        Use(backend);
        var net = new Sequential(new Linear(4, 3, name: "fc1"), new BatchNorm1d(3, name: "bn1"), new ActivationLayer(Activation.Relu), new Linear(3, 2));
        using var model = Model.Build(D, net, [4], 2);
        Assert.Equal(["fc1.weight", "fc1.bias", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var", "linear1.weight", "linear1.bias"],
            model.ParameterTable.Select(p => p.Name));
        Assert.Equal(4 * 3 + 3 + 3 + 3 + 3 * 2 + 2, model.ParameterCount);
        Assert.Equal(model.ParameterCount, model.Gradients!.Length);
        Assert.Equal(6, model.Buffers.Length);
        Assert.Equal([false, false, false, false, false, false, true, false], model.ParameterTable.Select(p => p.Decay && p.Name.EndsWith("weight") && p.Name.StartsWith("linear")));
        // the layer's views alias the flat buffer
        model["fc1.bias"].CopyFrom([1f, 2f, 3f]);
        Assert.Equal([1f, 2f, 3f], model.Parameters.ToArray().AsSpan(12, 3).ToArray());
        Assert.Equal(new float[] { 1, 1, 1 }, model["bn1.weight"].ToArray());
        Assert.Equal(new float[] { 1, 1, 1 }, model["bn1.running_var"].ToArray());
        Assert.Throws<KeyNotFoundException>(() => model["fc9.weight"]);
    }

    [Theory, Backends]
    public void SameSeedSameWeightsDifferentSeedDifferentWeights(string backend)
    {
        Use(backend);
        float[] Weights(ulong seed)
        {
            using var m = Model.Build(D, new Sequential(new Linear(6, 5), new ActivationLayer(Activation.Relu), new Linear(5, 2)), [6], 3, new ModelOptions { Seed = seed });
            return m.Parameters.ToArray();
        }
        Assert.Equal(Weights(3), Weights(3));
        Assert.NotEqual(Weights(3), Weights(4));
        var w = Weights(3);
        float bound = 1f / MathF.Sqrt(6);
        Assert.All(w.AsSpan(0, 30).ToArray(), v => Assert.InRange(v, -bound, bound));
    }

    [Theory, Backends]
    public void ShortBatchIsAViewOfTheFullBatch(string backend)
    {
        Use(backend);
        var net = new Sequential(new Linear(3, 4), new ActivationLayer(Activation.Tanh), new Linear(4, 2));
        using var model = Model.Build(D, net, [3], 5);
        var x = TestData.Uniform(5, 15);
        using var full = D.FromArray(x, 5, 3);
        var yFull = model.Forward(full, training: false).ToArray();
        long bytes = D.Counters.LiveBytes;
        using var part = D.FromArray(x[..6], 2, 3);
        var yPart = model.Forward(part, training: false);
        Assert.Equal([2, 2], yPart.Shape.ToArray());
        Assert.Equal(yFull[..4], yPart.ToArray());
        Assert.Equal(bytes + 24, D.Counters.LiveBytes);   // only the caller's input tensor is new
        using var tooBig = D.Zeros(6, 3);
        Assert.Throws<ShapeMismatchException>(() => model.Forward(tooBig, training: false));
    }

    [Theory, Backends]
    public void SummaryCountsLaunchesForReal(string backend)
    {
        Use(backend);
        var net = new Sequential(new Linear(8, 16, name: "fc1"), new ActivationLayer(Activation.Relu, name: "relu1"), new Linear(16, 4, name: "fc2"));
        using var model = Model.Build(D, net, [8], 4);
        var s = model.Summary();
        Assert.Equal(8 * 16 + 16 + 16 * 4 + 4, s.TotalParameters);
        Assert.Equal(["fc1 + relu1", "fc2"], s.Layers.Select(l => l.Name));
        Assert.Equal(2.0 * 8 * 16 + 16 + 16 + 2.0 * 16 * 4 + 4, s.ForwardFlopsPerSample);
        Assert.Equal(1, s.Layers[0].ForwardLaunches);      // one fused GEMM + bias + ReLU
        Assert.Equal(3, s.Layers[0].BackwardLaunches);     // ReLU mask, dW, db (no dx for the first layer)
        Assert.Equal(3, s.Layers[1].BackwardLaunches);     // dW, db, dx
        using var x = D.Zeros(4, 8);
        using var y = D.FromArray([0, 1, 2, 3], 4);
        using var l = D.Zeros(1);
        model.Forward(x, training: true);
        long before = D.Counters.Launches;
        model.ZeroGrad();
        model.Forward(model.Input, training: true);
        model.Backward();
        Assert.Equal(D.Counters.Launches - before, s.LaunchesPerTrainingStep);
        Assert.Contains("fc1 + relu1", s.ToString());
    }

    [Theory, Backends]
    public void SummaryShowsConvolutionShapesParametersAndFlops(string backend)
    {
        Use(backend);
        var net = new Sequential(new Conv2d(1, 4, 3, padding: 1, name: "conv1"), new BatchNorm2d(4, name: "bn1"), new ActivationLayer(Activation.Relu, name: "relu1"),
            new MaxPool2d(2, name: "pool1"), new DepthwiseConv2d(4, 3, stride: 2, padding: 1, bias: false, name: "dw1"), new GlobalAvgPool(name: "gap"), new Linear(4, 2, name: "fc"));
        using var model = Model.Build(D, net, [1, 8, 8], 2);
        var s = model.Summary();
        Assert.Equal(["conv1", "bn1 + relu1", "pool1", "dw1", "gap", "fc"], s.Layers.Select(l => l.Name));
        Assert.Equal([4, 8, 8], s.Layers[0].OutputShape);
        Assert.Equal([4, 2, 2], s.Layers[3].OutputShape);
        Assert.Equal(4 * 1 * 9 + 4, s.Layers[0].Parameters);
        Assert.Equal(4 * 9, s.Layers[3].Parameters);
        Assert.Equal(4 * 8 * 8 * (2.0 * 9 + 1), s.Layers[0].ForwardFlops);   // 2 C R S per output + bias
        Assert.Equal(4 * 2 * 2 * 2.0 * 9, s.Layers[3].ForwardFlops);
        Assert.Equal(model.ParameterCount, s.Layers.Sum(l => l.Parameters));
        Assert.True(s.Layers.All(l => l.ForwardLaunches >= 1 && l.BackwardLaunches >= 1));
    }

    [Theory, Backends]
    public void InferenceModelHasNoGradients(string backend)
    {
        Use(backend);
        var net = new Sequential(new Linear(3, 4), new ActivationLayer(Activation.Relu), new Linear(4, 2));
        using var model = Model.Build(D, net, [3], 4, new ModelOptions { Training = false });
        Assert.Null(model.Gradients);
        using var x = D.Zeros(4, 3);
        Assert.Equal([4, 2], model.Forward(x, training: false).Shape.ToArray());
        Assert.Throws<InvalidOperationException>(() => model.Forward(x, training: true));
        Assert.Throws<InvalidOperationException>(() => model.Backward());
    }

    [Theory, Backends]
    public void DisposingTheModelFreesEverythingAndReleasesTheLayers(string backend)
    {
        Use(backend);
        var net = new Sequential(new Linear(3, 4), new BatchNorm1d(4), new Linear(4, 2));
        var model = Model.Build(D, net, [3], 4);
        using (var x = D.Zeros(2, 3)) model.Forward(x, training: false);   // a second plan (batch 2)
        Assert.Throws<InvalidOperationException>(() => Model.Build(D, net, [3], 4));   // layers belong to a live model
        model.Dispose();
        Assert.Equal(0, D.Counters.LiveBytes);
        using var again = Model.Build(D, net, [3], 4);
    }
}


/// <summary>The same model, seed and batch give the same loss and gradients on the host path and the GPU kernels.</summary>
public sealed class ModelParityTests
{
    [Theory, MemberData(nameof(TestNets.Names), MemberType = typeof(TestNets))]
    public void CpuAndIlgpuCpuAgree(string name)
    {
        var c = TestNets.Get(name);
        (float Loss, float[] Grads, float[] Buffers) Run(string device)
        {
            using var d = Device.Create(device);
            var loss = c.Loss();
            using var model = Model.Build(d, c.Net(), c.Input, 4, new ModelOptions { Seed = 11 });
            var (x, t, labels) = TestNets.Data(c, loss, model.OutputShape, 4, seed: 3);
            using var tx = d.FromArray(x, [4, .. c.Input]);
            using var target = labels is not null ? d.FromArray(labels, 4) : d.FromArray(t!, [4, .. model.OutputShape]);
            using var lossValue = d.Zeros(1);
            model.ForwardBackward(tx, target, loss, lossValue);
            return (lossValue.ToArray()[0], model.Gradients!.ToArray(), model.Buffers.ToArray());
        }
        var cpu = Run("cpu");
        var sim = Run("ilgpu-cpu");
        Tol.Loss.AssertClose([sim.Loss], [cpu.Loss], $"{name}: loss ilgpu-cpu vs cpu");
        Tol.Parity.AssertClose(sim.Grads, TestData.D(cpu.Grads), $"{name}: gradients ilgpu-cpu vs cpu");
        Tol.BatchNorm.AssertClose(sim.Buffers, TestData.D(cpu.Buffers), $"{name}: running statistics ilgpu-cpu vs cpu");
    }
}
