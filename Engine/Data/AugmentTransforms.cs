using GpuNet.Init;

namespace GpuNet.Data;

/// <summary>
/// Augmentations applied one after another to the same image, all drawing from the same per-sample generator, so
/// the whole pipeline is a pure function of (image, generator state). Made by <see cref="Augment.Compose"/>.
/// </summary>
public sealed class AugmentPipeline : IAugmentation
{
    private readonly IAugmentation[] _steps;

    /// <summary>A pipeline of <paramref name="steps"/> (copied).</summary>
    /// <exception cref="ArgumentException">No step, or a null step.</exception>
    public AugmentPipeline(params IAugmentation[] steps)
    {
        ArgumentNullException.ThrowIfNull(steps);
        if (steps.Length == 0) throw new ArgumentException("Compose: 'steps' is empty, expected at least one augmentation", nameof(steps));
        for (int i = 0; i < steps.Length; i++)
            if (steps[i] is null) throw new ArgumentException($"Compose: step {i} is null", nameof(steps));
        _steps = (IAugmentation[])steps.Clone();
    }

    /// <summary>The steps, in order.</summary>
    public IReadOnlyList<IAugmentation> Steps => _steps;

    /// <inheritdoc/>
    public int ScratchSize(ImageShape shape)
    {
        int n = 0;
        foreach (var s in _steps) n = Math.Max(n, s.ScratchSize(shape));
        return n;
    }

    /// <inheritdoc/>
    public void Apply(Span<float> image, ImageShape shape, ref SplitMix64 rng, Span<float> scratch)
    {
        foreach (var s in _steps) s.Apply(image, shape, ref rng, scratch);
    }
}

/// <summary>Left-right mirror with probability <see cref="P"/>; draws one uniform per image.</summary>
public sealed class RandomHorizontalFlip : IAugmentation
{
    /// <summary>A flip with probability <paramref name="p"/> in [0, 1].</summary>
    public RandomHorizontalFlip(double p)
    {
        Augment.CheckProbability(p, nameof(p), "HorizontalFlip");
        P = p;
    }

    /// <summary>Probability of a flip.</summary>
    public double P { get; }

    /// <inheritdoc/>
    public int ScratchSize(ImageShape shape) => 0;

    /// <inheritdoc/>
    public void Apply(Span<float> image, ImageShape shape, ref SplitMix64 rng, Span<float> scratch)
    {
        if (rng.NextDouble() < P) Augment.FlipHorizontal(image, shape);
    }
}

/// <summary>Rotation by a uniform angle in [-Degrees, Degrees], bilinear (see <see cref="Augment.Rotate"/>); one draw per image.</summary>
public sealed class RandomRotation : IAugmentation
{
    /// <summary>A rotation of at most <paramref name="degrees"/> in [0, 180], <paramref name="fill"/> outside.</summary>
    public RandomRotation(double degrees, float fill)
    {
        if (!(degrees >= 0 && degrees <= 180))
            throw new ArgumentOutOfRangeException(nameof(degrees), degrees, $"Rotation: 'degrees' is {degrees}, expected a value in [0, 180]");
        Augment.CheckFinite(fill, nameof(fill), "Rotation");
        Degrees = degrees;
        Fill = fill;
    }

    /// <summary>Largest rotation, degrees.</summary>
    public double Degrees { get; }
    /// <summary>Value brought in from outside the image.</summary>
    public float Fill { get; }

    /// <inheritdoc/>
    public int ScratchSize(ImageShape shape) => shape.Size;

    /// <inheritdoc/>
    public void Apply(Span<float> image, ImageShape shape, ref SplitMix64 rng, Span<float> scratch)
    {
        double angle = (2 * rng.NextDouble() - 1) * Degrees;
        var copy = scratch[..shape.Size];
        image.CopyTo(copy);
        Augment.Rotate(copy, image, shape, angle, Fill);
    }
}

/// <summary>
/// Pad by <see cref="Padding"/> then a random crop of the original size: offsets oy, ox uniform integers in
/// [0, 2 Padding] (oy drawn first), i.e. the shift (Padding - oy, Padding - ox) (see <see cref="Augment.Shift"/>).
/// </summary>
public sealed class RandomShiftCrop : IAugmentation
{
    /// <summary>A crop of the image padded by <paramref name="padding"/> (>= 0) pixels of <paramref name="fill"/>.</summary>
    public RandomShiftCrop(int padding, float fill)
    {
        if (padding < 0) throw new ArgumentOutOfRangeException(nameof(padding), padding, $"RandomCrop: 'padding' is {padding}, expected a value >= 0");
        Augment.CheckFinite(fill, nameof(fill), "RandomCrop");
        Padding = padding;
        Fill = fill;
    }

    /// <summary>Pixels of padding on each side.</summary>
    public int Padding { get; }
    /// <summary>Value of the padding.</summary>
    public float Fill { get; }

    /// <inheritdoc/>
    public int ScratchSize(ImageShape shape) => shape.Size;

    /// <inheritdoc/>
    public void Apply(Span<float> image, ImageShape shape, ref SplitMix64 rng, Span<float> scratch)
    {
        int span = 2 * Padding + 1;
        int oy = (int)(rng.NextDouble() * span), ox = (int)(rng.NextDouble() * span);
        if (oy == Padding && ox == Padding) return;
        var copy = scratch[..shape.Size];
        image.CopyTo(copy);
        Augment.Shift(copy, image, shape, Padding - oy, Padding - ox, Fill);
    }
}

/// <summary>
/// Grayscale ColorJitter: brightness factor b uniform in [1-B, 1+B], contrast factor c uniform in [1-C, 1+C]; the
/// order (brightness first or contrast first) is drawn with probability 1/2 each, as torchvision draws a random
/// permutation; each adjustment clamps to [0, 1]. Draws: the order, then b (when B > 0), then c (when C > 0).
/// </summary>
public sealed class BrightnessContrastJitter : IAugmentation
{
    /// <summary>Jitter of brightness <paramref name="brightness"/> and contrast <paramref name="contrast"/>, each in [0, 1).</summary>
    public BrightnessContrastJitter(double brightness, double contrast)
    {
        if (!(brightness >= 0 && brightness < 1))
            throw new ArgumentOutOfRangeException(nameof(brightness), brightness, $"ColorJitter: 'brightness' is {brightness}, expected a value in [0, 1)");
        if (!(contrast >= 0 && contrast < 1))
            throw new ArgumentOutOfRangeException(nameof(contrast), contrast, $"ColorJitter: 'contrast' is {contrast}, expected a value in [0, 1)");
        Brightness = brightness;
        Contrast = contrast;
    }

    /// <summary>B: the brightness factor lies in [1-B, 1+B].</summary>
    public double Brightness { get; }
    /// <summary>C: the contrast factor lies in [1-C, 1+C].</summary>
    public double Contrast { get; }

    /// <inheritdoc/>
    public int ScratchSize(ImageShape shape) => 0;

    /// <inheritdoc/>
    public void Apply(Span<float> image, ImageShape shape, ref SplitMix64 rng, Span<float> scratch)
    {
        bool contrastFirst = rng.NextDouble() < 0.5;
        float b = Brightness > 0 ? (float)(1 - Brightness + 2 * Brightness * rng.NextDouble()) : 1f;
        float c = Contrast > 0 ? (float)(1 - Contrast + 2 * Contrast * rng.NextDouble()) : 1f;
        if (contrastFirst && Contrast > 0) Augment.AdjustContrast(image, shape, c);
        if (Brightness > 0) Augment.AdjustBrightness(image, b);
        if (!contrastFirst && Contrast > 0) Augment.AdjustContrast(image, shape, c);
    }
}

/// <summary>
/// torchvision RandomErasing (see <see cref="Augment.RandomErasing"/>). Draws: one uniform for the coin; then per
/// attempt an area fraction, a log aspect ratio, and (when the rectangle fits) its top row and left column.
/// h = round(sqrt(area * r)), w = round(sqrt(area / r)) with round half to even, as Python's round.
/// </summary>
public sealed class RandomErase : IAugmentation
{
    /// <summary>At most this many rectangles are drawn per erased image.</summary>
    public const int Attempts = 10;

    /// <summary>RandomErasing with the given parameters (validated as <see cref="Augment.RandomErasing"/> documents).</summary>
    public RandomErase(double p, double scaleLo, double scaleHi, double ratioLo, double ratioHi, float fill)
    {
        Augment.CheckProbability(p, nameof(p), "RandomErasing");
        if (!(scaleLo > 0 && scaleLo <= 1))
            throw new ArgumentOutOfRangeException(nameof(scaleLo), scaleLo, $"RandomErasing: 'scaleLo' is {scaleLo}, expected 0 < scaleLo <= scaleHi <= 1");
        if (!(scaleHi >= scaleLo && scaleHi <= 1))
            throw new ArgumentOutOfRangeException(nameof(scaleHi), scaleHi, $"RandomErasing: 'scaleHi' is {scaleHi}, expected scaleLo ({scaleLo}) <= scaleHi <= 1");
        if (!(ratioLo > 0 && double.IsFinite(ratioLo)))
            throw new ArgumentOutOfRangeException(nameof(ratioLo), ratioLo, $"RandomErasing: 'ratioLo' is {ratioLo}, expected 0 < ratioLo <= ratioHi");
        if (!(ratioHi >= ratioLo && double.IsFinite(ratioHi)))
            throw new ArgumentOutOfRangeException(nameof(ratioHi), ratioHi, $"RandomErasing: 'ratioHi' is {ratioHi}, expected ratioLo ({ratioLo}) <= ratioHi (finite)");
        Augment.CheckFinite(fill, nameof(fill), "RandomErasing");
        P = p; ScaleLo = scaleLo; ScaleHi = scaleHi; RatioLo = ratioLo; RatioHi = ratioHi; Fill = fill;
    }

    /// <summary>Probability of erasing.</summary>
    public double P { get; }
    /// <summary>Smallest area fraction.</summary>
    public double ScaleLo { get; }
    /// <summary>Largest area fraction.</summary>
    public double ScaleHi { get; }
    /// <summary>Smallest aspect ratio h / w.</summary>
    public double RatioLo { get; }
    /// <summary>Largest aspect ratio h / w.</summary>
    public double RatioHi { get; }
    /// <summary>Value of erased pixels.</summary>
    public float Fill { get; }

    /// <inheritdoc/>
    public int ScratchSize(ImageShape shape) => 0;

    /// <summary>
    /// The rectangle this erasure picks with <paramref name="rng"/>, or false (image kept) when the coin says no or
    /// no attempt fits.
    /// </summary>
    public bool Pick(ImageShape shape, ref SplitMix64 rng, out int top, out int left, out int height, out int width)
    {
        top = left = height = width = 0;
        if (!(rng.NextDouble() < P)) return false;
        double area = (double)shape.Height * shape.Width;
        double logLo = Math.Log(RatioLo), logHi = Math.Log(RatioHi);
        for (int attempt = 0; attempt < Attempts; attempt++)
        {
            double target = area * (ScaleLo + (ScaleHi - ScaleLo) * rng.NextDouble());
            double ratio = Math.Exp(logLo + (logHi - logLo) * rng.NextDouble());
            int h = (int)Math.Round(Math.Sqrt(target * ratio));
            int w = (int)Math.Round(Math.Sqrt(target / ratio));
            if (!(h < shape.Height && w < shape.Width)) continue;
            top = (int)(rng.NextDouble() * (shape.Height - h + 1));
            left = (int)(rng.NextDouble() * (shape.Width - w + 1));
            height = h; width = w;
            return true;
        }
        return false;
    }

    /// <inheritdoc/>
    public void Apply(Span<float> image, ImageShape shape, ref SplitMix64 rng, Span<float> scratch)
    {
        if (Pick(shape, ref rng, out int top, out int left, out int h, out int w))
            Augment.Erase(image, shape, top, left, h, w, Fill);
    }
}
