using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GpuNet.Kernels;

// Packing of the host GEMM: op(A) blocks into MR-row slivers and op(B) panels into NR-column slivers, so the
// micro-kernel sees one layout whatever the transposes; edges are zero-padded.
internal static unsafe partial class HostGemm
{
    /// <summary>
    /// Packs op(A)[ic:ic+mc, pc:pc+kc] into mr-row slivers: sliver s holds, for each p, the mr values of rows
    /// ic + s*mr .. ic + s*mr + mr - 1 (zero past row ic + mc).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackA(ref Job job, int pc, int kc, int ic, int mc, int mr, float* dst)
    {
        int m = job.M, k = job.K;
        for (int s = 0; s < mc; s += mr, dst += mr * kc)
        {
            int rows = Math.Min(mr, mc - s);
            if (job.TransA)
            {
                // A: (K, M); row p of A holds column p of op(A): mr contiguous values per k step.
                float* src = job.A + (long)pc * m + ic + s;
                if (rows == mr)
                    for (int p = 0; p < kc; p++, src += m) CopyRow(src, dst + p * mr, mr);
                else
                    for (int p = 0; p < kc; p++, src += m)
                    {
                        float* d = dst + p * mr;
                        int r = 0;
                        for (; r < rows; r++) d[r] = src[r];
                        for (; r < mr; r++) d[r] = 0f;
                    }
            }
            else
            {
                // A: (M, K); a transposing pack, row r of the sliver becomes every mr-th value.
                PackTransposed(job.A + (long)(ic + s) * k + pc, k, rows, kc, dst, mr);
                for (int r = rows; r < mr; r++)
                    for (int p = 0; p < kc; p++) dst[p * mr + r] = 0f;
            }
        }
    }

    /// <summary>
    /// Packs op(B)[pc:pc+kc, jc:jc+nc] into nr-column slivers: sliver s holds, for each p, the nr values of columns
    /// jc + s*nr .. (zero past column jc + nc).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackB(ref Job job, int pc, int kc, int jc, int nc, int nr, float* dst)
    {
        int n = job.N, k = job.K;
        if (!job.TransB)
        {
            // B: (K, N): row by row (one sequential read of nc values per k step), each row scattered over the
            // slivers, nr contiguous values per sliver.
            int full = nc / nr * nr;
            float* src = job.B + (long)pc * n + jc;
            for (int p = 0; p < kc; p++, src += n)
            {
                float* d = dst + p * nr;
                for (int s = 0; s < full; s += nr) CopyRow(src + s, d + s * kc, nr);
                if (full < nc)
                {
                    float* dt = d + full * kc;
                    int j = 0;
                    for (; j < nc - full; j++) dt[j] = src[full + j];
                    for (; j < nr; j++) dt[j] = 0f;
                }
            }
            return;
        }
        // B: (N, K); a transposing pack, sliver by sliver.
        for (int s = 0; s < nc; s += nr, dst += nr * kc)
        {
            int cols = Math.Min(nr, nc - s);
            PackTransposed(job.B + (long)(jc + s) * k + pc, k, cols, kc, dst, nr);
            for (int j = cols; j < nr; j++)
                for (int p = 0; p < kc; p++) dst[p * nr + j] = 0f;
        }
    }

    /// <summary>
    /// dst[p * stride + r] = src[r * ld + p] for r &lt; rows, p &lt; kc: 4 x 8 blocks transposed in registers
    /// (two unpack and one shuffle stage), the remainder scalar.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void PackTransposed(float* src, long ld, int rows, int kc, float* dst, int stride)
    {
        int r = 0;
        if (Avx.IsSupported)
            for (; r + 4 <= rows; r += 4)
            {
                float* s0 = src + r * ld, s1 = s0 + ld, s2 = s1 + ld, s3 = s2 + ld;
                float* d = dst + r;
                int p = 0;
                for (; p + 8 <= kc; p += 8)
                {
                    // rows a, b, c, e at columns p .. p + 7 -> columns p + q holding (a, b, c, e)[q].
                    var a = Avx.LoadVector256(s0 + p); var b = Avx.LoadVector256(s1 + p);
                    var c = Avx.LoadVector256(s2 + p); var e = Avx.LoadVector256(s3 + p);
                    var t0 = Avx.UnpackLow(a, b); var t1 = Avx.UnpackHigh(a, b);    // a0 b0 a1 b1 | a4 b4 a5 b5 ; a2 b2 a3 b3 | ...
                    var t2 = Avx.UnpackLow(c, e); var t3 = Avx.UnpackHigh(c, e);
                    var u0 = Avx.Shuffle(t0, t2, 0x44); var u1 = Avx.Shuffle(t0, t2, 0xEE);  // a0 b0 c0 e0 | a4 b4 c4 e4 ; a1 .. | a5 ..
                    var u2 = Avx.Shuffle(t1, t3, 0x44); var u3 = Avx.Shuffle(t1, t3, 0xEE);
                    float* q = d + p * stride;
                    u0.GetLower().Store(q); u1.GetLower().Store(q + stride);
                    u2.GetLower().Store(q + 2 * stride); u3.GetLower().Store(q + 3 * stride);
                    u0.GetUpper().Store(q + 4 * stride); u1.GetUpper().Store(q + 5 * stride);
                    u2.GetUpper().Store(q + 6 * stride); u3.GetUpper().Store(q + 7 * stride);
                }
                for (; p < kc; p++)
                {
                    float* q = d + p * stride;
                    q[0] = s0[p]; q[1] = s1[p]; q[2] = s2[p]; q[3] = s3[p];
                }
            }
        for (; r < rows; r++)
        {
            float* sr = src + r * ld;
            float* d = dst + r;
            for (int p = 0; p < kc; p++) d[p * stride] = sr[p];
        }
    }

    /// <summary>Copies a full sliver row (a multiple of 8 floats).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void CopyRow(float* src, float* dst, int count)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i + 16 <= count; i += 16) Vector512.Store(Vector512.Load(src + i), dst + i);
        for (; i + 8 <= count; i += 8) Vector256.Store(Vector256.Load(src + i), dst + i);
        for (; i < count; i++) dst[i] = src[i];
    }
}
