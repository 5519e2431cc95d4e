using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace GpuNet.Kernels;

// Register-blocked micro-kernels of the host GEMM, written out in full (one named local per accumulator, so the JIT
// keeps each in a register; checked with DOTNET_JitDisasm: no spills). Each reads a packed A sliver (MR values per k
// step) and a packed B sliver (NR values per k step) and writes the MR x NR product to a tile buffer (row-major,
// stride NR); the caller applies the epilogue. AVX-512: 12x32 = 24 zmm accumulators + 2 B vectors + 1 broadcast of
// the 32 registers. 256-bit: 6x16 = 12 ymm accumulators + 2 + 1 of 16.
internal static unsafe class HostGemmKernels
{
    /// <summary>Rows of the AVX-512 micro-tile.</summary>
    internal const int Mr512 = 12;
    /// <summary>Columns of the AVX-512 micro-tile.</summary>
    internal const int Nr512 = 32;
    /// <summary>Rows of the 256-bit micro-tile.</summary>
    internal const int Mr256 = 6;
    /// <summary>Columns of the 256-bit micro-tile.</summary>
    internal const int Nr256 = 16;

    /// <summary>12x32 micro-kernel: tile[r, j] = sum_p a[p*12 + r] * b[p*32 + j] over kc steps (Vector512).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Kernel512(int kc, float* a, float* b, float* tile)
    {
        var c0_0 = Vector512<float>.Zero; var c0_1 = Vector512<float>.Zero;
        var c1_0 = Vector512<float>.Zero; var c1_1 = Vector512<float>.Zero;
        var c2_0 = Vector512<float>.Zero; var c2_1 = Vector512<float>.Zero;
        var c3_0 = Vector512<float>.Zero; var c3_1 = Vector512<float>.Zero;
        var c4_0 = Vector512<float>.Zero; var c4_1 = Vector512<float>.Zero;
        var c5_0 = Vector512<float>.Zero; var c5_1 = Vector512<float>.Zero;
        var c6_0 = Vector512<float>.Zero; var c6_1 = Vector512<float>.Zero;
        var c7_0 = Vector512<float>.Zero; var c7_1 = Vector512<float>.Zero;
        var c8_0 = Vector512<float>.Zero; var c8_1 = Vector512<float>.Zero;
        var c9_0 = Vector512<float>.Zero; var c9_1 = Vector512<float>.Zero;
        var c10_0 = Vector512<float>.Zero; var c10_1 = Vector512<float>.Zero;
        var c11_0 = Vector512<float>.Zero; var c11_1 = Vector512<float>.Zero;
        int p = 0;
        for (; p + 2 <= kc; p += 2)
        {
            {
                var b0 = Vector512.Load(b + 0);
                var b1 = Vector512.Load(b + 16);
                { var x = Vector512.Create(a[0]); c0_0 = Vector512.FusedMultiplyAdd(x, b0, c0_0); c0_1 = Vector512.FusedMultiplyAdd(x, b1, c0_1); }
                { var x = Vector512.Create(a[1]); c1_0 = Vector512.FusedMultiplyAdd(x, b0, c1_0); c1_1 = Vector512.FusedMultiplyAdd(x, b1, c1_1); }
                { var x = Vector512.Create(a[2]); c2_0 = Vector512.FusedMultiplyAdd(x, b0, c2_0); c2_1 = Vector512.FusedMultiplyAdd(x, b1, c2_1); }
                { var x = Vector512.Create(a[3]); c3_0 = Vector512.FusedMultiplyAdd(x, b0, c3_0); c3_1 = Vector512.FusedMultiplyAdd(x, b1, c3_1); }
                { var x = Vector512.Create(a[4]); c4_0 = Vector512.FusedMultiplyAdd(x, b0, c4_0); c4_1 = Vector512.FusedMultiplyAdd(x, b1, c4_1); }
                { var x = Vector512.Create(a[5]); c5_0 = Vector512.FusedMultiplyAdd(x, b0, c5_0); c5_1 = Vector512.FusedMultiplyAdd(x, b1, c5_1); }
                { var x = Vector512.Create(a[6]); c6_0 = Vector512.FusedMultiplyAdd(x, b0, c6_0); c6_1 = Vector512.FusedMultiplyAdd(x, b1, c6_1); }
                { var x = Vector512.Create(a[7]); c7_0 = Vector512.FusedMultiplyAdd(x, b0, c7_0); c7_1 = Vector512.FusedMultiplyAdd(x, b1, c7_1); }
                { var x = Vector512.Create(a[8]); c8_0 = Vector512.FusedMultiplyAdd(x, b0, c8_0); c8_1 = Vector512.FusedMultiplyAdd(x, b1, c8_1); }
                { var x = Vector512.Create(a[9]); c9_0 = Vector512.FusedMultiplyAdd(x, b0, c9_0); c9_1 = Vector512.FusedMultiplyAdd(x, b1, c9_1); }
                { var x = Vector512.Create(a[10]); c10_0 = Vector512.FusedMultiplyAdd(x, b0, c10_0); c10_1 = Vector512.FusedMultiplyAdd(x, b1, c10_1); }
                { var x = Vector512.Create(a[11]); c11_0 = Vector512.FusedMultiplyAdd(x, b0, c11_0); c11_1 = Vector512.FusedMultiplyAdd(x, b1, c11_1); }
            }
            {
                var b0 = Vector512.Load(b + 32);
                var b1 = Vector512.Load(b + 48);
                { var x = Vector512.Create(a[12]); c0_0 = Vector512.FusedMultiplyAdd(x, b0, c0_0); c0_1 = Vector512.FusedMultiplyAdd(x, b1, c0_1); }
                { var x = Vector512.Create(a[13]); c1_0 = Vector512.FusedMultiplyAdd(x, b0, c1_0); c1_1 = Vector512.FusedMultiplyAdd(x, b1, c1_1); }
                { var x = Vector512.Create(a[14]); c2_0 = Vector512.FusedMultiplyAdd(x, b0, c2_0); c2_1 = Vector512.FusedMultiplyAdd(x, b1, c2_1); }
                { var x = Vector512.Create(a[15]); c3_0 = Vector512.FusedMultiplyAdd(x, b0, c3_0); c3_1 = Vector512.FusedMultiplyAdd(x, b1, c3_1); }
                { var x = Vector512.Create(a[16]); c4_0 = Vector512.FusedMultiplyAdd(x, b0, c4_0); c4_1 = Vector512.FusedMultiplyAdd(x, b1, c4_1); }
                { var x = Vector512.Create(a[17]); c5_0 = Vector512.FusedMultiplyAdd(x, b0, c5_0); c5_1 = Vector512.FusedMultiplyAdd(x, b1, c5_1); }
                { var x = Vector512.Create(a[18]); c6_0 = Vector512.FusedMultiplyAdd(x, b0, c6_0); c6_1 = Vector512.FusedMultiplyAdd(x, b1, c6_1); }
                { var x = Vector512.Create(a[19]); c7_0 = Vector512.FusedMultiplyAdd(x, b0, c7_0); c7_1 = Vector512.FusedMultiplyAdd(x, b1, c7_1); }
                { var x = Vector512.Create(a[20]); c8_0 = Vector512.FusedMultiplyAdd(x, b0, c8_0); c8_1 = Vector512.FusedMultiplyAdd(x, b1, c8_1); }
                { var x = Vector512.Create(a[21]); c9_0 = Vector512.FusedMultiplyAdd(x, b0, c9_0); c9_1 = Vector512.FusedMultiplyAdd(x, b1, c9_1); }
                { var x = Vector512.Create(a[22]); c10_0 = Vector512.FusedMultiplyAdd(x, b0, c10_0); c10_1 = Vector512.FusedMultiplyAdd(x, b1, c10_1); }
                { var x = Vector512.Create(a[23]); c11_0 = Vector512.FusedMultiplyAdd(x, b0, c11_0); c11_1 = Vector512.FusedMultiplyAdd(x, b1, c11_1); }
            }
            a += 24; b += 64;
        }
        for (; p < kc; p++)
        {
            var b0 = Vector512.Load(b + 0);
            var b1 = Vector512.Load(b + 16);
            { var x = Vector512.Create(a[0]); c0_0 = Vector512.FusedMultiplyAdd(x, b0, c0_0); c0_1 = Vector512.FusedMultiplyAdd(x, b1, c0_1); }
            { var x = Vector512.Create(a[1]); c1_0 = Vector512.FusedMultiplyAdd(x, b0, c1_0); c1_1 = Vector512.FusedMultiplyAdd(x, b1, c1_1); }
            { var x = Vector512.Create(a[2]); c2_0 = Vector512.FusedMultiplyAdd(x, b0, c2_0); c2_1 = Vector512.FusedMultiplyAdd(x, b1, c2_1); }
            { var x = Vector512.Create(a[3]); c3_0 = Vector512.FusedMultiplyAdd(x, b0, c3_0); c3_1 = Vector512.FusedMultiplyAdd(x, b1, c3_1); }
            { var x = Vector512.Create(a[4]); c4_0 = Vector512.FusedMultiplyAdd(x, b0, c4_0); c4_1 = Vector512.FusedMultiplyAdd(x, b1, c4_1); }
            { var x = Vector512.Create(a[5]); c5_0 = Vector512.FusedMultiplyAdd(x, b0, c5_0); c5_1 = Vector512.FusedMultiplyAdd(x, b1, c5_1); }
            { var x = Vector512.Create(a[6]); c6_0 = Vector512.FusedMultiplyAdd(x, b0, c6_0); c6_1 = Vector512.FusedMultiplyAdd(x, b1, c6_1); }
            { var x = Vector512.Create(a[7]); c7_0 = Vector512.FusedMultiplyAdd(x, b0, c7_0); c7_1 = Vector512.FusedMultiplyAdd(x, b1, c7_1); }
            { var x = Vector512.Create(a[8]); c8_0 = Vector512.FusedMultiplyAdd(x, b0, c8_0); c8_1 = Vector512.FusedMultiplyAdd(x, b1, c8_1); }
            { var x = Vector512.Create(a[9]); c9_0 = Vector512.FusedMultiplyAdd(x, b0, c9_0); c9_1 = Vector512.FusedMultiplyAdd(x, b1, c9_1); }
            { var x = Vector512.Create(a[10]); c10_0 = Vector512.FusedMultiplyAdd(x, b0, c10_0); c10_1 = Vector512.FusedMultiplyAdd(x, b1, c10_1); }
            { var x = Vector512.Create(a[11]); c11_0 = Vector512.FusedMultiplyAdd(x, b0, c11_0); c11_1 = Vector512.FusedMultiplyAdd(x, b1, c11_1); }
            a += 12; b += 32;
        }
        c0_0.Store(tile + 0); c0_1.Store(tile + 16);
        c1_0.Store(tile + 32); c1_1.Store(tile + 48);
        c2_0.Store(tile + 64); c2_1.Store(tile + 80);
        c3_0.Store(tile + 96); c3_1.Store(tile + 112);
        c4_0.Store(tile + 128); c4_1.Store(tile + 144);
        c5_0.Store(tile + 160); c5_1.Store(tile + 176);
        c6_0.Store(tile + 192); c6_1.Store(tile + 208);
        c7_0.Store(tile + 224); c7_1.Store(tile + 240);
        c8_0.Store(tile + 256); c8_1.Store(tile + 272);
        c9_0.Store(tile + 288); c9_1.Store(tile + 304);
        c10_0.Store(tile + 320); c10_1.Store(tile + 336);
        c11_0.Store(tile + 352); c11_1.Store(tile + 368);
    }

    /// <summary>6x16 micro-kernel: tile[r, j] = sum_p a[p*6 + r] * b[p*16 + j] over kc steps (Vector256).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Kernel256(int kc, float* a, float* b, float* tile)
    {
        var c0_0 = Vector256<float>.Zero; var c0_1 = Vector256<float>.Zero;
        var c1_0 = Vector256<float>.Zero; var c1_1 = Vector256<float>.Zero;
        var c2_0 = Vector256<float>.Zero; var c2_1 = Vector256<float>.Zero;
        var c3_0 = Vector256<float>.Zero; var c3_1 = Vector256<float>.Zero;
        var c4_0 = Vector256<float>.Zero; var c4_1 = Vector256<float>.Zero;
        var c5_0 = Vector256<float>.Zero; var c5_1 = Vector256<float>.Zero;
        int p = 0;
        for (; p + 2 <= kc; p += 2)
        {
            {
                var b0 = Vector256.Load(b + 0);
                var b1 = Vector256.Load(b + 8);
                { var x = Vector256.Create(a[0]); c0_0 = Vector256.FusedMultiplyAdd(x, b0, c0_0); c0_1 = Vector256.FusedMultiplyAdd(x, b1, c0_1); }
                { var x = Vector256.Create(a[1]); c1_0 = Vector256.FusedMultiplyAdd(x, b0, c1_0); c1_1 = Vector256.FusedMultiplyAdd(x, b1, c1_1); }
                { var x = Vector256.Create(a[2]); c2_0 = Vector256.FusedMultiplyAdd(x, b0, c2_0); c2_1 = Vector256.FusedMultiplyAdd(x, b1, c2_1); }
                { var x = Vector256.Create(a[3]); c3_0 = Vector256.FusedMultiplyAdd(x, b0, c3_0); c3_1 = Vector256.FusedMultiplyAdd(x, b1, c3_1); }
                { var x = Vector256.Create(a[4]); c4_0 = Vector256.FusedMultiplyAdd(x, b0, c4_0); c4_1 = Vector256.FusedMultiplyAdd(x, b1, c4_1); }
                { var x = Vector256.Create(a[5]); c5_0 = Vector256.FusedMultiplyAdd(x, b0, c5_0); c5_1 = Vector256.FusedMultiplyAdd(x, b1, c5_1); }
            }
            {
                var b0 = Vector256.Load(b + 16);
                var b1 = Vector256.Load(b + 24);
                { var x = Vector256.Create(a[6]); c0_0 = Vector256.FusedMultiplyAdd(x, b0, c0_0); c0_1 = Vector256.FusedMultiplyAdd(x, b1, c0_1); }
                { var x = Vector256.Create(a[7]); c1_0 = Vector256.FusedMultiplyAdd(x, b0, c1_0); c1_1 = Vector256.FusedMultiplyAdd(x, b1, c1_1); }
                { var x = Vector256.Create(a[8]); c2_0 = Vector256.FusedMultiplyAdd(x, b0, c2_0); c2_1 = Vector256.FusedMultiplyAdd(x, b1, c2_1); }
                { var x = Vector256.Create(a[9]); c3_0 = Vector256.FusedMultiplyAdd(x, b0, c3_0); c3_1 = Vector256.FusedMultiplyAdd(x, b1, c3_1); }
                { var x = Vector256.Create(a[10]); c4_0 = Vector256.FusedMultiplyAdd(x, b0, c4_0); c4_1 = Vector256.FusedMultiplyAdd(x, b1, c4_1); }
                { var x = Vector256.Create(a[11]); c5_0 = Vector256.FusedMultiplyAdd(x, b0, c5_0); c5_1 = Vector256.FusedMultiplyAdd(x, b1, c5_1); }
            }
            a += 12; b += 32;
        }
        for (; p < kc; p++)
        {
            var b0 = Vector256.Load(b + 0);
            var b1 = Vector256.Load(b + 8);
            { var x = Vector256.Create(a[0]); c0_0 = Vector256.FusedMultiplyAdd(x, b0, c0_0); c0_1 = Vector256.FusedMultiplyAdd(x, b1, c0_1); }
            { var x = Vector256.Create(a[1]); c1_0 = Vector256.FusedMultiplyAdd(x, b0, c1_0); c1_1 = Vector256.FusedMultiplyAdd(x, b1, c1_1); }
            { var x = Vector256.Create(a[2]); c2_0 = Vector256.FusedMultiplyAdd(x, b0, c2_0); c2_1 = Vector256.FusedMultiplyAdd(x, b1, c2_1); }
            { var x = Vector256.Create(a[3]); c3_0 = Vector256.FusedMultiplyAdd(x, b0, c3_0); c3_1 = Vector256.FusedMultiplyAdd(x, b1, c3_1); }
            { var x = Vector256.Create(a[4]); c4_0 = Vector256.FusedMultiplyAdd(x, b0, c4_0); c4_1 = Vector256.FusedMultiplyAdd(x, b1, c4_1); }
            { var x = Vector256.Create(a[5]); c5_0 = Vector256.FusedMultiplyAdd(x, b0, c5_0); c5_1 = Vector256.FusedMultiplyAdd(x, b1, c5_1); }
            a += 6; b += 16;
        }
        c0_0.Store(tile + 0); c0_1.Store(tile + 8);
        c1_0.Store(tile + 16); c1_1.Store(tile + 24);
        c2_0.Store(tile + 32); c2_1.Store(tile + 40);
        c3_0.Store(tile + 48); c3_1.Store(tile + 56);
        c4_0.Store(tile + 64); c4_1.Store(tile + 72);
        c5_0.Store(tile + 80); c5_1.Store(tile + 88);
    }
}
