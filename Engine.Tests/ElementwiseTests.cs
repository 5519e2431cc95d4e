using GpuNet.Kernels;

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
                default: D.Mul(ta, tb, tc); break;
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

