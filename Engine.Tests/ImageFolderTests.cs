using GpuNet.Data;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace GpuNet.Tests;

/// <summary>Image folders (class subfolders and flat) decoded by ImageSharp: host-only tests on small written PNGs.</summary>
public sealed class ImageFolderTests
{
    // pixels: (h, w, 3) bytes, row-major.
    private static byte[] WriteImage(string path, int h, int w, int seed)
    {
        var px = new byte[h * w * 3];
        new Random(seed).NextBytes(px);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var img = Image.LoadPixelData<Rgb24>(px, w, h);
        switch (Path.GetExtension(path))
        {
            case ".bmp": img.SaveAsBmp(path); break;
            case ".jpg": img.SaveAsJpeg(path); break;
            default: img.SaveAsPng(path); break;
        }
        return px;
    }

    [Fact]
    public void ClassFoldersGiveOrdinalLabelsAndChannelFirstPixels()
    {
        using var t = new TempDir();
        // Ordinal order: "Bird" < "cat" < "dog" (upper case first).
        var a = WriteImage(t["cat/2.png"], 3, 2, 1);
        var b = WriteImage(t["cat/10.png"], 3, 2, 2);
        var c = WriteImage(t["Bird/x.bmp"], 3, 2, 3);
        var d = WriteImage(t["dog/y.png"], 3, 2, 4);
        File.WriteAllText(t["dog/.hidden"], "skipped");
        var ds = ImageFolder.LoadClasses(t.Path, new ImageFolderOptions(Channels: 3), out var files);
        Assert.Equal(["Bird", "cat", "dog"], ds.ClassNames);
        Assert.Equal([0, 1, 1, 2], ds.Labels.ToArray());
        Assert.Equal([3, 3, 2], ds.SampleShape);
        // Within a class, files in ordinal name order: "10.png" < "2.png".
        Assert.Equal([t["Bird/x.bmp"], t["cat/10.png"], t["cat/2.png"], t["dog/y.png"]], files);
        byte[][] expected = [c, b, a, d];
        for (int s = 0; s < 4; s++)
        {
            var got = ds.Sample(s);
            for (int y = 0; y < 3; y++)
                for (int x = 0; x < 2; x++)
                    for (int ch = 0; ch < 3; ch++)
                        Assert.Equal(expected[s][(y * 2 + x) * 3 + ch] / 255f, got[ch * 6 + y * 2 + x]);
        }
    }

    [Fact]
    public void GrayscaleIsBt709LuminanceAndScaleCanBeOff()
    {
        using var t = new TempDir();
        var px = WriteImage(t["a.png"], 4, 5, 7);
        var set = ImageFolder.LoadFlat(t.Path, new ImageFolderOptions(Channels: 1, Scale: false));
        Assert.Equal([1, 4, 5], set.SampleShape);
        var expected = new double[20];
        for (int i = 0; i < 20; i++) expected[i] = 0.2126 * px[3 * i] + 0.7152 * px[3 * i + 1] + 0.0722 * px[3 * i + 2];
        Tol.Elementwise.AssertClose(set.Features, expected, "luminance");
        Assert.Contains(set.Features.ToArray(), v => v > 1f); // raw 0..255, not scaled
    }

    [Fact]
    public void ResizeMixesSizesAndKeepsAConstantImageConstant()
    {
        using var t = new TempDir();
        Directory.CreateDirectory(t["flat"]);
        using (var img = new Image<Rgb24>(7, 3, new Rgb24(200, 100, 50))) img.SaveAsPng(t["flat/a.png"]);
        WriteImage(t["flat/b.jpg"], 11, 13, 5);
        var set = ImageFolder.LoadFlat(t["flat"], new ImageFolderOptions(Height: 4, Width: 6, Channels: 3));
        Assert.Equal(2, set.Count);
        Assert.Equal([3, 4, 6], set.SampleShape);
        Assert.Equal([t["flat/a.png"], t["flat/b.jpg"]], set.Files);
        var first = set.Features[..72].ToArray();
        Assert.All(first[..24], v => Assert.Equal(200 / 255f, v));
        Assert.All(first[24..48], v => Assert.Equal(100 / 255f, v));
        Assert.All(first[48..], v => Assert.Equal(50 / 255f, v));
    }

    [Fact]
    public void MixedSizesWithoutResizeNameBothFilesAndSizes()
    {
        using var t = new TempDir();
        WriteImage(t["a/1.png"], 4, 4, 1);
        WriteImage(t["b/2.png"], 4, 5, 2);
        var e = Assert.Throws<DataFormatException>(() => ImageFolder.LoadClasses(t.Path));
        Assert.Equal(t["b/2.png"], e.Path);
        Assert.Contains("image size 4x5", e.Message);
        Assert.Contains("differs from 4x4 of " + t["a/1.png"], e.Message);
    }

    [Fact]
    public void BadFilesAndFoldersNameThePathExpectedAndActual()
    {
        using var t = new TempDir();
        // A corrupt PNG.
        WriteImage(t["c1/a.png"], 2, 2, 1);
        File.WriteAllBytes(t["c1/b.png"], [0x89, (byte)'P', (byte)'N', (byte)'G', 1, 2, 3]);
        var e = Assert.Throws<DataFormatException>(() => ImageFolder.LoadClasses(t.Path));
        Assert.Equal(t["c1/b.png"], e.Path);
        Assert.Contains("not a readable image", e.Message);
        // A non-image file.
        File.Delete(t["c1/b.png"]);
        File.WriteAllText(t["c1/notes.txt"], "hello");
        e = Assert.Throws<DataFormatException>(() => ImageFolder.LoadClasses(t.Path));
        Assert.Equal(t["c1/notes.txt"], e.Path);
        Assert.Contains("extension '.txt', expected one of .png, .jpg, .jpeg, .bmp", e.Message);
        File.Delete(t["c1/notes.txt"]);
        // A class folder with no image.
        Directory.CreateDirectory(t["c2"]);
        e = Assert.Throws<DataFormatException>(() => ImageFolder.LoadClasses(t.Path));
        Assert.Equal(t["c2"], e.Path);
        Assert.Contains("class folder 'c2' holds no image", e.Message);
        Directory.Delete(t["c2"]);
        // A file beside the class folders.
        WriteImage(t["stray.png"], 2, 2, 3);
        e = Assert.Throws<DataFormatException>(() => ImageFolder.LoadClasses(t.Path));
        Assert.Equal(t["stray.png"], e.Path);
        // A flat folder with a subfolder; an empty folder; a root with no class folder.
        e = Assert.Throws<DataFormatException>(() => ImageFolder.LoadFlat(t.Path));
        Assert.Equal(t["c1"], e.Path);
        Directory.CreateDirectory(t["empty"]);
        e = Assert.Throws<DataFormatException>(() => ImageFolder.LoadFlat(t["empty"]));
        Assert.Contains("holds no image", e.Message);
        e = Assert.Throws<DataFormatException>(() => ImageFolder.LoadClasses(t["empty"]));
        Assert.Contains("no class folder", e.Message);
        Assert.Throws<DirectoryNotFoundException>(() => ImageFolder.LoadFlat(t["missing"]));
    }

    [Fact]
    public void OptionsAreValidated()
    {
        using var t = new TempDir();
        WriteImage(t["a.png"], 2, 2, 1);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => ImageFolder.LoadFlat(t.Path, new ImageFolderOptions(Channels: 2)));
        Assert.Equal("Channels", e.ParamName);
        var e2 = Assert.Throws<ArgumentException>(() => ImageFolder.LoadFlat(t.Path, new ImageFolderOptions(Height: 4)));
        Assert.Contains("Height=4, Width=null", e2.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => ImageFolder.LoadFlat(t.Path, new ImageFolderOptions(Height: 0, Width: 3)));
    }
}
