using GpuNet.Kernels;

namespace GpuNet.Tests;

/// <summary>
/// Shapes aimed at the host convolution's paths (Kernels/Conv2d.Host.cs): the dense grid (stride 1, B panels copied from
/// zero-padded planes), the im2col-row packer (masked 16-column steps, Q &gt; 16, strides, negative padding of the
/// flipped backward data), the strided backward data's col2im, two K slices, several column panels, samples in parallel
/// and the GEMM in parallel, M = 1 with packed weights. Every backend runs them against the float64 reference.
/// </summary>
public sealed class ConvHostTests(BackendFixture f) : DeviceTestBase(f), IClassFixture<BackendFixture>
{
    private static readonly Dictionary<string, Conv2dTests.Case> Cases = new()
    {
        // C R S = 288: two K slices (256 + 32); P Q = 196 and the dense P x (Q + 2) grid fill the same 7 slivers.
        ["dense 32->20 14x14, batch 6 (samples in parallel)"] = new(6, 32, 14, 14, 20, 3, 3, Conv2dParams.Square(padding: 1), true),
        ["dense 32->20 14x14, batch 3 (GEMM in parallel)"] = new(3, 32, 14, 14, 20, 3, 3, Conv2dParams.Square(padding: 1), false),
        // P Q = 4096 > HostGemm.NcCols: two column panels of the dense grid.
        ["dense 4->3 64x64, batch 1 (two column panels)"] = new(1, 4, 64, 64, 3, 3, 3, Conv2dParams.Square(padding: 1), true),
        ["dense dilation 2, groups 2, 30x30"] = new(2, 8, 30, 30, 6, 3, 3, Conv2dParams.Square(padding: 2, dilation: 2, groups: 2), true),
        // C R S = 25 stays on the row packer: Q = 37 takes three masked 16-column steps per output row.
        ["row packer 5x5, Q = 37"] = new(2, 1, 20, 37, 4, 5, 5, Conv2dParams.Square(padding: 2), true),
        ["stride 2 pad 1 (col2im backward data)"] = new(4, 6, 15, 13, 5, 3, 3, Conv2dParams.Square(stride: 2, padding: 1), true),
        // pad 3 > dil (R - 1) = 2: the flipped backward data has padding -1 (the row packer, never the dense grid).
        ["padding wider than the filter"] = new(2, 3, 6, 7, 4, 3, 3, Conv2dParams.Square(padding: 3), true),
        ["one output channel (M = 1, packed weights)"] = new(1, 5, 9, 8, 1, 3, 3, Conv2dParams.Square(padding: 1), false),
        ["one input channel (backward data M = 1)"] = new(2, 1, 12, 12, 7, 3, 3, Conv2dParams.Square(padding: 1), true),
        ["1x1 pointwise, groups 3"] = new(5, 6, 7, 9, 9, 1, 1, new Conv2dParams(Groups: 3), true),
    };

    public static TheoryData<string> CaseNames => new(Cases.Keys);

    [Theory, Backends(nameof(CaseNames))]
    public void ForwardAndBackwardMatchReference(string backend, string name)
    {
        Use(backend);
        Conv2dTests.AssertForwardAndBackward(D, Cases[name], name, seed: 31);
    }

    public static TheoryData<string> ParityCases => ["dense 32->20 14x14, batch 6 (samples in parallel)", "row packer 5x5, Q = 37", "stride 2 pad 1 (col2im backward data)"];

    /// <summary>
    /// The previous host path, written out: an explicit im2col matrix per sample times the weights on the device's GEMM
    /// (forward), and dy_n times its transpose summed over samples (filter gradient); the fused packers must agree.
    /// </summary>
    [Theory, Backends(nameof(ParityCases))]
    public void MatchesExplicitIm2colGemm(string backend, string name)
    {
        Use(backend);
        var c = Cases[name];
        var s = c.Shape;
        int chw = s.C * s.H * s.W, kpq = s.K * s.PQ, crs = s.CRS;
        var x = TestData.Uniform(41, s.N * chw); var w = TestData.Uniform(42, s.K * crs); var dy = TestData.Uniform(43, s.N * kpq);
        using var tx = D.FromArray(x, s.N, s.C, s.H, s.W);
        using var tw = D.FromArray(w, s.K, s.C, s.R, s.S);
        using var tdy = D.FromArray(dy, s.N, s.K, s.P, s.Q);
        using var ty = D.Zeros(s.N, s.K, s.P, s.Q);
        using var tdw = D.Zeros(s.K, s.C, s.R, s.S);
        D.Conv2dForward(tx, tw, null, ty, c.P);
        D.Conv2dBackwardFilter(tx, tdy, tdw, null, c.P);

        using var w2 = D.FromArray(w, s.K, crs);
        using var yn = D.Zeros(s.K, s.PQ);
        using var dw = D.Zeros(s.K, crs);
        var expectY = new float[s.N * kpq];
        for (int n = 0; n < s.N; n++)
        {
            using var col = D.FromArray(Im2Col(s, x.AsSpan(n * chw, chw)), crs, s.PQ);
            using var dyn = D.FromArray(dy.AsSpan(n * kpq, kpq).ToArray(), s.K, s.PQ);
            D.Gemm(w2, col, yn);
            yn.ToArray().CopyTo(expectY, n * kpq);
            D.Gemm(dyn, col, dw, transB: true, beta: 1f);
        }
        Tol.ForGemm(crs).AssertClose(ty.ToArray(), TestData.D(expectY), $"{name}: y vs im2col + GEMM");
        Tol.ForGemm(s.N * s.PQ).AssertClose(tdw.ToArray(), TestData.D(dw.ToArray()), $"{name}: dw vs im2col + GEMM");
    }

    /// <summary>col (C R S, P Q) of one sample x: (C, H, W), groups 1.</summary>
    private static float[] Im2Col(in Conv2dShape s, ReadOnlySpan<float> x)
    {
        var col = new float[s.CRS * s.PQ];
        for (int c = 0; c < s.C; c++)
            for (int r = 0; r < s.R; r++)
                for (int t = 0; t < s.S; t++)
                    for (int p = 0; p < s.P; p++)
                        for (int q = 0; q < s.Q; q++)
                        {
                            int h = p * s.StrideH - s.PadH + r * s.DilH, v = q * s.StrideW - s.PadW + t * s.DilW;
                            if (h >= 0 && h < s.H && v >= 0 && v < s.W)
                                col[((c * s.R + r) * s.S + t) * s.PQ + p * s.Q + q] = x[(c * s.H + h) * s.W + v];
                        }
        return col;
    }
}
