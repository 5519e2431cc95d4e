using System.Globalization;
using GpuNet.Data;
using GpuNet.Training;

namespace GpuNet.Bench;

/// <summary>
/// The optional per-epoch logs of a <c>train</c> run: <c>--tensorboard DIR</c> (<see cref="TensorBoardLogger"/>) and
/// <c>--csv PATH</c> (<see cref="CsvHistoryLog"/>). Both files are created before training, so a path that cannot be
/// written is an error before the first epoch.
/// </summary>
internal sealed class RunOutputs : IDisposable
{
    private readonly TensorBoardLogger? _tensorBoard;
    private readonly CsvHistoryLog? _csv;

    private RunOutputs(TensorBoardLogger? tensorBoard, CsvHistoryLog? csv) => (_tensorBoard, _csv) = (tensorBoard, csv);

    /// <summary>The callbacks to pass to Fit.</summary>
    public ICallback[] Callbacks => new ICallback?[] { _tensorBoard, _csv }.OfType<ICallback>().ToArray();

    /// <summary>Opens the requested logs; <paramref name="history"/> holds the epochs already done (a resumed run), written to the CSV first.</summary>
    public static RunOutputs Open(string? tensorBoardDir, string? csvPath, IReadOnlyList<EpochReport> history, TextWriter log)
    {
        TensorBoardLogger? tb = null;
        try
        {
            if (tensorBoardDir is not null)
            {
                tb = new TensorBoardLogger(tensorBoardDir);
                log.WriteLine($"tensorboard: {tb.FilePath} (watch with: tensorboard --logdir {Path.GetDirectoryName(tb.FilePath)})");
            }
            var csv = csvPath is null ? null : new CsvHistoryLog(csvPath, history);
            return new RunOutputs(tb, csv);
        }
        catch
        {
            tb?.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        _tensorBoard?.Dispose();
        _csv?.Dispose();
    }
}

/// <summary>
/// <c>--csv PATH</c>: one row per epoch with the columns of the JSON summary's <c>history</c> (<see cref="Columns"/>),
/// a header row first, invariant culture, an empty field for a missing value. Rows are appended and flushed as each
/// epoch ends, so a run killed mid-way leaves the epochs so far. An existing file is replaced.
/// </summary>
internal sealed class CsvHistoryLog : ICallback, IDisposable
{
    /// <summary>The header: the keys of <see cref="HistoryRow.ToJson"/>, in its order.</summary>
    public static readonly string[] Columns = ["epoch", "lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds"];

    private readonly StreamWriter _writer;

    public CsvHistoryLog(string path, IReadOnlyList<EpochReport> history)
    {
        string full = Path.GetFullPath(path);
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            _writer = new StreamWriter(new FileStream(full, FileMode.Create, FileAccess.Write, FileShare.Read)) { NewLine = "\n" };
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"--csv: cannot write '{full}': {e.Message}", e);
        }
        _writer.WriteLine(string.Join(",", Columns));
        foreach (var r in history) _writer.WriteLine(Row(HistoryRow.From(r)));
        _writer.Flush();
    }

    public void OnEpochEnd(TrainingContext context)
    {
        _writer.WriteLine(Row(HistoryRow.From(context.Report!)));
        _writer.Flush();
    }

    public void Dispose() => _writer.Dispose();

    /// <summary>One row in <see cref="Columns"/> order; doubles in their shortest round-trip form.</summary>
    internal static string Row(HistoryRow h)
        => string.Join(",", h.Epoch.ToString(CultureInfo.InvariantCulture), F(h.Lr), F(h.TrainLoss), F(h.TrainAccuracy), F(h.ValLoss), F(h.ValAccuracy), F(h.Seconds));

    private static string F(double? v) => v is double d ? d.ToString("R", CultureInfo.InvariantCulture) : "";
}

/// <summary>One validation image the model got wrong.</summary>
/// <param name="Index">Index in the validation set.</param>
/// <param name="Actual">True class.</param>
/// <param name="Predicted">Predicted class (the argmax; the first on ties, as <see cref="Device.ArgmaxRows"/>).</param>
/// <param name="Confidence">Softmax probability of the predicted class.</param>
internal readonly record struct Mistake(int Index, int Actual, int Predicted, double Confidence);

/// <summary>
/// The pictures <c>--out</c> writes besides <c>curves.png</c>: <c>confusion.png</c> for a classification task, and
/// <c>mistakes.png</c> (the most confidently wrong validation images) when the samples are images, (1, H, W) or (3, H, W).
/// </summary>
internal static class RunPictures
{
    /// <summary>Images in <c>mistakes.png</c> at most.</summary>
    public const int MistakeCount = 25;

    /// <summary>
    /// Writes the pictures of the model as it is now, on <paramref name="data"/> (the split <paramref name="source"/>
    /// yields, unshuffled): <paramref name="evaluation"/> is that split's evaluation, whose confusion matrix is drawn;
    /// the mistakes come from <see cref="Trainer.PredictScores"/> on the same source. Returns the files written.
    /// </summary>
    public static List<string> Write(string outDir, string title, Trainer trainer, IBatchSource source, Dataset data, EvalResult evaluation)
    {
        var written = new List<string>();
        if (evaluation.Metrics is not { } metrics) return written;
        var names = metrics.Classes == data.ClassNames.Count ? data.ClassNames : Enumerable.Range(0, metrics.Classes).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToList();
        string confusion = Path.Combine(outDir, "confusion.png");
        Plot.Confusion(confusion, $"{title}: {data.Name}, {metrics.Samples} samples, accuracy {metrics.Accuracy.ToString("P2", CultureInfo.InvariantCulture)}", metrics.ConfusionMatrix, names);
        written.Add(confusion);

        var shape = data.SampleShape;
        bool image = shape.Count == 3 && shape[0] is (1 or 3);
        if (!image || trainer.Task != TaskKind.MultiClass || !data.HasLabels) return written;
        var mistakes = MostConfident(trainer.PredictScores(source), data.Labels, trainer.Classes, MistakeCount);
        if (mistakes.Length == 0) return written;
        string path = Path.Combine(outDir, "mistakes.png");
        Plot.Mistakes(path, mistakes.Select(m => (data.Sample(m.Index).ToArray(),
            $"true {names[m.Actual]} / pred {names[m.Predicted]}\n{m.Confidence.ToString("P1", CultureInfo.InvariantCulture)}")).ToList(), shape[0], shape[1], shape[2]);
        written.Add(path);
        return written;
    }

    /// <summary>
    /// The wrong predictions among (N, C) <paramref name="logits"/>, by softmax confidence of the predicted class,
    /// highest first (ties: lower index first), at most <paramref name="count"/>.
    /// </summary>
    public static Mistake[] MostConfident(ReadOnlySpan<float> logits, ReadOnlySpan<int> labels, int classes, int count)
    {
        if (classes < 2) throw new ArgumentOutOfRangeException(nameof(classes), classes, "need at least 2 classes");
        if (logits.Length != labels.Length * classes)
            throw new ArgumentException($"{logits.Length} logits for {labels.Length} labels x {classes} classes; expected {labels.Length * classes}", nameof(logits));
        var wrong = new List<Mistake>();
        for (int i = 0; i < labels.Length; i++)
        {
            var row = logits.Slice(i * classes, classes);
            int best = 0;
            for (int k = 1; k < classes; k++) if (row[k] > row[best]) best = k;
            if (best == labels[i]) continue;
            double sum = 0;
            for (int k = 0; k < classes; k++) sum += Math.Exp((double)row[k] - row[best]);
            wrong.Add(new Mistake(i, labels[i], best, 1 / sum));
        }
        return wrong.OrderByDescending(m => m.Confidence).ThenBy(m => m.Index).Take(count).ToArray();
    }
}
