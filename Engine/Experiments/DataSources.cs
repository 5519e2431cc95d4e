using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using GpuNet.Data;
using GpuNet.Init;

namespace GpuNet.Experiments;

/// <summary>
/// The data sources of a config: their per-sample shape and class count before any data is read (built-in sets by
/// description, files by their headers only), and the loading itself.
/// </summary>
internal static class DataSources
{
    public static (int[]? Shape, int? Classes) Describe(Component source, ulong seed, string dir, List<ConfigError> errors)
    {
        switch (source.Type)
        {
            case "digits": return ([64], 10);
            case "binary": return ([source.Int("features")!.Value], 2);
            case "mnist" or "fashion-mnist": return ([1, 28, 28], 10);
            case "idx":
            {
                var shape = IdxShape(source, "images", dir, errors);
                CheckFile(source, "labels", dir, errors);
                if (source.String("test_images") is { Length: > 0 })
                {
                    var test = IdxShape(source, "test_images", dir, errors);
                    CheckFile(source, "test_labels", dir, errors, required: true);
                    if (shape is not null && test is not null && !shape.SequenceEqual(test))
                        errors.Add(new ConfigError("data.source.test_images", $"expected images of {ShapeUtil.Format(shape)} like data.source.images, got {ShapeUtil.Format(test)}"));
                }
                else if (source.String("test_labels") is { Length: > 0 })
                    errors.Add(new ConfigError("data.source.test_labels", "given without data.source.test_images"));
                return (shape, source.Int("classes"));
            }
            case "image_folder":
                return ImageFolderShape(source, dir, errors);
            default:
            {
                var header = CsvHeader(source, "path", dir, errors);
                if (header is null) return (null, null);
                string label = source.String("label_column")!;
                if (!header.Contains(label))
                {
                    errors.Add(new ConfigError("data.source.label_column", $"\"{label}\" is not a column of {Resolve(dir, source.String("path")!)}; its columns are {string.Join(", ", header)}"));
                    return (null, null);
                }
                if (header.Length < 2) { errors.Add(new ConfigError("data.source.path", "expected at least one feature column besides the label")); return (null, null); }
                if (source.String("test_path") is { Length: > 0 } && CsvHeader(source, "test_path", dir, errors) is { } th && !th.SequenceEqual(header))
                    errors.Add(new ConfigError("data.source.test_path", $"expected the header {string.Join(",", header)}, got {string.Join(",", th)}"));
                return ([header.Length - 1], null);
            }
        }
    }

    public static (Dataset Train, Dataset? Test) Load(Component source, ulong seed, string dir, TextWriter? log)
    {
        switch (source.Type)
        {
            case "digits": return (DataSets.Digits(), null);
            case "binary": return (DataSets.Binary(source.Int("samples")!.Value, source.Int("features")!.Value, seed), null);
            case "mnist": return DataSets.Mnist(log: log);
            case "fashion-mnist": return DataSets.FashionMnist(log: log);
            case "idx":
            {
                int classes = source.Int("classes")!.Value;
                var train = Idx.Load("idx/train", Resolve(dir, source.String("images")!), Resolve(dir, source.String("labels")!), classes);
                var test = source.String("test_images") is { Length: > 0 } ti
                    ? Idx.Load("idx/test", Resolve(dir, ti), Resolve(dir, source.String("test_labels")!), classes) : null;
                return (train, test);
            }
            case "image_folder":
            {
                var options = new ImageFolderOptions(source.Int("height"), source.Int("width"), source.Int("channels")!.Value, source.Bool("scale"));
                var train = ImageFolder.LoadClasses(Resolve(dir, source.String("path")!), options);
                Dataset? test = null;
                if (source.String("test_path") is { Length: > 0 } tp)
                {
                    test = ImageFolder.LoadClasses(Resolve(dir, tp), options);
                    if (!test.ClassNames.SequenceEqual(train.ClassNames))
                        throw new DataFormatException(Resolve(dir, tp), $"the test classes ({string.Join(", ", test.ClassNames)}) differ from the training classes ({string.Join(", ", train.ClassNames)})");
                    if (!test.SampleShape.SequenceEqual(train.SampleShape))
                        throw new DataFormatException(Resolve(dir, tp), $"test images are {ShapeUtil.Format([.. test.SampleShape])}, training images {ShapeUtil.Format([.. train.SampleShape])}");
                }
                return (train, test);
            }
            default:
            {
                string label = source.String("label_column")!;
                var trainRows = ReadCsv(Resolve(dir, source.String("path")!), label);
                (float[] X, string[] Labels, int Features)? testRows = source.String("test_path") is { Length: > 0 } tp ? ReadCsv(Resolve(dir, tp), label) : null;
                // One class list for both files, so a class index means the same class in train and test.
                var names = trainRows.Labels.Concat(testRows?.Labels ?? []).Distinct().ToArray();
                bool numeric = names.All(n => long.TryParse(n, NumberStyles.Integer, CultureInfo.InvariantCulture, out _));
                names = numeric ? names.OrderBy(n => long.Parse(n, CultureInfo.InvariantCulture)).ToArray() : names.Order(StringComparer.Ordinal).ToArray();
                var index = names.Select((n, i) => (n, i)).ToDictionary(x => x.n, x => x.i);
                Dataset Make((float[] X, string[] Labels, int Features) rows, string name)
                    => Dataset.Classification(name, rows.X, [rows.Features], rows.Labels.Select(l => index[l]).ToArray(), names.Length, names);
                var train = Make(trainRows, "csv/train");
                return (train, testRows is { } t ? Make(t, "csv/test") : null);
            }
        }
    }

    /// <summary>A uniform random split (seeded Fisher-Yates); both parts keep the original order.</summary>
    public static (Dataset, Dataset) RandomSplit(Dataset data, double fraction, ulong seed)
    {
        int n = data.Count, nVal = (int)Math.Round(n * fraction, MidpointRounding.AwayFromZero);
        var order = Enumerable.Range(0, n).ToArray();
        var rng = new SplitMix64(seed);
        DataSplit.Shuffle(order, ref rng);
        var inVal = new bool[n];
        for (int i = 0; i < nVal; i++) inVal[order[i]] = true;
        var all = Enumerable.Range(0, n);
        return (data.Subset(all.Where(i => !inVal[i]).ToArray(), data.Name + "/train"), data.Subset(all.Where(i => inVal[i]).ToArray(), data.Name + "/validation"));
    }

    // (channels, height, width) from the options or the first image's header (ImageSharp's Identify decodes no pixels),
    // and the class count from the subfolders.
    private static (int[]?, int?) ImageFolderShape(Component source, string dir, List<ConfigError> errors)
    {
        string root = Resolve(dir, source.String("path")!);
        int channels = source.Int("channels")!.Value;
        if (channels is not (1 or 3)) errors.Add(new ConfigError("data.source.channels", $"expected 1 (grayscale) or 3 (RGB), got {channels}"));
        if (source.Args.ContainsKey("height") != source.Args.ContainsKey("width"))
            errors.Add(new ConfigError($"data.source.{(source.Args.ContainsKey("height") ? "width" : "height")}", "missing: give height and width together, or neither"));
        if (!Directory.Exists(root)) { errors.Add(new ConfigError("data.source.path", $"no such folder: {root}")); return (null, null); }
        if (source.String("test_path") is { Length: > 0 } tp && !Directory.Exists(Resolve(dir, tp)))
            errors.Add(new ConfigError("data.source.test_path", $"no such folder: {Resolve(dir, tp)}"));
        static bool Visible(string p) => !Path.GetFileName(p).StartsWith('.');
        var classes = Directory.GetDirectories(root).Where(Visible).Order(StringComparer.Ordinal).ToArray();
        if (classes.Length == 0) { errors.Add(new ConfigError("data.source.path", $"{root} holds no class folder: expected path/<class>/<image>")); return (null, null); }
        if (source.Int("height") is int h && source.Int("width") is int w) return ([channels, h, w], classes.Length);
        string? first = classes.Select(c => Directory.GetFiles(c).Where(Visible).Order(StringComparer.Ordinal).FirstOrDefault()).FirstOrDefault(f => f is not null);
        if (first is null) { errors.Add(new ConfigError("data.source.path", $"the class folders of {root} hold no file")); return (null, null); }
        try
        {
            var info = SixLabors.ImageSharp.Image.Identify(first);
            if (info is null) throw new DataFormatException(first, "not a readable image (PNG, JPEG or BMP)");
            return ([channels, info.Height, info.Width], classes.Length);
        }
        catch (Exception e) when (e is DataFormatException or IOException or SixLabors.ImageSharp.ImageFormatException)
        {
            errors.Add(new ConfigError("data.source.path", e is DataFormatException ? e.Message : $"{first}: {e.Message}"));
            return (null, null);
        }
    }

    private static string Resolve(string dir, string path) => Path.GetFullPath(path, dir);

    private static bool CheckFile(Component source, string key, string dir, List<ConfigError> errors, bool required = false)
    {
        string? p = source.String(key);
        if (string.IsNullOrEmpty(p))
        {
            if (required) errors.Add(new ConfigError($"data.source.{key}", "missing; expected a file path"));
            return false;
        }
        if (File.Exists(Resolve(dir, p))) return true;
        errors.Add(new ConfigError($"data.source.{key}", $"no such file: {Resolve(dir, p)}"));
        return false;
    }

    // The (1, rows, cols) of an IDX image file, from its 16-byte header only.
    private static int[]? IdxShape(Component source, string key, string dir, List<ConfigError> errors)
    {
        if (!CheckFile(source, key, dir, errors, required: true)) return null;
        string path = Resolve(dir, source.String(key)!);
        try
        {
            using var s = DecodedFile.OpenDecoded(path);
            Span<byte> h = stackalloc byte[16];
            int got = s.ReadAtLeast(h, 16, throwOnEndOfStream: false);
            int magic = got >= 4 ? BinaryPrimitives.ReadInt32BigEndian(h) : 0;
            if (got >= 4 && magic != Idx.ImageMagic) throw new DataFormatException(path, $"wrong magic number {magic}, expected {Idx.ImageMagic} for an IDX image file");
            if (got < 16) throw new DataFormatException(path, "truncated: shorter than the 16-byte IDX image header");
            int rows = BinaryPrimitives.ReadInt32BigEndian(h[8..]), cols = BinaryPrimitives.ReadInt32BigEndian(h[12..]);
            if (rows < 1 || cols < 1) throw new DataFormatException(path, $"bad image size {rows} x {cols}");
            return [1, rows, cols];
        }
        catch (Exception e) when (e is DataFormatException or IOException or InvalidDataException)
        {
            errors.Add(new ConfigError($"data.source.{key}", e.Message));
            return null;
        }
    }

    private static string[]? CsvHeader(Component source, string key, string dir, List<ConfigError> errors)
    {
        if (!CheckFile(source, key, dir, errors, required: true)) return null;
        string path = Resolve(dir, source.String(key)!);
        try
        {
            using var reader = new StreamReader(DecodedFile.OpenDecoded(path), Encoding.UTF8);
            string? line = reader.ReadLine();
            if (line is null) throw new DataFormatException(path, "empty file: expected a header line of column names");
            var cells = line.Split(',').Select(c => c.Trim()).ToArray();
            if (cells.Any(c => c.Length == 0)) throw new DataFormatException(path, $"line 1: an empty column name in the header '{line}'");
            var dup = cells.GroupBy(c => c).FirstOrDefault(g => g.Count() > 1);
            if (dup is not null) throw new DataFormatException(path, $"line 1: the column '{dup.Key}' appears twice in the header");
            return cells;
        }
        catch (Exception e) when (e is DataFormatException or IOException or InvalidDataException)
        {
            errors.Add(new ConfigError($"data.source.{key}", e.Message));
            return null;
        }
    }

    // Every feature cell must be a finite number and every row as wide as the header; the first bad cell names its line.
    private static (float[] X, string[] Labels, int Features) ReadCsv(string path, string labelColumn)
    {
        using var reader = new StreamReader(DecodedFile.OpenDecoded(path), Encoding.UTF8);
        var header = (reader.ReadLine() ?? throw new DataFormatException(path, "empty file: expected a header line")).Split(',').Select(c => c.Trim()).ToArray();
        int labelAt = Array.IndexOf(header, labelColumn);
        if (labelAt < 0) throw new DataFormatException(path, $"line 1: no column '{labelColumn}'; the columns are {string.Join(", ", header)}");
        int features = header.Length - 1;
        var x = new List<float>();
        var labels = new List<string>();
        int lineNo = 1;
        for (string? line = reader.ReadLine(); line is not null; line = reader.ReadLine())
        {
            lineNo++;
            if (line.Trim().Length == 0) continue;
            var cells = line.Split(',');
            if (cells.Length != header.Length)
                throw new DataFormatException(path, $"line {lineNo}: {cells.Length} cells, the header has {header.Length}");
            for (int j = 0; j < cells.Length; j++)
            {
                if (j == labelAt) { labels.Add(cells[j].Trim()); continue; }
                if (!float.TryParse(cells[j], NumberStyles.Float, CultureInfo.InvariantCulture, out float v) || !float.IsFinite(v))
                    throw new DataFormatException(path, $"line {lineNo}, column '{header[j]}': '{cells[j].Trim()}' is not a finite number");
                x.Add(v);
            }
        }
        if (labels.Count == 0) throw new DataFormatException(path, "no data rows after the header");
        return (x.ToArray(), labels.ToArray(), features);
    }
}
