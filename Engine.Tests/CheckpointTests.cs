using GpuNet.Checkpoints;
using GpuNet.Kernels;
using GpuNet.Nn;
using GpuNet.Optim;
using GpuNet.Schedules;
using System.Buffers.Binary;
using System.Text;
using System.Text.Json;

namespace GpuNet.Tests;


/// <summary>The network, data and training loop the checkpoint tests share.</summary>
internal static class CkptNet
{
    public const int Batch = 6;

    public static Layer Net(bool dropout) => dropout
        ? new Sequential(new Linear(4, 8), new BatchNorm1d(8), new ActivationLayer(Activation.Relu), new Dropout(0.25f), new Linear(8, 3))
        : new Sequential(new Linear(4, 8), new BatchNorm1d(8), new ActivationLayer(Activation.Relu), new Linear(8, 3));

    public static Model Build(Device d, ulong seed, bool dropout = false)
        => Model.Build(d, Net(dropout), [4], Batch, new ModelOptions { Seed = seed });

    /// <summary>Runs <paramref name="steps"/> training steps on seeded batches numbered from <paramref name="first"/>.</summary>
    public static void Train(Model model, Optimizer opt, int first, int steps)
    {
        var d = model.Device;
        var loss = new CrossEntropyLoss();
        using var lossValue = d.Zeros(1);
        for (int s = first; s < first + steps; s++)
        {
            var r = new Random(100 + s);
            using var x = d.FromArray(TestData.Uniform(s, Batch * 4, -2f, 2f), Batch, 4);
            using var labels = d.FromArray(Enumerable.Range(0, Batch).Select(_ => r.Next(model.OutputShape[0])).ToArray(), Batch);
            model.ForwardBackward(x, labels, loss, lossValue);
            opt.Step();
        }
    }

    public static Adam Adam(Model m, OptimizerOptions? options = null) => new(m.Device, m.Parameters, m.Gradients!, lr: 0.01, weightDecay: 0.01, amsgrad: true, options: options);

    public static int[] Bits(float[] a) => Array.ConvertAll(a, BitConverter.SingleToInt32Bits);

    public static void AssertBitEqual(Model a, Optimizer oa, Model b, Optimizer ob, string when)
    {
        Assert.True(Bits(a.Parameters.ToArray()).SequenceEqual(Bits(b.Parameters.ToArray())), $"parameters differ {when}");
        Assert.True(Bits(a.Buffers.ToArray()).SequenceEqual(Bits(b.Buffers.ToArray())), $"buffers differ {when}");
        Assert.Equal(a.Step, b.Step);
        var sa = oa.Save();
        var sb = ob.Save();
        Assert.Equal(sa.StepCount, sb.StepCount);
        Assert.Equal(sa.LearningRate, sb.LearningRate);
        Assert.Equal(sa.Tensors.Keys.Order(), sb.Tensors.Keys.Order());
        foreach (var (k, v) in sa.Tensors) Assert.True(Bits(v).SequenceEqual(Bits(sb.Tensors[k])), $"optimizer state '{k}' differs {when}");
    }

    public static TrainingState State => new()
    {
        Epoch = 2, BatchInEpoch = 3, Step = 11, Seed = ulong.MaxValue - 5, RngState = 0x0123456789ABCDEFUL, ScheduleStep = 11,
        Plateau = new PlateauState(0.005, double.PositiveInfinity, 1, 0, 2),
        BestMetric = 0.1 + 0.2, BestEpoch = 1, EpochsWithoutImprovement = 1,
        History = [new EpochMetrics(0, new Dictionary<string, double> { ["loss"] = 1.25, ["accuracy"] = 1.0 / 3 }),
                   new EpochMetrics(1, new Dictionary<string, double> { ["loss"] = double.NaN, ["accuracy"] = 0.5 })],
    };
}

/// <summary>
/// Exact resume: save after some steps, restore into a fresh model and optimizer, continue both. On the host and on
/// CUDA (ILGPU's CPU simulator takes seconds per training step sequence; the restore itself is covered there by
/// <see cref="CheckpointDeviceTests"/>).
/// </summary>
public sealed class CheckpointResumeTests(BackendFixture f) : DeviceTestBase(f), IClassFixture<BackendFixture>
{
    [Theory, Backends(Except = "ilgpu-cpu")]
    public void RestoreIntoFreshModelResumesBitForBit(string backend)
    {
        Use(backend);
        using var dir = new TempDir();
        string path = dir.File("a.safetensors");
        using var a = CkptNet.Build(D, seed: 1);
        using var oa = CkptNet.Adam(a);
        CkptNet.Train(a, oa, first: 0, steps: 3);
        oa.LearningRate = 0.007;   // a schedule changed it: the saved lr must come back
        Checkpoint.Save(path, a, oa, CkptNet.State, "mlp 4-8-3");

        using var b = CkptNet.Build(D, seed: 2);
        using var ob = CkptNet.Adam(b);
        Assert.False(CkptNet.Bits(a.Parameters.ToArray()).SequenceEqual(CkptNet.Bits(b.Parameters.ToArray())), "different seeds must start apart");
        var state = Checkpoint.Restore(path, b, ob);
        Assert.Equal(CkptNet.State, state);
        CkptNet.AssertBitEqual(a, oa, b, ob, "after restore");

        CkptNet.Train(a, oa, first: 3, steps: 3);
        CkptNet.Train(b, ob, first: 3, steps: 3);
        CkptNet.AssertBitEqual(a, oa, b, ob, "after 3 more steps");
    }

    [Theory, Backends(Except = "ilgpu-cpu")]
    public void DropoutNetworkResumesBitForBitOnlyWithItsSeed(string backend)
    {
        Use(backend);
        using var dir = new TempDir();
        string path = dir.File("d.safetensors");
        using var a = CkptNet.Build(D, seed: 5, dropout: true);
        using var oa = CkptNet.Adam(a);
        CkptNet.Train(a, oa, first: 0, steps: 2);
        Checkpoint.Save(path, a, oa);

        using (var other = CkptNet.Build(D, seed: 6, dropout: true))
        {
            var e = Assert.Throws<CheckpointException>(() => Checkpoint.Restore(path, other));
            Assert.Contains("built with Seed = 5, this one has 6", e.Message);
        }
        using var b = CkptNet.Build(D, seed: 5, dropout: true);
        using var ob = CkptNet.Adam(b);
        CkptNet.Train(b, ob, first: 7, steps: 1);   // B has moved elsewhere (and its step count too) before the restore
        Checkpoint.Restore(path, b, ob);
        CkptNet.AssertBitEqual(a, oa, b, ob, "after restore");
        CkptNet.Train(a, oa, first: 2, steps: 3);
        CkptNet.Train(b, ob, first: 2, steps: 3);
        CkptNet.AssertBitEqual(a, oa, b, ob, "after 3 more steps with dropout");
    }

}


/// <summary>Device independence: a checkpoint saved on the host restores on every backend with the same values.</summary>
public sealed class CheckpointDeviceTests(BackendFixture f) : DeviceTestBase(f), IClassFixture<BackendFixture>
{
    [Theory, Backends]
    public void SavedOnCpuRestoresOnThisDevice(string backend)
    {
        Use(backend);
        using var dir = new TempDir();
        string path = dir.File("host.safetensors");
        float[] p, buf;
        OptimizerState saved;
        using (var host = Device.Create("cpu"))
        {
            using var a = CkptNet.Build(host, seed: 3);
            using var oa = CkptNet.Adam(a);
            CkptNet.Train(a, oa, 0, 2);
            Checkpoint.Save(path, a, oa);
            (p, buf, saved) = (a.Parameters.ToArray(), a.Buffers.ToArray(), oa.Save());
        }
        using var b = CkptNet.Build(D, seed: 4);
        using var ob = CkptNet.Adam(b);
        Assert.Null(Checkpoint.Restore(path, b, ob));
        Assert.Equal(CkptNet.Bits(p), CkptNet.Bits(b.Parameters.ToArray()));
        Assert.Equal(CkptNet.Bits(buf), CkptNet.Bits(b.Buffers.ToArray()));
        var got = ob.Save();
        Assert.Equal(saved.StepCount, got.StepCount);
        foreach (var (k, v) in saved.Tensors) Assert.Equal(CkptNet.Bits(v), CkptNet.Bits(got.Tensors[k]));
        Assert.Equal(2, b.Step);
    }
}


/// <summary>The file format, validation, atomic writes, strict restore errors and pretrained initialisation (host device).</summary>
public sealed class CheckpointFormatTests(BackendFixture f) : DeviceTestBase(f), IClassFixture<BackendFixture>
{
    /// <summary>An independent writer: the 8-byte length, the header as given (padded to 8), the data.</summary>
    private static void RawFile(string path, string header, byte[] data, bool pad = true)
    {
        var h = Encoding.UTF8.GetBytes(header);
        if (pad) h = [.. h, .. Enumerable.Repeat((byte)' ', (8 - h.Length % 8) % 8)];
        var bytes = new byte[8 + h.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)h.Length);
        h.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + h.Length);
        File.WriteAllBytes(path, bytes);
    }

    private static byte[] F32(params float[] v) => v.SelectMany(BitConverter.GetBytes).ToArray();

    [Theory, Backends(Only = "cpu")]
    public void PythonStdlibParsesTheFileAsStandardSafetensors(string backend)
    {
        Use(backend);
        using var dir = new TempDir();
        string path = dir.File("py.safetensors");
        using var m = CkptNet.Build(D, seed: 5);
        using var opt = CkptNet.Adam(m);
        CkptNet.Train(m, opt, 0, 2);
        Checkpoint.Save(path, m, opt, CkptNet.State, "desc: é ünïcode");
        const string script = """
            import json, struct, sys
            b = open(sys.argv[1], 'rb').read()
            (n,) = struct.unpack('<Q', b[:8])
            h = json.loads(b[8:8 + n].decode('utf-8'))
            meta = h.pop('__metadata__')
            data = b[8 + n:]
            out = {'n': n, 'first': chr(b[8]), 'data_len': len(data), 'meta': meta, 'tensors': {}}
            for k, v in h.items():
                s, e = v['data_offsets']
                count = 1
                for d in v['shape']: count *= d
                vals = struct.unpack('<%df' % count, data[s:e])
                out['tensors'][k] = {'dtype': v['dtype'], 'shape': v['shape'], 'begin': s, 'end': e, 'sum': sum(vals), 'first': vals[0]}
            print(json.dumps(out))
            """;
        string json = Python.Run(script, [path]);
        using var doc = JsonDocument.Parse(json);
        var r = doc.RootElement;
        Assert.Equal(0, r.GetProperty("n").GetInt64() % 8);
        Assert.Equal("{", r.GetProperty("first").GetString());
        var meta = r.GetProperty("meta");
        Assert.Equal("pt", meta.GetProperty("format").GetString());
        Assert.Equal("desc: é ünïcode", meta.GetProperty("gpunet.description").GetString());
        Assert.Equal("Adam", meta.GetProperty("gpunet.optimizer.kind").GetString());
        Assert.Equal("2", meta.GetProperty("gpunet.optimizer.step_count").GetString());
        Assert.Equal(CkptNet.State, TrainingState.FromJson(meta.GetProperty("gpunet.training_state").GetString()!));

        var tensors = r.GetProperty("tensors");
        var expected = m.ParameterTable.Select(e => e.Name).Concat(["optimizer.exp_avg", "optimizer.exp_avg_sq", "optimizer.max_exp_avg_sq"]).Order().ToArray();
        Assert.Equal(expected, tensors.EnumerateObject().Select(p => p.Name).Order().ToArray());
        long covered = 0;
        foreach (var e in m.ParameterTable)
        {
            var t = tensors.GetProperty(e.Name);
            Assert.Equal("F32", t.GetProperty("dtype").GetString());
            Assert.Equal(e.Shape, t.GetProperty("shape").EnumerateArray().Select(x => x.GetInt32()).ToArray());
            var values = m[e.Name].ToArray();
            Assert.Equal(values[0], (float)t.GetProperty("first").GetDouble());
            double sum = values.Sum(v => (double)v);
            Assert.True(Math.Abs(sum - t.GetProperty("sum").GetDouble()) <= 1e-9 * (1 + Math.Abs(sum)), $"{e.Name}: sum {sum} vs python {t.GetProperty("sum").GetDouble()}");
            covered += t.GetProperty("end").GetInt64() - t.GetProperty("begin").GetInt64();
        }
        var adamSq = tensors.GetProperty("optimizer.exp_avg_sq");
        Assert.Equal(new[] { (int)m.ParameterCount }, adamSq.GetProperty("shape").EnumerateArray().Select(x => x.GetInt32()).ToArray());
        covered += 3 * m.ParameterCount * 4;
        Assert.Equal(covered, r.GetProperty("data_len").GetInt64());
    }

    [Theory, Backends(Only = "cpu")]
    public void ReadsForeignDtypesAndWritesInt32(string backend)
    {
        Use(backend);
        using var dir = new TempDir();
        string path = dir.File("foreign.safetensors");
        var data = new List<byte>();
        data.AddRange(BitConverter.GetBytes(1.5).Concat(BitConverter.GetBytes(-0.1)));                         // F64
        data.AddRange(BitConverter.GetBytes((Half)0.25).Concat(BitConverter.GetBytes((Half)(-2))));            // F16
        data.AddRange(BitConverter.GetBytes((ushort)(BitConverter.SingleToUInt32Bits(3.0f) >> 16)));            // BF16
        data.AddRange(BitConverter.GetBytes(7L));                                                              // I64
        RawFile(path, ("{'d':{'dtype':'F64','shape':[2],'data_offsets':[0,16]},'h':{'dtype':'F16','shape':[2],'data_offsets':[16,20]}," +
            "'b':{'dtype':'BF16','shape':[1],'data_offsets':[20,22]},'bn1.num_batches_tracked':{'dtype':'I64','shape':[],'data_offsets':[22,30]}}").Replace('\'', '"'), [.. data]);
        var file = Checkpoint.Read(path);
        Assert.Equal(new[] { 1.5f, -0.1f }, file["d"].Floats);
        Assert.Equal(new[] { 0.25f, -2f }, file["h"].Floats);
        Assert.Equal(new[] { 3f }, file["b"].Floats);
        Assert.Equal(new[] { 7 }, file["bn1.num_batches_tracked"].Ints);
        Assert.Equal("I64", file["bn1.num_batches_tracked"].DType);
        Assert.Null(file.FormatVersion);
        Assert.Null(file.TrainingState);
        Assert.Null(file.Optimizer);

        string p2 = dir.File("ints.safetensors");
        Checkpoint.Write(p2, [CheckpointTensor.Int32("labels", [2, 3], [1, -2, 3, int.MaxValue, int.MinValue, 0]), CheckpointTensor.Float32("empty", [0], [])],
            new Dictionary<string, string> { ["k"] = "v" });
        var back = Checkpoint.Read(p2);
        Assert.Equal(new[] { 1, -2, 3, int.MaxValue, int.MinValue, 0 }, back["labels"].Ints);
        Assert.Equal(new[] { 2, 3 }, back["labels"].Shape.ToArray());
        Assert.Equal("I32", back["labels"].DType);
        Assert.Equal(0, back["empty"].Length);
        Assert.Equal("v", back.Metadata["k"]);
        Assert.Equal(0, back.HeaderLength % 8);
    }

    public static TheoryData<string, string, string> BadFiles => new()
    {
        { "short", "", "truncated: the file has 5 bytes" },
        { "header-too-long", "", "header length 4096 is larger than the file" },
        { "json", "{\"a\": {\"dtype\": \"F32\",", "invalid JSON header" },
        { "not-object", "[1, 2]", "must be an object, found Array" },
        { "dtype", """{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}""", "tensor 'a': unsupported dtype 'U8'" },
        { "shape", """{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}""", "tensor 'a': shape entry 0 (-1)" },
        { "offsets-range", """{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}}""", "tensor 'a': data_offsets [0, 12] lie outside the data section of 8 bytes" },
        { "offsets-size", """{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", "tensor 'a': data_offsets [0, 8] hold 8 bytes, shape (3) of F32 needs 12" },
        { "overlap", """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", "tensor 'b': data_offsets [4, 8] overlap tensor 'a'" },
        { "gap", """{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", "tensor 'a': data_offsets [4, 8] leave a gap after byte 0" },
        { "trailing", """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", "cover 4 bytes of data but the data section has 8" },
        { "reversed", """{"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}""", "end before they begin" },
        { "meta", """{"__metadata__":{"x":1},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", "value of 'x' must be a string" },
        { "duplicate", """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", "names 'a' twice" },
        { "version", """{"__metadata__":{"gpunet.format_version":"99"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", "newer than this reader's 1" },
        { "orphan-optimizer", """{"optimizer.exp_avg":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", "without gpunet.optimizer.kind" },
    };

    [Theory, Backends(nameof(BadFiles), Only = "cpu")]
    public void InvalidFilesFailNamingFileAndProblem(string backend, string name, string header, string expected)
    {
        Use(backend);
        using var dir = new TempDir();
        string path = dir.File(name + ".safetensors");
        if (name == "short") File.WriteAllBytes(path, [1, 2, 3, 4, 5]);
        else if (name == "header-too-long") { var b = new byte[100]; b[0] = 0; b[1] = 16; File.WriteAllBytes(path, b); }
        else RawFile(path, header, F32(1f, 2f));
        var e = Assert.Throws<CheckpointException>(() => Checkpoint.Read(path));
        Assert.Contains(path, e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Theory, Backends(Only = "cpu")]
    public void TruncatedCheckpointFailsWithOffsetsOutsideData(string backend)
    {
        Use(backend);
        using var dir = new TempDir();
        string path = dir.File("t.safetensors");
        using var m = CkptNet.Build(D, seed: 1);
        Checkpoint.Save(path, m);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^10]);
        var e = Assert.Throws<CheckpointException>(() => Checkpoint.Read(path));
        Assert.Contains("lie outside the data section", e.Message);
        Assert.Contains("linear2.bias", e.Message);   // the last tensor is the one cut
    }

    [Theory, Backends(Only = "cpu")]
    public void StrictRestoreListsEveryMismatchAndChangesNothing(string backend)
    {
        Use(backend);
        using var dir = new TempDir();
        string path = dir.File("s.safetensors");
        using (var src = CkptNet.Build(D, seed: 1))
        {
            using var sgd = new Sgd(D, src.Parameters, src.Gradients!, lr: 0.1, momentum: 0.9);
            CkptNet.Train(src, sgd, 0, 1);
            Checkpoint.Save(path, src, sgd);
        }
        // no batch norm, a named head and another last layer: names are missing and unexpected, shapes differ
        using var other = Model.Build(D, new Sequential(new Linear(4, 8), new ActivationLayer(Activation.Relu),
            new Linear(8, 5, name: "head"), new Linear(5, 2)), [4], CkptNet.Batch);
        var before = other.Parameters.ToArray();
        var e = Assert.Throws<CheckpointException>(() => Checkpoint.Restore(path, other));
        Assert.Contains(path, e.Message);
        Assert.Contains("missing tensors [head.weight, head.bias]", e.Message);
        Assert.Contains("unexpected tensors [bn1.weight, bn1.bias, bn1.running_mean, bn1.running_var]", e.Message);
        Assert.Contains("linear2.weight: expected (2, 5), file has (3, 8)", e.Message);
        Assert.Equal(before, other.Parameters.ToArray());

        using var same = CkptNet.Build(D, seed: 9);
        var p0 = same.Parameters.ToArray();
        using var adam = CkptNet.Adam(same);
        var e2 = Assert.Throws<CheckpointException>(() => Checkpoint.Restore(path, same, adam));
        Assert.Contains("the file holds Sgd state, the optimizer given is Adam", e2.Message);
        Assert.Equal(p0, same.Parameters.ToArray());

        using var plain = new Sgd(D, same.Parameters, same.Gradients!, lr: 0.1);   // no momentum: no state tensors
        var e3 = Assert.Throws<CheckpointException>(() => Checkpoint.Restore(path, same, plain));
        Assert.Contains("optimizer state does not fit", e3.Message);
        Assert.Contains("momentum_buffer", e3.Message);
        Assert.Equal(p0, same.Parameters.ToArray());
        Assert.Equal(0, plain.StepCount);
    }

    [Theory]
    [BackendData(true, Only = "cpu")]
    [BackendData(false, Only = "cpu")]
    public void FailedWriteLeavesExistingCheckpointAndNoTemporaryFile(string backend, bool existing)
    {
        Use(backend);
        using var dir = new TempDir();
        string path = dir.File("c.safetensors");
        using var m = CkptNet.Build(D, seed: 1);
        using var opt = CkptNet.Adam(m);
        if (existing) Checkpoint.Save(path, m, opt, description: "good");
        var good = existing ? File.ReadAllBytes(path) : null;
        CkptNet.Train(m, opt, 0, 1);
        var e = Assert.Throws<IOException>(() => Checkpoint.Save(path, m, opt, CkptNet.State, "bad", s => new FailingStream(s, failAfter: 300)));
        Assert.Equal("disk full (injected)", e.Message);
        if (existing)
        {
            Assert.Equal(new[] { "c.safetensors" }, dir.Entries);
            Assert.Equal(good, File.ReadAllBytes(path));
            Assert.Equal("good", Checkpoint.Read(path).Description);
        }
        else Assert.Empty(dir.Entries);
        Checkpoint.Save(path, m, opt, CkptNet.State, "second");   // the next save works and replaces the file
        Assert.Equal("second", Checkpoint.Read(path).Description);
        Assert.Equal(new[] { "c.safetensors" }, dir.Entries);
    }

    [Theory, Backends(Only = "cpu")]
    public void ReadExposesMetadataAndInitializerHook(string backend)
    {
        Use(backend);
        using var dir = new TempDir();
        string path = dir.File("m.safetensors");
        using var m = CkptNet.Build(D, seed: 1);
        using var opt = CkptNet.Adam(m);
        CkptNet.Train(m, opt, 0, 2);
        Checkpoint.Save(path, m, opt, CkptNet.State, "layers: linear-bn-relu-dropout-linear");
        var f = Checkpoint.Read(path);
        Assert.Equal(1, f.FormatVersion);
        Assert.Equal("layers: linear-bn-relu-dropout-linear", f.Description);
        Assert.Equal(new[] { 4 }, f.InputShape);
        Assert.Equal(new[] { 3 }, f.OutputShape);
        Assert.Equal(2, f.ModelStep);
        Assert.Equal(m.ParameterTable.Select(e => (e.Name, e.IsBuffer)), f.ParameterTable!.Select(p => (p.Name, p.IsBuffer)));
        Assert.Equal(new[] { 8 }, f.ParameterTable!.Single(p => p.Name == "bn1.running_var").Shape);
        Assert.Equal("Adam", f.Optimizer!.Optimizer);
        Assert.Equal(2, f.Optimizer.StepCount);
        Assert.Equal(0.01, f.Optimizer.LearningRate);
        Assert.Equal(CkptNet.State, f.TrainingState);
        var init = f.Initializer("linear1.weight");
        Assert.Equal(new[] { 8, 4 }, init.Shape.ToArray());
        var values = new float[32];
        init.Generate([8, 4], 0, values);
        Assert.Equal(m["linear1.weight"].ToArray(), values);
        Assert.Throws<KeyNotFoundException>(() => f["nope"]);
    }

    [Theory, Backends(Only = "cpu")]
    public void TrainingStateJsonRoundTripsAndRejectsBadFields(string backend)
    {
        Use(backend);
        var s = CkptNet.State;
        var back = TrainingState.FromJson(s.ToJson());
        Assert.Equal(s, back);
        Assert.True(double.IsNaN(back.History[1].Values["loss"]));
        Assert.Equal(double.PositiveInfinity, back.Plateau!.Best);
        Assert.Equal(0.1 + 0.2, back.BestMetric);
        Assert.NotEqual(s, s with { BatchInEpoch = 4 });
        Assert.Equal(new TrainingState(), TrainingState.FromJson(new TrainingState().ToJson()));
        var e = Assert.Throws<FormatException>(() => TrainingState.FromJson(s.ToJson().Replace("\"epoch\":2", "\"epoch\":-2")));
        Assert.Contains("'epoch' = -2", e.Message);
        Assert.Throws<FormatException>(() => TrainingState.FromJson("{\"epoch\":1}"));
    }

    [Theory, Backends(Only = "cpu")]
    public void InitializeFromLoadsMatchingTensorsReportsTheRestAndFreezes(string backend)
    {
        Use(backend);
        using var dir = new TempDir();
        string path = dir.File("pre.safetensors");
        float[] w1, mean;
        using (var src = CkptNet.Build(D, seed: 1))
        {
            using var sgd = new Sgd(D, src.Parameters, src.Gradients!, lr: 0.1);
            CkptNet.Train(src, sgd, 0, 2);
            using var adam = CkptNet.Adam(src);
            Checkpoint.Save(path, src, adam);
            (w1, mean) = (src["linear1.weight"].ToArray(), src["bn1.running_mean"].ToArray());
        }
        // same body, a 5-class head, and one more layer the file does not have
        using var m = Model.Build(D, new Sequential(new Linear(4, 8), new BatchNorm1d(8), new ActivationLayer(Activation.Relu),
            new Linear(8, 5), new ActivationLayer(Activation.Tanh), new Linear(5, 5)), [4], CkptNet.Batch, new ModelOptions { Seed = 2 });
        var head0 = m["linear2.weight"].ToArray();
        using var opt = new Sgd(D, m.Parameters, m.Gradients!, lr: 0.1, options: CheckpointGroups.PerParameter(m));
        var report = Checkpoint.InitializeFrom(m, path, freeze: true, optimizer: opt);

        Assert.Equal(new[] { "linear1.weight", "linear1.bias", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var" }, report.Loaded);
        Assert.Equal(new[] { "linear3.weight", "linear3.bias" }, report.Missing);
        Assert.Equal(new[] { "linear2.weight", "linear2.bias" }, report.Skipped.Select(s => s.Name));
        Assert.Equal(new[] { 5, 8 }, report.Skipped[0].ModelShape);
        Assert.Equal(new[] { 3, 8 }, report.Skipped[0].FileShape);
        Assert.Contains("model (5, 8), file (3, 8)", report.Skipped[0].Reason);
        Assert.Equal(new[] { "linear2.bias", "linear2.weight", "optimizer.exp_avg", "optimizer.exp_avg_sq", "optimizer.max_exp_avg_sq" }, report.Unused.Order());
        Assert.Equal(new[] { "linear1.weight", "linear1.bias", "bn1.weight", "bn1.bias" }, report.Frozen);
        Assert.Contains("6 loaded, 2 missing, 2 skipped, 5 unused, 4 frozen", report.ToString());
        Assert.Equal(w1, m["linear1.weight"].ToArray());
        Assert.Equal(mean, m["bn1.running_mean"].ToArray());
        Assert.Equal(head0, m["linear2.weight"].ToArray());
        Assert.Equal(0, m.Step);

        // a step moves the head but not the frozen, loaded body
        CkptNet.Train(m, opt, 0, 1);
        Assert.Equal(w1, m["linear1.weight"].ToArray());
        Assert.NotEqual(head0, m["linear2.weight"].ToArray());
        Assert.True(opt.Groups[CheckpointGroups.GroupOf(m, "bn1.bias")].Frozen);
        Assert.False(opt.Groups[CheckpointGroups.GroupOf(m, "linear2.bias")].Frozen);

        using var plain = new Sgd(D, m.Parameters, m.Gradients!, lr: 0.1);
        var e = Assert.Throws<ArgumentException>(() => Checkpoint.InitializeFrom(m, path, freeze: true, optimizer: plain));
        Assert.Contains("CheckpointGroups.PerParameter", e.Message);
    }

    /// <summary>Passes writes through until <c>failAfter</c> bytes, then throws like a full disk.</summary>
    private sealed class FailingStream(Stream inner, long failAfter) : Stream
    {
        private long _written;
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _written; set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override void Write(ReadOnlySpan<byte> buffer)
        {
            if (_written + buffer.Length > failAfter)
            {
                inner.Write(buffer[..(int)(failAfter - _written)]);
                throw new IOException("disk full (injected)");
            }
            inner.Write(buffer);
            _written += buffer.Length;
        }
    }
}
