using System.Numerics.Tensors;

namespace GpuNet.Kernels;

public static partial class Gemm
{
    /// <summary>
    /// SIMD host GEMM (same contract as <see cref="Reference"/>). Parallel over rows of C.
    /// </summary>
    public static void Host(bool transA, bool transB, int m, int n, int k, float alpha,
        ArraySegment<float> a, ArraySegment<float> b, float beta, ArraySegment<float> c,
        ArraySegment<float> bias, Activation act, float actAlpha)
    {
        Parallel.For(0, m, i =>
        {
            var row = c.AsSpan(i * n, n);
            var acc = new float[n];
            for (int p = 0; p < k; p++)
            {
                float av = transA ? a[p * m + i] : a[i * k + p];
                if (transB) for (int j = 0; j < n; j++) acc[j] += av * b[j * k + p];
                else TensorPrimitives.FusedMultiplyAdd(b.AsSpan(p * n, n), av, acc, acc);
            }
            for (int j = 0; j < n; j++)
            {
                float v = alpha * acc[j] + (beta == 0f ? 0f : beta * row[j]) + (bias.Count > 0 ? bias[j] : 0f);
                row[j] = ActivationMath.Forward((int)act, v, actAlpha);
            }
        });
    }
}
