using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace GpuNet.Kernels;

public static partial class BatchNormOp
{
    // ---- SIMD host implementation ---------------------------------------------------------------------------------

    /// <summary>Columns (channels * S) per host block: float64 accumulators of a block stay in L1/L2.</summary>
    private const int HostBlockCols = 1024;

    /// <summary>
    /// Host forward; same contract as <see cref="Launch"/>. Absent tensors are default (empty) segments: running
    /// statistics in training (not tracked), saveMean/saveInvStd in eval.
    /// </summary>
    public static void Host(BatchNormArgs a, ArraySegment<float> x, ArraySegment<float> gamma, ArraySegment<float> beta,
        ArraySegment<float> runningMean, ArraySegment<float> runningVar, ArraySegment<float> saveMean, ArraySegment<float> saveInvStd, ArraySegment<float> y)
        => ForBlocks(a, (a, x, gamma, beta, runningMean, runningVar, saveMean, saveInvStd, y), static (t, c0, cw) =>
        {
            var (a, x, gamma, beta, runningMean, runningVar, saveMean, saveInvStd, y) = t;
            int n = a.N, c = a.C, s = a.S, m = n * s;
            int w = cw * s;
            using var frame = HostPool.Enter();
            var meanCol = HostPool.Doubles(w);
            var mean = HostPool.Doubles(cw);
            var inv = HostPool.Doubles(cw);
            if (a.Training != 0)
            {
                var acc = HostPool.Doubles(w);
                for (int b = 0; b < n; b++) HostSimd.AddWide(x.AsSpan((b * c + c0) * s, w), acc);
                for (int q = 0; q < cw; q++) mean[q] = SumRange(acc, q * s, s) / m;
                Expand(mean, s, meanCol);
                acc.Clear();
                for (int b = 0; b < n; b++) AddSquaredDeviationWide(x.AsSpan((b * c + c0) * s, w), meanCol, acc);
                for (int q = 0; q < cw; q++)
                {
                    double variance = SumRange(acc, q * s, s) / m;
                    inv[q] = 1 / Math.Sqrt(variance + a.Eps);
                    if (runningMean.Count > 0)
                    {
                        double k = a.Momentum;
                        runningMean[c0 + q] = (float)((1 - k) * runningMean[c0 + q] + k * mean[q]);
                        runningVar[c0 + q] = (float)((1 - k) * runningVar[c0 + q] + k * variance * m / (m - 1));
                    }
                }
            }
            else
            {
                for (int q = 0; q < cw; q++)
                {
                    mean[q] = runningMean[c0 + q];
                    inv[q] = 1 / Math.Sqrt((double)runningVar[c0 + q] + a.Eps);
                }
            }
            if (saveMean.Count > 0)
                for (int q = 0; q < cw; q++) { saveMean[c0 + q] = (float)mean[q]; saveInvStd[c0 + q] = (float)inv[q]; }

            // y = (x - mean) * (gamma * invstd) + beta, one row segment (w contiguous floats) at a time.
            var mu = HostPool.Floats(w); var scale = HostPool.Floats(w); var shift = HostPool.Floats(w); var tmp = HostPool.Floats(w);
            for (int q = 0; q < cw; q++)
            {
                mu.Slice(q * s, s).Fill((float)mean[q]);
                scale.Slice(q * s, s).Fill((float)(gamma[c0 + q] * inv[q]));
                shift.Slice(q * s, s).Fill(beta[c0 + q]);
            }
            for (int b = 0; b < n; b++)
            {
                var ys = y.AsSpan((b * c + c0) * s, w);
                System.Numerics.Tensors.TensorPrimitives.Subtract(x.AsSpan((b * c + c0) * s, w), mu, tmp);
                System.Numerics.Tensors.TensorPrimitives.FusedMultiplyAdd(tmp, scale, shift, ys);
                if (a.Relu != 0) ReluInPlace(ys);
            }
        });

    /// <summary>
    /// Host backward; same contract as <see cref="LaunchBackward"/> (y read only when a.Relu). dx may be dy.
    /// </summary>
    public static void HostBackward(BatchNormArgs a, ArraySegment<float> x, ArraySegment<float> dy, ArraySegment<float> y,
        ArraySegment<float> gamma, ArraySegment<float> mean, ArraySegment<float> invStd, ArraySegment<float> dx,
        ArraySegment<float> dGamma, ArraySegment<float> dBeta)
        => ForBlocks(a, (a, x, dy, y, gamma, mean, invStd, dx, dGamma, dBeta), static (t, c0, cw) =>
        {
            var (a, x, dy, y, gamma, mean, invStd, dx, dGamma, dBeta) = t;
            int n = a.N, c = a.C, s = a.S, m = n * s;
            int w = cw * s;
            using var frame = HostPool.Enter();
            var mu = HostPool.Floats(w); var inv = HostPool.Floats(w); var k = HostPool.Floats(w);
            for (int q = 0; q < cw; q++)
            {
                mu.Slice(q * s, s).Fill(mean[c0 + q]);
                inv.Slice(q * s, s).Fill(invStd[c0 + q]);
                k.Slice(q * s, s).Fill(gamma[c0 + q] * invStd[c0 + q]);
            }
            var d = HostPool.Floats(w); var xhat = HostPool.Floats(w);
            var sdy = HostPool.Doubles(w); var sdx = HostPool.Doubles(w);
            for (int b = 0; b < n; b++)
            {
                int o = (b * c + c0) * s;
                if (Vector512.IsHardwareAccelerated)
                {
                    AccumulateRow(x.AsSpan(o, w), dy.AsSpan(o, w), a.Relu != 0 ? y.AsSpan(o, w) : default, mu, inv, sdy, sdx);
                    continue;
                }
                BackwardRow(a, x, dy, y, c0, b, w, mu, inv, d, xhat);
                HostSimd.AddWide(d, sdy);
                AddProductWide(d, xhat, sdx);
            }
            var colA = HostPool.Floats(w); var colB = HostPool.Floats(w);
            for (int q = 0; q < cw; q++)
            {
                double a0 = SumRange(sdy, q * s, s), a1 = SumRange(sdx, q * s, s);
                dGamma[c0 + q] += (float)a1;
                dBeta[c0 + q] += (float)a0;
                colA.Slice(q * s, s).Fill((float)(a0 / m));
                colB.Slice(q * s, s).Fill((float)(a1 / m));
            }
            for (int b = 0; b < n; b++)
            {
                var dxs = dx.AsSpan((b * c + c0) * s, w);
                if (Vector512.IsHardwareAccelerated && a.Training != 0)
                {
                    int o = (b * c + c0) * s;
                    DataGradientRow(x.AsSpan(o, w), dy.AsSpan(o, w), a.Relu != 0 ? y.AsSpan(o, w) : default, mu, inv, k, colA, colB, dxs);
                    continue;
                }
                BackwardRow(a, x, dy, y, c0, b, w, mu, inv, d, xhat);
                if (a.Training != 0)
                {
                    // dx = k * (d - (sum(dy')/M + xhat * sum(dy' xhat)/M))
                    System.Numerics.Tensors.TensorPrimitives.FusedMultiplyAdd(xhat, colB, colA, xhat);
                    System.Numerics.Tensors.TensorPrimitives.Subtract(d, xhat, d);
                }
                System.Numerics.Tensors.TensorPrimitives.Multiply(d, k, dxs);
            }
        });

    // BackwardRow, HostSimd.AddWide(d, sdy) and AddProductWide(d, xhat, sdx) in one pass (the same float32 d and xhat,
    // the same float64 sums); y empty: no ReLU mask.
    private static void AccumulateRow(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, ReadOnlySpan<float> y,
        ReadOnlySpan<float> mu, ReadOnlySpan<float> inv, Span<double> sdy, Span<double> sdx)
    {
        int w = x.Length, j = 0;
        bool relu = !y.IsEmpty;
        ref float px = ref MemoryMarshal.GetReference(x); ref float pdy = ref MemoryMarshal.GetReference(dy);
        ref float py = ref MemoryMarshal.GetReference(y);
        ref float pmu = ref MemoryMarshal.GetReference(mu); ref float pinv = ref MemoryMarshal.GetReference(inv);
        ref double qy = ref MemoryMarshal.GetReference(sdy); ref double qx = ref MemoryMarshal.GetReference(sdx);
        for (; j <= w - 16; j += 16)
        {
            var d = Vector512.LoadUnsafe(ref pdy, (nuint)j);
            if (relu) d &= Vector512.GreaterThan(Vector512.LoadUnsafe(ref py, (nuint)j), Vector512<float>.Zero);
            var xh = (Vector512.LoadUnsafe(ref px, (nuint)j) - Vector512.LoadUnsafe(ref pmu, (nuint)j)) * Vector512.LoadUnsafe(ref pinv, (nuint)j);
            var (dlo, dhi) = Vector512.Widen(d);
            var (xlo, xhi) = Vector512.Widen(xh);
            (Vector512.LoadUnsafe(ref qy, (nuint)j) + dlo).StoreUnsafe(ref qy, (nuint)j);
            (Vector512.LoadUnsafe(ref qy, (nuint)(j + 8)) + dhi).StoreUnsafe(ref qy, (nuint)(j + 8));
            Vector512.FusedMultiplyAdd(dlo, xlo, Vector512.LoadUnsafe(ref qx, (nuint)j)).StoreUnsafe(ref qx, (nuint)j);
            Vector512.FusedMultiplyAdd(dhi, xhi, Vector512.LoadUnsafe(ref qx, (nuint)(j + 8))).StoreUnsafe(ref qx, (nuint)(j + 8));
        }
        for (; j < w; j++)
        {
            float d = relu && !(y[j] > 0f) ? 0f : dy[j];
            float xh = (x[j] - mu[j]) * inv[j];
            sdy[j] += d;
            sdx[j] += (double)d * xh;
        }
    }

    // The training dx of one row in one pass: dx = k * (d - (xhat * colB + colA)), d and xhat as BackwardRow forms them.
    private static void DataGradientRow(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, ReadOnlySpan<float> y, ReadOnlySpan<float> mu,
        ReadOnlySpan<float> inv, ReadOnlySpan<float> k, ReadOnlySpan<float> colA, ReadOnlySpan<float> colB, Span<float> dx)
    {
        int w = x.Length, j = 0;
        bool relu = !y.IsEmpty;
        ref float px = ref MemoryMarshal.GetReference(x); ref float pdy = ref MemoryMarshal.GetReference(dy);
        ref float py = ref MemoryMarshal.GetReference(y);
        ref float pmu = ref MemoryMarshal.GetReference(mu); ref float pinv = ref MemoryMarshal.GetReference(inv);
        ref float pk = ref MemoryMarshal.GetReference(k);
        ref float pa = ref MemoryMarshal.GetReference(colA); ref float pb = ref MemoryMarshal.GetReference(colB);
        ref float pdx = ref MemoryMarshal.GetReference(dx);
        for (; j <= w - 16; j += 16)
        {
            var d = Vector512.LoadUnsafe(ref pdy, (nuint)j);
            if (relu) d &= Vector512.GreaterThan(Vector512.LoadUnsafe(ref py, (nuint)j), Vector512<float>.Zero);
            var xh = (Vector512.LoadUnsafe(ref px, (nuint)j) - Vector512.LoadUnsafe(ref pmu, (nuint)j)) * Vector512.LoadUnsafe(ref pinv, (nuint)j);
            var t = Vector512.FusedMultiplyAdd(xh, Vector512.LoadUnsafe(ref pb, (nuint)j), Vector512.LoadUnsafe(ref pa, (nuint)j));
            ((d - t) * Vector512.LoadUnsafe(ref pk, (nuint)j)).StoreUnsafe(ref pdx, (nuint)j);
        }
        for (; j < w; j++)
        {
            float d = relu && !(y[j] > 0f) ? 0f : dy[j];
            float xh = (x[j] - mu[j]) * inv[j];
            dx[j] = (d - MathF.FusedMultiplyAdd(xh, colB[j], colA[j])) * k[j];
        }
    }

    // d = dy' (masked by y > 0 under ReLU), xhat = (x - mean) * invstd: row b's segment of the block at channel c0.
    private static void BackwardRow(in BatchNormArgs a, ArraySegment<float> x, ArraySegment<float> dy, ArraySegment<float> y,
        int c0, int b, int w, ReadOnlySpan<float> mu, ReadOnlySpan<float> inv, Span<float> d, Span<float> xhat)
    {
        int o = (b * a.C + c0) * a.S;
        if (a.Relu != 0) MaskPositive(y.AsSpan(o, w), dy.AsSpan(o, w), d);
        else dy.AsSpan(o, w).CopyTo(d);
        System.Numerics.Tensors.TensorPrimitives.Subtract(x.AsSpan(o, w), mu, xhat);
        System.Numerics.Tensors.TensorPrimitives.Multiply(xhat, inv, xhat);
    }

    // Channel blocks of at most HostBlockCols columns (at least one channel), at least one block per core when
    // there are enough channels; blocks run in parallel for large inputs.
    private static void ForBlocks<TState>(BatchNormArgs a, TState state, Action<TState, int, int> block)
    {
        int workers = Environment.ProcessorCount;
        long total = (long)a.N * a.C * a.S;
        int perBlock = Math.Max(1, Math.Min(HostBlockCols / Math.Max(a.S, 1), (a.C + workers - 1) / workers));
        HostSimd.ForRanges(a.C, perBlock, total >= HostSimd.ParallelThreshold && workers > 1, state, block);
    }

    private static double SumRange(ReadOnlySpan<double> v, int start, int count)
    {
        double s = 0;
        for (int i = start; i < start + count; i++) s += v[i];
        return s;
    }

    private static void Expand(ReadOnlySpan<double> perChannel, int s, Span<double> perColumn)
    {
        for (int q = 0; q < perChannel.Length; q++) perColumn.Slice(q * s, s).Fill(perChannel[q]);
    }

    // acc[j] += (v[j] - mean[j])^2 in float64.
    private static void AddSquaredDeviationWide(ReadOnlySpan<float> v, ReadOnlySpan<double> mean, Span<double> acc)
    {
        int j = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            ref float p = ref MemoryMarshal.GetReference(v);
            ref double mu = ref MemoryMarshal.GetReference(mean);
            ref double q = ref MemoryMarshal.GetReference(acc);
            for (; j <= v.Length - 16; j += 16)
            {
                var (lo, hi) = Vector512.Widen(Vector512.LoadUnsafe(ref p, (nuint)j));
                lo -= Vector512.LoadUnsafe(ref mu, (nuint)j);
                hi -= Vector512.LoadUnsafe(ref mu, (nuint)(j + 8));
                Vector512.FusedMultiplyAdd(lo, lo, Vector512.LoadUnsafe(ref q, (nuint)j)).StoreUnsafe(ref q, (nuint)j);
                Vector512.FusedMultiplyAdd(hi, hi, Vector512.LoadUnsafe(ref q, (nuint)(j + 8))).StoreUnsafe(ref q, (nuint)(j + 8));
            }
        }
        for (; j < v.Length; j++) { double e = v[j] - mean[j]; acc[j] += e * e; }
    }

    // acc[j] += a[j] * b[j] in float64.
    private static void AddProductWide(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<double> acc)
    {
        int j = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            ref float pa = ref MemoryMarshal.GetReference(a);
            ref float pb = ref MemoryMarshal.GetReference(b);
            ref double q = ref MemoryMarshal.GetReference(acc);
            for (; j <= a.Length - 16; j += 16)
            {
                var (alo, ahi) = Vector512.Widen(Vector512.LoadUnsafe(ref pa, (nuint)j));
                var (blo, bhi) = Vector512.Widen(Vector512.LoadUnsafe(ref pb, (nuint)j));
                Vector512.FusedMultiplyAdd(alo, blo, Vector512.LoadUnsafe(ref q, (nuint)j)).StoreUnsafe(ref q, (nuint)j);
                Vector512.FusedMultiplyAdd(ahi, bhi, Vector512.LoadUnsafe(ref q, (nuint)(j + 8))).StoreUnsafe(ref q, (nuint)(j + 8));
            }
        }
        for (; j < a.Length; j++) acc[j] += (double)a[j] * b[j];
    }

    // v = v > 0 ? v : 0 (NaN gives 0, as the kernels).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ReluInPlace(Span<float> v)
    {
        int j = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            ref float p = ref MemoryMarshal.GetReference(v);
            for (; j <= v.Length - 16; j += 16)
            {
                var u = Vector512.LoadUnsafe(ref p, (nuint)j);
                Vector512.ConditionalSelect(Vector512.GreaterThan(u, Vector512<float>.Zero), u, Vector512<float>.Zero).StoreUnsafe(ref p, (nuint)j);
            }
        }
        for (; j < v.Length; j++) v[j] = v[j] > 0f ? v[j] : 0f;
    }

    // d = y > 0 ? dy : 0.
    private static void MaskPositive(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> d)
    {
        int j = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            ref float py = ref MemoryMarshal.GetReference(y);
            ref float pd = ref MemoryMarshal.GetReference(dy);
            ref float po = ref MemoryMarshal.GetReference(d);
            for (; j <= y.Length - 16; j += 16)
            {
                var keep = Vector512.GreaterThan(Vector512.LoadUnsafe(ref py, (nuint)j), Vector512<float>.Zero);
                (keep & Vector512.LoadUnsafe(ref pd, (nuint)j)).StoreUnsafe(ref po, (nuint)j);
            }
        }
        for (; j < y.Length; j++) d[j] = y[j] > 0f ? dy[j] : 0f;
    }
}
