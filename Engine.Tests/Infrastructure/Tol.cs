namespace GpuNet.Tests;

/// <summary>
/// The one tolerance rule of the test suite: an element passes when |got - ref| &lt;= Atol + Rtol * |ref|.
/// Per-op constants live here and nowhere else. A failure names the worst element, its index, got and ref.
/// </summary>
public readonly record struct Tol(double Atol, double Rtol)
{
    /// <summary>Exact-ish float32 ops (add, scale, copy): one or two roundings.</summary>
    public static readonly Tol Elementwise = new(1e-6, 1e-6);
    /// <summary>Transcendental activations, softmax, log-softmax.</summary>
    public static readonly Tol Activation = new(2e-6, 2e-5);
    /// <summary>Reductions over up to a few thousand elements.</summary>
    public static readonly Tol Reduction = new(1e-5, 1e-5);
    /// <summary>GEMM with inputs in [-1, 1]; the absolute part grows with sqrt(K) (see <see cref="ForGemm"/>).</summary>
    public static Tol ForGemm(int k) => new(2e-6 * Math.Sqrt(Math.Max(k, 1)) * 4, 1e-5);
    /// <summary>
    /// TF32 GEMM against its float64 reference (<c>GemmTf32Op.Reference</c>), which rounds A and B to TF32 itself: the
    /// TF32 rounding of the inputs is then exact on both sides and what remains is the float32 accumulation. Products
    /// of two TF32 values (11 x 11 significant bits) are exact in float32, so the error is that of K float32 additions,
    /// as for the float32 GEMM (<see cref="ForGemm"/>), doubled because the tensor cores' summation order and rounding
    /// of the partial sums are unspecified (truncation costs up to 1 ulp per addition where round-to-nearest costs 1/2).
    /// A float32 kernel answering here would miss by the inputs' rounding, about 2^-12 sqrt(K) for inputs in [-1, 1],
    /// several times this bound (GemmTf32Tests checks that the bound tells the two apart).
    /// </summary>
    public static Tol ForGemmTf32(int k) => new(2 * ForGemm(k).Atol, ForGemm(k).Rtol);
    /// <summary><see cref="ForGemmTf32"/> followed by an activation, as <see cref="ForGemmEpilogue"/>.</summary>
    public static Tol ForGemmTf32Epilogue(int k) => new(1.13 * ForGemmTf32(k).Atol + Activation.Atol, Math.Max(ForGemmTf32(k).Rtol, Activation.Rtol));
    /// <summary>
    /// A tiny MLP trained a few steps with TF32 GEMMs against the same run in float32: the TF32 rounding of activations
    /// and weights (relative 2^-11 = 4.9e-4 per operand) perturbs every step's update by a comparable relative amount.
    /// </summary>
    public static readonly Tol Tf32Training = new(2e-3, 2e-2);
    /// <summary>float32 analytic backward against float64 central finite differences.</summary>
    public static readonly Tol FiniteDifference = new(1e-4, 2e-3);
    /// <summary>Whole-model gradients of two float32 backends (different summation orders in GEMM and reductions).</summary>
    public static readonly Tol Parity = new(1e-5, 1e-4);
    /// <summary>Loss values and loss gradients (float32 sums of a few hundred transcendental terms).</summary>
    public static readonly Tol Loss = new(1e-6, 2e-5);
    /// <summary>Batch norm forward and backward (float32 statistics over up to a few thousand elements per channel).</summary>
    public static readonly Tol BatchNorm = new(1e-5, 1e-5);
    /// <summary>
    /// Fused optimizer trajectories (20 float32 steps against float64): each step adds a few roundings of an update of
    /// size lr, and adaptive denominators sqrt(v) + eps amplify the rounding of v for small gradients.
    /// </summary>
    public static readonly Tol Optimizer = new(2e-5, 2e-5);
    /// <summary>
    /// Training results with different host thread counts (the pools cut reductions at other places): per-epoch losses
    /// of a short run (docs/architecture.md, Determinism).
    /// </summary>
    public static readonly Tol ThreadCount = new(1e-5, 1e-4);
    /// <summary>
    /// A model's output in GpuNet (eval mode) against its ONNX export run by ONNX Runtime: issue 15 asks for 1e-5
    /// relative per element scaled by max(1, |ref|); 5e-6 + 5e-6 |ref| is never looser than that.
    /// </summary>
    public static readonly Tol OnnxRuntime = new(5e-6, 5e-6);

    /// <summary>Asserts <paramref name="got"/> matches <paramref name="expected"/> under this rule.</summary>
    public void AssertClose(ReadOnlySpan<float> got, ReadOnlySpan<double> expected, string what)
    {
        Assert.True(got.Length == expected.Length, $"{what}: got {got.Length} elements, expected {expected.Length}");
        int worst = -1;
        double worstExcess = 0;
        for (int i = 0; i < got.Length; i++)
        {
            if (double.IsNaN(got[i]) && double.IsNaN(expected[i])) continue;
            double err = Math.Abs(got[i] - expected[i]);
            double allowed = Atol + Rtol * Math.Abs(expected[i]);
            bool bad = !(err <= allowed) || double.IsNaN(got[i]) != double.IsNaN(expected[i]);
            if (bad && (worst < 0 || err - allowed > worstExcess || double.IsNaN(err)))
            {
                worst = i;
                worstExcess = double.IsNaN(err) ? double.PositiveInfinity : err - allowed;
            }
        }
        if (worst >= 0)
            Assert.Fail($"{what}: element {worst} of {got.Length}: got {got[worst]:R}, ref {expected[worst]:R}, |err| {Math.Abs(got[worst] - expected[worst]):E3} > {Atol:E1} + {Rtol:E1}*|ref|");
    }

    /// <summary>Asserts two float64 arrays match (finite differences against an analytic gradient).</summary>
    public void AssertClose(ReadOnlySpan<double> got, ReadOnlySpan<double> expected, string what)
    {
        var f = new float[got.Length];
        for (int i = 0; i < f.Length; i++) f[i] = (float)got[i];
        AssertClose(f, expected, what);
    }

    /// <summary>
    /// GEMM followed by an activation: the GEMM's error passes through the activation scaled by at most |f'| &lt;= 1.13
    /// (GELU's largest slope; the others are &lt;= 1, LeakyReLU/ELU with alpha &lt;= 1), and the float32 activation adds its
    /// own rounding (<see cref="Activation"/>).
    /// </summary>
    public static Tol ForGemmEpilogue(int k) => new(1.13 * ForGemm(k).Atol + Activation.Atol, Math.Max(ForGemm(k).Rtol, Activation.Rtol));
}
