using System.Runtime.CompilerServices;
using ILGPU.Algorithms;

namespace GpuNet.Kernels;

/// <summary>Pointwise activation functions. The numeric value is passed to kernels, so keep it stable.</summary>
public enum Activation
{
    /// <summary>f(x) = x.</summary>
    Identity = 0,
    /// <summary>f(x) = max(x, 0).</summary>
    Relu = 1,
    /// <summary>f(x) = x for x &gt; 0, alpha * x otherwise (alpha defaults to 0.01).</summary>
    LeakyRelu = 2,
    /// <summary>f(x) = x for x &gt; 0, alpha * (exp(x) - 1) otherwise (alpha defaults to 1).</summary>
    Elu = 3,
    /// <summary>f(x) = 1 / (1 + exp(-x)), evaluated without overflow for either sign.</summary>
    Sigmoid = 4,
    /// <summary>f(x) = tanh(x).</summary>
    Tanh = 5,
    /// <summary>GELU, tanh form: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).</summary>
    Gelu = 6,
    /// <summary>f(x) = log(1 + exp(x)), evaluated as max(x, 0) + log(1 + exp(-|x|)).</summary>
    Softplus = 7,
}

/// <summary>
/// Scalar forms of every <see cref="Activation"/>: a float64 reference (the spec) and float32 versions that are
/// callable from ILGPU kernels (no exceptions, no <c>Math.Clamp</c>, no <c>MathF.CopySign</c>).
/// The derivative takes both x and y = f(x) so each activation uses whichever is cheaper and more accurate.
/// </summary>
public static class ActivationMath
{
    /// <summary>sqrt(2 / pi), the GELU tanh-form constant.</summary>
    public const double GeluC = 0.7978845608028654;
    /// <summary>The cubic coefficient of the GELU tanh form.</summary>
    public const double GeluA = 0.044715;

    /// <summary>The default alpha of an activation: 0.01 for LeakyReLU, 1 for ELU, unused (0) otherwise.</summary>
    public static float DefaultAlpha(Activation a) => a switch
    {
        Activation.LeakyRelu => 0.01f,
        Activation.Elu => 1f,
        _ => 0f,
    };

    /// <summary>float64 reference of f(x).</summary>
    public static double Reference(Activation a, double x, double alpha) => a switch
    {
        Activation.Identity => x,
        Activation.Relu => x > 0 ? x : 0,
        Activation.LeakyRelu => x > 0 ? x : alpha * x,
        Activation.Elu => x > 0 ? x : alpha * (Math.Exp(x) - 1),
        Activation.Sigmoid => x >= 0 ? 1 / (1 + Math.Exp(-x)) : Math.Exp(x) / (1 + Math.Exp(x)),
        Activation.Tanh => Math.Tanh(x),
        Activation.Gelu => 0.5 * x * (1 + Math.Tanh(GeluC * (x + GeluA * x * x * x))),
        Activation.Softplus => Math.Max(x, 0) + Math.Log(1 + Math.Exp(-Math.Abs(x))),
        _ => throw new ArgumentOutOfRangeException(nameof(a), a, "unknown activation"),
    };

    /// <summary>float64 reference of f'(x).</summary>
    public static double ReferenceDerivative(Activation a, double x, double alpha)
    {
        switch (a)
        {
            case Activation.Identity: return 1;
            case Activation.Relu: return x > 0 ? 1 : 0;
            case Activation.LeakyRelu: return x > 0 ? 1 : alpha;
            case Activation.Elu: return x > 0 ? 1 : alpha * Math.Exp(x);
            case Activation.Sigmoid: { double s = Reference(Activation.Sigmoid, x, 0); return s * (1 - s); }
            case Activation.Tanh: { double t = Math.Tanh(x); return 1 - t * t; }
            case Activation.Gelu:
                {
                    double u = GeluC * (x + GeluA * x * x * x);
                    double t = Math.Tanh(u);
                    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GeluC * (1 + 3 * GeluA * x * x);
                }
            case Activation.Softplus: return Reference(Activation.Sigmoid, x, 0);
            default: throw new ArgumentOutOfRangeException(nameof(a), a, "unknown activation");
        }
    }

    /// <summary>f(x) in float32; kernel-safe.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Forward(int a, float x, float alpha)
    {
        switch (a)
        {
            case 1: return x > 0f ? x : 0f;
            case 2: return x > 0f ? x : alpha * x;
            case 3: return x > 0f ? x : alpha * (XMath.Exp(x) - 1f);
            case 4: return Sigmoid(x);
            case 5: return Tanh(x);
            case 6: return 0.5f * x * (1f + Tanh((float)GeluC * (x + (float)GeluA * x * x * x)));
            case 7: return XMath.Max(x, 0f) + XMath.Log(1f + XMath.Exp(-XMath.Abs(x)));
            default: return x;
        }
    }

    /// <summary>f'(x) in float32 given x and y = f(x); kernel-safe.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Derivative(int a, float x, float y, float alpha)
    {
        switch (a)
        {
            case 1: return x > 0f ? 1f : 0f;
            case 2: return x > 0f ? 1f : alpha;
            case 3: return x > 0f ? 1f : y + alpha;
            case 4: return y * (1f - y);
            case 5: return 1f - y * y;
            case 6:
                {
                    float t = Tanh((float)GeluC * (x + (float)GeluA * x * x * x));
                    return 0.5f * (1f + t) + 0.5f * x * (1f - t * t) * (float)GeluC * (1f + 3f * (float)GeluA * x * x);
                }
            case 7: return Sigmoid(x);
            default: return 1f;
        }
    }

    /// <summary>
    /// tanh in float32, kernel-safe, accurate to a few ulp on every backend. <c>XMath.Tanh</c> compiles to PTX
    /// <c>tanh.approx.f32</c> (relative error up to 2^-11), too coarse for training and for the tests' tolerance.
    /// |x| &lt; 0.3: odd Taylor series to x^11 (truncation &lt; 1e-8 relative); otherwise 1 - 2 / (exp(2|x|) + 1),
    /// which saturates to 1 without overflow (exp = inf gives 2 / inf = 0). The sign is restored by a select.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Tanh(float x)
    {
        float a = XMath.Abs(x);
        float r;
        if (a < 0.3f)
        {
            float x2 = a * a;
            // tanh a = a (1 - a^2/3 + 2a^4/15 - 17a^6/315 + 62a^8/2835 - 1382a^10/155925)
            float p = -1382f / 155925f;
            p = p * x2 + 62f / 2835f;
            p = p * x2 - 17f / 315f;
            p = p * x2 + 2f / 15f;
            p = p * x2 - 1f / 3f;
            r = a + a * x2 * p;
        }
        else r = 1f - 2f / (XMath.Exp(2f * a) + 1f);
        return x < 0f ? -r : r;
    }

    /// <summary>Overflow-free logistic function in float32; kernel-safe.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sigmoid(float x)
    {
        if (x >= 0f) return 1f / (1f + XMath.Exp(-x));
        float e = XMath.Exp(x);
        return e / (1f + e);
    }
}
