using System.Text.Json;
using GpuNet.Bench;
using GpuNet.Checkpoints;
using GpuNet.Kernels;
using GpuNet.Nn;

namespace GpuNet.Tests;

/// <summary>
/// PyTorch weights in: safetensors state_dicts written by an independent writer (Python's standard library, byte by
/// byte, as <c>safetensors.torch.save_file</c> lays them out) with F16, BF16, F32, F64 and I64 tensors, loaded by
/// <see cref="Checkpoint.InitializeFrom"/> and by <c>train --init-from</c>.
/// </summary>
public sealed class PyTorchImportTests(BackendFixture f) : DeviceTestBase(f), IClassFixture<BackendFixture>
{
    // Writes argv[1] from the JSON spec on stdin ([{name, dtype, shape}]); value i of a tensor is sin(1.7 i + k) / 2
    // (k: the tensor's index; + 1 for a running_var, which must stay positive), stored in the dtype; prints the stored
    // values as float64 per name. BF16 is the float32 rounded to nearest even on its upper 16 bits.
    private const string Writer = """
        import json, math, struct, sys
        spec = json.load(sys.stdin)
        def bf16(x):
            (b,) = struct.unpack('<I', struct.pack('<f', x))
            b = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) & 0xFFFF
            return struct.pack('<H', b), struct.unpack('<f', struct.pack('<I', b << 16))[0]
        fmt = {'F16': '<e', 'F32': '<f', 'F64': '<d', 'I64': '<q'}
        header, blobs, stored, offset = {}, [], {}, 0
        for k, t in enumerate(spec):
            count = 1
            for d in t['shape']: count *= d
            data, vals = b'', []
            for i in range(count):
                x = math.sin(1.7 * i + k) / 2 + (1.0 if 'running_var' in t['name'] else 0.0)
                if t['dtype'] == 'BF16':
                    raw, v = bf16(x)
                elif t['dtype'] == 'I64':
                    raw = struct.pack('<q', i); v = i
                else:
                    raw = struct.pack(fmt[t['dtype']], x); (v,) = struct.unpack(fmt[t['dtype']], raw)
                data += raw; vals.append(v)
            header[t['name']] = {'dtype': t['dtype'], 'shape': t['shape'], 'data_offsets': [offset, offset + len(data)]}
            offset += len(data); blobs.append(data); stored[t['name']] = vals
        header['__metadata__'] = {'format': 'pt'}
        h = json.dumps(header).encode('utf-8')
        h += b' ' * (-len(h) % 8)
        with open(sys.argv[1], 'wb') as f:
            f.write(struct.pack('<Q', len(h))); f.write(h); f.write(b''.join(blobs))
        print(json.dumps(stored))
        """;

    /// <summary>Writes a state_dict with python3 and returns the values it stored; skips the test without python3.</summary>
    internal static Dictionary<string, double[]> WriteWithPython(string path, params (string Name, string DType, int[] Shape)[] tensors)
    {
        string spec = JsonSerializer.Serialize(tensors.Select(t => new { name = t.Name, dtype = t.DType, shape = t.Shape }));
        string json = Python.Run(Writer, [path], stdin: spec);
        return JsonSerializer.Deserialize<Dictionary<string, double[]>>(json)!;
    }

    private static Layer Net() => new Sequential(new Linear(4, 3, name: "fc1"), new BatchNorm1d(3, name: "bn1"), new ActivationLayer(Activation.Relu), new Linear(3, 2, name: "out"));

    private static readonly (string, string, int[])[] StateDict =
    [
        ("fc1.weight", "F16", [3, 4]), ("fc1.bias", "BF16", [3]),
        ("bn1.weight", "F64", [3]), ("bn1.bias", "F32", [3]), ("bn1.running_mean", "BF16", [3]), ("bn1.running_var", "F64", [3]),
        ("bn1.num_batches_tracked", "I64", []), ("out.weight", "F64", [2, 3]), ("out.bias", "F16", [2]),
    ];

    [Theory, Backends]
    public void StrictLoadConvertsHalfBfloatAndDoubleExactly(string backend)
    {
        Use(backend);
        using var dir = new TempDir();
        var stored = WriteWithPython(dir["sd.safetensors"], StateDict);
        using var model = Model.Build(D, Net(), [4], 5);
        var report = Checkpoint.InitializeFrom(model, dir["sd.safetensors"], strict: true);
        Assert.Equal(8, report.Loaded.Count);
        Assert.Empty(report.Missing);
        Assert.Empty(report.Skipped);
        Assert.Equal(["bn1.num_batches_tracked"], report.Unused);
        foreach (var e in model.ParameterTable)
        {
            using var view = (e.IsBuffer ? model.Buffers : model.Parameters).Slice(e.Offset, e.Shape);
            // F16 and BF16 values are float32 values; F64 rounds to the nearest float32.
            Assert.Equal(stored[e.Name].Select(v => (float)v).ToArray(), view.ToArray());
        }
        // F16 and BF16 really lost bits: the stored values differ from the float64 ones they came from.
        Assert.NotEqual(Math.Sin(1.7) / 2, stored["fc1.weight"][1]);
        Assert.NotEqual(Math.Sin(1.7 + 1) / 2, stored["fc1.bias"][1]);
    }

    [Theory, Backends(Only = "cpu")]
    public void StrictLoadListsEveryProblemAndChangesNothing(string backend)
    {
        Use(backend);
        using var dir = new TempDir();
        WriteWithPython(dir["bad.safetensors"],
            ("fc1.weight", "F16", [4, 3]), ("fc1.bias", "BF16", [3]), ("bn1.weight", "F64", [3]), ("bn1.bias", "F32", [3]),
            ("bn1.running_mean", "I64", [3]), ("bn1.running_var", "F64", [3]), ("out.weight", "F64", [2, 3]), ("head.weight", "F32", [2]));
        using var model = Model.Build(D, Net(), [4], 5);
        var before = model.Parameters.ToArray();
        var e = Assert.Throws<CheckpointException>(() => Checkpoint.InitializeFrom(model, dir["bad.safetensors"], strict: true));
        Assert.Equal(dir["bad.safetensors"], e.Path);
        Assert.Contains("missing tensors [out.bias]", e.Message);
        Assert.Contains("unexpected tensors [head.weight]", e.Message);
        Assert.Contains("shape mismatches [fc1.weight: expected (3, 4), file has (4, 3)]", e.Message);
        Assert.Contains("dtype mismatches [bn1.running_mean: expected F16, BF16, F32 or F64, file has I64]", e.Message);
        Assert.Equal(before, model.Parameters.ToArray());
        // The lenient default loads what fits and reports the rest.
        var report = Checkpoint.InitializeFrom(model, dir["bad.safetensors"]);
        Assert.Equal(["fc1.bias", "bn1.weight", "bn1.bias", "bn1.running_var", "out.weight"], report.Loaded);
        Assert.Equal(["out.bias"], report.Missing);
    }
}

/// <summary><c>train --init-from</c> with a state_dict written by Python's standard library.</summary>
[Collection(nameof(ConsoleCollection))]
public sealed class PyTorchImportCliTests
{
    [Fact]
    public void TrainInitFromFineTunesAPyTorchStateDict()
    {
        using var dir = new TempDir();
        PyTorchImportTests.WriteWithPython(dir["digits.safetensors"], ("fc1.weight", "BF16", [128, 64]), ("fc1.bias", "F16", [128]), ("out.weight", "F64", [10, 128]), ("out.bias", "F32", [10]));
        var (code, output, err) = BenchCli.Run("train", "digits-mlp", "--epochs", "1", "--quiet", "--device", "cpu", "--init-from", dir["digits.safetensors"]);
        Assert.True(code == 0, err);
        Assert.Contains($"initialised 4 tensors from {dir["digits.safetensors"]}", output);

        PyTorchImportTests.WriteWithPython(dir["wrong.safetensors"], ("fc1.weight", "BF16", [128, 63]), ("fc1.bias", "F16", [128]), ("out.weight", "F64", [10, 128]));
        (code, _, err) = BenchCli.Run("train", "digits-mlp", "--epochs", "1", "--quiet", "--device", "cpu", "--init-from", dir["wrong.safetensors"]);
        Assert.Equal(1, code);
        Assert.Contains("missing tensors [out.bias]", err);
        Assert.Contains("fc1.weight: expected (128, 64), file has (128, 63)", err);
    }
}
