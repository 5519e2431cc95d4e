using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using ILGPU.Algorithms;
using static GpuNet.Kernels.ActivationOp;

namespace GpuNet.Kernels;

// The smooth activations (sigmoid, tanh, GELU, softplus): one struct per Activation value, laid out as described in
// ActivationFunctions.cs (which holds the piecewise ones).

/// <summary>f(x) = 1 / (1 + exp(-x)), evaluated without overflow for either sign; f'(x) = y (1 - y).</summary>
public readonly struct SigmoidActivation : IActivation
{
    /// <inheritdoc/>
    public Activation Kind => Activation.Sigmoid;
    /// <inheritdoc/>
    public float DefaultAlpha => 0f;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Forward(float x, float alpha) => ActivationMath.Sigmoid(x);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Derivative(float x, float y, float alpha) => y * (1f - y);
    /// <inheritdoc/>
    public double Reference(double x, double alpha) => ActivationMath.ReferenceSigmoid(x);
    /// <inheritdoc/>
    public double ReferenceDerivative(double x, double alpha) { double s = ActivationMath.ReferenceSigmoid(x); return s * (1 - s); }
    /// <inheritdoc/>
    public void ForwardSpan(float alpha, ReadOnlySpan<float> x, Span<float> y) => TensorPrimitives.Sigmoid(x, y);
    /// <inheritdoc/>
    public void BackwardSpan(float alpha, ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx)
        => Map(new Grad(), y, dy, dx);
    /// <inheritdoc/>
    public double ForwardFlops => 2 + TranscendentalFlops;  // exp, add, divide
    /// <inheritdoc/>
    public double BackwardFlops => 3;                       // dy y (1 - y)
    /// <inheritdoc/>
    public int BackwardOperands => 1;                       // y
    /// <inheritdoc/>
    public string ToOnnx(IOnnxWriter graph, string x, float alpha) => graph.Op("Sigmoid", [x]);

    // (y, dy) -> dy y (1 - y)
    private readonly struct Grad : IOp2
    {
        public float Apply(float y, float dy) => dy * y * (1f - y);
        public Vector256<float> Apply(Vector256<float> y, Vector256<float> dy) => dy * y * (Vector256<float>.One - y);
        public Vector512<float> Apply(Vector512<float> y, Vector512<float> dy) => dy * y * (Vector512<float>.One - y);
    }
}

/// <summary>f(x) = tanh(x); f'(x) = 1 - y^2.</summary>
public readonly struct TanhActivation : IActivation
{
    /// <inheritdoc/>
    public Activation Kind => Activation.Tanh;
    /// <inheritdoc/>
    public float DefaultAlpha => 0f;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Forward(float x, float alpha) => ActivationMath.Tanh(x);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Derivative(float x, float y, float alpha) => 1f - y * y;
    /// <inheritdoc/>
    public double Reference(double x, double alpha) => Math.Tanh(x);
    /// <inheritdoc/>
    public double ReferenceDerivative(double x, double alpha) { double t = Math.Tanh(x); return 1 - t * t; }
    /// <inheritdoc/>
    public void ForwardSpan(float alpha, ReadOnlySpan<float> x, Span<float> y) => TensorPrimitives.Tanh(x, y);
    /// <inheritdoc/>
    public void BackwardSpan(float alpha, ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx)
        => Map(new Grad(), y, dy, dx);
    /// <inheritdoc/>
    public double ForwardFlops => TranscendentalFlops;
    /// <inheritdoc/>
    public double BackwardFlops => 3;   // dy (1 - y^2)
    /// <inheritdoc/>
    public int BackwardOperands => 1;   // y
    /// <inheritdoc/>
    public string ToOnnx(IOnnxWriter graph, string x, float alpha) => graph.Op("Tanh", [x]);

    // (y, dy) -> dy (1 - y^2)
    private readonly struct Grad : IOp2
    {
        public float Apply(float y, float dy) => dy * (1f - y * y);
        public Vector256<float> Apply(Vector256<float> y, Vector256<float> dy) => dy * Vector256.FusedMultiplyAdd(-y, y, Vector256<float>.One);
        public Vector512<float> Apply(Vector512<float> y, Vector512<float> dy) => dy * Vector512.FusedMultiplyAdd(-y, y, Vector512<float>.One);
    }
}

/// <summary>GELU, tanh form: f(x) = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3).</summary>
public readonly struct GeluActivation : IActivation
{
    private const float C = (float)ActivationMath.GeluC, A = (float)ActivationMath.GeluA;

    /// <inheritdoc/>
    public Activation Kind => Activation.Gelu;
    /// <inheritdoc/>
    public float DefaultAlpha => 0f;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Forward(float x, float alpha) => 0.5f * x * (1f + ActivationMath.Tanh(C * (x + A * x * x * x)));
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Derivative(float x, float y, float alpha)
    {
        float t = ActivationMath.Tanh(C * (x + A * x * x * x));
        return 0.5f * (1f + t) + 0.5f * x * (1f - t * t) * C * (1f + 3f * A * x * x);
    }
    /// <inheritdoc/>
    public double Reference(double x, double alpha)
        => 0.5 * x * (1 + Math.Tanh(ActivationMath.GeluC * (x + ActivationMath.GeluA * x * x * x)));
    /// <inheritdoc/>
    public double ReferenceDerivative(double x, double alpha)
    {
        const double c = ActivationMath.GeluC, a = ActivationMath.GeluA;
        double t = Math.Tanh(c * (x + a * x * x * x));
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * a * x * x);
    }

    /// <inheritdoc/>
    [SkipLocalsInit]
    public void ForwardSpan(float alpha, ReadOnlySpan<float> x, Span<float> y)
    {
        Span<float> t = stackalloc float[Math.Min(BlockSize, y.Length)];
        for (int s = 0; s < y.Length; s += t.Length)
        {
            int n = Math.Min(t.Length, y.Length - s);
            var xb = x.Slice(s, n); var tb = t[..n];
            Map(new Inner(), xb, tb);                       // t = c (x + a x^3)
            TensorPrimitives.Tanh(tb, tb);
            Map(new Outer(), xb, tb, y.Slice(s, n));        // y = 0.5 x (1 + t)
        }
    }

    /// <inheritdoc/>
    [SkipLocalsInit]
    public void BackwardSpan(float alpha, ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx)
    {
        Span<float> t = stackalloc float[Math.Min(BlockSize, dx.Length)];
        for (int s = 0; s < dx.Length; s += t.Length)
        {
            int n = Math.Min(t.Length, dx.Length - s);
            var xb = x.Slice(s, n); var tb = t[..n];
            Map(new Inner(), xb, tb);
            TensorPrimitives.Tanh(tb, tb);
            Map(new Grad(), xb, tb, dy.Slice(s, n), dx.Slice(s, n));
        }
    }

    /// <inheritdoc/>
    public double ForwardFlops => 7 + TranscendentalFlops;   // cubic, tanh, 0.5 x (1 + t)
    /// <inheritdoc/>
    public double BackwardFlops => 17 + TranscendentalFlops; // cubic and tanh again, then the product rule
    /// <inheritdoc/>
    public int BackwardOperands => 1;                        // x
    /// <inheritdoc/>
    /// <remarks>Opset 17 has no GELU: 0.5 x (1 + tanh(c (x + a x^3))), the tanh form <see cref="Forward"/> computes.</remarks>
    public string ToOnnx(IOnnxWriter graph, string x, float alpha)
    {
        string Mul(string a, string b) => graph.Op("Mul", [a, b]);
        string Add(string a, string b) => graph.Op("Add", [a, b]);
        string inner = Add(x, Mul(graph.Constant(A), Mul(Mul(x, x), x)));
        string t = graph.Op("Tanh", [Mul(graph.Constant(C), inner)]);
        return Mul(Mul(graph.Constant(0.5f), x), Add(graph.Constant(1f), t));
    }

    // u = c (x + a x^3) = c x (1 + a x^2)
    private readonly struct Inner : IOp1
    {
        public float Apply(float x) => C * x * MathF.FusedMultiplyAdd(A * x, x, 1f);
        public Vector256<float> Apply(Vector256<float> x) => x * C * Vector256.FusedMultiplyAdd(x * A, x, Vector256<float>.One);
        public Vector512<float> Apply(Vector512<float> x) => x * C * Vector512.FusedMultiplyAdd(x * A, x, Vector512<float>.One);
    }

    // (x, t = tanh(u)) -> 0.5 x (1 + t)
    private readonly struct Outer : IOp2
    {
        public float Apply(float x, float t) => 0.5f * x * (1f + t);
        public Vector256<float> Apply(Vector256<float> x, Vector256<float> t) => x * 0.5f * (Vector256<float>.One + t);
        public Vector512<float> Apply(Vector512<float> x, Vector512<float> t) => x * 0.5f * (Vector512<float>.One + t);
    }

    // (x, t = tanh(u), dy) -> dy (0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 a x^2))
    private readonly struct Grad : IOp3
    {
        public float Apply(float x, float t, float dy)
            => dy * (0.5f * (1f + t) + 0.5f * x * (1f - t * t) * C * (1f + 3f * A * x * x));
        public Vector256<float> Apply(Vector256<float> x, Vector256<float> t, Vector256<float> dy)
        {
            var one = Vector256<float>.One;
            var inner = Vector256.FusedMultiplyAdd(x * (3f * A), x, one) * (0.5f * C);
            var sech2 = Vector256.FusedMultiplyAdd(-t, t, one);
            return dy * Vector256.FusedMultiplyAdd(x * sech2, inner, (one + t) * 0.5f);
        }
        public Vector512<float> Apply(Vector512<float> x, Vector512<float> t, Vector512<float> dy)
        {
            var one = Vector512<float>.One;
            var inner = Vector512.FusedMultiplyAdd(x * (3f * A), x, one) * (0.5f * C);
            var sech2 = Vector512.FusedMultiplyAdd(-t, t, one);
            return dy * Vector512.FusedMultiplyAdd(x * sech2, inner, (one + t) * 0.5f);
        }
    }
}

/// <summary>f(x) = log(1 + exp(x)), evaluated as max(x, 0) + log(1 + exp(-|x|)); f'(x) = sigmoid(x).</summary>
public readonly struct SoftplusActivation : IActivation
{
    /// <inheritdoc/>
    public Activation Kind => Activation.Softplus;
    /// <inheritdoc/>
    public float DefaultAlpha => 0f;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Forward(float x, float alpha) => XMath.Max(x, 0f) + XMath.Log(1f + XMath.Exp(-XMath.Abs(x)));
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Derivative(float x, float y, float alpha) => ActivationMath.Sigmoid(x);
    /// <inheritdoc/>
    public double Reference(double x, double alpha) => Math.Max(x, 0) + Math.Log(1 + Math.Exp(-Math.Abs(x)));
    /// <inheritdoc/>
    public double ReferenceDerivative(double x, double alpha) => ActivationMath.ReferenceSigmoid(x);

    /// <inheritdoc/>
    [SkipLocalsInit]
    public void ForwardSpan(float alpha, ReadOnlySpan<float> x, Span<float> y)
    {
        Span<float> t = stackalloc float[Math.Min(BlockSize, y.Length)];
        for (int s = 0; s < y.Length; s += t.Length)
        {
            int n = Math.Min(t.Length, y.Length - s);
            var xb = x.Slice(s, n); var tb = t[..n];
            Map(new NegAbs(), xb, tb);                     // t = -|x|
            TensorPrimitives.Exp(tb, tb);
            TensorPrimitives.Add(tb, 1f, tb);
            TensorPrimitives.Log(tb, tb);                  // t = log(1 + exp(-|x|))
            Map(new Sum(), xb, tb, y.Slice(s, n));         // y = max(x, 0) + t
        }
    }

    /// <inheritdoc/>
    [SkipLocalsInit]
    public void BackwardSpan(float alpha, ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx)
    {
        Span<float> t = stackalloc float[Math.Min(BlockSize, dx.Length)];
        for (int s = 0; s < dx.Length; s += t.Length)
        {
            int n = Math.Min(t.Length, dx.Length - s);
            var tb = t[..n];
            TensorPrimitives.Sigmoid(x.Slice(s, n), tb);   // softplus' = sigmoid
            TensorPrimitives.Multiply(tb, dy.Slice(s, n), dx.Slice(s, n));
        }
    }

    /// <inheritdoc/>
    public double ForwardFlops => 5 + 2 * TranscendentalFlops;  // |x|, exp, add, log, max, add
    /// <inheritdoc/>
    public double BackwardFlops => 3 + TranscendentalFlops;     // sigmoid, multiply
    /// <inheritdoc/>
    public int BackwardOperands => 1;                           // x
    /// <inheritdoc/>
    public string ToOnnx(IOnnxWriter graph, string x, float alpha) => graph.Op("Softplus", [x]);

    private readonly struct NegAbs : IOp1
    {
        public float Apply(float x) => -MathF.Abs(x);
        public Vector256<float> Apply(Vector256<float> x) => -Vector256.Abs(x);
        public Vector512<float> Apply(Vector512<float> x) => -Vector512.Abs(x);
    }

    // (x, l = log(1 + exp(-|x|))) -> max(x, 0) + l
    private readonly struct Sum : IOp2
    {
        public float Apply(float x, float l) => new ReluActivation.PositivePart().Apply(x) + l;
        public Vector256<float> Apply(Vector256<float> x, Vector256<float> l) => new ReluActivation.PositivePart().Apply(x) + l;
        public Vector512<float> Apply(Vector512<float> x, Vector512<float> l) => new ReluActivation.PositivePart().Apply(x) + l;
    }
}
