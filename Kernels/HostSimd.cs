using System.Runtime.Intrinsics;

namespace GpuNet.Kernels;

/// <summary>What the host's SIMD units offer, and the parallel-loop policy of the host implementations.</summary>
public static class HostSimd
{
    /// <summary>float32 lanes of the widest hardware-accelerated vector (16 with AVX-512, 8 with AVX2).</summary>
    public static int FloatLanes => Vector512.IsHardwareAccelerated ? 16 : Vector256.IsHardwareAccelerated ? 8 : Vector128.IsHardwareAccelerated ? 4 : 1;

    /// <summary>Human-readable SIMD width, for device listings.</summary>
    public static string Description => Vector512.IsHardwareAccelerated ? "AVX-512 (16 float lanes)" : Vector256.IsHardwareAccelerated ? "256-bit SIMD (8 float lanes)" : "128-bit SIMD";

    /// <summary>Below this many elements, an elementwise host op runs on the calling thread.</summary>
    public const int ParallelThreshold = 1 << 16;

    /// <summary>
    /// Runs <paramref name="body"/>(start, count) over <paramref name="length"/> elements split into one chunk per core
    /// (or inline when the work is small). Chunks are multiples of 64 elements so vector loops stay aligned.
    /// </summary>
    public static void ForChunks(int length, Action<int, int> body)
    {
        int workers = Environment.ProcessorCount;
        if (length < ParallelThreshold || workers == 1) { body(0, length); return; }
        int chunk = ((length + workers - 1) / workers + 63) & ~63;
        int chunks = (length + chunk - 1) / chunk;
        Parallel.For(0, chunks, c =>
        {
            int start = c * chunk;
            body(start, Math.Min(chunk, length - start));
        });
    }
}
