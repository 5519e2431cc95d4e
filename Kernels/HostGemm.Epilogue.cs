using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace GpuNet.Kernels;

// Writing C in the host GEMM: the per-tile epilogue (alpha, beta, bias, then the activation struct's span form), and
// the two shapes that skip the packed loop nest: M = 1 (a row times a matrix) and K = 0 (epilogue only).
internal static unsafe partial class HostGemm
{
    /// <summary>
    /// Writes the tile (rows x cols of a stride-<paramref name="ts"/> buffer) to C[i, j]: the first K slice gives
    /// alpha * tile + beta * C + bias (C unread when beta == 0), later slices add alpha * tile to C, the last one
    /// applies the activation.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Epilogue(ref Job job, float* tile, int ts, int i, int rows, int j, int cols, bool first, bool last)
    {
        int n = job.N;
        float alpha = job.Alpha, beta = first ? job.Beta : 1f;
        float* bias = first ? job.Bias : null;
        var va = Vector256.Create(alpha);
        var vb = Vector256.Create(beta);
        for (int r = 0; r < rows; r++)
        {
            float* t = tile + r * ts;
            float* c = job.C + (long)(i + r) * n + j;
            int x = 0;
            if (beta == 0f)
            {
                if (bias == null)
                    for (; x + 8 <= cols; x += 8) (va * Vector256.Load(t + x)).Store(c + x);
                else
                    for (; x + 8 <= cols; x += 8) Vector256.FusedMultiplyAdd(va, Vector256.Load(t + x), Vector256.Load(bias + j + x)).Store(c + x);
                for (; x < cols; x++) c[x] = alpha * t[x] + (bias == null ? 0f : bias[j + x]);
            }
            else
            {
                if (bias == null)
                    for (; x + 8 <= cols; x += 8)
                        Vector256.FusedMultiplyAdd(va, Vector256.Load(t + x), vb * Vector256.Load(c + x)).Store(c + x);
                else
                    for (; x + 8 <= cols; x += 8)
                        (Vector256.FusedMultiplyAdd(va, Vector256.Load(t + x), vb * Vector256.Load(c + x)) + Vector256.Load(bias + j + x)).Store(c + x);
                for (; x < cols; x++) c[x] = alpha * t[x] + beta * c[x] + (bias == null ? 0f : bias[j + x]);
            }
            if (last && job.Activate != null) job.Activate(c, cols, job.ActAlpha);
        }
    }

    /// <summary>The <see cref="Job.Activate"/> of activation <typeparamref name="TAct"/>: null for the identity.</summary>
    internal static delegate*<float*, int, float, void> RowActivation<TAct>() where TAct : struct, IActivation
        => typeof(TAct) == typeof(IdentityActivation) ? null : &ActivateRow<TAct>;

    /// <summary>c[0 .. count) = f(c[0 .. count)) in place, by the activation's host span form.</summary>
    private static void ActivateRow<TAct>(float* c, int count, float actAlpha) where TAct : struct, IActivation
        => default(TAct).ForwardSpan(actAlpha, new ReadOnlySpan<float>(c, count), new Span<float>(c, count));

    /// <summary>
    /// M = 1 (a batch of one): C[0, :] = a op(B) without packing, memory-bound. A is contiguous either way; with B
    /// (K, N) the rows of B are streamed into 32 column accumulators, with B (N, K) each C value is a dot product
    /// (4 at a time, sharing the loads of a).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RowTimesMatrix(ref Job job)
    {
        const int Chunk = 32;
        int n = job.N, k = job.K;
        float* a = job.A, tile = stackalloc float[Chunk];
        for (int j0 = 0; j0 < n; j0 += Chunk)
        {
            int cols = Math.Min(Chunk, n - j0);
            if (!job.TransB)
            {
                float* b = job.B + j0;
                if (cols == Chunk)
                {
                    Vector256<float> c0 = default, c1 = default, c2 = default, c3 = default;
                    for (int p = 0; p < k; p++, b += n)
                    {
                        var x = Vector256.Create(a[p]);
                        c0 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b), c0);
                        c1 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b + 8), c1);
                        c2 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b + 16), c2);
                        c3 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b + 24), c3);
                    }
                    c0.Store(tile); c1.Store(tile + 8); c2.Store(tile + 16); c3.Store(tile + 24);
                }
                else
                {
                    for (int j = 0; j < cols; j++) tile[j] = 0f;
                    for (int p = 0; p < k; p++, b += n)
                        for (int j = 0; j < cols; j++) tile[j] = MathF.FusedMultiplyAdd(a[p], b[j], tile[j]);
                }
            }
            else
            {
                int j = 0;
                for (; j + 4 <= cols; j += 4)
                {
                    float* b0 = job.B + (long)(j0 + j) * k, b1 = b0 + k, b2 = b1 + k, b3 = b2 + k;
                    Vector256<float> s0 = default, s1 = default, s2 = default, s3 = default;
                    int p = 0;
                    for (; p + 8 <= k; p += 8)
                    {
                        var x = Vector256.Load(a + p);
                        s0 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b0 + p), s0);
                        s1 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b1 + p), s1);
                        s2 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b2 + p), s2);
                        s3 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b3 + p), s3);
                    }
                    float t0 = Vector256.Sum(s0), t1 = Vector256.Sum(s1), t2 = Vector256.Sum(s2), t3 = Vector256.Sum(s3);
                    for (; p < k; p++)
                    {
                        t0 = MathF.FusedMultiplyAdd(a[p], b0[p], t0); t1 = MathF.FusedMultiplyAdd(a[p], b1[p], t1);
                        t2 = MathF.FusedMultiplyAdd(a[p], b2[p], t2); t3 = MathF.FusedMultiplyAdd(a[p], b3[p], t3);
                    }
                    tile[j] = t0; tile[j + 1] = t1; tile[j + 2] = t2; tile[j + 3] = t3;
                }
                for (; j < cols; j++)
                {
                    float* b0 = job.B + (long)(j0 + j) * k;
                    var s0 = Vector256<float>.Zero;
                    int p = 0;
                    for (; p + 8 <= k; p += 8) s0 = Vector256.FusedMultiplyAdd(Vector256.Load(a + p), Vector256.Load(b0 + p), s0);
                    float t0 = Vector256.Sum(s0);
                    for (; p < k; p++) t0 = MathF.FusedMultiplyAdd(a[p], b0[p], t0);
                    tile[j] = t0;
                }
            }
            Epilogue(ref job, tile, Chunk, 0, 1, j0, cols, first: true, last: true);
        }
    }

    /// <summary>K = 0: C = act(beta * C + bias), C unread when beta == 0.</summary>
    private static void EpilogueOnly(ref Job job)
    {
        for (int i = 0; i < job.M; i++)
        {
            float* c = job.C + (long)i * job.N;
            for (int j = 0; j < job.N; j++)
                c[j] = (job.Beta == 0f ? 0f : job.Beta * c[j]) + (job.Bias == null ? 0f : job.Bias[j]);
            if (job.Activate != null) job.Activate(c, job.N, job.ActAlpha);
        }
    }
}
