namespace GpuNet.Nn;

/// <summary>
/// One use of a layer inside a built plan: it owns (or views) its output and input-gradient buffers, which were
/// allocated once at build time. Forward reads <c>input</c> and writes <see cref="Output"/>; Backward reads
/// <see cref="OutputGrad"/>, accumulates parameter gradients (+=) and overwrites <see cref="InputGrad"/> (=).
/// </summary>
internal abstract class Node
{
    protected Node(Layer layer, BuildContext ctx, Tensor input, int[] outputShape, Layer? fused = null)
    {
        Layer = layer;
        Fused = fused;
        Device = ctx.Device;
        Input = input;
        InputShape = input.Shape[1..].ToArray();
        OutputShape = outputShape;
        Batch = ctx.Batch;
    }

    private Tensor? _outputGrad;

    public Layer Layer { get; }
    /// <summary>
    /// The successor layer this node runs together with <see cref="Layer"/> (see <see cref="Nn.Layer.CreateFusedNode"/>),
    /// or null. It takes <see cref="OutputShape"/> per sample (a fused successor keeps the shape).
    /// </summary>
    public Layer? Fused { get; }
    public Device Device { get; }
    /// <summary>Input (batch, ...InputShape): the previous node's output, fixed for the life of the plan.</summary>
    public Tensor Input { get; }
    /// <summary>Per-sample input shape.</summary>
    public int[] InputShape { get; }
    /// <summary>Per-sample output shape.</summary>
    public int[] OutputShape { get; }
    public int Batch { get; }

    /// <summary>Output (batch, ...OutputShape).</summary>
    public Tensor Output { get; protected set; } = null!;
    /// <summary>
    /// Gradient of the loss w.r.t. the output, written by the consumer (=) before Backward. Set once at build time,
    /// from the last node backwards, so a node can derive its <see cref="InputGrad"/> from it (views, sums).
    /// </summary>
    public Tensor? OutputGrad
    {
        get => _outputGrad;
        set { _outputGrad = value; OnOutputGrad(value); }
    }

    /// <summary>Called when <see cref="OutputGrad"/> is set.</summary>
    protected virtual void OnOutputGrad(Tensor? grad) { }
    /// <summary>Gradient w.r.t. the input (batch, ...InputShape), or null when nothing upstream needs it.</summary>
    public Tensor? InputGrad { get; protected set; }

    /// <summary>Label in the summary (<c>linear1 + relu1</c> for a fused pair).</summary>
    public string Label => Fused is null ? Layer.Name! : $"{Layer.Name} + {Fused.Name}";

    /// <summary>Forward FLOPs per sample of this node's own work: both layers of a fused pair, children excluded.</summary>
    public double ForwardFlops => Layer.ForwardFlops(InputShape) + (Fused?.ForwardFlops(OutputShape) ?? 0);

    /// <summary>
    /// Backward FLOPs per sample of this node's own work: both layers of a fused pair, children excluded, less the
    /// input gradient's share when nobody needs it (no <see cref="InputGrad"/>).
    /// </summary>
    public double BackwardFlops => Layer.BackwardFlops(InputShape) - (InputGrad is null ? Layer.InputGradFlops(InputShape) : 0)
        + (Fused?.BackwardFlops(OutputShape) ?? 0);

    /// <summary>Child nodes of a container, in forward order (none for a leaf).</summary>
    public virtual IReadOnlyList<Node> Children => [];

    /// <summary>
    /// Launches of the last forward, children included (read by the model summary). Always counted: a process-wide
    /// switch would let one thread's summary turn counting off under another's.
    /// </summary>
    public long ForwardLaunches { get; private set; }
    /// <summary>Launches of the last backward, children included.</summary>
    public long BackwardLaunches { get; private set; }

    /// <summary>Forward pass: reads <see cref="Input"/>, writes <see cref="Output"/>.</summary>
    public void Forward(bool training)
    {
        long before = Device.Counters.Launches;
        ForwardCore(training);
        ForwardLaunches = Device.Counters.Launches - before;
    }

    /// <summary>Backward pass (training mode only).</summary>
    public void Backward()
    {
        long before = Device.Counters.Launches;
        BackwardCore();
        BackwardLaunches = Device.Counters.Launches - before;
    }

    protected abstract void ForwardCore(bool training);
    protected abstract void BackwardCore();

    /// <summary>Full shape with the batch dimension first.</summary>
    protected static int[] WithBatch(int batch, int[] shape) => [batch, .. shape];
}

/// <summary>
/// Hands out the buffers of a plan. The first plan of a model (its full batch) allocates owned tensors; a plan for a
/// smaller batch replays the same sequence of requests and receives views of the first rows of those tensors, so a
/// short last batch costs no device memory.
/// </summary>
internal sealed class BuildContext
{
    private readonly List<Tensor> _owned;
    private readonly IReadOnlyList<Tensor>? _source;
    private readonly List<Tensor> _views = new();
    private int _next;

    private BuildContext(Device device, int batch, bool training, ulong seed, List<Tensor> owned, IReadOnlyList<Tensor>? source)
    {
        Device = device;
        Batch = batch;
        Training = training;
        Seed = seed;
        _owned = owned;
        _source = source;
    }

    public Device Device { get; }
    public int Batch { get; }
    /// <summary>True when gradient buffers are built (a model built for inference has none).</summary>
    public bool Training { get; }
    public ulong Seed { get; }
    /// <summary>Counter giving each dropout node its own stream.</summary>
    public int NodeIndex { get; set; }
    /// <summary>The model's step counter.</summary>
    public StepClock Clock { get; init; } = new();

    public static BuildContext Allocating(Device device, int batch, bool training, ulong seed, StepClock clock, List<Tensor> owned)
        => new(device, batch, training, seed, owned, null) { Clock = clock };

    public static BuildContext Viewing(Device device, int batch, bool training, ulong seed, StepClock clock, IReadOnlyList<Tensor> source)
        => new(device, batch, training, seed, [], source) { Clock = clock };

    /// <summary>Views made by a viewing context (disposed with the plan).</summary>
    public IReadOnlyList<Tensor> Views => _views;

    /// <summary>A buffer of <paramref name="shape"/> (zeroed when newly allocated).</summary>
    public Tensor Buffer(int[] shape, DType dtype = DType.Float32)
    {
        if (_source is null)
        {
            var t = Device.Allocate(shape, dtype);
            _owned.Add(t);
            return t;
        }
        var src = _source[_next++];
        var view = src.Slice(0, shape);
        _views.Add(view);
        return view;
    }

    /// <summary>A buffer whose first dimension is the batch.</summary>
    public Tensor Batched(int[] perSample, DType dtype = DType.Float32) => Buffer([Batch, .. perSample], dtype);
}
