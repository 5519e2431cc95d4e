using System.Runtime.InteropServices;
using GpuNet.Init;

namespace GpuNet.Data;

/// <summary>Which view of a data set's answers a <see cref="DataLoader"/> puts in <see cref="Batch.Y"/>.</summary>
public enum BatchTargets
{
    /// <summary>Int32 labels for a classification set, float targets for a regression set.</summary>
    Auto,
    /// <summary>Int32 class labels, Y of shape (n) (cross-entropy, multi-margin).</summary>
    Labels,
    /// <summary>Float32 targets, Y of shape (n, ...TargetShape): a classification set's labels as floats have shape (n, 1) (BCE, MSE, hinge).</summary>
    Floats,
}

/// <summary>
/// One batch on the device. The loader reuses this object (and its tensors) for every batch: read it before asking
/// for the next one, and never dispose its tensors (the loader owns them).
/// </summary>
public sealed class Batch
{
    private int[] _order = [];
    private int _start;

    internal Batch() { }

    /// <summary>Features, (n, ...SampleShape).</summary>
    public Tensor X { get; private set; } = null!;
    /// <summary>Answers: Int32 labels (n), or float32 targets (n, ...TargetShape).</summary>
    public Tensor Y { get; private set; } = null!;
    /// <summary>n, the number of samples in this batch (smaller than the batch size only for a kept last partial batch).</summary>
    public int Size { get; private set; }
    /// <summary>Index of this batch within its epoch, from 0.</summary>
    public int Index { get; private set; }
    /// <summary>The epoch the batch belongs to.</summary>
    public int Epoch { get; private set; }
    /// <summary>The data-set indices of the batch's samples, in batch order (valid until the next batch).</summary>
    public ReadOnlySpan<int> SampleIndices => _order.AsSpan(_start, Size);

    internal void Set(Tensor x, Tensor y, int size, int index, int epoch, int[] order, int start)
    {
        X = x; Y = y; Size = size; Index = index; Epoch = epoch; _order = order; _start = start;
    }
}

/// <summary>
/// Feeds a <see cref="Dataset"/> to a device in batches. The sample order of epoch <c>e</c> is a pure function of
/// (seed, e): the identity without shuffling, else a Fisher-Yates shuffle driven by
/// <c>SplitMix64(SplitMix64.At(seed, e))</c>, so a resumed run sees the same order. Batches are
/// <c>order[k*B .. k*B+B)</c>; the last partial batch is dropped or kept (then X and Y are views of the first n rows
/// of the full-batch tensors, made once at construction).
/// <para>
/// With prefetch, a background thread gathers batch k+1 into a pinned host buffer while batch k trains; each gathered
/// batch is then uploaded asynchronously (<see cref="Tensor.CopyFromAsync"/>: no device synchronisation) into one of
/// two device slots used alternately, so the copy never overwrites the batch in use.
/// Without prefetch the calling thread gathers. Steady state allocates nothing per batch (the epoch's enumerator is
/// the only allocation of an epoch). The loader owns its tensors: dispose it when done.
/// </para>
/// </summary>
public sealed class DataLoader : Training.IBatchSource, IDisposable
{
    private readonly Dataset _data;
    private readonly bool _labels;
    private readonly int[] _order;
    // Pinned host buffers the batches are gathered into and uploaded from without a device synchronisation.
    private readonly StagingBuffer[] _hostX = new StagingBuffer[2];
    private readonly StagingBuffer[] _hostY = new StagingBuffer[2];
    private readonly Slot[] _slots = new Slot[2];
    private readonly Batch _batch = new();
    private readonly int _yPerSample;
    // Prefetch worker: requests one gather at a time.
    private readonly Thread? _worker;
    private readonly SemaphoreSlim _go = new(0);
    private readonly SemaphoreSlim _done = new(0);
    private int _reqHost, _reqStart, _reqCount;
    private volatile bool _stop;
    private Exception? _workerError;
    private long _workerAllocated;
    private bool _active;
    private bool _disposed;
    private readonly AugmentRunner? _augment;
    private int _epoch;

    /// <summary>A loader of <paramref name="data"/> onto <paramref name="device"/>.</summary>
    /// <param name="device">Where the batches go.</param>
    /// <param name="data">The samples.</param>
    /// <param name="batchSize">Samples per batch (>= 1).</param>
    /// <param name="shuffle">Shuffle every epoch (seeded); false keeps the data-set order.</param>
    /// <param name="dropLast">Drop the last partial batch (every batch then has exactly <paramref name="batchSize"/> samples).</param>
    /// <param name="seed">Seed of the per-epoch shuffles.</param>
    /// <param name="prefetch">Gather the next batch on a background thread while the current one is used.</param>
    /// <param name="targets">Labels or float targets in <see cref="Batch.Y"/>.</param>
    /// <param name="augment">
    /// Optional augmentation of the features (training loaders only): applied to each gathered batch on the thread that
    /// gathers it (the prefetch thread, so it overlaps the previous batch's training), sample i of epoch e with
    /// <see cref="AugmentRunner.SampleRng"/>(<paramref name="seed"/>, e, i), so batches are the same with and without
    /// prefetch. The samples must be images, (C, H, W) or (H, W).
    /// </param>
    /// <param name="augmentParallel">
    /// Split each batch's augmentation across the host pool's threads (<see cref="AugmentRunner.Parallel"/>); the
    /// default, false, keeps it on the gathering thread (see <see cref="AugmentRunner"/> for the measurement).
    /// </param>
    /// <exception cref="ArgumentException">Bad batch size, empty data set, labels asked of a regression set, or an augmentation of non-image samples.</exception>
    public DataLoader(Device device, Dataset data, int batchSize, bool shuffle, bool dropLast, ulong seed, bool prefetch = true, BatchTargets targets = BatchTargets.Auto,
        IAugmentation? augment = null, bool augmentParallel = false)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(data);
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "DataLoader: the batch size must be at least 1");
        if (data.Count == 0) throw new ArgumentException($"DataLoader: '{data.Name}' has no samples", nameof(data));
        if (targets == BatchTargets.Labels && !data.HasLabels)
            throw new ArgumentException($"DataLoader: labels asked of '{data.Name}', which is a regression set (float targets only)", nameof(targets));
        Device = device;
        _data = data;
        BatchSize = batchSize;
        Shuffle = shuffle;
        DropLast = dropLast;
        Seed = seed;
        _labels = targets == BatchTargets.Labels || (targets == BatchTargets.Auto && data.HasLabels);
        _yPerSample = _labels ? 1 : data.TargetSize;
        _order = new int[data.Count];
        if (augment is not null) _augment = new AugmentRunner(augment, ImageShape.FromSampleShape([.. data.SampleShape]), seed, augmentParallel);
        int rem = data.Count % batchSize;
        BatchCount = data.Count / batchSize + (rem != 0 && !dropLast ? 1 : 0);

        int[] xShape = [batchSize, .. data.SampleShape];
        int[] yShape = _labels ? [batchSize] : [batchSize, .. data.TargetShape];
        try
        {
            for (int s = 0; s < 2; s++)
            {
                _hostX[s] = device.AllocateStaging(batchSize * data.SampleSize);
                _hostY[s] = device.AllocateStaging(batchSize * _yPerSample);
                var x = device.AllocateUninitialized(xShape);
                var y = device.AllocateUninitialized(yShape, _labels ? DType.Int32 : DType.Float32);
                _slots[s] = new Slot(x, y);
                if (rem != 0 && !dropLast)
                {
                    xShape[0] = rem; yShape[0] = rem;
                    _slots[s].ShortX = x.Slice(0, xShape);
                    _slots[s].ShortY = y.Slice(0, yShape);
                    xShape[0] = batchSize; yShape[0] = batchSize;
                }
            }
        }
        catch
        {
            DisposeSlots();
            throw;
        }
        if (prefetch)
        {
            _worker = new Thread(WorkerLoop) { IsBackground = true, Name = "GpuNet.DataLoader prefetch" };
            _worker.Start();
        }
    }

    /// <summary>The device the batches are on.</summary>
    public Device Device { get; }
    /// <summary>The data set.</summary>
    public Dataset Dataset => _data;
    /// <summary>Samples per full batch.</summary>
    public int BatchSize { get; }
    /// <summary>True when every epoch is shuffled.</summary>
    public bool Shuffle { get; }
    /// <summary>True when the last partial batch is dropped.</summary>
    public bool DropLast { get; }
    /// <summary>Seed of the shuffles.</summary>
    public ulong Seed { get; }
    /// <summary>True when a background thread gathers the next batch.</summary>
    public bool Prefetch => _worker is not null;
    /// <summary>Element type of <see cref="Batch.Y"/>: Int32 labels or Float32 targets.</summary>
    public DType TargetType => _labels ? DType.Int32 : DType.Float32;
    /// <summary>Batches per epoch.</summary>
    public int BatchCount { get; }
    /// <summary>The augmentation applied to the features, or null.</summary>
    public IAugmentation? Augmentation => _augment?.Augmentation;

    /// <summary>
    /// The sample order of epoch <paramref name="epoch"/> into <paramref name="destination"/> (length Count): the
    /// identity without shuffling, else Fisher-Yates (i from Count-1 down to 1, j = floor(u (i+1))) with u from
    /// <c>SplitMix64(SplitMix64.At(Seed, epoch))</c>.
    /// </summary>
    public void Order(int epoch, Span<int> destination)
    {
        if (epoch < 0) throw new ArgumentOutOfRangeException(nameof(epoch), epoch, "the epoch must be >= 0");
        if (destination.Length != _data.Count)
            throw new ArgumentException($"Order: destination has {destination.Length} elements, the data set {_data.Count}", nameof(destination));
        for (int i = 0; i < destination.Length; i++) destination[i] = i;
        if (!Shuffle) return;
        var rng = new SplitMix64(SplitMix64.At(Seed, (ulong)epoch));
        DataSplit.Shuffle(destination, ref rng);
    }

    /// <summary>Samples per epoch (the last partial batch excluded when <see cref="DropLast"/>).</summary>
    public int Count => DropLast ? BatchCount * BatchSize : _data.Count;

    IEnumerable<Training.Batch> Training.IBatchSource.Batches(int epoch)
    {
        foreach (var b in Batches(epoch)) yield return new Training.Batch(b.X, b.Y, b.Size);
    }

    /// <summary>
    /// The batches of epoch <paramref name="epoch"/>, as one reused <see cref="Batch"/> whose tensors change from
    /// batch to batch. One epoch may be enumerated at a time.
    /// </summary>
    /// <exception cref="InvalidOperationException">Another epoch of this loader is being enumerated.</exception>
    public IEnumerable<Batch> Batches(int epoch)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (epoch < 0) throw new ArgumentOutOfRangeException(nameof(epoch), epoch, "the epoch must be >= 0");
        return Enumerate(epoch);
    }

    private IEnumerable<Batch> Enumerate(int epoch)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_active) throw new InvalidOperationException("DataLoader: an epoch is already being enumerated; finish (or dispose) its enumerator first");
        _active = true;
        bool pending = false;
        try
        {
            Order(epoch, _order);
            _epoch = epoch;
            int n = _data.Count, b = BatchSize;
            if (_worker is not null) { Request(0, 0, Math.Min(b, n)); pending = true; }
            for (int k = 0; k < BatchCount; k++)
            {
                int start = k * b, size = Math.Min(b, n - start), host = k & 1;
                if (_worker is not null) { WaitWorker(); pending = false; }
                else Gather(host, start, size);
                var slot = _slots[k & 1];
                var x = size == b ? slot.X : slot.ShortX!;
                var y = size == b ? slot.Y : slot.ShortY!;
                // queued behind the previous step's work; the host buffer is reused two batches later, after its copy
                x.CopyFromAsync(_hostX[host]);
                y.CopyFromAsync(_hostY[host]);
                if (_worker is not null && k + 1 < BatchCount)
                {
                    int next = start + b;
                    Request(host ^ 1, next, Math.Min(b, n - next));
                    pending = true;
                }
                _batch.Set(x, y, size, k, epoch, _order, start);
                yield return _batch;
            }
        }
        finally
        {
            if (pending && !_disposed) { _done.Wait(); _workerError = null; }
            _active = false;
        }
    }

    // Copies samples order[start .. start+count) into host buffer `host`.
    private void Gather(int host, int start, int count)
    {
        var features = _data.FeatureArray;
        int d = _data.SampleSize;
        var hx = _hostX[host].Array;   // waits for the upload that last read it (two batches ago), not for the device
        var hy = _hostY[host].Array;
        for (int i = 0; i < count; i++)
            Array.Copy(features, (long)_order[start + i] * d, hx, (long)i * d, d);
        _augment?.Apply(hx, count, _epoch, _order, start);
        if (_labels)
        {
            var labels = _data.LabelArray!;
            var dst = MemoryMarshal.Cast<float, int>(hy.AsSpan());
            for (int i = 0; i < count; i++) dst[i] = labels[_order[start + i]];
        }
        else
        {
            var t = _data.TargetArray;
            int m = _yPerSample;
            for (int i = 0; i < count; i++) Array.Copy(t, (long)_order[start + i] * m, hy, (long)i * m, m);
        }
    }

    private void Request(int host, int start, int count)
    {
        _reqHost = host; _reqStart = start; _reqCount = count;
        _go.Release(); // a full fence: the worker sees the request fields
    }

    private void WaitWorker()
    {
        _done.Wait();
        if (_workerError is { } e)
        {
            _workerError = null;
            throw new InvalidOperationException($"DataLoader: gathering a batch of '{_data.Name}' failed: {e.Message}", e);
        }
    }

    private void WorkerLoop()
    {
        while (true)
        {
            _go.Wait();
            if (_stop) return;
            try { Gather(_reqHost, _reqStart, _reqCount); }
            catch (Exception e) { _workerError = e; }
            Volatile.Write(ref _workerAllocated, GC.GetAllocatedBytesForCurrentThread());
            _done.Release();
        }
    }

    /// <summary>
    /// Diagnostics: the managed bytes the prefetch thread has allocated (gathering and augmenting), as it recorded
    /// them after its last batch; 0 without prefetch.
    /// </summary>
    internal long PrefetchAllocatedBytes => Volatile.Read(ref _workerAllocated);

    /// <summary>Stops the prefetch thread and gives the device tensors back.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_worker is not null)
        {
            _stop = true;
            _go.Release();
            _worker.Join();
        }
        _go.Dispose();
        _done.Dispose();
        DisposeSlots();
    }

    private void DisposeSlots()
    {
        foreach (var s in _slots)
        {
            if (s is null) continue;
            s.ShortX?.Dispose(); s.ShortY?.Dispose();
            s.X.Dispose(); s.Y.Dispose();
        }
        foreach (var h in _hostX) h?.Dispose();
        foreach (var h in _hostY) h?.Dispose();
    }

    private sealed class Slot(Tensor x, Tensor y)
    {
        public Tensor X { get; } = x;
        public Tensor Y { get; } = y;
        public Tensor? ShortX { get; set; }
        public Tensor? ShortY { get; set; }
    }
}
