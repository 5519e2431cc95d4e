using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using GpuNet.Bench;
using GpuNet.Checkpoints;
using GpuNet.Data;

namespace GpuNet.Tests;

/// <summary>
/// The fuzzer on a short run per format (CI runs 1,000 per format through <c>Bench fuzz</c>, the floor is 10,000), and
/// the defects it found, each as a direct test: headers that claim more than the file holds allocate nothing for it,
/// invalid UTF-8 and mistyped JSON in headers are clean rejections.
/// </summary>
public sealed class FuzzTests
{
    [Theory]
    [InlineData("checkpoint")]
    [InlineData("idx")]
    [InlineData("csv")]
    [InlineData("safetensors-import")]
    public void TwoHundredMutationsPerFormatAreRejectedOrLoadedCleanly(string format)
    {
        var log = new StringWriter();
        var r = FuzzRunner.Run(format, iterations: 200, seed: 7, replay: null, log);
        Assert.True(r.Crashes == 0 && r.Hangs == 0, log.ToString());
        Assert.True(r.MaxAllocRatio <= FuzzRunner.MaxAllocRatio, log.ToString());
        Assert.Equal(200, r.Rejected + r.Loaded);
        Assert.True(r.Rejected > 100, $"only {r.Rejected} of 200 mutations were rejected: the mutations are too weak\n{log}");
    }

    private static long Allocated(Action load)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        load();
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    private static byte[] SafeTensors(string header, int dataBytes)
    {
        var h = Encoding.UTF8.GetBytes(header);
        var b = new byte[8 + h.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(b, (ulong)h.Length);
        h.CopyTo(b, 8);
        return b;
    }

    [Fact]
    public void AHeaderClaimingATrillionElementsAllocatesNothingForThem()
    {
        using var dir = new TempDir();
        string p = dir.File("big.safetensors");
        File.WriteAllBytes(p, SafeTensors("{\"w\":{\"dtype\":\"F32\",\"shape\":[1000000,1000000],\"data_offsets\":[0,4000000000000]}}", 64));
        CheckpointException? e = null;
        long bytes = Allocated(() => e = Assert.Throws<CheckpointException>(() => Checkpoint.Read(p)));
        Assert.Contains("shape (1000000, 1000000) holds 1000000000000 elements, more than an array can", e!.Message);
        Assert.True(bytes < 64 * 1024, $"{bytes} bytes allocated");

        string idx = dir.File("big.idx");
        var header = new byte[16 + 10];
        BinaryPrimitives.WriteInt32BigEndian(header, Idx.ImageMagic);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), 1_000_000);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(8), 1_000);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(12), 1_000);
        File.WriteAllBytes(idx, header);
        DataFormatException? d = null;
        bytes = Allocated(() => d = Assert.Throws<DataFormatException>(() => Idx.ReadImages(idx, out _, out _, out _)));
        Assert.Contains("the header promises (1000000, 1000, 1000) = 1000000000000 bytes of data, the file holds 10", d!.Message);
        Assert.True(bytes < 64 * 1024, $"{bytes} bytes allocated");

        string csv = dir.File("big.csv");
        File.WriteAllText(csv, "2147483647,4,a,b\n1,2,3,4,0\n");
        bytes = Allocated(() => d = Assert.Throws<DataFormatException>(() => Csv.ReadSklearn(csv, "big")));
        Assert.Contains("the header says 2147483647 samples, the file holds 1 rows", d!.Message);
        Assert.True(bytes < 64 * 1024, $"{bytes} bytes allocated");
    }

    [Fact]
    public void InvalidUtf8AndMistypedJsonInHeadersAreCleanRejections()
    {
        using var dir = new TempDir();
        string p = dir.File("a.safetensors");
        var b = SafeTensors("{\"__metadata__\":{\"k\":\"v\"}}", 0);
        b[8 + 22] = 0xff;   // inside the string "v": valid JSON syntax, invalid UTF-8
        File.WriteAllBytes(p, b);
        var e = Assert.Throws<CheckpointException>(() => Checkpoint.Read(p));
        Assert.Contains("is not valid UTF-8: invalid sequence at byte 22 (0xff)", e.Message);

        File.WriteAllBytes(p, SafeTensors("{\"__metadata__\":{\"gpunet.model\":\"{\\\"input_shape\\\":[1],\\\"output_shape\\\":[1],\\\"step\\\":[],\\\"parameters\\\":[]}\"}}", 0));
        e = Assert.Throws<CheckpointException>(() => Checkpoint.Read(p));
        Assert.Contains("gpunet.model.step must be an integer >= 0", e.Message);

        var state = new TrainingState().ToJson().Replace("\"epoch\":0", "\"plateau\":[],\"epoch\":0");
        var fe = Assert.Throws<FormatException>(() => TrainingState.FromJson(state));
        Assert.Contains("field 'plateau' must be an object, found Array", fe.Message);
    }

    [Fact]
    public void CsvRejectsFeaturesThatOverflowFloat32()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("o.csv"), "1,2,0\n1,1e39,1\n");
        var e = Assert.Throws<DataFormatException>(() => Csv.ReadLabelled(dir.File("o.csv"), "o", 2, 2));
        Assert.Contains("line 2, column 2: 1E+39 overflows float32", e.Message);
    }
}

/// <summary><c>Bench fuzz</c> through the command line (console redirected, so in the console collection).</summary>
[Collection(nameof(ConsoleCollection))]
public sealed class FuzzCommandTests
{
    [Fact]
    public void CommandWritesTheCountsAsJsonAndReplaysAnIteration()
    {
        using var dir = new TempDir();
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        var o = new StringWriter();
        Console.SetOut(o);
        Console.SetError(o);
        int code, replay;
        try
        {
            code = BenchApp.Run(["fuzz", "idx", "--iterations", "30", "--seed", "3", "--json", dir.File("f.json")]);
            replay = BenchApp.Run(["fuzz", "idx", "--seed", "3", "--replay", "17"]);
        }
        finally
        {
            Console.SetOut(oldOut);
            Console.SetError(oldErr);
        }
        Assert.True(code == 0, o.ToString());
        Assert.Equal(0, replay);
        using var json = JsonDocument.Parse(File.ReadAllText(dir.File("f.json")));
        var root = json.RootElement;
        foreach (var key in new[] { "iterations", "rejected", "loaded", "crashes", "hangs", "max_alloc_ratio" })
            Assert.True(root.TryGetProperty(key, out _), $"missing key {key}");
        Assert.Equal(30, root.GetProperty("iterations").GetInt32());
        Assert.Equal(30, root.GetProperty("rejected").GetInt32() + root.GetProperty("loaded").GetInt32());
        Assert.Contains("iteration 17: seed file", o.ToString());
    }

}
