using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace GpuNet.Kernels;

/// <summary>
/// Shape, hyperparameters and switches of one batch-norm call, passed to the kernels as one struct (kernels take at
/// most 14 parameters). x is seen as (N, C, S): S = 1 for BatchNorm1d on (N, C), S = H*W for BatchNorm2d.
/// </summary>
public struct BatchNormArgs
{
    /// <summary>Batch size.</summary>
    public int N;
    /// <summary>Channels (dimension 1 of x).</summary>
    public int C;
    /// <summary>Spatial size: the product of the dimensions after the channels (1 for a matrix).</summary>
    public int S;
    /// <summary>Added to the variance before the square root.</summary>
    public float Eps;
    /// <summary>Weight of the batch statistic in the running-statistics update.</summary>
    public float Momentum;
    /// <summary>1: the output is max(0, bn(x)) (forward), dy is masked by y &gt; 0 (backward).</summary>
    public int Relu;
    /// <summary>1: training mode (batch statistics; the backward includes the terms through mean and variance).</summary>
    public int Training;
    /// <summary>1: the statistics kernel updates running mean and variance.</summary>
    public int UpdateRunning;
    /// <summary>1: the normalise kernel's statistic is a variance (invstd = 1/sqrt(var + eps)); 0: it is invstd.</summary>
    public int StatIsVariance;
}

/// <summary>
/// Batch normalisation over x: (N, C, S) (channels are dimension 1; S = product of the later dimensions), per channel c
/// over its M = N*S elements. y, dy, dx have the shape of x; gamma, beta, means, variances, invstd: (C).
/// Training forward: mean = sum(x)/M, var = sum((x - mean)^2)/M (biased; two passes, compensated sums),
///   invstd = 1/sqrt(var + eps), y = gamma * (x - mean) * invstd + beta, saveMean = mean, saveInvStd = invstd,
///   running_mean = (1 - momentum) * running_mean + momentum * mean,
///   running_var  = (1 - momentum) * running_var  + momentum * var * M/(M - 1) (unbiased, as PyTorch).
/// Eval forward: mean = running_mean, invstd = 1/sqrt(running_var + eps), same y (save* optionally receive them).
/// Fused ReLU: y = relu(bn(x)) (NaN gives 0, like <see cref="ActivationMath"/>); backward uses dy' = (y &gt; 0) ? dy : 0.
/// Backward, with xhat = (x - mean) * invstd and sums over the channel's M elements:
///   dgamma += sum(dy' * xhat), dbeta += sum(dy')                                         (parameters: accumulate +=)
///   training: dx = gamma * invstd / M * (M * dy' - sum(dy') - xhat * sum(dy' * xhat))     (activations: overwrite =)
///   eval:     dx = gamma * invstd * dy'
/// GPU: one group per channel reduces with a shared-memory tree (statistics; backward sums), then an elementwise
/// kernel normalises (or forms dx). Host: channel blocks in parallel, each streaming the rows of x with float64
/// column accumulators, so BatchNorm1d (S = 1) and BatchNorm2d (large S) both read contiguous memory.
/// </summary>
public static class BatchNormOp
{
    // ---- float64 reference (the spec) ---------------------------------------------------------------------------

    /// <summary>
    /// Reference forward. x, y: (n, c, s); gamma, beta: (c). Running statistics are read in eval and updated in training
    /// when given (empty spans: not tracked); saveMean/saveInvStd receive the statistics used when given.
    /// </summary>
    public static void Reference(int n, int c, int s, ReadOnlySpan<double> x, ReadOnlySpan<double> gamma, ReadOnlySpan<double> beta,
        Span<double> runningMean, Span<double> runningVar, Span<double> saveMean, Span<double> saveInvStd, Span<double> y,
        bool training, double momentum, double eps, bool relu)
    {
        int m = n * s;
        for (int ch = 0; ch < c; ch++)
        {
            double mean, invstd;
            if (training)
            {
                double sum = 0;
                for (int b = 0; b < n; b++) for (int k = 0; k < s; k++) sum += x[(b * c + ch) * s + k];
                mean = sum / m;
                double sq = 0;
                for (int b = 0; b < n; b++) for (int k = 0; k < s; k++) { double d = x[(b * c + ch) * s + k] - mean; sq += d * d; }
                double variance = sq / m;
                invstd = 1 / Math.Sqrt(variance + eps);
                if (!runningMean.IsEmpty)
                {
                    runningMean[ch] = (1 - momentum) * runningMean[ch] + momentum * mean;
                    runningVar[ch] = (1 - momentum) * runningVar[ch] + momentum * variance * m / (m - 1);
                }
            }
            else
            {
                mean = runningMean[ch];
                invstd = 1 / Math.Sqrt(runningVar[ch] + eps);
            }
            if (!saveMean.IsEmpty) { saveMean[ch] = mean; saveInvStd[ch] = invstd; }
            for (int b = 0; b < n; b++)
                for (int k = 0; k < s; k++)
                {
                    int i = (b * c + ch) * s + k;
                    double v = gamma[ch] * (x[i] - mean) * invstd + beta[ch];
                    y[i] = relu ? (v > 0 ? v : 0) : v;
                }
        }
    }

    /// <summary>
    /// Reference backward. mean, invstd: the statistics the forward used (batch ones in training, running ones in eval);
    /// y: the forward output (read only when <paramref name="relu"/>). dx is overwritten; dGamma, dBeta accumulate.
    /// </summary>
    public static void ReferenceBackward(int n, int c, int s, ReadOnlySpan<double> x, ReadOnlySpan<double> dy, ReadOnlySpan<double> gamma,
        ReadOnlySpan<double> mean, ReadOnlySpan<double> invstd, ReadOnlySpan<double> y, Span<double> dx, Span<double> dGamma, Span<double> dBeta,
        bool training, bool relu)
    {
        int m = n * s;
        for (int ch = 0; ch < c; ch++)
        {
            double sdy = 0, sdx = 0;
            for (int b = 0; b < n; b++)
                for (int k = 0; k < s; k++)
                {
                    int i = (b * c + ch) * s + k;
                    double d = relu && !(y[i] > 0) ? 0 : dy[i];
                    sdy += d;
                    sdx += d * (x[i] - mean[ch]) * invstd[ch];
                }
            dGamma[ch] += sdx;
            dBeta[ch] += sdy;
            double g = gamma[ch] * invstd[ch];
            for (int b = 0; b < n; b++)
                for (int k = 0; k < s; k++)
                {
                    int i = (b * c + ch) * s + k;
                    double d = relu && !(y[i] > 0) ? 0 : dy[i];
                    double xhat = (x[i] - mean[ch]) * invstd[ch];
                    dx[i] = training ? g / m * (m * d - sdy - xhat * sdx) : g * d;
                }
        }
    }

    // ---- ILGPU kernels: forward -----------------------------------------------------------------------------------

    /// <summary>Largest group the reduction kernels use (the size of their shared-memory scratch).</summary>
    public const int MaxGroupSize = 256;

    /// <summary>
    /// Training statistics; group g handles channels g, g + groups, ... (see <see cref="GridSize"/>); any power-of-two
    /// group size &lt;= <see cref="MaxGroupSize"/>: two passes of compensated sums over the channel's M = N*S elements
    /// (mean, then the squared deviations), tree-reduced in shared memory; thread 0 writes mean[c], invStd[c] and, when a.UpdateRunning, the running statistics.
    /// x: (N, C, S); mean, invStd, runningMean, runningVar: (C) (running ones unused unless a.UpdateRunning).
    /// </summary>
    [GpuKernel(ExplicitlyGrouped = true)]
    public static void StatsKernel(ArrayView<float> x, ArrayView<float> mean, ArrayView<float> invStd,
        ArrayView<float> runningMean, ArrayView<float> runningVar, BatchNormArgs a)
    {
        var scratch = SharedMemory.Allocate<float>(4 * MaxGroupSize);
        int t = Group.IdxX, g = Group.DimX, groups = Grid.DimX;
        int s = a.S, cs = a.C * a.S, m = a.N * a.S;
        for (int c = Grid.IdxX; c < a.C; c += groups)
        {
            int off = c * a.S;
            var sum = default(CompensatedSum);
            for (int j = t; j < m; j += g)
            {
                int b = j / s;
                sum = sum.Add(x[b * cs + off + (j - b * s)]);
            }
            float mu = GroupReduce(scratch, sum, default, t, g).A.Value / m;

            var sq = default(CompensatedSum);
            for (int j = t; j < m; j += g)
            {
                int b = j / s;
                float d = x[b * cs + off + (j - b * s)] - mu;
                sq = sq.Add(d * d);
            }
            float variance = GroupReduce(scratch, sq, default, t, g).A.Value / m;

            if (t == 0)
            {
                mean[c] = mu;
                invStd[c] = 1f / XMath.Sqrt(variance + a.Eps);
                if (a.UpdateRunning != 0)
                {
                    float k = a.Momentum;
                    runningMean[c] = (1f - k) * runningMean[c] + k * mu;
                    runningVar[c] = (1f - k) * runningVar[c] + k * (variance * ((float)m / (m - 1)));
                }
            }
        }
    }

    /// <summary>Eval statistics for the backward: mean[c] = runningMean[c], invStd[c] = 1/sqrt(runningVar[c] + eps).</summary>
    [GpuKernel]
    public static void EvalStatsKernel(Index1D c, ArrayView<float> runningMean, ArrayView<float> runningVar,
        ArrayView<float> mean, ArrayView<float> invStd, float eps)
    {
        mean[c] = runningMean[c];
        invStd[c] = 1f / XMath.Sqrt(runningVar[c] + eps);
    }

    /// <summary>
    /// y[i] = gamma[c] * (x[i] - mean[c]) * invstd + beta[c] (then ReLU when a.Relu), c = (i / S) % C; invstd is
    /// stat[c] or, when a.StatIsVariance, 1/sqrt(stat[c] + eps). x, y: (N, C, S); the rest: (C). y may be x.
    /// </summary>
    [GpuKernel]
    public static void NormalizeKernel(Index1D i, ArrayView<float> x, ArrayView<float> y, ArrayView<float> gamma, ArrayView<float> beta,
        ArrayView<float> mean, ArrayView<float> stat, BatchNormArgs a)
    {
        int c = i / a.S % a.C;
        float inv = a.StatIsVariance != 0 ? 1f / XMath.Sqrt(stat[c] + a.Eps) : stat[c];
        float v = gamma[c] * ((x[i] - mean[c]) * inv) + beta[c];
        y[i] = a.Relu != 0 ? (v > 0f ? v : 0f) : v;
    }

    // ---- ILGPU kernels: backward ----------------------------------------------------------------------------------

    /// <summary>
    /// Backward sums, groups loop over channels (launch like <see cref="StatsKernel"/>): sum(dy') and sum(dy' * xhat) over
    /// the channel, compensated, tree-reduced; thread 0 writes sums[c] = sum(dy'), sums[C + c] = sum(dy' * xhat) and
    /// accumulates dGamma[c] += sum(dy' * xhat), dBeta[c] += sum(dy'). dy' = dy masked by y &gt; 0 when a.Relu (y unused
    /// otherwise). x, dy, y: (N, C, S); mean, invStd, dGamma, dBeta: (C); sums: (2C).
    /// </summary>
    [GpuKernel(ExplicitlyGrouped = true)]
    public static void BackwardSumsKernel(ArrayView<float> x, ArrayView<float> dy, ArrayView<float> y, ArrayView<float> mean,
        ArrayView<float> invStd, ArrayView<float> dGamma, ArrayView<float> dBeta, ArrayView<float> sums, BatchNormArgs a)
    {
        var scratch = SharedMemory.Allocate<float>(4 * MaxGroupSize);
        int t = Group.IdxX, g = Group.DimX, groups = Grid.DimX;
        int s = a.S, cs = a.C * a.S, m = a.N * a.S, relu = a.Relu;
        for (int c = Grid.IdxX; c < a.C; c += groups)
        {
            int off = c * a.S;
            float mu = mean[c], inv = invStd[c];
            var sdy = default(CompensatedSum);
            var sdx = default(CompensatedSum);
            for (int j = t; j < m; j += g)
            {
                int b = j / s;
                int i = b * cs + off + (j - b * s);
                float d = dy[i];
                if (relu != 0 && !(y[i] > 0f)) d = 0f;
                sdy = sdy.Add(d);
                sdx = sdx.Add(d * ((x[i] - mu) * inv));
            }
            var r = GroupReduce(scratch, sdy, sdx, t, g);
            if (t == 0)
            {
                float a0 = r.A.Value, a1 = r.B.Value;
                sums[c] = a0;
                sums[a.C + c] = a1;
                dGamma[c] += a1;
                dBeta[c] += a0;
            }
        }
    }

    /// <summary>
    /// dx[i] = gamma[c] * invstd[c] * (dy'[i] - (sums[c] + xhat[i] * sums[C + c]) / M) in training, gamma[c] * invstd[c] * dy'[i]
    /// in eval; c = (i / S) % C. x, dy, y, dx: (N, C, S); gamma, mean, invStd: (C); sums: (2C) from
    /// <see cref="BackwardSumsKernel"/>. dx may be dy.
    /// </summary>
    [GpuKernel]
    public static void BackwardDxKernel(Index1D i, ArrayView<float> x, ArrayView<float> dy, ArrayView<float> y, ArrayView<float> gamma,
        ArrayView<float> mean, ArrayView<float> invStd, ArrayView<float> sums, ArrayView<float> dx, BatchNormArgs a)
    {
        int c = i / a.S % a.C;
        float d = dy[i];
        if (a.Relu != 0 && !(y[i] > 0f)) d = 0f;
        float inv = invStd[c];
        float k = gamma[c] * inv;
        if (a.Training != 0)
        {
            float xhat = (x[i] - mean[c]) * inv;
            d -= (sums[c] + xhat * sums[a.C + c]) / (a.N * a.S);
        }
        dx[i] = k * d;
    }

    /// <summary>Two compensated sums (the result of <see cref="GroupReduce"/>).</summary>
    public struct SumPair
    {
        /// <summary>The first sum.</summary>
        public CompensatedSum A;
        /// <summary>The second sum.</summary>
        public CompensatedSum B;
    }

    // Tree reduction of two (sum, error) pairs per thread over a power-of-two group; every thread gets the totals.
    // No warp-size assumption: every level is a group barrier. The last barrier lets the next call reuse the scratch.
    // scratch: 4 * MaxGroupSize shared floats, allocated once per kernel (ILGPU's CPU accelerator allocates a buffer
    // per allocation site and group instance).
    private static SumPair GroupReduce(ArrayView<float> scratch, CompensatedSum a, CompensatedSum b, int t, int g)
    {
        var s0 = scratch.SubView(0, MaxGroupSize);
        var e0 = scratch.SubView(MaxGroupSize, MaxGroupSize);
        var s1 = scratch.SubView(2 * MaxGroupSize, MaxGroupSize);
        var e1 = scratch.SubView(3 * MaxGroupSize, MaxGroupSize);
        s0[t] = a.S; e0[t] = a.C; s1[t] = b.S; e1[t] = b.C;
        Group.Barrier();
        for (int h = g >> 1; h > 0; h >>= 1)
        {
            if (t < h)
            {
                var ra = new CompensatedSum(s0[t], e0[t]).Add(new CompensatedSum(s0[t + h], e0[t + h]));
                var rb = new CompensatedSum(s1[t], e1[t]).Add(new CompensatedSum(s1[t + h], e1[t + h]));
                s0[t] = ra.S; e0[t] = ra.C; s1[t] = rb.S; e1[t] = rb.C;
            }
            Group.Barrier();
        }
        var r = new SumPair { A = new CompensatedSum(s0[0], e0[0]), B = new CompensatedSum(s1[0], e1[0]) };
        Group.Barrier();
        return r;
    }

    // ---- launchers ----------------------------------------------------------------------------------------------

    /// <summary>Group size cap on ILGPU's CPU accelerator, whose barriers are OS-thread rendezvous.</summary>
    public const int CpuAcceleratorMaxGroupSize = 32;

    /// <summary>
    /// Threads per channel group: the power of two covering M = N*S (at least one warp), capped by
    /// <see cref="MaxGroupSize"/> (<see cref="CpuAcceleratorMaxGroupSize"/> on the CPU accelerator) and the accelerator's limit.
    /// </summary>
    public static int GroupSize(Accelerator acc, long m)
    {
        int limit = Math.Min(acc.AcceleratorType == AcceleratorType.CPU ? CpuAcceleratorMaxGroupSize : MaxGroupSize, acc.MaxNumThreadsPerGroup);
        int cap = 1;
        while (cap * 2 <= limit) cap *= 2;
        int want = 1;
        while (want < m && want < cap) want *= 2;
        return Math.Max(Math.Min(want, cap), Math.Min(acc.WarpSize, cap));
    }

    /// <summary>
    /// Groups of the reduction kernels, which loop over channels c = group, group + groups, ...: one per channel on a
    /// GPU; on ILGPU's CPU accelerator one per simulated multiprocessor, since it allocates every group instance's
    /// shared memory anew and runs the groups of a multiprocessor one after another anyway.
    /// </summary>
    public static int GridSize(Accelerator acc, int channels)
        => acc.AcceleratorType == AcceleratorType.CPU ? Math.Max(1, Math.Min(channels, acc.NumMultiprocessors)) : Math.Max(1, channels);

    /// <summary>
    /// Launches the forward: training = <see cref="StatsKernel"/> then <see cref="NormalizeKernel"/> (2 launches); eval =
    /// <see cref="EvalStatsKernel"/> when saveMean is given (its Length &gt; 0), then <see cref="NormalizeKernel"/> on the
    /// running statistics. Running views: length 0 when not tracked (training only). Returns the number of launches.
    /// </summary>
    public static int Launch(KernelCache k, BatchNormArgs a, ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> beta,
        ArrayView<float> runningMean, ArrayView<float> runningVar, ArrayView<float> saveMean, ArrayView<float> saveInvStd, ArrayView<float> y)
    {
        int launches = 0;
        var normalize = k.Get(NormalizeKernel, acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, ArrayView<float>, ArrayView<float>, BatchNormArgs>(NormalizeKernel));
        if (a.Training != 0)
        {
            a.UpdateRunning = runningMean.Length > 0 ? 1 : 0;
            var rm = a.UpdateRunning != 0 ? runningMean : saveMean;
            var rv = a.UpdateRunning != 0 ? runningVar : saveInvStd;
            k.Get(StatsKernel, acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
                ArrayView<float>, BatchNormArgs>(StatsKernel))
                (new KernelConfig(GridSize(k.Accelerator, a.C), GroupSize(k.Accelerator, (long)a.N * a.S)), x, saveMean, saveInvStd, rm, rv, a);
            a.StatIsVariance = 0;
            normalize((int)x.Length, x, y, gamma, beta, saveMean, saveInvStd, a);
            launches = 2;
        }
        else if (saveMean.Length > 0)
        {
            k.Get(EvalStatsKernel, acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>,
                ArrayView<float>, float>(EvalStatsKernel))(a.C, runningMean, runningVar, saveMean, saveInvStd, a.Eps);
            a.StatIsVariance = 0;
            normalize((int)x.Length, x, y, gamma, beta, saveMean, saveInvStd, a);
            launches = 2;
        }
        else
        {
            a.StatIsVariance = 1;
            normalize((int)x.Length, x, y, gamma, beta, runningMean, runningVar, a);
            launches = 1;
        }
        k.CountLaunch(launches);
        return launches;
    }

    /// <summary>
    /// Launches the backward: <see cref="BackwardSumsKernel"/> then <see cref="BackwardDxKernel"/> (2 launches).
    /// y: the forward output when a.Relu, else any view (unused). sums: (2C) scratch.
    /// </summary>
    public static void LaunchBackward(KernelCache k, BatchNormArgs a, ArrayView<float> x, ArrayView<float> dy, ArrayView<float> y,
        ArrayView<float> gamma, ArrayView<float> mean, ArrayView<float> invStd, ArrayView<float> dx, ArrayView<float> dGamma,
        ArrayView<float> dBeta, ArrayView<float> sums)
    {
        k.Get(BackwardSumsKernel, acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BatchNormArgs>(BackwardSumsKernel))
            (new KernelConfig(GridSize(k.Accelerator, a.C), GroupSize(k.Accelerator, (long)a.N * a.S)), x, dy, y, mean, invStd, dGamma, dBeta, sums, a);
        k.Get(BackwardDxKernel, acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BatchNormArgs>(BackwardDxKernel))
            ((int)dx.Length, x, dy, y, gamma, mean, invStd, sums, dx, a);
        k.CountLaunch(2);
    }

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
                BackwardRow(a, x, dy, y, c0, b, w, mu, inv, d, xhat);
                var dxs = dx.AsSpan((b * c + c0) * s, w);
                if (a.Training != 0)
                {
                    // dx = k * (d - (sum(dy')/M + xhat * sum(dy' xhat)/M))
                    System.Numerics.Tensors.TensorPrimitives.FusedMultiplyAdd(xhat, colB, colA, xhat);
                    System.Numerics.Tensors.TensorPrimitives.Subtract(d, xhat, d);
                }
                System.Numerics.Tensors.TensorPrimitives.Multiply(d, k, dxs);
            }
        });

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

    // ---- cost ---------------------------------------------------------------------------------------------------

    /// <summary>
    /// Forward over e = N*C*S elements: training reads x three times (two statistic passes, one normalise) and writes y,
    /// about 8 FLOPs per element; eval reads x once and writes y, about 4 FLOPs per element. Parameters (C) not counted.
    /// </summary>
    public static OpCost ForwardCost(int n, int c, int s, bool training)
    {
        double e = (double)n * c * s;
        return training ? new(8 * e, 16 * e) : new(4 * e, 8 * e);
    }

    /// <summary>
    /// Backward over e elements: the sums pass reads x, dy (and y under ReLU); the dx pass reads them again and writes dx;
    /// about 12 FLOPs per element in training, 6 in eval.
    /// </summary>
    public static OpCost BackwardCost(int n, int c, int s, bool training, bool relu)
    {
        double e = (double)n * c * s;
        return new((training ? 12 : 6) * e, (relu ? 28 : 20) * e);
    }
}
