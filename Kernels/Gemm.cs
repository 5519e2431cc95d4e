namespace GpuNet.Kernels;

/// <summary>
/// General matrix multiply, float32, row-major, contiguous:
/// C = act(alpha * op(A) op(B) + beta * C + bias), op(X) = X or X^T.
/// A: (M, K), or (K, M) when transA; B: (K, N), or (N, K) when transB; C: (M, N); bias: (N) or empty.
/// When beta == 0, C is not read (NaN in C does not propagate), as in BLAS.
/// Gradient contract: the GEMM itself only computes; the caller passes beta = 1 to accumulate parameter
/// gradients (+=) and beta = 0 to overwrite activation gradients (=).
/// Linear layer: forward Y = X W^T + b is (NT); dX = dY W is (NN); dW += dY^T X is (TN).
/// </summary>
public static partial class Gemm
{
    // ---- float64 reference (the spec) ---------------------------------------------------------------------------

    /// <summary>float64 reference of the GEMM with its epilogue.</summary>
    public static void Reference(bool transA, bool transB, int m, int n, int k, double alpha,
        ReadOnlySpan<double> a, ReadOnlySpan<double> b, double beta, Span<double> c,
        ReadOnlySpan<double> bias, Activation act, double actAlpha)
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int p = 0; p < k; p++)
                    s += (transA ? a[p * m + i] : a[i * k + p]) * (transB ? b[j * k + p] : b[p * n + j]);
                double v = alpha * s + (beta == 0 ? 0 : beta * c[i * n + j]) + (bias.Length > 0 ? bias[j] : 0);
                c[i * n + j] = ActivationMath.Reference(act, v, actAlpha);
            }
    }

    // ---- cost ---------------------------------------------------------------------------------------------------

    /// <summary>2MNK FLOPs (+ MN for beta, bias, activation); bytes: A, B read once, C read (beta != 0) and written.</summary>
    public static OpCost Cost(int m, int n, int k, bool readsC = false, bool hasBias = false)
        => new(2.0 * m * n * k + (readsC ? 2.0 * m * n : 0) + (hasBias ? (double)m * n : 0),
               4.0 * ((double)m * k + (double)k * n + (readsC ? 2.0 : 1.0) * m * n + (hasBias ? n : 0)));
}
