using GpuNet.Kernels;

namespace GpuNet;

public sealed partial class Device
{
    /// <summary>
    /// General matrix multiply with a fused epilogue: C = act(alpha * op(A) op(B) + beta * C + bias), where op(X) is X
    /// or its transpose. All matrices are 2-D, row-major and contiguous.
    /// </summary>
    /// <param name="a">A: (M, K), or (K, M) when <paramref name="transA"/>.</param>
    /// <param name="b">B: (K, N), or (N, K) when <paramref name="transB"/>.</param>
    /// <param name="c">C: (M, N); read only when <paramref name="beta"/> != 0 (so NaN in C does not propagate), then overwritten.
    /// Must not overlap <paramref name="a"/> or <paramref name="b"/>.</param>
    /// <param name="transA">Use A transposed.</param>
    /// <param name="transB">Use B transposed.</param>
    /// <param name="alpha">Scale of the product.</param>
    /// <param name="beta">Scale of the old C: 0 overwrites (activation gradients), 1 accumulates (parameter gradients).</param>
    /// <param name="bias">Optional bias (N), added to every row before the activation.</param>
    /// <param name="activation">Activation applied last.</param>
    /// <param name="activationAlpha">The activation's alpha; defaults to <see cref="ActivationMath.DefaultAlpha"/>.</param>
    /// <exception cref="ShapeMismatchException">A tensor is not 2-D (bias: 1-D), the inner dimensions of op(A) and op(B)
    /// disagree, or C or bias has the wrong shape.</exception>
    /// <exception cref="ArgumentException">A tensor lives on another device, is not float32, or C overlaps A or B.</exception>
    /// <remarks>
    /// Zero-size shapes are valid: with M = 0 or N = 0 nothing happens; with K = 0, C = act(beta * C + bias).
    /// Linear layer: forward Y = X W^T + b is (transB); dX = dY W is plain; dW += dY^T X is (transA, beta = 1).
    /// </remarks>
    public void Gemm(Tensor a, Tensor b, Tensor c, bool transA = false, bool transB = false, float alpha = 1f, float beta = 0f,
        Tensor? bias = null, Activation activation = Activation.Identity, float? activationAlpha = null)
    {
        const string op = "Gemm";
        Check(op, nameof(a), a); Check(op, nameof(b), b); Check(op, nameof(c), c);
        if (bias is not null) Check(op, nameof(bias), bias);
        CheckRank2(op, nameof(a), a, transA ? "(K, M)" : "(M, K)");
        CheckRank2(op, nameof(b), b, transB ? "(N, K)" : "(K, N)");
        CheckRank2(op, nameof(c), c, "(M, N)");

        // op(A): (m, k), op(B): (kb, n)
        int m = transA ? a.Dim(1) : a.Dim(0), k = transA ? a.Dim(0) : a.Dim(1);
        int kb = transB ? b.Dim(1) : b.Dim(0), n = transB ? b.Dim(0) : b.Dim(1);
        if (k != kb)
        {
            int[] expectedB = transB ? [n, k] : [k, n];
            throw new ShapeMismatchException(op, ShapeUtil.Format(expectedB), ShapeUtil.Format(b.Shape),
                $"argument 'b': inner dimensions disagree: op(a) is ({m}, {k}) from a {ShapeUtil.Format(a.Shape)}{(transA ? " transposed" : "")}, " +
                $"op(b) is ({kb}, {n}) from b {ShapeUtil.Format(b.Shape)}{(transB ? " transposed" : "")}; K = {k} vs {kb}");
        }
        if (c.Dim(0) != m || c.Dim(1) != n)
            throw new ShapeMismatchException(op, ShapeUtil.Format([m, n]), ShapeUtil.Format(c.Shape),
                $"argument 'c' must be (M, N) = ({m}, {n}) for op(a) ({m}, {k}) times op(b) ({k}, {n})");
        if (bias is not null && (bias.Rank != 1 || bias.Dim(0) != n))
            throw new ShapeMismatchException(op, ShapeUtil.Format([n]), ShapeUtil.Format(bias.Shape),
                $"argument 'bias' must be (N) = ({n}), one value per column of c {ShapeUtil.Format(c.Shape)}");
        CheckNoOverlap(op, nameof(c), c, nameof(a), a);
        CheckNoOverlap(op, nameof(c), c, nameof(b), b);

        if (m == 0 || n == 0) return;
        float actAlpha = activationAlpha ?? ActivationMath.DefaultAlpha(activation);
        Launch().Gemm(transA, transB, m, n, k, alpha, a, b, beta, c, bias, activation, actAlpha);
    }

    private static void CheckRank2(string op, string argument, Tensor t, string expected)
    {
        if (t.Rank != 2)
            throw new ShapeMismatchException(op, expected, ShapeUtil.Format(t.Shape), $"argument '{argument}' must be 2-D, it has rank {t.Rank}");
    }

    /// <summary>Checks that the output <paramref name="t"/> shares no element with the input <paramref name="other"/>.</summary>
    private static void CheckNoOverlap(string op, string argument, Tensor t, string otherArgument, Tensor other)
    {
        if (ReferenceEquals(t.Buffer, other.Buffer) && t.Length > 0 && other.Length > 0
            && t.Offset < other.Offset + other.Length && other.Offset < t.Offset + t.Length)
            throw new ArgumentException($"{op}: output '{argument}' {ShapeUtil.Format(t.Shape)} overlaps input '{otherArgument}' {ShapeUtil.Format(other.Shape)}; use a separate tensor", argument);
    }
}
