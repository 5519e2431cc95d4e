using GpuNet.Nn;
using GpuNet.Optim;

namespace GpuNet.Training;

/// <summary>
/// Optimizers laid out for a model the usual way: two parameter groups, group 0 (<see cref="ParamGroup.Default"/>)
/// for the entries whose <see cref="ParameterEntry.Decay"/> is set (weights) and group 1 (<see cref="ParamGroup.NoDecay"/>)
/// for biases and batch-norm parameters, with one segment per run of adjacent entries of the same group.
/// </summary>
public static class OptimizerFactory
{
    /// <summary>
    /// <paramref name="options"/> with <see cref="OptimizerOptions.Segments"/> and <see cref="OptimizerOptions.Groups"/>
    /// replaced by the model's decay / no-decay layout (the other settings are kept).
    /// </summary>
    public static OptimizerOptions ForModel(this OptimizerOptions options, Model model)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(model);
        var segments = new List<ParamSegment>();
        foreach (var e in model.ParameterTable.Where(e => !e.IsBuffer).OrderBy(e => e.Offset))
        {
            int group = e.Decay ? 0 : 1;
            if (segments.Count > 0 && segments[^1] is var last && last.Group == group && last.Offset + last.Length == e.Offset)
                segments[^1] = last with { Length = checked(last.Length + (int)e.Length) };
            else
                segments.Add(new ParamSegment(e.Offset, checked((int)e.Length), group));
        }
        return options with { Segments = segments, Groups = [ParamGroup.Default, ParamGroup.NoDecay] };
    }

    /// <summary>SGD over the model's parameters, weight decay on weights only.</summary>
    public static Sgd Sgd(Model model, double lr, double momentum = 0, double weightDecay = 0, bool nesterov = false, OptimizerOptions? options = null)
        => new(model.Device, model.Parameters, Gradients(model), lr, momentum, 0, weightDecay, nesterov, (options ?? new()).ForModel(model));

    /// <summary>Adam over the model's parameters, coupled L2 on weights only.</summary>
    public static Adam Adam(Model model, double lr = 1e-3, double weightDecay = 0, OptimizerOptions? options = null)
        => new(model.Device, model.Parameters, Gradients(model), lr, weightDecay: weightDecay, options: (options ?? new()).ForModel(model));

    /// <summary>AdamW over the model's parameters, decoupled decay on weights only.</summary>
    public static Adam AdamW(Model model, double lr = 1e-3, double weightDecay = 1e-2, OptimizerOptions? options = null)
        => Optim.Adam.AdamW(model.Device, model.Parameters, Gradients(model), lr, weightDecay: weightDecay, options: (options ?? new()).ForModel(model));

    private static Tensor Gradients(Model model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model.Gradients ?? throw new ArgumentException("the model was built for inference (ModelOptions.Training = false): it has no gradients to optimise", nameof(model));
    }
}
