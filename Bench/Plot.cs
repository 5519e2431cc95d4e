using System.Globalization;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;

namespace GpuNet.Bench;

/// <summary>The PNG pictures of a run: curves (ScottPlot), the confusion matrix (ScottPlot) and the mistakes grid (ScottPlot cells composed with ImageSharp).</summary>
internal static class Plot
{
    /// <summary>Size of <c>confusion.png</c>.</summary>
    public const int ConfusionWidth = 900, ConfusionHeight = 800;
    /// <summary>Size of one cell of <c>mistakes.png</c> (the image with its labels above it) and cells per row.</summary>
    public const int MistakeCellWidth = 170, MistakeCellHeight = 200, MistakeColumns = 5;

    public static void Curves(string path, string title, IReadOnlyList<HistoryRow> history)
    {
        if (history.Count == 0) return;
        var plot = new ScottPlot.Plot();
        double[] x = history.Select(h => (double)h.Epoch).ToArray();
        plot.Add.Scatter(x, history.Select(h => h.TrainLoss).ToArray()).LegendText = "train loss";
        if (history.All(h => h.ValLoss is not null)) plot.Add.Scatter(x, history.Select(h => h.ValLoss!.Value).ToArray()).LegendText = "validation loss";
        if (history.All(h => h.TrainAccuracy is not null))
        {
            var s = plot.Add.Scatter(x, history.Select(h => h.TrainAccuracy!.Value).ToArray());
            s.LegendText = "train accuracy";
            s.Axes.YAxis = plot.Axes.Right;
        }
        if (history.All(h => h.ValAccuracy is not null))
        {
            var s = plot.Add.Scatter(x, history.Select(h => h.ValAccuracy!.Value).ToArray());
            s.LegendText = "validation accuracy";
            s.Axes.YAxis = plot.Axes.Right;
        }
        plot.Title(title);
        plot.XLabel("epoch");
        plot.YLabel("loss");
        plot.Axes.Right.Label.Text = "accuracy";
        plot.ShowLegend();
        string tmp = path + ".tmp.png";
        plot.SavePng(tmp, 900, 600);
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>
    /// The confusion matrix normalised per actual class (each row sums to 1: the cell is the fraction of that class
    /// predicted as the column's class; a class with no samples is a row of zeros) as a heat map, with the fraction
    /// written in every cell and the class names on both axes.
    /// </summary>
    /// <param name="confusion">Counts [actual, predicted], C x C.</param>
    public static void Confusion(string path, string title, long[,] confusion, IReadOnlyList<string> classNames)
    {
        int c = confusion.GetLength(0);
        if (c != confusion.GetLength(1) || c != classNames.Count)
            throw new ArgumentException($"the confusion matrix is {c} x {confusion.GetLength(1)} for {classNames.Count} class names", nameof(confusion));
        var fraction = new double[c, c];
        for (int a = 0; a < c; a++)
        {
            long row = 0;
            for (int p = 0; p < c; p++) row += confusion[a, p];
            for (int p = 0; p < c; p++) fraction[a, p] = row == 0 ? 0 : (double)confusion[a, p] / row;
        }
        var plot = new ScottPlot.Plot();
        var map = plot.Add.Heatmap(fraction);
        map.Colormap = ScottPlot.IColormapExtensions.Reversed(new ScottPlot.Colormaps.Blues());   // 0 white, 1 dark blue
        map.ManualRange = new ScottPlot.Range(0, 1);
        // cell (a, p) is drawn centred on x = p, y = c - 1 - a: actual classes from the top down
        map.Extent = new ScottPlot.CoordinateRect(0, c - 1, 0, c - 1);   // the centres of the first and last cells
        for (int a = 0; a < c; a++)
            for (int p = 0; p < c; p++)
            {
                var t = plot.Add.Text(fraction[a, p].ToString("0.00", CultureInfo.InvariantCulture), p, c - 1 - a);
                t.LabelAlignment = ScottPlot.Alignment.MiddleCenter;
                t.LabelFontSize = c <= 12 ? 14 : 9;
                t.LabelFontColor = fraction[a, p] > 0.5 ? ScottPlot.Colors.White : ScottPlot.Colors.Black;
            }
        double[] ticks = Enumerable.Range(0, c).Select(i => (double)i).ToArray();
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks, classNames.ToArray());
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks, classNames.Reverse().ToArray());
        plot.Axes.SetLimits(-0.5, c - 0.5, -0.5, c - 0.5);
        plot.Add.ColorBar(map);
        plot.Title(title);
        plot.XLabel("predicted class");
        plot.YLabel("actual class");
        Save(plot.GetImageBytes(ConfusionWidth, ConfusionHeight, ScottPlot.ImageFormat.Png), path);
    }

    /// <summary>
    /// A grid of images, <see cref="MistakeColumns"/> per row, each under a caption "true X / pred Y" and the
    /// confidence: every cell is a ScottPlot figure of the image (scaled to the cell, min-max normalised per image),
    /// and ImageSharp composes the cells.
    /// </summary>
    /// <param name="images">Per image, (C, H, W) values with C = 1 (grey) or 3 (RGB).</param>
    public static void Mistakes(string path, IReadOnlyList<(float[] Pixels, string Caption)> images, int channels, int height, int width)
    {
        if (images.Count == 0) throw new ArgumentException("no images to draw", nameof(images));
        if (channels is not (1 or 3)) throw new ArgumentOutOfRangeException(nameof(channels), channels, "images must have 1 or 3 channels");
        int rows = (images.Count + MistakeColumns - 1) / MistakeColumns;
        using var grid = new Image<Rgba32>(MistakeColumns * MistakeCellWidth, rows * MistakeCellHeight, new Rgba32(255, 255, 255));
        for (int i = 0; i < images.Count; i++)
        {
            var (pixels, caption) = images[i];
            if (pixels.Length != channels * height * width)
                throw new ArgumentException($"image {i} has {pixels.Length} values; expected {channels} x {height} x {width}", nameof(images));
            var plot = new ScottPlot.Plot();
            var picture = plot.Add.ImageRect(new ScottPlot.Image(ToBytes(pixels, channels, height, width)), new ScottPlot.CoordinateRect(0, width, 0, height));
            picture.AntiAlias = false;   // crisp pixels
            plot.Axes.SetLimits(0, width, 0, height);
            plot.Axes.Frameless();
            plot.HideGrid();
            plot.Title(caption, size: 13);
            plot.Layout.Fixed(new ScottPlot.PixelPadding(10, 10, 6, 48));
            using var cell = Image.Load<Rgba32>(plot.GetImageBytes(MistakeCellWidth, MistakeCellHeight, ScottPlot.ImageFormat.Png));
            grid.Mutate(g => g.DrawImage(cell, new Point(i % MistakeColumns * MistakeCellWidth, i / MistakeColumns * MistakeCellHeight), 1f));
        }
        string tmp = path + ".tmp.png";
        grid.SaveAsPng(tmp);
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>(C, H, W) floats to bytes [y, x, rgb] (a grey image in all three), min-max normalised to 0..255.</summary>
    private static byte[,,] ToBytes(float[] pixels, int channels, int height, int width)
    {
        float lo = pixels.Min(), hi = pixels.Max();
        float scale = hi > lo ? 255f / (hi - lo) : 0;
        var bytes = new byte[height, width, 3];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                for (int k = 0; k < 3; k++)
                    bytes[y, x, k] = (byte)Math.Clamp(MathF.Round((pixels[(channels == 1 ? 0 : k) * height * width + y * width + x] - lo) * scale), 0, 255);
        return bytes;
    }

    private static void Save(byte[] png, string path)
    {
        string tmp = path + ".tmp.png";
        File.WriteAllBytes(tmp, png);
        File.Move(tmp, path, overwrite: true);
    }
}
