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
/// Every kernel, host loop and reference here is written once, generic over the <see cref="IActivation"/> struct that
/// defines the activation (see ActivationFunctions.cs); the <see cref="Activation"/>-taking entry points dispatch
/// once through <see cref="ActivationMath.Visit"/>.
/// </summary>
public static class ActivationOp
{
    // ---- float64 reference (the spec) ---------------------------------------------------------------------------

    /// <summary>Reference forward: y[i] = f(x[i]).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="act"/> is not a defined <see cref="Activation"/>.</exception>
    public static void Reference(Activation act, double alpha, ReadOnlySpan<double> x, Span<double> y)
    {
        var f = ActivationMath.Definition(act);
        for (int i = 0; i < y.Length; i++) y[i] = f.Reference(x[i], alpha);
    }

    /// <summary>Reference backward: dx[i] = dy[i] * f'(x[i]).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="act"/> is not a defined <see cref="Activation"/>.</exception>
    public static void ReferenceBackward(Activation act, double alpha, ReadOnlySpan<double> x, ReadOnlySpan<double> dy, Span<double> dx)
    {
        var f = ActivationMath.Definition(act);
        for (int i = 0; i < dx.Length; i++) dx[i] = dy[i] * f.ReferenceDerivative(x[i], alpha);
    }

    // ---- ILGPU kernels (one body, specialised by ILGPU for each activation struct) --------------------------------

    /// <summary>y[i] = f(x[i]).</summary>
    [GpuKernel]
    public static void ForwardKernel<TAct>(Index1D i, ArrayView<float> x, ArrayView<float> y, float alpha)
        where TAct : struct, IActivation
        => y[i] = default(TAct).Forward(x[i], alpha);

    /// <summary>dx[i] = dy[i] * f'(x[i]), with y = f(x) given.</summary>
    [GpuKernel]
    public static void BackwardKernel<TAct>(Index1D i, ArrayView<float> x, ArrayView<float> y, ArrayView<float> dy, ArrayView<float> dx, float alpha)
        where TAct : struct, IActivation
        => dx[i] = dy[i] * default(TAct).Derivative(x[i], y[i], alpha);

    // ---- launchers ----------------------------------------------------------------------------------------------

    /// <summary>Launches <see cref="ForwardKernel{TAct}"/> over y.Length elements.</summary>
    public static void Launch<TAct>(KernelCache k, float alpha, ArrayView<float> x, ArrayView<float> y) where TAct : struct, IActivation
    {
        k.Get(ForwardKernel<TAct>, acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, float>(ForwardKernel<TAct>))
            ((int)y.Length, x, y, alpha);
        k.CountLaunch();
    }

    /// <summary>Launches <see cref="BackwardKernel{TAct}"/> over dx.Length elements.</summary>
    public static void LaunchBackward<TAct>(KernelCache k, float alpha, ArrayView<float> x, ArrayView<float> y, ArrayView<float> dy, ArrayView<float> dx)
        where TAct : struct, IActivation
    {
        k.Get(BackwardKernel<TAct>, acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, float>(BackwardKernel<TAct>))
            ((int)dx.Length, x, y, dy, dx, alpha);
        k.CountLaunch();
    }

    /// <summary><see cref="Launch{TAct}"/> for the activation <paramref name="act"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="act"/> is not a defined <see cref="Activation"/>.</exception>
    public static void Launch(KernelCache k, Activation act, float alpha, ArrayView<float> x, ArrayView<float> y)
    {
        var v = new LaunchVisitor(k, alpha, x, y);
        ActivationMath.Visit(act, ref v);
    }

    /// <summary><see cref="LaunchBackward{TAct}"/> for the activation <paramref name="act"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="act"/> is not a defined <see cref="Activation"/>.</exception>
    public static void LaunchBackward(KernelCache k, Activation act, float alpha, ArrayView<float> x, ArrayView<float> y, ArrayView<float> dy, ArrayView<float> dx)
    {
        var v = new LaunchBackwardVisitor(k, alpha, x, y, dy, dx);
        ActivationMath.Visit(act, ref v);
    }

    private readonly struct LaunchVisitor(KernelCache k, float alpha, ArrayView<float> x, ArrayView<float> y) : IActivationVisitor
    {
        public void Visit<TAct>(TAct act) where TAct : struct, IActivation => Launch<TAct>(k, alpha, x, y);
    }

    private readonly struct LaunchBackwardVisitor(KernelCache k, float alpha, ArrayView<float> x, ArrayView<float> y, ArrayView<float> dy, ArrayView<float> dx)
        : IActivationVisitor
    {
        public void Visit<TAct>(TAct act) where TAct : struct, IActivation => LaunchBackward<TAct>(k, alpha, x, y, dy, dx);
    }

    // ---- SIMD host implementation -------------------------------------------------------------------------------
    // The span forms of each activation struct (IActivation.ForwardSpan / BackwardSpan), split across the cores.

    /// <summary>Most elements a host span form holds in a stack temporary at a time.</summary>
    internal const int BlockSize = 1024;

    /// <summary>Host y = f(x); y may be x.</summary>
    public static void Host<TAct>(float alpha, ArraySegment<float> x, ArraySegment<float> y) where TAct : struct, IActivation
        => HostSimd.ForChunks(y.Count, (alpha, x, y), static (t, s, n) => default(TAct).ForwardSpan(t.alpha, t.x.AsSpan(s, n), t.y.AsSpan(s, n)));

    /// <summary>Host dx = dy * f'(x), with y = f(x); dx may be dy.</summary>
    public static void HostBackward<TAct>(float alpha, ArraySegment<float> x, ArraySegment<float> y, ArraySegment<float> dy, ArraySegment<float> dx)
        where TAct : struct, IActivation
        => HostSimd.ForChunks(dx.Count, (alpha, x, y, dy, dx),
            static (t, s, n) => default(TAct).BackwardSpan(t.alpha, t.x.AsSpan(s, n), t.y.AsSpan(s, n), t.dy.AsSpan(s, n), t.dx.AsSpan(s, n)));

    /// <summary><see cref="Host{TAct}"/> for the activation <paramref name="act"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="act"/> is not a defined <see cref="Activation"/>.</exception>
    public static void Host(Activation act, float alpha, ArraySegment<float> x, ArraySegment<float> y)
    {
        var v = new HostVisitor(alpha, x, y);
        ActivationMath.Visit(act, ref v);
    }

    /// <summary><see cref="HostBackward{TAct}"/> for the activation <paramref name="act"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="act"/> is not a defined <see cref="Activation"/>.</exception>
    public static void HostBackward(Activation act, float alpha, ArraySegment<float> x, ArraySegment<float> y, ArraySegment<float> dy, ArraySegment<float> dx)
    {
        var v = new HostBackwardVisitor(alpha, x, y, dy, dx);
        ActivationMath.Visit(act, ref v);
    }

    private readonly struct HostVisitor(float alpha, ArraySegment<float> x, ArraySegment<float> y) : IActivationVisitor
    {
        public void Visit<TAct>(TAct act) where TAct : struct, IActivation => Host<TAct>(alpha, x, y);
    }

    private readonly struct HostBackwardVisitor(float alpha, ArraySegment<float> x, ArraySegment<float> y, ArraySegment<float> dy, ArraySegment<float> dx)
        : IActivationVisitor
    {
        public void Visit<TAct>(TAct act) where TAct : struct, IActivation => HostBackward<TAct>(alpha, x, y, dy, dx);
    }

    // Vector-op drivers of the host span forms (also used by SoftmaxOp): one body per op, three widths.

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

    // ---- cost ---------------------------------------------------------------------------------------------------

    /// <summary>FLOPs charged for one exp, log or tanh (a polynomial plus range reduction, roughly).</summary>
    public const double TranscendentalFlops = 10;

    /// <summary>Estimated FLOPs per element of the forward (<paramref name="backward"/> false) or backward pass.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="act"/> is not a defined <see cref="Activation"/>.</exception>
    public static double FlopsPerElement(Activation act, bool backward)
    {
        var f = ActivationMath.Definition(act);
        return backward ? f.BackwardFlops : f.ForwardFlops;
    }

    /// <summary>Forward over n elements: reads x, writes y.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="act"/> is not a defined <see cref="Activation"/>.</exception>
    public static OpCost Cost(Activation act, long n) => new(FlopsPerElement(act, false) * n, 8.0 * n);

    /// <summary>
    /// Backward over n elements: reads dy and whichever of x and y the derivative needs (both for ELU), writes dx.
    /// The ILGPU kernel loads both x and y, so on a GPU it moves 16n bytes.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="act"/> is not a defined <see cref="Activation"/>.</exception>
    public static OpCost BackwardCost(Activation act, long n)
    {
        var f = ActivationMath.Definition(act);
        return new(f.BackwardFlops * n, 4.0 * (2 + f.BackwardOperands) * n);
    }
}
