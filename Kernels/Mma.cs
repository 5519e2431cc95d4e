using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace GpuNet.Kernels;

/// <summary>A fragment of four 32-bit registers: A of <c>m16n8k8 .tf32</c> (one tf32 each) or of <c>m16n8k16 .f16/.bf16</c> (two halves each).</summary>
public struct MmaA
{
    /// <summary>Registers a0..a3 (the PTX ISA's names); see <see cref="Mma"/> for the elements each holds.</summary>
    public uint A0, A1, A2, A3;
}

/// <summary>A fragment of two 32-bit registers: B of <c>m16n8k8 .tf32</c> (one tf32 each) or of <c>m16n8k16 .f16/.bf16</c> (two halves each).</summary>
public struct MmaB
{
    /// <summary>Registers b0, b1; see <see cref="Mma"/> for the elements each holds.</summary>
    public uint B0, B1;
}

/// <summary>The accumulator fragment C/D of <c>m16n8k8</c> and <c>m16n8k16</c> with <c>.f32</c> accumulation: four floats per lane.</summary>
public struct MmaC
{
    /// <summary>Registers c0..c3: rows groupID (c0, c1) and groupID + 8 (c2, c3), columns 2 threadID_in_group + (i &amp; 1).</summary>
    public float C0, C1, C2, C3;
}

/// <summary>
/// Warp-level tensor-core primitives (PTX <c>mma.sync.aligned</c>) on CUDA, and on every other accelerator an exact
/// software model of each instruction's per-lane fragment layout (PTX ISA 9.7.14.5.7 and 9.7.14.5.8, "Matrix
/// Fragments for mma.m16n8k8 / mma.m16n8k16"). A warp here is 32 consecutive threads of a 1-D group (lane =
/// <c>Group.IdxX &amp; 31</c>): ILGPU's CPU accelerator has a hardware warp of 4 and OpenCL devices have their own,
/// so the model never uses <c>Warp.*</c>; its lanes exchange fragments through a shared-memory area of
/// <see cref="ExchangeWords"/> words per warp, between two group barriers. So every thread of the group must make the
/// same sequence of calls (as <c>.sync.aligned</c> requires of a warp anyway).
/// <para>Layout, with groupID = lane &gt;&gt; 2 and threadID_in_group = lane % 4 (t):</para>
/// <para><c>m16n8k8 .tf32</c>: A (16x8, row) a0: (g, t), a1: (g + 8, t), a2: (g, t + 4), a3: (g + 8, t + 4);
/// B (8x8, col) b0: (t, g), b1: (t + 4, g); C/D (16x8) ci: (g + 8 (i &gt;= 2), 2t + (i &amp; 1)).</para>
/// <para><c>m16n8k16 .f16/.bf16</c>, element i of A (8 per lane, register i / 2, low half first): row g + 8 for
/// i in {2, 3, 6, 7} else g, column 2t + (i &amp; 1) + 8 (i &gt;= 4); B (4 per lane): row 2t + (i &amp; 1) + 8 (i &gt;= 2),
/// column g; C/D as above.</para>
/// <para>Arithmetic of the model: operands as the hardware reads them (a .tf32 register's low 13 bits are ignored;
/// halves are widened exactly), products exact in float32 (11 x 11 significant bits), then
/// d = ((c + p0) + p1) + ... in float32, k ascending. The hardware's summation order and internal precision are not
/// specified by the PTX ISA, so the model matches it to float32 accumulation error, not bit for bit.</para>
/// </summary>
public static class Mma
{
    /// <summary>Shared-memory words (uint) of one warp's exchange area in the software model: 32 lanes x 6 registers.</summary>
    public const int ExchangeWords = 32 * 6;

    /// <summary>Lanes of the warp the instructions are defined for.</summary>
    public const int WarpLanes = 32;

    // ---- TF32 conversion ------------------------------------------------------------------------------------------

    /// <summary>
    /// PTX <c>cvt.rna.tf32.f32</c> in software: the nearest float with a 10-bit mantissa, ties away from zero
    /// (<c>.rna</c>), returned as its 32-bit pattern with the low 13 bits zero. A finite value may round to infinity;
    /// infinities stay; a NaN becomes the canonical NaN 0x7FFFFFFF. Kernel-safe.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint RoundTf32Bits(float x)
    {
        uint u = Interop.FloatAsInt(x);
        if ((u & 0x7F800000u) == 0x7F800000u) return (u & 0x7FFFFFFFu) > 0x7F800000u ? 0x7FFFFFFFu : u;
        // Adding half an ulp of tf32 to the magnitude bits rounds ties away from zero; a carry into the exponent
        // is the correct next binade (or infinity).
        return (u + 0x1000u) & 0xFFFFE000u;
    }

    /// <summary><see cref="RoundTf32Bits"/> as a float (the tf32 value); the float64 references use it too.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float RoundTf32(float x) => Interop.IntAsFloat(RoundTf32Bits(x));

    /// <summary>
    /// x rounded to tf32 by the accelerator: the PTX instruction <c>cvt.rna.tf32.f32</c> on CUDA, its exact software
    /// model (<see cref="RoundTf32Bits"/>) elsewhere. Returns the 32-bit register the <c>.tf32</c> MMA reads.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint ToTf32(float x)
    {
        if (CudaAsm.IsSupported)
        {
            CudaAsm.Emit("cvt.rna.tf32.f32 %0, %1;", out uint r, x);
            return r;
        }
        return RoundTf32Bits(x);
    }

    // ---- m16n8k8 .tf32 --------------------------------------------------------------------------------------------

    /// <summary>
    /// d = A (16x8) B (8x8) + d for one warp, A and B in tf32: PTX
    /// <c>mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32</c> on CUDA (sm_80+), the software model elsewhere.
    /// <paramref name="exchange"/> is this warp's <see cref="ExchangeWords"/>-word shared area (unused on CUDA);
    /// <paramref name="lane"/> is Group.IdxX &amp; 31. Every thread of the group must call it (the model synchronises the group).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void M16N8K8Tf32(ref MmaC d, MmaA a, MmaB b, ArrayView<uint> exchange, int lane)
    {
        if (CudaAsm.IsSupported)
        {
            Ref<float> d0 = d.C0, d1 = d.C1, d2 = d.C2, d3 = d.C3;
            Input<uint> a0 = a.A0, a1 = a.A1, a2 = a.A2, a3 = a.A3, b0 = b.B0, b1 = b.B1;
            CudaAsm.EmitRef(
                "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};",
                ref d0, ref d1, ref d2, ref d3, ref a0, ref a1, ref a2, ref a3, ref b0, ref b1);
            d.C0 = d0.Value; d.C1 = d1.Value; d.C2 = d2.Value; d.C3 = d3.Value;
            return;
        }
        Publish(a, b, exchange, lane);
        int g = lane >> 2, t = lane & 3;
        d.C0 = DotTf32(exchange, g, 2 * t, d.C0);
        d.C1 = DotTf32(exchange, g, 2 * t + 1, d.C1);
        d.C2 = DotTf32(exchange, g + 8, 2 * t, d.C2);
        d.C3 = DotTf32(exchange, g + 8, 2 * t + 1, d.C3);
        Group.Barrier(); // nobody overwrites the area before every lane has read it
    }

    /// <summary>c + sum_k A[row, k] B[k, col] over the published m16n8k8 .tf32 fragments (the layout inverted).</summary>
    private static float DotTf32(ArrayView<uint> x, int row, int col, float acc)
    {
        for (int k = 0; k < 8; k++)
        {
            // A[row, k]: lane (row % 8) * 4 + k % 4, register a[(row >= 8) + 2 (k >= 4)].
            int ia = ((row & 7) * 4 + (k & 3)) * 6 + (row >> 3) + ((k >> 2) << 1);
            // B[k, col]: lane col * 4 + k % 4, register b[k >= 4] (stored after the 4 A registers).
            int ib = (col * 4 + (k & 3)) * 6 + 4 + (k >> 2);
            // The instruction reads only the tf32 bits of a .b32 operand.
            acc += Interop.IntAsFloat(x[ia] & 0xFFFFE000u) * Interop.IntAsFloat(x[ib] & 0xFFFFE000u);
        }
        return acc;
    }

    // ---- m16n8k16 .f16 / .bf16 --------------------------------------------------------------------------------------

    /// <summary>
    /// d = A (16x16) B (16x8) + d for one warp, A and B IEEE half precision packed two per register (low half = lower
    /// element index): PTX <c>mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32</c> on CUDA (sm_80+), the software
    /// model elsewhere. Same contract as <see cref="M16N8K8Tf32"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void M16N8K16F16(ref MmaC d, MmaA a, MmaB b, ArrayView<uint> exchange, int lane)
    {
        if (CudaAsm.IsSupported)
        {
            Ref<float> d0 = d.C0, d1 = d.C1, d2 = d.C2, d3 = d.C3;
            Input<uint> a0 = a.A0, a1 = a.A1, a2 = a.A2, a3 = a.A3, b0 = b.B0, b1 = b.B1;
            CudaAsm.EmitRef(
                "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};",
                ref d0, ref d1, ref d2, ref d3, ref a0, ref a1, ref a2, ref a3, ref b0, ref b1);
            d.C0 = d0.Value; d.C1 = d1.Value; d.C2 = d2.Value; d.C3 = d3.Value;
            return;
        }
        Model16816(ref d, a, b, exchange, lane, bf16: false);
    }

    /// <summary>
    /// <see cref="M16N8K16F16"/> with bfloat16 operands: PTX <c>mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32</c>
    /// on CUDA (sm_80+), the software model elsewhere.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void M16N8K16Bf16(ref MmaC d, MmaA a, MmaB b, ArrayView<uint> exchange, int lane)
    {
        if (CudaAsm.IsSupported)
        {
            Ref<float> d0 = d.C0, d1 = d.C1, d2 = d.C2, d3 = d.C3;
            Input<uint> a0 = a.A0, a1 = a.A1, a2 = a.A2, a3 = a.A3, b0 = b.B0, b1 = b.B1;
            CudaAsm.EmitRef(
                "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};",
                ref d0, ref d1, ref d2, ref d3, ref a0, ref a1, ref a2, ref a3, ref b0, ref b1);
            d.C0 = d0.Value; d.C1 = d1.Value; d.C2 = d2.Value; d.C3 = d3.Value;
            return;
        }
        Model16816(ref d, a, b, exchange, lane, bf16: true);
    }

    private static void Model16816(ref MmaC d, MmaA a, MmaB b, ArrayView<uint> exchange, int lane, bool bf16)
    {
        Publish(a, b, exchange, lane);
        int g = lane >> 2, t = lane & 3;
        d.C0 = Dot16816(exchange, g, 2 * t, d.C0, bf16);
        d.C1 = Dot16816(exchange, g, 2 * t + 1, d.C1, bf16);
        d.C2 = Dot16816(exchange, g + 8, 2 * t, d.C2, bf16);
        d.C3 = Dot16816(exchange, g + 8, 2 * t + 1, d.C3, bf16);
        Group.Barrier();
    }

    /// <summary>c + sum_k A[row, k] B[k, col] over the published m16n8k16 fragments (the layout inverted).</summary>
    private static float Dot16816(ArrayView<uint> x, int row, int col, float acc, bool bf16)
    {
        for (int k = 0; k < 16; k++)
        {
            // A[row, k]: lane (row % 8) * 4 + (k % 8) / 2, element i = (k & 1) + 2 (row >= 8) + 4 (k >= 8).
            int ea = (k & 1) + ((row >> 3) << 1) + ((k >> 3) << 2);
            uint ra = x[((row & 7) * 4 + ((k & 7) >> 1)) * 6 + (ea >> 1)];
            // B[k, col]: lane col * 4 + (k % 8) / 2, element i = (k & 1) + 2 (k >= 8).
            int eb = (k & 1) + ((k >> 3) << 1);
            uint rb = x[(col * 4 + ((k & 7) >> 1)) * 6 + 4 + (eb >> 1)];
            uint ha = (ea & 1) != 0 ? ra >> 16 : ra & 0xFFFFu;
            uint hb = (eb & 1) != 0 ? rb >> 16 : rb & 0xFFFFu;
            acc += (bf16 ? Bf16ToFloat(ha) : HalfToFloat(ha)) * (bf16 ? Bf16ToFloat(hb) : HalfToFloat(hb));
        }
        return acc;
    }

    /// <summary>Each lane writes its 6 registers (a0..a3, b0, b1) into the warp's exchange area, then the group synchronises.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Publish(MmaA a, MmaB b, ArrayView<uint> x, int lane)
    {
        int o = lane * 6;
        x[o] = a.A0; x[o + 1] = a.A1; x[o + 2] = a.A2; x[o + 3] = a.A3; x[o + 4] = b.B0; x[o + 5] = b.B1;
        Group.Barrier();
    }

    /// <summary>The IEEE binary16 with bits <paramref name="h"/> (low 16 bits) as a float; exact, kernel-safe.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float HalfToFloat(uint h)
    {
        uint sign = (h & 0x8000u) << 16, e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
        if (e == 0)
        {
            float v = m * (1f / 16777216f); // subnormal: m 2^-24, exact in float32
            return sign != 0 ? -v : v;
        }
        if (e == 31) return Interop.IntAsFloat(sign | 0x7F800000u | (m << 13));
        return Interop.IntAsFloat(sign | ((e + 112u) << 23) | (m << 13));
    }

    /// <summary>The bfloat16 with bits <paramref name="h"/> (low 16 bits) as a float; exact, kernel-safe.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Bf16ToFloat(uint h) => Interop.IntAsFloat(h << 16);

    // ---- single-tile kernels: the primitives alone, for tests ------------------------------------------------------

    /// <summary>
    /// One warp computes d = A b + c for one m16n8k8 tile, A (16, 8) and B (8, 8) row-major floats rounded to tf32
    /// by <see cref="ToTf32"/>, c and d (16, 8) row-major. Each lane loads its fragments by the PTX ISA's formulas,
    /// runs <see cref="M16N8K8Tf32"/> and stores its fragment of d. Launch one group of 32 threads.
    /// </summary>
    [GpuKernel(ExplicitlyGrouped = true)]
    public static void TileTf32Kernel(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, ArrayView<float> d)
    {
        var exchange = SharedMemory.Allocate<uint>(ExchangeWords);
        int lane = Group.IdxX & 31, g = lane >> 2, t = lane & 3;
        // a: (16, 8); b: (8, 8); c, d: (16, 8)
        var fa = new MmaA
        {
            A0 = ToTf32(a[g * 8 + t]), A1 = ToTf32(a[(g + 8) * 8 + t]),
            A2 = ToTf32(a[g * 8 + t + 4]), A3 = ToTf32(a[(g + 8) * 8 + t + 4]),
        };
        var fb = new MmaB { B0 = ToTf32(b[t * 8 + g]), B1 = ToTf32(b[(t + 4) * 8 + g]) };
        var acc = LoadC(c, g, t);
        M16N8K8Tf32(ref acc, fa, fb, exchange, lane);
        StoreC(d, g, t, acc);
    }

    /// <summary>
    /// One warp computes d = A b + c for one m16n8k16 tile: A (16, 16) and B (16, 8) as 16-bit patterns (IEEE half,
    /// or bfloat16 when <paramref name="bf16"/> is nonzero) in the low bits of row-major uints, c and d (16, 8) row-major
    /// floats. Each lane packs its fragments two halves per register by the PTX ISA's formulas and runs
    /// <see cref="M16N8K16F16"/> or <see cref="M16N8K16Bf16"/>. Launch one group of 32 threads.
    /// </summary>
    [GpuKernel(ExplicitlyGrouped = true)]
    public static void Tile16816Kernel(ArrayView<uint> a, ArrayView<uint> b, ArrayView<float> c, ArrayView<float> d, int bf16)
    {
        var exchange = SharedMemory.Allocate<uint>(ExchangeWords);
        int lane = Group.IdxX & 31, g = lane >> 2, t = lane & 3;
        // a: (16, 16); register r holds elements 2r (low) and 2r + 1 (high): rows g / g + 8, columns 2t (+ 8).
        var fa = new MmaA
        {
            A0 = Pack(a[g * 16 + 2 * t], a[g * 16 + 2 * t + 1]),
            A1 = Pack(a[(g + 8) * 16 + 2 * t], a[(g + 8) * 16 + 2 * t + 1]),
            A2 = Pack(a[g * 16 + 2 * t + 8], a[g * 16 + 2 * t + 9]),
            A3 = Pack(a[(g + 8) * 16 + 2 * t + 8], a[(g + 8) * 16 + 2 * t + 9]),
        };
        // b: (16, 8); b0, b1 in register 0 at rows 2t, 2t + 1; b2, b3 in register 1 at rows 2t + 8, 2t + 9; column g.
        var fb = new MmaB
        {
            B0 = Pack(b[2 * t * 8 + g], b[(2 * t + 1) * 8 + g]),
            B1 = Pack(b[(2 * t + 8) * 8 + g], b[(2 * t + 9) * 8 + g]),
        };
        var acc = LoadC(c, g, t);
        if (bf16 != 0) M16N8K16Bf16(ref acc, fa, fb, exchange, lane);
        else M16N8K16F16(ref acc, fa, fb, exchange, lane);
        StoreC(d, g, t, acc);
    }

    private static uint Pack(uint low, uint high) => (low & 0xFFFFu) | (high << 16);

    private static MmaC LoadC(ArrayView<float> c, int g, int t) => new()
    {
        C0 = c[g * 8 + 2 * t], C1 = c[g * 8 + 2 * t + 1], C2 = c[(g + 8) * 8 + 2 * t], C3 = c[(g + 8) * 8 + 2 * t + 1],
    };

    private static void StoreC(ArrayView<float> d, int g, int t, MmaC acc)
    {
        d[g * 8 + 2 * t] = acc.C0; d[g * 8 + 2 * t + 1] = acc.C1;
        d[(g + 8) * 8 + 2 * t] = acc.C2; d[(g + 8) * 8 + 2 * t + 1] = acc.C3;
    }

    /// <summary>Launches <see cref="TileTf32Kernel"/> (one group of 32 threads).</summary>
    public static void LaunchTileTf32(KernelCache kernels, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, ArrayView<float> d)
    {
        kernels.Get(TileTf32Kernel, acc => acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(TileTf32Kernel))
            (new KernelConfig(1, WarpLanes), a, b, c, d);
        kernels.CountLaunch();
    }

    /// <summary>Launches <see cref="Tile16816Kernel"/> (one group of 32 threads).</summary>
    public static void LaunchTile16816(KernelCache kernels, bool bf16, ArrayView<uint> a, ArrayView<uint> b, ArrayView<float> c, ArrayView<float> d)
    {
        kernels.Get(Tile16816Kernel, acc => acc.LoadStreamKernel<ArrayView<uint>, ArrayView<uint>, ArrayView<float>, ArrayView<float>, int>(Tile16816Kernel))
            (new KernelConfig(1, WarpLanes), a, b, c, d, bf16 ? 1 : 0);
        kernels.CountLaunch();
    }

    // ---- float64 reference ------------------------------------------------------------------------------------------

    /// <summary>
    /// float64 reference of one MMA tile: d = A B + c, A (m, k) and B (k, n) row-major already in the operand format
    /// (tf32, half or bfloat16 values), c and d (m, n) row-major.
    /// </summary>
    public static void ReferenceTile(int m, int n, int k, ReadOnlySpan<double> a, ReadOnlySpan<double> b, ReadOnlySpan<double> c, Span<double> d)
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = c[i * n + j];
                for (int p = 0; p < k; p++) s += a[i * k + p] * b[p * n + j];
                d[i * n + j] = s;
            }
    }
}
