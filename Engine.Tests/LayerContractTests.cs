using GpuNet.Checkpoints;
using GpuNet.Kernels;
using GpuNet.Nn;
using GpuNet.Training;

namespace GpuNet.Tests;

/// <summary>
/// A layer defined outside the engine that declares a buffer (<c>first</c>, (features), initialised to 0.5): in
/// training it records the first sample of the batch there, otherwise it is the identity.
/// </summary>
internal sealed class RecordFirst(int features, string? name = null) : Layer(name)
{
    public int Features { get; } = features;
    public override string Kind => "record";
    public override IReadOnlyList<ParameterSpec> BufferSpecs { get; } = [new("first", [features], new Init.Constant(0.5), false)];
    public override int[] OutputShape(int[] input) => (int[])input.Clone();
    internal override Node CreateNode(BuildContext ctx, Tensor input, bool needInputGrad) => new RecordFirstNode(this, ctx, input, needInputGrad);

    private sealed class RecordFirstNode : Node
    {
        private readonly RecordFirst _layer;

        public RecordFirstNode(RecordFirst layer, BuildContext ctx, Tensor input, bool needInputGrad) : base(layer, ctx, input, input.Shape[1..].ToArray())
        {
            _layer = layer;
            Output = ctx.Batched(OutputShape);
            if (ctx.Training && needInputGrad) InputGrad = ctx.Batched(InputShape);
        }

        protected override void ForwardCore(bool training)
        {
            // x: (batch, features) -> y = x; first = x[0] in training
            Device.Copy(Input, Output);
            if (!training) return;
            using var first = Input.Slice(0, _layer.Features);
            Device.Copy(first, _layer.Buffers[0]);
        }

        protected override void BackwardCore()
        {
            if (InputGrad is not null) Device.Copy(OutputGrad!, InputGrad);
        }
    }
}

/// <summary>A binary loss defined outside the engine (MSE on one score) whose positive class is target &gt; 0.75.</summary>
internal sealed class StrictBinaryMse() : Loss(LossReduction.Mean)
{
    public override DType TargetType => DType.Float32;
    public override bool IsBinary => true;
    public override bool IsPositive(float target) => target > 0.75f;
    public override void Compute(Device device, Tensor output, Tensor target, Tensor loss, Tensor? grad, float gradScale = 1f)
        => device.MeanSquaredError(output, target, loss, grad, Reduction, gradScale);
}

/// <summary>
/// What generic code (Model, Sequential, ModelSummary, Trainer, Checkpoint) may rely on from a layer or a loss, with
/// no knowledge of its concrete type: children, parameters and buffers, fusion with a successor, per-node FLOPs, and
/// the task a loss implies.
/// </summary>
public sealed class LayerContractTests(BackendFixture f) : DeviceTestBase(f), IClassFixture<BackendFixture>
{
    [Theory, Backends]
    public void AnyLayersBuffersAreBoundNamedAndCheckpointed(string backend)
    {
        Use(backend);
        using var dir = new TempDir();
        string path = dir.File("record.safetensors");
        var x = new float[] { 1, -2, 3, 4, 5, 6 };
        var rec = new RecordFirst(3, name: "rec");
        using (var model = Model.Build(D, new Residual(new Sequential(rec, new Linear(3, 3))), [3], 2))
        {
            var entry = Assert.Single(model.ParameterTable, e => e.IsBuffer);
            Assert.Equal(("rec.first", 3L, 0L), (entry.Name, entry.Length, entry.Offset));
            Assert.Same(rec.Buffers[0], model["rec.first"]);
            Assert.Equal([0.5f, 0.5f, 0.5f], model.Buffers.ToArray());   // initialised from the spec
            using var input = D.FromArray(x, 2, 3);
            model.Forward(input, training: true);
            Assert.Equal(x[..3], model.Buffers.ToArray());   // the node wrote through the view the model bound
            Assert.Equal(x[..3], model["rec.first"].ToArray());
            Checkpoint.Save(path, model);
        }
        Assert.Throws<InvalidOperationException>(() => rec.Buffers);   // released with the model

        var again = new RecordFirst(3, name: "rec");
        using var restored = Model.Build(D, new Residual(new Sequential(again, new Linear(3, 3))), [3], 2, new ModelOptions { Seed = 9 });
        Assert.Equal([0.5f, 0.5f, 0.5f], restored["rec.first"].ToArray());
        Checkpoint.Restore(path, restored);
        Assert.Equal(x[..3], again.Buffers[0].ToArray());
    }

    public static TheoryData<string> FusablePairs => new() { "linear+relu", "bn+relu" };

    /// <summary>
    /// The same layers with and without fusion (wrapping the first layer of the pair in its own Sequential hides its
    /// successor from it): the fused node counts both halves, so the totals agree with the sum of the layers' FLOPs.
    /// </summary>
    [Theory, Backends(nameof(FusablePairs))]
    public void FusedNodesCountTheFlopsOfBothLayers(string backend, string pair)
    {
        Use(backend);
        Layer First() => pair == "linear+relu" ? new Linear(6, 5, name: "first") : new BatchNorm1d(6, name: "first");
        int width = pair == "linear+relu" ? 5 : 6;
        ModelSummary Summary(bool fuse)
        {
            var first = First();
            var net = new Sequential(fuse ? first : new Sequential(first), new ActivationLayer(Activation.Relu, name: "relu"), new Linear(width, 3, name: "last"));
            using var model = Model.Build(D, net, [6], 4);
            return model.Summary();
        }
        var fused = Summary(fuse: true);
        var apart = Summary(fuse: false);
        Assert.Equal(["first + relu", "last"], fused.Layers.Select(l => l.Name));
        Assert.Equal(["first", "relu", "last"], apart.Layers.Select(l => l.Name));
        Assert.True(fused.LaunchesPerTrainingStep < apart.LaunchesPerTrainingStep,
            $"fusion should save launches: fused {fused.LaunchesPerTrainingStep}, apart {apart.LaunchesPerTrainingStep}");

        var (first, relu, last) = (First(), new ActivationLayer(Activation.Relu), new Linear(width, 3));
        double forward = first.ForwardFlops([6]) + relu.ForwardFlops([width]) + last.ForwardFlops([width]);
        // the first layer computes no gradient of the model's input (InputGradFlops), so neither counts it
        double firstBackward = first.BackwardFlops([6]) - first.InputGradFlops([6]);
        double backward = firstBackward + relu.BackwardFlops([width]) + last.BackwardFlops([width]);
        Assert.Equal(first.ForwardFlops([6]) + relu.ForwardFlops([width]), fused.Layers[0].ForwardFlops);
        Assert.Equal(firstBackward + relu.BackwardFlops([width]), fused.Layers[0].BackwardFlops);
        foreach (var s in new[] { fused, apart })
        {
            Assert.Equal(forward, s.ForwardFlopsPerSample);
            Assert.Equal(forward + backward, s.TrainingFlopsPerSample);
        }
    }

    /// <summary>A loss the trainer has never heard of decides the task and which targets are positive.</summary>
    [Theory, Backends]
    public void TrainerTakesTheTaskAndPositiveLabelsFromTheLoss(string backend)
    {
        Use(backend);
        // score = x exactly; predictions are score > 0: 1, 0, 0, 0
        var x = new float[] { 1, -1, -1, -1 };
        var t = new float[] { 0.9f, 0.6f, 0.6f, 0.6f };   // positive only above 0.75: 1, 0, 0, 0 (a >= 0.5 rule would say 1, 1, 1, 1)
        using var model = Model.Build(D, new Linear(1, 1, weightInit: new Init.Constant(1), biasInit: new Init.Zeros()), [1], 4);
        using var opt = OptimizerFactory.Sgd(model, lr: 0.1);
        var trainer = new Trainer(model, new StrictBinaryMse(), opt);
        Assert.Equal((TaskKind.Binary, 2), (trainer.Task, trainer.Classes));
        using var data = new ArrayBatchSource(D, x, [1], t, [1], 4);
        var eval = trainer.Evaluate(data);
        Assert.Equal(1.0, eval.Accuracy);
        Assert.Equal([1, 0, 0, 0], trainer.Predict(data));
    }
}


/// <summary>The task each built-in loss implies for an output shape, and its rule for positive binary targets.</summary>
public sealed class LossContractTests
{
    public static TheoryData<string, int[], TaskKind> Tasks => new()
    {
        { "ce", [5], TaskKind.MultiClass }, { "ce", [2], TaskKind.MultiClass }, { "ce", [1], TaskKind.Regression }, { "ce", [2, 3], TaskKind.Regression },
        { "margin", [4], TaskKind.MultiClass }, { "bce", [1], TaskKind.Binary }, { "bce", [3], TaskKind.Regression },
        { "hinge", [1], TaskKind.Binary }, { "hinge", [1, 1], TaskKind.Binary }, { "hinge", [2], TaskKind.Regression }, { "mse", [1], TaskKind.Regression },
    };

    private static Loss Create(string name) => name switch
    {
        "ce" => new CrossEntropyLoss(),
        "margin" => new MultiMarginLoss(),
        "bce" => new BceWithLogitsLoss(),
        "hinge" => new HingeLoss(),
        "mse" => new MseLoss(),
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, "unknown loss"),
    };

    [Theory, MemberData(nameof(Tasks))]
    public void LossDecidesTheTask(string loss, int[] outputShape, TaskKind expected) => Assert.Equal(expected, Create(loss).Task(outputShape));

    [Fact]
    public void BceCountsHalfAndAboveHingeAboveZeroAsPositive()
    {
        float[] targets = [-1f, 0f, 0.25f, 0.5f, 1f];
        Assert.Equal([false, false, false, true, true], targets.Select(new BceWithLogitsLoss().IsPositive));
        Assert.Equal([false, false, true, true, true], targets.Select(new HingeLoss().IsPositive));
        Assert.Throws<ArgumentNullException>(() => new HingeLoss().Task(null!));
    }
}
