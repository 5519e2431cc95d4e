using GpuNet.Kernels;

namespace GpuNet.Optim;

/// <summary>
/// A fused optimizer over one flat parameter tensor and one flat gradient tensor of the same length (layers hold views
/// into them). The optimizer owns its flat state tensors and its small segment and group tables and frees them when
/// disposed; it never owns the parameters or gradients. <see cref="Step"/> is one kernel launch over the whole buffer
/// whatever the number of segments (two with <see cref="OptimizerOptions.MaxGradNorm"/>). Update rules follow the
/// pseudo-code of PyTorch's <c>torch.optim</c> step for step; see <see cref="OptimizerOp"/> for the order of the terms.
/// </summary>
public abstract class Optimizer : IDisposable
{
    private readonly OptimizerHyper _hyper;
    private readonly ParamGroup[] _groups;
    private readonly Regularization _regularization;
    private readonly int[] _segStarts, _segGroups;
    private readonly float[] _table;
    private readonly IReadOnlyList<StateSlot> _slots;
    private readonly Tensor?[] _state = new Tensor?[3];       // by StateArgument (s1, s2, s3 of the step); null when unused
    private readonly Tensor? _segTensor, _tableTensor, _norm;
    private double _learningRate, _hostSumSquares;
    private bool _disposed;

    private protected Optimizer(string name, Device device, Tensor parameters, Tensor gradients, double lr, OptimizerHyper hyper,
        Regularization regularization, OptimizerOptions? options)
    {
        ArgumentNullException.ThrowIfNull(device);
        options ??= new OptimizerOptions();
        device.Check(name, nameof(parameters), parameters);
        device.Check(name, nameof(gradients), gradients);
        Device.CheckSameLength(name, nameof(gradients), gradients, parameters);
        Name = name;
        Device = device;
        Parameters = parameters;
        Gradients = gradients;
        _learningRate = Validate.Positive("lr", lr);
        _hyper = hyper with
        {
            MaxGradNorm = options.MaxGradNorm, ClipValue = options.ClipValue, ProximalL1 = options.L1Mode == L1Mode.Proximal,
        };
        _regularization = regularization;
        _groups = (options.Groups ?? [ParamGroup.Default]).ToArray();
        if (_groups.Length == 0) throw new ArgumentException($"{name}: at least one parameter group is needed", nameof(options));
        if (_groups.Any(g => g is null)) throw new ArgumentException($"{name}: a parameter group is null", nameof(options));
        int n = (int)parameters.Length;
        (_segStarts, _segGroups) = BuildSegments(name, options.Segments ?? [new ParamSegment(0, n, 0)], n, _groups.Length);
        _table = new float[(_groups.Length + 1) * GroupTable.Stride];
        FillTable();
        _slots = _hyper.States;
        try
        {
            foreach (var slot in _slots)
            {
                var t = _state[(int)slot.Argument] = device.Zeros(n);
                if (slot.Initial != 0) device.Fill(t, (float)slot.Initial);
            }
            if (!device.IsHost)
            {
                _segTensor = device.FromArray([.. _segStarts, .. _segGroups]);
                _tableTensor = device.FromArray(_table);
                _norm = device.Zeros(2);
            }
        }
        catch
        {
            DisposeTensors();
            throw;
        }
    }

    /// <summary>The optimizer's name (Sgd, Adagrad, RmsProp, Adam, AdamW).</summary>
    public string Name { get; }
    /// <summary>The device the step runs on.</summary>
    public Device Device { get; }
    /// <summary>The flat parameter tensor (not owned).</summary>
    public Tensor Parameters { get; }
    /// <summary>The flat gradient tensor (not owned; read, never written).</summary>
    public Tensor Gradients { get; }
    /// <summary>Steps taken so far (the t of the update rules after the step is t = StepCount).</summary>
    public long StepCount { get; private set; }
    /// <summary>The parameter groups.</summary>
    public IReadOnlyList<ParamGroup> Groups => _groups;

    /// <summary>Learning rate of the next step (a schedule sets it before each step; &gt;= 0 and finite, 0 allowed for eta_min).</summary>
    public double LearningRate
    {
        get => _learningRate;
        set => _learningRate = Validate.Range(nameof(LearningRate), value, 0, true, double.PositiveInfinity, false);
    }

    /// <summary>Replaces group <paramref name="index"/> (e.g. to freeze or thaw it); the group table is uploaded again.</summary>
    public void SetGroup(int index, ParamGroup group)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(group);
        if ((uint)index >= (uint)_groups.Length)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"{Name}: group index must be in [0, {_groups.Length})");
        _groups[index] = group;
        FillTable();
        _tableTensor?.CopyFrom(_table);
    }

    /// <summary>
    /// One fused update of every non-frozen parameter from the current gradients at <see cref="LearningRate"/>.
    /// One launch (on an accelerator two kernels when clipping by global norm: the reduction, then the step).
    /// </summary>
    public void Step()
    {
        ThrowIfDisposed();
        Device.Check(Name, nameof(Parameters), Parameters);
        Device.Check(Name, nameof(Gradients), Gradients);
        StepCount++;
        int n = (int)Parameters.Length;
        var a = _hyper.Pack(StepCount, _learningRate, n, _segGroups.Length, (int)(StepCount & 1));
        if (n == 0) return;
        Device.OptimizerStep(Parameters, Gradients, _state[(int)StateArgument.S1], _state[(int)StateArgument.S2], _state[(int)StateArgument.S3],
            _segTensor, _tableTensor, _norm, _segStarts, _segGroups, _table, a, ref _hostSumSquares);
    }

    /// <summary>
    /// The global gradient norm the last step clipped with (reads it back: a synchronisation on a GPU).
    /// Only available with <see cref="OptimizerOptions.MaxGradNorm"/> set and after a step.
    /// </summary>
    public double LastGradNorm()
    {
        ThrowIfDisposed();
        if (_hyper.MaxGradNorm <= 0 || StepCount == 0)
            throw new InvalidOperationException($"{Name}: the gradient norm is computed only when clipping by norm (MaxGradNorm > 0), after a step");
        if (_norm is null) return Math.Sqrt(_hostSumSquares);
        var slots = _norm.ToArray();
        return Math.Sqrt(slots[StepCount & 1]);
    }

    /// <summary>A copy of the step count, learning rate and every state tensor, for checkpoints and exact resume.</summary>
    public OptimizerState Save()
    {
        ThrowIfDisposed();
        var tensors = new Dictionary<string, float[]>();
        foreach (var slot in _slots) tensors[slot.Name] = StateOf(slot).ToArray();
        return new OptimizerState(Name, StepCount, _learningRate, tensors);
    }

    /// <summary>Restores a state saved by an optimizer of the same kind and configuration over as many parameters.</summary>
    /// <exception cref="ArgumentException">Another optimizer kind, missing or extra state names, or wrong lengths.</exception>
    public void Restore(OptimizerState state)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(state);
        if (state.Optimizer != Name)
            throw new ArgumentException($"{Name}.Restore: the state was saved by {state.Optimizer}", nameof(state));
        var expected = _slots.Select(s => s.Name).ToHashSet();
        var missing = expected.Where(e => !state.Tensors.ContainsKey(e)).ToList();
        var extra = state.Tensors.Keys.Where(k => !expected.Contains(k)).ToList();
        if (missing.Count > 0 || extra.Count > 0)
            throw new ArgumentException($"{Name}.Restore: state tensors [{string.Join(", ", state.Tensors.Keys)}] do not match this configuration's " +
                $"[{string.Join(", ", expected)}] (missing [{string.Join(", ", missing)}], unexpected [{string.Join(", ", extra)}])", nameof(state));
        if (state.StepCount < 0) throw new ArgumentException($"{Name}.Restore: step count {state.StepCount} is negative", nameof(state));
        foreach (var slot in _slots)
            if (state.Tensors[slot.Name].Length != StateOf(slot).Length)
                throw new ArgumentException($"{Name}.Restore: state '{slot.Name}' has {state.Tensors[slot.Name].Length} elements, the optimizer has {StateOf(slot).Length}", nameof(state));
        LearningRate = state.LearningRate;
        foreach (var slot in _slots) StateOf(slot).CopyFrom(state.Tensors[slot.Name]);
        StepCount = state.StepCount;
        if (_norm is not null) Device.Fill(_norm, 0f);
    }

    /// <summary>Frees the state tensors and tables.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        DisposeTensors();
        GC.SuppressFinalize(this);
    }

    private void DisposeTensors()
    {
        foreach (var t in _state) t?.Dispose();
        _segTensor?.Dispose(); _tableTensor?.Dispose(); _norm?.Dispose();
    }

    private Tensor StateOf(StateSlot slot) => _state[(int)slot.Argument]!;

    private void ThrowIfDisposed()
    {
        if (_disposed) throw new ObjectDisposedException(Name, $"{Name}: the optimizer was disposed");
    }

    private void FillTable()
    {
        for (int i = 0; i < _groups.Length; i++)
        {
            var g = _groups[i];
            var r = g.Regularization ?? _regularization;
            new GroupSettings(g.LrScale, r.WeightDecay, r.L1, r.DecoupledWeightDecay, g.Frozen).WriteTo(_table, i);
        }
        new GroupSettings(1, 0, 0, 0, Frozen: true).WriteTo(_table, _groups.Length);   // gaps between segments
    }

    /// <summary>Dense segment table over [0, n): starts (S + 1, last = n) and groups (S); gaps get the frozen group G.</summary>
    private static (int[] Starts, int[] Groups) BuildSegments(string name, IReadOnlyList<ParamSegment> segments, int n, int groupCount)
    {
        var sorted = segments.OrderBy(s => s.Offset).ToArray();
        var starts = new List<int>(); var groups = new List<int>();
        long at = 0;
        foreach (var s in sorted)
        {
            if (s.Offset < 0 || s.Length < 0 || s.Offset + s.Length > n)
                throw new ArgumentOutOfRangeException(nameof(segments), s, $"{name}: segment [{s.Offset}, {s.Offset + s.Length}) must lie inside the {n} parameters");
            if ((uint)s.Group >= (uint)groupCount)
                throw new ArgumentOutOfRangeException(nameof(segments), s, $"{name}: segment group {s.Group} must be in [0, {groupCount})");
            if (s.Offset < at)
                throw new ArgumentException($"{name}: segment [{s.Offset}, {s.Offset + s.Length}) overlaps the previous one (ending at {at})", nameof(segments));
            if (s.Length == 0) continue;
            if (s.Offset > at) { starts.Add((int)at); groups.Add(groupCount); }
            starts.Add((int)s.Offset); groups.Add(s.Group);
            at = s.Offset + s.Length;
        }
        if (at < n || starts.Count == 0) { starts.Add((int)at); groups.Add(groupCount); }
        starts.Add(n);
        return (starts.ToArray(), groups.ToArray());
    }
}

/// <summary>
/// A saved optimizer: its kind, step count, learning rate and the named flat state tensors as host arrays
/// (PyTorch names: momentum_buffer, sum, square_avg, grad_avg, exp_avg, exp_avg_sq, max_exp_avg_sq).
/// </summary>
/// <param name="Optimizer">The optimizer's <see cref="Optimizer.Name"/>.</param>
/// <param name="StepCount">Steps taken.</param>
/// <param name="LearningRate">Learning rate at the time of saving.</param>
/// <param name="Tensors">State name to a copy of the flat state tensor.</param>
public sealed record OptimizerState(string Optimizer, long StepCount, double LearningRate, IReadOnlyDictionary<string, float[]> Tensors);
