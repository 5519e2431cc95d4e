using GpuNet.Bench;
using GpuNet.Checkpoints;
using GpuNet.Kernels;
using GpuNet.Nn;
using GpuNet.Onnx;
using Microsoft.ML.OnnxRuntime;

namespace GpuNet.Tests;

/// <summary>Runs ONNX files in ONNX Runtime (CPU) and compares them with the GpuNet model they came from.</summary>
internal static class OnnxCheck
{
    /// <summary>
    /// Feeds the same random inputs of batch 1 and 3 (one exported file: the batch is dynamic) through the eval-mode
    /// model and through ONNX Runtime, and asserts they agree under <see cref="Tol.OnnxRuntime"/>.
    /// </summary>
    public static void AgreesWithModel(Model model, string onnxPath, string what, ulong seed = 7)
    {
        using var session = new InferenceSession(onnxPath);
        var input = session.InputMetadata["input"];
        Assert.Equal([-1, .. model.InputShape], input.Dimensions);
        Assert.Equal("batch", input.SymbolicDimensions[0]);
        Assert.Equal([-1, .. model.OutputShape], session.OutputMetadata["output"].Dimensions);
        var rng = new Random((int)seed);
        foreach (int n in new[] { 1, 3 })
        {
            var x = new float[n * (int)ShapeUtil.Count(model.InputShape)];
            for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 4 - 2);
            using var xt = model.Device.FromArray(x, [n, .. model.InputShape]);
            var expected = model.Forward(xt, training: false).ToArray();

            long[] shape = [n, .. model.InputShape.Select(d => (long)d)];
            using var ortInput = OrtValue.CreateTensorValueFromMemory(x, shape);
            using var runOptions = new RunOptions();
            using var outputs = session.Run(runOptions, new Dictionary<string, OrtValue> { ["input"] = ortInput }, ["output"]);
            var got = outputs[0];
            Assert.Equal([n, .. model.OutputShape.Select(d => (long)d)], got.GetTensorTypeAndShape().Shape);
            Tol.OnnxRuntime.AssertClose(got.GetTensorDataAsSpan<float>(), expected.Select(v => (double)v).ToArray(), $"{what}, batch {n}");
        }
    }

    /// <summary>
    /// Gives every parameter and buffer random values (batch-norm variances in [0.5, 2]), so that batch norm in eval mode
    /// is not the identity and every weight matters.
    /// </summary>
    public static void Randomize(Model model, int seed, bool batchNormOnly)
    {
        var rng = new Random(seed);
        foreach (var e in model.ParameterTable)
        {
            bool bn = e.Layer is BatchNorm;
            if (batchNormOnly && !bn) continue;
            var v = new float[e.Length];
            bool variance = e.Name.EndsWith(".running_var", StringComparison.Ordinal);
            for (int i = 0; i < v.Length; i++) v[i] = (float)(variance ? 0.5 + 1.5 * rng.NextDouble() : rng.NextDouble() - 0.5);
            model[e.Name].CopyFrom(v);
        }
    }

    /// <summary>The initializer names of an ONNX file, in file order.</summary>
    public static string[] InitializerNames(string path)
        => global::Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(path)).Graph.Initializer.Select(i => i.Name).ToArray();
}

public sealed class OnnxExportTests(BackendFixture f) : DeviceTestBase(f), IClassFixture<BackendFixture>
{
    /// <summary>Every layer kind, with awkward shapes: odd channels, stride 2, dilation 2, groups, padding, no bias.</summary>
    private static readonly Dictionary<string, (Func<Layer> Network, int[] Input)> Cases = new()
    {
        ["linear"] = (() => new Linear(7, 5), [7]),
        ["linear-no-bias"] = (() => new Linear(7, 3, bias: false), [7]),
        ["identity"] = (() => new ActivationLayer(Activation.Identity), [11]),
        ["relu"] = (() => new ActivationLayer(Activation.Relu), [11]),
        ["leaky-relu"] = (() => new ActivationLayer(Activation.LeakyRelu, 0.2f), [11]),
        ["elu"] = (() => new ActivationLayer(Activation.Elu, 0.7f), [11]),
        ["sigmoid"] = (() => new ActivationLayer(Activation.Sigmoid), [11]),
        ["tanh"] = (() => new ActivationLayer(Activation.Tanh), [11]),
        ["gelu"] = (() => new ActivationLayer(Activation.Gelu), [3, 5, 7]),
        ["softplus"] = (() => new ActivationLayer(Activation.Softplus), [11]),
        ["linear+fused-activations"] = (() => new Sequential(new Linear(6, 9), new ActivationLayer(Activation.Elu), new Linear(9, 4),
            new ActivationLayer(Activation.LeakyRelu), new Linear(4, 3), new ActivationLayer(Activation.Tanh)), [6]),
        ["dropout"] = (() => new Sequential(new Linear(6, 4), new Dropout(0.5f)), [6]),
        ["dropout-only"] = (() => new Dropout(0.3f), [5]),
        ["batchnorm1d"] = (() => new Sequential(new Linear(6, 5), new BatchNorm1d(5)), [6]),
        ["batchnorm1d+relu"] = (() => new Sequential(new Linear(6, 5), new BatchNorm1d(5, eps: 1e-3f), new ActivationLayer(Activation.Relu)), [6]),
        ["batchnorm2d"] = (() => new BatchNorm2d(3), [3, 5, 7]),
        ["conv-stride2-pad1"] = (() => new Conv2d(3, 5, 3, stride: 2, padding: 1), [3, 9, 7]),
        ["conv-dilation2-groups"] = (() => new Conv2d(4, 6, 3, padding: 2, dilation: 2, groups: 2, bias: false), [4, 8, 9]),
        ["conv-1x1"] = (() => new Conv2d(3, 5, 1), [3, 4, 5]),
        ["conv-5x5-groups3"] = (() => new Conv2d(3, 9, 5, stride: 2, padding: 2, groups: 3), [3, 11, 10]),
        ["depthwise-stride2"] = (() => new DepthwiseConv2d(5, 3, stride: 2, padding: 1), [5, 9, 8]),
        ["depthwise-dilation2"] = (() => new DepthwiseConv2d(3, 3, padding: 2, dilation: 2, bias: false), [3, 7, 7]),
        ["maxpool-3-2-1"] = (() => new MaxPool2d(3, 2, 1), [3, 9, 8]),
        ["maxpool-2-odd"] = (() => new MaxPool2d(2), [3, 7, 7]),
        ["avgpool-include-pad"] = (() => new AvgPool2d(3, 2, 1), [3, 9, 8]),
        ["avgpool-exclude-pad"] = (() => new AvgPool2d(3, 2, 1, countIncludePad: false), [3, 9, 8]),
        ["global-avg-pool"] = (() => new GlobalAvgPool(), [5, 3, 4]),
        ["flatten"] = (() => new Sequential(new Flatten(), new Linear(24, 3)), [2, 3, 4]),
        ["residual-identity"] = (() => new Residual(new Sequential(new Linear(6, 6), new ActivationLayer(Activation.Relu))), [6]),
        ["residual-projection"] = (() => new Residual(new Linear(6, 4), new Linear(6, 4, bias: false)), [6]),
        ["basic-residual-stride2"] = (() => Blocks.BasicResidual(3, 6, 2), [3, 9, 9]),
        ["depthwise-separable"] = (() => Blocks.DepthwiseSeparable(3, 5, 2), [3, 8, 8]),
        ["small-cnn"] = (() => new Sequential(new Conv2d(1, 3, 3, padding: 1), new BatchNorm2d(3), new ActivationLayer(Activation.Relu),
            new MaxPool2d(2), new Flatten(), new Linear(3 * 3 * 3, 5), new Dropout(0.2f), new ActivationLayer(Activation.Gelu), new Linear(5, 2)), [1, 7, 7]),
    };

    public static TheoryData<string> CaseNames => new(Cases.Keys);

    /// <summary>The per-sample input shape of each preset's data set (the presets' data loads files the tests do not fetch).</summary>
    private static readonly Dictionary<string, int[]> PresetInputs = new()
    {
        ["binary"] = [10], ["digits-mlp"] = [64], ["mnist-mlp"] = [1, 28, 28], ["mnist-mlp-sgd"] = [1, 28, 28], ["fashion-mlp"] = [1, 28, 28],
        ["mnist-cnn"] = [1, 28, 28], ["fashion-cnn"] = [1, 28, 28], ["fashion-resnet"] = [1, 28, 28], ["fashion-mobilenet"] = [1, 28, 28],
    };

    public static TheoryData<string> PresetNames => new(Preset.All.Concat(Preset.Cnn).Select(p => p.Name));

    [Theory, MemberData(nameof(CaseNames))]
    public void EveryLayerKindAgreesWithOnnxRuntime(string name)
    {
        Use("cpu");
        var (network, input) = Cases[name];
        using var model = Model.Build(D, network(), input, 3, new ModelOptions { Seed = 3, Training = false });
        OnnxCheck.Randomize(model, 11, batchNormOnly: false);
        using var dir = new TempDir();
        model.ExportOnnx(dir["m.onnx"]);
        OnnxCheck.AgreesWithModel(model, dir["m.onnx"], name);
    }

    [Fact]
    public void EveryActivationHasACase()
    {
        foreach (var a in Enum.GetValues<Activation>())
            Assert.True(Cases.Values.Any(c => Contains(c.Network(), l => l is ActivationLayer act && act.Function == a)), $"no ONNX case uses activation {a}");
    }

    [Theory, MemberData(nameof(PresetNames))]
    public void EveryPresetNetworkAgreesWithOnnxRuntime(string name)
    {
        Use("cpu");
        var preset = Preset.Find(name)!;
        Assert.True(PresetInputs.TryGetValue(name, out var input), $"preset '{name}' has no input shape in this test");
        using var model = Model.Build(D, preset.Network(preset.Defaults), input, 3, new ModelOptions { Seed = 5, Training = false });
        OnnxCheck.Randomize(model, 13, batchNormOnly: true);
        using var dir = new TempDir();
        model.ExportOnnx(dir["m.onnx"]);
        OnnxCheck.AgreesWithModel(model, dir["m.onnx"], name);
        // initializers carry the checkpoint's names: every parameter and buffer, nothing else
        Assert.Equal(model.ParameterTable.Select(e => e.Name).Order(), OnnxCheck.InitializerNames(dir["m.onnx"]).Order());
    }

    [Fact]
    public void SharedLayerIsExportedOnceAndNamesStayUnique()
    {
        Use("cpu");
        var shared = new Linear(4, 4, name: "shared");
        using var model = Model.Build(D, new Sequential(shared, new ActivationLayer(Activation.Tanh), shared), [4], 3, new ModelOptions { Training = false });
        using var dir = new TempDir();
        model.ExportOnnx(dir["m.onnx"]);
        Assert.Equal(["shared.weight", "shared.bias"], OnnxCheck.InitializerNames(dir["m.onnx"]));
        OnnxCheck.AgreesWithModel(model, dir["m.onnx"], "shared");
    }

    [Fact]
    public void LayerWithoutOnnxFormIsNamedAndNothingIsWritten()
    {
        Use("cpu");
        using var model = Model.Build(D, new Sequential(new Linear(4, 4), new RecordFirst(4, name: "recorder")), [4], 2, new ModelOptions { Training = false });
        using var dir = new TempDir();
        File.WriteAllText(dir["m.onnx"], "old");
        var e = Assert.Throws<OnnxExportException>(() => model.ExportOnnx(dir["m.onnx"]));
        Assert.Equal("recorder", e.Layer);
        Assert.Equal(nameof(RecordFirst), e.LayerType);
        Assert.Contains("'recorder' (RecordFirst)", e.Message);
        Assert.Equal("old", File.ReadAllText(dir["m.onnx"]));
        Assert.Equal(["m.onnx"], dir.Entries);
    }

    [Fact]
    public void MissingDirectoryOrUnwritableTargetLeavesNothingBehind()
    {
        Use("cpu");
        using var model = Model.Build(D, new Linear(3, 2), [3], 1, new ModelOptions { Training = false });
        using var dir = new TempDir();
        var e = Assert.Throws<DirectoryNotFoundException>(() => model.ExportOnnx(Path.Combine(dir.Path, "missing", "m.onnx")));
        Assert.Contains("missing", e.Message);
        Assert.Empty(dir.Entries);
        // the target is a directory: the rename fails after the temporary file was written, which is then removed
        Directory.CreateDirectory(dir["taken.onnx"]);
        Assert.ThrowsAny<IOException>(() => model.ExportOnnx(dir["taken.onnx"]));
        Assert.Equal(["taken.onnx"], dir.Entries);
        Assert.Empty(Directory.GetFileSystemEntries(dir["taken.onnx"]));
    }

    [Fact]
    public void OptionsNameTheGraphAndAreChecked()
    {
        Use("cpu");
        using var model = Model.Build(D, new Linear(3, 2, name: "fc"), [3], 1, new ModelOptions { Training = false });
        using var dir = new TempDir();
        model.ExportOnnx(dir["m.onnx"], new OnnxExportOptions { InputName = "pixels", OutputName = "logits", BatchDimension = "n" });
        using (var session = new InferenceSession(dir["m.onnx"]))
        {
            Assert.Equal("n", session.InputMetadata["pixels"].SymbolicDimensions[0]);
            Assert.Equal("n", session.OutputMetadata["logits"].SymbolicDimensions[0]);
        }
        var proto = global::Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(dir["m.onnx"]));
        Assert.Equal(OnnxExport.IrVersion, proto.IrVersion);
        Assert.Equal(OnnxExport.Opset, proto.OpsetImport.Single().Version);
        var bad = Assert.Throws<ArgumentException>(() => model.ExportOnnx(dir["n.onnx"], new OnnxExportOptions { InputName = "x", OutputName = "x" }));
        Assert.Contains("'x'", bad.Message);
        Assert.Throws<InvalidOperationException>(() => model.ExportOnnx(dir["n.onnx"], new OnnxExportOptions { InputName = "fc.weight" }));
        Assert.Equal(["m.onnx"], dir.Entries);
    }

    [Fact]
    public void TheReadmeExportRunsInOnnxRuntime()
    {
        Use("cpu");
        var (train, val) = GpuNet.Data.DataSplit.Stratified(GpuNet.Data.DataSets.Digits(), 0.2, seed: 1);
        var std = GpuNet.Data.Standardizer.Fit(train);
        var net = new Sequential(
            new Linear(64, 128, name: "fc1"), new ActivationLayer(Activation.Relu),
            new Dropout(0.1f), new Linear(128, 10, name: "out"));
        using var model = Model.Build(D, net, inputShape: [64], batchSize: 32, new ModelOptions { Seed = 1 });
        using var dir = new TempDir();
        string path = dir["digits.onnx"];

        // README, "ONNX export"
        model.ExportOnnx(path);
        using var session = new InferenceSession(path);
        float[] x = std.Apply(val).Features[..(3 * 64)].ToArray();
        using var input = OrtValue.CreateTensorValueFromMemory(x, [3, 64]);
        using var output = session.Run(new RunOptions(), new Dictionary<string, OrtValue> { ["input"] = input }, ["output"]);
        ReadOnlySpan<float> logits = output[0].GetTensorDataAsSpan<float>();

        using var xt = D.FromArray(x, [3, 64]);
        var expected = model.Forward(xt, training: false).ToArray();
        Tol.OnnxRuntime.AssertClose(logits, expected.Select(v => (double)v).ToArray(), "README export");
    }

    private static bool Contains(Layer l, Func<Layer, bool> match) => match(l) || l.Children.Any(c => Contains(c, match));
}

/// <summary><c>export</c> and <c>train --onnx</c> through the command line.</summary>
[Collection(nameof(ConsoleCollection))]
public sealed class OnnxCliTests
{
    private static Model BuildPreset(Device device, string name, int[] input, ulong seed = 1)
    {
        var p = Preset.Find(name)!;
        return Model.Build(device, p.Network(p.Defaults), input, 3, new ModelOptions { Seed = seed, Training = false });
    }

    [Fact]
    public void ExportWritesTheCheckpointsModel()
    {
        using var device = Device.Create("cpu");
        using var dir = new TempDir();
        using (var model = BuildPreset(device, "binary", [10], seed: 9)) Checkpoint.Save(dir["b.safetensors"], model);
        var (code, output, err) = BenchCli.Run("export", "--checkpoint", dir["b.safetensors"], "--preset", "binary", "--onnx", dir["b.onnx"]);
        Assert.True(code == 0, $"exit {code}: {err}");
        Assert.Contains("exported binary", output);
        using var restored = BuildPreset(device, "binary", [10]);
        Checkpoint.Restore(dir["b.safetensors"], restored);
        OnnxCheck.AgreesWithModel(restored, dir["b.onnx"], "export binary");
    }

    [Fact]
    public void ExportOfAMismatchedCheckpointNamesTheTensorAndShapes()
    {
        using var device = Device.Create("cpu");
        using var dir = new TempDir();
        using (var model = BuildPreset(device, "digits-mlp", [64])) Checkpoint.Save(dir["d.safetensors"], model);
        var (code, _, err) = BenchCli.Run("export", "--checkpoint", dir["d.safetensors"], "--preset", "binary", "--onnx", dir["x.onnx"]);
        Assert.Equal(Cli.BadArguments, code);
        Assert.Contains("fc1.weight: expected (64, 10), file has (128, 64)", err);
        Assert.Equal(["d.safetensors"], dir.Entries);

        var (code2, _, err2) = BenchCli.Run("export", "--checkpoint", dir["d.safetensors"], "--preset", "digits-mlp", "--onnx", Path.Combine(dir.Path, "no", "x.onnx"));
        Assert.Equal(Cli.BadArguments, code2);
        Assert.Contains("--onnx", err2);
        Assert.Equal(["d.safetensors"], dir.Entries);
    }

    [Fact]
    public void TrainWithOnnxExportsTheWeightsTheRunEndsWith()
    {
        using var dir = new TempDir();
        var (code, output, err) = BenchCli.Run("train", "digits-mlp", "--epochs", "1", "--quiet", "--device", "cpu", "--out", dir.Path, "--onnx", dir["d.onnx"]);
        Assert.True(code == 0, $"exit {code}: {err}");
        Assert.Contains($"onnx: {dir["d.onnx"]}", output);
        using var device = Device.Create("cpu");
        using var model = BuildPreset(device, "digits-mlp", [64]);
        Checkpoint.Restore(dir["last.safetensors"], model);
        OnnxCheck.AgreesWithModel(model, dir["d.onnx"], "train --onnx");

        var (code2, _, err2) = BenchCli.Run("train", "digits-mlp", "--epochs", "1", "--quiet", "--device", "cpu", "--onnx", Path.Combine(dir.Path, "no", "d.onnx"));
        Assert.Equal(Cli.BadArguments, code2);
        Assert.Contains("--onnx", err2);
    }
}
