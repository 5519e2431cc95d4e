using System.Numerics.Tensors;
using GpuNet.Init;

namespace GpuNet.Data;

/// <summary>The shape of one image sample: (Channels, Height, Width), stored row-major, channel planes one after another.</summary>
/// <param name="Channels">C, at least 1.</param>
/// <param name="Height">H, at least 1.</param>
/// <param name="Width">W, at least 1.</param>
public readonly record struct ImageShape(int Channels, int Height, int Width)
{
    /// <summary>C * H * W, the floats of one image.</summary>
    public int Size => Channels * Height * Width;

    /// <summary>H * W, the floats of one channel plane.</summary>
    public int Plane => Height * Width;

    /// <summary>
    /// The image shape of a sample shape: (C, H, W) as is, (H, W) as one channel.
    /// </summary>
    /// <param name="sampleShape">A data set's sample shape.</param>
    /// <exception cref="ArgumentException">The shape is not of rank 2 or 3, or has a zero extent.</exception>
    public static ImageShape FromSampleShape(ReadOnlySpan<int> sampleShape)
    {
        ImageShape s = sampleShape.Length switch
        {
            3 => new(sampleShape[0], sampleShape[1], sampleShape[2]),
            2 => new(1, sampleShape[0], sampleShape[1]),
            _ => throw new ArgumentException($"augmentation: sample shape {ShapeUtil.Format(sampleShape.ToArray())} is not an image; expected (C, H, W) or (H, W)", nameof(sampleShape)),
        };
        if (s.Channels < 1 || s.Height < 1 || s.Width < 1)
            throw new ArgumentException($"augmentation: sample shape {ShapeUtil.Format(sampleShape.ToArray())} has an empty extent", nameof(sampleShape));
        return s;
    }
}

/// <summary>
/// A random transform of one (C, H, W) float image, in place. Implementations hold only their parameters (they are
/// shared by every thread); the randomness comes from the generator passed to <see cref="Apply"/>, which the
/// caller derives from (seed, epoch, sample index) (see <see cref="AugmentRunner.SampleRng"/>), and any working
/// memory from <c>scratch</c>, so an application allocates nothing.
/// </summary>
public interface IAugmentation
{
    /// <summary>Floats of scratch <see cref="Apply"/> needs for an image of <paramref name="shape"/> (0 if none).</summary>
    /// <param name="shape">The image shape.</param>
    int ScratchSize(ImageShape shape);

    /// <summary>Transforms <paramref name="image"/> in place, drawing its random choices from <paramref name="rng"/>.</summary>
    /// <param name="image">One image, <paramref name="shape"/>.Size floats.</param>
    /// <param name="shape">Its shape.</param>
    /// <param name="rng">The sample's generator (advanced by the draws).</param>
    /// <param name="scratch">At least <see cref="ScratchSize"/> floats, contents undefined on entry and exit.</param>
    void Apply(Span<float> image, ImageShape shape, ref SplitMix64 rng, Span<float> scratch);
}

/// <summary>
/// Factories of the augmentations (each validates its parameters and names the argument, the value and the valid
/// range on error) and the deterministic image operations they are made of.
/// </summary>
public static class Augment
{
    /// <summary>Applies <paramref name="steps"/> in order, all drawing from the same per-sample generator.</summary>
    /// <param name="steps">At least one augmentation.</param>
    public static AugmentPipeline Compose(params IAugmentation[] steps) => new(steps);

    /// <summary>Mirrors the image left-right with probability <paramref name="p"/> (torchvision RandomHorizontalFlip).</summary>
    /// <param name="p">Probability in [0, 1].</param>
    public static IAugmentation HorizontalFlip(double p = 0.5) => new RandomHorizontalFlip(p);

    /// <summary>
    /// Rotates by an angle uniform in [-<paramref name="degrees"/>, <paramref name="degrees"/>] about the image centre,
    /// bilinear, with <paramref name="fill"/> outside (torchvision RandomRotation with bilinear interpolation).
    /// </summary>
    /// <param name="degrees">Largest rotation in degrees, in [0, 180].</param>
    /// <param name="fill">Value of the pixels brought in from outside the image.</param>
    public static IAugmentation Rotation(double degrees, float fill = 0f) => new RandomRotation(degrees, fill);

    /// <summary>
    /// Pads by <paramref name="padding"/> pixels of <paramref name="fill"/> on every side and takes a random crop of
    /// the original size (torchvision RandomCrop(size, padding), the CIFAR-style random shift).
    /// </summary>
    /// <param name="padding">Pixels of padding, >= 0.</param>
    /// <param name="fill">Value of the padding.</param>
    public static IAugmentation RandomCrop(int padding, float fill = 0f) => new RandomShiftCrop(padding, fill);

    /// <summary>
    /// Grayscale colour jitter (torchvision ColorJitter(brightness, contrast)): a brightness factor uniform in
    /// [1-<paramref name="brightness"/>, 1+<paramref name="brightness"/>] and a contrast factor uniform in
    /// [1-<paramref name="contrast"/>, 1+<paramref name="contrast"/>], applied in a random order, each followed by a
    /// clamp to [0, 1]. A factor of 0 leaves that adjustment out (and draws nothing for it).
    /// </summary>
    /// <param name="brightness">Brightness jitter B in [0, 1).</param>
    /// <param name="contrast">Contrast jitter C in [0, 1).</param>
    public static IAugmentation ColorJitter(double brightness, double contrast) => new BrightnessContrastJitter(brightness, contrast);

    /// <summary>
    /// torchvision RandomErasing: with probability <paramref name="p"/>, up to 10 attempts to draw a rectangle of area
    /// fraction in [scaleLo, scaleHi] and aspect ratio log-uniform in [ratioLo, ratioHi] that fits strictly inside the
    /// image; the first that fits is set to <paramref name="fill"/> in every channel (none fits: the image is kept).
    /// </summary>
    /// <param name="p">Probability in [0, 1].</param>
    /// <param name="scaleLo">Smallest area fraction, 0 &lt; scaleLo &lt;= scaleHi.</param>
    /// <param name="scaleHi">Largest area fraction, scaleLo &lt;= scaleHi &lt;= 1.</param>
    /// <param name="ratioLo">Smallest aspect ratio (h / w), 0 &lt; ratioLo &lt;= ratioHi.</param>
    /// <param name="ratioHi">Largest aspect ratio, >= ratioLo.</param>
    /// <param name="fill">Value of the erased pixels.</param>
    public static IAugmentation RandomErasing(double p = 0.5, double scaleLo = 0.02, double scaleHi = 0.33, double ratioLo = 0.3, double ratioHi = 3.3, float fill = 0f)
        => new RandomErase(p, scaleLo, scaleHi, ratioLo, ratioHi, fill);

    // ---- deterministic operations ----

    /// <summary>Mirrors every row of every channel of <paramref name="image"/> in place (exact).</summary>
    public static void FlipHorizontal(Span<float> image, ImageShape shape)
    {
        CheckImage(image.Length, shape, nameof(image));
        int w = shape.Width;
        for (int r = 0, rows = shape.Channels * shape.Height; r < rows; r++) image.Slice(r * w, w).Reverse();
    }

    /// <summary>
    /// <paramref name="destination"/> = <paramref name="source"/> rotated by <paramref name="degrees"/>
    /// counter-clockwise as displayed (row 0 at the top) about the centre ((W-1)/2, (H-1)/2), bilinear: output pixel
    /// (y, x) samples the source at (cy + sin(a) dx + cos(a) dy, cx + cos(a) dx - sin(a) dy), dx = x - cx,
    /// dy = y - cy, each of the four neighbours outside the image counting as <paramref name="fill"/>.
    /// </summary>
    public static void Rotate(ReadOnlySpan<float> source, Span<float> destination, ImageShape shape, double degrees, float fill)
    {
        CheckImage(source.Length, shape, nameof(source));
        CheckImage(destination.Length, shape, nameof(destination));
        double a = degrees * (Math.PI / 180.0);
        float cos = (float)Math.Cos(a), sin = (float)Math.Sin(a);
        int h = shape.Height, w = shape.Width;
        float cx = (w - 1) * 0.5f, cy = (h - 1) * 0.5f;
        for (int c = 0; c < shape.Channels; c++)
        {
            var src = source.Slice(c * shape.Plane, shape.Plane);
            var dst = destination.Slice(c * shape.Plane, shape.Plane);
            for (int y = 0; y < h; y++)
            {
                float dy = y - cy;
                for (int x = 0; x < w; x++)
                {
                    float dx = x - cx;
                    float sx = cx + cos * dx - sin * dy, sy = cy + sin * dx + cos * dy;
                    float fx = MathF.Floor(sx), fy = MathF.Floor(sy);
                    float tx = sx - fx, ty = sy - fy;
                    int x0 = (int)fx, y0 = (int)fy;
                    float v00, v01, v10, v11;
                    if ((uint)x0 < (uint)(w - 1) && (uint)y0 < (uint)(h - 1))
                    {
                        int i = y0 * w + x0;
                        v00 = src[i]; v01 = src[i + 1]; v10 = src[i + w]; v11 = src[i + w + 1];
                    }
                    else
                    {
                        v00 = At(src, h, w, y0, x0, fill); v01 = At(src, h, w, y0, x0 + 1, fill);
                        v10 = At(src, h, w, y0 + 1, x0, fill); v11 = At(src, h, w, y0 + 1, x0 + 1, fill);
                    }
                    float top = v00 + tx * (v01 - v00), bottom = v10 + tx * (v11 - v10);
                    dst[y * w + x] = top + ty * (bottom - top);
                }
            }
        }
    }

    private static float At(ReadOnlySpan<float> plane, int h, int w, int y, int x, float fill)
        => (uint)y < (uint)h && (uint)x < (uint)w ? plane[y * w + x] : fill;

    /// <summary>
    /// <paramref name="destination"/>(c, y, x) = <paramref name="source"/>(c, y - dy, x - dx), or <paramref name="fill"/>
    /// where that lies outside: the image moved down by <paramref name="dy"/> and right by <paramref name="dx"/>.
    /// A random crop of the image padded by k at offset (oy, ox) is the shift (k - oy, k - ox).
    /// </summary>
    public static void Shift(ReadOnlySpan<float> source, Span<float> destination, ImageShape shape, int dy, int dx, float fill)
    {
        CheckImage(source.Length, shape, nameof(source));
        CheckImage(destination.Length, shape, nameof(destination));
        int h = shape.Height, w = shape.Width;
        // Source columns x - dx in [0, w) for x in [x0, x1).
        int x0 = Math.Clamp(dx, 0, w), x1 = Math.Clamp(w + dx, 0, w);
        for (int c = 0; c < shape.Channels; c++)
            for (int y = 0; y < h; y++)
            {
                var row = destination.Slice(c * shape.Plane + y * w, w);
                int sy = y - dy;
                if ((uint)sy >= (uint)h || x0 >= x1) { row.Fill(fill); continue; }
                row[..x0].Fill(fill);
                source.Slice(c * shape.Plane + sy * w + x0 - dx, x1 - x0).CopyTo(row[x0..x1]);
                row[x1..].Fill(fill);
            }
    }

    /// <summary>
    /// Brightness: image = clamp(<paramref name="factor"/> * image, 0, 1) (torchvision adjust_brightness on a float image).
    /// </summary>
    public static void AdjustBrightness(Span<float> image, float factor)
    {
        TensorPrimitives.Multiply(image, factor, image);
        Clamp01(image);
    }

    private static void Clamp01(Span<float> image)
    {
        TensorPrimitives.Max(image, 0f, image);
        TensorPrimitives.Min(image, 1f, image);
    }

    /// <summary>
    /// Contrast: image = clamp(<paramref name="factor"/> * image + (1 - factor) * m, 0, 1), m the image's grayscale mean
    /// (the plain mean for 1 channel; for 3 channels the mean of 0.2989 R + 0.587 G + 0.114 B, as torchvision
    /// adjust_contrast, accumulated in float64; otherwise the float32 SIMD mean over all elements).
    /// </summary>
    public static void AdjustContrast(Span<float> image, ImageShape shape, float factor)
    {
        CheckImage(image.Length, shape, nameof(image));
        double sum = 0;
        if (shape.Channels == 3)
        {
            int p = shape.Plane;
            for (int i = 0; i < p; i++) sum += 0.2989 * image[i] + 0.587 * image[p + i] + 0.114 * image[2 * p + i];
            sum /= p;
        }
        else sum = (double)TensorPrimitives.Sum<float>(image) / image.Length;
        float blend = (1f - factor) * (float)sum;
        TensorPrimitives.Multiply(image, factor, image);
        TensorPrimitives.Add(image, blend, image);
        Clamp01(image);
    }

    /// <summary>Sets rows [top, top+height) x columns [left, left+width) of every channel to <paramref name="fill"/>.</summary>
    public static void Erase(Span<float> image, ImageShape shape, int top, int left, int height, int width, float fill)
    {
        CheckImage(image.Length, shape, nameof(image));
        if (top < 0 || left < 0 || height < 0 || width < 0 || top + height > shape.Height || left + width > shape.Width)
            throw new ArgumentOutOfRangeException(nameof(height), $"Erase: rectangle (top {top}, left {left}, {height} x {width}) is not inside a {shape.Height} x {shape.Width} image");
        for (int c = 0; c < shape.Channels; c++)
            for (int y = top; y < top + height; y++) image.Slice(c * shape.Plane + y * shape.Width + left, width).Fill(fill);
    }

    private static void CheckImage(int length, ImageShape shape, string arg)
    {
        if (length != shape.Size)
            throw new ArgumentException($"augmentation: '{arg}' has {length} floats, an image of ({shape.Channels}, {shape.Height}, {shape.Width}) has {shape.Size}", arg);
    }

    // ---- parameter checks ----

    internal static void CheckProbability(double p, string arg, string op)
    {
        if (!(p >= 0 && p <= 1)) throw new ArgumentOutOfRangeException(arg, p, $"{op}: '{arg}' is {p}, expected a probability in [0, 1]");
    }

    internal static void CheckFinite(float v, string arg, string op)
    {
        if (!float.IsFinite(v)) throw new ArgumentOutOfRangeException(arg, v, $"{op}: '{arg}' is {v}, expected a finite value");
    }
}
