using System.Runtime.InteropServices;
using GpuNet.Init;

namespace GpuNet.Training;

/// <summary>One mini-batch on the device.</summary>
/// <param name="X">Inputs (N, ...sample shape): exactly <paramref name="N"/> rows.</param>
/// <param name="Y">Targets: Int32 labels (N) or Float32 targets (N, ...target shape).</param>
/// <param name="N">Number of samples in the batch (the last batch of an epoch may be short).</param>
public readonly record struct Batch(Tensor X, Tensor Y, int N);

/// <summary>
/// What the <see cref="Trainer"/> consumes: a finite set of samples served as device mini-batches. The tensors of a
/// batch belong to the source and stay valid until the next batch is requested; the trainer never disposes them.
/// </summary>
public interface IBatchSource
{
    /// <summary>Number of samples in one pass (the sum of <see cref="Batch.N"/> over <see cref="Batches"/>).</summary>
    int Count { get; }

    /// <summary>
    /// The batches of epoch <paramref name="epoch"/> (0-based). A shuffling source's order must be a pure function of
    /// its seed and the epoch, so a run is reproducible and a resumed run sees the same order.
    /// </summary>
    IEnumerable<Batch> Batches(int epoch);
}

/// <summary>
/// An in-memory <see cref="IBatchSource"/> over host arrays: features (count, ...sample shape) and either Int32 labels
/// or Float32 targets. The batch tensors are allocated once (a full batch plus views for the short last batch);
/// each batch gathers its rows into pinned host memory and uploads them with one asynchronous copy per tensor (no
/// device synchronisation). With shuffling, epoch e's order
/// is a Fisher-Yates permutation drawn from SplitMix64 seeded by <c>SplitMix64.At(seed, e)</c>: a pure function of
/// (seed, epoch).
/// </summary>
public sealed class ArrayBatchSource : IBatchSource, IDisposable
{
    private readonly float[] _x;
    private readonly int[]? _labels;
    private readonly float[]? _targets;
    private readonly int _xPer, _yPer, _batchSize;
    private readonly bool _shuffle;
    private readonly ulong _seed;
    private readonly Tensor _xFull, _yFull;
    private readonly Tensor? _xTail, _yTail;
    // Two pinned host buffers per tensor, used in turn: a batch's upload is asynchronous, and the buffer is refilled
    // two batches later, after that upload has read it.
    private readonly StagingBuffer[] _xStage = new StagingBuffer[2], _yStage = new StagingBuffer[2];
    private bool _disposed;

    /// <summary>A source of Int32 class labels.</summary>
    /// <param name="device">Where the batches live.</param>
    /// <param name="x">Features, row-major (count, ...<paramref name="sampleShape"/>).</param>
    /// <param name="sampleShape">Per-sample feature shape.</param>
    /// <param name="labels">One label per sample.</param>
    /// <param name="batchSize">Samples per batch (the last batch holds the remainder).</param>
    /// <param name="shuffle">Whether each epoch visits the samples in a fresh seeded order.</param>
    /// <param name="seed">Seed of the shuffles.</param>
    public ArrayBatchSource(Device device, float[] x, int[] sampleShape, int[] labels, int batchSize, bool shuffle = false, ulong seed = 0)
        : this(device, x, sampleShape, labels, null, [], batchSize, shuffle, seed) { }

    /// <summary>A source of Float32 targets (regression, binary cross-entropy, hinge).</summary>
    /// <param name="device">Where the batches live.</param>
    /// <param name="x">Features, row-major (count, ...<paramref name="sampleShape"/>).</param>
    /// <param name="sampleShape">Per-sample feature shape.</param>
    /// <param name="targets">Targets, row-major (count, ...<paramref name="targetShape"/>).</param>
    /// <param name="targetShape">Per-sample target shape, e.g. [1] for a binary task with one logit.</param>
    /// <param name="batchSize">Samples per batch (the last batch holds the remainder).</param>
    /// <param name="shuffle">Whether each epoch visits the samples in a fresh seeded order.</param>
    /// <param name="seed">Seed of the shuffles.</param>
    public ArrayBatchSource(Device device, float[] x, int[] sampleShape, float[] targets, int[] targetShape, int batchSize, bool shuffle = false, ulong seed = 0)
        : this(device, x, sampleShape, null, targets, targetShape, batchSize, shuffle, seed) { }

    private ArrayBatchSource(Device device, float[] x, int[] sampleShape, int[]? labels, float[]? targets, int[] targetShape,
        int batchSize, bool shuffle, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(sampleShape);
        ArgumentNullException.ThrowIfNull(targetShape);
        if (sampleShape.Length == 0 || sampleShape.Any(d => d < 1))
            throw new ArgumentOutOfRangeException(nameof(sampleShape), ShapeUtil.Format(sampleShape), "sample shape needs at least one dimension, all >= 1");
        if (targetShape.Any(d => d < 1))
            throw new ArgumentOutOfRangeException(nameof(targetShape), ShapeUtil.Format(targetShape), "target shape dimensions must be >= 1");
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "batch size must be >= 1");
        _xPer = (int)ShapeUtil.Count(sampleShape);
        _yPer = (int)ShapeUtil.Count(targetShape);
        if (x.Length % _xPer != 0)
            throw new ArgumentException($"features hold {x.Length} values, not a multiple of the sample size {_xPer} of shape {ShapeUtil.Format(sampleShape)}", nameof(x));
        Count = x.Length / _xPer;
        if (Count < 1) throw new ArgumentException("the source needs at least one sample", nameof(x));
        int yLength = labels?.Length ?? targets!.Length;
        if (yLength != Count * _yPer)
            throw new ArgumentException($"{Count} samples need {Count * _yPer} {(labels is null ? "target values" : "labels")}, got {yLength}",
                labels is null ? nameof(targets) : nameof(labels));
        _x = x; _labels = labels; _targets = targets;
        _batchSize = Math.Min(batchSize, Count);
        _shuffle = shuffle;
        _seed = seed;
        int tail = Count % _batchSize;
        try
        {
            for (int i = 0; i < 2; i++)
            {
                _xStage[i] = device.AllocateStaging(_batchSize * _xPer);
                _yStage[i] = device.AllocateStaging(_batchSize * _yPer);
            }
            _xFull = device.AllocateUninitialized([_batchSize, .. sampleShape]);
            _yFull = device.AllocateUninitialized(labels is not null ? [_batchSize] : [_batchSize, .. targetShape], labels is not null ? DType.Int32 : DType.Float32);
            if (tail > 0)
            {
                _xTail = _xFull.Slice(0, [tail, .. sampleShape]);
                _yTail = _yFull.Slice(0, labels is not null ? [tail] : [tail, .. targetShape]);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    public int Count { get; }
    /// <summary>Samples per full batch.</summary>
    public int BatchSize => _batchSize;
    /// <summary>Batches per epoch.</summary>
    public int BatchCount => (Count + _batchSize - 1) / _batchSize;

    /// <summary>The sample order of epoch <paramref name="epoch"/>: identity without shuffling, else the seeded permutation.</summary>
    public int[] Order(int epoch)
    {
        var order = new int[Count];
        for (int i = 0; i < order.Length; i++) order[i] = i;
        if (!_shuffle) return order;
        var rng = new SplitMix64(SplitMix64.At(_seed, (ulong)epoch));
        for (int i = order.Length - 1; i > 0; i--)
        {
            int j = (int)(rng.NextUInt64() % (ulong)(i + 1));
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }

    /// <inheritdoc/>
    public IEnumerable<Batch> Batches(int epoch)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var order = Order(epoch);
        int k = 0;
        for (int start = 0; start < Count; start += _batchSize, k ^= 1)
        {
            int n = Math.Min(_batchSize, Count - start);
            var xs = _xStage[k].Array;   // waits for this buffer's previous upload only
            var ys = _yStage[k].Array;
            var labelBits = MemoryMarshal.Cast<float, int>(ys.AsSpan());
            for (int i = 0; i < n; i++)
            {
                int s = order[start + i];
                Array.Copy(_x, (long)s * _xPer, xs, (long)i * _xPer, _xPer);
                if (_labels is not null) labelBits[i] = _labels[s];
                else Array.Copy(_targets!, (long)s * _yPer, ys, (long)i * _yPer, _yPer);
            }
            var xt = n == _batchSize ? _xFull : _xTail!;
            var yt = n == _batchSize ? _yFull : _yTail!;
            xt.CopyFromAsync(_xStage[k]);
            yt.CopyFromAsync(_yStage[k]);
            yield return new Batch(xt, yt, n);
        }
    }

    /// <summary>Frees the batch tensors.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _xTail?.Dispose(); _yTail?.Dispose();
        _xFull?.Dispose(); _yFull?.Dispose();
        foreach (var s in _xStage) s?.Dispose();
        foreach (var s in _yStage) s?.Dispose();
    }
}
