using System.Runtime.CompilerServices;

namespace GpuNet.Kernels;

/// <summary>
/// A counter-based random generator: the random bits of element i of call (seed, step) are a pure function of
/// (seed, step, i), so every device (host SIMD, CPU accelerator, CUDA, OpenCL) draws the same numbers and a backward
/// pass can recompute a forward mask instead of storing it.
///   key(seed, step) = Mix(seed ^ Mix(step + Golden))              (computed once per call, on the host)
///   bits(key, i)    = Mix(key + (i + 1) * Golden)                 (SplitMix64's i-th output from state key)
///   uniform         = (bits >> 40) * 2^-24 in [0, 1)               (the top 24 bits: exact in float32)
/// Mix is SplitMix64's finaliser (Stafford's variant 13): two 64-bit multiplies, three xor-shifts. Only ulong
/// arithmetic, so it compiles in ILGPU kernels (PTX mul.lo.u64) and vectorises on the host (AVX-512DQ vpmullq).
/// </summary>
public static class CounterRng
{
    /// <summary>2^64 / golden ratio, SplitMix64's increment.</summary>
    public const ulong Golden = 0x9E3779B97F4A7C15UL;

    /// <summary>First multiplier of <see cref="Mix"/>.</summary>
    public const ulong M1 = 0xBF58476D1CE4E5B9UL;

    /// <summary>Second multiplier of <see cref="Mix"/>.</summary>
    public const ulong M2 = 0x94D049BB133111EBUL;

    /// <summary>Number of random bits per element that <see cref="Bits24"/> returns.</summary>
    public const int Bits = 24;

    /// <summary>SplitMix64's finaliser: a bijective 64-bit mixer with full avalanche.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Mix(ulong z)
    {
        unchecked
        {
            z = (z ^ (z >> 30)) * M1;
            z = (z ^ (z >> 27)) * M2;
            return z ^ (z >> 31);
        }
    }

    /// <summary>The per-call key of (<paramref name="seed"/>, <paramref name="step"/>); different steps give unrelated streams.</summary>
    public static ulong Key(ulong seed, long step) => Mix(seed ^ Mix(unchecked((ulong)step + Golden)));

    /// <summary>24 uniform random bits of element <paramref name="index"/> under <paramref name="key"/> (kernel-safe).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Bits24(ulong key, ulong index) => unchecked((uint)(Mix(key + (index + 1UL) * Golden) >> 40));

    /// <summary>A uniform float in [0, 1) from 24 bits: a multiple of 2^-24, exact in float32.</summary>
    public static float Uniform(ulong key, ulong index) => Bits24(key, index) * (1f / (1 << Bits));
}
