using GpuNet.Init;
using GpuNet.Kernels;

namespace GpuNet.Data;

/// <summary>
/// Applies an <see cref="IAugmentation"/> to a batch of images in place. Sample i of epoch e is transformed with the
/// generator <see cref="SampleRng"/>(seed, e, i), i the sample's index in the data set, so the result is a pure
/// function of (seed, epoch, sample index, image): it depends neither on the batch a sample lands in nor on which
/// thread transforms it. With <see cref="Parallel"/>, the batch is cut into <see cref="HostSimd.PoolThreads"/>
/// contiguous ranges run on <see cref="HostSimd.For{TState}"/> (inline, in order, when the pool is busy); each range has
/// its own scratch, made at construction, so applying allocates nothing.
/// <para>
/// Measured on the 2-core (AVX-512) development machine, one MNIST-sized batch of 128 x 1 x 28 x 28, median of 1000:
/// flip(0.5) 22 us, random crop(2) 25 us, jitter(0.2, 0.2) 24 us, erasing(0.5) 17 us, rotation(15) 405 us (bilinear,
/// about 4 ns a pixel), crop + rotation + jitter + erasing 455 us, i.e. about 3.6 us per image; serial and parallel
/// (2 threads) came out the same within noise (455 vs 453 us for the full pipeline, 409 vs 409 us for rotation). The
/// batch is too short for the pool to pay: with the other core busy, the worker wakes after the calling thread has
/// already claimed every range (a probe of 8 items of 50 us each ran all 8 on the calling thread; items of 2 ms were
/// shared). On the loader's prefetch thread the other cores also train the current batch (the cpu device's host ops
/// use the same pool; the loop then runs inline), so the loader defaults to serial augmentation, which already hides
/// behind a training step of more than half a millisecond.
/// </para>
/// </summary>
public sealed class AugmentRunner
{
    // Keeps the augmentation streams apart from the loader's shuffle stream of the same seed ("AUGMENT1").
    private const ulong Salt = 0x4155474D454E5431UL;
    private readonly float[][] _scratch;
    // Several ranges per thread: a worker that wakes late leaves its ranges to the threads already running.
    private const int RangesPerThread = 4;

    /// <summary>A runner of <paramref name="augmentation"/> on images of <paramref name="shape"/>.</summary>
    /// <param name="augmentation">The transform (shared, read-only).</param>
    /// <param name="shape">The image shape.</param>
    /// <param name="seed">Seed of the per-sample generators.</param>
    /// <param name="parallel">Split batches across the host pool's threads.</param>
    public AugmentRunner(IAugmentation augmentation, ImageShape shape, ulong seed, bool parallel)
    {
        ArgumentNullException.ThrowIfNull(augmentation);
        if (shape.Channels < 1 || shape.Height < 1 || shape.Width < 1)
            throw new ArgumentOutOfRangeException(nameof(shape), shape, "AugmentRunner: every extent of the image shape must be >= 1");
        Augmentation = augmentation;
        Shape = shape;
        Seed = seed;
        Parallel = parallel && HostSimd.PoolThreads > 1;
        int ranges = Parallel ? HostSimd.PoolThreads * RangesPerThread : 1;
        int scratch = augmentation.ScratchSize(shape);
        _scratch = new float[ranges][];
        for (int r = 0; r < ranges; r++) _scratch[r] = new float[scratch];
    }

    /// <summary>The transform.</summary>
    public IAugmentation Augmentation { get; }
    /// <summary>The image shape.</summary>
    public ImageShape Shape { get; }
    /// <summary>Seed of the per-sample generators.</summary>
    public ulong Seed { get; }
    /// <summary>True when batches are split across the host pool.</summary>
    public bool Parallel { get; }

    /// <summary>
    /// The generator of sample <paramref name="sampleIndex"/> in epoch <paramref name="epoch"/>:
    /// <c>SplitMix64(At(At(seed ^ salt, epoch), sampleIndex))</c>, salt a fixed constant.
    /// </summary>
    public static SplitMix64 SampleRng(ulong seed, int epoch, int sampleIndex)
        => new(SplitMix64.At(SplitMix64.At(seed ^ Salt, (ulong)epoch), (ulong)sampleIndex));

    /// <summary>
    /// Transforms images [0, <paramref name="count"/>) of <paramref name="batch"/> in place; image k is sample
    /// <paramref name="indices"/>[<paramref name="start"/> + k] of the data set.
    /// </summary>
    /// <param name="batch">At least count * Shape.Size floats.</param>
    /// <param name="count">Images to transform.</param>
    /// <param name="epoch">The epoch (>= 0).</param>
    /// <param name="indices">Data-set indices (the loader's epoch order).</param>
    /// <param name="start">Where this batch's indices start in <paramref name="indices"/>.</param>
    public void Apply(float[] batch, int count, int epoch, int[] indices, int start)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(indices);
        if (epoch < 0) throw new ArgumentOutOfRangeException(nameof(epoch), epoch, "AugmentRunner: the epoch must be >= 0");
        if (count < 0 || (long)count * Shape.Size > batch.Length)
            throw new ArgumentOutOfRangeException(nameof(count), count, $"AugmentRunner: {count} images of {Shape.Size} floats do not fit a batch of {batch.Length} floats");
        if (start < 0 || start + count > indices.Length)
            throw new ArgumentOutOfRangeException(nameof(start), start, $"AugmentRunner: indices [{start}, {start + count}) are outside the {indices.Length} given");
        int ranges = Math.Min(_scratch.Length, count);
        HostSimd.For(ranges, Parallel, (this, batch, count, ranges, epoch, indices, start),
            static (s, r) => s.Item1.Range(s.batch, s.count * r / s.ranges, s.count * (r + 1) / s.ranges, s.epoch, s.indices, s.start, r));
    }

    private void Range(float[] batch, int from, int to, int epoch, int[] indices, int start, int range)
    {
        int size = Shape.Size;
        var scratch = _scratch[range].AsSpan();
        for (int k = from; k < to; k++)
        {
            var rng = SampleRng(Seed, epoch, indices[start + k]);
            Augmentation.Apply(batch.AsSpan(k * size, size), Shape, ref rng, scratch);
        }
    }
}
