using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using System.Text.Json.Nodes;
using GpuNet.Checkpoints;
using GpuNet.Data;
using GpuNet.Kernels;
using GpuNet.Nn;
using GpuNet.Optim;

namespace GpuNet.Bench;

/// <summary>One valid file the fuzzer starts from, and how to load it.</summary>
/// <param name="Name">Short name printed with samples (<c>images.gz</c>, <c>checkpoint</c>).</param>
/// <param name="Bytes">The valid file.</param>
/// <param name="Kind">What the bytes are: safetensors, idx, csv or sklearn csv; selects the format-aware mutations.</param>
/// <param name="Load">Loads a file through the public loader; returns the bytes of what it produced (arrays returned).</param>
internal sealed record FuzzSeed(string Name, byte[] Bytes, FuzzKind Kind, Func<string, long> Load);

/// <summary>The layout of a seed, for format-aware mutations.</summary>
internal enum FuzzKind { SafeTensors, Idx, Csv, SklearnCsv }

/// <summary>
/// A fuzzing target: its seed files and the exception type its loaders document for bad files. Everything is built
/// in memory from fixed seeds, so a run is a function of <c>--seed</c>.
/// </summary>
internal sealed class FuzzTarget : IDisposable
{
    public static readonly string[] Names = ["checkpoint", "idx", "csv", "safetensors-import"];

    private readonly Device? _device;
    private readonly Model? _model;
    private readonly Optimizer? _optimizer;

    private FuzzTarget(string name, Type documented, IReadOnlyList<FuzzSeed> seeds, Device? device = null, Model? model = null, Optimizer? optimizer = null)
    {
        Name = name;
        Documented = documented;
        Seeds = seeds;
        _device = device;
        _model = model;
        _optimizer = optimizer;
    }

    public string Name { get; }
    /// <summary>The exception type the loaders document for a bad file: a clean rejection is this type with a message.</summary>
    public Type Documented { get; }
    public IReadOnlyList<FuzzSeed> Seeds { get; }

    /// <summary>Builds the target's seeds (and, for checkpoints, the model and optimizer files are restored into).</summary>
    public static FuzzTarget Create(string name, string workDir) => name switch
    {
        "checkpoint" => Checkpoints(workDir),
        "safetensors-import" => Import(),
        "idx" => IdxFiles(),
        "csv" => CsvFiles(),
        _ => throw new UsageException($"fuzz: unknown format '{name}', expected one of {string.Join(", ", Names)}"),
    };

    // ---- checkpoint: a GpuNet checkpoint (weights, batch-norm buffers, Adam state, training state), read and restored
    private static FuzzTarget Checkpoints(string workDir)
    {
        var device = Device.Create("cpu");
        var model = Model.Build(device, Network(), [64], 8, new ModelOptions { Seed = 7 });
        var adam = new Adam(device, model.Parameters, model.Gradients!, lr: 1e-3, amsgrad: true);
        var rng = new Random(11);
        using (var lossValue = device.Zeros(1))
        using (var x = device.FromArray(Enumerable.Range(0, 8 * 64).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray(), 8, 64))
        using (var y = device.FromArray(Enumerable.Range(0, 8).Select(i => i % 10).ToArray(), 8))
        {
            for (int s = 0; s < 2; s++)
            {
                model.ForwardBackward(x, y, new CrossEntropyLoss(), lossValue);
                adam.Step();
            }
        }
        var state = new TrainingState
        {
            Epoch = 3, BatchInEpoch = 0, Step = 2, Seed = 1, ScheduleStep = 2, BestMetric = 0.25, BestEpoch = 2,
            History = [new EpochMetrics(0, new Dictionary<string, double> { ["train_loss"] = 2.5, ["val_loss"] = 2.25 })],
        };
        string path = Path.Combine(workDir, "seed.safetensors");
        Checkpoint.Save(path, model, adam, state, "fuzz seed: 64-128-10 MLP with batch norm");
        var bytes = File.ReadAllBytes(path);
        File.Delete(path);
        var seed = new FuzzSeed("checkpoint", bytes, FuzzKind.SafeTensors, p =>
        {
            var file = Checkpoint.Read(p);
            Checkpoint.Restore(file, model, adam);
            return file.Tensors.Sum(t => t.Length * 4);
        });
        return new FuzzTarget("checkpoint", typeof(CheckpointException), [seed], device, model, adam);
    }

    private static Sequential Network() => new(new Linear(64, 128, name: "fc1"), new BatchNorm1d(128, name: "bn1"),
        new ActivationLayer(Activation.Relu), new Linear(128, 10, name: "out"));

    // ---- safetensors-import: a foreign (PyTorch-style) file with mixed dtypes, loaded by Checkpoint.InitializeFrom
    private static FuzzTarget Import()
    {
        var device = Device.Create("cpu");
        var model = Model.Build(device, Network(), [64], 8, new ModelOptions { Seed = 7 });
        var rng = new Random(5);
        float R() => (float)(rng.NextDouble() - 0.5);
        var tensors = new List<(string, string, int[], byte[])>
        {
            ("fc1.weight", "F16", [128, 64], Encode(128 * 64, 2, (s, _) => BinaryPrimitives.WriteUInt16LittleEndian(s, BitConverter.HalfToUInt16Bits((Half)R())))),
            ("fc1.bias", "BF16", [128], Encode(128, 2, (s, _) => BinaryPrimitives.WriteUInt16LittleEndian(s, (ushort)(BitConverter.SingleToUInt32Bits(R()) >> 16)))),
            ("bn1.weight", "F32", [128], Encode(128, 4, (s, _) => BinaryPrimitives.WriteSingleLittleEndian(s, 1f + R()))),
            ("bn1.bias", "F32", [128], Encode(128, 4, (s, _) => BinaryPrimitives.WriteSingleLittleEndian(s, R()))),
            ("bn1.running_mean", "F32", [128], Encode(128, 4, (s, _) => BinaryPrimitives.WriteSingleLittleEndian(s, R()))),
            ("bn1.running_var", "F32", [128], Encode(128, 4, (s, _) => BinaryPrimitives.WriteSingleLittleEndian(s, 1f))),
            ("bn1.num_batches_tracked", "I64", [], Encode(1, 8, (s, _) => BinaryPrimitives.WriteInt64LittleEndian(s, 100))),
            ("out.weight", "F64", [10, 128], Encode(10 * 128, 8, (s, _) => BinaryPrimitives.WriteDoubleLittleEndian(s, R()))),
            ("out.bias", "F32", [10], Encode(10, 4, (s, _) => BinaryPrimitives.WriteSingleLittleEndian(s, R()))),
        };
        var seed = new FuzzSeed("pytorch-state-dict", SafeTensorsFile(tensors, new() { ["format"] = "pt" }), FuzzKind.SafeTensors, p =>
        {
            Checkpoint.InitializeFrom(model, p);
            return 0;   // the produced size is measured after the load (see FuzzRunner)
        });
        return new FuzzTarget("safetensors-import", typeof(CheckpointException), [seed], device, model);
    }

    private static byte[] Encode(int count, int size, SpanAction write)
    {
        var b = new byte[count * size];
        for (int i = 0; i < count; i++) write(b.AsSpan(i * size, size), i);
        return b;
    }

    private delegate void SpanAction(Span<byte> s, int i);

    /// <summary>A safetensors file from raw tensors, laid out in the given order, header padded to 8 bytes.</summary>
    public static byte[] SafeTensorsFile(IReadOnlyList<(string Name, string DType, int[] Shape, byte[] Data)> tensors, Dictionary<string, string>? metadata)
    {
        var header = new JsonObject();
        if (metadata is not null)
        {
            var m = new JsonObject();
            foreach (var (k, v) in metadata) m[k] = v;
            header["__metadata__"] = m;
        }
        long at = 0;
        foreach (var (name, dtype, shape, data) in tensors)
        {
            header[name] = new JsonObject
            {
                ["dtype"] = dtype,
                ["shape"] = new JsonArray(shape.Select(d => (JsonNode)d).ToArray()),
                ["data_offsets"] = new JsonArray(at, at + data.Length),
            };
            at += data.Length;
        }
        return SafeTensorsBytes(Encoding.UTF8.GetBytes(header.ToJsonString()), tensors.SelectMany(t => t.Data).ToArray(), pad: true);
    }

    /// <summary>Length prefix, header (space-padded to a multiple of 8 when <paramref name="pad"/>), data.</summary>
    public static byte[] SafeTensorsBytes(byte[] header, ReadOnlySpan<byte> data, bool pad)
    {
        int padding = pad ? (8 - header.Length % 8) % 8 : 0;
        var file = new byte[8 + header.Length + padding + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)(header.Length + padding));
        header.CopyTo(file, 8);
        file.AsSpan(8 + header.Length, padding).Fill((byte)' ');
        data.CopyTo(file.AsSpan(8 + header.Length + padding));
        return file;
    }

    // ---- idx: MNIST-like image and label files, raw and gzip
    private static FuzzTarget IdxFiles()
    {
        const int count = 100, rows = 28, cols = 28;
        var rng = new Random(3);
        var pixels = new byte[count * rows * cols];
        for (int i = 0; i < pixels.Length; i++)   // blobs on a black background: compresses like MNIST
        {
            int r = i / cols % rows, c = i % cols;
            pixels[i] = (r - 14) * (r - 14) + (c - 14) * (c - 14) < 60 ? (byte)(128 + rng.Next(128)) : (byte)0;
        }
        var labels = Enumerable.Range(0, count).Select(i => (byte)(i % 10)).ToArray();
        var images = IdxBytes(Idx.ImageMagic, [count, rows, cols], pixels);
        var labelFile = IdxBytes(Idx.LabelMagic, [count], labels);
        long Images(string p) => Idx.ReadImages(p, out _, out _, out _).LongLength;
        long Labels(string p) => Idx.ReadLabels(p).LongLength;
        return new FuzzTarget("idx", typeof(DataFormatException),
        [
            new("images", images, FuzzKind.Idx, Images),
            new("images.gz", Gzip(images), FuzzKind.Idx, Images),
            new("labels", labelFile, FuzzKind.Idx, Labels),
            new("labels.gz", Gzip(labelFile), FuzzKind.Idx, Labels),
        ]);
    }

    public static byte[] IdxBytes(int magic, int[] dims, byte[] data)
    {
        var b = new byte[4 + 4 * dims.Length + data.Length];
        BinaryPrimitives.WriteInt32BigEndian(b, magic);
        for (int d = 0; d < dims.Length; d++) BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(4 + 4 * d), dims[d]);
        data.CopyTo(b, 4 + 4 * dims.Length);
        return b;
    }

    // ---- csv: digits-like headerless rows (raw and gzip) and an sklearn file with its header line
    private static FuzzTarget CsvFiles()
    {
        var rng = new Random(9);
        var digits = new StringBuilder();
        for (int r = 0; r < 300; r++)
        {
            for (int c = 0; c < 64; c++) digits.Append(rng.Next(17)).Append(',');
            digits.Append(r % 10).Append('\n');
        }
        var sk = new StringBuilder("150,4,setosa,versicolor,virginica\n");
        for (int r = 0; r < 150; r++)
            sk.Append(string.Join(',', Enumerable.Range(0, 4).Select(_ => (4 + 4 * rng.NextDouble()).ToString("F1", System.Globalization.CultureInfo.InvariantCulture))))
              .Append(',').Append(r % 3).Append("\r\n");
        var plain = Encoding.UTF8.GetBytes(digits.ToString());
        long Labelled(string p) => Size(Csv.ReadLabelled(p, "fuzz", 64, 10, 1f / 16f));
        long Sklearn(string p) => Size(Csv.ReadSklearn(p, "fuzz"));
        return new FuzzTarget("csv", typeof(DataFormatException),
        [
            new("digits.csv", plain, FuzzKind.Csv, Labelled),
            new("digits.csv.gz", Gzip(plain), FuzzKind.Csv, Labelled),
            new("iris.csv", Encoding.UTF8.GetBytes(sk.ToString()), FuzzKind.SklearnCsv, Sklearn),
        ]);
    }

    private static long Size(Dataset d) => 4L * d.Count * (d.Features.Length / Math.Max(1, d.Count) + 1);

    public static byte[] Gzip(byte[] raw)
    {
        var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest)) gz.Write(raw);
        return ms.ToArray();
    }

    /// <summary>The decompressed length of a gzip file, as far as it decodes (0 when it is not gzip).</summary>
    public static long GunzipLength(byte[] bytes)
    {
        if (bytes.Length < 2 || bytes[0] != 0x1f || bytes[1] != 0x8b) return 0;
        long total = 0;
        var buffer = new byte[1 << 16];
        try
        {
            using var gz = new GZipStream(new MemoryStream(bytes), CompressionMode.Decompress);
            int n;
            while ((n = gz.Read(buffer)) > 0) total += n;
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException) { }
        return total;
    }

    /// <summary>The bytes a successful safetensors load produced (float32/int32 arrays), measured after the load.</summary>
    public static long SafeTensorsOutput(string path) => Checkpoint.Read(path).Tensors.Sum(t => t.Length * 4);

    public void Dispose()
    {
        _optimizer?.Dispose();
        _model?.Dispose();
        _device?.Dispose();
    }
}
