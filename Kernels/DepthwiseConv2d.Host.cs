using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace GpuNet.Kernels;

public static partial class DepthwiseConv2dOp
{
    // ---- SIMD host implementation ---------------------------------------------------------------------------------

    // Every plane (n, c) is handled in a zero-padded scratch plane xp: (Hp, Wp), xp[h + ph, w + pw] = x[h, w], so output
    // row p, tap (r, s), dense column j reads xp[p*sh + r*dh, j + s*dw] with no bounds checks. Output columns are
    // computed densely (j = q*sw) in blocks of 16: Qd = round16((Q - 1) sw + 1) dense columns per row.
    private readonly struct Geometry
    {
        public readonly int Hp, Wp, Qd, UsedW, CopyRows, CopyCols;

        public Geometry(in DepthwiseParams a)
        {
            Hp = (a.P - 1) * a.StrideH + (a.R - 1) * a.DilationH + 1;
            Qd = ((a.Q - 1) * a.StrideW + 1 + 15) & ~15;
            Wp = Qd + (a.S - 1) * a.DilationW;
            UsedW = (a.Q - 1) * a.StrideW + (a.S - 1) * a.DilationW + 1;   // padded columns a real output reads
            CopyRows = Math.Clamp(Hp - a.PadH, 0, a.H);                      // input rows / columns inside that region
            CopyCols = Math.Clamp(UsedW - a.PadW, 0, a.W);
        }

        // Stride-1 dx as a gather (see HostBackwardData): a padded dy plane of H + (R-1) dh rows, W computed densely.
        public Geometry(in DepthwiseParams a, bool gather)
        {
            Hp = a.H + (a.R - 1) * a.DilationH;
            Qd = (a.W + 15) & ~15;
            Wp = Qd + (a.S - 1) * a.DilationW;
            UsedW = Wp; CopyRows = 0; CopyCols = 0;
        }
    }

    // Copies plane x: (H, W) into the interior of xp (its border stays as it is: zero).
    private static void FillPadded(in DepthwiseParams a, in Geometry g, ReadOnlySpan<float> x, Span<float> xp)
    {
        for (int h = 0; h < g.CopyRows; h++)
            x.Slice(h * a.W, g.CopyCols).CopyTo(xp.Slice((h + a.PadH) * g.Wp + a.PadW, g.CopyCols));
    }

    private static bool Parallel(in DepthwiseParams a) => (long)a.N * a.C * Math.Max(a.P * a.Q, a.H * a.W) * a.R * a.S >= HostSimd.ParallelThreshold;

    /// <summary>Runs body(state, firstPlane, planeCount) over the N*C planes, about four ranges per pool thread.</summary>
    private static void ForPlanes<TState>(in DepthwiseParams a, TState state, Action<TState, int, int> body)
        => HostSimd.ForRanges(a.N * a.C, Math.Max(1, a.N * a.C / (4 * HostSimd.PoolThreads)), Parallel(a), state, body);

    /// <summary>Host forward; same contract as <see cref="Launch"/> (b: empty segment when !a.HasBias).</summary>
    public static void Host(in DepthwiseParams a, ArraySegment<float> x, ArraySegment<float> w, ArraySegment<float> b, ArraySegment<float> y)
    {
        if (a.N * a.C == 0 || a.P * a.Q == 0) return;
        ForPlanes(a, (a, x, w, b, y), static (t, start, count) =>
        {
            var (a, x, w, b, y) = t;
            var g = new Geometry(a);
            using var frame = HostPool.Enter();
            var xp = HostPool.Floats(g.Hp * g.Wp);
            var dense = HostPool.Floats(g.Qd);
            int hw = a.H * a.W, pq = a.P * a.Q, rs = a.R * a.S;
            for (int nc = start; nc < start + count; nc++)
            {
                int c = nc % a.C;
                FillPadded(a, g, x.AsSpan(nc * hw, hw), xp);
                var wc = w.AsSpan(c * rs, rs);
                float bias = a.HasBias != 0 ? b[c] : 0f;
                var yPlane = y.AsSpan(nc * pq, pq);
                for (int p = 0; p < a.P; p++)
                {
                    var yRow = yPlane.Slice(p * a.Q, a.Q);
                    ForwardRow(a, g, xp.Slice(p * a.StrideH * g.Wp), wc, bias, dense);
                    if (a.StrideW == 1) dense[..a.Q].CopyTo(yRow);
                    else for (int q = 0; q < a.Q; q++) yRow[q] = dense[q * a.StrideW];
                }
            }
        });
    }

    // dense[j] = bias + sum_{r,s} wc[r, s] * xp[r*dh, j + s*dw] for j in [0, Qd); xp starts at the output row's first input row.
    private static void ForwardRow(in DepthwiseParams a, in Geometry g, ReadOnlySpan<float> xp, ReadOnlySpan<float> wc, float bias, Span<float> dense)
    {
        ref float x0 = ref MemoryMarshal.GetReference(xp);
        ref float d0 = ref MemoryMarshal.GetReference(dense);
        int rowStep = a.DilationH * g.Wp, dil = a.DilationW;
        if (a.R == 3 && a.S == 3)
        {
            // 3x3: the nine weights stay in registers.
            var w00 = Vector512.Create(wc[0]); var w01 = Vector512.Create(wc[1]); var w02 = Vector512.Create(wc[2]);
            var w10 = Vector512.Create(wc[3]); var w11 = Vector512.Create(wc[4]); var w12 = Vector512.Create(wc[5]);
            var w20 = Vector512.Create(wc[6]); var w21 = Vector512.Create(wc[7]); var w22 = Vector512.Create(wc[8]);
            for (int j = 0; j < g.Qd; j += 16)
            {
                ref float r0 = ref Unsafe.Add(ref x0, j);
                ref float r1 = ref Unsafe.Add(ref r0, rowStep);
                ref float r2 = ref Unsafe.Add(ref r1, rowStep);
                var acc = Vector512.Create(bias);
                acc = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref r0), w00, acc);
                acc = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref r0, (nuint)dil), w01, acc);
                acc = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref r0, (nuint)(2 * dil)), w02, acc);
                acc = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref r1), w10, acc);
                acc = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref r1, (nuint)dil), w11, acc);
                acc = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref r1, (nuint)(2 * dil)), w12, acc);
                acc = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref r2), w20, acc);
                acc = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref r2, (nuint)dil), w21, acc);
                acc = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref r2, (nuint)(2 * dil)), w22, acc);
                acc.StoreUnsafe(ref d0, (nuint)j);
            }
            return;
        }
        for (int j = 0; j < g.Qd; j += 16)
        {
            var acc = Vector512.Create(bias);
            for (int r = 0; r < a.R; r++)
            {
                ref float row = ref Unsafe.Add(ref x0, r * rowStep + j);
                for (int s = 0; s < a.S; s++)
                    acc = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref row, (nuint)(s * dil)), Vector512.Create(wc[r * a.S + s]), acc);
            }
            acc.StoreUnsafe(ref d0, (nuint)j);
        }
    }

    // dyx[j] = dy[q] at j = q*sw, 0 elsewhere (only the q*sw positions are ever written, so the rest stays zero).
    private static void ExpandRow(int strideW, ReadOnlySpan<float> dyRow, Span<float> dyx)
    {
        if (strideW == 1) dyRow.CopyTo(dyx);
        else for (int q = 0; q < dyRow.Length; q++) dyx[q * strideW] = dyRow[q];
    }

    /// <summary>Host backward data (dx overwritten); same contract as <see cref="LaunchBackwardData"/>.</summary>
    public static void HostBackwardData(in DepthwiseParams a, ArraySegment<float> dy, ArraySegment<float> w, ArraySegment<float> dx)
    {
        if (a.N * a.C == 0 || a.H * a.W == 0) return;
        if (a.StrideH == 1 && a.StrideW == 1)
        {
            ForPlanes(a, (a, dy, w, dx), static (t, start, count) => GatherPlanes(t.a, t.dy, t.w, t.dx, start, count));
            return;
        }
        ForPlanes(a, (a, dy, w, dx), static (t, start, count) =>
        {
            var (a, dy, w, dx) = t;
            var g = new Geometry(a);
            using var frame = HostPool.Enter();
            var dxp = HostPool.Floats(g.Hp * g.Wp);
            var dyx = HostPool.Floats(g.Qd);
            int hw = a.H * a.W, pq = a.P * a.Q, rs = a.R * a.S;
            for (int nc = start; nc < start + count; nc++)
            {
                int c = nc % a.C;
                var wc = w.AsSpan(c * rs, rs);
                dxp.Clear();
                var dyPlane = dy.AsSpan(nc * pq, pq);
                for (int p = 0; p < a.P; p++)
                {
                    ExpandRow(a.StrideW, dyPlane.Slice(p * a.Q, a.Q), dyx);
                    ScatterRow(a, g, dyx, wc, dxp.Slice(p * a.StrideH * g.Wp));
                }
                // dx[h, w] = dxp[h + ph, w + pw] inside the region outputs touch, 0 outside.
                var dxPlane = dx.AsSpan(nc * hw, hw);
                for (int h = 0; h < a.H; h++)
                {
                    var row = dxPlane.Slice(h * a.W, a.W);
                    int cols = h < g.CopyRows ? g.CopyCols : 0;
                    if (cols > 0) dxp.Slice((h + a.PadH) * g.Wp + a.PadW, cols).CopyTo(row);
                    row[cols..].Clear();
                }
            }
        });
    }

    // Stride 1: dx[h, w] = sum_{r,s} w[R-1-r, S-1-s] * dyp[h + r*dh, w + s*dw], a forward correlation with the flipped
    // filter over dy placed at dyp[p + oh, q + ow], oh = (R-1) dh - ph, ow = (S-1) dw - pw. dy rows/columns that fall
    // outside dyp (oh or ow &lt; 0: padding wider than the dilated filter) read only padding, so they feed no dx.
    private static void GatherPlanes(in DepthwiseParams a, ArraySegment<float> dy, ArraySegment<float> w, ArraySegment<float> dx, int start, int count)
    {
        var g = new Geometry(a, gather: true);
        using var frame = HostPool.Enter();
        var dyp = HostPool.Floats(g.Hp * g.Wp);
        var dense = HostPool.Floats(g.Qd);
        int hw = a.H * a.W, pq = a.P * a.Q, rs = a.R * a.S;
        var flipped = HostPool.Floats(rs);
        int oh = (a.R - 1) * a.DilationH - a.PadH, ow = (a.S - 1) * a.DilationW - a.PadW;
        int p0 = Math.Max(0, -oh), p1 = Math.Min(a.P, g.Hp - oh);
        int q0 = Math.Max(0, -ow), q1 = Math.Min(a.Q, g.Wp - ow);
        for (int nc = start; nc < start + count; nc++)
        {
            var wc = w.AsSpan(nc % a.C * rs, rs);
            for (int k = 0; k < rs; k++) flipped[k] = wc[rs - 1 - k];
            var dyPlane = dy.AsSpan(nc * pq, pq);
            if (q1 > q0)
                for (int p = p0; p < p1; p++)
                    dyPlane.Slice(p * a.Q + q0, q1 - q0).CopyTo(dyp.Slice((p + oh) * g.Wp + q0 + ow));
            var dxPlane = dx.AsSpan(nc * hw, hw);
            for (int h = 0; h < a.H; h++)
            {
                ForwardRow(a, g, dyp.Slice(h * g.Wp), flipped, 0f, dense);
                dense[..a.W].CopyTo(dxPlane.Slice(h * a.W, a.W));
            }
        }
    }

    // dxp[r*dh, j + s*dw] += wc[r, s] * dyx[j] for j in [0, Qd); dxp starts at the output row's first input row.
    private static void ScatterRow(in DepthwiseParams a, in Geometry g, ReadOnlySpan<float> dyx, ReadOnlySpan<float> wc, Span<float> dxp)
    {
        ref float d0 = ref MemoryMarshal.GetReference(dxp);
        ref float g0 = ref MemoryMarshal.GetReference(dyx);
        int rowStep = a.DilationH * g.Wp, dil = a.DilationW;
        for (int r = 0; r < a.R; r++)
        {
            ref float row = ref Unsafe.Add(ref d0, r * rowStep);
            if (a.S == 3)
            {
                var w0 = Vector512.Create(wc[r * 3]); var w1 = Vector512.Create(wc[r * 3 + 1]); var w2 = Vector512.Create(wc[r * 3 + 2]);
                for (int j = 0; j < g.Qd; j += 16)
                {
                    var v = Vector512.LoadUnsafe(ref g0, (nuint)j);
                    ref float o = ref Unsafe.Add(ref row, j);
                    Vector512.FusedMultiplyAdd(v, w0, Vector512.LoadUnsafe(ref o)).StoreUnsafe(ref o);
                    Vector512.FusedMultiplyAdd(v, w1, Vector512.LoadUnsafe(ref o, (nuint)dil)).StoreUnsafe(ref o, (nuint)dil);
                    Vector512.FusedMultiplyAdd(v, w2, Vector512.LoadUnsafe(ref o, (nuint)(2 * dil))).StoreUnsafe(ref o, (nuint)(2 * dil));
                }
                continue;
            }
            for (int s = 0; s < a.S; s++)
            {
                var ws = Vector512.Create(wc[r * a.S + s]);
                ref float o = ref Unsafe.Add(ref row, s * dil);
                for (int j = 0; j < g.Qd; j += 16)
                    Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref g0, (nuint)j), ws, Vector512.LoadUnsafe(ref o, (nuint)j)).StoreUnsafe(ref o, (nuint)j);
            }
        }
    }

    /// <summary>
    /// Host backward filter (dw, db accumulate); same contract as <see cref="LaunchBackwardFilter"/> (db: empty segment
    /// when !a.HasBias). Channels run in parallel; each sums its planes n = 0..N-1 in order (per plane in float vector
    /// lanes, across planes in float64), so the result does not depend on the thread count.
    /// </summary>
    public static void HostBackwardFilter(in DepthwiseParams a, ArraySegment<float> x, ArraySegment<float> dy, ArraySegment<float> dw, ArraySegment<float> db)
    {
        if (a.C == 0) return;
        HostSimd.For(a.C, Parallel(a), (a, x, dy, dw, db), static (t, c) =>
        {
            var (a, x, dy, dw, db) = t;
            var g = new Geometry(a);
            int hw = a.H * a.W, pq = a.P * a.Q, rs = a.R * a.S;
            using var frame = HostPool.Enter();
            var xp = HostPool.Floats(g.Hp * g.Wp);
            var dyx = HostPool.Floats(g.Qd);
            var lanes = HostPool.Floats(rs * 16);
            var sums = HostPool.Doubles(rs);
            double bias = 0;
            for (int n = 0; n < a.N; n++)
            {
                int nc = n * a.C + c;
                FillPadded(a, g, x.AsSpan(nc * hw, hw), xp);
                var dyPlane = dy.AsSpan(nc * pq, pq);
                if (a.HasBias != 0) bias += System.Numerics.Tensors.TensorPrimitives.Sum(dyPlane);
                lanes.Clear();
                for (int p = 0; p < a.P; p++)
                {
                    ExpandRow(a.StrideW, dyPlane.Slice(p * a.Q, a.Q), dyx);
                    FilterRow(a, g, dyx, xp.Slice(p * a.StrideH * g.Wp), lanes);
                }
                for (int k = 0; k < rs; k++) sums[k] += Vector512.Sum(Vector512.Create<float>(lanes.Slice(k * 16, 16)));
            }
            var dwc = dw.AsSpan(c * rs, rs);
            for (int k = 0; k < rs; k++) dwc[k] += (float)sums[k];
            if (a.HasBias != 0) db[c] += (float)bias;
        });
    }

    // lanes[(r*S + s)*16 + l] += sum over j = l mod 16 of dyx[j] * xp[r*dh, j + s*dw]; xp starts at the row's first input row.
    private static void FilterRow(in DepthwiseParams a, in Geometry g, ReadOnlySpan<float> dyx, ReadOnlySpan<float> xp, Span<float> lanes)
    {
        ref float x0 = ref MemoryMarshal.GetReference(xp);
        ref float g0 = ref MemoryMarshal.GetReference(dyx);
        ref float l0 = ref MemoryMarshal.GetReference(lanes);
        int rowStep = a.DilationH * g.Wp, dil = a.DilationW;
        for (int r = 0; r < a.R; r++)
        {
            ref float row = ref Unsafe.Add(ref x0, r * rowStep);
            if (a.S == 3)
            {
                ref float l = ref Unsafe.Add(ref l0, r * 48);
                var acc0 = Vector512.LoadUnsafe(ref l); var acc1 = Vector512.LoadUnsafe(ref l, 16); var acc2 = Vector512.LoadUnsafe(ref l, 32);
                for (int j = 0; j < g.Qd; j += 16)
                {
                    var v = Vector512.LoadUnsafe(ref g0, (nuint)j);
                    ref float o = ref Unsafe.Add(ref row, j);
                    acc0 = Vector512.FusedMultiplyAdd(v, Vector512.LoadUnsafe(ref o), acc0);
                    acc1 = Vector512.FusedMultiplyAdd(v, Vector512.LoadUnsafe(ref o, (nuint)dil), acc1);
                    acc2 = Vector512.FusedMultiplyAdd(v, Vector512.LoadUnsafe(ref o, (nuint)(2 * dil)), acc2);
                }
                acc0.StoreUnsafe(ref l); acc1.StoreUnsafe(ref l, 16); acc2.StoreUnsafe(ref l, 32);
                continue;
            }
            for (int s = 0; s < a.S; s++)
            {
                ref float l = ref Unsafe.Add(ref l0, (r * a.S + s) * 16);
                ref float o = ref Unsafe.Add(ref row, s * dil);
                var acc = Vector512.LoadUnsafe(ref l);
                for (int j = 0; j < g.Qd; j += 16)
                    acc = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref g0, (nuint)j), Vector512.LoadUnsafe(ref o, (nuint)j), acc);
                acc.StoreUnsafe(ref l);
            }
        }
    }
}
