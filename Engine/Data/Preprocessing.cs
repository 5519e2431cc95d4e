using GpuNet.Init;

namespace GpuNet.Data;

/// <summary>Train/validation splits.</summary>
public static class DataSplit
{
    /// <summary>
    /// A seeded stratified split: <c>round(Count * validationFraction)</c> samples go to validation, apportioned
    /// to the classes by largest remainder, so each class's validation count is its proportional share rounded up or
    /// down (within 1 sample); within a class the samples are chosen by a seeded Fisher-Yates shuffle (SplitMix64).
    /// Both parts keep the original sample order. A regression set (no labels) is split uniformly at random.
    /// E.g. MNIST's 60k training set with 0.1 gives 54k/6k; digits with 0.2 gives 1438/359.
    /// </summary>
    /// <param name="data">The set to split.</param>
    /// <param name="validationFraction">In (0, 1).</param>
    /// <param name="seed">Seed of the shuffle; equal seeds give equal splits.</param>
    /// <returns>The training part and the validation part, named <c>name/train</c> and <c>name/validation</c>.</returns>
    public static (Dataset Train, Dataset Validation) Stratified(Dataset data, double validationFraction, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (!(validationFraction > 0 && validationFraction < 1))
            throw new ArgumentOutOfRangeException(nameof(validationFraction), validationFraction, "the validation fraction must lie in (0, 1)");
        int n = data.Count;
        int nVal = (int)Math.Round(n * validationFraction, MidpointRounding.AwayFromZero);
        var inVal = new bool[n];
        var rng = new SplitMix64(seed);
        if (!data.HasLabels)
        {
            var all = Enumerable.Range(0, n).ToArray();
            Shuffle(all, ref rng);
            for (int i = 0; i < nVal; i++) inVal[all[i]] = true;
        }
        else
        {
            var counts = data.ClassCounts();
            // Largest-remainder apportionment of nVal over the classes (ties: lower class first).
            var take = new int[counts.Length];
            var remainder = new double[counts.Length];
            int assigned = 0;
            for (int c = 0; c < counts.Length; c++)
            {
                double ideal = (double)counts[c] * nVal / n;
                take[c] = (int)Math.Floor(ideal);
                remainder[c] = ideal - take[c];
                assigned += take[c];
            }
            foreach (int c in Enumerable.Range(0, counts.Length).OrderByDescending(c => remainder[c]).ThenBy(c => c).Take(nVal - assigned))
                take[c]++;
            var byClass = new List<int>[counts.Length];
            for (int c = 0; c < counts.Length; c++) byClass[c] = new List<int>(counts[c]);
            var labels = data.Labels;
            for (int i = 0; i < n; i++) byClass[labels[i]].Add(i);
            for (int c = 0; c < counts.Length; c++)
            {
                var members = byClass[c].ToArray();
                Shuffle(members, ref rng);
                for (int i = 0; i < take[c]; i++) inVal[members[i]] = true;
            }
        }
        var train = new List<int>(n - nVal);
        var val = new List<int>(nVal);
        for (int i = 0; i < n; i++) (inVal[i] ? val : train).Add(i);
        return (data.Subset(train.ToArray(), data.Name + "/train"), data.Subset(val.ToArray(), data.Name + "/validation"));
    }

    /// <summary>Fisher-Yates: for i from n-1 down to 1, swap a[i] with a[j], j = floor(u * (i + 1)), u from <paramref name="rng"/>.</summary>
    internal static void Shuffle(Span<int> a, ref SplitMix64 rng)
    {
        for (int i = a.Length - 1; i > 0; i--)
        {
            int j = (int)(rng.NextDouble() * (i + 1));
            (a[i], a[j]) = (a[j], a[i]);
        }
    }
}

/// <summary>
/// Per-feature standardisation: <c>x' = (x - mean) / std</c> with mean and (population) standard deviation of each
/// feature computed in float64 on the TRAINING set only (<see cref="Fit"/>) and then applied unchanged to the
/// training, validation and test sets, so no statistic leaks from held-out data. A feature whose standard deviation
/// is below 1e-12 (e.g. a digits border pixel that is always 0) uses std = 1, so it stays finite (it becomes 0).
/// </summary>
public sealed class Standardizer
{
    private readonly float[] _mean;
    private readonly float[] _std;

    private Standardizer(float[] mean, float[] std, int[] shape)
    {
        _mean = mean;
        _std = std;
        SampleShape = shape;
    }

    /// <summary>Mean of each feature on the training set, (SampleSize).</summary>
    public IReadOnlyList<float> Mean => _mean;
    /// <summary>Standard deviation of each feature on the training set (1 where it was below 1e-12), (SampleSize).</summary>
    public IReadOnlyList<float> Std => _std;
    /// <summary>The sample shape the statistics belong to.</summary>
    public IReadOnlyList<int> SampleShape { get; }

    /// <summary>Computes per-feature mean and standard deviation of <paramref name="train"/>.</summary>
    public static Standardizer Fit(Dataset train)
    {
        ArgumentNullException.ThrowIfNull(train);
        if (train.Count == 0) throw new ArgumentException($"Standardizer.Fit: '{train.Name}' has no samples", nameof(train));
        int d = train.SampleSize;
        var sum = new double[d];
        var x = train.Features;
        for (int i = 0; i < train.Count; i++)
        {
            var row = x.Slice(i * d, d);
            for (int j = 0; j < d; j++) sum[j] += row[j];
        }
        var mean = new double[d];
        for (int j = 0; j < d; j++) mean[j] = sum[j] / train.Count;
        var sq = new double[d];
        for (int i = 0; i < train.Count; i++)
        {
            var row = x.Slice(i * d, d);
            for (int j = 0; j < d; j++) { double e = row[j] - mean[j]; sq[j] += e * e; }
        }
        var m = new float[d];
        var s = new float[d];
        for (int j = 0; j < d; j++)
        {
            m[j] = (float)mean[j];
            double std = Math.Sqrt(sq[j] / train.Count);
            s[j] = std < 1e-12 ? 1f : (float)std;
        }
        return new Standardizer(m, s, train.SampleShape.ToArray());
    }

    /// <summary>A copy of <paramref name="data"/> with standardised features (labels/targets unchanged).</summary>
    /// <exception cref="ArgumentException">The sample shape differs from the one the statistics were fitted on.</exception>
    public Dataset Apply(Dataset data)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (!data.SampleShape.SequenceEqual(SampleShape))
            throw new ArgumentException($"Standardizer.Apply: '{data.Name}' has samples of {ShapeUtil.Format(data.SampleShape.ToArray())}, the statistics were fitted on {ShapeUtil.Format(SampleShape.ToArray())}", nameof(data));
        int d = _mean.Length;
        var src = data.FeatureArray;
        var dst = GC.AllocateUninitializedArray<float>(src.Length);
        Parallel.For(0, data.Count, i =>
        {
            int o = i * d;
            for (int j = 0; j < d; j++) dst[o + j] = (src[o + j] - _mean[j]) / _std[j];
        });
        return data.WithFeatures(dst, data.Name);
    }
}
