namespace GpuNet.Tests;

/// <summary>
/// One row of the op table: an op on one shape, checked against its float64 reference. Inputs are seeded: the first
/// uniform in [<see cref="Lo"/>, <see cref="Hi"/>), the others (upstream gradients, second operands) in [-1, 1);
/// <see cref="Run"/> calls the device (inputs, then the output tensor, which
/// starts as zeros); <see cref="Reference"/> computes the expected output from the inputs widened to float64.
/// </summary>
public sealed record OpRow(string Name, int[][] InputShapes, int[] OutputShape, Action<Device, Tensor[], Tensor> Run,
    Func<double[][], double[]> Reference, Tol Tol, float Lo = -1f, float Hi = 1f)
{
    public override string ToString() => Name;
}

/// <summary>Runs <see cref="OpRow"/>s: builds the inputs, calls the device, compares with the reference.</summary>
public static class OpHarness
{
    /// <summary>Awkward 1-D lengths: 1, primes, powers of two and their neighbours, non-multiples of any tile.</summary>
    public static readonly int[] Lengths = [1, 2, 3, 4, 5, 7, 8, 11, 13, 17, 31, 32, 33, 63, 64, 65, 100, 127, 129, 255, 256, 257, 500, 1000];

    /// <summary>Awkward (rows, cols) shapes: single row or column, primes, cols below and above a warp or a group.</summary>
    public static readonly (int Rows, int Cols)[] Matrices = [(1, 1), (1, 7), (7, 1), (2, 2), (3, 5), (4, 10), (7, 13), (13, 7), (2, 33), (6, 31), (5, 64), (8, 8), (9, 17), (3, 100), (1, 257), (16, 10), (31, 3), (32, 32)];

    /// <summary>The shape's text for a row name: (2, 3).</summary>
    public static string Text(params int[] shape) => "(" + string.Join(", ", shape) + ")";

    /// <summary>Runs <paramref name="row"/> on <paramref name="d"/> and asserts its output matches the reference.</summary>
    public static void Check(Device d, OpRow row)
    {
        int seed = row.Name.Aggregate(17, (h, ch) => h * 31 + ch);
        var host = row.InputShapes.Select((s, i) => TestData.Uniform(seed + i, s.Aggregate(1, (a, b) => a * b), i == 0 ? row.Lo : -1f, i == 0 ? row.Hi : 1f)).ToArray();
        var inputs = new Tensor[host.Length];
        try
        {
            for (int i = 0; i < host.Length; i++) inputs[i] = d.FromArray(host[i], row.InputShapes[i]);
            using var output = d.Zeros(row.OutputShape);
            row.Run(d, inputs, output);
            var expected = row.Reference(host.Select(TestData.D).ToArray());
            var got = output.ToArray();
            Assert.All(got, v => Assert.True(float.IsFinite(v), $"{row.Name}: non-finite output {v}"));
            row.Tol.AssertClose(got, expected, $"{row.Name} on {d.Name}");
        }
        finally
        {
            foreach (var t in inputs) t?.Dispose();
        }
    }
}
