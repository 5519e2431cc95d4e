using System.Runtime.CompilerServices;
using ILGPU.Algorithms;

namespace GpuNet.Kernels;

/// <summary>
/// Pointwise activation functions: the user-facing names (layers, checkpoints and the CLI store them). Each value is
/// defined by one struct implementing <see cref="IActivation"/>; <see cref="ActivationMath.Visit"/> maps the value
/// to its struct, in the only switch over this enum.
/// </summary>
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
/// The whole definition of one activation: its float32 scalar forms (callable from ILGPU kernels: no exceptions, no
/// <c>Math.Clamp</c>, no <c>MathF.CopySign</c>), its SIMD span forms for the host, its float64 reference (the spec)
/// and its cost. The implementing structs are empty: one generic kernel, host loop or GEMM epilogue is specialised
/// for each (<c>default(TAct).Forward(x, alpha)</c>). <c>alpha</c> is the LeakyReLU slope or the ELU scale and is
/// ignored by the others. The derivative takes both x and y = f(x) so each activation uses whichever is cheaper and
/// more accurate.
/// </summary>
public interface IActivation
{
    /// <summary>The enum value this struct defines.</summary>
    Activation Kind { get; }

    /// <summary>The alpha used when none is given (0.01 LeakyReLU, 1 ELU, 0 where alpha is unused).</summary>
    float DefaultAlpha { get; }

    /// <summary>f(x) in float32; kernel-safe.</summary>
    float Forward(float x, float alpha);

    /// <summary>f'(x) in float32 given x and y = f(x); kernel-safe.</summary>
    float Derivative(float x, float y, float alpha);

    /// <summary>float64 reference of f(x).</summary>
    double Reference(double x, double alpha);

    /// <summary>float64 reference of f'(x).</summary>
    double ReferenceDerivative(double x, double alpha);

    /// <summary>Host SIMD y = f(x) on one thread; y may be x (every element is read before it is written).</summary>
    void ForwardSpan(float alpha, ReadOnlySpan<float> x, Span<float> y);

    /// <summary>
    /// Host SIMD dx = dy * f'(x) on one thread, y = f(x) being the forward's output; dx may be dy.
    /// </summary>
    void BackwardSpan(float alpha, ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx);

    /// <summary>Estimated FLOPs per element of the forward (exp, log and tanh count <see cref="ActivationOp.TranscendentalFlops"/>).</summary>
    double ForwardFlops { get; }

    /// <summary>Estimated FLOPs per element of the backward.</summary>
    double BackwardFlops { get; }

    /// <summary>How many of x and y the host backward reads besides dy (0 to 2): its bytes per element are 4 (2 + this).</summary>
    int BackwardOperands { get; }

    /// <summary>
    /// Writes f as ONNX operators (opset 17) over the value <paramref name="x"/> into <paramref name="graph"/> and returns
    /// the name of the result (x itself for the identity); <paramref name="alpha"/> is the layer's.
    /// </summary>
    string ToOnnx(IOnnxWriter graph, string x, float alpha);
}

/// <summary>
/// Where an <see cref="IActivation"/> writes its inference form as ONNX operators (the exporter implements it, names the
/// values and builds the protobuf), so that each activation's ONNX form lives in its struct beside its other forms.
/// </summary>
public interface IOnnxWriter
{
    /// <summary>
    /// Adds the ONNX operator <paramref name="opType"/> over the named <paramref name="inputs"/>, with the float attribute
    /// <c>alpha</c> when <paramref name="alpha"/> is given; returns the name of its one output.
    /// </summary>
    string Op(string opType, string[] inputs, float? alpha = null);

    /// <summary>Adds a float scalar constant; returns its name.</summary>
    string Constant(float value);
}

/// <summary>
/// A generic operation over activations, called by <see cref="ActivationMath.Visit"/> with the struct that defines
/// an <see cref="Activation"/> value. Implement it as a (ref) struct holding the operation's arguments: the call is
/// then specialised per activation and allocates nothing.
/// </summary>
public interface IActivationVisitor
{
    /// <summary>Runs the operation for the activation <typeparamref name="TAct"/>.</summary>
    void Visit<TAct>(TAct act) where TAct : struct, IActivation;
}

/// <summary>
/// The enum-to-definition map of <see cref="Activation"/> (<see cref="Visit"/>), the enum-keyed scalar forms built on
/// it, and float32 helpers (tanh, sigmoid) shared by the activation structs.
/// </summary>
public static class ActivationMath
{
    /// <summary>sqrt(2 / pi), the GELU tanh-form constant.</summary>
    public const double GeluC = 0.7978845608028654;
    /// <summary>The cubic coefficient of the GELU tanh form.</summary>
    public const double GeluA = 0.044715;

    /// <summary>
    /// Calls <paramref name="visitor"/> with the struct that defines <paramref name="act"/>. This switch is the only
    /// place an <see cref="Activation"/> value is mapped to code.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="act"/> is not a defined <see cref="Activation"/>.</exception>
    public static void Visit<TVisitor>(Activation act, ref TVisitor visitor) where TVisitor : IActivationVisitor, allows ref struct
    {
        switch (act)
        {
            case Activation.Identity: visitor.Visit(new IdentityActivation()); return;
            case Activation.Relu: visitor.Visit(new ReluActivation()); return;
            case Activation.LeakyRelu: visitor.Visit(new LeakyReluActivation()); return;
            case Activation.Elu: visitor.Visit(new EluActivation()); return;
            case Activation.Sigmoid: visitor.Visit(new SigmoidActivation()); return;
            case Activation.Tanh: visitor.Visit(new TanhActivation()); return;
            case Activation.Gelu: visitor.Visit(new GeluActivation()); return;
            case Activation.Softplus: visitor.Visit(new SoftplusActivation()); return;
            default:
                throw new ArgumentOutOfRangeException(nameof(act), act,
                    $"unknown activation {(int)act}; expected one of {string.Join(", ", Enum.GetNames<Activation>())}");
        }
    }

    /// <summary>The struct defining <paramref name="act"/>, boxed once per activation (for cold paths: references, costs).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="act"/> is not a defined <see cref="Activation"/>.</exception>
    public static IActivation Definition(Activation act)
    {
        var v = new DefinitionVisitor();
        Visit(act, ref v);
        return v.Result!;
    }

    private struct DefinitionVisitor : IActivationVisitor
    {
        public IActivation? Result;
        public void Visit<TAct>(TAct act) where TAct : struct, IActivation => Result = Boxed<TAct>.Value;
    }

    private static class Boxed<TAct> where TAct : struct, IActivation
    {
        public static readonly IActivation Value = default(TAct);
    }

    /// <summary>The default alpha of an activation: 0.01 for LeakyReLU, 1 for ELU, unused (0) otherwise.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="act"/> is not a defined <see cref="Activation"/>.</exception>
    public static float DefaultAlpha(Activation act) => Definition(act).DefaultAlpha;

    /// <summary>float64 reference of f(x).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="act"/> is not a defined <see cref="Activation"/>.</exception>
    public static double Reference(Activation act, double x, double alpha) => Definition(act).Reference(x, alpha);

    /// <summary>float64 reference of f'(x).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="act"/> is not a defined <see cref="Activation"/>.</exception>
    public static double ReferenceDerivative(Activation act, double x, double alpha) => Definition(act).ReferenceDerivative(x, alpha);

    /// <summary>float64 logistic function, exact for either sign (no overflow of exp).</summary>
    public static double ReferenceSigmoid(double x) => x >= 0 ? 1 / (1 + Math.Exp(-x)) : Math.Exp(x) / (1 + Math.Exp(x));

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
