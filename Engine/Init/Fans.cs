namespace GpuNet.Init;

/// <summary>Which fan a fan-based scheme scales by (PyTorch's <c>mode</c>).</summary>
public enum FanMode
{
    /// <summary>Fan in: preserves the variance of activations in the forward pass (<c>fan_in</c>).</summary>
    FanIn,
    /// <summary>Fan out: preserves the variance of gradients in the backward pass (<c>fan_out</c>).</summary>
    FanOut,
}

/// <summary>The nonlinearities of PyTorch's <c>torch.nn.init.calculate_gain</c>.</summary>
public enum Nonlinearity
{
    /// <summary>Identity (and every convolution/linear layer without activation): gain 1.</summary>
    Linear,
    /// <summary>Logistic sigmoid: gain 1.</summary>
    Sigmoid,
    /// <summary>Hyperbolic tangent: gain 5/3.</summary>
    Tanh,
    /// <summary>ReLU: gain sqrt(2).</summary>
    Relu,
    /// <summary>Leaky ReLU with negative slope a: gain sqrt(2 / (1 + a^2)).</summary>
    LeakyRelu,
    /// <summary>SELU: gain 3/4 (PyTorch's value, chosen for self-normalising networks).</summary>
    Selu,
}

/// <summary>
/// Fans and gains as PyTorch computes them (<c>torch.nn.init._calculate_fan_in_and_fan_out</c>,
/// <c>_calculate_correct_fan</c>, <c>calculate_gain</c>).
/// </summary>
public static class Fans
{
    /// <summary>
    /// Fan in and fan out of a weight of shape <paramref name="shape"/>: with receptive field
    /// r = prod(shape[2..]) (1 for a matrix), fan_in = shape[1] * r and fan_out = shape[0] * r. A Linear weight
    /// (out, in) gives (in, out); a conv weight (out, in/groups, kh, kw) gives (in/groups*kh*kw, out*kh*kw).
    /// </summary>
    /// <param name="shape">The weight's shape; at least 2 dimensions, every dimension &gt;= 0.</param>
    /// <param name="scheme">The scheme asking, for messages.</param>
    /// <exception cref="ArgumentException">Fewer than 2 dimensions (a bias or a scalar): fans are undefined.</exception>
    public static (long FanIn, long FanOut) Compute(ReadOnlySpan<int> shape, string scheme = "fans")
    {
        InitChecks.Count(scheme, shape);
        if (shape.Length < 2)
            throw new ArgumentException($"{scheme}: fan in and fan out can not be computed for a tensor with fewer than 2 dimensions, got shape {ShapeUtil.Format(shape)} (a bias: use a uniform scheme with the weight's fan in, e.g. Defaults.LinearBias(fanIn))", nameof(shape));
        long receptive = 1;
        for (int i = 2; i < shape.Length; i++) receptive *= shape[i];
        return (shape[1] * receptive, shape[0] * receptive);
    }

    /// <summary>The fan that <paramref name="mode"/> selects.</summary>
    /// <param name="shape">The weight's shape (see <see cref="Compute"/>).</param>
    /// <param name="mode">Fan in or fan out.</param>
    /// <param name="scheme">The scheme asking, for messages.</param>
    public static long Select(ReadOnlySpan<int> shape, FanMode mode, string scheme = "fans")
    {
        InitChecks.Defined(scheme, nameof(mode), mode);
        var (fanIn, fanOut) = Compute(shape, scheme);
        return mode == FanMode.FanIn ? fanIn : fanOut;
    }

    /// <summary>
    /// PyTorch's <c>calculate_gain</c>: linear and sigmoid 1, tanh 5/3, relu sqrt(2), leaky_relu
    /// sqrt(2 / (1 + slope^2)) with slope <paramref name="negativeSlope"/> (0.01 when null), selu 3/4.
    /// </summary>
    /// <param name="nonlinearity">The activation that follows the layer.</param>
    /// <param name="negativeSlope">Leaky ReLU's negative slope (finite); ignored by the others.</param>
    /// <exception cref="ArgumentOutOfRangeException">An undefined nonlinearity or a non-finite slope.</exception>
    public static double Gain(Nonlinearity nonlinearity, double? negativeSlope = null)
    {
        InitChecks.Defined("calculate_gain", nameof(nonlinearity), nonlinearity);
        switch (nonlinearity)
        {
            case Nonlinearity.Tanh: return 5.0 / 3.0;
            case Nonlinearity.Relu: return Math.Sqrt(2.0);
            case Nonlinearity.Selu: return 3.0 / 4.0;
            case Nonlinearity.LeakyRelu:
                double a = negativeSlope ?? 0.01;
                InitChecks.Finite("calculate_gain", nameof(negativeSlope), a);
                return Math.Sqrt(2.0 / (1.0 + a * a));
            default: return 1.0;
        }
    }

    /// <summary>Parses PyTorch's spelling of a nonlinearity: <c>linear</c>, <c>conv1d</c>, <c>conv2d</c>,
    /// <c>conv3d</c>, <c>conv_transpose1d</c>/<c>2d</c>/<c>3d</c> (all linear), <c>sigmoid</c>, <c>tanh</c>,
    /// <c>relu</c>, <c>leaky_relu</c>, <c>selu</c>.</summary>
    /// <param name="name">The name, case-insensitive.</param>
    /// <exception cref="ArgumentException">An unknown name; the message lists the known ones.</exception>
    public static Nonlinearity ParseNonlinearity(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return name.Trim().ToLowerInvariant() switch
        {
            "linear" or "identity" or "conv1d" or "conv2d" or "conv3d"
                or "conv_transpose1d" or "conv_transpose2d" or "conv_transpose3d" => Nonlinearity.Linear,
            "sigmoid" => Nonlinearity.Sigmoid,
            "tanh" => Nonlinearity.Tanh,
            "relu" => Nonlinearity.Relu,
            "leaky_relu" => Nonlinearity.LeakyRelu,
            "selu" => Nonlinearity.Selu,
            _ => throw new ArgumentException($"calculate_gain: unknown nonlinearity '{name}'; known: linear, conv1d, conv2d, conv3d, conv_transpose1d, conv_transpose2d, conv_transpose3d, sigmoid, tanh, relu, leaky_relu, selu", nameof(name)),
        };
    }

    /// <summary>Parses PyTorch's spelling of a fan mode: <c>fan_in</c> or <c>fan_out</c>.</summary>
    /// <param name="mode">The name, case-insensitive.</param>
    /// <exception cref="ArgumentException">Any other name.</exception>
    public static FanMode ParseMode(string mode)
    {
        ArgumentNullException.ThrowIfNull(mode);
        return mode.Trim().ToLowerInvariant() switch
        {
            "fan_in" => FanMode.FanIn,
            "fan_out" => FanMode.FanOut,
            _ => throw new ArgumentException($"kaiming: mode must be one of fan_in, fan_out, got '{mode}'", nameof(mode)),
        };
    }

    internal static string Spell(Nonlinearity n) => n switch
    {
        Nonlinearity.Linear => "linear",
        Nonlinearity.Sigmoid => "sigmoid",
        Nonlinearity.Tanh => "tanh",
        Nonlinearity.Relu => "relu",
        Nonlinearity.LeakyRelu => "leaky_relu",
        _ => "selu",
    };
}
