using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace GpuNet.Kernels;

public static partial class OptimizerOp
{
    // ---- SIMD host implementation ---------------------------------------------------------------------------------
    // The buffer is split into one chunk per core; each chunk walks the segments it overlaps, so the group settings
    // are looked up once per segment piece, never per element. Each piece runs a Vector512 loop (emulated with two
    // Vector256 halves where AVX-512 is absent); the last partial vector goes through a 16-float scratch copy so
    // the tail computes exactly what the body computes.

    /// <summary>
    /// Host fused step. <paramref name="segStarts"/> (S + 1, last = n) and <paramref name="segGroups"/> (S) are the
    /// dense segment table; <paramref name="table"/> the group table (<see cref="GroupTable"/>). <paramref name="sumSquares"/>
    /// is this step's sum of squares of the gradient (used only when clipping by norm). <paramref name="s1"/>,
    /// <paramref name="s2"/>, <paramref name="s3"/>: the state arguments (<see cref="OptimizerHyper.States"/>), empty when unused.
    /// </summary>
    public static void Host(ArraySegment<float> p, ArraySegment<float> g, ArraySegment<float> s1, ArraySegment<float> s2, ArraySegment<float> s3,
        int[] segStarts, int[] segGroups, float[] table, OptimizerParams a, float sumSquares)
    {
        float clip = (a.Flags & OptimizerParams.FlagClipNorm) != 0 ? MathF.Min(1f, a.MaxNorm / (MathF.Sqrt(sumSquares) + 1e-6f)) : 1f;
        HostSimd.ForChunks(a.Length, (p, g, s1, s2, s3, segStarts, segGroups, table, a, clip), static (t, start, count) =>
        {
            var (p, g, s1, s2, s3, segStarts, segGroups, table, a, clip) = t;
            for (var pieces = new ActivePieces(segStarts, segGroups, table, a.Segments, start, start + count); pieces.Next(out int row, out int lo, out int hi);)
            {
                var grp = new HostGroup(a.Lr * table[row + GroupTable.LrScale], table[row + GroupTable.L2], table[row + GroupTable.L1], table[row + GroupTable.Decoupled]);
                Range(a, grp, clip, p, g, s1, s2, s3, lo, hi - lo);
            }
        });
    }

    /// <summary>Host sum of squares of g over non-frozen segments (float64 accumulation across chunks).</summary>
    public static double HostSumSquares(ArraySegment<float> g, int[] segStarts, int[] segGroups, float[] table, int segments)
    {
        if (g.Count == 0) return 0;
        // One partial per chunk of HostSimd.ForChunks, added in chunk order: bit-identical reruns.
        int chunk = HostSimd.ChunkSize(g.Count);
        using var frame = HostPool.Enter();
        var partials = HostPool.DoubleSegment((g.Count + chunk - 1) / chunk);
        HostSimd.ForChunks(g.Count, (g, segStarts, segGroups, table, segments, partials, chunk), static (t, start, count) =>
        {
            var (g, segStarts, segGroups, table, segments, partials, chunk) = t;
            double local = 0;
            for (var pieces = new ActivePieces(segStarts, segGroups, table, segments, start, start + count); pieces.Next(out _, out int lo, out int hi);)
                local += System.Numerics.Tensors.TensorPrimitives.SumOfSquares(g.AsSpan(lo, hi - lo));
            partials[start / chunk] = local;
        });
        double total = 0;
        foreach (double partial in partials) total += partial;
        return total;
    }

    /// <summary>
    /// The non-empty pieces of [start, end) that lie in segments of non-frozen groups, in order, each with the group-table
    /// row of its group: the settings are looked up once per piece, never per element.
    /// </summary>
    private struct ActivePieces(int[] segStarts, int[] segGroups, float[] table, int segments, int start, int end)
    {
        private int _k = Array.BinarySearch(segStarts, 0, segments, start) is int b && b >= 0 ? b : ~b - 1;

        public bool Next(out int row, out int lo, out int hi)
        {
            for (; _k < segments && segStarts[_k] < end; _k++)
            {
                row = GroupTable.Row(segGroups[_k]);
                lo = Math.Max(start, segStarts[_k]);
                hi = Math.Min(end, segStarts[_k + 1]);
                if (table[row + GroupTable.Frozen] != 0f || hi <= lo) continue;
                _k++;
                return true;
            }
            row = lo = hi = 0;
            return false;
        }
    }

    private readonly record struct HostGroup(float Lr, float L2, float L1, float Decoupled);

    private static void Range(in OptimizerParams a, HostGroup grp, float clip, ArraySegment<float> p, ArraySegment<float> g,
        ArraySegment<float> s1, ArraySegment<float> s2, ArraySegment<float> s3, int start, int count)
    {
        const int W = 16;
        int n = count / W * W;
        ref float rp = ref Ref(p, start), rg = ref Ref(g, start);
        ref float r1 = ref Ref(s1, start), r2 = ref Ref(s2, start), r3 = ref Ref(s3, start);
        for (int i = 0; i < n; i += W)
            Vec(a, grp, clip, ref Unsafe.Add(ref rp, i), ref Unsafe.Add(ref rg, i), ref Unsafe.Add(ref r1, i), ref Unsafe.Add(ref r2, i), ref Unsafe.Add(ref r3, i));
        int rest = count - n;
        if (rest == 0) return;
        Span<float> tp = stackalloc float[W], tg = stackalloc float[W], t1 = stackalloc float[W], t2 = stackalloc float[W], t3 = stackalloc float[W];
        p.AsSpan(start + n, rest).CopyTo(tp); g.AsSpan(start + n, rest).CopyTo(tg);
        if (s1.Count > 0) s1.AsSpan(start + n, rest).CopyTo(t1);
        if (s2.Count > 0) s2.AsSpan(start + n, rest).CopyTo(t2);
        if (s3.Count > 0) s3.AsSpan(start + n, rest).CopyTo(t3);
        Vec(a, grp, clip, ref tp[0], ref tg[0], ref t1[0], ref t2[0], ref t3[0]);
        tp[..rest].CopyTo(p.AsSpan(start + n, rest));
        if (s1.Count > 0) t1[..rest].CopyTo(s1.AsSpan(start + n, rest));
        if (s2.Count > 0) t2[..rest].CopyTo(s2.AsSpan(start + n, rest));
        if (s3.Count > 0) t3[..rest].CopyTo(s3.AsSpan(start + n, rest));
    }

    /// <summary>A reference to element <paramref name="i"/> of a segment, or a dummy for an unused (empty) state buffer.</summary>
    private static ref float Ref(ArraySegment<float> s, int i)
        => ref s.Count == 0 ? ref s_dummy[0] : ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(s.Array!), s.Offset + i);

    // Never read or written: unused state refs point here and the algorithms that lack a buffer never touch it.
    private static readonly float[] s_dummy = new float[1];

    private static Vector512<float> Sign(Vector512<float> x)
        => Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512<float>.Zero), Vector512<float>.One, Vector512<float>.Zero)
         - Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512<float>.Zero), Vector512<float>.One, Vector512<float>.Zero);

    /// <summary>16 elements of the fused step: the same sequence of operations as <see cref="StepKernel"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Vec(in OptimizerParams a, HostGroup grp, float clip, ref float rp, ref float rg, ref float r1, ref float r2, ref float r3)
    {
        var lr = Vector512.Create(grp.Lr);
        var p0 = Vector512.LoadUnsafe(ref rp);
        var gi = Vector512.LoadUnsafe(ref rg) * clip;
        if (a.ClipValue > 0f) gi = Vector512.Min(Vector512.Max(gi, Vector512.Create(-a.ClipValue)), Vector512.Create(a.ClipValue));
        var pi = p0;
        if (grp.Decoupled != 0f) pi *= 1f - grp.Lr * grp.Decoupled;
        if (grp.L2 != 0f) gi = Vector512.FusedMultiplyAdd(Vector512.Create(grp.L2), p0, gi);
        if (grp.L1 != 0f && (a.Flags & OptimizerParams.FlagProximalL1) == 0) gi = Vector512.FusedMultiplyAdd(Vector512.Create(grp.L1), Sign(p0), gi);
        switch (a.Algorithm)
        {
            case (int)OptimizerAlgorithm.Sgd:
                if ((a.Flags & OptimizerParams.FlagMomentum) != 0)
                {
                    var b = (a.Flags & OptimizerParams.FlagFirstStep) != 0 ? gi
                        : Vector512.FusedMultiplyAdd(Vector512.Create(a.Beta1), Vector512.LoadUnsafe(ref r1), (1f - a.Dampening) * gi);
                    b.StoreUnsafe(ref r1);
                    gi = (a.Flags & OptimizerParams.FlagNesterov) != 0 ? Vector512.FusedMultiplyAdd(Vector512.Create(a.Beta1), b, gi) : b;
                }
                pi = Vector512.FusedMultiplyAdd(-lr, gi, pi);
                break;
            case (int)OptimizerAlgorithm.Adagrad:
                {
                    var sum = Vector512.FusedMultiplyAdd(gi, gi, Vector512.LoadUnsafe(ref r1));
                    sum.StoreUnsafe(ref r1);
                    pi -= lr * gi / (Vector512.Sqrt(sum) + Vector512.Create(a.Eps));
                    break;
                }
            case (int)OptimizerAlgorithm.RmsProp:
                {
                    var alpha = Vector512.Create(a.Beta2);
                    var v = Vector512.FusedMultiplyAdd(alpha, Vector512.LoadUnsafe(ref r1), (1f - a.Beta2) * gi * gi);
                    v.StoreUnsafe(ref r1);
                    if ((a.Flags & OptimizerParams.FlagCentered) != 0)
                    {
                        var ga = Vector512.FusedMultiplyAdd(alpha, Vector512.LoadUnsafe(ref r3), (1f - a.Beta2) * gi);
                        ga.StoreUnsafe(ref r3);
                        v = Vector512.FusedMultiplyAdd(-ga, ga, v);
                    }
                    var denom = Vector512.Sqrt(v) + Vector512.Create(a.Eps);
                    if ((a.Flags & OptimizerParams.FlagMomentum) != 0)
                    {
                        var b = Vector512.FusedMultiplyAdd(Vector512.Create(a.Beta1), Vector512.LoadUnsafe(ref r2), gi / denom);
                        b.StoreUnsafe(ref r2);
                        pi = Vector512.FusedMultiplyAdd(-lr, b, pi);
                    }
                    else pi -= lr * gi / denom;
                    break;
                }
            default:
                {
                    var m = Vector512.FusedMultiplyAdd(Vector512.Create(a.Beta1), Vector512.LoadUnsafe(ref r1), (1f - a.Beta1) * gi);
                    var v = Vector512.FusedMultiplyAdd(Vector512.Create(a.Beta2), Vector512.LoadUnsafe(ref r2), (1f - a.Beta2) * gi * gi);
                    m.StoreUnsafe(ref r1); v.StoreUnsafe(ref r2);
                    if ((a.Flags & OptimizerParams.FlagAmsgrad) != 0) { v = Vector512.Max(Vector512.LoadUnsafe(ref r3), v); v.StoreUnsafe(ref r3); }
                    var denom = Vector512.FusedMultiplyAdd(Vector512.Sqrt(v), Vector512.Create(a.InvBc2Sqrt), Vector512.Create(a.Eps));
                    pi -= lr * a.InvBc1 * m / denom;
                    break;
                }
        }
        if ((a.Flags & OptimizerParams.FlagProximalL1) != 0 && grp.L1 != 0f)
            pi = Sign(pi) * Vector512.Max(Vector512.Abs(pi) - Vector512.Create(grp.Lr * grp.L1), Vector512<float>.Zero);
        pi.StoreUnsafe(ref rp);
    }
}
