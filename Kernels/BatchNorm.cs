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
public static partial class BatchNormOp
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
    /// Training statistics; group g handles channels g, g + groups, ... (see <see cref="ReductionLaunch.GridSize"/>); any power-of-two
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

    /// <summary>The reduction kernels' launch: groups loop over channels; a group's threads cover M = N*S terms.</summary>
    private static KernelConfig ReductionConfig(Accelerator acc, in BatchNormArgs a)
        => new(ReductionLaunch.GridSize(acc, a.C), ReductionLaunch.GroupSize(acc, (long)a.N * a.S, MaxGroupSize));

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
                (ReductionConfig(k.Accelerator, a), x, saveMean, saveInvStd, rm, rv, a);
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
            (ReductionConfig(k.Accelerator, a), x, dy, y, mean, invStd, dGamma, dBeta, sums, a);
        k.Get(BackwardDxKernel, acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BatchNormArgs>(BackwardDxKernel))
            ((int)dx.Length, x, dy, y, gamma, mean, invStd, sums, dx, a);
        k.CountLaunch(2);
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
