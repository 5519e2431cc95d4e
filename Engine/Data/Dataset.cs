namespace GpuNet.Data;

/// <summary>
/// An in-memory data set: <see cref="Count"/> samples of float32 features, each of <see cref="SampleShape"/>
/// (e.g. (1, 28, 28) for MNIST images, (64) for digits), stored row-major in one array; plus either Int32 class
/// labels in [0, <see cref="ClassCount"/>) (classification) or float32 targets of <see cref="TargetShape"/> per sample
/// (regression). A classification set also offers its labels as float targets (<see cref="Targets"/>, shape (1) per
/// sample, made once on first use), which is how the two-class <c>binary</c> set feeds a BCE loss.
/// Instances are immutable: the arrays are copied in and exposed read-only.
/// </summary>
public sealed class Dataset
{
    private readonly float[] _features;
    private readonly int[] _sampleShape;
    private readonly int[]? _labels;
    private float[]? _targets;
    private readonly int[] _targetShape;
    private readonly string[] _classNames;

    private Dataset(string name, float[] features, int[] sampleShape, int[]? labels, int classCount, float[]? targets, int[] targetShape, string[] classNames)
    {
        Name = name;
        _features = features;
        _sampleShape = sampleShape;
        _labels = labels;
        ClassCount = classCount;
        _targets = targets;
        _targetShape = targetShape;
        _classNames = classNames;
        SampleSize = checked((int)ShapeUtil.Count(sampleShape));
        TargetSize = checked((int)ShapeUtil.Count(targetShape));
        Count = SampleSize == 0 ? 0 : features.Length / SampleSize;
    }

    /// <summary>
    /// A classification set from arrays (copied): <paramref name="features"/> holds <c>labels.Length</c> samples of
    /// <paramref name="sampleShape"/> row-major; every label must lie in [0, <paramref name="classCount"/>).
    /// </summary>
    /// <param name="name">Name used in messages and by <see cref="Subset"/>.</param>
    /// <param name="features">count * prod(sampleShape) floats.</param>
    /// <param name="sampleShape">Shape of one sample.</param>
    /// <param name="labels">One class index per sample.</param>
    /// <param name="classCount">Number of classes.</param>
    /// <param name="classNames">Optional class names (default "0", "1", ...).</param>
    /// <exception cref="ArgumentException">Length mismatch, a label out of range, or a non-finite feature.</exception>
    public static Dataset Classification(string name, ReadOnlySpan<float> features, int[] sampleShape, ReadOnlySpan<int> labels, int classCount, string[]? classNames = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        ShapeUtil.Validate(sampleShape, nameof(sampleShape));
        if (classCount < 1) throw new ArgumentOutOfRangeException(nameof(classCount), classCount, $"dataset '{name}': the class count must be at least 1");
        long per = ShapeUtil.Count(sampleShape);
        if (per == 0) throw new ArgumentException($"dataset '{name}': sample shape {ShapeUtil.Format(sampleShape)} holds no element", nameof(sampleShape));
        if (features.Length != labels.Length * per)
            throw new ArgumentException($"dataset '{name}': {labels.Length} labels need {labels.Length} x {ShapeUtil.Format(sampleShape)} = {labels.Length * per} features, got {features.Length}", nameof(features));
        for (int i = 0; i < labels.Length; i++)
            if ((uint)labels[i] >= (uint)classCount)
                throw new ArgumentException($"dataset '{name}': label {i} is {labels[i]}, expected 0..{classCount - 1}", nameof(labels));
        CheckFinite(name, features);
        if (classNames is not null && classNames.Length != classCount)
            throw new ArgumentException($"dataset '{name}': {classNames.Length} class names for {classCount} classes", nameof(classNames));
        return new Dataset(name, features.ToArray(), (int[])sampleShape.Clone(), labels.ToArray(), classCount, null, [1],
            classNames is null ? Enumerable.Range(0, classCount).Select(c => c.ToString()).ToArray() : (string[])classNames.Clone());
    }

    /// <summary>
    /// A regression set from arrays (copied): <paramref name="features"/> holds count samples of
    /// <paramref name="sampleShape"/>, <paramref name="targets"/> count targets of <paramref name="targetShape"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The two arrays disagree on the sample count, or a value is not finite.</exception>
    public static Dataset Regression(string name, ReadOnlySpan<float> features, int[] sampleShape, ReadOnlySpan<float> targets, int[] targetShape)
    {
        ArgumentNullException.ThrowIfNull(name);
        ShapeUtil.Validate(sampleShape, nameof(sampleShape));
        ShapeUtil.Validate(targetShape, nameof(targetShape));
        long per = ShapeUtil.Count(sampleShape), tper = ShapeUtil.Count(targetShape);
        if (per == 0 || tper == 0 || features.Length % per != 0 || targets.Length % tper != 0 || features.Length / per != targets.Length / tper)
            throw new ArgumentException($"dataset '{name}': {features.Length} features of {ShapeUtil.Format(sampleShape)} and {targets.Length} targets of {ShapeUtil.Format(targetShape)} do not describe the same number of samples", nameof(targets));
        CheckFinite(name, features);
        CheckFinite(name, targets);
        return new Dataset(name, features.ToArray(), (int[])sampleShape.Clone(), null, 0, targets.ToArray(), (int[])targetShape.Clone(), []);
    }

    // Wraps arrays without copying (for data this library made itself).
    internal static Dataset Wrap(string name, float[] features, int[] sampleShape, int[]? labels, int classCount, float[]? targets, int[] targetShape, string[] classNames)
        => new(name, features, sampleShape, labels, classCount, targets, targetShape, classNames);

    /// <summary>Name used in messages (a subset's name says which subset).</summary>
    public string Name { get; }
    /// <summary>Number of samples.</summary>
    public int Count { get; }
    /// <summary>Shape of one sample's features, e.g. (1, 28, 28) or (64).</summary>
    public IReadOnlyList<int> SampleShape => _sampleShape;
    /// <summary>Floats per sample: prod(<see cref="SampleShape"/>).</summary>
    public int SampleSize { get; }
    /// <summary>All features, sample after sample: (Count, ...SampleShape) row-major.</summary>
    public ReadOnlySpan<float> Features => _features;
    /// <summary>True for a classification set (Int32 labels).</summary>
    public bool HasLabels => _labels is not null;
    /// <summary>The class labels, one per sample; empty for a regression set.</summary>
    public ReadOnlySpan<int> Labels => _labels;
    /// <summary>Number of classes; 0 for a regression set.</summary>
    public int ClassCount { get; }
    /// <summary>Class names ("0", "1", ... unless the file named them); empty for a regression set.</summary>
    public IReadOnlyList<string> ClassNames => _classNames;
    /// <summary>Shape of one sample's float target: (1) for a classification set's labels as floats.</summary>
    public IReadOnlyList<int> TargetShape => _targetShape;
    /// <summary>Floats per target: prod(<see cref="TargetShape"/>).</summary>
    public int TargetSize { get; }
    /// <summary>Float targets, (Count, ...TargetShape): a regression set's targets, or a classification set's labels as floats (made once, then cached).</summary>
    public ReadOnlySpan<float> Targets => TargetArray;

    internal float[] FeatureArray => _features;
    internal int[]? LabelArray => _labels;
    internal float[] TargetArray => _targets ??= Array.ConvertAll(_labels!, l => (float)l);

    /// <summary>Features of sample <paramref name="index"/>.</summary>
    public ReadOnlySpan<float> Sample(int index) => _features.AsSpan(checked(index * SampleSize), SampleSize);

    /// <summary>Samples per class (length <see cref="ClassCount"/>).</summary>
    public int[] ClassCounts()
    {
        var counts = new int[ClassCount];
        if (_labels is not null) foreach (int l in _labels) counts[l]++;
        return counts;
    }

    /// <summary>A new data set of the samples at <paramref name="indices"/>, in that order (repeats allowed).</summary>
    /// <param name="indices">Sample indices in [0, Count).</param>
    /// <param name="name">Name of the subset (default: this name + "[subset]").</param>
    /// <exception cref="ArgumentOutOfRangeException">An index outside [0, Count).</exception>
    public Dataset Subset(ReadOnlySpan<int> indices, string? name = null)
    {
        var x = GC.AllocateUninitializedArray<float>(checked(indices.Length * SampleSize));
        int[]? y = _labels is null ? null : new int[indices.Length];
        float[]? t = _labels is null ? new float[checked(indices.Length * TargetSize)] : null;
        for (int i = 0; i < indices.Length; i++)
        {
            int s = indices[i];
            if ((uint)s >= (uint)Count)
                throw new ArgumentOutOfRangeException(nameof(indices), s, $"Subset of '{Name}': index {i} is {s}, expected 0..{Count - 1}");
            _features.AsSpan(s * SampleSize, SampleSize).CopyTo(x.AsSpan(i * SampleSize));
            if (y is not null) y[i] = _labels![s];
            else _targets.AsSpan(s * TargetSize, TargetSize).CopyTo(t.AsSpan(i * TargetSize));
        }
        return new Dataset(name ?? Name + "[subset]", x, _sampleShape, y, ClassCount, t, _targetShape, _classNames);
    }

    /// <summary>The same labels/targets with other features of the same shape (used by <see cref="Standardizer"/>).</summary>
    internal Dataset WithFeatures(float[] features, string name)
        => new(name, features, _sampleShape, _labels, ClassCount, _labels is null ? _targets : null, _targetShape, _classNames);

    /// <inheritdoc/>
    public override string ToString()
        => $"{Name}: {Count} samples of {ShapeUtil.Format(_sampleShape)}" + (HasLabels ? $", {ClassCount} classes" : $", targets {ShapeUtil.Format(_targetShape)}");

    private static void CheckFinite(string name, ReadOnlySpan<float> values)
    {
        for (int i = 0; i < values.Length; i++)
            if (!float.IsFinite(values[i]))
                throw new ArgumentException($"dataset '{name}': value {i} is {values[i]}, expected a finite number");
    }
}
