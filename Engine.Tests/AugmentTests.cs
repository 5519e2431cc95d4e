using GpuNet.Data;
using GpuNet.Init;

namespace GpuNet.Tests;

/// <summary>The augmentations on tiny images, their determinism and statistics, and the runner.</summary>
public sealed class AugmentTests
{
    // Image (c, h, w) with element value c * 100 + y * 10 + x (exact in float32).
    private static float[] Ramp(ImageShape s)
    {
        var a = new float[s.Size];
        for (int c = 0; c < s.Channels; c++)
            for (int y = 0; y < s.Height; y++)
                for (int x = 0; x < s.Width; x++) a[(c * s.Height + y) * s.Width + x] = c * 100 + y * 10 + x;
        return a;
    }

    private static float Px(float[] a, ImageShape s, int c, int y, int x) => a[(c * s.Height + y) * s.Width + x];

    [Fact]
    public void FlipMirrorsEveryRowExactly()
    {
        var s = new ImageShape(2, 2, 3);
        var a = Ramp(s);
        Augment.FlipHorizontal(a, s);
        Assert.Equal([2f, 1, 0, 12, 11, 10, 102, 101, 100, 112, 111, 110], a);
        var rng = new SplitMix64(1);
        var always = Augment.HorizontalFlip(1);
        var b = Ramp(s);
        always.Apply(b, s, ref rng, default);
        Assert.Equal(a, b);
        var never = Augment.HorizontalFlip(0);
        never.Apply(b, s, ref rng, default);
        Assert.Equal(a, b);
    }

    [Fact]
    public void RotationBy90IsTransposeAndFlip()
    {
        var s = new ImageShape(2, 5, 5);
        var a = Ramp(s);
        var r = new float[s.Size];
        Augment.Rotate(a, r, s, 90, fill: -7f);
        // Counter-clockwise as displayed: out(y, x) = in(x, W-1-y), the transpose flipped upside down.
        for (int c = 0; c < 2; c++)
            for (int y = 0; y < 5; y++)
                for (int x = 0; x < 5; x++)
                    Assert.True(Math.Abs(Px(r, s, c, y, x) - Px(a, s, c, x, 4 - y)) <= 1e-5, $"({c}, {y}, {x}): {Px(r, s, c, y, x)} vs {Px(a, s, c, x, 4 - y)}");
        // 180 degrees: both flips.
        Augment.Rotate(a, r, s, 180, fill: -7f);
        for (int y = 0; y < 5; y++)
            for (int x = 0; x < 5; x++) Assert.True(Math.Abs(Px(r, s, 1, y, x) - Px(a, s, 1, 4 - y, 4 - x)) <= 1e-5);
    }

    [Fact]
    public void RotationByZeroIsIdentityAndFillComesFromOutside()
    {
        var s = new ImageShape(1, 4, 6);
        var a = Ramp(s);
        var r = new float[s.Size];
        Augment.Rotate(a, r, s, 0, fill: -1f);
        Assert.Equal(a, r);
        var rng = new SplitMix64(3);
        var b = Ramp(s);
        Augment.Rotation(0).Apply(b, s, ref rng, new float[s.Size]);
        Assert.Equal(a, b);
        // 45 degrees on a 3x3 image of ones, fill 0: the centre stays 1; the corner (0, 0) samples above the image,
        // between a row of fill and row 0 (hand-computed below).
        var one = new ImageShape(1, 3, 3);
        var ones = Enumerable.Repeat(1f, 9).ToArray();
        var o = new float[9];
        Augment.Rotate(ones, o, one, 45, fill: 0f);
        Assert.Equal(1f, o[4], 6);
        // Output (0, 0): dx = dy = -1, source x = 1 + cos(45)(-1) - sin(45)(-1) = 1, y = 1 + sin(45)(-1) + cos(45)(-1) = 1 - sqrt 2.
        // y0 = -1 (fill 0, weight 1 - ty), y1 = 0 (1, weight ty), ty = 2 - sqrt 2.
        Assert.Equal(2 - Math.Sqrt(2), o[0], 5);
    }

    [Fact]
    public void ShiftMovesPixelsAndFillsTheEdge()
    {
        var s = new ImageShape(1, 3, 4);
        var a = Ramp(s);
        var r = new float[s.Size];
        Augment.Shift(a, r, s, 1, 0, fill: -1f);
        Assert.Equal([-1f, -1, -1, -1, 0, 1, 2, 3, 10, 11, 12, 13], r);
        Augment.Shift(a, r, s, 0, -2, fill: -1f);
        Assert.Equal([2f, 3, -1, -1, 12, 13, -1, -1, 22, 23, -1, -1], r);
        Augment.Shift(a, r, s, -1, 1, fill: 5f);
        Assert.Equal([5f, 10, 11, 12, 5, 20, 21, 22, 5, 5, 5, 5], r);
        Augment.Shift(a, r, s, 0, 9, fill: 5f);
        Assert.All(r, v => Assert.Equal(5f, v));

        // RandomCrop(1) gives one of the 9 shifts by -1..1, each seen over many samples.
        var crop = Augment.RandomCrop(1, fill: -1f);
        var seen = new HashSet<(int, int)>();
        var scratch = new float[crop.ScratchSize(s)];
        for (int i = 0; i < 200; i++)
        {
            var rng = AugmentRunner.SampleRng(5, 0, i);
            var b = Ramp(s);
            crop.Apply(b, s, ref rng, scratch);
            int match = 0;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++)
                {
                    Augment.Shift(a, r, s, dy, dx, -1f);
                    if (r.AsSpan().SequenceEqual(b)) { match++; seen.Add((dy, dx)); }
                }
            Assert.Equal(1, match);
        }
        Assert.Equal(9, seen.Count);
    }

    [Fact]
    public void BrightnessAndContrastFormulas()
    {
        var s = new ImageShape(1, 2, 2);
        float[] a = [0.2f, 0.4f, 0.6f, 0.8f];
        Augment.AdjustBrightness(a, 1.5f);
        Assert.Equal([0.3f, 0.6f, 0.9f, 1f], a, (p, q) => Math.Abs(p - q) <= 1e-6f);
        a = [0.2f, 0.4f, 0.6f, 0.8f]; // mean 0.5
        Augment.AdjustContrast(a, s, 0.5f);
        Assert.Equal([0.35f, 0.45f, 0.55f, 0.65f], a, (p, q) => Math.Abs(p - q) <= 1e-6f);
        a = [0.2f, 0.4f, 0.6f, 0.8f];
        Augment.AdjustContrast(a, s, 2f); // 2x - 0.5, clamped
        Assert.Equal([0f, 0.3f, 0.7f, 1f], a, (p, q) => Math.Abs(p - q) <= 1e-6f);

        // The jitter: order, b, c drawn in that sequence, each factor inside its range.
        var jitter = Augment.ColorJitter(0.4, 0.3);
        for (int i = 0; i < 50; i++)
        {
            var rng = AugmentRunner.SampleRng(2, 1, i);
            var probe = rng;
            bool contrastFirst = probe.NextDouble() < 0.5;
            double b = 0.6 + 0.8 * probe.NextDouble(), c = 0.7 + 0.6 * probe.NextDouble();
            double[] x = [0.1, 0.3, 0.5, 0.9];
            double Mean() => x.Average();
            void Bright() { for (int k = 0; k < 4; k++) x[k] = Math.Clamp(b * x[k], 0, 1); }
            void Contr() { double m = Mean(); for (int k = 0; k < 4; k++) x[k] = Math.Clamp(c * x[k] + (1 - c) * m, 0, 1); }
            if (contrastFirst) { Contr(); Bright(); } else { Bright(); Contr(); }
            float[] got = [0.1f, 0.3f, 0.5f, 0.9f];
            jitter.Apply(got, s, ref rng, default);
            Tol.Elementwise.AssertClose(got, x, $"jitter sample {i}");
        }
    }

    [Fact]
    public void ErasingStaysInBoundsAndSetsExactlyTheRectangle()
    {
        var s = new ImageShape(2, 28, 28);
        var erase = new RandomErase(1, 0.02, 0.33, 0.3, 3.3, fill: -3f);
        int erased = 0;
        for (int i = 0; i < 300; i++)
        {
            var rng = AugmentRunner.SampleRng(11, 0, i);
            var probe = rng;
            bool picked = erase.Pick(s, ref probe, out int top, out int left, out int h, out int w);
            var a = Ramp(s);
            erase.Apply(a, s, ref rng, default);
            if (!picked) { Assert.Equal(Ramp(s), a); continue; }
            erased++;
            Assert.True(h >= 1 && w >= 1 && h < 28 && w < 28 && top >= 0 && left >= 0 && top + h <= 28 && left + w <= 28, $"({top}, {left}, {h}, {w})");
            // h, w are the roundings of sqrt(t r), sqrt(t / r) for the target area t: t lies in [(h-.5)(w-.5), (h+.5)(w+.5)].
            Assert.True((h + 0.5) * (w + 0.5) >= 0.02 * 784 && (h - 0.5) * (w - 0.5) <= 0.33 * 784, $"{h} x {w}");
            var expected = Ramp(s);
            for (int c = 0; c < 2; c++)
                for (int y = top; y < top + h; y++)
                    for (int x = left; x < left + w; x++) expected[(c * 28 + y) * 28 + x] = -3f;
            Assert.Equal(expected, a);
        }
        Assert.True(erased > 250, $"only {erased} of 300 erased with p = 1");
        // A scale that can never fit (the whole image) keeps the image after the attempts.
        var whole = Augment.RandomErasing(1, 1, 1, 1, 1);
        var img = Ramp(s);
        var g = new SplitMix64(4);
        whole.Apply(img, s, ref g, default);
        Assert.Equal(Ramp(s), img);
    }

    [Fact]
    public void FlipAndEraseRatesMatchTheirProbability()
    {
        var s = new ImageShape(1, 1, 2);
        var flip = Augment.HorizontalFlip(0.3);
        int n = 4000, flips = 0;
        for (int i = 0; i < n; i++)
        {
            float[] a = [0, 1];
            var rng = AugmentRunner.SampleRng(9, 2, i);
            flip.Apply(a, s, ref rng, default);
            if (a[0] == 1) flips++;
        }
        double sigma = Math.Sqrt(0.3 * 0.7 / n);
        Assert.True(Math.Abs((double)flips / n - 0.3) < 4.5 * sigma, $"flip rate {(double)flips / n}, expected 0.3");

        var erase = new RandomErase(0.25, 0.1, 0.2, 0.5, 2, 0);
        var img = new ImageShape(1, 8, 8);
        int picks = 0;
        for (int i = 0; i < n; i++)
        {
            var rng = AugmentRunner.SampleRng(9, 3, i);
            if (erase.Pick(img, ref rng, out _, out _, out _, out _)) picks++;
        }
        sigma = Math.Sqrt(0.25 * 0.75 / n);
        Assert.True(Math.Abs((double)picks / n - 0.25) < 4.5 * sigma, $"erase rate {(double)picks / n}, expected 0.25");
    }

    internal static IAugmentation Pipeline() => Augment.Compose(
        Augment.HorizontalFlip(0.5), Augment.RandomCrop(2), Augment.Rotation(15, fill: 0f),
        Augment.ColorJitter(0.2, 0.2), Augment.RandomErasing(0.5));

    internal static float[] Images(int n, ImageShape s, int seed)
    {
        var a = TestData.Uniform(seed, n * s.Size);
        for (int i = 0; i < a.Length; i++) a[i] = 0.5f + 0.5f * a[i];
        return a;
    }

    [Fact]
    public void RunnerIsAPureFunctionOfSeedEpochAndSample()
    {
        var s = new ImageShape(1, 28, 28);
        int n = 37;
        var src = Images(n, s, 1);
        var idx = Enumerable.Range(100, n).ToArray();
        var serial = new AugmentRunner(Pipeline(), s, 42, parallel: false);
        var parallel = new AugmentRunner(Pipeline(), s, 42, parallel: true);
        float[] Run(AugmentRunner r, int epoch, int[] indices)
        {
            var b = (float[])src.Clone();
            r.Apply(b, n, epoch, indices, 0);
            return b;
        }
        var e1 = Run(serial, 1, idx);
        Assert.Equal(e1, Run(serial, 1, idx));
        Assert.Equal(e1, Run(parallel, 1, idx));
        Assert.NotEqual(e1, Run(serial, 2, idx));
        Assert.NotEqual(e1, Run(new AugmentRunner(Pipeline(), s, 43, false), 1, idx));
        Assert.NotEqual(src, e1);

        // Sample 107 alone, at another position of a batch, gives the same image as inside the full batch.
        var one = new float[2 * s.Size];
        Array.Copy(src, 7 * s.Size, one, s.Size, s.Size);
        serial.Apply(one, 2, 1, [0, 107], 0);
        Assert.Equal(e1.AsSpan(7 * s.Size, s.Size).ToArray(), one.AsSpan(s.Size, s.Size).ToArray());
        // ... and with an offset into the index array.
        Array.Copy(src, 7 * s.Size, one, 0, s.Size);
        serial.Apply(one, 1, 1, [5, 6, 107], 2);
        Assert.Equal(e1.AsSpan(7 * s.Size, s.Size).ToArray(), one.AsSpan(0, s.Size).ToArray());
    }

    public static TheoryData<string, Func<IAugmentation>, string> BadArguments => new()
    {
        { "p", () => Augment.HorizontalFlip(1.5), "[0, 1]" },
        { "p", () => Augment.HorizontalFlip(-0.1), "[0, 1]" },
        { "p", () => Augment.HorizontalFlip(double.NaN), "[0, 1]" },
        { "degrees", () => Augment.Rotation(-1), "[0, 180]" },
        { "fill", () => Augment.Rotation(10, float.NaN), "finite" },
        { "padding", () => Augment.RandomCrop(-2), ">= 0" },
        { "brightness", () => Augment.ColorJitter(1, 0), "[0, 1)" },
        { "brightness", () => Augment.ColorJitter(-0.5, 0), "[0, 1)" },
        { "contrast", () => Augment.ColorJitter(0.1, 1.2), "[0, 1)" },
        { "p", () => Augment.RandomErasing(2), "[0, 1]" },
        { "scaleLo", () => Augment.RandomErasing(0.5, 0, 0.3), "0 < scaleLo" },
        { "scaleHi", () => Augment.RandomErasing(0.5, 0.3, 0.2), "scaleHi <= 1" },
        { "scaleHi", () => Augment.RandomErasing(0.5, 0.3, 1.5), "scaleHi <= 1" },
        { "ratioLo", () => Augment.RandomErasing(0.5, 0.1, 0.3, -1, 2), "0 < ratioLo" },
        { "ratioHi", () => Augment.RandomErasing(0.5, 0.1, 0.3, 2, 1), "ratioLo (2) <= ratioHi" },
    };

    [Theory, MemberData(nameof(BadArguments))]
    public void BadParametersNameArgumentValueAndRange(string arg, Func<IAugmentation> make, string range)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(make);
        Assert.Equal(arg, e.ParamName);
        Assert.Contains($"'{arg}' is ", e.Message);
        Assert.Contains(range, e.Message);
    }

    [Fact]
    public void ComposeAndShapesAreChecked()
    {
        Assert.Throws<ArgumentException>(() => Augment.Compose());
        Assert.Throws<ArgumentException>(() => Augment.Compose(Augment.HorizontalFlip(), null!));
        Assert.Equal(new ImageShape(1, 28, 28), ImageShape.FromSampleShape([28, 28]));
        Assert.Equal(new ImageShape(3, 4, 5), ImageShape.FromSampleShape([3, 4, 5]));
        var e = Assert.Throws<ArgumentException>(() => ImageShape.FromSampleShape([64]));
        Assert.Contains("(64)", e.Message);
        Assert.Throws<ArgumentException>(() => Augment.FlipHorizontal(new float[5], new ImageShape(1, 2, 2)));
        Assert.Equal(784, Augment.Compose(Augment.HorizontalFlip(), Augment.Rotation(5)).ScratchSize(new ImageShape(1, 28, 28)));
    }
}

/// <summary>The loader's augmentation hook on each device.</summary>
public sealed class AugmentLoaderTests(BackendFixture f) : DeviceTestBase(f), IClassFixture<BackendFixture>
{
    private static readonly ImageShape Shape = new(1, 6, 6);

    // n images of (1, 6, 6) in [0.25, 0.75]; label i % 3.
    internal static Dataset Images(int n)
    {
        var x = TestData.Uniform(7, n * Shape.Size);
        for (int i = 0; i < x.Length; i++) x[i] = 0.5f + 0.25f * x[i];
        return Dataset.Classification("images", x, [1, 6, 6], Enumerable.Range(0, n).Select(i => i % 3).ToArray(), 3);
    }

    internal static IAugmentation Pipeline() => Augment.Compose(
        Augment.HorizontalFlip(0.5), Augment.RandomCrop(1), Augment.Rotation(20), Augment.ColorJitter(0.3, 0.3), Augment.RandomErasing(0.5));

    private static List<(float[] X, int[] Idx)> Epoch(DataLoader l, int epoch)
    {
        var list = new List<(float[], int[])>();
        foreach (var b in l.Batches(epoch)) list.Add((b.X.ToArray(), b.SampleIndices.ToArray()));
        return list;
    }

    [Theory, Backends]
    public void TrainingBatchesAreAugmentedAndValidationBatchesAreNot(string backend)
    {
        Use(backend);
        var data = Images(23);
        var aug = Pipeline();
        using var train = new DataLoader(D, data, 5, shuffle: true, dropLast: false, seed: 8, prefetch: true, augment: aug);
        using var val = new DataLoader(D, data, 5, shuffle: false, dropLast: false, seed: 8, prefetch: false);
        Assert.Same(aug, train.Augmentation);
        Assert.Null(val.Augmentation);
        int d = Shape.Size, changed = 0;
        for (int epoch = 0; epoch < 2; epoch++)
            foreach (var (x, idx) in Epoch(train, epoch))
                for (int i = 0; i < idx.Length; i++)
                {
                    var expected = data.Features.Slice(idx[i] * d, d).ToArray();
                    var rng = AugmentRunner.SampleRng(8, epoch, idx[i]);
                    aug.Apply(expected, Shape, ref rng, new float[aug.ScratchSize(Shape)]);
                    var got = x.AsSpan(i * d, d).ToArray();
                    Assert.Equal(expected, got);
                    if (!got.AsSpan().SequenceEqual(data.Features.Slice(idx[i] * d, d))) changed++;
                }
        Assert.True(changed > 40, $"only {changed} of 46 training samples changed");
        foreach (var (x, idx) in Epoch(val, 0))
            for (int i = 0; i < idx.Length; i++) Assert.Equal(data.Features.Slice(idx[i] * d, d).ToArray(), x.AsSpan(i * d, d).ToArray());
        // Non-image samples cannot be augmented.
        var flat = Dataset.Classification("flat", new float[12], [4], [0, 1, 2], 3);
        Assert.Throws<ArgumentException>(() => new DataLoader(D, flat, 2, true, false, 1, augment: aug));
    }

    [Theory, Backends]
    public void PrefetchAndParallelGiveTheSameAugmentedBatches(string backend)
    {
        Use(backend);
        var data = Images(31);
        using var with = new DataLoader(D, data, 6, shuffle: true, dropLast: false, seed: 4, prefetch: true, augment: Pipeline());
        using var without = new DataLoader(D, data, 6, shuffle: true, dropLast: false, seed: 4, prefetch: false, augment: Pipeline());
        using var parallel = new DataLoader(D, data, 6, shuffle: true, dropLast: false, seed: 4, prefetch: true, augment: Pipeline(), augmentParallel: true);
        for (int epoch = 0; epoch < 2; epoch++)
        {
            var p = Epoch(with, epoch);
            var q = Epoch(without, epoch);
            var r = Epoch(parallel, epoch);
            Assert.Equal(q.Count, p.Count);
            for (int k = 0; k < p.Count; k++)
            {
                Assert.Equal(q[k].X, p[k].X);
                Assert.Equal(q[k].X, r[k].X);
            }
        }
        Assert.NotEqual(Epoch(with, 0)[0].X, Epoch(with, 1)[0].X);
    }
}

/// <summary>
/// Augmentation allocates nothing per batch, counted on the engine's threads (<see cref="EngineAllocations"/>): the
/// calling thread, the host pool's workers and the loader's prefetch thread. The pool is process-wide, so these run in
/// the steady-state collection, alone.
/// </summary>
[Collection(nameof(SteadyStateTests))]
public sealed class AugmentAllocationTests(BackendFixture f) : DeviceTestBase(f), IClassFixture<BackendFixture>
{
    [Fact]
    public void RunnerAllocatesNothingPerBatch()
    {
        var s = new ImageShape(1, 28, 28);
        int n = 128;
        var batch = AugmentTests.Images(n, s, 2);
        var idx = Enumerable.Range(0, n).ToArray();
        foreach (bool parallel in new[] { false, true })
        {
            var r = new AugmentRunner(AugmentTests.Pipeline(), s, 1, parallel);
            r.Apply(batch, n, 0, idx, 0);
            r.Apply(batch, n, 1, idx, 0);
            // The calling thread and the host pool's workers (which run ranges in the parallel case).
            long before = EngineAllocations.Now();
            for (int e = 2; e < 6; e++) r.Apply(batch, n, e, idx, 0);
            long grew = EngineAllocations.Now() - before;
            Assert.True(grew == 0, $"4 batches allocated {grew} bytes (parallel {parallel})");
        }
    }

    // An augmentation that allocates an array per image: the steady-state measure must see it, with and without prefetch.
    private sealed class AllocatingAugmentation : IAugmentation
    {
        public int ScratchSize(ImageShape shape) => 0;
        public void Apply(Span<float> image, ImageShape shape, ref SplitMix64 rng, Span<float> scratch) => image[0] = new float[16].Length;
    }

    // Managed bytes an epoch of 200 images (29 batches) allocates on the engine's threads after the first batch: the
    // consuming thread (copies to the device) and, with prefetch, the thread that gathers and augments.
    private long EpochAllocations(bool prefetch, IAugmentation augmentation)
    {
        var data = AugmentLoaderTests.Images(200);
        using var l = new DataLoader(D, data, 7, shuffle: true, dropLast: false, seed: 1, prefetch, augment: augmentation);
        Assert.Equal(prefetch, l.Prefetch);
        foreach (var _ in l.Batches(0)) { }
        long before = 0;
        int seen = 0;
        foreach (var b in l.Batches(1))
        {
            if (b.Index == 1) before = EngineAllocations.Now(l);
            seen++;
        }
        // The enumeration has ended: the prefetch thread has recorded its count for the last batch it gathered.
        long after = EngineAllocations.Now(l);
        Assert.Equal(29, seen);
        return after - before;
    }

    [Theory, BackendData(false), BackendData(true)]
    public void SteadyStateAllocatesNothing(string backend, bool prefetch)
    {
        Use(backend);
        Assert.SkipUnless(D.IsHost, "allocation is measured on the cpu device (ILGPU's copies may allocate on their own)");
        Assert.Equal(0, EpochAllocations(prefetch, AugmentLoaderTests.Pipeline()));
        // The measure covers the thread that does the work: with prefetch that is the loader's worker, not this thread.
        long allocating = EpochAllocations(prefetch, new AllocatingAugmentation());
        Assert.True(allocating >= 27 * 7 * 16 * sizeof(float), $"an augmentation allocating 64 B per image showed {allocating} bytes over 27 batches (prefetch {prefetch})");
    }
}
