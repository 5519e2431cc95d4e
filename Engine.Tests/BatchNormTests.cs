using GpuNet.Kernels;

namespace GpuNet.Tests;

public sealed class BatchNormTests(BackendFixture f) : DeviceTestBase(f), IClassFixture<BackendFixture>
{
    public static TheoryData<int[], bool> Cases()
    {
        var data = new TheoryData<int[], bool>();
        foreach (var shape in new[] { new[] { 2, 1 }, [7, 3], [64, 10], [2, 3, 5, 5], [1, 4, 3, 3], [5, 2, 1, 1] })
            foreach (bool relu in new[] { false, true }) data.Add(shape, relu);
        return data;
    }

    private static (int N, int C, int S) Nsc(int[] shape)
    {
        int s = 1;
        for (int i = 2; i < shape.Length; i++) s *= shape[i];
        return (shape[0], shape[1], s);
    }

    private static int Count(int[] shape) => shape.Aggregate(1, (a, b) => a * b);

    [Theory, Backends(nameof(Cases))]
    public void TrainAndEvalForwardBackwardMatchReference(string backend, int[] shape, bool relu)
    {
        Use(backend);
        var (n, c, s) = Nsc(shape);
        int len = Count(shape);
        var x = TestData.Uniform(1, len, 1f, 4f);   // a mean far from 0 checks the two-pass variance
        var gamma = TestData.Uniform(2, c, 0.5f, 1.5f); var beta = TestData.Uniform(3, c, -0.5f, 0.5f);
        var rm = TestData.Uniform(4, c, -0.2f, 0.2f); var rv = TestData.Uniform(5, c, 0.5f, 1.5f);
        var dy = TestData.Uniform(6, len); var dg0 = TestData.Uniform(7, c); var db0 = TestData.Uniform(8, c);
        using var tx = D.FromArray(x, shape); using var ty = D.Zeros(shape);
        using var tg = D.FromArray(gamma); using var tb = D.FromArray(beta);
        using var trm = D.FromArray(rm); using var trv = D.FromArray(rv);
        using var tsm = D.Zeros(c); using var tsi = D.Zeros(c);
        using var tdy = D.FromArray(dy, shape); using var tdx = D.Zeros(shape);
        using var tdg = D.FromArray(dg0); using var tdb = D.FromArray(db0);

        // training forward
        D.BatchNormForward(tx, tg, tb, trm, trv, tsm, tsi, ty, training: true, momentum: 0.1f, eps: 1e-5f, fuseRelu: relu);
        double[] rmD = TestData.D(rm), rvD = TestData.D(rv), sm = new double[c], si = new double[c], y = new double[len];
        BatchNormOp.Reference(n, c, s, TestData.D(x), TestData.D(gamma), TestData.D(beta), rmD, rvD, sm, si, y, true, 0.1, 1e-5, relu);
        string what = $"{ShapeUtil.Format(shape)} relu={relu}";
        Tol.BatchNorm.AssertClose(ty.ToArray(), y, $"train y {what}");
        Tol.BatchNorm.AssertClose(tsm.ToArray(), sm, $"saveMean {what}");
        Tol.BatchNorm.AssertClose(tsi.ToArray(), si, $"saveInvStd {what}");
        Tol.BatchNorm.AssertClose(trm.ToArray(), rmD, $"runningMean {what}");
        Tol.BatchNorm.AssertClose(trv.ToArray(), rvD, $"runningVar {what}");

        // training backward (mask from the device's y, so both sides mask the same elements)
        var yDev = TestData.D(ty.ToArray());
        D.BatchNormBackward(tx, tdy, tg, tsm, tsi, tdx, tdg, tdb, relu, relu ? ty : null);
        double[] dx = new double[len], dg = TestData.D(dg0), db = TestData.D(db0);
        BatchNormOp.ReferenceBackward(n, c, s, TestData.D(x), TestData.D(dy), TestData.D(gamma), sm, si, yDev, dx, dg, db, true, relu);
        Tol.BatchNorm.AssertClose(tdx.ToArray(), dx, $"train dx {what}");
        Tol.BatchNorm.AssertClose(tdg.ToArray(), dg, $"train dGamma (+=) {what}");
        Tol.BatchNorm.AssertClose(tdb.ToArray(), db, $"train dBeta (+=) {what}");

        // eval forward with the updated running statistics, then the eval backward
        D.BatchNormForward(tx, tg, tb, trm, trv, tsm, tsi, ty, training: false, eps: 1e-5f, fuseRelu: relu);
        var rmAfter = (double[])rmD.Clone(); var rvAfter = (double[])rvD.Clone();
        BatchNormOp.Reference(n, c, s, TestData.D(x), TestData.D(gamma), TestData.D(beta), rmD, rvD, sm, si, y, false, 0.1, 1e-5, relu);
        Assert.Equal(rmAfter, rmD);   // eval leaves the running statistics alone (reference)
        Tol.BatchNorm.AssertClose(ty.ToArray(), y, $"eval y {what}");
        Tol.BatchNorm.AssertClose(trm.ToArray(), rmD, $"eval runningMean unchanged {what}");
        Tol.BatchNorm.AssertClose(trv.ToArray(), rvAfter, $"eval runningVar unchanged {what}");
        Tol.BatchNorm.AssertClose(tsi.ToArray(), si, $"eval saveInvStd {what}");

        yDev = TestData.D(ty.ToArray());
        D.BatchNormBackward(tx, tdy, tg, tsm, tsi, tdx, tdg, tdb, relu, relu ? ty : null, training: false);
        BatchNormOp.ReferenceBackward(n, c, s, TestData.D(x), TestData.D(dy), TestData.D(gamma), sm, si, yDev, dx, dg, db, false, relu);
        Tol.BatchNorm.AssertClose(tdx.ToArray(), dx, $"eval dx {what}");
        Tol.BatchNorm.AssertClose(tdg.ToArray(), dg, $"eval dGamma (+=) {what}");
        Tol.BatchNorm.AssertClose(tdb.ToArray(), db, $"eval dBeta (+=) {what}");
    }

    [Theory]
    [BackendData(new[] { 7, 3 })]
    [BackendData(new[] { 2, 3, 5, 5 })]
    public void RunningStatisticsAfterThreeSteps(string backend, int[] shape)
    {
        Use(backend);
        var (n, c, s) = Nsc(shape);
        int len = Count(shape);
        var gamma = TestData.Uniform(2, c, 0.5f, 1.5f); var beta = TestData.Uniform(3, c);
        using var tx = D.Zeros(shape); using var ty = D.Zeros(shape); using var ty2 = D.Zeros(shape);
        using var tg = D.FromArray(gamma); using var tb = D.FromArray(beta);
        using var trm = D.Zeros(c); using var trv = D.FromArray(Enumerable.Repeat(1f, c).ToArray());
        using var tsm = D.Zeros(c); using var tsi = D.Zeros(c);
        double[] rm = new double[c], rv = Enumerable.Repeat(1.0, c).ToArray(), sm = new double[c], si = new double[c], y = new double[len];
        for (int step = 0; step < 3; step++)
        {
            var x = TestData.Uniform(10 + step, len, -1f + step, 2f + 2 * step);
            tx.CopyFrom(x);
            D.BatchNormForward(tx, tg, tb, trm, trv, tsm, tsi, ty, training: true, momentum: 0.3f);
            BatchNormOp.Reference(n, c, s, TestData.D(x), TestData.D(gamma), TestData.D(beta), rm, rv, sm, si, y, true, 0.3, 1e-5, false);
            // untracked running statistics (null) give the same output
            D.BatchNormForward(tx, tg, tb, null, null, tsm, tsi, ty2, training: true);
            Assert.Equal(ty.ToArray(), ty2.ToArray());
        }
        Tol.BatchNorm.AssertClose(trm.ToArray(), rm, "running mean after 3 steps");
        Tol.BatchNorm.AssertClose(trv.ToArray(), rv, "running var (unbiased) after 3 steps");
        Tol.BatchNorm.AssertClose(ty.ToArray(), y, "y of step 3");
    }

    [Theory]
    [BackendData(new[] { 7, 3 })]
    [BackendData(new[] { 2, 3, 2, 2 })]
    [BackendData(new[] { 1, 2, 3, 1 })]
    public void BackwardMatchesFiniteDifferences(string backend, int[] shape)
    {
        Use(backend);
        var (n, c, s) = Nsc(shape);
        int len = Count(shape);
        var x = TestData.Uniform(21, len, -2f, 3f); var gamma = TestData.Uniform(22, c, 0.5f, 1.5f);
        var beta = TestData.Uniform(23, c); var dy = TestData.Uniform(24, len);
        using var tx = D.FromArray(x, shape); using var ty = D.Zeros(shape); using var tg = D.FromArray(gamma); using var tb = D.FromArray(beta);
        using var tsm = D.Zeros(c); using var tsi = D.Zeros(c); using var tdy = D.FromArray(dy, shape); using var tdx = D.Zeros(shape);
        using var tdg = D.Zeros(c); using var tdb = D.Zeros(c);
        D.BatchNormForward(tx, tg, tb, null, null, tsm, tsi, ty, training: true);
        D.BatchNormBackward(tx, tdy, tg, tsm, tsi, tdx, tdg, tdb);

        double[] xd = TestData.D(x), gd = TestData.D(gamma), bd = TestData.D(beta), dyd = TestData.D(dy);
        double Loss(double[] xv, double[] gv, double[] bv)
        {
            var yv = new double[len];
            BatchNormOp.Reference(n, c, s, xv, gv, bv, [], [], [], [], yv, true, 0.1, 1e-5, false);
            return TestData.Dot(yv, dyd);
        }
        Tol.FiniteDifference.AssertClose(tdx.ToArray(), TestData.FiniteDifference(v => Loss(v, gd, bd), xd), "dx vs finite differences");
        Tol.FiniteDifference.AssertClose(tdg.ToArray(), TestData.FiniteDifference(v => Loss(xd, v, bd), gd), "dGamma vs finite differences");
        Tol.FiniteDifference.AssertClose(tdb.ToArray(), TestData.FiniteDifference(v => Loss(xd, gd, v), bd), "dBeta vs finite differences");
    }

    // Host: above the parallel threshold, so channel blocks run in parallel; S = 1600 exceeds a host block (one channel
    // per block), and (4096, 20) is BatchNorm1d split into two blocks. The CPU accelerator gets smaller batches.
    [Theory]
    [BackendData(new[] { 16, 3, 40, 40 }, new[] { 2, 3, 40, 40 })]
    [BackendData(new[] { 4096, 20 }, new[] { 300, 20 })]
    public void LargeInputsMatchReference(string backend, int[] hostShape, int[] kernelShape)
    {
        Use(backend);
        int[] shape = D.IsHost ? hostShape : kernelShape;
        var (n, c, s) = Nsc(shape);
        int len = Count(shape);
        var x = TestData.Uniform(31, len, -1f, 3f); var dy = TestData.Uniform(32, len);
        var gamma = TestData.Uniform(33, c, 0.5f, 1.5f); var beta = TestData.Uniform(34, c);
        using var tx = D.FromArray(x, shape); using var ty = D.Zeros(shape); using var tdy = D.FromArray(dy, shape);
        using var tg = D.FromArray(gamma); using var tb = D.FromArray(beta); using var trm = D.Zeros(c); using var trv = D.Zeros(c);
        using var tsm = D.Zeros(c); using var tsi = D.Zeros(c); using var tdg = D.Zeros(c); using var tdb = D.Zeros(c);
        D.BatchNormForward(tx, tg, tb, trm, trv, tsm, tsi, ty, training: true, fuseRelu: true);
        double[] rm = new double[c], rv = new double[c], sm = new double[c], si = new double[c], y = new double[len];
        BatchNormOp.Reference(n, c, s, TestData.D(x), TestData.D(gamma), TestData.D(beta), rm, rv, sm, si, y, true, 0.1, 1e-5, true);
        Tol.BatchNorm.AssertClose(ty.ToArray(), y, "large y");
        Tol.BatchNorm.AssertClose(trv.ToArray(), rv, "large running var");
        var yDev = TestData.D(ty.ToArray());
        D.BatchNormBackward(tx, tdy, tg, tsm, tsi, tdy, tdg, tdb, fuseRelu: true, y: ty);   // dx written over dy
        double[] dx = new double[len], dg = new double[c], db = new double[c];
        BatchNormOp.ReferenceBackward(n, c, s, TestData.D(x), TestData.D(dy), TestData.D(gamma), sm, si, yDev, dx, dg, db, true, true);
        Tol.BatchNorm.AssertClose(tdy.ToArray(), dx, "large dx (in place over dy)");
        Tol.Reduction.AssertClose(tdg.ToArray(), dg, "large dGamma");
        Tol.Reduction.AssertClose(tdb.ToArray(), db, "large dBeta");
    }

    [Theory, Backends]
    public void OneValuePerChannelIsAnErrorOnlyWhenTraining(string backend)
    {
        Use(backend);
        using var x = D.FromArray([0.5f, -1f, 2f], 1, 3); using var y = D.Zeros(1, 3);
        using var g = D.FromArray([1f, 2f, 0.5f]); using var b = D.FromArray([0f, 0.1f, -0.1f]);
        using var rm = D.FromArray([0.1f, 0.2f, 0.3f]); using var rv = D.FromArray([1f, 2f, 3f]);
        using var sm = D.Zeros(3); using var si = D.Zeros(3);
        var e = Assert.Throws<ArgumentException>(() => D.BatchNormForward(x, g, b, rm, rv, sm, si, y, training: true));
        Assert.Contains("Expected more than 1 value per channel when training", e.Message);
        Assert.Contains("(1, 3)", e.Message);
        using var x4 = D.Zeros(1, 3, 1, 1); using var y4 = D.Zeros(1, 3, 1, 1);
        Assert.Throws<ArgumentException>(() => D.BatchNormForward(x4, g, b, rm, rv, sm, si, y4, training: true));

        D.BatchNormForward(x, g, b, rm, rv, null, null, y, training: false);
        double[] rmD = [0.1f, 0.2f, 0.3f], rvD = [1, 2, 3], yr = new double[3];
        BatchNormOp.Reference(1, 3, 1, [0.5, -1, 2], [1, 2, 0.5], [0, 0.1f, -0.1f], rmD, rvD, [], [], yr, false, 0.1, 1e-5, false);
        Tol.BatchNorm.AssertClose(y.ToArray(), yr, "eval with batch 1");
    }

    [Theory, Backends]
    public void BadArgumentsNameTheOpArgumentAndShapes(string backend)
    {
        Use(backend);
        using var x = D.Zeros(4, 3); using var y = D.Zeros(4, 3); using var g = D.Zeros(3); using var b = D.Zeros(3);
        using var rm = D.Zeros(3); using var rv = D.Zeros(3); using var sm = D.Zeros(3); using var si = D.Zeros(3);
        using var g4 = D.Zeros(4); using var v1 = D.Zeros(12); using var y2 = D.Zeros(3, 4);

        var e = Assert.Throws<ShapeMismatchException>(() => D.BatchNormForward(v1, g, b, rm, rv, sm, si, v1, true));
        Assert.Equal("BatchNormForward", e.Operation);
        Assert.Contains("(12)", e.Message);
        e = Assert.Throws<ShapeMismatchException>(() => D.BatchNormForward(x, g4, b, rm, rv, sm, si, y, true));
        Assert.Contains("(3)", e.Message); Assert.Contains("(4)", e.Message); Assert.Contains("gamma", e.Message);
        e = Assert.Throws<ShapeMismatchException>(() => D.BatchNormForward(x, g, b, rm, rv, sm, si, y2, true));
        Assert.Contains("(4, 3)", e.Message); Assert.Contains("(3, 4)", e.Message);

        var a = Assert.Throws<ArgumentException>(() => D.BatchNormForward(x, g, b, rm, rv, null, null, y, true));
        Assert.Equal("saveMean", a.ParamName);
        a = Assert.Throws<ArgumentException>(() => D.BatchNormForward(x, g, b, null, null, null, null, y, false));
        Assert.Equal("runningMean", a.ParamName);
        a = Assert.Throws<ArgumentException>(() => D.BatchNormForward(x, g, b, rm, null, sm, si, y, true));
        Assert.Equal("runningVar", a.ParamName);
        var r = Assert.Throws<ArgumentOutOfRangeException>(() => D.BatchNormForward(x, g, b, rm, rv, sm, si, y, true, momentum: 1.5f));
        Assert.Equal("momentum", r.ParamName);
        r = Assert.Throws<ArgumentOutOfRangeException>(() => D.BatchNormForward(x, g, b, rm, rv, sm, si, y, true, eps: 0f));
        Assert.Equal("eps", r.ParamName);

        var n = Assert.Throws<ArgumentNullException>(() => D.BatchNormBackward(x, y, g, sm, si, y, g, b, fuseRelu: true));
        Assert.Equal("y", n.ParamName);
        e = Assert.Throws<ShapeMismatchException>(() => D.BatchNormBackward(x, y, g, sm, si, y2, g, b));
        Assert.Equal("BatchNormBackward", e.Operation); Assert.Contains("dx", e.Message);
        e = Assert.Throws<ShapeMismatchException>(() => D.BatchNormBackward(x, y, g, sm, si, y, g4, b));
        Assert.Contains("dGamma", e.Message);
    }
}

