using GpuNet.Data;
using GpuNet.Kernels;
using GpuNet.Init;
using GpuNet.Nn;
using GpuNet.Optim;
using GpuNet.Schedules;
using GpuNet.Training;

namespace GpuNet.Tests;

/// <summary>
/// Every public constructor and factory that takes a number, and every numeric option of the <c>train</c> command,
/// rejects an out-of-range value with an exception (or a usage error) that names the argument, the allowed range and
/// the value. One row per bad value: the call, the parameter it must name, a piece of the range it must state, and
/// the value as the message must print it.
/// </summary>
[Collection(nameof(ConsoleCollection))]
public sealed class HyperparameterTests : IDisposable
{
    private readonly Device _cpu = Device.Create("cpu");
    private readonly Tensor _p, _g;

    public HyperparameterTests()
    {
        _p = _cpu.Zeros(4);
        _g = _cpu.Zeros(4);
    }

    public void Dispose()
    {
        _p.Dispose();
        _g.Dispose();
        _cpu.Dispose();
    }

    private sealed record Row(Func<Device, Tensor, Tensor, object?> Make, string Param, string Range, string Value);

    private static Row R(Func<Device, Tensor, Tensor, object?> make, string param, string range, string value) => new(make, param, range, value);
    private static Row R(Func<object?> make, string param, string range, string value) => new((_, _, _) => make(), param, range, value);

    private static readonly Dictionary<string, Row> Rows = new()
    {
        // Optimizers: learning rate, momentum, dampening, betas, eps, weight decay, AdaGrad's and RMSprop's own.
        ["sgd lr -1"] = R((d, p, g) => new Sgd(d, p, g, lr: -1), "lr", "(0, inf)", "-1"),
        ["sgd lr 0"] = R((d, p, g) => new Sgd(d, p, g, lr: 0), "lr", "(0, inf)", "0"),
        ["sgd lr NaN"] = R((d, p, g) => new Sgd(d, p, g, lr: double.NaN), "lr", "(0, inf)", "NaN"),
        ["sgd lr inf"] = R((d, p, g) => new Sgd(d, p, g, lr: double.PositiveInfinity), "lr", "(0, inf)", "Infinity"),
        ["sgd momentum 1"] = R((d, p, g) => new Sgd(d, p, g, momentum: 1), "momentum", "[0, 1)", "1"),
        ["sgd momentum -0.1"] = R((d, p, g) => new Sgd(d, p, g, momentum: -0.1), "momentum", "[0, 1)", "-0.1"),
        ["sgd momentum NaN"] = R((d, p, g) => new Sgd(d, p, g, momentum: double.NaN), "momentum", "[0, 1)", "NaN"),
        ["sgd dampening 1.5"] = R((d, p, g) => new Sgd(d, p, g, momentum: 0.9, dampening: 1.5), "dampening", "[0, 1]", "1.5"),
        ["sgd weight decay -1"] = R((d, p, g) => new Sgd(d, p, g, weightDecay: -1), "weightDecay", "[0, inf)", "-1"),
        ["sgd weight decay NaN"] = R((d, p, g) => new Sgd(d, p, g, weightDecay: double.NaN), "weightDecay", "[0, inf)", "NaN"),
        ["adam beta1 1"] = R((d, p, g) => new Adam(d, p, g, beta1: 1), "beta1", "[0, 1)", "1"),
        ["adam beta1 -0.1"] = R((d, p, g) => new Adam(d, p, g, beta1: -0.1), "beta1", "[0, 1)", "-0.1"),
        ["adam beta2 1"] = R((d, p, g) => new Adam(d, p, g, beta2: 1), "beta2", "[0, 1)", "1"),
        ["adam beta2 NaN"] = R((d, p, g) => new Adam(d, p, g, beta2: double.NaN), "beta2", "[0, 1)", "NaN"),
        ["adam eps 0"] = R((d, p, g) => new Adam(d, p, g, eps: 0), "eps", "(0, inf)", "0"),
        ["adam eps -1e-8"] = R((d, p, g) => new Adam(d, p, g, eps: -1e-8), "eps", "(0, inf)", "-1E-08"),
        ["adam lr NaN"] = R((d, p, g) => new Adam(d, p, g, lr: double.NaN), "lr", "(0, inf)", "NaN"),
        ["adamw weight decay -0.01"] = R((d, p, g) => Adam.AdamW(d, p, g, weightDecay: -0.01), "weightDecay", "[0, inf)", "-0.01"),
        ["adagrad lr decay -1"] = R((d, p, g) => new Adagrad(d, p, g, lrDecay: -1), "lrDecay", "[0, inf)", "-1"),
        ["adagrad initial accumulator -1"] = R((d, p, g) => new Adagrad(d, p, g, initialAccumulatorValue: -1), "initialAccumulatorValue", "[0, inf)", "-1"),
        ["adagrad eps 0"] = R((d, p, g) => new Adagrad(d, p, g, eps: 0), "eps", "(0, inf)", "0"),
        ["rmsprop alpha 1"] = R((d, p, g) => new RmsProp(d, p, g, alpha: 1), "alpha", "[0, 1)", "1"),
        ["rmsprop momentum 1"] = R((d, p, g) => new RmsProp(d, p, g, momentum: 1), "momentum", "[0, 1)", "1"),
        ["rmsprop eps NaN"] = R((d, p, g) => new RmsProp(d, p, g, eps: double.NaN), "eps", "(0, inf)", "NaN"),
        ["clip norm -1"] = R(() => new OptimizerOptions { MaxGradNorm = -1 }, "MaxGradNorm", "(0, inf)", "-1"),
        ["clip norm NaN"] = R(() => new OptimizerOptions { MaxGradNorm = double.NaN }, "MaxGradNorm", "(0, inf)", "NaN"),
        ["clip value -1"] = R(() => new OptimizerOptions { ClipValue = -1 }, "ClipValue", "(0, inf)", "-1"),
        ["L1 -1"] = R(() => new Regularization { L1 = -1 }, "L1", "[0, inf)", "-1"),
        ["elastic net ratio 2"] = R(() => Regularization.ElasticNet(0.1, 2), "l1Ratio", "[0, 1]", "2"),
        ["group lr scale 0"] = R(() => new ParamGroup { LrScale = 0 }, "LrScale", "(0, inf)", "0"),

        // Schedules.
        ["step lr step size 0"] = R(() => new StepLR(0.1, 0), "stepSize", "[1, ", "0"),
        ["step lr gamma 0"] = R(() => new StepLR(0.1, 10, 0), "gamma", "(0, +inf)", "0"),
        ["step lr gamma -0.5"] = R(() => new StepLR(0.1, 10, -0.5), "gamma", "(0, +inf)", "-0.5"),
        ["step lr base lr NaN"] = R(() => new StepLR(double.NaN, 10), "baseLr", "(0, +inf)", "NaN"),
        ["exponential gamma NaN"] = R(() => new ExponentialLR(0.1, double.NaN), "gamma", "(0, +inf)", "NaN"),
        ["multistep gamma 0"] = R(() => new MultiStepLR(0.1, [5], 0), "gamma", "(0, +inf)", "0"),
        ["cosine tMax 0"] = R(() => new CosineAnnealingLR(0.1, 0), "tMax", "[1, ", "0"),
        ["cosine etaMin above base"] = R(() => new CosineAnnealingLR(0.1, 10, 0.2), "etaMin", "[0, 0.1]", "0.2"),
        ["restarts T_0 0"] = R(() => new CosineAnnealingWarmRestarts(0.1, 0), "t0", "[1, ", "0"),
        ["restarts T_mult 0"] = R(() => new CosineAnnealingWarmRestarts(0.1, 5, 0), "tMult", "[1, ", "0"),
        ["warmup steps -1"] = R(() => new WarmupSchedule(new ConstantSchedule(0.1), -1), "warmupSteps", "[1, ", "-1"),
        ["warmup start factor 2"] = R(() => new WarmupSchedule(new ConstantSchedule(0.1), 5, startFactor: 2), "startFactor", "[0, 1]", "2"),
        ["cyclic bounds reversed"] = R(() => new CyclicLR(0.1, 0.01), "maxLr", "[base_lr = 0.1, +inf)", "0.01"),
        ["cyclic step size 0"] = R(() => new CyclicLR(0.01, 0.1, 0), "stepSizeUp", "[1, ", "0"),
        ["onecycle total steps 1"] = R(() => new OneCycleLR(0.1, 1), "totalSteps", "[2, ", "1"),
        ["onecycle pct start 1"] = R(() => new OneCycleLR(0.1, 100, pctStart: 1), "pctStart", "(0, 1)", "1"),
        ["onecycle div factor 0"] = R(() => new OneCycleLR(0.1, 100, divFactor: 0), "divFactor", "(0, +inf)", "0"),
        ["plateau factor 1"] = R(() => new ReduceLROnPlateau(0.1, factor: 1), "factor", "(0, 1)", "1"),
        ["plateau patience -1"] = R(() => new ReduceLROnPlateau(0.1, patience: -1), "patience", "[0, ", "-1"),
        ["plateau cooldown -1"] = R(() => new ReduceLROnPlateau(0.1, cooldown: -1), "cooldown", "[0, ", "-1"),

        // Initialisers.
        ["normal std -1"] = R(() => new Normal(0, -1), "std", "[0, +inf)", "-1"),
        ["normal std NaN"] = R(() => new Normal(0, double.NaN), "std", "[0, +inf)", "NaN"),
        ["uniform low > high"] = R(() => new Uniform(1, 0), "high", "(1, +inf)", "0"),
        ["uniform low NaN"] = R(() => new Uniform(double.NaN, 1), "low", "(finite)", "NaN"),
        ["truncated normal std 0"] = R(() => new TruncatedNormal(0, 0), "std", "(0, +inf)", "0"),
        ["truncated normal a >= b"] = R(() => new TruncatedNormal(0, 1, 2, -2), "b", "(2, +inf)", "-2"),
        ["xavier gain 0"] = R(() => Xavier.Uniform(0), "gain", "(0, +inf)", "0"),
        ["orthogonal gain -1"] = R(() => new Orthogonal(-1), "gain", "(0, +inf)", "-1"),
        ["kaiming a NaN"] = R(() => Kaiming.Normal(double.NaN), "a", "(finite)", "NaN"),
        ["constant inf"] = R(() => new Constant(double.PositiveInfinity), "value", "(finite)", "Infinity"),

        // Layers and losses.
        ["dropout 1"] = R(() => new Dropout(1f), "p", "[0, 1)", "1"),
        ["dropout -0.1"] = R(() => new Dropout(-0.1f), "p", "[0, 1)", "-0.1"),
        ["dropout NaN"] = R(() => new Dropout(float.NaN), "p", "[0, 1)", "NaN"),
        ["label smoothing 1"] = R(() => new CrossEntropyLoss(labelSmoothing: 1f), "labelSmoothing", "[0, 1)", "1"),
        ["label smoothing -0.1"] = R(() => new CrossEntropyLoss(labelSmoothing: -0.1f), "labelSmoothing", "[0, 1)", "-0.1"),
        ["label smoothing NaN"] = R(() => new CrossEntropyLoss(labelSmoothing: float.NaN), "labelSmoothing", "[0, 1)", "NaN"),
        ["batch norm momentum 1.5"] = R(() => new BatchNorm1d(4, momentum: 1.5f), "momentum", "[0, 1]", "1.5"),
        ["batch norm eps 0"] = R(() => new BatchNorm2d(4, eps: 0f), "eps", "finite and > 0", "0"),
        ["batch norm features 0"] = R(() => new BatchNorm1d(0), "features", "greater than or equal to '1'", "0"),
        ["linear in 0"] = R(() => new Linear(0, 4), "inFeatures", "greater than or equal to '1'", "0"),
        ["linear out -1"] = R(() => new Linear(4, -1), "outFeatures", "greater than or equal to '1'", "-1"),
        ["conv kernel 0"] = R(() => new Conv2d(1, 4, 0), "kernelSize", "greater than or equal to '1'", "0"),
        ["conv stride 0"] = R(() => new Conv2d(1, 4, 3, stride: 0), "stride", "greater than or equal to '1'", "0"),
        ["conv padding -1"] = R(() => new Conv2d(1, 4, 3, padding: -1), "padding", "non-negative", "-1"),
        ["depthwise kernel 0"] = R(() => new DepthwiseConv2d(4, 0), "kernelSize", "greater than or equal to '1'", "0"),
        ["max pool kernel 0"] = R(() => new MaxPool2d(0), "kernelSize", "greater than or equal to '1'", "0"),
        ["avg pool padding 2 of kernel 2"] = R(() => new AvgPool2d(2, padding: 2), "padding", "[0, kernel/2 = 1]", "2"),
        ["leaky relu alpha NaN"] = R(() => new ActivationLayer(Activation.LeakyRelu, float.NaN), "alpha", "finite", "NaN"),

        // Training: callbacks, batch sources, the loader and its augmentations.
        ["early stopping patience -1"] = R(() => new EarlyStopping(patience: -1), "patience", ">= 0", "-1"),
        ["early stopping min delta NaN"] = R(() => new EarlyStopping(minDelta: double.NaN), "minDelta", ">= 0", "NaN"),
        ["fit epochs 0"] = R((d, _, _) => FitEpochs(d, 0), "epochs", ">= 1", "0"),
        ["trainer nan check -1"] = R(() => new TrainerOptions { NanCheckEverySteps = -1 }, "NanCheckEverySteps", ">= 0", "-1"),
        ["rotation degrees NaN"] = R(() => Augment.Rotation(double.NaN), "degrees", "[0, 180]", "NaN"),
        ["plateau min lr above initial"] = R(() => new ReduceLROnPlateau(0.1, minLr: 0.5), "minLr", "[0, 0.1]", "0.5"),
        ["nan guard every -1"] = R(() => new NanGuard(-1), "checkEverySteps", ">= 0", "-1"),
        ["array source batch 0"] = R((d, _, _) => new ArrayBatchSource(d, new float[4], [2], [0, 1], 0), "batchSize", ">= 1", "0"),
        ["loader batch 0"] = R((d, _, _) => new DataLoader(d, Dataset.Classification("t", new float[4], [2], [0, 1], 2), 0, false, false, 1, prefetch: false),
            "batchSize", "at least 1", "0"),
        ["flip p 1.5"] = R(() => Augment.HorizontalFlip(1.5), "p", "[0, 1]", "1.5"),
        ["rotation degrees 200"] = R(() => Augment.Rotation(200), "degrees", "[0, 180]", "200"),
        ["crop padding -1"] = R(() => Augment.RandomCrop(-1), "padding", ">= 0", "-1"),
        ["jitter brightness 1"] = R(() => Augment.ColorJitter(1, 0), "brightness", "[0, 1)", "1"),
        ["erasing scale reversed"] = R(() => Augment.RandomErasing(0.5, 0.3, 0.2), "scaleHi", "scaleHi <= 1", "0.2"),
    };

    // Fit on a one-layer model: epochs is checked before anything trains.
    private static FitResult FitEpochs(Device d, int epochs)
    {
        using var model = Model.Build(d, new Linear(2, 2), [2], 2);
        using var optimizer = OptimizerFactory.Sgd(model, 0.1);
        using var source = new ArrayBatchSource(d, new float[4], [2], [0, 1], 2);
        return new Trainer(model, new CrossEntropyLoss(), optimizer).Fit(source, null, epochs);
    }

    public static TheoryData<string> Names => new(Rows.Keys);

    [Theory, MemberData(nameof(Names))]
    public void OutOfRangeValuesAreRejectedNamingArgumentRangeAndValue(string row)
    {
        var r = Rows[row];
        object? made = null;
        var e = Record.Exception(() => made = r.Make(_cpu, _p, _g));
        (made as IDisposable)?.Dispose();
        Assert.True(e is ArgumentException, $"{row}: expected an ArgumentException, got {(e is null ? "none" : e.GetType().Name + ": " + e.Message)}");
        var a = (ArgumentException)e!;
        Assert.Equal(r.Param, a.ParamName);
        Assert.Contains(r.Range, a.Message);
        Assert.Contains(r.Value, a.Message);
    }

    // The train command's numeric options: exit code 2 and a message naming the option, the range and the value.
    public static TheoryData<string, string, string> CliRows => new()
    {
        { "--epochs", "0", ">= 1" },
        { "--epochs", "-3", ">= 1" },
        { "--batch-size", "0", ">= 1" },
        { "--lr", "-0.1", "> 0" },
        { "--lr", "NaN", "> 0" },
        { "--weight-decay", "-1", ">= 0" },
        { "--weight-decay", "NaN", ">= 0" },
        { "--l1", "-0.5", ">= 0" },
        { "--l2", "NaN", ">= 0" },
        { "--dropout", "1", "[0, 1)" },
        { "--dropout", "-0.1", "[0, 1)" },
        { "--dropout", "NaN", "[0, 1)" },
        { "--patience", "-1", ">= 0" },
    };

    [Theory, MemberData(nameof(CliRows))]
    public void TrainCommandRejectsOutOfRangeOptions(string option, string value, string range)
    {
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        var (o, err) = (new StringWriter(), new StringWriter());
        Console.SetOut(o);
        Console.SetError(err);
        int code;
        try { code = GpuNet.Bench.BenchApp.Run(["train", "digits-mlp", "--device", "cpu", "--quiet", option, value]); }
        finally
        {
            Console.SetOut(oldOut);
            Console.SetError(oldErr);
        }
        string message = err.ToString();
        Assert.True(code == 2, $"train {option} {value}: exit code {code}, stderr: {message}");
        Assert.Contains($"{option}: {value} is not allowed", message);
        Assert.Contains(range, message);
    }
}
