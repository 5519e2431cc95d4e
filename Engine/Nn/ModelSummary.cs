using System.Globalization;
using System.Text;

namespace GpuNet.Nn;

/// <summary>One row of a <see cref="ModelSummary"/>.</summary>
/// <param name="Name">Node label (a fused pair, e.g. Linear + activation, shows both names).</param>
/// <param name="Kind">Layer kind.</param>
/// <param name="OutputShape">Per-sample output shape.</param>
/// <param name="Parameters">Trainable parameters the node's layers own (0 on a second use of a shared layer).</param>
/// <param name="ForwardFlops">Forward FLOPs per sample (both layers of a fused pair).</param>
/// <param name="BackwardFlops">Backward FLOPs per sample (both layers of a fused pair).</param>
/// <param name="ForwardLaunches">Kernel launches of this node's forward in one step, counted by the device.</param>
/// <param name="BackwardLaunches">Kernel launches of this node's backward in one step, counted by the device.</param>
public sealed record LayerSummary(string Name, string Kind, int[] OutputShape, long Parameters, double ForwardFlops, double BackwardFlops, long ForwardLaunches, long BackwardLaunches);

/// <summary>What a model is and costs, in the style of Keras' summary and torchinfo, with launches counted for real.</summary>
/// <param name="Layers">Rows in execution order.</param>
/// <param name="TotalParameters">All trainable parameters.</param>
/// <param name="ForwardFlopsPerSample">Forward FLOPs per sample.</param>
/// <param name="TrainingFlopsPerSample">Forward + backward FLOPs per sample.</param>
/// <param name="LaunchesPerTrainingStep">Launches of one training step: zero-grad, forward, backward (loss and optimizer not included).</param>
public sealed record ModelSummary(IReadOnlyList<LayerSummary> Layers, long TotalParameters, double ForwardFlopsPerSample, double TrainingFlopsPerSample, long LaunchesPerTrainingStep)
{
    internal static ModelSummary Measure(Model model, Node root)
    {
        bool training = model.Gradients is not null;
        using var savedBuffers = model.Device.AllocateUninitialized([(int)model.Buffers.Length]);
        model.Device.Copy(model.Buffers, savedBuffers);
        long before = model.Device.Counters.Launches;
        long step = model.Step;
        if (training) model.ZeroGrad();
        root.Forward(training);
        if (training) root.Backward();
        long launches = model.Device.Counters.Launches - before;
        // undo the measurement's side effects: gradients, running statistics, the step counter
        if (training) model.Device.Fill(model.Gradients!, 0f);
        model.Device.Copy(savedBuffers, model.Buffers);
        model.Step = step;

        var rows = new List<LayerSummary>();
        var counted = new HashSet<Layer>(ReferenceEqualityComparer.Instance);
        void Walk(Node n)
        {
            // post-order: a container's own work (the residual add) is listed after its children
            foreach (var c in n.Children) Walk(c);
            long fwd = n.ForwardLaunches - n.Children.Sum(c => c.ForwardLaunches);
            long bwd = n.BackwardLaunches - n.Children.Sum(c => c.BackwardLaunches);
            bool leaf = n.Children.Count == 0;
            if (!leaf && fwd + bwd == 0) return;
            long p = Owned(n.Layer) + (n.Fused is null ? 0 : Owned(n.Fused));
            rows.Add(new(n.Label, n.Layer.Kind, n.OutputShape, p, n.ForwardFlops, training ? n.BackwardFlops : 0, fwd, training ? bwd : 0));
        }
        long Owned(Layer l) => counted.Add(l) ? l.ParameterSpecs.Sum(s => ShapeUtil.Count(s.Shape)) : 0;
        Walk(root);
        return new ModelSummary(rows, model.ParameterCount, rows.Sum(r => r.ForwardFlops), rows.Sum(r => r.ForwardFlops + r.BackwardFlops), launches);
    }

    /// <summary>A fixed-width table followed by totals.</summary>
    public override string ToString()
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine(string.Format(inv, "{0,-26} {1,-16} {2,10} {3,12} {4,12} {5,8}", "layer", "output", "params", "fwd FLOPs", "bwd FLOPs", "launches"));
        foreach (var r in Layers)
            sb.AppendLine(string.Format(inv, "{0,-26} {1,-16} {2,10:N0} {3,12} {4,12} {5,8}", r.Name, ShapeUtil.Format(r.OutputShape), r.Parameters,
                Si(r.ForwardFlops), Si(r.BackwardFlops), $"{r.ForwardLaunches}+{r.BackwardLaunches}"));
        sb.AppendLine(string.Format(inv, "parameters: {0:N0}; FLOPs per sample: forward {1}, training {2}; launches per training step: {3}",
            TotalParameters, Si(ForwardFlopsPerSample), Si(TrainingFlopsPerSample), LaunchesPerTrainingStep));
        return sb.ToString();
    }

    private static string Si(double v) => v >= 1e9 ? $"{v / 1e9:F2}G" : v >= 1e6 ? $"{v / 1e6:F2}M" : v >= 1e3 ? $"{v / 1e3:F1}k" : $"{v:F0}";
}
