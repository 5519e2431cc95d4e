using GpuNet.Kernels;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;

namespace GpuNet.Tests;

public sealed class ElementwiseTests(BackendFixture f) : DeviceTestBase(f), IClassFixture<BackendFixture>
{
    public static TheoryData<int> Sizes => [1, 7, 257, 1000];

    [Theory, Backends(nameof(Sizes))]
    public void BinaryOpsMatchReference(string backend, int n)
    {
        Use(backend);
        var a = TestData.Uniform(1, n); var b = TestData.Uniform(2, n);
        using var ta = D.FromArray(a); using var tb = D.FromArray(b); using var tc = D.Zeros(n);
        foreach (var op in Enum.GetValues<BinaryOp>())
        {
            switch (op)
            {
                case BinaryOp.Add: D.Add(ta, tb, tc); break;
                case BinaryOp.Sub: D.Sub(ta, tb, tc); break;
                case BinaryOp.Mul: D.Mul(ta, tb, tc); break;
                default: throw new ArgumentOutOfRangeException(nameof(op), op, "a BinaryOp without a device method: add its case here");
            }
            var expected = new double[n];
            ElementwiseOp.Reference(op, TestData.D(a), TestData.D(b), expected);
            Tol.Elementwise.AssertClose(tc.ToArray(), expected, $"{op} n={n}");
        }
    }

    [Theory, Backends(nameof(Sizes))]
    public void ScaleAxpyFillCopyMatchReference(string backend, int n)
    {
        Use(backend);
        var x = TestData.Uniform(3, n); var y = TestData.Uniform(4, n);
        using var tx = D.FromArray(x); using var ty = D.FromArray(y); using var tz = D.Zeros(n);

        D.Axpy(-0.75f, tx, ty);
        var expected = TestData.D(y);
        ElementwiseOp.ReferenceAxpy(-0.75, TestData.D(x), expected);
        Tol.Elementwise.AssertClose(ty.ToArray(), expected, "axpy");

        D.Scale(2.5f, tx, tz);
        ElementwiseOp.ReferenceScale(2.5, TestData.D(x), expected);
        Tol.Elementwise.AssertClose(tz.ToArray(), expected, "scale");

        D.Copy(tx, tz);
        Assert.Equal(x, tz.ToArray());

        D.Fill(tz, 3.25f);
        Assert.All(tz.ToArray(), v => Assert.Equal(3.25f, v));
    }

    [Theory, Backends]
    public void MismatchedLengthsNameTheOpAndShapes(string backend)
    {
        Use(backend);
        using var a = D.Zeros(2, 3); using var b = D.Zeros(5); using var c = D.Zeros(6);
        var e = Assert.Throws<ShapeMismatchException>(() => D.Add(a, b, c));
        Assert.Equal("Add", e.Operation);
        Assert.Contains("(2, 3)", e.Message);
        Assert.Contains("(5)", e.Message);
    }

    [Theory, Backends]
    public void LaunchesAreCounted(string backend)
    {
        Use(backend);
        using var a = D.Zeros(10); using var b = D.Zeros(10);
        long before = D.Counters.Launches;
        D.Add(a, b, b); D.Scale(2f, a, b); D.Axpy(1f, a, b);
        Assert.Equal(before + 3, D.Counters.Launches);
    }
}


/// <summary>
/// The definitions behind <see cref="BinaryOp"/>: every value maps to its own <see cref="IBinaryOp"/> struct (and every
/// struct is reachable), and an undefined value is an error at every entry point, never a silent product.
/// </summary>
public sealed class BinaryOpDefinitionTests
{
    [Fact]
    public void EveryValueHasItsOwnDefinitionAndEveryDefinitionIsMapped()
    {
        var mapped = new List<Type>();
        foreach (var op in Enum.GetValues<BinaryOp>())
        {
            var f = ElementwiseOp.Definition(op);
            Assert.Equal(op, f.Kind);
            mapped.Add(f.GetType());
        }
        var structs = typeof(IBinaryOp).Assembly.GetTypes()
            .Where(t => t.IsValueType && typeof(IBinaryOp).IsAssignableFrom(t)).ToList();
        Assert.Equal(structs.Count, mapped.Distinct().Count());
        Assert.All(structs, t => Assert.Contains(t, mapped));
    }

    /// <summary>The float32 scalar form (what the ILGPU kernel runs) and the span form against the reference.</summary>
    [Fact]
    public void ScalarAndSpanFormsMatchReference()
    {
        var a = TestData.Uniform(5, 300); var b = TestData.Uniform(6, 300);
        foreach (var op in Enum.GetValues<BinaryOp>())
        {
            var f = ElementwiseOp.Definition(op);
            var expected = new double[a.Length];
            ElementwiseOp.Reference(op, TestData.D(a), TestData.D(b), expected);
            Tol.Elementwise.AssertClose(a.Zip(b, f.Apply).ToArray(), expected, $"{op} scalar");
            var c = new float[a.Length];
            f.ApplySpan(a, b, c);
            Tol.Elementwise.AssertClose(c, expected, $"{op} span");
        }
    }

    [Theory]
    [InlineData(99)]
    [InlineData(-1)]
    [InlineData(3)]
    public void UndefinedValueThrowsAtEveryEntryPoint(int value)
    {
        var op = (BinaryOp)value;
        float[] h = new float[4];
        double[] r = new double[4];
        using var context = Context.Create(b => b.CPU());
        using var accelerator = context.CreateCPUAccelerator(0);
        using var buffer = accelerator.Allocate1D<float>(4);
        var k = new KernelCache(accelerator);
        var v = buffer.View;
        var entryPoints = new (string Name, Action Call)[]
        {
            ("ElementwiseOp.Definition", () => ElementwiseOp.Definition(op)),
            ("ElementwiseOp.Reference", () => ElementwiseOp.Reference(op, r, r, r)),
            ("ElementwiseOp.Host", () => ElementwiseOp.Host(op, h, h, h)),
            ("ElementwiseOp.Launch", () => ElementwiseOp.Launch(k, op, v, v, v)),
        };
        foreach (var (name, call) in entryPoints)
        {
            var e = Assert.Throws<ArgumentOutOfRangeException>(call);
            Assert.True(e.ParamName == "op", $"{name}: ParamName {e.ParamName}, expected op");
            Assert.True(e.Message.Contains(value.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal)
                && e.Message.Contains("Mul", StringComparison.Ordinal), $"{name}: message does not name the value and the expected ones: {e.Message}");
        }
        Assert.Equal(0, k.Launches);
    }
}
