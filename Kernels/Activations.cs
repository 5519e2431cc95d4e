using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using ILGPU;
using ILGPU.Runtime;

namespace GpuNet.Kernels;

/// <summary>
/// Pointwise activations over flat arrays: forward y = f(x), backward dx = dy * f'(x), for every
/// <see cref="Activation"/> with its <c>alpha</c> (LeakyReLU slope, ELU scale; ignored by the others).
/// Gradient contract: activation gradients overwrite (dx =), they never accumulate.
/// x, y, dy, dx: flat (n). Forward may run in place (y is x); backward may write dx over dy.
/// The backward uses y = f(x) where that is cheaper (ELU, sigmoid, tanh), so y must be the forward's output.
/// </summary>
public static class ActivationOp
{
    // ---- float64 reference (the spec) ---------------------------------------------------------------------------

    /// <summary>Reference forward: y[i] = f(x[i]).</summary>
    public static void Reference(Activation act, double alpha, ReadOnlySpan<double> x, Span<double> y)
    {
        for (int i = 0; i < y.Length; i++) y[i] = ActivationMath.Reference(act, x[i], alpha);
    }

    /// <summary>Reference backward: dx[i] = dy[i] * f'(x[i]).</summary>
    public static void ReferenceBackward(Activation act, double alpha, ReadOnlySpan<double> x, ReadOnlySpan<double> dy, Span<double> dx)
    {
        for (int i = 0; i < dx.Length; i++) dx[i] = dy[i] * ActivationMath.ReferenceDerivative(act, x[i], alpha);
    }

    // ---- ILGPU kernels ------------------------------------------------------------------------------------------

    /// <summary>y[i] = f(x[i]); <paramref name="act"/> is the numeric <see cref="Activation"/>.</summary>
    [GpuKernel]
    public static void ForwardKernel(Index1D i, ArrayView<float> x, ArrayView<float> y, int act, float alpha)
        => y[i] = ActivationMath.Forward(act, x[i], alpha);

    /// <summary>dx[i] = dy[i] * f'(x[i]), with y = f(x) given.</summary>
    [GpuKernel]
    public static void BackwardKernel(Index1D i, ArrayView<float> x, ArrayView<float> y, ArrayView<float> dy, ArrayView<float> dx, int act, float alpha)
        => dx[i] = dy[i] * ActivationMath.Derivative(act, x[i], y[i], alpha);

    // ---- launchers ----------------------------------------------------------------------------------------------

    /// <summary>Launches <see cref="ForwardKernel"/> over y.Length elements.</summary>
    public static void Launch(KernelCache k, Activation act, float alpha, ArrayView<float> x, ArrayView<float> y)
    {
        k.Get(ForwardKernel, acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, float>(ForwardKernel))
            ((int)y.Length, x, y, (int)act, alpha);
        k.CountLaunch();
    }

    /// <summary>Launches <see cref="BackwardKernel"/> over dx.Length elements.</summary>
    public static void LaunchBackward(KernelCache k, Activation act, float alpha, ArrayView<float> x, ArrayView<float> y, ArrayView<float> dy, ArrayView<float> dx)
    {
        k.Get(BackwardKernel, acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>(BackwardKernel))
            ((int)dx.Length, x, y, dy, dx, (int)act, alpha);
        k.CountLaunch();
    }

    // ---- SIMD host implementation -------------------------------------------------------------------------------
    // Cheap activations are hand vector loops (Vector512, else Vector256, scalar tail); transcendental parts go
    // through TensorPrimitives (Exp, Log, Tanh, Sigmoid) on blocks of BlockSize elements held on the stack.
    // Every loop reads its inputs at index i before writing index i, so y may be x and dx may be dy.

    private const int BlockSize = 1024;

    /// <summary>Host y = f(x); y may be x.</summary>
    public static void Host(Activation act, float alpha, ArraySegment<float> x, ArraySegment<float> y)
        => HostSimd.ForChunks(y.Count, (act, alpha, x, y), static (t, s, n) => ForwardSpan(t.act, t.alpha, t.x.AsSpan(s, n), t.y.AsSpan(s, n)));

    /// <summary>Host dx = dy * f'(x), with y = f(x); dx may be dy.</summary>
    public static void HostBackward(Activation act, float alpha, ArraySegment<float> x, ArraySegment<float> y, ArraySegment<float> dy, ArraySegment<float> dx)
        => HostSimd.ForChunks(dx.Count, (act, alpha, x, y, dy, dx), static (t, s, n) => BackwardSpan(t.act, t.alpha, t.x.AsSpan(s, n), t.y.AsSpan(s, n), t.dy.AsSpan(s, n), t.dx.AsSpan(s, n)));

    /// <summary>Single-threaded host forward over spans (the body of <see cref="Host"/>).</summary>
    public static void ForwardSpan(Activation act, float alpha, ReadOnlySpan<float> x, Span<float> y)
    {
        switch (act)
        {
            case Activation.Identity: x.CopyTo(y); return;
            case Activation.Relu: Map(new ReluOp(), x, y); return;
            case Activation.LeakyRelu: Map(new LeakyOp(alpha), x, y); return;
            case Activation.Sigmoid: TensorPrimitives.Sigmoid(x, y); return;
            case Activation.Tanh: TensorPrimitives.Tanh(x, y); return;
        }
        Span<float> t = stackalloc float[BlockSize];
        for (int s = 0; s < y.Length; s += BlockSize)
        {
            int n = Math.Min(BlockSize, y.Length - s);
            var xb = x.Slice(s, n); var yb = y.Slice(s, n); var tb = t[..n];
            switch (act)
            {
                case Activation.Elu:
                    Map(new NegPartOp(), xb, tb);                  // t = min(x, 0)
                    TensorPrimitives.Exp(tb, tb);                  // t = exp(min(x, 0)): never overflows
                    Map(new EluOp(alpha), xb, tb, yb);
                    break;
                case Activation.Gelu:
                    Map(new GeluInnerOp(), xb, tb);                // t = c (x + a x^3)
                    TensorPrimitives.Tanh(tb, tb);
                    Map(new GeluOp(), xb, tb, yb);                 // y = 0.5 x (1 + t)
                    break;
                case Activation.Softplus:
                    Map(new NegAbsOp(), xb, tb);                   // t = -|x|
                    TensorPrimitives.Exp(tb, tb);
                    TensorPrimitives.Add(tb, 1f, tb);
                    TensorPrimitives.Log(tb, tb);                  // t = log(1 + exp(-|x|))
                    Map(new SoftplusOp(), xb, tb, yb);             // y = max(x, 0) + t
                    break;
                default: throw new ArgumentOutOfRangeException(nameof(act), act, "unknown activation");
            }
        }
    }

    /// <summary>Single-threaded host backward over spans (the body of <see cref="HostBackward"/>).</summary>
    public static void BackwardSpan(Activation act, float alpha, ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx)
    {
        switch (act)
        {
            case Activation.Identity: dy.CopyTo(dx); return;
            case Activation.Relu: Map(new ReluGradOp(), x, dy, dx); return;
            case Activation.LeakyRelu: Map(new LeakyGradOp(alpha), x, dy, dx); return;
            case Activation.Elu: Map(new EluGradOp(alpha), x, y, dy, dx); return;
            case Activation.Sigmoid: Map(new SigmoidGradOp(), y, dy, dx); return;
            case Activation.Tanh: Map(new TanhGradOp(), y, dy, dx); return;
        }
        Span<float> t = stackalloc float[BlockSize];
        for (int s = 0; s < dx.Length; s += BlockSize)
        {
            int n = Math.Min(BlockSize, dx.Length - s);
            var xb = x.Slice(s, n); var dyb = dy.Slice(s, n); var dxb = dx.Slice(s, n); var tb = t[..n];
            switch (act)
            {
                case Activation.Gelu:
                    Map(new GeluInnerOp(), xb, tb);
                    TensorPrimitives.Tanh(tb, tb);
                    Map(new GeluGradOp(), xb, tb, dyb, dxb);
                    break;
                case Activation.Softplus:
                    TensorPrimitives.Sigmoid(xb, tb);              // softplus' = sigmoid
                    TensorPrimitives.Multiply(tb, dyb, dxb);
                    break;
                default: throw new ArgumentOutOfRangeException(nameof(act), act, "unknown activation");
            }
        }
    }

    // Vector-op drivers: one body per op, three widths.

    internal interface IOp1
    {
        float Apply(float a);
        Vector256<float> Apply(Vector256<float> a);
        Vector512<float> Apply(Vector512<float> a);
    }

    internal interface IOp2
    {
        float Apply(float a, float b);
        Vector256<float> Apply(Vector256<float> a, Vector256<float> b);
        Vector512<float> Apply(Vector512<float> a, Vector512<float> b);
    }

    internal interface IOp3
    {
        float Apply(float a, float b, float c);
        Vector256<float> Apply(Vector256<float> a, Vector256<float> b, Vector256<float> c);
        Vector512<float> Apply(Vector512<float> a, Vector512<float> b, Vector512<float> c);
    }

    internal static void Map<T>(T op, ReadOnlySpan<float> a, Span<float> r) where T : struct, IOp1
    {
        int n = r.Length, i = 0;
        ref float pa = ref MemoryMarshal.GetReference(a); ref float pr = ref MemoryMarshal.GetReference(r);
        if (Vector512.IsHardwareAccelerated)
            for (; i <= n - 16; i += 16) op.Apply(Vector512.LoadUnsafe(ref pa, (nuint)i)).StoreUnsafe(ref pr, (nuint)i);
        else if (Vector256.IsHardwareAccelerated)
            for (; i <= n - 8; i += 8) op.Apply(Vector256.LoadUnsafe(ref pa, (nuint)i)).StoreUnsafe(ref pr, (nuint)i);
        for (; i < n; i++) r[i] = op.Apply(a[i]);
    }

    internal static void Map<T>(T op, ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> r) where T : struct, IOp2
    {
        int n = r.Length, i = 0;
        ref float pa = ref MemoryMarshal.GetReference(a); ref float pb = ref MemoryMarshal.GetReference(b);
        ref float pr = ref MemoryMarshal.GetReference(r);
        if (Vector512.IsHardwareAccelerated)
            for (; i <= n - 16; i += 16)
                op.Apply(Vector512.LoadUnsafe(ref pa, (nuint)i), Vector512.LoadUnsafe(ref pb, (nuint)i)).StoreUnsafe(ref pr, (nuint)i);
        else if (Vector256.IsHardwareAccelerated)
            for (; i <= n - 8; i += 8)
                op.Apply(Vector256.LoadUnsafe(ref pa, (nuint)i), Vector256.LoadUnsafe(ref pb, (nuint)i)).StoreUnsafe(ref pr, (nuint)i);
        for (; i < n; i++) r[i] = op.Apply(a[i], b[i]);
    }

    internal static void Map<T>(T op, ReadOnlySpan<float> a, ReadOnlySpan<float> b, ReadOnlySpan<float> c, Span<float> r) where T : struct, IOp3
    {
        int n = r.Length, i = 0;
        ref float pa = ref MemoryMarshal.GetReference(a); ref float pb = ref MemoryMarshal.GetReference(b);
        ref float pc = ref MemoryMarshal.GetReference(c); ref float pr = ref MemoryMarshal.GetReference(r);
        if (Vector512.IsHardwareAccelerated)
            for (; i <= n - 16; i += 16)
                op.Apply(Vector512.LoadUnsafe(ref pa, (nuint)i), Vector512.LoadUnsafe(ref pb, (nuint)i), Vector512.LoadUnsafe(ref pc, (nuint)i)).StoreUnsafe(ref pr, (nuint)i);
        else if (Vector256.IsHardwareAccelerated)
            for (; i <= n - 8; i += 8)
                op.Apply(Vector256.LoadUnsafe(ref pa, (nuint)i), Vector256.LoadUnsafe(ref pb, (nuint)i), Vector256.LoadUnsafe(ref pc, (nuint)i)).StoreUnsafe(ref pr, (nuint)i);
        for (; i < n; i++) r[i] = op.Apply(a[i], b[i], c[i]);
    }

    private const float GeluC = (float)ActivationMath.GeluC, GeluA = (float)ActivationMath.GeluA;

    private readonly struct ReluOp : IOp1
    {
        public float Apply(float x) => x > 0f ? x : 0f;
        public Vector256<float> Apply(Vector256<float> x) => Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256<float>.Zero), x, Vector256<float>.Zero);
        public Vector512<float> Apply(Vector512<float> x) => Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512<float>.Zero), x, Vector512<float>.Zero);
    }

    private readonly struct LeakyOp(float alpha) : IOp1
    {
        public float Apply(float x) => x > 0f ? x : alpha * x;
        public Vector256<float> Apply(Vector256<float> x) => Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256<float>.Zero), x, x * alpha);
        public Vector512<float> Apply(Vector512<float> x) => Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512<float>.Zero), x, x * alpha);
    }

    private readonly struct NegPartOp : IOp1
    {
        public float Apply(float x) => x > 0f ? 0f : x;
        public Vector256<float> Apply(Vector256<float> x) => Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256<float>.Zero), Vector256<float>.Zero, x);
        public Vector512<float> Apply(Vector512<float> x) => Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512<float>.Zero), Vector512<float>.Zero, x);
    }

    private readonly struct NegAbsOp : IOp1
    {
        public float Apply(float x) => -MathF.Abs(x);
        public Vector256<float> Apply(Vector256<float> x) => -Vector256.Abs(x);
        public Vector512<float> Apply(Vector512<float> x) => -Vector512.Abs(x);
    }

    // u = c (x + a x^3) = c x (1 + a x^2)
    private readonly struct GeluInnerOp : IOp1
    {
        public float Apply(float x) => GeluC * x * MathF.FusedMultiplyAdd(GeluA * x, x, 1f);
        public Vector256<float> Apply(Vector256<float> x) => x * GeluC * Vector256.FusedMultiplyAdd(x * GeluA, x, Vector256<float>.One);
        public Vector512<float> Apply(Vector512<float> x) => x * GeluC * Vector512.FusedMultiplyAdd(x * GeluA, x, Vector512<float>.One);
    }

    // (x, e = exp(min(x, 0))) -> x > 0 ? x : alpha (e - 1)
    private readonly struct EluOp(float alpha) : IOp2
    {
        public float Apply(float x, float e) => x > 0f ? x : alpha * (e - 1f);
        public Vector256<float> Apply(Vector256<float> x, Vector256<float> e) => Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256<float>.Zero), x, (e - Vector256<float>.One) * alpha);
        public Vector512<float> Apply(Vector512<float> x, Vector512<float> e) => Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512<float>.Zero), x, (e - Vector512<float>.One) * alpha);
    }

    // (x, t = tanh(u)) -> 0.5 x (1 + t)
    private readonly struct GeluOp : IOp2
    {
        public float Apply(float x, float t) => 0.5f * x * (1f + t);
        public Vector256<float> Apply(Vector256<float> x, Vector256<float> t) => x * 0.5f * (Vector256<float>.One + t);
        public Vector512<float> Apply(Vector512<float> x, Vector512<float> t) => x * 0.5f * (Vector512<float>.One + t);
    }

    // (x, l = log(1 + exp(-|x|))) -> max(x, 0) + l
    private readonly struct SoftplusOp : IOp2
    {
        public float Apply(float x, float l) => (x > 0f ? x : 0f) + l;
        public Vector256<float> Apply(Vector256<float> x, Vector256<float> l) => Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256<float>.Zero), x, Vector256<float>.Zero) + l;
        public Vector512<float> Apply(Vector512<float> x, Vector512<float> l) => Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512<float>.Zero), x, Vector512<float>.Zero) + l;
    }

    // (x, dy) -> x > 0 ? dy : 0
    private readonly struct ReluGradOp : IOp2
    {
        public float Apply(float x, float dy) => x > 0f ? dy : 0f;
        public Vector256<float> Apply(Vector256<float> x, Vector256<float> dy) => Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256<float>.Zero), dy, Vector256<float>.Zero);
        public Vector512<float> Apply(Vector512<float> x, Vector512<float> dy) => Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512<float>.Zero), dy, Vector512<float>.Zero);
    }

    // (x, dy) -> x > 0 ? dy : alpha dy
    private readonly struct LeakyGradOp(float alpha) : IOp2
    {
        public float Apply(float x, float dy) => x > 0f ? dy : alpha * dy;
        public Vector256<float> Apply(Vector256<float> x, Vector256<float> dy) => Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256<float>.Zero), dy, dy * alpha);
        public Vector512<float> Apply(Vector512<float> x, Vector512<float> dy) => Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512<float>.Zero), dy, dy * alpha);
    }

    // (x, y, dy) -> x > 0 ? dy : dy (y + alpha), since f'(x) = alpha exp(x) = y + alpha for x <= 0
    private readonly struct EluGradOp(float alpha) : IOp3
    {
        public float Apply(float x, float y, float dy) => x > 0f ? dy : dy * (y + alpha);
        public Vector256<float> Apply(Vector256<float> x, Vector256<float> y, Vector256<float> dy)
            => Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256<float>.Zero), dy, dy * (y + Vector256.Create(alpha)));
        public Vector512<float> Apply(Vector512<float> x, Vector512<float> y, Vector512<float> dy)
            => Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512<float>.Zero), dy, dy * (y + Vector512.Create(alpha)));
    }

    // (y, dy) -> dy y (1 - y)
    private readonly struct SigmoidGradOp : IOp2
    {
        public float Apply(float y, float dy) => dy * y * (1f - y);
        public Vector256<float> Apply(Vector256<float> y, Vector256<float> dy) => dy * y * (Vector256<float>.One - y);
        public Vector512<float> Apply(Vector512<float> y, Vector512<float> dy) => dy * y * (Vector512<float>.One - y);
    }

    // (y, dy) -> dy (1 - y^2)
    private readonly struct TanhGradOp : IOp2
    {
        public float Apply(float y, float dy) => dy * (1f - y * y);
        public Vector256<float> Apply(Vector256<float> y, Vector256<float> dy) => dy * Vector256.FusedMultiplyAdd(-y, y, Vector256<float>.One);
        public Vector512<float> Apply(Vector512<float> y, Vector512<float> dy) => dy * Vector512.FusedMultiplyAdd(-y, y, Vector512<float>.One);
    }

    // (x, t = tanh(u), dy) -> dy (0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 a x^2))
    private readonly struct GeluGradOp : IOp3
    {
        public float Apply(float x, float t, float dy)
            => dy * (0.5f * (1f + t) + 0.5f * x * (1f - t * t) * GeluC * (1f + 3f * GeluA * x * x));
        public Vector256<float> Apply(Vector256<float> x, Vector256<float> t, Vector256<float> dy)
        {
            var one = Vector256<float>.One;
            var inner = Vector256.FusedMultiplyAdd(x * (3f * GeluA), x, one) * (0.5f * GeluC);
            var sech2 = Vector256.FusedMultiplyAdd(-t, t, one);
            return dy * Vector256.FusedMultiplyAdd(x * sech2, inner, (one + t) * 0.5f);
        }
        public Vector512<float> Apply(Vector512<float> x, Vector512<float> t, Vector512<float> dy)
        {
            var one = Vector512<float>.One;
            var inner = Vector512.FusedMultiplyAdd(x * (3f * GeluA), x, one) * (0.5f * GeluC);
            var sech2 = Vector512.FusedMultiplyAdd(-t, t, one);
            return dy * Vector512.FusedMultiplyAdd(x * sech2, inner, (one + t) * 0.5f);
        }
    }

    // ---- cost ---------------------------------------------------------------------------------------------------

    /// <summary>FLOPs charged for one exp, log or tanh (a polynomial plus range reduction, roughly).</summary>
    public const double TranscendentalFlops = 10;

    /// <summary>Estimated FLOPs per element of the forward (<paramref name="backward"/> false) or backward pass.</summary>
    public static double FlopsPerElement(Activation act, bool backward)
    {
        const double T = TranscendentalFlops;
        return (act, backward) switch
        {
            (Activation.Identity, _) => 0,
            (Activation.Relu, _) => 1,                          // compare/select
            (Activation.LeakyRelu, _) => 2,                     // compare, multiply
            (Activation.Elu, false) => 3 + T,                   // exp, subtract, multiply, compare
            (Activation.Elu, true) => 3,                        // compare, add, multiply
            (Activation.Sigmoid, false) => 2 + T,               // exp, add, divide
            (Activation.Sigmoid, true) => 3,                    // dy y (1 - y)
            (Activation.Tanh, false) => T,
            (Activation.Tanh, true) => 3,                       // dy (1 - y^2)
            (Activation.Gelu, false) => 7 + T,                  // cubic, tanh, 0.5 x (1 + t)
            (Activation.Gelu, true) => 17 + T,                  // cubic and tanh again, then the product rule
            (Activation.Softplus, false) => 5 + 2 * T,          // |x|, exp, add, log, max, add
            (Activation.Softplus, true) => 3 + T,               // sigmoid, multiply
            _ => throw new ArgumentOutOfRangeException(nameof(act), act, "unknown activation"),
        };
    }

    /// <summary>Forward over n elements: reads x, writes y.</summary>
    public static OpCost Cost(Activation act, long n) => new(FlopsPerElement(act, false) * n, 8.0 * n);

    /// <summary>
    /// Backward over n elements: reads dy and whichever of x and y the derivative needs (both for ELU), writes dx.
    /// The ILGPU kernel loads both x and y, so on a GPU it moves 16n bytes.
    /// </summary>
    public static OpCost BackwardCost(Activation act, long n)
        => new(FlopsPerElement(act, true) * n, (act == Activation.Identity ? 8.0 : act == Activation.Elu ? 16.0 : 12.0) * n);
}
