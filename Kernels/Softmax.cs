using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace GpuNet.Kernels;

/// <summary>
/// Row-wise softmax and log-softmax. x, y, dy, dx: (rows, cols), row-major; each row is normalised on its own.
/// Numerically stable: the row max m is subtracted before exp, so rows of +-1000 neither overflow nor underflow to 0/0.
///   softmax:     y = exp(x - m) / sum_j exp(x_j - m);    dx = y * (dy - sum_j(dy_j * y_j))
///   log-softmax: y = (x - m) - log(sum_j exp(x_j - m));  dx = dy - exp(y) * sum_j(dy_j)
/// Gradient contract: activation gradients overwrite (dx =). Forward may run in place (y is x); backward may
/// write dx over dy.
/// </summary>
public static class SoftmaxOp
{
    // ---- float64 reference (the spec) ---------------------------------------------------------------------------

    /// <summary>Reference forward of softmax (<paramref name="log"/> false) or log-softmax over rows of x: (rows, cols).</summary>
    public static void Reference(bool log, int rows, int cols, ReadOnlySpan<double> x, Span<double> y)
    {
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * cols, cols); var yr = y.Slice(r * cols, cols);
            double m = double.NegativeInfinity;
            for (int j = 0; j < cols; j++) m = Math.Max(m, xr[j]);
            double s = 0;
            for (int j = 0; j < cols; j++) s += Math.Exp(xr[j] - m);
            double ls = Math.Log(s);
            for (int j = 0; j < cols; j++) yr[j] = log ? xr[j] - m - ls : Math.Exp(xr[j] - m) / s;
        }
    }

    /// <summary>Reference backward given the forward output y: (rows, cols) and dy.</summary>
    public static void ReferenceBackward(bool log, int rows, int cols, ReadOnlySpan<double> y, ReadOnlySpan<double> dy, Span<double> dx)
    {
        for (int r = 0; r < rows; r++)
        {
            int o = r * cols;
            double s = 0;
            for (int j = 0; j < cols; j++) s += log ? dy[o + j] : dy[o + j] * y[o + j];
            for (int j = 0; j < cols; j++)
                dx[o + j] = log ? dy[o + j] - Math.Exp(y[o + j]) * s : y[o + j] * (dy[o + j] - s);
        }
    }

    // ---- ILGPU kernels: one group per row, strided loops over the row, shared-memory tree reductions -------------

    /// <summary>Largest group size the kernels use (the size of their shared-memory scratch).</summary>
    public const int MaxGroupSize = 256;

    /// <summary>
    /// Forward: group g = row g; launch with a power-of-two group size &lt;= <see cref="MaxGroupSize"/>.
    /// <paramref name="log"/> != 0 selects log-softmax.
    /// </summary>
    [GpuKernel(ExplicitlyGrouped = true)]
    public static void ForwardKernel(ArrayView<float> x, ArrayView<float> y, int cols, int log)
    {
        var scratch = SharedMemory.Allocate<float>(MaxGroupSize);
        int t = Group.IdxX, g = Group.DimX;
        int row = Grid.IdxX * cols;

        float m = float.NegativeInfinity;
        for (int c = t; c < cols; c += g) m = XMath.Max(m, x[row + c]);
        m = ReduceMax(scratch, t, g, m);

        float s = 0f;
        for (int c = t; c < cols; c += g) s += XMath.Exp(x[row + c] - m);
        s = ReduceSum(scratch, t, g, s);

        if (log != 0)
        {
            float ls = XMath.Log(s);
            for (int c = t; c < cols; c += g) y[row + c] = (x[row + c] - m) - ls;
        }
        else
        {
            for (int c = t; c < cols; c += g) y[row + c] = XMath.Exp(x[row + c] - m) / s;
        }
    }

    /// <summary>Backward: group g = row g, same launch shape as <see cref="ForwardKernel"/>.</summary>
    [GpuKernel(ExplicitlyGrouped = true)]
    public static void BackwardKernel(ArrayView<float> y, ArrayView<float> dy, ArrayView<float> dx, int cols, int log)
    {
        var scratch = SharedMemory.Allocate<float>(MaxGroupSize);
        int t = Group.IdxX, g = Group.DimX;
        int row = Grid.IdxX * cols;

        float s = 0f;
        if (log != 0) for (int c = t; c < cols; c += g) s += dy[row + c];
        else for (int c = t; c < cols; c += g) s += dy[row + c] * y[row + c];
        s = ReduceSum(scratch, t, g, s);

        if (log != 0) for (int c = t; c < cols; c += g) dx[row + c] = dy[row + c] - XMath.Exp(y[row + c]) * s;
        else for (int c = t; c < cols; c += g) dx[row + c] = y[row + c] * (dy[row + c] - s);
    }

    // Tree reductions over a power-of-two group; every thread gets the result. The last barrier lets the
    // scratch be reused by the next reduction. No warp-size assumption: every level is a group barrier.
    private static float ReduceMax(ArrayView<float> scratch, int t, int g, float v)
    {
        scratch[t] = v;
        Group.Barrier();
        for (int s = g >> 1; s > 0; s >>= 1)
        {
            if (t < s) scratch[t] = XMath.Max(scratch[t], scratch[t + s]);
            Group.Barrier();
        }
        float r = scratch[0];
        Group.Barrier();
        return r;
    }

    private static float ReduceSum(ArrayView<float> scratch, int t, int g, float v)
    {
        scratch[t] = v;
        Group.Barrier();
        for (int s = g >> 1; s > 0; s >>= 1)
        {
            if (t < s) scratch[t] += scratch[t + s];
            Group.Barrier();
        }
        float r = scratch[0];
        Group.Barrier();
        return r;
    }

    // ---- launchers ----------------------------------------------------------------------------------------------

    /// <summary>Group size cap on ILGPU's CPU accelerator, whose barriers cost an OS-thread rendezvous per thread.</summary>
    public const int CpuAcceleratorMaxGroupSize = 64;

    /// <summary>Threads per row: see <see cref="ReductionLaunch.GroupSize"/> (the row's cols are the terms).</summary>
    public static int GroupSize(Accelerator acc, int cols) => ReductionLaunch.GroupSize(acc, cols, MaxGroupSize, CpuAcceleratorMaxGroupSize);

    /// <summary>Launches <see cref="ForwardKernel"/> over x, y: (rows, cols).</summary>
    public static void Launch(KernelCache k, bool log, int rows, int cols, ArrayView<float> x, ArrayView<float> y)
    {
        k.Get(ForwardKernel, acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, int>(ForwardKernel))
            (new KernelConfig(rows, GroupSize(k.Accelerator, cols)), x, y, cols, log ? 1 : 0);
        k.CountLaunch();
    }

    /// <summary>Launches <see cref="BackwardKernel"/> over y, dy, dx: (rows, cols).</summary>
    public static void LaunchBackward(KernelCache k, bool log, int rows, int cols, ArrayView<float> y, ArrayView<float> dy, ArrayView<float> dx)
    {
        k.Get(BackwardKernel, acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(BackwardKernel))
            (new KernelConfig(rows, GroupSize(k.Accelerator, cols)), y, dy, dx, cols, log ? 1 : 0);
        k.CountLaunch();
    }

    // ---- SIMD host implementation: TensorPrimitives per row, rows split across cores -----------------------------

    private const int BlockSize = 1024;

    /// <summary>Host forward over x, y: (rows, cols); y may be x.</summary>
    public static void Host(bool log, int rows, int cols, ArraySegment<float> x, ArraySegment<float> y)
        => HostSimd.ForRanges(rows, RowsPerItem(rows), Parallel(rows, cols), (log, cols, x, y), static (t, r0, count) =>
        {
            for (int r = r0; r < r0 + count; r++) ForwardRow(t.log, t.x.AsSpan(r * t.cols, t.cols), t.y.AsSpan(r * t.cols, t.cols));
        });

    /// <summary>Host backward over y, dy, dx: (rows, cols); dx may be dy.</summary>
    public static void HostBackward(bool log, int rows, int cols, ArraySegment<float> y, ArraySegment<float> dy, ArraySegment<float> dx)
        => HostSimd.ForRanges(rows, RowsPerItem(rows), Parallel(rows, cols), (log, cols, y, dy, dx), static (t, r0, count) =>
        {
            for (int r = r0; r < r0 + count; r++)
                BackwardRow(t.log, t.y.AsSpan(r * t.cols, t.cols), t.dy.AsSpan(r * t.cols, t.cols), t.dx.AsSpan(r * t.cols, t.cols));
        });

    // Rows are split into one range per pool thread for inputs of at least HostSimd.ParallelThreshold elements.
    private static bool Parallel(int rows, int cols) => (long)rows * cols >= HostSimd.ParallelThreshold;

    private static int RowsPerItem(int rows) => Math.Max(1, (rows + HostSimd.PoolThreads - 1) / HostSimd.PoolThreads);

    private static void ForwardRow(bool log, ReadOnlySpan<float> x, Span<float> y)
    {
        float m = TensorPrimitives.Max(x);
        if (!log)
        {
            TensorPrimitives.Subtract(x, m, y);
            TensorPrimitives.Exp(y, y);
            TensorPrimitives.Divide(y, TensorPrimitives.Sum(y), y);
            return;
        }
        // Sum exp(x - m) block by block before y is written, so y may be x.
        Span<float> t = stackalloc float[Math.Min(BlockSize, x.Length)];
        float s = 0f;
        for (int b = 0; b < x.Length; b += BlockSize)
        {
            var tb = t[..Math.Min(BlockSize, x.Length - b)];
            TensorPrimitives.Subtract(x.Slice(b, tb.Length), m, tb);
            TensorPrimitives.Exp(tb, tb);
            s += TensorPrimitives.Sum(tb);
        }
        TensorPrimitives.Subtract(x, m, y);            // exact for nearby values: keep (x - m) - log s in two steps
        TensorPrimitives.Subtract(y, MathF.Log(s), y);
    }

    private static void BackwardRow(bool log, ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx)
    {
        if (!log)
        {
            float s = TensorPrimitives.Dot(dy, y);
            ActivationOp.Map(new SoftmaxGradOp(s), y, dy, dx);
            return;
        }
        float sum = TensorPrimitives.Sum(dy);
        Span<float> t = stackalloc float[Math.Min(BlockSize, y.Length)];
        for (int b = 0; b < y.Length; b += BlockSize)
        {
            int n = Math.Min(BlockSize, y.Length - b);
            var tb = t[..n];
            TensorPrimitives.Exp(y.Slice(b, n), tb);
            TensorPrimitives.FusedMultiplyAdd(tb, -sum, dy.Slice(b, n), dx.Slice(b, n));   // dx = dy - exp(y) * sum
        }
    }

    // (y, dy) -> y (dy - s)
    private readonly struct SoftmaxGradOp(float s) : ActivationOp.IOp2
    {
        public float Apply(float y, float dy) => y * (dy - s);
        public Vector256<float> Apply(Vector256<float> y, Vector256<float> dy)
            => y * (dy - Vector256.Create(s));
        public Vector512<float> Apply(Vector512<float> y, Vector512<float> dy)
            => y * (dy - Vector512.Create(s));
    }

    // ---- cost ---------------------------------------------------------------------------------------------------

    /// <summary>
    /// Forward over (rows, cols): per element a max, a subtract, an exp, an add, then a divide (softmax) or a second
    /// subtract (log-softmax, plus one log per row); reads x, writes y.
    /// </summary>
    public static OpCost Cost(bool log, int rows, int cols)
    {
        double n = (double)rows * cols;
        return new((4 + ActivationOp.TranscendentalFlops) * n + (log ? ActivationOp.TranscendentalFlops * rows : 0), 8.0 * n);
    }

    /// <summary>
    /// Backward over (rows, cols): softmax 4 FLOPs per element (multiply-add for the dot, subtract, multiply);
    /// log-softmax one exp and 3 FLOPs; reads y and dy, writes dx.
    /// </summary>
    public static OpCost BackwardCost(bool log, int rows, int cols)
    {
        double n = (double)rows * cols;
        return new((log ? 3 + ActivationOp.TranscendentalFlops : 4) * n, 12.0 * n);
    }
}
