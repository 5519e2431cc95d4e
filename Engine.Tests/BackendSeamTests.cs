using GpuNet.Kernels;
using GpuNet.Nn;
using GpuNet.Optim;

namespace GpuNet.Tests;

/// <summary>
/// The backend seam: a launch is one Device op dispatched to the backend, counted once whatever the backend runs for
/// it, so <see cref="DeviceCounters.Launches"/> means the same on every device; <see cref="DeviceCounters.KernelLaunches"/>
/// counts the ILGPU kernels behind them (0 on <c>cpu</c>).
/// </summary>
public sealed class BackendSeamTests(BackendFixture f) : DeviceTestBase(f), IClassFixture<BackendFixture>
{
    [Theory, Backends]
    public void EveryOpFamilyCountsOneLaunchPerCall(string backend)
    {
        Use(backend);
        // Small awkward shapes: x (2, 3, 5, 5), a 3x3 filter, a (3, 5) matrix.
        var p = Conv2dParams.Square(padding: 1);
        using var x = D.FromArray(TestData.Uniform(1, 2 * 3 * 5 * 5), 2, 3, 5, 5);
        using var dx = D.Zeros(2, 3, 5, 5);
        using var w = D.FromArray(TestData.Uniform(2, 4 * 3 * 3 * 3), 4, 3, 3, 3);
        using var dw = D.Zeros(4, 3, 3, 3);
        using var b = D.Zeros(4);
        using var y = D.Zeros(2, 4, 5, 5);
        using var dwDepth = D.FromArray(TestData.Uniform(3, 3 * 9), 3, 1, 3, 3);
        using var bDepth = D.Zeros(3);
        using var yDepth = D.Zeros(2, 3, 5, 5);
        using var gamma = D.FromArray([1f, 2f, 3f]); using var beta = D.Zeros(3);
        using var mean = D.Zeros(3); using var invStd = D.Zeros(3); using var runMean = D.Zeros(3); using var runVar = D.Zeros(3);
        using var pooled = D.Zeros(2, 3, 2, 2); using var indices = D.Allocate([2, 3, 2, 2], DType.Int32);
        using var global = D.Zeros(2, 3);
        using var m = D.FromArray(TestData.Uniform(4, 15), 3, 5); using var m2 = D.Zeros(3, 5);
        using var mt = D.FromArray(TestData.Uniform(5, 20), 4, 5); using var mOut = D.Zeros(3, 4);
        using var bias = D.Zeros(4); using var rows = D.Zeros(3); using var cols = D.Zeros(5); using var one = D.Zeros(1);
        using var labels = D.FromArray([0, 4, 2], 3); using var argmax = D.Allocate([3], DType.Int32);
        using var param = D.FromArray(TestData.Uniform(6, 15)); using var grad = D.FromArray(TestData.Uniform(7, 15));
        using var adam = new Adam(D, param, grad, options: new() { MaxGradNorm = 1 });

        var ops = new (string Name, Action Run)[]
        {
            ("Add", () => D.Add(m, m, m2)), ("Scale", () => D.Scale(2f, m, m2)), ("Axpy", () => D.Axpy(2f, m, m2)),
            ("Fill", () => D.Fill(m2, 1f)), ("Copy", () => D.Copy(m, m2)),
            ("ActivationForward", () => D.ActivationForward(Activation.Gelu, m, m2)),
            ("ActivationBackward", () => D.ActivationBackward(Activation.Gelu, m, m, m, m2)),
            ("Softmax", () => D.Softmax(m, m2)), ("SoftmaxBackward", () => D.SoftmaxBackward(m, m, m2)),
            ("DropoutForward", () => D.DropoutForward(m, m2, 0.5f, 1, 2)),
            ("Gemm", () => D.Gemm(m, mt, mOut, transB: true, bias: bias, activation: Activation.Relu)),
            ("Conv2dForward", () => D.Conv2dForward(x, w, b, y, p)), ("Conv2dBackwardData", () => D.Conv2dBackwardData(y, w, dx, p)),
            ("Conv2dBackwardFilter", () => D.Conv2dBackwardFilter(x, y, dw, b, p)),
            ("DepthwiseConv2dForward", () => D.DepthwiseConv2dForward(x, dwDepth, bDepth, yDepth, 1, 1, 1, 1)),
            ("DepthwiseConv2dBackwardData", () => D.DepthwiseConv2dBackwardData(yDepth, dwDepth, dx, 1, 1, 1, 1)),
            ("DepthwiseConv2dBackwardFilter", () => D.DepthwiseConv2dBackwardFilter(x, yDepth, dwDepth, bDepth, 1, 1, 1, 1)),
            ("BatchNormForward", () => D.BatchNormForward(x, gamma, beta, runMean, runVar, mean, invStd, dx, training: true, fuseRelu: true)),
            ("BatchNormBackward", () => D.BatchNormBackward(x, dx, gamma, mean, invStd, yDepth, bDepth, beta, fuseRelu: true, y: dx)),
            ("MaxPool2dForward", () => D.MaxPool2dForward(x, pooled, indices, 2, 2, 2, 2)),
            ("MaxPool2dBackward", () => D.MaxPool2dBackward(pooled, indices, dx, 2, 2, 2, 2)),
            ("AvgPool2dForward", () => D.AvgPool2dForward(x, pooled, 2, 2, 2, 2)),
            ("AvgPool2dBackward", () => D.AvgPool2dBackward(pooled, dx, 2, 2, 2, 2)),
            ("GlobalAvgPoolForward", () => D.GlobalAvgPoolForward(x, global)), ("GlobalAvgPoolBackward", () => D.GlobalAvgPoolBackward(global, dx)),
            ("SumRows", () => D.SumRows(m, rows)), ("MaxCols", () => D.MaxCols(m, cols)), ("Sum", () => D.Sum(m, one)),
            ("ArgmaxRows", () => D.ArgmaxRows(m, argmax)),
            ("MeanSquaredError", () => D.MeanSquaredError(m, m, one, m2)), ("BceWithLogits", () => D.BceWithLogits(m, m, one, m2)),
            ("BinaryHinge", () => D.BinaryHinge(m, m, one, m2)),
            ("SoftmaxCrossEntropy", () => D.SoftmaxCrossEntropy(m, labels, one, m2, labelSmoothing: 0.1f)),
            ("MultiMarginHinge", () => D.MultiMarginHinge(m, labels, one, m2)),
            ("OptimizerStep (clipped)", adam.Step),
        };
        var wrong = new List<string>();
        foreach (var (name, run) in ops)
        {
            long launches = D.Counters.Launches, kernels = D.Counters.KernelLaunches;
            run();
            long l = D.Counters.Launches - launches, k = D.Counters.KernelLaunches - kernels;
            if (l != 1 || (D.IsHost ? k != 0 : k < 1))
                wrong.Add($"{name}: {l} launches (expected 1), {k} kernels (expected {(D.IsHost ? "0" : ">= 1")})");
        }
        Assert.True(wrong.Count == 0, $"on {D.Name}: {string.Join("; ", wrong)}");
    }

    [Theory, Backends]
    public void EmptyTensorsCountNoLaunch(string backend)
    {
        Use(backend);
        using var e = D.Zeros(0, 4); using var e2 = D.Zeros(0, 4);
        using var w = D.Zeros(3, 4); using var c = D.Zeros(0, 3);
        using var x = D.Zeros(0, 2, 4, 4); using var yPool = D.Zeros(0, 2, 2, 2);
        long launches = D.Counters.Launches, kernels = D.Counters.KernelLaunches;
        D.Add(e, e, e2);
        D.ActivationForward(Activation.Relu, e, e2);
        D.Gemm(e, w, c, transB: true);
        D.AvgPool2dForward(x, yPool, 2, 2, 2, 2);
        Assert.Equal(launches, D.Counters.Launches);
        Assert.Equal(kernels, D.Counters.KernelLaunches);
    }

    [Theory, Backends]
    public void KernelLaunchesAreZeroOnCpuAndAtLeastTheLaunchesOnAccelerators(string backend)
    {
        Use(backend);
        using var x = D.FromArray(TestData.Uniform(1, 2 * 2 * 4 * 4), 2, 2, 4, 4);
        using var w = D.FromArray(TestData.Uniform(2, 3 * 2 * 9), 3, 2, 3, 3);
        using var y = D.Zeros(2, 3, 4, 4);
        long launches = D.Counters.Launches, kernels = D.Counters.KernelLaunches;
        D.Conv2dForward(x, w, null, y, Conv2dParams.Square(padding: 1));
        Assert.Equal(launches + 1, D.Counters.Launches);
        if (D.IsHost) Assert.Equal(0, D.Counters.KernelLaunches);
        else Assert.Equal(kernels + 1, D.Counters.KernelLaunches);   // one implicit-GEMM kernel for the whole batch
        Assert.Equal(D.Counters.KernelLaunches, D.Counters.Snapshot().KernelLaunches);
    }
}


/// <summary>The same model counts the same launches per training step on <c>cpu</c> and on every other backend.</summary>
public sealed class LaunchParityTests(BackendFixture f) : DeviceTestBase(f), IClassFixture<BackendFixture>
{
    public static TheoryData<string> Models => ["mlp", "cnn"];

    [Theory, Backends(nameof(Models), Except = "cpu")]
    public void TrainingStepLaunchesAgreeAcrossBackends(string backend, string model)
    {
        Use(backend);
        using var cpu = Device.Create("cpu");
        var ilgpu = D;
        var (cpuLaunches, cpuKernels) = StepLaunches(cpu, model);
        var (ilgpuLaunches, ilgpuKernels) = StepLaunches(ilgpu, model);
        Assert.True(cpuLaunches > 0);
        Assert.Equal(cpuLaunches, ilgpuLaunches);
        Assert.Equal(0, cpuKernels);
        // The CNN's convolutions, batch norm, loss and clipped optimizer step each launch several kernels.
        if (model == "cnn") Assert.True(ilgpuKernels > ilgpuLaunches, $"{ilgpuKernels} kernels for {ilgpuLaunches} launches");
        else Assert.True(ilgpuKernels >= ilgpuLaunches, $"{ilgpuKernels} kernels for {ilgpuLaunches} launches");
    }

    // Launches and kernel launches of the second training step (zero-grad, forward, loss, backward, clipped Adam step).
    private static (long Launches, long Kernels) StepLaunches(Device d, string kind)
    {
        Layer net = kind == "mlp"
            ? new Sequential(new Linear(12, 16), new BatchNorm1d(16), new ActivationLayer(Activation.Relu), new Dropout(0.2f),
                new Residual(new Sequential(new Linear(16, 16), new ActivationLayer(Activation.Gelu))), new Linear(16, 4))
            : new Sequential(new Conv2d(1, 4, 3, padding: 1), new BatchNorm2d(4), new ActivationLayer(Activation.Relu), new MaxPool2d(2),
                new DepthwiseConv2d(4, 3, stride: 2, padding: 1, bias: false), new GlobalAvgPool(), new Linear(4, 4));
        int[] inputShape = kind == "mlp" ? [12] : [1, 8, 8];
        using var model = Model.Build(d, net, inputShape, 4);
        using var opt = new Adam(d, model.Parameters, model.Gradients!, options: new() { MaxGradNorm = 1 });
        var loss = new CrossEntropyLoss();
        using var x = d.FromArray(TestData.Uniform(1, 4 * (kind == "mlp" ? 12 : 64)), [4, .. inputShape]);
        using var y = d.FromArray([0, 1, 2, 3], 4);
        using var lossValue = d.Zeros(1);
        void Step()
        {
            model.ForwardBackward(x, y, loss, lossValue);
            opt.Step();
        }
        Step();
        long launches = d.Counters.Launches, kernels = d.Counters.KernelLaunches;
        Step();
        return (d.Counters.Launches - launches, d.Counters.KernelLaunches - kernels);
    }
}
