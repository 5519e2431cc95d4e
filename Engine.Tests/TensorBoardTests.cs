using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using GpuNet.Bench;
using GpuNet.Data;
using GpuNet.Nn;
using GpuNet.Schedules;
using GpuNet.Training;

namespace GpuNet.Tests;

/// <summary>
/// <see cref="TensorBoardLogger"/>: a digits-mlp run read back by an independent reader (Python's standard library:
/// TFRecord framing with both CRC-32C checks, protobuf wire format decoded by hand), every scalar against the run's
/// history, the histograms against the weights, the text record; the CRC check value; and the error paths.
/// </summary>
public sealed class TensorBoardTests(BackendFixture f) : DeviceTestBase(f), IClassFixture<BackendFixture>
{
    /// <summary>Reads every event file given, prints one JSON object: per file its records, decoded.</summary>
    private const string Reader = """
        import json, struct, sys

        def crc32c(data):
            crc = 0xFFFFFFFF
            for b in data:
                crc ^= b
                for _ in range(8):
                    crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
            return crc ^ 0xFFFFFFFF

        def masked(data):
            c = crc32c(data)
            return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF

        def varint(b, i):
            shift = result = 0
            while True:
                x = b[i]; i += 1
                result |= (x & 0x7F) << shift
                shift += 7
                if x < 0x80: return result, i

        def fields(b):
            # yields (field number, wire type, value): varint int, fixed64/fixed32 raw bytes, length-delimited bytes
            i = 0
            while i < len(b):
                key, i = varint(b, i)
                num, wire = key >> 3, key & 7
                if wire == 0: v, i = varint(b, i)
                elif wire == 1: v = b[i:i + 8]; i += 8
                elif wire == 2:
                    n, i = varint(b, i)
                    v = b[i:i + n]; i += n
                elif wire == 5: v = b[i:i + 4]; i += 4
                else: raise ValueError('wire type %d' % wire)
                yield num, wire, v

        def f64(v): return struct.unpack('<d', v)[0]
        def packed_f64(wire, v): return list(struct.unpack('<%dd' % (len(v) // 8), v)) if wire == 2 else [f64(v)]

        def histogram(b):
            h = {'kind': 'histo', 'limits': [], 'buckets': []}
            names = {1: 'min', 2: 'max', 3: 'num', 4: 'sum', 5: 'sum_squares'}
            for num, wire, v in fields(b):
                if num in names: h[names[num]] = f64(v)
                elif num == 6: h['limits'] += packed_f64(wire, v)
                elif num == 7: h['buckets'] += packed_f64(wire, v)
            return h

        def tensor(b):
            t = {'kind': 'tensor', 'dtype': 0, 'shape': [], 'strings': []}
            for num, wire, v in fields(b):
                if num == 1: t['dtype'] = v
                elif num == 2:
                    for dn, _, dv in fields(v):
                        if dn == 2: t['shape'].append(dict((sn, sv) for sn, _, sv in fields(dv)).get(1, 0))
                elif num == 8: t['strings'].append(v.decode('utf-8'))
            return t

        def value(b):
            out = {'tag': None, 'plugin': None}
            for num, wire, v in fields(b):
                if num == 1: out['tag'] = v.decode('utf-8')
                elif num == 2: out.update(kind='simple', value=struct.unpack('<f', v)[0])
                elif num == 5: out.update(histogram(v))
                elif num == 8: out.update(tensor(v))
                elif num == 9:
                    for mn, _, mv in fields(v):
                        if mn == 1:
                            for pn, _, pv in fields(mv):
                                if pn == 1: out['plugin'] = pv.decode('utf-8')
            return out

        def event(b):
            e = {'wall_time': 0.0, 'step': 0, 'file_version': None, 'values': []}
            for num, wire, v in fields(b):
                if num == 1: e['wall_time'] = f64(v)
                elif num == 2: e['step'] = v
                elif num == 3: e['file_version'] = v.decode('utf-8')
                elif num == 5:
                    for sn, _, sv in fields(v):
                        if sn == 1: e['values'].append(value(sv))
            return e

        files = {}
        for path in sys.argv[1:]:
            b = open(path, 'rb').read()
            i, records = 0, []
            while i < len(b):
                if i + 12 > len(b): raise ValueError('%s: truncated header at byte %d' % (path, i))
                header = b[i:i + 8]
                (n,) = struct.unpack('<Q', header)
                (hcrc,) = struct.unpack('<I', b[i + 8:i + 12])
                if hcrc != masked(header): raise ValueError('%s: bad length CRC at byte %d' % (path, i))
                data = b[i + 12:i + 12 + n]
                (dcrc,) = struct.unpack('<I', b[i + 12 + n:i + 16 + n])
                if len(data) != n or dcrc != masked(data): raise ValueError('%s: bad data CRC at byte %d' % (path, i))
                records.append(event(data))
                i += 16 + n
            files[path] = records
        print(json.dumps(files))
        """;

    [Fact]
    public void Crc32CMatchesThePublishedCheckValue()
    {
        Assert.Equal(0xE3069283u, Crc32C.Compute("123456789"u8));
        Assert.Equal(0u, Crc32C.Compute([]));
        // 32 zero bytes: RFC 3720 (iSCSI) B.4 test vector; longer than the 8-byte steps, so both loops run
        Assert.Equal(0x8A9136AAu, Crc32C.Compute(new byte[32]));
    }

    /// <summary>The simulator is too slow for a few epochs of digits-mlp; the logger's code is the same on every device.</summary>
    [Theory, Backends(Except = "ilgpu-cpu")]
    public void ADigitsRunReadsBackWithEveryScalarHistogramAndTheSummary(string backend)
    {
        Use(backend);
        using var dir = new TempDir();
        var preset = Preset.Find("digits-mlp")!;
        var settings = preset.Defaults with { Dropout = 0.1f };
        var data = preset.Data(1, null);
        const int epochs = 3;
        using var model = Model.Build(D, preset.Network(settings), [64], 32, new ModelOptions { Seed = 1 });
        using var optimizer = OptimizerFactory.Adam(model, 1e-3);
        using var train = new DataLoader(D, data.Train, 32, shuffle: true, dropLast: false, seed: 1);
        using var val = new DataLoader(D, data.Validation!, 32, shuffle: false, dropLast: false, seed: 1);
        var trainer = new Trainer(model, preset.Loss(), optimizer, new CosineAnnealingLR(1e-3, epochs * (long)train.BatchCount));
        string eventFile;
        FitResult fit;
        using (var logger = new TensorBoardLogger(dir.File("tb")))
        {
            eventFile = logger.FilePath;
            fit = trainer.Fit(train, val, epochs, logger);
        }

        var names = Directory.GetFiles(dir.File("tb")).Select(Path.GetFileName).ToArray();
        Assert.Equal([Path.GetFileName(eventFile)], names);
        Assert.Matches(new Regex(@"^events\.out\.tfevents\.\d{10}\.[A-Za-z0-9_-]+$"), names[0]);

        using var doc = JsonDocument.Parse(RunReader(eventFile));
        var records = doc.RootElement.GetProperty(eventFile).EnumerateArray().ToArray();
        Assert.Equal(TensorBoardLogger.FileVersion, records[0].GetProperty("file_version").GetString());
        double now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;
        Assert.All(records, r => Assert.InRange(r.GetProperty("wall_time").GetDouble(), now - 600, now + 1));
        var values = records.Skip(1).SelectMany(r => r.GetProperty("values").EnumerateArray().Select(v => (Step: r.GetProperty("step").GetInt64(), V: v))).ToList();

        // the model summary, once, as a text-plugin string tensor
        var text = Assert.Single(values, v => v.V.GetProperty("kind").GetString() == "tensor");
        Assert.Equal("model/summary", text.V.GetProperty("tag").GetString());
        Assert.Equal("text", text.V.GetProperty("plugin").GetString());
        Assert.Equal(7, text.V.GetProperty("dtype").GetInt32());   // DT_STRING
        Assert.Equal([1], text.V.GetProperty("shape").EnumerateArray().Select(x => x.GetInt32()).ToArray());
        string summary = Assert.Single(text.V.GetProperty("strings").EnumerateArray()).GetString()!;
        Assert.Contains("fc1", summary);
        Assert.Contains("parameters: " + model.ParameterCount.ToString("N0", CultureInfo.InvariantCulture), summary);

        // every scalar of every epoch, and nothing else
        var expected = new Dictionary<(string, long), float>();
        foreach (var h in fit.History)
        {
            expected[("loss/train", h.Epoch)] = (float)h.TrainLoss;
            expected[("loss/validation", h.Epoch)] = (float)h.ValLoss!.Value;
            expected[("accuracy/train", h.Epoch)] = (float)h.TrainAccuracy!.Value;
            expected[("accuracy/validation", h.Epoch)] = (float)h.ValAccuracy!.Value;
            expected[("learning_rate", h.Epoch)] = (float)h.LearningRate;
            expected[("samples_per_second", h.Epoch)] = (float)h.SamplesPerSecond;
        }
        var scalars = values.Where(v => v.V.GetProperty("kind").GetString() == "simple")
            .ToDictionary(v => (v.V.GetProperty("tag").GetString()!, v.Step), v => (float)v.V.GetProperty("value").GetDouble());
        Assert.Equal(epochs * 6, expected.Count);
        Assert.Equal(expected.Keys.Order(), scalars.Keys.Order());
        foreach (var (key, want) in expected) Assert.True(want == scalars[key], $"{key}: history {want}, event file {scalars[key]}");

        // a weight and a gradient histogram per trainable parameter per epoch; the last epoch's weights are the model's
        var histograms = values.Where(v => v.V.GetProperty("kind").GetString() == "histo").ToList();
        var trainable = model.ParameterTable.Where(p => !p.IsBuffer).ToArray();
        Assert.Equal(epochs * 2 * trainable.Length, histograms.Count);
        foreach (var p in trainable)
            for (int e = 1; e <= epochs; e++)
                foreach (var kind in new[] { "weights", "gradients" })
                {
                    var h = Assert.Single(histograms, v => v.Step == e && v.V.GetProperty("tag").GetString() == $"{kind}/{p.Name}").V;
                    CheckWellFormed(h, p.Length, $"{kind}/{p.Name} epoch {e}");
                    if (kind == "weights" && e == epochs) CheckAgainst(h, model[p.Name].ToArray(), p.Name);
                }
    }

    [Fact]
    public void AnUnwritableDirectoryFailsInTheConstructorNamingIt()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("file"), "not a directory");
        string bad = Path.Combine(dir.File("file"), "tb");
        var e = Assert.Throws<IOException>(() => new TensorBoardLogger(bad));
        Assert.Contains($"cannot create an event file in '{bad}'", e.Message);
        Assert.Throws<ArgumentException>(() => new TensorBoardLogger(" "));
    }

    [Fact]
    public void TheHistogramCountsEveryValueInItsBucketAndCollapsesEmptyRuns()
    {
        float[] v = [-3f, -3f, 0f, 1e-13f, 0.5f, 2f, 2f, 2f];
        var h = TensorBoardLogger.Histogram(v);
        CheckWellFormed(h, v.Length, "small");
        Assert.Equal(-3, h.Min);
        Assert.Equal(2, h.Max);
        Assert.Equal(0.5, h.Sum, 6);
        Assert.Equal(9 + 9 + 0.25 + 12, h.SumSquares, 6);
        // 0 sits in [0, 1e-12), 1e-13 with it; no two empty buckets in a row
        for (int i = 1; i < h.Bucket.Count; i++) Assert.False(h.Bucket[i] == 0 && h.Bucket[i - 1] == 0, $"empty buckets {i - 1} and {i}");
        // the empty run from -DBL_MAX up to the bucket of -3 is one empty bucket; so is the run after 2 up to DBL_MAX
        Assert.Equal((0.0, 2.0), (h.Bucket[0], h.Bucket[1]));
        Assert.True(h.BucketLimit[0] <= -3 && -3 < h.BucketLimit[1] && h.BucketLimit[1] <= -3 / 1.1 + 1e-12, $"bucket of -3: [{h.BucketLimit[0]}, {h.BucketLimit[1]})");   // edges 10% apart
        Assert.Equal((double.MaxValue, 0.0), (h.BucketLimit[^1], h.Bucket[^1]));
        int zero = h.BucketLimit.IndexOf(1e-12);
        Assert.Equal(2, h.Bucket[zero]);
    }

    private static void CheckWellFormed(JsonElement h, long count, string what)
    {
        var limits = h.GetProperty("limits").EnumerateArray().Select(x => x.GetDouble()).ToArray();
        var buckets = h.GetProperty("buckets").EnumerateArray().Select(x => x.GetDouble()).ToArray();
        Assert.True(limits.Length == buckets.Length && limits.Length > 0, $"{what}: {limits.Length} limits, {buckets.Length} buckets");
        for (int i = 1; i < limits.Length; i++) Assert.True(limits[i] > limits[i - 1], $"{what}: limits not increasing at {i}");
        Assert.Equal(count, h.GetProperty("num").GetDouble());
        Assert.Equal(count, buckets.Sum());
        Assert.True(h.GetProperty("min").GetDouble() <= h.GetProperty("max").GetDouble(), what);
    }

    private static void CheckWellFormed(GpuNet.Training.TensorBoardProto.HistogramProto h, long count, string what)
    {
        Assert.Equal(h.BucketLimit.Count, h.Bucket.Count);
        for (int i = 1; i < h.BucketLimit.Count; i++) Assert.True(h.BucketLimit[i] > h.BucketLimit[i - 1], $"{what}: limits not increasing at {i}");
        Assert.Equal(count, h.Num);
        Assert.Equal(count, h.Bucket.Sum());
    }

    /// <summary>Min, max, sum, sum of squares and every bucket's count, recomputed from the values.</summary>
    private static void CheckAgainst(JsonElement h, float[] values, string name)
    {
        Assert.Equal(values.Min(), h.GetProperty("min").GetDouble());
        Assert.Equal(values.Max(), h.GetProperty("max").GetDouble());
        double sum = values.Sum(v => (double)v), squares = values.Sum(v => (double)v * v);
        Assert.True(Math.Abs(sum - h.GetProperty("sum").GetDouble()) <= 1e-9 * (1 + Math.Abs(sum)), $"{name}: sum");
        Assert.True(Math.Abs(squares - h.GetProperty("sum_squares").GetDouble()) <= 1e-9 * squares, $"{name}: sum of squares");
        var limits = h.GetProperty("limits").EnumerateArray().Select(x => x.GetDouble()).ToArray();
        var buckets = h.GetProperty("buckets").EnumerateArray().Select(x => x.GetDouble()).ToArray();
        for (int i = 0; i < limits.Length; i++)
        {
            double lo = i == 0 ? double.NegativeInfinity : limits[i - 1];
            Assert.True(values.Count(v => v >= lo && v < limits[i]) == buckets[i], $"{name}: bucket [{lo}, {limits[i]}) holds {buckets[i]}");
        }
    }

    private static string RunReader(params string[] files) => Python.Run(Reader, files);
}
