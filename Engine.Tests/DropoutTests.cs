using GpuNet.Kernels;

namespace GpuNet.Tests;

public sealed class DropoutTests(BackendFixture f) : DeviceTestBase(f), IClassFixture<BackendFixture>
{
    // The float32 spec every device must meet bit for bit: keep ? x * float32(1/(1-p)) : 0.
    private static float[] Spec(float[] x, float p, ulong seed, long step)
    {
        var y = new float[x.Length];
        float scale = DropoutOp.Scale(p);
        for (int i = 0; i < x.Length; i++) y[i] = DropoutOp.Keep(p, seed, step, i) ? x[i] * scale : 0f;
        return y;
    }

    [Theory]
    [BackendData(0.1f)]
    [BackendData(0.5f)]
    [BackendData(0.9f)]
    public void DroppedFractionIsCloseToPAndKeptValuesAreScaled(string backend, float p)
    {
        Use(backend);
        int n = D.IsHost ? 100_000 : 20_000;
        using var x = D.FromArray(Enumerable.Repeat(1f, n).ToArray()); using var y = D.Zeros(n);
        D.DropoutForward(x, y, p, seed: 1234, step: 7);
        var got = y.ToArray();
        int dropped = got.Count(v => v == 0f);
        double sigma = Math.Sqrt(p * (1 - p) / n);
        Assert.True(Math.Abs((double)dropped / n - p) < 5 * sigma, $"dropped fraction {(double)dropped / n} for p = {p} (n = {n}, 5 sigma = {5 * sigma:E2})");
        float scale = (float)(1.0 / (1.0 - p));
        Assert.All(got, v => Assert.True(v == 0f || v == scale, $"kept value {v} != 1/(1-p) = {scale}"));
    }

    [Theory]
    [BackendData(1037, 0.3f)]
    [BackendData(70_001, 0.25f)]   // the host splits this across cores and ends with a scalar tail
    public void MatchesReferenceAndIsBitIdenticalToTheSpecAndTheCpuDevice(string backend, int n, float p)
    {
        Use(backend);
        if (!D.IsHost && n > 20_000) n = 20_001;   // keep the CPU accelerator quick
        var x = TestData.Uniform(5, n, -2f, 2f);
        using var tx = D.FromArray(x); using var ty = D.Zeros(n);
        D.DropoutForward(tx, ty, p, seed: 42, step: 3);
        var got = ty.ToArray();
        var expected = new double[n];
        DropoutOp.Reference(TestData.D(x), expected, p, 42, 3);
        Tol.Elementwise.AssertClose(got, expected, "dropout vs float64 reference");
        Assert.Equal(Spec(x, p, 42, 3), got);

        using var cpu = Device.Create("cpu");
        using var cx = cpu.FromArray(x); using var cy = cpu.Zeros(n);
        cpu.DropoutForward(cx, cy, p, seed: 42, step: 3);
        Assert.Equal(cy.ToArray(), got);
    }

    [Theory, Backends]
    public void DifferentStepOrSeedGivesADifferentMask(string backend)
    {
        Use(backend);
        const int n = 4096; const float p = 0.3f;
        using var x = D.FromArray(Enumerable.Repeat(1f, n).ToArray());
        using var a = D.Zeros(n); using var b = D.Zeros(n); using var c = D.Zeros(n); using var again = D.Zeros(n);
        D.DropoutForward(x, a, p, 9, 1); D.DropoutForward(x, b, p, 9, 2); D.DropoutForward(x, c, p, 10, 1); D.DropoutForward(x, again, p, 9, 1);
        float[] ma = a.ToArray(), mb = b.ToArray(), mc = c.ToArray();
        Assert.Equal(ma, again.ToArray());   // same (seed, step): same mask
        // independent masks differ in about 2p(1-p) = 42% of the elements
        double diffStep = Enumerable.Range(0, n).Count(i => (ma[i] == 0) != (mb[i] == 0)) / (double)n;
        double diffSeed = Enumerable.Range(0, n).Count(i => (ma[i] == 0) != (mc[i] == 0)) / (double)n;
        Assert.InRange(diffStep, 0.37, 0.47);
        Assert.InRange(diffSeed, 0.37, 0.47);
    }

    [Theory, Backends]
    public void BackwardUsesTheForwardMask(string backend)
    {
        Use(backend);
        const int n = 2053; const float p = 0.4f;
        var x = TestData.Uniform(11, n, 0.5f, 1.5f);   // never 0, so y == 0 exactly where dropped
        var dy = TestData.Uniform(12, n);
        using var tx = D.FromArray(x); using var ty = D.Zeros(n); using var tdy = D.FromArray(dy); using var tdx = D.Zeros(n);
        D.DropoutForward(tx, ty, p, 77, 5);
        D.DropoutBackward(tdy, tdx, p, 77, 5);
        float[] y = ty.ToArray(), dx = tdx.ToArray();
        float scale = DropoutOp.Scale(p);
        int kept = 0;
        for (int i = 0; i < n; i++)
        {
            if (y[i] == 0f) Assert.Equal(0f, dx[i]);
            else { kept++; Assert.Equal(dy[i] * scale, dx[i]); }
        }
        Assert.InRange(kept, (int)(0.5 * n), (int)(0.7 * n));
        var expected = new double[n];
        DropoutOp.Reference(TestData.D(dy), expected, p, 77, 5);
        Tol.Elementwise.AssertClose(dx, expected, "dropout backward vs reference");

        D.DropoutBackward(tdy, tdy, p, 77, 5);   // in place
        Assert.Equal(dx, tdy.ToArray());
    }

    [Theory, Backends]
    public void PZeroIsIdentityAndPOneIsZeros(string backend)
    {
        Use(backend);
        const int n = 300;
        var x = TestData.Uniform(13, n);
        x[5] = float.NaN;
        using var tx = D.FromArray(x); using var ty = D.Zeros(n);
        D.DropoutForward(tx, ty, 0f, 1, 1);
        Assert.Equal(x, ty.ToArray());
        D.DropoutBackward(tx, ty, 0f, 1, 1);
        Assert.Equal(x, ty.ToArray());
        D.DropoutForward(tx, ty, 1f, 1, 1);
        Assert.All(ty.ToArray(), v => Assert.Equal(0f, v));
        D.Fill(ty, 5f);
        D.DropoutBackward(tx, ty, 1f, 1, 1);
        Assert.All(ty.ToArray(), v => Assert.Equal(0f, v));
    }

    [Theory, Backends]
    public void BadPAndShapesAreRejected(string backend)
    {
        Use(backend);
        using var x = D.Zeros(10); using var y = D.Zeros(10); using var z = D.Zeros(11);
        foreach (float p in new[] { -0.1f, 1.01f, float.NaN, float.PositiveInfinity })
        {
            var e = Assert.Throws<ArgumentOutOfRangeException>(() => D.DropoutForward(x, y, p, 1, 1));
            Assert.Equal("p", e.ParamName);
            Assert.Contains("DropoutForward", e.Message);
            e = Assert.Throws<ArgumentOutOfRangeException>(() => D.DropoutBackward(x, y, p, 1, 1));
            Assert.Contains("DropoutBackward", e.Message);
        }
        var s = Assert.Throws<ShapeMismatchException>(() => D.DropoutForward(x, z, 0.5f, 1, 1));
        Assert.Equal("DropoutForward", s.Operation);
        Assert.Contains("(11)", s.Message);
    }
}

