using GpuNet.Kernels;

namespace GpuNet.Tests;

public sealed class LossTests(BackendFixture f) : DeviceTestBase(f), IClassFixture<BackendFixture>
{
    /// <summary>The elementwise losses (pred and target of the same shape).</summary>
    public enum Pointwise { Mse, Bce, Hinge }

    private static readonly (int Rows, int Cols)[] ShapeList = [(1, 1), (1, 10), (7, 3), (33, 10), (64, 1)];

    public static TheoryData<int, int, LossReduction> Shapes
    {
        get
        {
            var d = new TheoryData<int, int, LossReduction>();
            foreach (var (r, c) in ShapeList)
                foreach (var red in Enum.GetValues<LossReduction>()) d.Add(r, c, red);
            return d;
        }
    }

    public static TheoryData<int, int, LossReduction, float> ShapesAndSmoothing
    {
        get
        {
            var d = new TheoryData<int, int, LossReduction, float>();
            foreach (var (r, c) in ShapeList)
                foreach (var red in Enum.GetValues<LossReduction>())
                    foreach (float eps in new[] { 0f, 0.1f }) d.Add(r, c, red, eps);
            return d;
        }
    }

    // ---- helpers --------------------------------------------------------------------------------------------------

    private static float[] Targets(Pointwise kind, int seed, int n)
    {
        var u = TestData.Uniform(seed, n, 0f, 1f);
        return kind switch
        {
            Pointwise.Bce => u,
            Pointwise.Hinge => Array.ConvertAll(u, v => v < 0.5f ? -1f : 1f),
            _ => TestData.Uniform(seed, n, -2f, 2f),
        };
    }

    private static int[] Labels(int seed, int rows, int classes)
    {
        var r = new Random(seed);
        var a = new int[rows];
        for (int i = 0; i < rows; i++) a[i] = r.Next(classes);
        return a;
    }

    private static double Reference(Pointwise kind, double[] x, double[] t, LossReduction red, Span<double> grad) => kind switch
    {
        Pointwise.Mse => MseLossOp.Reference(x, t, red, grad),
        Pointwise.Bce => BceWithLogitsLossOp.Reference(x, t, red, grad),
        _ => HingeLossOp.Reference(x, t, red, grad),
    };

    private void Run(Pointwise kind, Tensor x, Tensor t, Tensor loss, Tensor? grad, LossReduction red, float gradScale = 1f)
    {
        switch (kind)
        {
            case Pointwise.Mse: D.MeanSquaredError(x, t, loss, grad, red, gradScale); break;
            case Pointwise.Bce: D.BceWithLogits(x, t, loss, grad, red, gradScale); break;
            default: D.BinaryHinge(x, t, loss, grad, red, gradScale); break;
        }
    }

    /// <summary>Runs a pointwise loss on the device: (loss, gradient, loss of a forward-only call).</summary>
    private (float Loss, float[] Grad, float ForwardOnly) RunPointwise(Pointwise kind, float[] x, float[] t, int rows, int cols, LossReduction red, float gradScale = 1f)
    {
        using var tx = D.FromArray(x, rows, cols); using var tt = D.FromArray(t, rows, cols);
        using var loss = D.Zeros(1); using var grad = D.AllocateUninitialized([rows, cols]);
        Run(kind, tx, tt, loss, grad, red, gradScale);
        float l = loss.ToArray()[0];
        Run(kind, tx, tt, loss, null, red, gradScale);
        return (l, grad.ToArray(), loss.ToArray()[0]);
    }

    private (float Loss, float[] Grad, float ForwardOnly) RunClass(bool softmax, float[] x, int[] labels, int rows, int classes, LossReduction red,
        float eps = 0f, float gradScale = 1f)
    {
        using var tx = D.FromArray(x, rows, classes); using var tl = D.FromArray(labels, rows);
        using var loss = D.Zeros(1); using var grad = D.AllocateUninitialized([rows, classes]);
        if (softmax) D.SoftmaxCrossEntropy(tx, tl, loss, grad, red, eps, gradScale); else D.MultiMarginHinge(tx, tl, loss, grad, red, gradScale);
        float l = loss.ToArray()[0];
        if (softmax) D.SoftmaxCrossEntropy(tx, tl, loss, null, red, eps, gradScale); else D.MultiMarginHinge(tx, tl, loss, null, red, gradScale);
        return (l, grad.ToArray(), loss.ToArray()[0]);
    }

    private static double ClassReference(bool softmax, double[] x, int[] labels, int rows, int classes, LossReduction red, double eps, Span<double> grad)
        => softmax ? SoftmaxCrossEntropyLossOp.Reference(x, labels, rows, classes, red, eps, grad)
                   : MultiMarginLossOp.Reference(x, labels, rows, classes, red, grad);

    private static double[] Scaled(double[] a, double s) => Array.ConvertAll(a, v => v * s);

    // ---- values and gradients against float64 ---------------------------------------------------------------------

    [Theory, Backends(nameof(Shapes))]
    public void PointwiseLossesMatchReferenceAndFiniteDifferences(string backend, int rows, int cols, LossReduction red)
    {
        Use(backend);
        int n = rows * cols;
        foreach (var kind in Enum.GetValues<Pointwise>())
        {
            var x = TestData.Uniform(10 + n, n, -3f, 3f);
            var t = Targets(kind, 20 + n, n);
            var (loss, grad, forwardOnly) = RunPointwise(kind, x, t, rows, cols, red);
            double[] xd = TestData.D(x), td = TestData.D(t), g = new double[n];
            double expected = Reference(kind, xd, td, red, g);
            string what = $"{kind} ({rows}, {cols}) {red}";
            Tol.Loss.AssertClose([loss], [expected], what + " loss");
            Assert.Equal(BitConverter.SingleToInt32Bits(loss), BitConverter.SingleToInt32Bits(forwardOnly));
            Tol.Loss.AssertClose(grad, g, what + " grad");
            var fd = TestData.FiniteDifference(v => Reference(kind, v, td, red, []), xd);
            Tol.FiniteDifference.AssertClose(grad, fd, what + " grad vs finite differences");
        }
    }

    [Theory, Backends(nameof(ShapesAndSmoothing))]
    public void SoftmaxCrossEntropyMatchesReferenceAndFiniteDifferences(string backend, int rows, int classes, LossReduction red, float eps)
    {
        Use(backend);
        var x = TestData.Uniform(30 + rows * classes, rows * classes, -4f, 4f);
        var labels = Labels(40 + rows, rows, classes);
        var (loss, grad, forwardOnly) = RunClass(true, x, labels, rows, classes, red, eps);
        var xd = TestData.D(x); var g = new double[xd.Length];
        double expected = SoftmaxCrossEntropyLossOp.Reference(xd, labels, rows, classes, red, eps, g);
        string what = $"softmax CE ({rows}, {classes}) {red} eps={eps}";
        Tol.Loss.AssertClose([loss], [expected], what + " loss");
        Assert.Equal(BitConverter.SingleToInt32Bits(loss), BitConverter.SingleToInt32Bits(forwardOnly));
        Tol.Loss.AssertClose(grad, g, what + " grad");
        var fd = TestData.FiniteDifference(v => SoftmaxCrossEntropyLossOp.Reference(v, labels, rows, classes, red, eps, []), xd);
        Tol.FiniteDifference.AssertClose(grad, fd, what + " grad vs finite differences");
    }

    [Theory, Backends(nameof(Shapes))]
    public void MultiMarginHingeMatchesReferenceAndFiniteDifferences(string backend, int rows, int classes, LossReduction red)
    {
        Use(backend);
        var x = TestData.Uniform(50 + rows * classes, rows * classes, -1.5f, 1.5f);
        var labels = Labels(60 + rows, rows, classes);
        var (loss, grad, forwardOnly) = RunClass(false, x, labels, rows, classes, red);
        var xd = TestData.D(x); var g = new double[xd.Length];
        double expected = MultiMarginLossOp.Reference(xd, labels, rows, classes, red, g);
        string what = $"multi-margin ({rows}, {classes}) {red}";
        Tol.Loss.AssertClose([loss], [expected], what + " loss");
        Assert.Equal(BitConverter.SingleToInt32Bits(loss), BitConverter.SingleToInt32Bits(forwardOnly));
        Tol.Loss.AssertClose(grad, g, what + " grad");
        var fd = TestData.FiniteDifference(v => MultiMarginLossOp.Reference(v, labels, rows, classes, red, []), xd);
        Tol.FiniteDifference.AssertClose(grad, fd, what + " grad vs finite differences");
    }

    [Theory, Backends]
    public void MultiMarginMatchesPyTorchDocumentationExample(string backend)
    {
        Use(backend);
        // torch.nn.MultiMarginLossOp docs: x = [[0.1, 0.2, 0.4, 0.8]], y = [3] -> 0.25 * ((1-(0.8-0.1)) + (1-(0.8-0.2)) + (1-(0.8-0.4))) = 0.3250.
        var (loss, grad, _) = RunClass(false, [0.1f, 0.2f, 0.4f, 0.8f], [3], 1, 4, LossReduction.Mean);
        Tol.Loss.AssertClose([loss], [0.325], "MultiMarginLossOp doc example");
        Tol.Loss.AssertClose(grad, [0.25, 0.25, 0.25, -0.75], "MultiMarginLossOp doc example grad");
    }

    [Theory, Backends]
    public void SoftmaxCrossEntropyMatchesHandValueWithSmoothing(string backend)
    {
        Use(backend);
        // z = (1, 2, 3), label 0, eps = 0.1: lse = 3 + log(1 + e^-1 + e^-2); loss = lse - 0.9 * 1 - (0.1 / 3) * 6.
        double lse = 3 + Math.Log(1 + Math.Exp(-1) + Math.Exp(-2));
        var (loss, grad, _) = RunClass(true, [1f, 2f, 3f], [0], 1, 3, LossReduction.Sum, 0.1f);
        Tol.Loss.AssertClose([loss], [lse - 0.9 - 0.2], "hand value");
        double[] q = [0.9 + 0.1 / 3, 0.1 / 3, 0.1 / 3];
        Tol.Loss.AssertClose(grad, [Math.Exp(1 - lse) - q[0], Math.Exp(2 - lse) - q[1], Math.Exp(3 - lse) - q[2]], "hand gradient");
    }

    [Theory, Backends]
    public void GradScaleMultipliesTheGradientOnly(string backend)
    {
        Use(backend);
        const int rows = 5, cols = 4;
        var x = TestData.Uniform(70, rows * cols, -2f, 2f);
        foreach (var kind in Enum.GetValues<Pointwise>())
        {
            var t = Targets(kind, 71, rows * cols);
            var (l1, g1, _) = RunPointwise(kind, x, t, rows, cols, LossReduction.Mean);
            var (l8, g8, _) = RunPointwise(kind, x, t, rows, cols, LossReduction.Mean, gradScale: 8f);
            Assert.Equal(l1, l8);
            Tol.Elementwise.AssertClose(g8, Scaled(TestData.D(g1), 8), $"{kind} gradScale");
        }
        var labels = Labels(72, rows, cols);
        foreach (bool softmax in new[] { true, false })
        {
            var (l1, g1, _) = RunClass(softmax, x, labels, rows, cols, LossReduction.Sum, 0.1f);
            var (l8, g8, _) = RunClass(softmax, x, labels, rows, cols, LossReduction.Sum, 0.1f, gradScale: 0.125f);
            Assert.Equal(l1, l8);
            Tol.Elementwise.AssertClose(g8, Scaled(TestData.D(g1), 0.125), $"softmax={softmax} gradScale");
        }
    }

    // ---- extremes, kinks, label conventions -------------------------------------------------------------------------

    [Theory, Backends]
    public void ExtremeLogitsDoNotOverflow(string backend)
    {
        Use(backend);
        // Softmax CE: rows of +-1000 logits, the label on the largest, the smallest and a middle one.
        float[] x = [1000f, -1000f, 0f, -1000f, 1000f, 999f, 1000f, 1000f, -1000f, -1000f, -1000f, -1000f];
        int[] labels = [1, 2, 0, 2];
        foreach (var red in Enum.GetValues<LossReduction>())
            foreach (float eps in new[] { 0f, 0.1f })
            {
                var (loss, grad, _) = RunClass(true, x, labels, 4, 3, red, eps);
                var g = new double[x.Length];
                double expected = SoftmaxCrossEntropyLossOp.Reference(TestData.D(x), labels, 4, 3, red, eps, g);
                Assert.True(float.IsFinite(loss), $"softmax CE loss {loss} must be finite");
                Tol.Loss.AssertClose([loss], [expected], $"softmax CE +-1000 {red} eps={eps}");
                Tol.Loss.AssertClose(grad, g, $"softmax CE +-1000 grad {red} eps={eps}");
            }

        // BCE at z = +-100 and +-1000 with hard and soft targets; MSE and hinge at +-1000.
        float[] z = [100f, -100f, 100f, -100f, 1000f, -1000f, 1000f, -1000f, 100f, -1000f];
        float[] y = [1f, 0f, 0f, 1f, 1f, 0f, 0f, 1f, 0.5f, 0.25f];
        foreach (var kind in Enum.GetValues<Pointwise>())
        {
            float[] t = kind == Pointwise.Hinge ? Array.ConvertAll(y, v => v > 0.5f ? 1f : -1f) : y;
            var (loss, grad, _) = RunPointwise(kind, z, t, 2, 5, LossReduction.Sum);
            var g = new double[z.Length];
            double expected = Reference(kind, TestData.D(z), TestData.D(t), LossReduction.Sum, g);
            Assert.True(float.IsFinite(loss), $"{kind} loss {loss} must be finite");
            Assert.All(grad, v => Assert.True(float.IsFinite(v)));
            Tol.Loss.AssertClose([loss], [expected], $"{kind} extreme loss");
            Tol.Loss.AssertClose(grad, g, $"{kind} extreme grad");
        }
    }

    [Theory, Backends]
    public void HingeSubgradientIsZeroAtTheKink(string backend)
    {
        Use(backend);
        // Binary: 1 - y z == 0 at (z, y) = (1, +1) and (-1, -1); active at (0.5, +1); inactive at (2, +1).
        var (loss, grad, _) = RunPointwise(Pointwise.Hinge, [1f, -1f, 0.5f, 2f], [1f, -1f, 1f, 1f], 1, 4, LossReduction.Sum);
        Tol.Loss.AssertClose([loss], [0.5], "binary hinge at the kink");
        Tol.Loss.AssertClose(grad, [0, 0, -1, 0], "binary hinge subgradient");

        // Multi-margin: z_1 = z_y - 1 sits exactly on the hinge; z_2 is active.
        var (mloss, mgrad, _) = RunClass(false, [2f, 1f, 1.5f], [0], 1, 3, LossReduction.Sum);
        Tol.Loss.AssertClose([mloss], [0.5 / 3], "multi-margin at the kink");
        Tol.Loss.AssertClose(mgrad, [-1.0 / 3, 0, 1.0 / 3], "multi-margin subgradient");
    }

    [Theory, Backends]
    public void BinaryHingeTakesZeroOneTargetsAsMinusOnePlusOne(string backend)
    {
        Use(backend);
        var x = TestData.Uniform(80, 12, -2f, 2f);
        var pm = Targets(Pointwise.Hinge, 81, 12);
        var zeroOne = Array.ConvertAll(pm, v => v > 0 ? 1f : 0f);
        var a = RunPointwise(Pointwise.Hinge, x, pm, 3, 4, LossReduction.Mean);
        var b = RunPointwise(Pointwise.Hinge, x, zeroOne, 3, 4, LossReduction.Mean);
        Assert.Equal(a.Loss, b.Loss);
        Assert.Equal(a.Grad, b.Grad);
    }

    // ---- determinism and odd inputs --------------------------------------------------------------------------------

    [Theory, Backends]
    public void LossIsBitIdenticalAcrossRuns(string backend)
    {
        Use(backend);
        const int rows = 97, cols = 13;
        var x = TestData.Uniform(90, rows * cols, -5f, 5f);
        var labels = Labels(91, rows, cols);
        foreach (var kind in Enum.GetValues<Pointwise>())
        {
            var t = Targets(kind, 92, rows * cols);
            var a = RunPointwise(kind, x, t, rows, cols, LossReduction.Mean);
            var b = RunPointwise(kind, x, t, rows, cols, LossReduction.Mean);
            Assert.Equal(BitConverter.SingleToInt32Bits(a.Loss), BitConverter.SingleToInt32Bits(b.Loss));
            Assert.Equal(a.Grad, b.Grad);
        }
        foreach (bool softmax in new[] { true, false })
        {
            var a = RunClass(softmax, x, labels, rows, cols, LossReduction.Mean, 0.1f);
            var b = RunClass(softmax, x, labels, rows, cols, LossReduction.Mean, 0.1f);
            Assert.Equal(BitConverter.SingleToInt32Bits(a.Loss), BitConverter.SingleToInt32Bits(b.Loss));
            Assert.Equal(a.Grad, b.Grad);
        }
    }

    [Theory, Backends]
    public void LargeInputsUseEveryPartialAndHostChunk(string backend)
    {
        Use(backend);
        // 70,000 elements: more than LossCommon.MaxPartials threads (the device loop strides) and above the host's
        // parallel threshold (several chunks, added in chunk order); 1,500 rows fill the reduction group several times.
        const int rows = 350, cols = 200;
        var x = TestData.Uniform(100, rows * cols, -3f, 3f);
        foreach (var kind in Enum.GetValues<Pointwise>())
        {
            var t = Targets(kind, 101, rows * cols);
            var a = RunPointwise(kind, x, t, rows, cols, LossReduction.Mean);
            var g = new double[x.Length];
            double expected = Reference(kind, TestData.D(x), TestData.D(t), LossReduction.Mean, g);
            Tol.Loss.AssertClose([a.Loss], [expected], $"{kind} large loss");
            Tol.Loss.AssertClose(a.Grad, g, $"{kind} large grad");
            Assert.Equal(BitConverter.SingleToInt32Bits(a.Loss), BitConverter.SingleToInt32Bits(a.ForwardOnly));
        }
        const int crows = 1500, classes = 7;
        var labels = Labels(102, crows, classes);
        foreach (bool softmax in new[] { true, false })
        {
            var a = RunClass(softmax, x[..(crows * classes)], labels, crows, classes, LossReduction.Sum, 0.1f);
            var g = new double[crows * classes];
            double expected = ClassReference(softmax, TestData.D(x[..(crows * classes)]), labels, crows, classes, LossReduction.Sum, 0.1, g);
            Tol.Loss.AssertClose([a.Loss], [expected], $"softmax={softmax} large loss");
            Tol.Loss.AssertClose(a.Grad, g, $"softmax={softmax} large grad");
        }
    }

    [Theory, Backends]
    public void OutOfRangeLabelGivesNaNLossAndNaNGradientRowOnly(string backend)
    {
        Use(backend);
        // Row 0 is valid; rows 1 and 2 have labels 3 (== classes) and -1. Nothing out of bounds is read.
        float[] x = [0.5f, -1f, 2f, 1f, 1f, 1f, 0f, 0f, 0f];
        foreach (bool softmax in new[] { true, false })
        {
            var (loss, grad, forwardOnly) = RunClass(softmax, x, [2, 3, -1], 3, 3, LossReduction.Mean);
            Assert.True(float.IsNaN(loss), $"softmax={softmax}: loss {loss} should be NaN");
            Assert.True(float.IsNaN(forwardOnly));
            Assert.All(grad[3..], v => Assert.True(float.IsNaN(v)));
            var g0 = new double[3];
            ClassReference(softmax, TestData.D(x[..3]), [2], 1, 3, LossReduction.Sum, 0, g0);
            Tol.Loss.AssertClose(grad[..3], Scaled(g0, 1.0 / 3), $"softmax={softmax}: the valid row keeps its gradient");
        }
    }

    [Theory, Backends]
    public void EmptyInputGivesNaNMeanAndZeroSum(string backend)
    {
        Use(backend);
        using var x = D.Zeros(0, 4); using var t = D.Zeros(0, 4); using var labels = D.FromArray(Array.Empty<int>(), 0);
        using var loss = D.Zeros(1); using var grad = D.Zeros(0, 4);
        D.MeanSquaredError(x, t, loss, grad, LossReduction.Mean);
        Assert.True(float.IsNaN(loss.ToArray()[0]));
        D.SoftmaxCrossEntropy(x, labels, loss, grad, LossReduction.Sum);
        Assert.Equal(0f, loss.ToArray()[0]);
    }

    // ---- argument errors -------------------------------------------------------------------------------------------

    [Theory, Backends]
    public void BadArgumentsNameTheOpArgumentAndShapes(string backend)
    {
        Use(backend);
        using var x = D.Zeros(4, 3); using var t = D.Zeros(3, 4); using var loss = D.Zeros(1); using var loss2 = D.Zeros(2);
        using var grad = D.Zeros(4, 3); using var labels = D.FromArray(new[] { 0, 1, 2, 0 }, 4);
        using var floatLabels = D.Zeros(4); using var shortLabels = D.FromArray(new[] { 0, 1, 2 }, 3);

        var e = Assert.Throws<ShapeMismatchException>(() => D.MeanSquaredError(x, t, loss, grad));
        Assert.Equal("MeanSquaredError", e.Operation);
        Assert.Contains("(4, 3)", e.Message); Assert.Contains("(3, 4)", e.Message); Assert.Contains("target", e.Message);

        e = Assert.Throws<ShapeMismatchException>(() => D.BceWithLogits(x, grad, loss2, null));
        Assert.Contains("loss", e.Message); Assert.Contains("(2)", e.Message);

        e = Assert.Throws<ShapeMismatchException>(() => D.BinaryHinge(x, grad, loss, t));
        Assert.Contains("gradScores", e.Message);

        var a = Assert.Throws<ArgumentException>(() => D.SoftmaxCrossEntropy(x, floatLabels, loss, grad));
        Assert.Contains("SoftmaxCrossEntropy", a.Message); Assert.Contains("labels", a.Message); Assert.Contains("Int32", a.Message); Assert.Contains("Float32", a.Message);

        e = Assert.Throws<ShapeMismatchException>(() => D.MultiMarginHinge(x, shortLabels, loss, grad));
        Assert.Equal("MultiMarginHinge", e.Operation); Assert.Contains("(4)", e.Message); Assert.Contains("(3)", e.Message);

        foreach (float eps in new[] { -0.1f, 1f, float.NaN })
        {
            var r = Assert.Throws<ArgumentOutOfRangeException>(() => D.SoftmaxCrossEntropy(x, labels, loss, grad, labelSmoothing: eps));
            Assert.Equal("labelSmoothing", r.ParamName); Assert.Contains("[0, 1)", r.Message);
        }

        var s = Assert.Throws<ArgumentOutOfRangeException>(() => D.MeanSquaredError(x, grad, loss, null, gradScale: float.PositiveInfinity));
        Assert.Equal("gradScale", s.ParamName);
        var red = Assert.Throws<ArgumentOutOfRangeException>(() => D.BceWithLogits(x, grad, loss, null, (LossReduction)7));
        Assert.Equal("reduction", red.ParamName);

        var o = Assert.Throws<ArgumentException>(() => D.SoftmaxCrossEntropy(x, labels, loss, x));
        Assert.Contains("overlaps", o.Message);
    }
}

