using GpuNet.Kernels;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;

namespace GpuNet.Tests;

public sealed class ActivationTests(BackendFixture f) : DeviceTestBase(f), IClassFixture<BackendFixture>
{
    /// <summary>2500 crosses the host span forms' 1024-element stack blocks.</summary>
    public static TheoryData<int> Sizes => [1, 7, 1000, 2500];

    /// <summary>Finite differences of sum(dy * f(x)) cost O(n^2) reference evaluations: smaller sizes.</summary>
    public static TheoryData<int> FdSizes => [1, 7, 257];

    private static readonly float[] Specials = [0f, 30f, -30f, 6f, -6f, 1e-3f, -1e-3f];

    /// <summary>n inputs uniform in [-6, 6] whose first elements are 0, +-30, +-6 and +-1e-3.</summary>
    private static float[] Inputs(int seed, int n)
    {
        var x = TestData.Uniform(seed, n, -6f, 6f);
        for (int i = 0; i < Math.Min(n, Specials.Length); i++) x[i] = Specials[i];
        return x;
    }

    private static double Alpha(Activation act) => ActivationMath.DefaultAlpha(act);

    [Theory, Backends(nameof(Sizes))]
    public void ForwardMatchesReference(string backend, int n)
    {
        Use(backend);
        var x = Inputs(10 + n, n);
        using var tx = D.FromArray(x); using var ty = D.Zeros(n);
        foreach (var act in Enum.GetValues<Activation>())
        {
            D.ActivationForward(act, tx, ty);
            var expected = new double[n];
            ActivationOp.Reference(act, Alpha(act), TestData.D(x), expected);
            var got = ty.ToArray();
            Assert.All(got, v => Assert.True(float.IsFinite(v), $"{act}: non-finite output {v}"));
            Tol.Activation.AssertClose(got, expected, $"{act} forward n={n}");
        }
    }

    [Theory, Backends(nameof(Sizes))]
    public void BackwardMatchesReference(string backend, int n)
    {
        Use(backend);
        var x = Inputs(20 + n, n); var dy = TestData.Uniform(30 + n, n);
        using var tx = D.FromArray(x); using var ty = D.Zeros(n); using var tdy = D.FromArray(dy); using var tdx = D.Zeros(n);
        foreach (var act in Enum.GetValues<Activation>())
        {
            D.ActivationForward(act, tx, ty);
            D.ActivationBackward(act, tx, ty, tdy, tdx);
            var expected = new double[n];
            ActivationOp.ReferenceBackward(act, Alpha(act), TestData.D(x), TestData.D(dy), expected);
            var got = tdx.ToArray();
            Assert.All(got, v => Assert.True(float.IsFinite(v), $"{act}: non-finite gradient {v}"));
            Tol.Activation.AssertClose(got, expected, $"{act} backward n={n}");
        }
    }

    [Theory, Backends(nameof(FdSizes))]
    public void BackwardMatchesFiniteDifferences(string backend, int n)
    {
        Use(backend);
        var x = Inputs(40 + n, n); var dy = TestData.Uniform(50 + n, n);
        using var tx = D.FromArray(x); using var ty = D.Zeros(n); using var tdy = D.FromArray(dy); using var tdx = D.Zeros(n);
        var dyd = TestData.D(dy);
        foreach (var act in Enum.GetValues<Activation>())
        {
            var xs = (float[])x.Clone();
            if (act is Activation.Relu or Activation.LeakyRelu)   // the FD check must not straddle the kink at 0
                for (int i = 0; i < n; i++) if (Math.Abs(xs[i]) < 1e-2f) xs[i] = 0.5f;
            tx.CopyFrom(xs);
            D.ActivationForward(act, tx, ty);
            D.ActivationBackward(act, tx, ty, tdy, tdx);
            double alpha = Alpha(act);
            var y = new double[n];
            var fd = TestData.FiniteDifference(v => { ActivationOp.Reference(act, alpha, v, y); return TestData.Dot(dyd, y); }, TestData.D(xs));
            Tol.FiniteDifference.AssertClose(tdx.ToArray(), fd, $"{act} backward vs finite differences n={n}");
        }
    }

    [Theory, Backends]
    public void ForwardInPlaceAndBackwardOverDyWork(string backend)
    {
        Use(backend);
        const int n = 37;
        var x = Inputs(60, n); var dy = TestData.Uniform(61, n);
        using var t = D.Zeros(n); using var ty = D.Zeros(n); using var tx = D.FromArray(x); using var g = D.Zeros(n);
        foreach (var act in Enum.GetValues<Activation>())
        {
            t.CopyFrom(x);
            D.ActivationForward(act, t, t);
            var expected = new double[n];
            ActivationOp.Reference(act, Alpha(act), TestData.D(x), expected);
            Tol.Activation.AssertClose(t.ToArray(), expected, $"{act} in place");

            D.ActivationForward(act, tx, ty);
            g.CopyFrom(dy);
            D.ActivationBackward(act, tx, ty, g, g);
            ActivationOp.ReferenceBackward(act, Alpha(act), TestData.D(x), TestData.D(dy), expected);
            Tol.Activation.AssertClose(g.ToArray(), expected, $"{act} backward with dx = dy");
        }
    }

    [Theory, Backends]
    public void AlphaIsUsed(string backend)
    {
        Use(backend);
        var x = new[] { -2f, -0.5f, 0f, 1.5f };
        using var tx = D.FromArray(x); using var ty = D.Zeros(4); using var tdy = D.FromArray([1f, 1f, 1f, 1f]); using var tdx = D.Zeros(4);
        foreach (var act in new[] { Activation.LeakyRelu, Activation.Elu })
        {
            D.ActivationForward(act, tx, ty, alpha: 0.3f);
            var expected = new double[4];
            ActivationOp.Reference(act, 0.3f, TestData.D(x), expected);
            Tol.Activation.AssertClose(ty.ToArray(), expected, $"{act} alpha=0.3");
            D.ActivationBackward(act, tx, ty, tdy, tdx, alpha: 0.3f);
            ActivationOp.ReferenceBackward(act, 0.3f, TestData.D(x), [1, 1, 1, 1], expected);
            Tol.Activation.AssertClose(tdx.ToArray(), expected, $"{act} backward alpha=0.3");
        }
    }

    [Theory, Backends]
    public void ErrorsNameTheOpTheArgumentAndTheShapes(string backend)
    {
        Use(backend);
        using var x = D.Zeros(2, 3); using var y = D.Zeros(5); using var ok = D.Zeros(6);
        var e = Assert.Throws<ShapeMismatchException>(() => D.ActivationForward(Activation.Relu, x, y));
        Assert.Equal("ActivationForward", e.Operation);
        Assert.Contains("(2, 3)", e.Message);
        Assert.Contains("(5)", e.Message);

        e = Assert.Throws<ShapeMismatchException>(() => D.ActivationBackward(Activation.Tanh, x, ok, y, ok));
        Assert.Equal("ActivationBackward", e.Operation);
        Assert.Contains("'dy'", e.Message);
        Assert.Contains("(2, 3)", e.Message);
        Assert.Contains("(5)", e.Message);

        var a = Assert.Throws<ArgumentOutOfRangeException>(() => D.ActivationForward((Activation)99, x, ok));
        Assert.Equal("act", a.ParamName);
        a = Assert.Throws<ArgumentOutOfRangeException>(() => D.ActivationBackward((Activation)(-1), x, ok, ok, ok));
        Assert.Equal("act", a.ParamName);
        a = Assert.Throws<ArgumentOutOfRangeException>(() => D.ActivationForward(Activation.Elu, x, ok, float.NaN));
        Assert.Equal("alpha", a.ParamName);
    }

    [Theory, Backends]
    public void LaunchesAreCounted(string backend)
    {
        Use(backend);
        using var x = D.Zeros(10); using var y = D.Zeros(10);
        long before = D.Counters.Launches;
        D.ActivationForward(Activation.Gelu, x, y);
        D.ActivationBackward(Activation.Gelu, x, y, y, x);
        Assert.Equal(before + 2, D.Counters.Launches);
    }

    [Theory, Backends]
    public void CostGrowsWithTheWork(string backend)
    {
        Use(backend);
        foreach (var act in Enum.GetValues<Activation>())
        {
            Assert.Equal(8.0 * 100, ActivationOp.Cost(act, 100).Bytes);
            Assert.True(ActivationOp.BackwardCost(act, 100).Bytes >= 8.0 * 100);
            Assert.Equal(2 * ActivationOp.Cost(act, 50).Flops, ActivationOp.Cost(act, 100).Flops);
        }
        Assert.True(ActivationOp.Cost(Activation.Gelu, 1).Flops > ActivationOp.Cost(Activation.Relu, 1).Flops);
    }
}


/// <summary>
/// The definitions behind <see cref="Activation"/>: every value maps to its own <see cref="IActivation"/> struct (and
/// every struct is reachable), the scalar forms the GPU kernels run agree with the float64 reference, and an undefined
/// value is an error at every entry point, never a silent default.
/// </summary>
public sealed class ActivationDefinitionTests
{
    public static TheoryData<Activation> All => new(Enum.GetValues<Activation>());

    [Fact]
    public void EveryValueHasItsOwnDefinitionAndEveryDefinitionIsMapped()
    {
        var mapped = new List<Type>();
        foreach (var act in Enum.GetValues<Activation>())
        {
            var f = ActivationMath.Definition(act);
            Assert.Equal(act, f.Kind);
            Assert.Equal(f.DefaultAlpha, ActivationMath.DefaultAlpha(act));
            mapped.Add(f.GetType());
        }
        var structs = typeof(IActivation).Assembly.GetTypes()
            .Where(t => t.IsValueType && typeof(IActivation).IsAssignableFrom(t)).ToList();
        Assert.Equal(structs.Count, mapped.Distinct().Count());
        Assert.All(structs, t => Assert.Contains(t, mapped));
    }

    /// <summary>The float32 scalar forms (what the ILGPU kernels and the GPU GEMM epilogue run) against the reference.</summary>
    [Theory, MemberData(nameof(All))]
    public void ScalarFormsMatchReference(Activation act)
    {
        var f = ActivationMath.Definition(act);
        float alpha = act == Activation.LeakyRelu ? 0.2f : act == Activation.Elu ? 0.7f : f.DefaultAlpha;
        var x = TestData.Uniform(70, 500, -8f, 8f);
        x[0] = 0f; x[1] = 30f; x[2] = -30f; x[3] = 0.2f; x[4] = -0.2f; x[5] = 1e-4f;
        var y = new float[x.Length]; var d = new float[x.Length];
        var yRef = new double[x.Length]; var dRef = new double[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            y[i] = f.Forward(x[i], alpha);
            d[i] = f.Derivative(x[i], y[i], alpha);
            yRef[i] = f.Reference(x[i], alpha);
            dRef[i] = f.ReferenceDerivative(x[i], alpha);
        }
        Tol.Activation.AssertClose(y, yRef, $"{act} scalar forward");
        Tol.Activation.AssertClose(d, dRef, $"{act} scalar derivative");
    }

    public static TheoryData<int> Undefined => [99, -1, 8];

    [Theory, MemberData(nameof(Undefined))]
    public void UndefinedValueThrowsAtEveryEntryPoint(int value)
    {
        var act = (Activation)value;
        float[] h = new float[4];
        double[] r = new double[4];
        using var context = Context.Create(b => b.CPU());
        using var accelerator = context.CreateCPUAccelerator(0);
        using var buffer = accelerator.Allocate1D<float>(4);
        var k = new KernelCache(accelerator);
        var v = buffer.View;
        var entryPoints = new (string Name, Action Call)[]
        {
            ("ActivationMath.Definition", () => ActivationMath.Definition(act)),
            ("ActivationMath.DefaultAlpha", () => ActivationMath.DefaultAlpha(act)),
            ("ActivationMath.Reference", () => ActivationMath.Reference(act, 1, 0)),
            ("ActivationMath.ReferenceDerivative", () => ActivationMath.ReferenceDerivative(act, 1, 0)),
            ("ActivationOp.Reference", () => ActivationOp.Reference(act, 0, r, r)),
            ("ActivationOp.ReferenceBackward", () => ActivationOp.ReferenceBackward(act, 0, r, r, r)),
            ("ActivationOp.Host", () => ActivationOp.Host(act, 0f, h, h)),
            ("ActivationOp.HostBackward", () => ActivationOp.HostBackward(act, 0f, h, h, h, h)),
            ("ActivationOp.Launch", () => ActivationOp.Launch(k, act, 0f, v, v)),
            ("ActivationOp.LaunchBackward", () => ActivationOp.LaunchBackward(k, act, 0f, v, v, v, v)),
            ("ActivationOp.FlopsPerElement", () => ActivationOp.FlopsPerElement(act, backward: true)),
            ("ActivationOp.Cost", () => ActivationOp.Cost(act, 4)),
            ("ActivationOp.BackwardCost", () => ActivationOp.BackwardCost(act, 4)),
            ("GemmOp.Reference", () => GemmOp.Reference(false, false, 2, 2, 1, 1, r.AsSpan(0, 2), r.AsSpan(0, 2), 0, r, default, act, 0)),
            ("GemmOp.Host", () => GemmOp.Host(false, false, 2, 2, 1, 1f, new float[2], new float[2], 0f, h, default, act, 0f)),
            ("GemmOp.Launch", () => GemmOp.Launch(k, false, false, 2, 2, 1, 1f, v, v, 0f, v, default, act, 0f, v)),
        };
        foreach (var (name, call) in entryPoints)
        {
            var e = Assert.Throws<ArgumentOutOfRangeException>(call);
            Assert.True(e.ParamName == "act", $"{name}: ParamName {e.ParamName}, expected act");
            Assert.True(e.Message.Contains(value.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal)
                && e.Message.Contains("Softplus", StringComparison.Ordinal), $"{name}: message does not name the value and the expected ones: {e.Message}");
        }
        Assert.Equal(0, k.Launches);
        Assert.All(h, x => Assert.Equal(0f, x));
    }
}
