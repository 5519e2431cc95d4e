using GpuNet.Init;
using System.Text;

namespace GpuNet.Nn;

/// <summary>Options of <see cref="Model.Build"/>.</summary>
public sealed record ModelOptions
{
    /// <summary>Seed of parameter initialisation and dropout masks.</summary>
    public ulong Seed { get; init; } = 1;
    /// <summary>Build gradient buffers (false: an inference-only model, smaller, that cannot run Backward).</summary>
    public bool Training { get; init; } = true;
}

/// <summary>Where one parameter (or buffer) lives in the model's flat storage.</summary>
/// <param name="Name">PyTorch-style name: <c>layer.weight</c>.</param>
/// <param name="Layer">The owning layer.</param>
/// <param name="Offset">Offset in the flat buffer, in elements.</param>
/// <param name="Shape">Shape of the tensor.</param>
/// <param name="Decay">Whether weight decay applies (false for biases and normalisation parameters).</param>
/// <param name="IsBuffer">True for non-trainable state (running statistics), stored in <see cref="Model.Buffers"/>.</param>
public sealed record ParameterEntry(string Name, Layer Layer, long Offset, int[] Shape, bool Decay, bool IsBuffer)
{
    /// <summary>Number of elements.</summary>
    public long Length => ShapeUtil.Count(Shape);
}

/// <summary>
/// A network built for one device and batch size: a static plan of nodes whose every activation, gradient and
/// workspace buffer was allocated once, so a training step allocates nothing. All parameters live in one flat
/// <see cref="Parameters"/> tensor and their gradients in one flat <see cref="Gradients"/> tensor (layers hold views),
/// which lets a fused optimizer update the whole model in one launch. A batch smaller than the built one (the last
/// batch of an epoch) runs on a second plan made of views of the same buffers.
/// </summary>
public sealed class Model : IDisposable
{
    private readonly List<Tensor> _owned = new();
    private readonly Dictionary<int, Plan> _plans = new();
    private readonly StepClock _clock = new();
    private readonly Layer[] _layers;
    private Plan? _current;
    private bool _currentTraining;
    private bool _disposed;

    private Model(Device device, Layer network, int[] inputShape, int batchSize, ModelOptions options)
    {
        Device = device;
        Network = network;
        InputShape = inputShape;
        BatchSize = batchSize;
        Options = options;
        OutputShape = network.OutputShape(inputShape);
        _layers = CollectLayers(network);
        AssignNames();
        try
        {
            var table = new List<ParameterEntry>();
            long p = 0, b = 0;
            foreach (var layer in _layers)
            {
                foreach (var s in layer.ParameterSpecs) { table.Add(new($"{layer.Name}.{s.Name}", layer, p, s.Shape, s.Decay, false)); p += ShapeUtil.Count(s.Shape); }
                foreach (var s in layer.BufferSpecs) { table.Add(new($"{layer.Name}.{s.Name}", layer, b, s.Shape, false, true)); b += ShapeUtil.Count(s.Shape); }
            }
            ParameterTable = table;
            Parameters = Own(device.Zeros(checked((int)p)));
            Gradients = options.Training ? Own(device.Zeros(checked((int)p))) : null;
            Buffers = Own(device.Zeros(checked((int)b)));
            BindAndInitialise(table);
            _plans[batchSize] = new Plan(this, batchSize, source: null);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>
    /// Builds <paramref name="network"/> for per-sample inputs of <paramref name="inputShape"/> and batches of up to
    /// <paramref name="batchSize"/>: infers every shape (an incompatible stack fails here with a
    /// <see cref="LayerShapeException"/> naming the layer), names unnamed layers, places and initialises the
    /// parameters, and allocates every buffer.
    /// </summary>
    public static Model Build(Device device, Layer network, int[] inputShape, int batchSize, ModelOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(inputShape);
        if (inputShape.Length == 0 || inputShape.Any(d => d < 1))
            throw new ArgumentOutOfRangeException(nameof(inputShape), ShapeUtil.Format(inputShape), "per-sample input shape needs at least one dimension, all >= 1");
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "batch size must be >= 1");
        return new Model(device, network, (int[])inputShape.Clone(), batchSize, options ?? new ModelOptions());
    }

    /// <summary>The device.</summary>
    public Device Device { get; }
    /// <summary>The network description.</summary>
    public Layer Network { get; }
    /// <summary>Per-sample input shape.</summary>
    public int[] InputShape { get; }
    /// <summary>Per-sample output shape.</summary>
    public int[] OutputShape { get; }
    /// <summary>Largest batch the model runs.</summary>
    public int BatchSize { get; }
    /// <summary>Build options.</summary>
    public ModelOptions Options { get; }
    /// <summary>Every parameter and buffer, with its place in the flat storage, in build order.</summary>
    public IReadOnlyList<ParameterEntry> ParameterTable { get; }
    /// <summary>All trainable parameters, flat.</summary>
    public Tensor Parameters { get; }
    /// <summary>All parameter gradients, flat (null for an inference-only model).</summary>
    public Tensor? Gradients { get; }
    /// <summary>Non-trainable state of every layer (batch-norm running statistics), flat.</summary>
    public Tensor Buffers { get; }
    /// <summary>Trainable parameter count.</summary>
    public long ParameterCount => Parameters.Length;
    /// <summary>Training steps taken (keys dropout masks); advanced by <see cref="ZeroGrad"/>.</summary>
    public long Step { get => _clock.Step; set => _clock.Step = value; }
    /// <summary>The model's input buffer for a full batch: fill it directly to skip the copy in <see cref="Forward"/>.</summary>
    public Tensor Input => _plans[BatchSize].Input;

    /// <summary>
    /// Runs the forward pass on <paramref name="x"/> (batch, ...InputShape) with batch &lt;= <see cref="BatchSize"/>
    /// and returns the output (batch, ...OutputShape), a buffer of the model valid until the next call.
    /// </summary>
    public Tensor Forward(Tensor x, bool training)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(x);
        if (x.Rank != InputShape.Length + 1 || !x.Shape[1..].SequenceEqual(InputShape) || x.Dim(0) < 1 || x.Dim(0) > BatchSize)
            throw new ShapeMismatchException("Model.Forward", $"(n <= {BatchSize}, {string.Join(", ", InputShape)})", ShapeUtil.Format(x.Shape), "argument 'x'");
        if (training && Gradients is null) throw new InvalidOperationException("this model was built for inference (ModelOptions.Training = false)");
        var plan = PlanFor(x.Dim(0));
        if (!ReferenceEquals(x, plan.Input)) Device.Copy(x, plan.Input);
        plan.Root.Forward(training);
        _current = plan;
        _currentTraining = training;
        return plan.Root.Output;
    }

    /// <summary>The gradient of the loss w.r.t. the output of the last <see cref="Forward"/>: the loss writes it (=).</summary>
    public Tensor OutputGrad => (_current ?? throw new InvalidOperationException("call Forward first")).OutputGrad
        ?? throw new InvalidOperationException("this model was built for inference (ModelOptions.Training = false)");

    /// <summary>
    /// Backward pass of the last training-mode <see cref="Forward"/>, from <see cref="OutputGrad"/>: parameter
    /// gradients accumulate (+=) into <see cref="Gradients"/>; call <see cref="ZeroGrad"/> once per step.
    /// </summary>
    public void Backward()
    {
        ThrowIfDisposed();
        if (_current is null || !_currentTraining) throw new InvalidOperationException("Backward needs a preceding Forward(x, training: true)");
        _current.Root.Backward();
    }

    /// <summary>
    /// One training step's forward and backward: <see cref="ZeroGrad"/>, <see cref="Forward"/> in training mode, the
    /// loss (value into <paramref name="lossValue"/>, a 1-element tensor; gradient into <see cref="OutputGrad"/>), and
    /// <see cref="Backward"/>. Nothing is copied to the host.
    /// </summary>
    public void ForwardBackward(Tensor x, Tensor target, Loss loss, Tensor lossValue, float gradScale = 1f)
    {
        ArgumentNullException.ThrowIfNull(loss);
        ZeroGrad();
        var output = Forward(x, training: true);
        loss.Compute(Device, output, target, lossValue, OutputGrad, gradScale);
        Backward();
    }

    /// <summary>Zeroes every parameter gradient (one launch) and advances <see cref="Step"/>.</summary>
    public void ZeroGrad()
    {
        ThrowIfDisposed();
        if (Gradients is null) throw new InvalidOperationException("this model was built for inference (ModelOptions.Training = false)");
        Device.Fill(Gradients, 0f);
        _clock.Step++;
    }

    /// <summary>The view of one parameter by name (<c>linear1.weight</c>) in <see cref="Parameters"/> or <see cref="Buffers"/>.</summary>
    public Tensor this[string name]
    {
        get
        {
            var e = ParameterTable.FirstOrDefault(p => p.Name == name)
                ?? throw new KeyNotFoundException($"no parameter '{name}'; the model has: {string.Join(", ", ParameterTable.Select(p => p.Name))}");
            var layer = e.Layer;
            var specs = e.IsBuffer ? layer.BufferSpecs : layer.ParameterSpecs;
            int i = specs.Select(s => $"{layer.Name}.{s.Name}").ToList().IndexOf(name);
            return (e.IsBuffer ? layer.Buffers : layer.Parameters)[i];
        }
    }

    /// <summary>Per-layer shapes, parameters, FLOPs and the kernel launches of one training step, counted for real.</summary>
    public ModelSummary Summary() => ModelSummary.Measure(this, PlanFor(BatchSize).Root);

    internal Node RootNode(int batch) => PlanFor(batch).Root;
    internal IReadOnlyList<Layer> Layers => _layers;

    private Plan PlanFor(int batch)
    {
        if (!_plans.TryGetValue(batch, out var plan)) _plans[batch] = plan = new Plan(this, batch, _plans[BatchSize].Buffers);
        return plan;
    }

    /// <summary>Hands every layer the views of its entries in <paramref name="table"/> (built layer by layer, parameters then buffers) and fills them.</summary>
    private void BindAndInitialise(List<ParameterEntry> table)
    {
        int next = 0, index = 0;
        foreach (var layer in _layers)
        {
            var ps = new Tensor[layer.ParameterSpecs.Count];
            var gs = Gradients is null ? null : new Tensor[ps.Length];
            var bs = new Tensor[layer.BufferSpecs.Count];
            for (int i = 0; i < ps.Length; i++)
            {
                var e = table[next++];
                ps[i] = Own(Parameters.Slice(e.Offset, e.Shape));
                if (gs is not null) gs[i] = Own(Gradients!.Slice(e.Offset, e.Shape));
                layer.ParameterSpecs[i].Initializer.Fill(ps[i], Seeds.Derive(Options.Seed, (ulong)index++));
            }
            for (int i = 0; i < bs.Length; i++)
            {
                var e = table[next++];
                bs[i] = Own(Buffers.Slice(e.Offset, e.Shape));
                layer.BufferSpecs[i].Initializer.Fill(bs[i], 0);
            }
            layer.Bind(ps, gs, bs);
        }
    }

    /// <summary>Every layer reachable through <see cref="Layer.Children"/>, each once, in depth-first order.</summary>
    private static Layer[] CollectLayers(Layer root)
    {
        var list = new List<Layer>();
        void Walk(Layer l)
        {
            list.Add(l);
            foreach (var c in l.Children) Walk(c);
        }
        Walk(root);
        var seen = new HashSet<Layer>(ReferenceEqualityComparer.Instance);
        var unique = list.Where(seen.Add).ToArray();
        var bound = unique.FirstOrDefault(l => l.IsBound);
        if (bound is not null)
            throw new InvalidOperationException($"layer '{bound.Name}' already belongs to another live model; dispose that model first or build a new layer");
        return unique;
    }

    private void AssignNames()
    {
        var counts = new Dictionary<string, int>();
        var names = new HashSet<string>();
        foreach (var l in _layers.Where(l => l.Name is not null))
            if (!names.Add(l.Name!)) throw new ArgumentException($"two different layers are both named '{l.Name}'; layer names must be unique (sharing one layer object is fine)");
        foreach (var l in _layers.Where(l => l.Name is null))
        {
            string name;
            do
            {
                counts[l.Kind] = counts.GetValueOrDefault(l.Kind) + 1;
                name = $"{l.Kind}{counts[l.Kind]}";
            } while (!names.Add(name));
            l.Name = name;
        }
    }

    private Tensor Own(Tensor t)
    {
        _owned.Add(t);
        return t;
    }

    private void ThrowIfDisposed()
    {
        if (_disposed) throw new ObjectDisposedException(nameof(Model));
    }

    /// <summary>Frees every buffer of the model and releases its layers so they can be built into another model.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var plan in _plans.Values) plan.Dispose();
        for (int i = _owned.Count - 1; i >= 0; i--) _owned[i].Dispose();
        foreach (var l in _layers) l.Unbind();
    }

    /// <summary>One batch size's nodes and buffers.</summary>
    private sealed class Plan : IDisposable
    {
        private readonly List<Tensor> _owned = new();
        private readonly IReadOnlyList<Tensor> _views;

        public Plan(Model model, int batch, IReadOnlyList<Tensor>? source)
        {
            var ctx = source is null
                ? BuildContext.Allocating(model.Device, batch, model.Options.Training, model.Options.Seed, model._clock, _owned)
                : BuildContext.Viewing(model.Device, batch, model.Options.Training, model.Options.Seed, model._clock, source);
            Input = ctx.Batched(model.InputShape);
            Root = model.Network.CreateNode(ctx, Input, needInputGrad: false);
            if (model.Options.Training) Root.OutputGrad = OutputGrad = ctx.Batched(model.OutputShape);
            _views = ctx.Views;
        }

        public Tensor Input { get; }
        public Node Root { get; }
        public Tensor? OutputGrad { get; }
        /// <summary>The owned buffers, in allocation order (views of them make the plans of smaller batches).</summary>
        public IReadOnlyList<Tensor> Buffers => _owned;

        public void Dispose()
        {
            foreach (var v in _views) v.Dispose();
            for (int i = _owned.Count - 1; i >= 0; i--) _owned[i].Dispose();
        }
    }
}

/// <summary>Deterministic derivation of per-parameter seeds from the model seed (SplitMix64 finaliser).</summary>
internal static class Seeds
{
    public static ulong Derive(ulong seed, ulong index)
    {
        ulong z = seed + 0x9E3779B97F4A7C15UL * (index + 1);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
