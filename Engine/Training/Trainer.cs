using GpuNet.Kernels;
using GpuNet.Nn;
using GpuNet.Optim;
using GpuNet.Schedules;
using System.Diagnostics;

namespace GpuNet.Training;

/// <summary>
/// The training loop: <c>var trainer = new Trainer(model, loss, optimizer, schedule, options);</c>
/// <c>var fit = trainer.Fit(train, validation, epochs, callbacks);</c> <c>var eval = trainer.Evaluate(test);</c>
/// <c>int[] labels = trainer.Predict(data);</c>.
/// <para>
/// Host synchronisation: a training step copies nothing to the host. The step loss is added into a device
/// accumulator (<see cref="Device.Axpy"/> weighted by the batch size for a Mean-reduced loss); for accuracy, the
/// step's predictions (<see cref="Device.ArgmaxRows"/> into an Int32 tensor, or the logit for a binary task) and its
/// labels are copied into per-epoch device buffers. Once per epoch the accumulator and those buffers are read back
/// (1 + 2N values), which is also the only synchronisation of an epoch unless a callback asks for more
/// (<see cref="NanGuard"/> with a step interval, <see cref="TrainingContext.ReadStepLoss"/>).
/// </para>
/// <para>Device memory: every buffer the trainer needs is allocated at the start of Fit / Evaluate / Predict and freed at the end.</para>
/// </summary>
public sealed class Trainer
{
    private readonly List<EpochReport> _history = new();
    private double? _flopsPerSample;
    private int _epoch;
    private long _globalStep;
    private double _bestMetric = double.NaN;
    private int _bestEpoch;

    /// <summary>Creates a trainer.</summary>
    /// <param name="model">A model built for training (with gradients).</param>
    /// <param name="loss">The loss; its target type must match the batches' Y.</param>
    /// <param name="optimizer">An optimizer over <c>model.Parameters</c> and <c>model.Gradients</c> (see <see cref="OptimizerFactory"/>).</param>
    /// <param name="schedule">Optional learning-rate schedule, stepped per step or per epoch by its <see cref="LearningRateSchedule.Unit"/>.</param>
    /// <param name="options">Options.</param>
    /// <exception cref="ArgumentException">An inference-only model, or an optimizer over other parameters.</exception>
    public Trainer(Model model, Loss loss, Optimizer optimizer, LearningRateSchedule? schedule = null, TrainerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(loss);
        ArgumentNullException.ThrowIfNull(optimizer);
        if (model.Gradients is null)
            throw new ArgumentException("the model was built for inference (ModelOptions.Training = false); build it with Training = true to train", nameof(model));
        if (!ReferenceEquals(optimizer.Parameters, model.Parameters) || !ReferenceEquals(optimizer.Gradients, model.Gradients))
            throw new ArgumentException($"the optimizer ({optimizer.Name}) must update model.Parameters with model.Gradients (build it with OptimizerFactory or from those tensors)", nameof(optimizer));
        Model = model;
        Loss = loss;
        Optimizer = optimizer;
        Schedule = schedule;
        Options = options ?? new TrainerOptions();
        if (Options.Monitor is not null) MetricNames.Validate(Options.Monitor, nameof(options));
        Task = loss.Task(model.OutputShape);
        Classes = Task switch { TaskKind.MultiClass => model.OutputShape[0], TaskKind.Binary => 2, _ => 0 };
    }

    /// <summary>The model.</summary>
    public Model Model { get; }
    /// <summary>The loss.</summary>
    public Loss Loss { get; }
    /// <summary>The optimizer.</summary>
    public Optimizer Optimizer { get; }
    /// <summary>The learning-rate schedule, or null.</summary>
    public LearningRateSchedule? Schedule { get; }
    /// <summary>The options.</summary>
    public TrainerOptions Options { get; }
    /// <summary>What accuracy means here, from the loss and the output shape.</summary>
    public TaskKind Task { get; }
    /// <summary>Number of classes (2 for binary, 0 for regression).</summary>
    public int Classes { get; }
    /// <summary>Every completed epoch's report.</summary>
    public IReadOnlyList<EpochReport> History => _history;

    /// <summary>Raised after every epoch (after the callbacks); unused events cost nothing.</summary>
    public event Action<EpochReport>? EpochCompleted;
    /// <summary>Raised after every step; the report is built only when there is a subscriber.</summary>
    public event Action<BatchReport>? BatchCompleted;

    /// <summary>Forward + backward FLOPs per sample (from <see cref="Model.Summary"/>, measured once and cached).</summary>
    public double TrainingFlopsPerSample => _flopsPerSample ??= Model.Summary().TrainingFlopsPerSample;

    /// <summary>A snapshot of the resumable progress (epoch, step, best metric, history) for a checkpoint.</summary>
    public TrainerState State => new(_epoch, _globalStep, _bestMetric, _bestEpoch, _history.ToArray());

    /// <summary>
    /// Restores progress saved by <see cref="State"/>: the next Fit continues at epoch <c>Epoch + 1</c> with the
    /// schedule at the saved step, and <see cref="Model.Step"/> (dropout keys) is set to the global step. Weights and
    /// optimizer state are restored separately.
    /// </summary>
    public void Restore(TrainerState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Epoch < 0) throw new ArgumentOutOfRangeException(nameof(state), state.Epoch, "TrainerState.Epoch must be >= 0");
        if (state.GlobalStep < 0) throw new ArgumentOutOfRangeException(nameof(state), state.GlobalStep, "TrainerState.GlobalStep must be >= 0");
        if (state.History.Count != state.Epoch)
            throw new ArgumentException($"TrainerState holds {state.History.Count} epoch reports for {state.Epoch} epochs", nameof(state));
        _epoch = state.Epoch;
        _globalStep = state.GlobalStep;
        _bestMetric = state.BestMetric;
        _bestEpoch = state.BestEpoch;
        _history.Clear();
        _history.AddRange(state.History);
        Model.Step = state.GlobalStep;
    }

    /// <summary>
    /// Trains for <paramref name="epochs"/> more epochs (numbering continues from <see cref="State"/>), validating on
    /// <paramref name="validation"/> after each. Callbacks run in order, after the trainer's own (the schedule's
    /// <see cref="LearningRateScheduler"/>, then an automatic <see cref="NanGuard"/> unless one is given). Epoch e
    /// (0-based) asks <paramref name="train"/> for <c>Batches(e)</c>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="epochs"/> &lt; 1.</exception>
    /// <exception cref="InvalidOperationException">A callback monitors a metric this run does not have.</exception>
    public FitResult Fit(IBatchSource train, IBatchSource? validation, int epochs, params ICallback[] callbacks)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(callbacks);
        if (epochs < 1) throw new ArgumentOutOfRangeException(nameof(epochs), epochs, $"Fit: epochs must be >= 1, got {epochs}");
        if (callbacks.Any(c => c is null)) throw new ArgumentException("Fit: a callback is null", nameof(callbacks));
        CheckSource(train, nameof(train));
        if (validation is not null) CheckSource(validation, nameof(validation));
        string monitor = Options.Monitor ?? (validation is not null ? MetricNames.ValLoss : MetricNames.TrainLoss);
        var monitorMode = MetricNames.Resolve(monitor, Options.MonitorMode);

        var all = new List<ICallback>();
        if (Schedule is not null) all.Add(new LearningRateScheduler(Schedule));
        if (Options.StopOnNonFiniteLoss && !callbacks.Any(c => c is NanGuard)) all.Add(new NanGuard(Options.NanCheckEverySteps));
        all.AddRange(callbacks);

        var device = Model.Device;
        double flopsPerSample = TrainingFlopsPerSample;
        var total = Stopwatch.StartNew();
        int epochsRun = 0;
        using var stepLoss = device.Zeros(1);
        using var lossSum = device.Zeros(1);
        using var collector = Options.TrainAccuracy && Task != TaskKind.Regression
            ? new OutputCollector(device, Task, train.Count, keepOutputs: Task == TaskKind.Binary, Loss) : null;
        var ctx = new TrainingContext(this, validation is not null, stepLoss) { GlobalStep = _globalStep, Epoch = _epoch };
        if (Options.Monitor is not null || validation is not null) ctx.CheckMonitor(nameof(TrainerOptions) + "." + nameof(TrainerOptions.Monitor), monitor);
        int begun = 0;
        try
        {
            for (; begun < all.Count; begun++) all[begun].OnTrainBegin(ctx);
            for (int e = 0; e < epochs && !ctx.StopRequested; e++)
            {
                ctx.Epoch = _epoch + 1;
                ctx.Report = null;
                foreach (var c in all) c.OnEpochBegin(ctx);
                var sw = Stopwatch.StartNew();
                device.Fill(lossSum, 0f);
                int samples = 0, steps = 0;
                foreach (var batch in train.Batches(_epoch))
                {
                    if (samples + batch.N > train.Count)
                        throw new InvalidOperationException($"the training source yielded more samples than its Count ({train.Count}) in epoch {_epoch + 1}");
                    ctx.Batch = steps + 1;
                    ctx.CurrentBatch = batch;
                    foreach (var c in all) c.OnBatchBegin(ctx);
                    var output = Step(batch, stepLoss, lossSum);
                    collector?.Add(output, batch.Y, samples, batch.N);
                    samples += batch.N;
                    steps++;
                    ctx.GlobalStep = ++_globalStep;
                    BatchCompleted?.Invoke(new BatchReport(_epoch + 1, steps, _globalStep, samples, train.Count, Optimizer.LearningRate));
                    foreach (var c in all) c.OnBatchEnd(ctx);
                    if (ctx.StopRequested) break;
                }
                ctx.Batch = 0;
                ctx.CurrentBatch = default;
                if (ctx.StopRequested && samples < train.Count) break;   // a step-level stop: the partial epoch is not recorded
                if (samples != train.Count)
                    throw new InvalidOperationException($"the training source yielded {samples} samples in epoch {_epoch + 1}, but its Count is {train.Count}");
                double trainLoss = ReadScalar(lossSum) / samples;
                double? trainAccuracy = collector is null ? null : Accuracy(collector, samples);
                double seconds = sw.Elapsed.TotalSeconds;
                var val = validation is null ? null : Evaluate(validation);
                _epoch++;
                epochsRun++;
                var report = new EpochReport
                {
                    Epoch = _epoch, GlobalStep = _globalStep, Steps = steps, Samples = samples, TrainLoss = trainLoss, TrainAccuracy = trainAccuracy,
                    Validation = val, LearningRate = Optimizer.LearningRate, Seconds = seconds, TotalSeconds = sw.Elapsed.TotalSeconds,
                    TrainingFlops = flopsPerSample * samples,
                };
                _history.Add(report);
                if (report.Metric(monitor) is double m && !double.IsNaN(m)
                    && (double.IsNaN(_bestMetric) || (monitorMode == MonitorMode.Min ? m < _bestMetric : m > _bestMetric)))
                {
                    _bestMetric = m;
                    _bestEpoch = _epoch;
                }
                ctx.Report = report;
                foreach (var c in all) c.OnEpochEnd(ctx);
                EpochCompleted?.Invoke(report);
            }
        }
        finally
        {
            for (int i = 0; i < begun; i++) all[i].OnTrainEnd(ctx);
        }
        return new FitResult(_history.ToArray(), epochsRun, ctx.StopReason, _bestEpoch, _bestMetric, monitor, total.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// One training step, all on the device: zero-grad, forward, loss (value into <paramref name="stepLoss"/>),
    /// backward, optimizer, and the loss accumulated into <paramref name="lossSum"/> (weighted by the batch size for a
    /// Mean-reduced loss). Returns the model's output. <c>Bench summary</c> counts this method's launches.
    /// </summary>
    internal Tensor Step(Batch batch, Tensor stepLoss, Tensor lossSum)
    {
        Model.ZeroGrad();
        var output = Model.Forward(batch.X, training: true);
        Loss.Compute(Model.Device, output, batch.Y, stepLoss, Model.OutputGrad);
        Model.Backward();
        Optimizer.Step();
        Model.Device.Axpy(Loss.Reduction == LossReduction.Mean ? batch.N : 1f, stepLoss, lossSum);
        return output;
    }

    /// <summary>
    /// One pass over <paramref name="data"/> in evaluation mode (dropout off, batch-norm running statistics): the mean
    /// loss and, for classification, metrics from the labels gathered on the device and read back once.
    /// </summary>
    public EvalResult Evaluate(IBatchSource data)
    {
        ArgumentNullException.ThrowIfNull(data);
        CheckSource(data, nameof(data));
        var device = Model.Device;
        var sw = Stopwatch.StartNew();
        using var stepLoss = device.Zeros(1);
        using var lossSum = device.Zeros(1);
        using var collector = Task == TaskKind.Regression ? null
            : new OutputCollector(device, Task, data.Count, keepOutputs: Task == TaskKind.Binary || Classes == 2, Loss);
        int samples = 0;
        foreach (var batch in data.Batches(0))
        {
            CheckCount(data, samples + batch.N, "evaluation");
            var output = Model.Forward(batch.X, training: false);
            Loss.Compute(device, output, batch.Y, stepLoss, null);
            device.Axpy(Loss.Reduction == LossReduction.Mean ? batch.N : 1f, stepLoss, lossSum);
            collector?.Add(output, batch.Y, samples, batch.N);
            samples += batch.N;
        }
        CheckCount(data, samples, "evaluation", exact: true);
        double loss = ReadScalar(lossSum) / samples;
        ClassificationMetrics? metrics = null;
        if (collector is not null)
        {
            var (predicted, actual, scores) = collector.Read(samples);
            metrics = ClassificationMetrics.Compute(predicted, actual, Classes, scores);
        }
        return new EvalResult(loss, samples, metrics, sw.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// Predicted class per sample, in the order <c>data.Batches(0)</c> yields them (dataset order for an unshuffled
    /// source): the argmax for multi-class models, logit &gt; 0 for binary ones. Targets in the batches are ignored.
    /// </summary>
    /// <exception cref="InvalidOperationException">A regression model (use <see cref="PredictScores"/>).</exception>
    public int[] Predict(IBatchSource data)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (Task == TaskKind.Regression)
            throw new InvalidOperationException("Predict returns class labels, but this model's task is regression: use PredictScores");
        CheckSource(data, nameof(data));
        using var collector = new OutputCollector(Model.Device, Task, data.Count, keepOutputs: Task == TaskKind.Binary, Loss, keepLabels: false);
        int samples = 0;
        foreach (var batch in data.Batches(0))
        {
            CheckCount(data, samples + batch.N, "prediction");
            collector.Add(Model.Forward(batch.X, training: false), null, samples, batch.N);
            samples += batch.N;
        }
        CheckCount(data, samples, "prediction", exact: true);
        return collector.Read(samples).Predicted;
    }

    /// <summary>
    /// The raw model outputs (logits or regression values), row-major (samples, ...OutputShape), in the order
    /// <c>data.Batches(0)</c> yields them; gathered on the device and read back once.
    /// </summary>
    public float[] PredictScores(IBatchSource data)
    {
        ArgumentNullException.ThrowIfNull(data);
        CheckSource(data, nameof(data));
        int outPer = (int)ShapeUtil.Count(Model.OutputShape);
        using var all = Model.Device.AllocateUninitialized([checked(data.Count * outPer)]);
        int samples = 0;
        foreach (var batch in data.Batches(0))
        {
            CheckCount(data, samples + batch.N, "prediction");
            var output = Model.Forward(batch.X, training: false);
            using (var slice = all.Slice((long)samples * outPer, batch.N * outPer)) Model.Device.Copy(output, slice);
            samples += batch.N;
        }
        CheckCount(data, samples, "prediction", exact: true);
        return all.ToArray();
    }

    private static void CheckSource(IBatchSource source, string name)
    {
        if (source.Count < 1) throw new ArgumentException($"the {name} source is empty (Count = {source.Count})", name);
    }

    private static void CheckCount(IBatchSource source, int samples, string what, bool exact = false)
    {
        if (samples > source.Count || (exact && samples != source.Count))
            throw new InvalidOperationException($"the {what} source yielded {(exact ? "" : "at least ")}{samples} samples, but its Count is {source.Count}");
    }

    private static float ReadScalar(Tensor t)
    {
        Span<float> v = stackalloc float[1];
        t.CopyTo(v);
        return v[0];
    }

    private double Accuracy(OutputCollector collector, int samples)
    {
        var (predicted, actual, _) = collector.Read(samples);
        long correct = 0;
        for (int i = 0; i < samples; i++) if (predicted[i] == actual[i]) correct++;
        return (double)correct / samples;
    }

    /// <summary>
    /// Per-pass device buffers that gather each batch's predictions (argmax, Int32) or binary logits, and its labels or
    /// targets, at the batch's offset; read back once. Slice views are cached per (offset, count) so steady-state
    /// epochs create no new tensor objects.
    /// </summary>
    private sealed class OutputCollector : IDisposable
    {
        private readonly Device _device;
        private readonly TaskKind _task;
        private readonly Tensor? _predicted, _labels, _outputs;
        private readonly int _outPer;
        private readonly Loss _loss;
        private readonly Dictionary<(int, int), Tensor[]> _views = new();

        public OutputCollector(Device device, TaskKind task, int count, bool keepOutputs, Loss loss, bool keepLabels = true)
        {
            _device = device;
            _task = task;
            _loss = loss;
            _outPer = task == TaskKind.MultiClass && keepOutputs ? 2 : 1;
            try
            {
                if (task == TaskKind.MultiClass) _predicted = device.AllocateUninitialized([count], DType.Int32);
                if (keepOutputs) _outputs = device.AllocateUninitialized([checked(count * _outPer)]);
                if (keepLabels) _labels = device.AllocateUninitialized([count], task == TaskKind.MultiClass ? DType.Int32 : DType.Float32);
            }
            catch
            {
                Dispose();
                throw;
            }
        }

        /// <summary>Gathers batch rows [offset, offset + n): output (n, C) or (n, 1), y (n) Int32 or (n, 1) Float32.</summary>
        public void Add(Tensor output, Tensor? y, int offset, int n)
        {
            var v = Views(offset, n);
            if (_predicted is not null) _device.ArgmaxRows(output, v[0]);
            if (_outputs is not null) _device.Copy(output, v[1]);
            if (_labels is not null && y is not null) _device.Copy(y, v[2]);
        }

        /// <summary>Predicted labels, actual labels (empty without labels) and binary scores (empty if none) of the first <paramref name="n"/> samples.</summary>
        public (int[] Predicted, int[] Actual, float[] Scores) Read(int n)
        {
            float[] outputs = _outputs is null ? [] : _outputs.ToArray();
            float[] scores = [];
            int[] predicted;
            if (_task == TaskKind.MultiClass)
            {
                predicted = _predicted!.ToInt32Array()[..n];
                if (_outPer == 2)
                {
                    scores = new float[n];
                    for (int i = 0; i < n; i++) scores[i] = outputs[2 * i + 1] - outputs[2 * i];
                }
            }
            else
            {
                scores = outputs[..n];
                predicted = new int[n];
                for (int i = 0; i < n; i++) predicted[i] = scores[i] > 0 ? 1 : 0;
            }
            int[] actual = [];
            if (_labels is not null)
            {
                if (_task == TaskKind.MultiClass) actual = _labels.ToInt32Array()[..n];
                else
                {
                    var t = _labels.ToArray();
                    actual = new int[n];
                    for (int i = 0; i < n; i++) actual[i] = _loss.IsPositive(t[i]) ? 1 : 0;
                }
            }
            return (predicted, actual, scores);
        }

        private Tensor[] Views(int offset, int n)
        {
            if (_views.TryGetValue((offset, n), out var v)) return v;
            v = new Tensor[3];
            if (_predicted is not null) v[0] = _predicted.Slice(offset, n);
            if (_outputs is not null) v[1] = _outputs.Slice((long)offset * _outPer, n * _outPer);
            if (_labels is not null) v[2] = _labels.Slice(offset, n);
            _views[(offset, n)] = v;
            return v;
        }

        public void Dispose()
        {
            foreach (var v in _views.Values) foreach (var t in v) t?.Dispose();
            _predicted?.Dispose(); _outputs?.Dispose(); _labels?.Dispose();
        }
    }
}
