using GpuNet.Data;
using GpuNet.Kernels;

namespace GpuNet.Tests;

/// <summary>
/// Managed bytes allocated so far by the engine's own threads: the calling thread, the workers of the two host pools
/// (<see cref="HostSimd"/>, <see cref="HostGemmPool"/>) and, when given, a loader's prefetch thread. Unlike
/// <see cref="GC.GetTotalAllocatedBytes"/>, it does not see the test runner's threads, the JIT or another test: the
/// difference across a window is what the engine allocated in it. Each worker records its count after each work item,
/// so read it when no job is running (after <c>Synchronize</c>, or after the loader handed over its last batch).
/// ILGPU's own accelerator threads are not counted.
/// </summary>
internal static class EngineAllocations
{
    // The pools' type initialisers allocate (their gates, events, per-worker slots): run them before the first reading.
    static EngineAllocations()
    {
        _ = HostSimd.WorkerAllocatedBytes;
        _ = HostGemmPool.WorkerAllocatedBytes;
    }

    public static long Now(DataLoader? loader = null)
        => GC.GetAllocatedBytesForCurrentThread() + HostSimd.WorkerAllocatedBytes + HostGemmPool.WorkerAllocatedBytes + (loader?.PrefetchAllocatedBytes ?? 0);
}
