using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using Google.Protobuf;
using GpuNet.Training.TensorBoardProto;

namespace GpuNet.Training;

/// <summary>
/// Writes a TensorBoard event file (<c>tensorboard --logdir DIR</c>) for one run:
/// <list type="bullet">
/// <item>scalars after every epoch, with the epoch number (1-based) as the step: <c>loss/train</c>,
/// <c>loss/validation</c>, <c>accuracy/train</c>, <c>accuracy/validation</c> (each only when the epoch has it),
/// <c>learning_rate</c> (the epoch's last step) and <c>samples_per_second</c> (training throughput);</item>
/// <item>histograms of every trainable parameter's weights (<c>weights/NAME</c>) and of its gradients from the epoch's
/// last step (<c>gradients/NAME</c>), NAME as in <see cref="Nn.Model.ParameterTable"/>: one read-back of the flat
/// parameter and gradient tensors per epoch;</item>
/// <item>the model summary (<see cref="Nn.Model.Summary"/>) once, as text (<c>model/summary</c>, TensorBoard's text
/// plugin) at the start of the first Fit.</item>
/// </list>
/// <para>
/// Format: a TFRecord file (per record: the data length as a little-endian uint64, the masked CRC-32C of those 8
/// bytes, the data, the masked CRC-32C of the data) of serialised <c>Event</c> protobuf messages, the first carrying
/// <c>file_version = "brain.Event:2"</c>; the file is named <c>events.out.tfevents.UNIXSECONDS.HOST</c> (with
/// <c>.1</c>, <c>.2</c>, ... appended if that name exists). The messages are generated from
/// <c>tensorboard_event.proto</c>, a wire-compatible subset of TensorBoard's own schema.
/// Histogram buckets are TensorBoard's default edges (TensorFlow's <c>histogram.cc</c>): 0, then +-1e-12 times powers of
/// 1.1 up to 1e20, then +-DBL_MAX; a run of empty buckets is written as one empty bucket, as TensorFlow does.
/// </para>
/// <para>
/// The file is created by the constructor, so an unwritable directory fails before training starts; it is flushed
/// after every epoch (a run killed mid-way keeps the epochs so far) and closed by <see cref="Dispose"/>. One logger
/// writes one file: further Fit calls with the same logger continue it.
/// </para>
/// </summary>
public sealed class TensorBoardLogger : ICallback, IDisposable
{
    /// <summary>The version string of the first event of every event file.</summary>
    public const string FileVersion = "brain.Event:2";

    private static readonly double[] BucketLimits = DefaultBucketLimits();
    private readonly FileStream _file;
    private bool _summaryWritten;

    /// <summary>Creates <paramref name="directory"/> if needed and a new event file in it, and writes its first record.</summary>
    /// <param name="directory">The log directory (give TensorBoard it or a parent).</param>
    /// <param name="histograms">Whether to write the weight and gradient histograms each epoch.</param>
    /// <exception cref="ArgumentException">An empty directory name.</exception>
    /// <exception cref="IOException">The directory cannot be created or written to (the message names it).</exception>
    public TensorBoardLogger(string directory, bool histograms = true)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        Histograms = histograms;
        string dir = Path.GetFullPath(directory);
        long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        string name = string.Create(CultureInfo.InvariantCulture, $"events.out.tfevents.{now}.{HostName()}");
        try
        {
            Directory.CreateDirectory(dir);
            string path = Path.Combine(dir, name);
            for (int i = 1; File.Exists(path); i++) path = Path.Combine(dir, $"{name}.{i}");
            _file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.Read);
            FilePath = path;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"TensorBoardLogger: cannot create an event file in '{dir}': {e.Message}", e);
        }
        try
        {
            Write(new Event { WallTime = WallTime(), FileVersion = FileVersion });
            _file.Flush();
        }
        catch
        {
            _file.Dispose();
            throw;
        }
    }

    /// <summary>Full path of the event file.</summary>
    public string FilePath { get; }
    /// <summary>Whether weight and gradient histograms are written.</summary>
    public bool Histograms { get; }

    /// <inheritdoc/>
    public void OnTrainBegin(TrainingContext context)
    {
        if (_summaryWritten) return;
        _summaryWritten = true;
        // four leading spaces: TensorBoard renders text as Markdown, where an indented block keeps the table's columns
        string text = string.Join("\n", context.Model.Summary().ToString().TrimEnd().Split('\n').Select(l => "    " + l.TrimEnd('\r')));
        Write(SummaryEvent(context.Epoch, TextValue("model/summary", text)));
        _file.Flush();
    }

    /// <inheritdoc/>
    public void OnEpochEnd(TrainingContext context)
    {
        var r = context.Report!;
        var summary = new Summary();
        summary.Value.Add(Scalar("loss/train", r.TrainLoss));
        if (r.ValLoss is double vl) summary.Value.Add(Scalar("loss/validation", vl));
        if (r.TrainAccuracy is double ta) summary.Value.Add(Scalar("accuracy/train", ta));
        if (r.ValAccuracy is double va) summary.Value.Add(Scalar("accuracy/validation", va));
        summary.Value.Add(Scalar("learning_rate", r.LearningRate));
        summary.Value.Add(Scalar("samples_per_second", r.SamplesPerSecond));
        if (Histograms)
        {
            var model = context.Model;
            float[] weights = model.Parameters.ToArray();
            float[] grads = model.Gradients!.ToArray();
            foreach (var p in model.ParameterTable)
            {
                if (p.IsBuffer) continue;
                summary.Value.Add(new Summary.Types.Value { Tag = "weights/" + p.Name, Histo = Histogram(weights.AsSpan((int)p.Offset, (int)p.Length)) });
                summary.Value.Add(new Summary.Types.Value { Tag = "gradients/" + p.Name, Histo = Histogram(grads.AsSpan((int)p.Offset, (int)p.Length)) });
            }
        }
        Write(SummaryEvent(r.Epoch, summary));
        _file.Flush();
    }

    /// <summary>Flushes and closes the file.</summary>
    public void Dispose() => _file.Dispose();

    /// <summary>
    /// The histogram of <paramref name="values"/> over TensorBoard's default bucket edges (see the class remarks):
    /// min, max, count, sum and sum of squares in float64; an infinity counts in the outermost bucket of its sign, a
    /// NaN in the first bucket (and makes min, max and the sums NaN).
    /// </summary>
    internal static HistogramProto Histogram(ReadOnlySpan<float> values)
    {
        var counts = new double[BucketLimits.Length];
        double min = double.MaxValue, max = double.MinValue, sum = 0, sumSquares = 0;
        foreach (float f in values)
        {
            double v = f;
            min = Math.Min(min, v);
            max = Math.Max(max, v);
            sum += v;
            sumSquares += v * v;
            // bucket b holds [limit(b - 1), limit(b)): the first limit above v (TensorFlow's upper_bound)
            int b = Array.BinarySearch(BucketLimits, v);
            b = b >= 0 ? b + 1 : ~b;
            counts[Math.Min(b, counts.Length - 1)]++;
        }
        var h = new HistogramProto { Min = values.IsEmpty ? 0 : min, Max = values.IsEmpty ? 0 : max, Num = values.Length, Sum = sum, SumSquares = sumSquares };
        for (int i = 0; i < counts.Length;)
        {
            double end = BucketLimits[i], count = counts[i++];
            if (count <= 0)
                while (i < counts.Length && counts[i] <= 0) end = BucketLimits[i++];
            h.BucketLimit.Add(end);
            h.Bucket.Add(count);
        }
        return h;
    }

    /// <summary>TensorFlow's default histogram edges: -DBL_MAX, -1e20-ish ... -1e-12, 0, 1e-12 ... 1e20-ish, DBL_MAX.</summary>
    private static double[] DefaultBucketLimits()
    {
        var positive = new List<double>();
        for (double v = 1e-12; v < 1e20; v *= 1.1) positive.Add(v);
        positive.Add(double.MaxValue);
        var limits = new List<double>(2 * positive.Count + 1);
        for (int i = positive.Count - 1; i >= 0; i--) limits.Add(-positive[i]);
        limits.Add(0);
        limits.AddRange(positive);
        return limits.ToArray();
    }

    private static Summary.Types.Value Scalar(string tag, double value) => new() { Tag = tag, SimpleValue = (float)value };

    private static Summary TextValue(string tag, string text)
    {
        var tensor = new TensorProto { Dtype = DataType.DtString, TensorShape = new TensorShapeProto() };
        tensor.TensorShape.Dim.Add(new TensorShapeProto.Types.Dim { Size = 1 });
        tensor.StringVal.Add(ByteString.CopyFromUtf8(text));
        var metadata = new SummaryMetadata
        {
            PluginData = new SummaryMetadata.Types.PluginData { PluginName = "text" },
            DataClass = DataClass.Tensor,
        };
        var s = new Summary();
        s.Value.Add(new Summary.Types.Value { Tag = tag, Metadata = metadata, Tensor = tensor });
        return s;
    }

    private static Event SummaryEvent(long step, Summary summary) => new() { WallTime = WallTime(), Step = step, Summary = summary };

    private static double WallTime() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;

    private static string HostName()
    {
        var sb = new StringBuilder();
        foreach (char c in Environment.MachineName) sb.Append(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' ? c : '_');
        return sb.Length > 0 ? sb.ToString() : "localhost";
    }

    /// <summary>One TFRecord: length, masked CRC of the length, data, masked CRC of the data.</summary>
    private void Write(Event ev)
    {
        byte[] data = ev.ToByteArray();
        Span<byte> header = stackalloc byte[12];
        BinaryPrimitives.WriteUInt64LittleEndian(header, (ulong)data.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], Crc32C.Masked(header[..8]));
        Span<byte> footer = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(footer, Crc32C.Masked(data));
        _file.Write(header);
        _file.Write(data);
        _file.Write(footer);
    }
}
