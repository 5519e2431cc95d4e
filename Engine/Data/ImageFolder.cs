using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;

namespace GpuNet.Data;

/// <summary>How <see cref="ImageFolder"/> turns image files into features.</summary>
/// <param name="Height">Resize every image to this height (bicubic, aspect ratio not kept); null keeps the files' size, which must then be the same for all.</param>
/// <param name="Width">Resize width; given together with <paramref name="Height"/> or not at all.</param>
/// <param name="Channels">1: grayscale, the BT.709 luminance 0.2126 R + 0.7152 G + 0.0722 B; 3: R, G, B planes. Alpha is dropped.</param>
/// <param name="Scale">True: values in [0, 1] (byte / 255, as <see cref="Idx"/> does); false: raw 0..255.</param>
public sealed record ImageFolderOptions(int? Height = null, int? Width = null, int Channels = 1, bool Scale = true)
{
    internal void Validate()
    {
        if (Channels is not (1 or 3))
            throw new ArgumentOutOfRangeException(nameof(Channels), Channels, "image channels must be 1 (grayscale) or 3 (RGB)");
        if (Height.HasValue != Width.HasValue)
            throw new ArgumentException($"give both Height and Width or neither, got Height={Height?.ToString() ?? "null"}, Width={Width?.ToString() ?? "null"}", nameof(Height));
        if (Height is < 1 || Width is < 1)
            throw new ArgumentOutOfRangeException(nameof(Height), $"{Height}x{Width}", "the resize target must be at least 1x1");
    }
}

/// <summary>Images without labels (a flat folder), for predict: one file name per sample, in ordinal name order.</summary>
public sealed class ImageSet
{
    private readonly float[] _features;
    private readonly int[] _sampleShape;
    private readonly string[] _files;

    internal ImageSet(float[] features, int[] sampleShape, string[] files)
    {
        _features = features;
        _sampleShape = sampleShape;
        _files = files;
    }

    /// <summary>Number of images.</summary>
    public int Count => _files.Length;
    /// <summary>Shape of one image's features: (Channels, Height, Width).</summary>
    public IReadOnlyList<int> SampleShape => _sampleShape;
    /// <summary>All features: (Count, Channels, Height, Width) row-major.</summary>
    public ReadOnlySpan<float> Features => _features;
    /// <summary>Full path of each image, in sample order.</summary>
    public IReadOnlyList<string> Files => _files;
}

/// <summary>
/// Loads folders of PNG, JPEG and BMP images (decoded by SixLabors.ImageSharp) into features of shape
/// (Channels, Height, Width). Two layouts: <c>root/&lt;class&gt;/*.png</c> (<see cref="LoadClasses(string, ImageFolderOptions?)"/>: class names
/// sorted ordinally give the label indices, as torchvision's ImageFolder does) and a flat folder of images
/// (<see cref="LoadFlat"/>, no labels). Every non-hidden file in an image folder must be an image; hidden entries
/// (name starting with '.') are skipped. Nothing is returned unless every file was read.
/// </summary>
public static class ImageFolder
{
    /// <summary>The file extensions read (case-insensitive).</summary>
    public static IReadOnlyList<string> Extensions { get; } = [".png", ".jpg", ".jpeg", ".bmp"];

    /// <summary>True when <paramref name="root"/> holds (non-hidden) subfolders, i.e. the class layout.</summary>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    public static bool HasClassFolders(string root) => Subfolders(root).Length > 0;

    /// <summary>
    /// Reads <c>root/&lt;class&gt;/&lt;image&gt;</c> into a classification <see cref="Dataset"/> named after the
    /// folder; samples are ordered by class, then by file name (ordinal).
    /// </summary>
    /// <param name="root">Folder holding one subfolder per class.</param>
    /// <param name="options">Resize, channels and scaling (default: grayscale, no resize, [0, 1]).</param>
    /// <param name="files">Full path of each sample's file, in sample order.</param>
    /// <exception cref="DataFormatException">No class folder, a class folder without images, a file at the root,
    /// a file that is not a readable image, or sizes that differ when no resize is given.</exception>
    public static Dataset LoadClasses(string root, ImageFolderOptions? options, out IReadOnlyList<string> files)
    {
        options ??= new ImageFolderOptions();
        options.Validate();
        var classes = Subfolders(root);
        if (classes.Length == 0)
            throw new DataFormatException(root, "no class folder: expected root/<class>/<image> with at least one class subfolder, found none");
        var stray = VisibleFiles(root);
        if (stray.Length > 0)
            throw new DataFormatException(stray[0], $"a file beside the class folders of {root}: expected only subfolders (one per class) there");
        var paths = new List<string>();
        var labels = new List<int>();
        for (int c = 0; c < classes.Length; c++)
        {
            var images = VisibleFiles(classes[c]);
            if (images.Length == 0)
                throw new DataFormatException(classes[c], $"class folder '{Path.GetFileName(classes[c])}' holds no image, expected at least one {string.Join("/", Extensions)} file");
            paths.AddRange(images);
            labels.AddRange(Enumerable.Repeat(c, images.Length));
        }
        var (features, shape) = Decode(paths, options);
        files = paths.ToArray();
        string[] names = classes.Select(c => Path.GetFileName(c)).ToArray();
        return Dataset.Wrap(Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(root))), features, shape, labels.ToArray(), classes.Length, null, [1], names);
    }

    /// <summary>Same as <see cref="LoadClasses(string, ImageFolderOptions?, out IReadOnlyList{string})"/>, without the file list.</summary>
    public static Dataset LoadClasses(string root, ImageFolderOptions? options = null) => LoadClasses(root, options, out _);

    /// <summary>Reads a flat folder of images (no subfolders, no labels), in ordinal file-name order.</summary>
    /// <param name="folder">Folder holding only image files.</param>
    /// <param name="options">Resize, channels and scaling (default: grayscale, no resize, [0, 1]).</param>
    /// <exception cref="DataFormatException">No image, a subfolder, a file that is not a readable image, or sizes
    /// that differ when no resize is given.</exception>
    public static ImageSet LoadFlat(string folder, ImageFolderOptions? options = null)
    {
        options ??= new ImageFolderOptions();
        options.Validate();
        var sub = Subfolders(folder);
        if (sub.Length > 0)
            throw new DataFormatException(sub[0], $"a subfolder in the flat image folder {folder}: expected only image files (use LoadClasses for root/<class>/<image>)");
        var paths = VisibleFiles(folder);
        if (paths.Length == 0)
            throw new DataFormatException(folder, $"the folder holds no image, expected at least one {string.Join("/", Extensions)} file");
        var (features, shape) = Decode(paths, options);
        return new ImageSet(features, shape, paths);
    }

    private static string[] Subfolders(string dir)
    {
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"image folder {dir} does not exist");
        return Directory.GetDirectories(dir).Where(d => !Path.GetFileName(d).StartsWith('.')).Order(StringComparer.Ordinal).ToArray();
    }

    private static string[] VisibleFiles(string dir)
        => Directory.GetFiles(dir).Where(f => !Path.GetFileName(f).StartsWith('.')).Order(StringComparer.Ordinal).ToArray();

    // features: (paths.Count, C, H, W)
    private static (float[] Features, int[] Shape) Decode(IReadOnlyList<string> paths, ImageFolderOptions o)
    {
        float[]? features = null;
        int h = 0, w = 0;
        string first = paths[0];
        float div = o.Scale ? 255f : 1f; // division, not * (1/255): exactly b/255 in float32, as Idx
        for (int i = 0; i < paths.Count; i++)
        {
            string path = paths[i];
            string ext = Path.GetExtension(path);
            if (!Extensions.Contains(ext, StringComparer.OrdinalIgnoreCase))
                throw new DataFormatException(path, $"not an image file: extension '{ext}', expected one of {string.Join(", ", Extensions)}");
            using var image = Open(path);
            if (o.Height is int th && o.Width is int tw)
            {
                if (image.Height != th || image.Width != tw) image.Mutate(x => x.Resize(tw, th));
            }
            if (features is null)
            {
                h = image.Height; w = image.Width;
                features = new float[checked((long)paths.Count * o.Channels * h * w)];
            }
            else if (image.Height != h || image.Width != w)
                throw new DataFormatException(path, $"image size {image.Height}x{image.Width} (height x width) differs from {h}x{w} of {first}; give a resize target (height and width) to mix sizes");
            int plane = h * w, offset = i * o.Channels * plane;
            var f = features;
            image.ProcessPixelRows(rows =>
            {
                for (int y = 0; y < h; y++)
                {
                    var row = rows.GetRowSpan(y);
                    for (int x = 0; x < w; x++)
                    {
                        var p = row[x];
                        int at = offset + y * w + x;
                        if (o.Channels == 1)
                            f[at] = (0.2126f * p.R + 0.7152f * p.G + 0.0722f * p.B) / div;
                        else
                        {
                            f[at] = p.R / div;
                            f[at + plane] = p.G / div;
                            f[at + 2 * plane] = p.B / div;
                        }
                    }
                }
            });
        }
        return (features!, [o.Channels, h, w]);
    }

    private static Image<Rgb24> Open(string path)
    {
        try { return Image.Load<Rgb24>(path); }
        catch (Exception e) when (e is ImageFormatException or NotSupportedException)
        {
            throw new DataFormatException(path, $"not a readable image, expected a valid {string.Join("/", Extensions)} file: {e.Message}", e);
        }
        catch (IOException e)
        {
            throw new DataFormatException(path, $"cannot be read: {e.Message}", e);
        }
    }
}
