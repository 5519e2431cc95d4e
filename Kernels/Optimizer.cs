using ILGPU;
using ILGPU.Runtime;

namespace GpuNet.Kernels;

/// <summary>
/// The fused optimizer step: every parameter of a model lives in one flat buffer p (n) with one flat gradient g (n)
/// and up to three flat state buffers s1, s2, s3 (n); one launch updates all of it whatever the number of segments.
/// Gradient contract: reads g (never writes it); p and state are updated in place.
/// What each state argument holds, and its PyTorch name, is <see cref="OptimizerHyper.States"/>.
/// Per element, in order: skip frozen groups; g *= clip (global norm); clamp g (value clip); p *= 1 - lr*decoupled;
/// g += L2*p0 + L1*sign(p0) (p0: the parameter before the step; the L1 term only in subgradient mode); the algorithm's
/// update; proximal L1 p = sign(p) max(|p| - lr*L1, 0). lr = step lr * group lr scale (AdaGrad: the decayed lr).
/// Segment table (int, dense over [0, n)): starts (S + 1, last = n) then group index (S); gaps map to a frozen group.
/// Group table (float, G * <see cref="GroupTable.Stride"/>): one row per group, its settings at the <see cref="GroupTable"/> columns.
/// </summary>
public static partial class OptimizerOp
{
    // ---- float64 reference (the spec: torch.optim pseudo-code, step for step) -------------------------------------

    /// <summary>
    /// One step t (1-based) at learning rate <paramref name="lr"/> in float64. <paramref name="groupOf"/>[i] is the
    /// group of element i (-1: in no segment, untouched). <paramref name="s1"/>, <paramref name="s2"/>, <paramref name="s3"/> are
    /// the state arguments of <see cref="OptimizerHyper.States"/>; those the configuration does not use may be empty.
    /// </summary>
    public static void Reference(OptimizerHyper h, long t, double lr, ReadOnlySpan<GroupSettings> groups, ReadOnlySpan<int> groupOf,
        Span<double> p, ReadOnlySpan<double> g, Span<double> s1, Span<double> s2, Span<double> s3)
    {
        double clip = 1;
        if (h.MaxGradNorm > 0)
        {   // torch.nn.utils.clip_grad_norm_: coef = max_norm / (total_norm + 1e-6), clamped to 1
            double ss = 0;
            for (int i = 0; i < p.Length; i++) if (groupOf[i] >= 0 && !groups[groupOf[i]].Frozen) ss += g[i] * g[i];
            clip = Math.Min(1, h.MaxGradNorm / (Math.Sqrt(ss) + 1e-6));
        }
        for (int i = 0; i < p.Length; i++)
        {
            if (groupOf[i] < 0 || groups[groupOf[i]].Frozen) continue;
            var grp = groups[groupOf[i]];
            // the step's learning rate (AdaGrad: decayed) also scales the decoupled decay and the proximal threshold
            double glr = lr * grp.LrScale / (h.Algorithm == OptimizerAlgorithm.Adagrad ? 1 + (t - 1) * h.LrDecay : 1);
            double p0 = p[i], gi = g[i] * clip;
            if (h.ClipValue > 0) gi = Math.Clamp(gi, -h.ClipValue, h.ClipValue);
            double pi = p0;
            if (grp.Decoupled != 0) pi *= 1 - glr * grp.Decoupled;
            gi += grp.L2 * p0;
            if (!h.ProximalL1) gi += grp.L1 * Math.Sign(p0);
            switch (h.Algorithm)
            {
                case OptimizerAlgorithm.Sgd:
                    if (h.Momentum != 0)
                    {
                        s1[i] = t > 1 ? h.Momentum * s1[i] + (1 - h.Dampening) * gi : gi;
                        gi = h.Nesterov ? gi + h.Momentum * s1[i] : s1[i];
                    }
                    pi -= glr * gi;
                    break;
                case OptimizerAlgorithm.Adagrad:
                    s1[i] += gi * gi;
                    pi -= glr * gi / (Math.Sqrt(s1[i]) + h.Eps);
                    break;
                case OptimizerAlgorithm.RmsProp:
                    {
                        s1[i] = h.Alpha * s1[i] + (1 - h.Alpha) * gi * gi;
                        double v = s1[i];
                        if (h.Centered) { s3[i] = h.Alpha * s3[i] + (1 - h.Alpha) * gi; v -= s3[i] * s3[i]; }
                        double denom = Math.Sqrt(v) + h.Eps;
                        if (h.Momentum > 0) { s2[i] = h.Momentum * s2[i] + gi / denom; pi -= glr * s2[i]; }
                        else pi -= glr * gi / denom;
                        break;
                    }
                default:
                    {
                        s1[i] = h.Beta1 * s1[i] + (1 - h.Beta1) * gi;
                        s2[i] = h.Beta2 * s2[i] + (1 - h.Beta2) * gi * gi;
                        double mHat = s1[i] / (1 - Math.Pow(h.Beta1, t));
                        double v = s2[i];
                        if (h.Amsgrad) { s3[i] = Math.Max(s3[i], s2[i]); v = s3[i]; }
                        double vHat = v / (1 - Math.Pow(h.Beta2, t));
                        pi -= glr * mHat / (Math.Sqrt(vHat) + h.Eps);
                        break;
                    }
            }
            if (h.ProximalL1 && grp.L1 != 0) pi = Math.Sign(pi) * Math.Max(Math.Abs(pi) - glr * grp.L1, 0);
            p[i] = pi;
        }
    }

    /// <summary>Reference global gradient norm over the elements of non-frozen groups.</summary>
    public static double ReferenceGradNorm(ReadOnlySpan<GroupSettings> groups, ReadOnlySpan<int> groupOf, ReadOnlySpan<double> g)
    {
        double ss = 0;
        for (int i = 0; i < g.Length; i++) if (groupOf[i] >= 0 && !groups[groupOf[i]].Frozen) ss += g[i] * g[i];
        return Math.Sqrt(ss);
    }

    // ---- ILGPU kernels (p, g, s1, s2, s3: flat (n); segs: int (2S + 1); groups: (G * GroupTable.Stride); norm: (2)) -

    /// <summary>Segment k holding element i (binary search over the S + 1 starts).</summary>
    private static int FindSegment(ArrayView<int> segs, int segments, int i)
    {
        int lo = 0, hi = segments - 1;
        while (lo < hi)
        {
            int mid = (lo + hi + 1) >> 1;
            if (segs[mid] <= i) lo = mid; else hi = mid - 1;
        }
        return lo;
    }

    /// <summary>First float of the group-table row of segment k.</summary>
    private static int RowOfSegment(ArrayView<int> segs, int segments, int k) => GroupTable.Row(segs[segments + 1 + k]);

    private static float Sign(float x) => x > 0f ? 1f : x < 0f ? -1f : 0f;

    // a*b + c. Not MathF.FusedMultiplyAdd: ILGPU 1.5.3's OpenCL backend emits an undeclared FusedMultiplyAdd() for it;
    // ptxas contracts a*b + c into an FMA by default anyway.
    private static float Fma(float a, float b, float c) => a * b + c;

    /// <summary>
    /// The fused step, grid-stride: thread tid updates tid, tid + T, ... (T = launched threads, coalesced). The segment
    /// of the first element is found by binary search, then a pointer only moves forward, so the lookup costs
    /// O(S + elements per thread) reads of a table that stays in cache; no per-element group byte is read.
    /// With clipping by norm, the step reads this step's sum of squares from norm[slot] (no host sync) and thread 0
    /// zeroes norm[1 - slot] for the next step's reduction.
    /// </summary>
    [GpuKernel]
    public static void StepKernel(Index1D tid, ArrayView<float> p, ArrayView<float> g, ArrayView<float> s1, ArrayView<float> s2,
        ArrayView<float> s3, ArrayView<int> segs, ArrayView<float> groups, ArrayView<float> norm, int threads, OptimizerParams a)
    {
        float clip = 1f;
        if ((a.Flags & OptimizerParams.FlagClipNorm) != 0)
        {
            clip = MathF.Min(1f, a.MaxNorm / (MathF.Sqrt(norm[a.Slot]) + 1e-6f));
            if (tid == 0) norm[1 - a.Slot] = 0f;
        }
        int i = tid;
        if (i >= a.Length) return;
        int k = FindSegment(segs, a.Segments, i);
        bool first = (a.Flags & OptimizerParams.FlagFirstStep) != 0;
        for (; i < a.Length; i += threads)
        {
            while (segs[k + 1] <= i) k++;
            int row = RowOfSegment(segs, a.Segments, k);
            if (groups[row + GroupTable.Frozen] != 0f) continue;
            float lr = a.Lr * groups[row + GroupTable.LrScale], l2 = groups[row + GroupTable.L2], l1 = groups[row + GroupTable.L1];
            float dwd = groups[row + GroupTable.Decoupled];
            float p0 = p[i], gi = g[i] * clip;
            if (a.ClipValue > 0f) gi = MathF.Min(MathF.Max(gi, -a.ClipValue), a.ClipValue);
            float pi = p0;
            if (dwd != 0f) pi *= 1f - lr * dwd;
            gi = Fma(l2, p0, gi);
            if ((a.Flags & OptimizerParams.FlagProximalL1) == 0) gi = Fma(l1, Sign(p0), gi);
            if (a.Algorithm == (int)OptimizerAlgorithm.Sgd)
            {
                if ((a.Flags & OptimizerParams.FlagMomentum) != 0)
                {
                    float b = first ? gi : Fma(a.Beta1, s1[i], (1f - a.Dampening) * gi);
                    s1[i] = b;
                    gi = (a.Flags & OptimizerParams.FlagNesterov) != 0 ? Fma(a.Beta1, b, gi) : b;
                }
                pi = Fma(-lr, gi, pi);
            }
            else if (a.Algorithm == (int)OptimizerAlgorithm.Adagrad)
            {
                float sum = Fma(gi, gi, s1[i]);
                s1[i] = sum;
                pi -= lr * gi / (MathF.Sqrt(sum) + a.Eps);
            }
            else if (a.Algorithm == (int)OptimizerAlgorithm.RmsProp)
            {
                float alpha = a.Beta2;
                float v = Fma(alpha, s1[i], (1f - alpha) * gi * gi);
                s1[i] = v;
                if ((a.Flags & OptimizerParams.FlagCentered) != 0)
                {
                    float ga = Fma(alpha, s3[i], (1f - alpha) * gi);
                    s3[i] = ga;
                    v = Fma(-ga, ga, v);
                }
                float denom = MathF.Sqrt(v) + a.Eps;
                if ((a.Flags & OptimizerParams.FlagMomentum) != 0)
                {
                    float b = Fma(a.Beta1, s2[i], gi / denom);
                    s2[i] = b;
                    pi = Fma(-lr, b, pi);
                }
                else pi -= lr * gi / denom;
            }
            else
            {
                float m = Fma(a.Beta1, s1[i], (1f - a.Beta1) * gi);
                float v = Fma(a.Beta2, s2[i], (1f - a.Beta2) * gi * gi);
                s1[i] = m; s2[i] = v;
                if ((a.Flags & OptimizerParams.FlagAmsgrad) != 0) { v = MathF.Max(s3[i], v); s3[i] = v; }
                float denom = MathF.Sqrt(v) * a.InvBc2Sqrt + a.Eps;
                pi -= lr * a.InvBc1 * m / denom;
            }
            if ((a.Flags & OptimizerParams.FlagProximalL1) != 0 && l1 != 0f)
                pi = Sign(pi) * MathF.Max(MathF.Abs(pi) - lr * l1, 0f);
            p[i] = pi;
        }
    }

    /// <summary>Largest thread group of <see cref="SumSquaresKernel"/> (its shared-memory size; groups are powers of two).</summary>
    public const int SumSquaresMaxGroup = 256;

    /// <summary>
    /// Sum of squares of g over non-frozen groups, added to norm[slot] (zeroed by the previous step): grid-stride,
    /// a shared-memory tree reduction per group (portable: OpenCL has no generic warp shuffle in ILGPU), then one
    /// atomic add per group. The group size must be a power of two no larger than <see cref="SumSquaresMaxGroup"/>.
    /// </summary>
    [GpuKernel(ExplicitlyGrouped = true)]
    public static void SumSquaresKernel(ArrayView<float> g, ArrayView<int> segs, ArrayView<float> groups, ArrayView<float> norm,
        int length, int segments, int slot)
    {
        var shared = SharedMemory.Allocate<float>(SumSquaresMaxGroup);
        int t = Group.IdxX, dim = Group.DimX;
        int i = Grid.GlobalIndex.X;
        int threads = Grid.DimX * dim;
        float sum = 0f;
        if (i < length)
        {
            int k = FindSegment(segs, segments, i);
            for (; i < length; i += threads)
            {
                while (segs[k + 1] <= i) k++;
                if (groups[RowOfSegment(segs, segments, k) + GroupTable.Frozen] != 0f) continue;
                float x = g[i];
                sum = Fma(x, x, sum);
            }
        }
        shared[t] = sum;
        Group.Barrier();
        for (int s = dim / 2; s > 0; s >>= 1)
        {
            if (t < s) shared[t] += shared[t + s];
            Group.Barrier();
        }
        if (t == 0) Atomic.Add(ref norm[slot], shared[0]);
    }

    // ---- launchers ----------------------------------------------------------------------------------------------

    /// <summary>
    /// Threads of a grid-stride launch over n elements: enough to fill the device, at most n. The CPU accelerator
    /// runs one OS thread per simulated thread, so there it gets a single group.
    /// </summary>
    public static int StrideThreads(Accelerator acc, int n)
        => Math.Max(1, Math.Min(n, acc.AcceleratorType == AcceleratorType.CPU ? acc.MaxNumThreadsPerGroup
            : acc.NumMultiprocessors * acc.MaxNumThreadsPerMultiprocessor * 2));

    /// <summary>Launches <see cref="StepKernel"/> (one launch for the whole buffer).</summary>
    public static void Launch(KernelCache k, ArrayView<float> p, ArrayView<float> g, ArrayView<float> s1, ArrayView<float> s2,
        ArrayView<float> s3, ArrayView<int> segs, ArrayView<float> groups, ArrayView<float> norm, in OptimizerParams a)
    {
        int threads = StrideThreads(k.Accelerator, a.Length);
        k.Get(StepKernel, acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, int, OptimizerParams>(StepKernel))
            (threads, p, g, s1, s2, s3, segs, groups, norm, threads, a);
        k.CountLaunch();
    }

    /// <summary>Launches <see cref="SumSquaresKernel"/> into norm[slot].</summary>
    public static void LaunchSumSquares(KernelCache k, ArrayView<float> g, ArrayView<int> segs, ArrayView<float> groups, ArrayView<float> norm,
        int segments, int slot)
    {
        var acc = k.Accelerator;
        int n = (int)g.Length;
        bool simulator = acc.AcceleratorType == AcceleratorType.CPU;   // one OS thread per simulated thread: keep it small
        int group = ReductionLaunch.MaxGroupSize(acc, SumSquaresMaxGroup, cpuMaxGroupSize: 16);
        int grid = simulator ? 1
            : Math.Max(1, Math.Min((n + group - 1) / group, acc.NumMultiprocessors * Math.Max(1, acc.MaxNumThreadsPerMultiprocessor / group) * 2));
        k.Get(SumSquaresKernel, a => a.LoadStreamKernel<ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, int, int, int>(SumSquaresKernel))
            (new KernelConfig(grid, group), g, segs, groups, norm, n, segments, slot);
        k.CountLaunch();
    }

    // ---- cost ---------------------------------------------------------------------------------------------------

    /// <summary>
    /// Compulsory traffic of one step over n parameters: p and g read, p written, plus every state buffer read and
    /// written (e.g. Adam: 7 floats = 28 bytes per parameter). FLOPs: about 4 per parameter for regularisation and
    /// clipping plus the algorithm's own (SGD 4, AdaGrad 6, RMSprop 8, Adam 12).
    /// </summary>
    public static OpCost Cost(OptimizerHyper h, long n)
    {
        int states = h.States.Count;
        double flops = 4 + h.Algorithm switch { OptimizerAlgorithm.Sgd => 4, OptimizerAlgorithm.Adagrad => 6, OptimizerAlgorithm.RmsProp => 8, _ => 12 };
        return new OpCost(flops * n, (3 + 2 * states) * 4.0 * n);
    }

    /// <summary>Gradient-norm pass: reads g once, 2 FLOPs per element.</summary>
    public static OpCost SumSquaresCost(long n) => new(2.0 * n, 4.0 * n);
}
