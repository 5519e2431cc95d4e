namespace GpuNet.Tests;

/// <summary>Every host copy into and out of a tensor checks the tensor's dtype against the span's element type.</summary>
public sealed class HostCopyTests(BackendFixture f) : DeviceTestBase(f), IClassFixture<BackendFixture>
{
    private static void AssertDTypeError(Action copy, string param, DType expected, DType actual)
    {
        var e = Assert.Throws<ArgumentException>(copy);
        Assert.Equal(param, e.ParamName);
        Assert.Contains($"expected a {expected} tensor, got {actual}", e.Message);
    }

    [Theory, Backends]
    public void CopiesRejectTheOtherDType(string backend)
    {
        Use(backend);
        using var labels = D.FromArray([1, 2, 3]);
        using var floats = D.FromArray([1f, 2f, 3f]);
        AssertDTypeError(() => labels.CopyFrom([0.5f, 1.5f, 2.5f]), "source", DType.Float32, DType.Int32);
        AssertDTypeError(() => floats.CopyFrom([4, 5, 6]), "source", DType.Int32, DType.Float32);
        AssertDTypeError(() => labels.CopyTo(new float[3]), "destination", DType.Float32, DType.Int32);
        AssertDTypeError(() => floats.CopyTo(new int[3]), "destination", DType.Int32, DType.Float32);
        AssertDTypeError(() => labels.ToArray(), null!, DType.Float32, DType.Int32);
        AssertDTypeError(() => floats.ToInt32Array(), null!, DType.Int32, DType.Float32);
        // The rejected copies wrote nothing.
        Assert.Equal([1, 2, 3], labels.ToInt32Array());
        Assert.Equal([1f, 2f, 3f], floats.ToArray());
    }

    [Theory, Backends]
    public void MatchingCopiesRoundTripAndCheckTheLength(string backend)
    {
        Use(backend);
        using var ints = D.AllocateUninitialized([4], DType.Int32);
        ints.CopyFrom([7, -1, int.MaxValue, 0]);
        var back = new int[4];
        ints.CopyTo(back);
        Assert.Equal([7, -1, int.MaxValue, 0], back);
        var e = Assert.Throws<ArgumentException>(() => ints.CopyFrom([1, 2]));
        Assert.Equal("source", e.ParamName);
        Assert.Contains("source has 2 elements", e.Message);
        e = Assert.Throws<ArgumentException>(() => ints.CopyTo(new int[5]));
        Assert.Equal("destination", e.ParamName);
        Assert.Contains("destination has 5 elements", e.Message);
    }
}
