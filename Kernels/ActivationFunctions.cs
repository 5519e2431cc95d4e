using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using ILGPU.Algorithms;
using static GpuNet.Kernels.ActivationOp;

namespace GpuNet.Kernels;

// One struct per Activation value: scalar (kernel-safe) forms, host span forms, float64 reference, cost. This file
// holds the piecewise ones (identity, ReLU, LeakyReLU, ELU); ActivationFunctions.Smooth.cs the smooth ones.
// Host span forms: cheap activations are hand vector loops (ActivationOp.Map over the private IOp structs nested in
// each activation); transcendental parts go through TensorPrimitives (Exp, Log, Tanh, Sigmoid) on blocks of at most
// ActivationOp.BlockSize elements held on the stack. Every loop reads its inputs at index i before writing index i,
// so y may be x and dx may be dy.

/// <summary>f(x) = x.</summary>
public readonly struct IdentityActivation : IActivation
{
    /// <inheritdoc/>
    public Activation Kind => Activation.Identity;
    /// <inheritdoc/>
    public float DefaultAlpha => 0f;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Forward(float x, float alpha) => x;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Derivative(float x, float y, float alpha) => 1f;
    /// <inheritdoc/>
    public double Reference(double x, double alpha) => x;
    /// <inheritdoc/>
    public double ReferenceDerivative(double x, double alpha) => 1;
    /// <inheritdoc/>
    public void ForwardSpan(float alpha, ReadOnlySpan<float> x, Span<float> y) => x.CopyTo(y);
    /// <inheritdoc/>
    public void BackwardSpan(float alpha, ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx) => dy.CopyTo(dx);
    /// <inheritdoc/>
    public double ForwardFlops => 0;
    /// <inheritdoc/>
    public double BackwardFlops => 0;
    /// <inheritdoc/>
    public int BackwardOperands => 0;
    /// <inheritdoc/>
    public string ToOnnx(IOnnxWriter graph, string x, float alpha) => x;
}

/// <summary>f(x) = max(x, 0); NaN gives 0 (the compare is false).</summary>
public readonly struct ReluActivation : IActivation
{
    /// <inheritdoc/>
    public Activation Kind => Activation.Relu;
    /// <inheritdoc/>
    public float DefaultAlpha => 0f;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Forward(float x, float alpha) => x > 0f ? x : 0f;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Derivative(float x, float y, float alpha) => x > 0f ? 1f : 0f;
    /// <inheritdoc/>
    public double Reference(double x, double alpha) => x > 0 ? x : 0;
    /// <inheritdoc/>
    public double ReferenceDerivative(double x, double alpha) => x > 0 ? 1 : 0;
    /// <inheritdoc/>
    public void ForwardSpan(float alpha, ReadOnlySpan<float> x, Span<float> y) => Map(new PositivePart(), x, y);
    /// <inheritdoc/>
    public void BackwardSpan(float alpha, ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx)
        => Map(new Grad(), x, dy, dx);
    /// <inheritdoc/>
    public double ForwardFlops => 1;   // compare/select
    /// <inheritdoc/>
    public double BackwardFlops => 1;
    /// <inheritdoc/>
    public int BackwardOperands => 1;  // x
    /// <inheritdoc/>
    public string ToOnnx(IOnnxWriter graph, string x, float alpha) => graph.Op("Relu", [x]);

    /// <summary>x -> max(x, 0), NaN -> 0. Also the positive part in <see cref="SoftplusActivation"/>.</summary>
    internal readonly struct PositivePart : IOp1
    {
        public float Apply(float x) => x > 0f ? x : 0f;
        public Vector256<float> Apply(Vector256<float> x) => Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256<float>.Zero), x, Vector256<float>.Zero);
        public Vector512<float> Apply(Vector512<float> x) => Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512<float>.Zero), x, Vector512<float>.Zero);
    }

    // (x, dy) -> x > 0 ? dy : 0
    private readonly struct Grad : IOp2
    {
        public float Apply(float x, float dy) => x > 0f ? dy : 0f;
        public Vector256<float> Apply(Vector256<float> x, Vector256<float> dy) => Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256<float>.Zero), dy, Vector256<float>.Zero);
        public Vector512<float> Apply(Vector512<float> x, Vector512<float> dy) => Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512<float>.Zero), dy, Vector512<float>.Zero);
    }
}

/// <summary>f(x) = x for x &gt; 0, alpha * x otherwise (alpha defaults to 0.01).</summary>
public readonly struct LeakyReluActivation : IActivation
{
    /// <inheritdoc/>
    public Activation Kind => Activation.LeakyRelu;
    /// <inheritdoc/>
    public float DefaultAlpha => 0.01f;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Forward(float x, float alpha) => x > 0f ? x : alpha * x;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Derivative(float x, float y, float alpha) => x > 0f ? 1f : alpha;
    /// <inheritdoc/>
    public double Reference(double x, double alpha) => x > 0 ? x : alpha * x;
    /// <inheritdoc/>
    public double ReferenceDerivative(double x, double alpha) => x > 0 ? 1 : alpha;
    /// <inheritdoc/>
    public void ForwardSpan(float alpha, ReadOnlySpan<float> x, Span<float> y) => Map(new Select(alpha), x, y);
    /// <inheritdoc/>
    public void BackwardSpan(float alpha, ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx)
        => Map(new Grad(alpha), x, dy, dx);
    /// <inheritdoc/>
    public double ForwardFlops => 2;   // compare, multiply
    /// <inheritdoc/>
    public double BackwardFlops => 2;
    /// <inheritdoc/>
    public int BackwardOperands => 1;  // x
    /// <inheritdoc/>
    public string ToOnnx(IOnnxWriter graph, string x, float alpha) => graph.Op("LeakyRelu", [x], alpha);

    private readonly struct Select(float alpha) : IOp1
    {
        public float Apply(float x) => x > 0f ? x : alpha * x;
        public Vector256<float> Apply(Vector256<float> x) => Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256<float>.Zero), x, x * alpha);
        public Vector512<float> Apply(Vector512<float> x) => Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512<float>.Zero), x, x * alpha);
    }

    // (x, dy) -> x > 0 ? dy : alpha dy
    private readonly struct Grad(float alpha) : IOp2
    {
        public float Apply(float x, float dy) => x > 0f ? dy : alpha * dy;
        public Vector256<float> Apply(Vector256<float> x, Vector256<float> dy) => Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256<float>.Zero), dy, dy * alpha);
        public Vector512<float> Apply(Vector512<float> x, Vector512<float> dy) => Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512<float>.Zero), dy, dy * alpha);
    }
}

/// <summary>f(x) = x for x &gt; 0, alpha * (exp(x) - 1) otherwise (alpha defaults to 1); f'(x) = y + alpha for x &lt;= 0.</summary>
public readonly struct EluActivation : IActivation
{
    /// <inheritdoc/>
    public Activation Kind => Activation.Elu;
    /// <inheritdoc/>
    public float DefaultAlpha => 1f;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Forward(float x, float alpha) => x > 0f ? x : alpha * (XMath.Exp(x) - 1f);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Derivative(float x, float y, float alpha) => x > 0f ? 1f : y + alpha;
    /// <inheritdoc/>
    public double Reference(double x, double alpha) => x > 0 ? x : alpha * (Math.Exp(x) - 1);
    /// <inheritdoc/>
    public double ReferenceDerivative(double x, double alpha) => x > 0 ? 1 : alpha * Math.Exp(x);

    /// <inheritdoc/>
    [SkipLocalsInit]
    public void ForwardSpan(float alpha, ReadOnlySpan<float> x, Span<float> y)
    {
        Span<float> t = stackalloc float[Math.Min(BlockSize, y.Length)];
        for (int s = 0; s < y.Length; s += t.Length)
        {
            int n = Math.Min(t.Length, y.Length - s);
            var xb = x.Slice(s, n); var tb = t[..n];
            Map(new NegativePart(), xb, tb);               // t = min(x, 0)
            TensorPrimitives.Exp(tb, tb);                  // t = exp(min(x, 0)): never overflows
            Map(new Select(alpha), xb, tb, y.Slice(s, n));
        }
    }

    /// <inheritdoc/>
    public void BackwardSpan(float alpha, ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx)
        => Map(new Grad(alpha), x, y, dy, dx);
    /// <inheritdoc/>
    public double ForwardFlops => 3 + TranscendentalFlops;  // exp, subtract, multiply, compare
    /// <inheritdoc/>
    public double BackwardFlops => 3;                       // compare, add, multiply
    /// <inheritdoc/>
    public int BackwardOperands => 2;                       // x and y
    /// <inheritdoc/>
    public string ToOnnx(IOnnxWriter graph, string x, float alpha) => graph.Op("Elu", [x], alpha);

    private readonly struct NegativePart : IOp1
    {
        public float Apply(float x) => x > 0f ? 0f : x;
        public Vector256<float> Apply(Vector256<float> x) => Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256<float>.Zero), Vector256<float>.Zero, x);
        public Vector512<float> Apply(Vector512<float> x) => Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512<float>.Zero), Vector512<float>.Zero, x);
    }

    // (x, e = exp(min(x, 0))) -> x > 0 ? x : alpha (e - 1)
    private readonly struct Select(float alpha) : IOp2
    {
        public float Apply(float x, float e) => x > 0f ? x : alpha * (e - 1f);
        public Vector256<float> Apply(Vector256<float> x, Vector256<float> e) => Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256<float>.Zero), x, (e - Vector256<float>.One) * alpha);
        public Vector512<float> Apply(Vector512<float> x, Vector512<float> e) => Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512<float>.Zero), x, (e - Vector512<float>.One) * alpha);
    }

    // (x, y, dy) -> x > 0 ? dy : dy (y + alpha), since f'(x) = alpha exp(x) = y + alpha for x <= 0
    private readonly struct Grad(float alpha) : IOp3
    {
        public float Apply(float x, float y, float dy) => x > 0f ? dy : dy * (y + alpha);
        public Vector256<float> Apply(Vector256<float> x, Vector256<float> y, Vector256<float> dy)
            => Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256<float>.Zero), dy, dy * (y + Vector256.Create(alpha)));
        public Vector512<float> Apply(Vector512<float> x, Vector512<float> y, Vector512<float> dy)
            => Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512<float>.Zero), dy, dy * (y + Vector512.Create(alpha)));
    }
}
