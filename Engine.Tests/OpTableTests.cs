using GpuNet.Kernels;

namespace GpuNet.Tests;

/// <summary>
/// Every row of the op table (an op, a shape, the device call, its float64 reference and its tolerance) on every
/// backend. A new op or shape is one row in <see cref="Build"/>.
/// </summary>
public sealed class OpTableTests(BackendFixture f) : DeviceTestBase(f), IClassFixture<BackendFixture>
{
    private static readonly Dictionary<string, OpRow> Table = Build().ToDictionary(r => r.Name);

    /// <summary>The row names (serialisable, so each row x backend is its own test case).</summary>
    public static TheoryData<string> Rows => new(Table.Keys);

    [Theory, Backends(nameof(Rows))]
    public void MatchesReference(string backend, string row)
    {
        Use(backend);
        OpHarness.Check(D, Table[row]);
    }

    [Fact]
    public void RowNamesAreUniqueAndTheTableIsLarge()
    {
        var rows = Build().ToList();
        Assert.Equal(rows.Count, rows.Select(r => r.Name).Distinct().Count());
        Assert.True(rows.Count > 600, $"expected over 600 rows, got {rows.Count}");
    }

    private static IEnumerable<OpRow> Build()
    {
        foreach (int n in OpHarness.Lengths)
        {
            int[] s = [n];
            foreach (var act in Enum.GetValues<Activation>())
            {
                double alpha = ActivationMath.DefaultAlpha(act);
                yield return new($"{act} forward {OpHarness.Text(s)}", [s], s,
                    (d, t, y) => d.ActivationForward(act, t[0], y),
                    x => { var y = new double[n]; ActivationOp.Reference(act, alpha, x[0], y); return y; }, Tol.Activation, -6f, 6f);
                yield return new($"{act} backward {OpHarness.Text(s)}", [s, s], s,
                    (d, t, dx) => { using var y = d.Zeros(n); d.ActivationForward(act, t[0], y); d.ActivationBackward(act, t[0], y, t[1], dx); },
                    x => { var dx = new double[n]; ActivationOp.ReferenceBackward(act, alpha, x[0], x[1], dx); return dx; }, Tol.Activation, -6f, 6f);
            }
            foreach (var op in Enum.GetValues<BinaryOp>())
                yield return new($"{op} {OpHarness.Text(s)}", [s, s], s,
                    (d, t, c) => { switch (op) { case BinaryOp.Add: d.Add(t[0], t[1], c); break; case BinaryOp.Sub: d.Sub(t[0], t[1], c); break; default: d.Mul(t[0], t[1], c); break; } },
                    x => { var c = new double[n]; ElementwiseOp.Reference(op, x[0], x[1], c); return c; }, Tol.Elementwise);
            foreach (float alpha in new[] { -0.75f, 2.5f })
            {
                yield return new($"Scale {alpha} {OpHarness.Text(s)}", [s], s, (d, t, y) => d.Scale(alpha, t[0], y),
                    x => { var y = new double[n]; ElementwiseOp.ReferenceScale(alpha, x[0], y); return y; }, Tol.Elementwise);
                yield return new($"Axpy {alpha} {OpHarness.Text(s)}", [s, s], s, (d, t, y) => { d.Copy(t[1], y); d.Axpy(alpha, t[0], y); },
                    x => { var y = (double[])x[1].Clone(); ElementwiseOp.ReferenceAxpy(alpha, x[0], y); return y; }, Tol.Elementwise);
            }
        }
        foreach (var (rows, cols) in OpHarness.Matrices)
        {
            int[] m = [rows, cols];
            string shape = OpHarness.Text(m);
            foreach (bool log in new[] { false, true })
            {
                string name = log ? "LogSoftmax" : "Softmax";
                yield return new($"{name} forward {shape}", [m], m,
                    (d, t, y) => { if (log) d.LogSoftmax(t[0], y); else d.Softmax(t[0], y); },
                    x => { var y = new double[rows * cols]; SoftmaxOp.Reference(log, rows, cols, x[0], y); return y; }, Tol.Activation, -5f, 5f);
                yield return new($"{name} backward {shape}", [m, m], m,
                    (d, t, dx) =>
                    {
                        using var y = d.Zeros(rows, cols);
                        if (log) { d.LogSoftmax(t[0], y); d.LogSoftmaxBackward(y, t[1], dx); } else { d.Softmax(t[0], y); d.SoftmaxBackward(y, t[1], dx); }
                    },
                    x => { var y = new double[rows * cols]; SoftmaxOp.Reference(log, rows, cols, x[0], y); var dx = new double[rows * cols]; SoftmaxOp.ReferenceBackward(log, rows, cols, y, x[1], dx); return dx; },
                    Tol.Activation, -5f, 5f);
            }
            foreach (var op in Enum.GetValues<ReduceOp>())
            {
                yield return new($"{op}Rows {shape}", [m], [rows],
                    (d, t, y) => { switch (op) { case ReduceOp.Sum: d.SumRows(t[0], y); break; case ReduceOp.Mean: d.MeanRows(t[0], y); break; default: d.MaxRows(t[0], y); break; } },
                    x => { var y = new double[rows]; ReductionOp.ReferenceRows(op, rows, cols, x[0], y); return y; }, Tol.Reduction);
                yield return new($"{op}Cols {shape}", [m], [cols],
                    (d, t, y) => { switch (op) { case ReduceOp.Sum: d.SumCols(t[0], y); break; case ReduceOp.Mean: d.MeanCols(t[0], y); break; default: d.MaxCols(t[0], y); break; } },
                    x => { var y = new double[cols]; ReductionOp.ReferenceCols(op, rows, cols, x[0], 0, y); return y; }, Tol.Reduction);
            }
            yield return new($"SumCols beta=1 {shape}", [m, [cols]], [cols],
                (d, t, y) => { d.Copy(t[1], y); d.SumCols(t[0], y, beta: 1f); },
                x => { var y = (double[])x[1].Clone(); ReductionOp.ReferenceCols(ReduceOp.Sum, rows, cols, x[0], 1, y); return y; }, Tol.Reduction);
        }
    }
}
