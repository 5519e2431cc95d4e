using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;

namespace GpuNet.Kernels;

/// <summary>
/// Division of a non-negative int by a divisor fixed on the host, as a multiply-high, an add and a shift (the
/// round-up method of Granlund and Montgomery): with l = ceil(log2 d) and m = floor(2^32 (2^l - d) / d) + 1,
/// n / d = (mulhi(n, m) + n) &gt;&gt; l for every 0 &lt;= n &lt; 2^31 (the sum stays below 2^32). Kernels use it where a
/// runtime <c>/</c> or <c>%</c> would cost a ~20-instruction division sequence per element.
/// </summary>
public readonly struct FastDivmod
{
    /// <summary>The divisor d (&gt;= 1).</summary>
    public readonly int Divisor;
    /// <summary>m = floor(2^32 (2^l - d) / d) + 1.</summary>
    public readonly uint Magic;
    /// <summary>l = ceil(log2 d).</summary>
    public readonly int Shift;

    /// <summary>Precomputes the division by <paramref name="divisor"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="divisor"/> is below 1.</exception>
    public FastDivmod(int divisor)
    {
        if (divisor < 1) throw new ArgumentOutOfRangeException(nameof(divisor), divisor, $"FastDivmod: the divisor must be >= 1, got {divisor}");
        int l = 0;
        while ((1L << l) < divisor) l++;
        Divisor = divisor;
        Shift = l;
        Magic = (uint)((1UL << 32) * ((1UL << l) - (ulong)divisor) / (ulong)divisor + 1);
    }

    /// <summary>n / d for 0 &lt;= n &lt; 2^31.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Div(int n)
    {
        uint hi = (uint)(((ulong)(uint)n * Magic) >> 32);
        return (int)((hi + (uint)n) >> Shift);
    }
}

/// <summary>
/// Scalar arguments of the implicit-GEMM convolution kernels: the shape, its derived sizes and the fast divisions the
/// kernels need, built once on the host by <see cref="Create"/>.
/// </summary>
public readonly struct ImplicitConvArgs
{
    /// <summary>The convolution.</summary>
    public readonly Conv2dShape S;
    /// <summary>C / Groups, K / Groups, R S, C/Groups R S, K/Groups R S.</summary>
    public readonly int Cg, Kg, RS, CgRS, KgRS;
    /// <summary>P Q, H W, N P Q, N H W.</summary>
    public readonly int PQ, HW, NPQ, NHW;
    /// <summary>1 when a bias is added (forward) or its gradient accumulated (filter gradient).</summary>
    public readonly int HasBias;
    /// <summary>Filter gradient: K slices of the N P Q reduction (1: no workspace, accumulate into dw directly).</summary>
    public readonly int Splits;
    /// <summary>Filter gradient: K tiles (of <see cref="Conv2dOp.BlockK"/>) per split.</summary>
    public readonly int TilesPerSplit;
    /// <summary>Filter gradient: floats per split in the workspace, K CgRS (dw) + K (db).</summary>
    public readonly int SplitStride;
    /// <summary>Divisions by R S, S, P Q, Q, H W, W, StrideH, StrideW.</summary>
    public readonly FastDivmod DivRS, DivS, DivPQ, DivQ, DivHW, DivW, DivStrideH, DivStrideW;

    private ImplicitConvArgs(in Conv2dShape s, bool hasBias, int splits, int tilesPerSplit)
    {
        S = s;
        Cg = s.Cg; Kg = s.Kg; RS = s.R * s.S; CgRS = s.CgRS; KgRS = s.Kg * s.R * s.S;
        PQ = s.PQ; HW = s.H * s.W; NPQ = s.N * s.PQ; NHW = s.N * s.H * s.W;
        HasBias = hasBias ? 1 : 0;
        Splits = splits; TilesPerSplit = tilesPerSplit; SplitStride = s.K * s.CgRS + s.K;
        DivRS = new(RS); DivS = new(s.S); DivPQ = new(Math.Max(PQ, 1)); DivQ = new(Math.Max(s.Q, 1));
        DivHW = new(HW); DivW = new(s.W); DivStrideH = new(s.StrideH); DivStrideW = new(s.StrideW);
    }

    /// <summary>Arguments for <paramref name="s"/>; <paramref name="splits"/> and the tiles per split only matter to the filter gradient.</summary>
    public static ImplicitConvArgs Create(in Conv2dShape s, bool hasBias, int splits = 1, int tilesPerSplit = 0)
        => new(s, hasBias, splits, tilesPerSplit);
}

// Implicit GEMM on accelerators: every pass is one GEMM over the whole batch whose operands are gathered from the
// tensors as the tiles are loaded, so no im2col buffer exists and each pass is one launch (the filter gradient two
// when it splits its reduction). Per group g (grid z):
//   forward          y (Kg, N P Q)      = W_g (Kg, CgRS)   X_g (CgRS, N P Q)     rows k, columns (n, p, q), depth (c, r, s)
//   backward data    dx (Cg, N H W)     = W_g^T (Cg, KgRS) DY_g (KgRS, N H W)    rows c, columns (n, h, w), depth (k, r, s)
//   backward filter  dW_g (Kg, CgRS)   += DY_g (Kg, N P Q) X_g^T (N P Q, CgRS)   rows k, columns (c, r, s), depth (n, p, q)
// The loop nest is the GEMM's: a 64x64 block tile, 16-deep K slices double-buffered in shared memory, a strided 4x4
// thread tile. The loads are arranged so that the divisions happen per thread or per K slice, never per element:
// the operand whose K index is the fast lane (A: kk = tid & 15) decomposes one K index per slice, and the operand
// whose columns are fixed per thread (B: columns tid & 15 + 16 i) decomposes its 4 columns once, before the K loop,
// and its one K row (tid >> 4) per slice. All decompositions are FastDivmod multiply-shifts.
public static partial class Conv2dOp
{
    /// <summary>Rows of the output matrix per thread group (block tile, M).</summary>
    public const int BlockM = 64;
    /// <summary>Columns of the output matrix per thread group (block tile, N).</summary>
    public const int BlockN = 64;
    /// <summary>Depth of one K slice in shared memory.</summary>
    public const int BlockK = 16;
    /// <summary>Threads per group: 16 x 16, each owning a strided 4x4 thread tile.</summary>
    public const int GroupSize = 256;
    /// <summary>Thread groups the filter gradient aims for before it splits its N P Q reduction (2 per SM of a 128-SM GPU).</summary>
    public const int TargetBlocks = 256;
    /// <summary>Fewest K tiles a split of the filter gradient's reduction gets.</summary>
    public const int MinTilesPerSplit = 4;

    private const int Threads1D = 16;                 // threads along M and along N
    // Shared rows: As[kk][m] padded to 66 (the A store spreads kk 0..15 x 2 rows over 32 banks), Bs[kk][j] padded to
    // 80 (the B store's two kk rows of a warp land in opposite bank halves).
    private const int StrideA = BlockM + 2;
    private const int StrideB = BlockN + 16;
    private const int TileA = BlockK * StrideA;
    private const int TileB = BlockK * StrideB;
    // A row or column offset that fails every bounds test, even after adding a tap offset or another Outside. Positive:
    // ILGPU 1.5.3's OpenCL backend prints a negative constant in a select as an unsigned literal (a clang warning).
    private const int Outside = int.MaxValue / 2;

    /// <summary>The 16 accumulators of a 4x4 thread tile (rows ty + 16 r, columns tx + 16 c).</summary>
    private struct Acc
    {
        public float C00, C01, C02, C03, C10, C11, C12, C13, C20, C21, C22, C23, C30, C31, C32, C33;

        /// <summary>Multiplies one K slice: fa = As[buf] from this thread's row, fb = Bs[buf] from its column.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Slice(ArrayView<float> sa, ArrayView<float> sb, int pa, int pb)
        {
            for (int kk = 0; kk < BlockK; kk += 2)
            {
                // Sub-views with constant offsets: the backend folds those into the shared loads' immediates.
                var fa = sa.SubView(pa, StrideA + 3 * Threads1D + 1);
                var fb = sb.SubView(pb, StrideB + 3 * Threads1D + 1);
                float a0 = fa[0], a1 = fa[Threads1D], a2 = fa[2 * Threads1D], a3 = fa[3 * Threads1D];
                float b0 = fb[0], b1 = fb[Threads1D], b2 = fb[2 * Threads1D], b3 = fb[3 * Threads1D];
                C00 += a0 * b0; C01 += a0 * b1; C02 += a0 * b2; C03 += a0 * b3;
                C10 += a1 * b0; C11 += a1 * b1; C12 += a1 * b2; C13 += a1 * b3;
                C20 += a2 * b0; C21 += a2 * b1; C22 += a2 * b2; C23 += a2 * b3;
                C30 += a3 * b0; C31 += a3 * b1; C32 += a3 * b2; C33 += a3 * b3;
                a0 = fa[StrideA]; a1 = fa[StrideA + Threads1D]; a2 = fa[StrideA + 2 * Threads1D]; a3 = fa[StrideA + 3 * Threads1D];
                b0 = fb[StrideB]; b1 = fb[StrideB + Threads1D]; b2 = fb[StrideB + 2 * Threads1D]; b3 = fb[StrideB + 3 * Threads1D];
                C00 += a0 * b0; C01 += a0 * b1; C02 += a0 * b2; C03 += a0 * b3;
                C10 += a1 * b0; C11 += a1 * b1; C12 += a1 * b2; C13 += a1 * b3;
                C20 += a2 * b0; C21 += a2 * b1; C22 += a2 * b2; C23 += a2 * b3;
                C30 += a3 * b0; C31 += a3 * b1; C32 += a3 * b2; C33 += a3 * b3;
                pa += 2 * StrideA; pb += 2 * StrideB;
            }
        }
    }

    /// <summary>Stores a thread's 4 A values (rows (tid &gt;&gt; 4) + 16 i, depth tid &amp; 15) and 4 B values (depth tid &gt;&gt; 4, columns (tid &amp; 15) + 16 i) into buffer buf.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(ArrayView<float> sa, ArrayView<float> sb, int buf, int tid,
        float a0, float a1, float a2, float a3, float b0, float b1, float b2, float b3)
    {
        var ta = sa.SubView(buf * TileA + (tid & 15) * StrideA + (tid >> 4), 3 * Threads1D + 1);
        ta[0] = a0; ta[Threads1D] = a1; ta[2 * Threads1D] = a2; ta[3 * Threads1D] = a3;
        var tb = sb.SubView(buf * TileB + (tid >> 4) * StrideB + (tid & 15), 3 * Threads1D + 1);
        tb[0] = b0; tb[Threads1D] = b1; tb[2 * Threads1D] = b2; tb[3 * Threads1D] = b3;
    }

    /// <summary>x[o] when 0 &lt;= h &lt; H and 0 &lt;= w &lt; W, else 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Tap(ArrayView<float> x, int o, int h, int w, int height, int width)
        => h >= 0 && h < height && w >= 0 && w < width ? x[o] : 0f;

    // ---- forward ----------------------------------------------------------------------------------------------------

    /// <summary>
    /// y = conv(x, w) + b for the whole batch. Grid (ceil(N P Q / 64), ceil(Kg / 64), Groups) of <see cref="GroupSize"/>
    /// threads. x: (N, C, H, W), w: (K, Cg, R, S), b: (K), read when a.HasBias (else any view), y: (N, K, P, Q), overwritten.
    /// </summary>
    [GpuKernel(ExplicitlyGrouped = true)]
    public static void ForwardKernel(ImplicitConvArgs a, ArrayView<float> x, ArrayView<float> w, ArrayView<float> b, ArrayView<float> y)
    {
        var sa = SharedMemory.Allocate<float>(2 * TileA);
        var sb = SharedMemory.Allocate<float>(2 * TileB);
        var s = a.S;
        int tid = Group.IdxX, lane = tid & 15, row = tid >> 4;
        int col0 = Grid.IdxX * BlockN, row0 = Grid.IdxY * BlockM, g = Grid.IdxZ;
        int depth = a.CgRS, tiles = (depth + BlockK - 1) / BlockK;

        // A = w_g (Kg, CgRS): rows row0 + row + 16 i, depth lane.
        int rowsLeft = a.Kg - row0 - row;
        int aBase = (g * a.Kg + row0 + row) * depth + lane, aStep = Threads1D * depth;

        // B = x gathered, columns j = col0 + lane + 16 i = (n, p, q): offset of tap (0, 0) and its top-left corner.
        int xg = g * a.Cg * a.HW;
        ColumnOfOutput(a, col0 + lane, xg, out int xo0, out int h00, out int w00);
        ColumnOfOutput(a, col0 + lane + 16, xg, out int xo1, out int h01, out int w01);
        ColumnOfOutput(a, col0 + lane + 32, xg, out int xo2, out int h02, out int w02);
        ColumnOfOutput(a, col0 + lane + 48, xg, out int xo3, out int h03, out int w03);

        var acc = default(Acc);
        float a0 = 0f, a1 = 0f, a2 = 0f, a3 = 0f, b0 = 0f, b1 = 0f, b2 = 0f, b3 = 0f;
        // Iteration t stores slice t - 1 (loaded last iteration), loads slice t into registers, then multiplies slice
        // t - 1: the loads' latency hides behind the FMAs. Buffer parity t - 1: the store comes after the reads of slice
        // t - 3 (same buffer), which finished before the previous iteration's barrier.
        for (int t = 0; t <= tiles; t++)
        {
            int buf = (t - 1) & 1;
            if (t > 0) Store(sa, sb, buf, tid, a0, a1, a2, a3, b0, b1, b2, b3);
            Group.Barrier();                  // outside the branch: PoCL 6 miscompiles barriers in branches
            if (t < tiles)
            {
                int k0 = t * BlockK;
                bool kaOk = k0 + lane < depth;
                a0 = kaOk && rowsLeft > 0 ? w[aBase + k0] : 0f;
                a1 = kaOk && rowsLeft > 16 ? w[aBase + aStep + k0] : 0f;
                a2 = kaOk && rowsLeft > 32 ? w[aBase + 2 * aStep + k0] : 0f;
                a3 = kaOk && rowsLeft > 48 ? w[aBase + 3 * aStep + k0] : 0f;
                // Depth index (c, r, s) of B row k0 + row.
                int kb = k0 + row, dh = Outside, dw = 0, off = 0;
                if (kb < depth)
                {
                    int c = a.DivRS.Div(kb), rs = kb - c * a.RS;
                    int r = a.DivS.Div(rs), sx = rs - r * s.S;
                    dh = r * s.DilH; dw = sx * s.DilW;
                    off = c * a.HW + dh * s.W + dw;
                }
                b0 = Tap(x, xo0 + off, h00 + dh, w00 + dw, s.H, s.W);
                b1 = Tap(x, xo1 + off, h01 + dh, w01 + dw, s.H, s.W);
                b2 = Tap(x, xo2 + off, h02 + dh, w02 + dw, s.H, s.W);
                b3 = Tap(x, xo3 + off, h03 + dh, w03 + dw, s.H, s.W);
            }
            if (t > 0) acc.Slice(sa, sb, buf * TileA + row, buf * TileB + lane);
        }

        // Epilogue: y[n, g Kg + m, p, q] = acc + b[g Kg + m]; thread (row, lane) owns rows row + 16 r, columns lane + 16 c.
        int j0 = col0 + lane;
        int y0 = OutputColumn(a, j0), y1 = OutputColumn(a, j0 + 16), y2 = OutputColumn(a, j0 + 32), y3 = OutputColumn(a, j0 + 48);
        for (int r = 0; r < 4; r++)
        {
            int m = row0 + row + Threads1D * r;
            if (m >= a.Kg) break;
            int k = g * a.Kg + m, ro = k * a.PQ;
            float bias = a.HasBias != 0 ? b[k] : 0f;
            float v0 = r == 0 ? acc.C00 : r == 1 ? acc.C10 : r == 2 ? acc.C20 : acc.C30;
            float v1 = r == 0 ? acc.C01 : r == 1 ? acc.C11 : r == 2 ? acc.C21 : acc.C31;
            float v2 = r == 0 ? acc.C02 : r == 1 ? acc.C12 : r == 2 ? acc.C22 : acc.C32;
            float v3 = r == 0 ? acc.C03 : r == 1 ? acc.C13 : r == 2 ? acc.C23 : acc.C33;
            if (j0 < a.NPQ) y[y0 + ro] = v0 + bias;
            if (j0 + 16 < a.NPQ) y[y1 + ro] = v1 + bias;
            if (j0 + 32 < a.NPQ) y[y2 + ro] = v2 + bias;
            if (j0 + 48 < a.NPQ) y[y3 + ro] = v3 + bias;
        }
    }

    /// <summary>
    /// Column j = (n, p, q) of the forward's gathered X: xo = offset in x of tap (0, 0) of channel g Cg (may lie in the
    /// padding), (h0, w0) its position; a column past N P Q gets h0 = Outside so every tap reads 0.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ColumnOfOutput(in ImplicitConvArgs a, int j, int xg, out int xo, out int h0, out int w0)
    {
        var s = a.S;
        int n = a.DivPQ.Div(j), pq = j - n * a.PQ;
        int p = a.DivQ.Div(pq), q = pq - p * s.Q;
        int h = p * s.StrideH - s.PadH;
        w0 = q * s.StrideW - s.PadW;
        xo = n * s.C * a.HW + xg + h * s.W + w0;
        h0 = j < a.NPQ ? h : Outside;
    }

    /// <summary>Offset n K P Q + p Q + q of output column j = (n, p, q) in y (channel 0).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int OutputColumn(in ImplicitConvArgs a, int j)
    {
        int n = a.DivPQ.Div(j);
        return n * a.S.K * a.PQ + (j - n * a.PQ);
    }

    // ---- backward data ----------------------------------------------------------------------------------------------

    /// <summary>
    /// dx = the adjoint of the convolution applied to dy, for the whole batch, gathering (no atomics, dx overwritten):
    /// dx[n, g Cg + c, h, w] = sum over (k, r, s) with h + Ph - r Dh = p Sh and w + Pw - s Dw = q Sw exactly, 0 &lt;= p &lt; P,
    /// 0 &lt;= q &lt; Q, of w[g Kg + k, c, r, s] dy[n, g Kg + k, p, q]. Grid (ceil(N H W / 64), ceil(Cg / 64), Groups).
    /// dy: (N, K, P, Q), w: (K, Cg, R, S), dx: (N, C, H, W).
    /// </summary>
    [GpuKernel(ExplicitlyGrouped = true)]
    public static void BackwardDataKernel(ImplicitConvArgs a, ArrayView<float> dy, ArrayView<float> w, ArrayView<float> dx)
    {
        var sa = SharedMemory.Allocate<float>(2 * TileA);
        var sb = SharedMemory.Allocate<float>(2 * TileB);
        var s = a.S;
        int tid = Group.IdxX, lane = tid & 15, row = tid >> 4;
        int col0 = Grid.IdxX * BlockN, row0 = Grid.IdxY * BlockM, g = Grid.IdxZ;
        int depth = a.KgRS, tiles = (depth + BlockK - 1) / BlockK;

        // A = W_g^T (Cg, KgRS): A[c, (k, rs)] = w[(g Kg + k) CgRS + c RS + rs]; rows row0 + row + 16 i, depth lane.
        int rowsLeft = a.Cg - row0 - row;
        int aRow = (row0 + row) * a.RS, aStep = Threads1D * a.RS;

        // B = dy gathered, columns j = col0 + lane + 16 i = (n, h, w): n K P Q and (h + Ph, w + Pw).
        ColumnOfInput(a, col0 + lane, out int do0, out int hh0, out int ww0);
        ColumnOfInput(a, col0 + lane + 16, out int do1, out int hh1, out int ww1);
        ColumnOfInput(a, col0 + lane + 32, out int do2, out int hh2, out int ww2);
        ColumnOfInput(a, col0 + lane + 48, out int do3, out int hh3, out int ww3);
        int dyg = g * a.Kg * a.PQ;

        var acc = default(Acc);
        float a0 = 0f, a1 = 0f, a2 = 0f, a3 = 0f, b0 = 0f, b1 = 0f, b2 = 0f, b3 = 0f;
        for (int t = 0; t <= tiles; t++)      // the forward's pipeline: store t - 1, load t, multiply t - 1
        {
            int buf = (t - 1) & 1;
            if (t > 0) Store(sa, sb, buf, tid, a0, a1, a2, a3, b0, b1, b2, b3);
            Group.Barrier();                  // outside the branch: PoCL 6 miscompiles barriers in branches
            if (t < tiles)
            {
                int k0 = t * BlockK;
                // Depth index (k, rs) of A column k0 + lane.
                int ka = k0 + lane;
                a0 = 0f; a1 = 0f; a2 = 0f; a3 = 0f;
                if (ka < depth)
                {
                    int k = a.DivRS.Div(ka), rs = ka - k * a.RS;
                    int o = (g * a.Kg + k) * a.CgRS + rs + aRow;
                    if (rowsLeft > 0) a0 = w[o];
                    if (rowsLeft > 16) a1 = w[o + aStep];
                    if (rowsLeft > 32) a2 = w[o + 2 * aStep];
                    if (rowsLeft > 48) a3 = w[o + 3 * aStep];
                }
                // Depth index (k, r, s) of B row k0 + row; past the depth, dh pushes every tap out of range.
                int kb = k0 + row, dh = Outside, dw = 0, ko = 0;
                if (kb < depth)
                {
                    int k = a.DivRS.Div(kb), rs = kb - k * a.RS;
                    int r = a.DivS.Div(rs), sx = rs - r * s.S;
                    dh = r * s.DilH; dw = sx * s.DilW;
                    ko = dyg + k * a.PQ;
                }
                b0 = OutputTap(a, dy, do0 + ko, hh0 - dh, ww0 - dw);
                b1 = OutputTap(a, dy, do1 + ko, hh1 - dh, ww1 - dw);
                b2 = OutputTap(a, dy, do2 + ko, hh2 - dh, ww2 - dw);
                b3 = OutputTap(a, dy, do3 + ko, hh3 - dh, ww3 - dw);
            }
            if (t > 0) acc.Slice(sa, sb, buf * TileA + row, buf * TileB + lane);
        }

        // Epilogue: dx[n, g Cg + c, h, w] = acc.
        int j0 = col0 + lane;
        int x0 = InputColumn(a, j0, g), x1 = InputColumn(a, j0 + 16, g), x2 = InputColumn(a, j0 + 32, g), x3 = InputColumn(a, j0 + 48, g);
        for (int r = 0; r < 4; r++)
        {
            int m = row0 + row + Threads1D * r;
            if (m >= a.Cg) break;
            int ro = m * a.HW;
            float v0 = r == 0 ? acc.C00 : r == 1 ? acc.C10 : r == 2 ? acc.C20 : acc.C30;
            float v1 = r == 0 ? acc.C01 : r == 1 ? acc.C11 : r == 2 ? acc.C21 : acc.C31;
            float v2 = r == 0 ? acc.C02 : r == 1 ? acc.C12 : r == 2 ? acc.C22 : acc.C32;
            float v3 = r == 0 ? acc.C03 : r == 1 ? acc.C13 : r == 2 ? acc.C23 : acc.C33;
            if (j0 < a.NHW) dx[x0 + ro] = v0;
            if (j0 + 16 < a.NHW) dx[x1 + ro] = v1;
            if (j0 + 32 < a.NHW) dx[x2 + ro] = v2;
            if (j0 + 48 < a.NHW) dx[x3 + ro] = v3;
        }
    }

    /// <summary>
    /// Column j = (n, h, w) of the backward data's gathered DY: dyo = n K P Q, (hh, ww) = (h + Ph, w + Pw); a column
    /// past N H W gets hh &lt; -Outside / 2 so every tap reads 0.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ColumnOfInput(in ImplicitConvArgs a, int j, out int dyo, out int hh, out int ww)
    {
        var s = a.S;
        int n = a.DivHW.Div(j), hw = j - n * a.HW;
        int h = a.DivW.Div(hw), wi = hw - h * s.W;
        hh = h + s.PadH - (j < a.NHW ? 0 : Outside);
        ww = wi + s.PadW;
        dyo = n * s.K * a.PQ;
    }

    /// <summary>Offset (n C + g Cg) H W + h W + w of input column j = (n, h, w) in dx (channel g Cg).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int InputColumn(in ImplicitConvArgs a, int j, int g)
    {
        int n = a.DivHW.Div(j);
        return (n * a.S.C + g * a.Cg) * a.HW + (j - n * a.HW);
    }

    /// <summary>dy[o + p Q + q] for hp = p StrideH, wq = q StrideW exactly with 0 &lt;= p &lt; P, 0 &lt;= q &lt; Q, else 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float OutputTap(in ImplicitConvArgs a, ArrayView<float> dy, int o, int hp, int wq)
    {
        if (hp < 0 || wq < 0) return 0f;
        int p = a.DivStrideH.Div(hp), q = a.DivStrideW.Div(wq);
        var s = a.S;
        return p * s.StrideH == hp && q * s.StrideW == wq && p < s.P && q < s.Q ? dy[o + p * s.Q + q] : 0f;
    }

    // ---- backward filter --------------------------------------------------------------------------------------------

    /// <summary>
    /// dw += dy x^T over the batch (and db += row sums of dy when a.HasBias), K dimension N P Q cut into a.Splits slices
    /// of a.TilesPerSplit tiles. Grid (ceil(CgRS / 64), ceil(Kg / 64), Groups Splits): z = g Splits + split. With one
    /// split the tile is added to dw (and db) directly; otherwise split z writes its partial tile (and db partial) to
    /// ws[split SplitStride + ...] (every element of the output is written by exactly one group per split) and
    /// <see cref="SplitReduceKernel"/> adds the splits in a fixed order. x: (N, C, H, W), dy: (N, K, P, Q),
    /// dw: (K, Cg, R, S), db: (K) or any view, ws: Splits SplitStride floats or any view.
    /// </summary>
    [GpuKernel(ExplicitlyGrouped = true)]
    public static void BackwardFilterKernel(ImplicitConvArgs a, ArrayView<float> x, ArrayView<float> dy, ArrayView<float> dw,
        ArrayView<float> db, ArrayView<float> ws)
    {
        var sa = SharedMemory.Allocate<float>(2 * TileA);
        var sb = SharedMemory.Allocate<float>(2 * TileB);
        var s = a.S;
        int tid = Group.IdxX, lane = tid & 15, row = tid >> 4;
        int col0 = Grid.IdxX * BlockN, row0 = Grid.IdxY * BlockM, z = Grid.IdxZ;
        int g = z / a.Splits, split = z - g * a.Splits;
        int depth = a.NPQ, tiles = (depth + BlockK - 1) / BlockK;
        int t0 = split * a.TilesPerSplit, t1 = Math.Min(tiles, t0 + a.TilesPerSplit);

        // A = dy_g (Kg, N P Q): rows row0 + row + 16 i, depth lane; db partial sums ride along the loads.
        int rowsLeft = a.Kg - row0 - row;
        int aRow = (g * a.Kg + row0 + row) * a.PQ, aStep = Threads1D * a.PQ;
        float s0 = 0f, s1 = 0f, s2 = 0f, s3 = 0f;

        // B = x gathered, columns (c, r, s) = col0 + lane + 16 i: offset of tap (r, s) of channel g Cg + c and (r Dh, s Dw).
        int xg = g * a.Cg * a.HW;
        ColumnOfFilter(a, col0 + lane, xg, out int xo0, out int dh0, out int dw0);
        ColumnOfFilter(a, col0 + lane + 16, xg, out int xo1, out int dh1, out int dw1);
        ColumnOfFilter(a, col0 + lane + 32, xg, out int xo2, out int dh2, out int dw2);
        ColumnOfFilter(a, col0 + lane + 48, xg, out int xo3, out int dh3, out int dw3);

        var acc = default(Acc);
        float a0 = 0f, a1 = 0f, a2 = 0f, a3 = 0f, b0 = 0f, b1 = 0f, b2 = 0f, b3 = 0f;
        for (int t = t0; t <= t1; t++)        // the forward's pipeline: store t - 1, load t, multiply t - 1
        {
            int buf = (t - 1) & 1;
            if (t > t0) Store(sa, sb, buf, tid, a0, a1, a2, a3, b0, b1, b2, b3);
            Group.Barrier();                  // outside the branch: PoCL 6 miscompiles barriers in branches
            if (t < t1)
            {
                int k0 = t * BlockK;
                // Depth index (n, pq) of A column k0 + lane.
                int ka = k0 + lane;
                a0 = 0f; a1 = 0f; a2 = 0f; a3 = 0f;
                if (ka < depth)
                {
                    int n = a.DivPQ.Div(ka), pq = ka - n * a.PQ;
                    int o = n * s.K * a.PQ + pq + aRow;
                    if (rowsLeft > 0) a0 = dy[o];
                    if (rowsLeft > 16) a1 = dy[o + aStep];
                    if (rowsLeft > 32) a2 = dy[o + 2 * aStep];
                    if (rowsLeft > 48) a3 = dy[o + 3 * aStep];
                }
                s0 += a0; s1 += a1; s2 += a2; s3 += a3;
                // Depth index (n, p, q) of B row k0 + row.
                int kb = k0 + row, h0 = Outside, w0 = 0, xo = 0;
                if (kb < depth)
                {
                    int n = a.DivPQ.Div(kb), pq = kb - n * a.PQ;
                    int p = a.DivQ.Div(pq), q = pq - p * s.Q;
                    h0 = p * s.StrideH - s.PadH; w0 = q * s.StrideW - s.PadW;
                    xo = n * s.C * a.HW + h0 * s.W + w0;
                }
                b0 = Tap(x, xo + xo0, h0 + dh0, w0 + dw0, s.H, s.W);
                b1 = Tap(x, xo + xo1, h0 + dh1, w0 + dw1, s.H, s.W);
                b2 = Tap(x, xo + xo2, h0 + dh2, w0 + dw2, s.H, s.W);
                b3 = Tap(x, xo + xo3, h0 + dh3, w0 + dw3, s.H, s.W);
            }
            if (t > t0) acc.Slice(sa, sb, buf * TileA + row, buf * TileB + lane);
        }

        // Epilogue: dw[g Kg + m, col] += acc (one split), or the partial into the split's workspace slot (=).
        bool direct = a.Splits == 1;
        int outBase = direct ? 0 : split * a.SplitStride;
        int c0 = col0 + lane, c1 = c0 + 16, c2 = c0 + 32, c3 = c0 + 48;
        for (int r = 0; r < 4; r++)
        {
            int m = row0 + row + Threads1D * r;
            if (m >= a.Kg) break;
            int ro = outBase + (g * a.Kg + m) * a.CgRS;
            float v0 = r == 0 ? acc.C00 : r == 1 ? acc.C10 : r == 2 ? acc.C20 : acc.C30;
            float v1 = r == 0 ? acc.C01 : r == 1 ? acc.C11 : r == 2 ? acc.C21 : acc.C31;
            float v2 = r == 0 ? acc.C02 : r == 1 ? acc.C12 : r == 2 ? acc.C22 : acc.C32;
            float v3 = r == 0 ? acc.C03 : r == 1 ? acc.C13 : r == 2 ? acc.C23 : acc.C33;
            if (direct)
            {
                if (c0 < a.CgRS) dw[ro + c0] += v0;
                if (c1 < a.CgRS) dw[ro + c1] += v1;
                if (c2 < a.CgRS) dw[ro + c2] += v2;
                if (c3 < a.CgRS) dw[ro + c3] += v3;
            }
            else
            {
                if (c0 < a.CgRS) ws[ro + c0] = v0;
                if (c1 < a.CgRS) ws[ro + c1] = v1;
                if (c2 < a.CgRS) ws[ro + c2] = v2;
                if (c3 < a.CgRS) ws[ro + c3] = v3;
            }
        }

        // db: the first column block sums each row's 16 lanes in shared memory, in lane order. Every group takes part
        // in the barriers (a barrier inside a branch, even a group-uniform one, miscompiles on PoCL 6).
        Group.Barrier();                      // every thread is done reading the last slice
        sa[row * 16 + lane] = s0; sa[(row + 16) * 16 + lane] = s1;
        sa[(row + 32) * 16 + lane] = s2; sa[(row + 48) * 16 + lane] = s3;
        Group.Barrier();
        if (a.HasBias != 0 && col0 == 0 && tid < BlockM && row0 + tid < a.Kg)
        {
            float sum = 0f;
            for (int l = 0; l < 16; l++) sum += sa[tid * 16 + l];
            int k = g * a.Kg + row0 + tid;
            if (direct) db[k] += sum;
            else ws[split * a.SplitStride + s.K * a.CgRS + k] = sum;
        }
    }

    /// <summary>
    /// Column (c, r, s) of the filter gradient's gathered X^T: xo = offset of tap (r, s) of channel g Cg + c relative to
    /// the output pixel's top-left corner, (dh, dw) = (r Dh, s Dw); a column past CgRS gets dh = Outside.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ColumnOfFilter(in ImplicitConvArgs a, int col, int xg, out int xo, out int dh, out int dw)
    {
        var s = a.S;
        int c = a.DivRS.Div(col), rs = col - c * a.RS;
        int r = a.DivS.Div(rs), sx = rs - r * s.S;
        dh = col < a.CgRS ? r * s.DilH : Outside;
        dw = sx * s.DilW;
        xo = xg + c * a.HW + r * s.DilH * s.W + dw;
    }

    /// <summary>
    /// Adds the filter gradient's split partials in split order: dw[i] += sum_z ws[z SplitStride + i] for i &lt; K CgRS,
    /// db[i - K CgRS] += ... for the K entries after (launched over them only when a.HasBias).
    /// </summary>
    [GpuKernel]
    public static void SplitReduceKernel(Index1D i, ImplicitConvArgs a, ArrayView<float> ws, ArrayView<float> dw, ArrayView<float> db)
    {
        int weights = a.S.K * a.CgRS;
        if (i >= weights + a.HasBias * a.S.K) return;
        float sum = 0f;
        for (int z = 0; z < a.Splits; z++) sum += ws[z * a.SplitStride + i];
        if (i < weights) dw[i] += sum;
        else db[i - weights] += sum;
    }

    // ---- launchers ----------------------------------------------------------------------------------------------

    /// <summary>
    /// Splits of the filter gradient's N P Q reduction and K tiles per split: enough groups to reach
    /// <see cref="TargetBlocks"/>, each split at least <see cref="MinTilesPerSplit"/> tiles; (1, all tiles) when the
    /// output tiles alone fill that many groups. A function of the shape only, so every device sums in the same order.
    /// </summary>
    public static (int Splits, int TilesPerSplit) FilterSplits(in Conv2dShape s)
    {
        int tiles = (int)(((long)s.N * s.PQ + BlockK - 1) / BlockK);
        long blocks = (long)((s.CgRS + BlockN - 1) / BlockN) * ((s.Kg + BlockM - 1) / BlockM) * s.Groups;
        int want = (int)Math.Max(1, Math.Min(TargetBlocks / blocks, tiles / MinTilesPerSplit));
        int perSplit = Math.Max(1, (tiles + want - 1) / want);
        return ((tiles + perSplit - 1) / perSplit, perSplit);
    }

    /// <summary>
    /// Floats of workspace <see cref="LaunchBackwardFilter"/> needs: Splits (K CgRS + K) when it splits, else 0.
    /// Forward and backward data need none.
    /// </summary>
    public static int WorkspaceFloats(in Conv2dShape s)
    {
        int splits = FilterSplits(s).Splits;
        return splits == 1 ? 0 : (int)((long)splits * (s.K * s.CgRS + s.K));
    }

    /// <summary>Kernel launches of one call of each pass: forward 1, backward data 1, backward filter 1 or 2 (split).</summary>
    public static int KernelLaunchesOf(in Conv2dShape s, bool backwardFilter) => backwardFilter && FilterSplits(s).Splits > 1 ? 2 : 1;

    /// <summary>Grid of a pass: (column blocks, row blocks, z), checked against the accelerator's limits.</summary>
    private static KernelConfig Config(KernelCache k, string pass, long columns, int rows, long z)
    {
        if (k.Accelerator.MaxNumThreadsPerGroup < GroupSize)
            throw new NotSupportedException($"Conv2d {pass}: the kernel needs {GroupSize} threads per group, accelerator '{k.Accelerator.Name}' allows {k.Accelerator.MaxNumThreadsPerGroup}");
        long gx = (columns + BlockN - 1) / BlockN, gy = (rows + BlockM - 1) / BlockM;
        var max = k.Accelerator.MaxGridSize;
        if (gx > max.X || gy > max.Y || z > max.Z)
            throw new NotSupportedException($"Conv2d {pass}: needs a grid of ({gx}, {gy}, {z}) groups, accelerator '{k.Accelerator.Name}' allows ({max.X}, {max.Y}, {max.Z})");
        return new KernelConfig(new Index3D((int)gx, (int)gy, (int)z), new Index3D(GroupSize, 1, 1));
    }

    /// <summary>
    /// Forward on an accelerator: y = conv(x, w) + b, one launch of <see cref="ForwardKernel"/> for the whole batch
    /// (none when y is empty). b: empty for no bias.
    /// </summary>
    public static void Launch(KernelCache k, in Conv2dShape s, ArrayView<float> x, ArrayView<float> w, ArrayView<float> b, ArrayView<float> y)
    {
        if (y.Length == 0) return;
        var args = ImplicitConvArgs.Create(s, b.Length > 0);
        k.Get(ForwardKernel, acc => acc.LoadStreamKernel<ImplicitConvArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(ForwardKernel))
            (Config(k, "forward", (long)s.N * s.PQ, s.Kg, s.Groups), args, x, w, b.Length > 0 ? b : w, y);
        k.CountLaunch();
    }

    /// <summary>Backward data on an accelerator: dx overwritten, one launch of <see cref="BackwardDataKernel"/> (none when dx is empty).</summary>
    public static void LaunchBackwardData(KernelCache k, in Conv2dShape s, ArrayView<float> dy, ArrayView<float> w, ArrayView<float> dx)
    {
        if (dx.Length == 0) return;
        var args = ImplicitConvArgs.Create(s, false);
        k.Get(BackwardDataKernel, acc => acc.LoadStreamKernel<ImplicitConvArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>>(BackwardDataKernel))
            (Config(k, "backward data", (long)s.N * s.H * s.W, s.Cg, s.Groups), args, dy, w, dx);
        k.CountLaunch();
    }

    /// <summary>
    /// Backward filter on an accelerator: dw += dy x^T, db += row sums of dy (db empty: no bias). One launch of
    /// <see cref="BackwardFilterKernel"/>, plus one of <see cref="SplitReduceKernel"/> when <see cref="FilterSplits"/>
    /// splits the reduction; ws: at least <see cref="WorkspaceFloats"/> floats (any view when that is 0).
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="ws"/> is shorter than <see cref="WorkspaceFloats"/>.</exception>
    public static void LaunchBackwardFilter(KernelCache k, in Conv2dShape s, ArrayView<float> x, ArrayView<float> dy,
        ArrayView<float> dw, ArrayView<float> db, ArrayView<float> ws)
    {
        if (dw.Length == 0) return;
        var (splits, perSplit) = FilterSplits(s);
        int need = WorkspaceFloats(s);
        if (ws.Length < need) throw new ArgumentException($"Conv2d backward filter: the workspace must hold {need} floats, got {ws.Length}", nameof(ws));
        bool bias = db.Length > 0;
        var args = ImplicitConvArgs.Create(s, bias, splits, perSplit);
        k.Get(BackwardFilterKernel, acc => acc.LoadStreamKernel<ImplicitConvArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(BackwardFilterKernel))
            (Config(k, "backward filter", s.CgRS, s.Kg, (long)s.Groups * splits), args, x, dy, dw, bias ? db : dw, need > 0 ? ws : dw);
        k.CountLaunch();
        if (splits == 1) return;
        int outputs = s.K * s.CgRS + (bias ? s.K : 0);
        k.Get(SplitReduceKernel, acc => acc.LoadAutoGroupedStreamKernel<Index1D, ImplicitConvArgs, ArrayView<float>, ArrayView<float>, ArrayView<float>>(SplitReduceKernel))
            (outputs, args, ws, dw, bias ? db : dw);
        k.CountLaunch();
    }
}
