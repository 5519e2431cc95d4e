using System.Runtime.CompilerServices;

namespace GpuNet.Kernels;

/// <summary>
/// Persistent worker threads of the host GEMM. A call opens itself, wakes the workers and works too; every
/// participant claims parts (and, in shared mode, slivers and row blocks) from shared counters. A worker that wakes
/// after the caller has claimed everything and closed the call does nothing, so the caller never waits for a worker
/// that another process keeps off its core: it waits only for workers that joined. Signalling uses
/// ManualResetEventSlim (spins briefly, then blocks), so a call allocates nothing, unlike Parallel.For (closure and
/// tasks per call). One parallel GEMM at a time: a concurrent caller finds the pool busy and runs single-threaded.
/// </summary>
internal static unsafe class HostGemmPool
{
    /// <summary>Threads a parallel GEMM uses, the caller included.</summary>
    internal static readonly int Threads = Math.Clamp(Environment.ProcessorCount, 1, 16);

    private static readonly object Gate = new();
    private static readonly ManualResetEventSlim Done = new(false);
    private static Worker[]? s_workers;
    private static HostGemm.Job s_job;
    /// <summary><see cref="OpenFlag"/> while the current call accepts workers, plus the number of workers inside it.</summary>
    private static int s_state;
    private const int OpenFlag = 1 << 30;
    private static int s_partsClaimed;
    private static Exception? s_error;
    private static float[]? s_shared;
    private static float* s_sharedAligned;

    private sealed class Worker
    {
        public readonly ManualResetEventSlim Go = new(false);
        /// <summary>GC.GetAllocatedBytesForCurrentThread after the worker's last call (written before it leaves the call).</summary>
        public long AllocatedBytes;
    }

    /// <summary>
    /// Diagnostics: the managed bytes the GEMM workers have allocated, summed over the workers, as each recorded it
    /// when it left its last call (<see cref="HostSimd.WorkerAllocatedBytes"/> for the other pool).
    /// </summary>
    internal static long WorkerAllocatedBytes
    {
        get
        {
            long sum = 0;
            foreach (var w in Volatile.Read(ref s_workers) ?? []) sum += Volatile.Read(ref w.AllocatedBytes);
            return sum;
        }
    }

    /// <summary>Runs <paramref name="job"/> split into job.Parts parts; false (nothing done) when the pool is busy.</summary>
    internal static bool TryRun(ref HostGemm.Job job)
    {
        if (!Monitor.TryEnter(Gate)) return false;
        try
        {
            var workers = s_workers ??= Start();
            if (job.SharedB) job.SharedBuffer = SharedBuffer(2 * HostGemm.SharedPanelFloats(job));
            GroupsClaimed = GroupsDone = BlocksClaimed = BlocksDone = 0;
            s_job = job;
            s_error = null;
            s_partsClaimed = 0;
            Done.Reset();
            Volatile.Write(ref s_state, OpenFlag);
            for (int w = 0; w < Math.Min(job.Parts - 1, workers.Length); w++) workers[w].Go.Set();
            try
            {
                Participate();
            }
            catch (Exception ex)
            {
                s_error = ex;  // the workers leave their waits and finish before the gate is released
            }
            int joined = Interlocked.And(ref s_state, ~OpenFlag) & ~OpenFlag;
            if (joined > 0) Done.Wait();
            if (s_error is { } e) throw new AggregateException("GemmOp.Host: a parallel part failed", e);
            return true;
        }
        finally
        {
            Monitor.Exit(Gate);
        }
    }

    /// <summary>Shared-mode work counters of the running call (cumulative over its panels; reset per call).</summary>
    internal static int GroupsClaimed, GroupsDone, BlocksClaimed, BlocksDone;  // B sliver groups, A row blocks

    /// <summary>Claims the next index below <paramref name="limit"/> from <paramref name="counter"/>; -1 when none is left.</summary>
    internal static int Claim(ref int counter, int limit)
    {
        while (true)
        {
            int c = Volatile.Read(ref counter);
            if (c >= limit) return -1;
            if (Interlocked.CompareExchange(ref counter, c + 1, c) == c) return c;
        }
    }

    /// <summary>
    /// Waits until <paramref name="counter"/> reaches <paramref name="target"/> (or a part failed). Spins, then
    /// yields: the work waited for is one sliver or one row block, short unless a core is taken by another process.
    /// </summary>
    internal static void WaitUntil(ref int counter, int target)
    {
        var spin = new SpinWait();
        while (Volatile.Read(ref counter) < target && Volatile.Read(ref s_error) is null)
            spin.SpinOnce(sleep1Threshold: -1);
    }

    /// <summary>The pool's shared packing buffer (pinned, 64-byte aligned, grown on demand), under the gate.</summary>
    private static float* SharedBuffer(int floats)
    {
        if (s_shared is null || s_shared.Length < floats + 16)
        {
            s_shared = GC.AllocateUninitializedArray<float>(floats + 16, pinned: true);
            s_sharedAligned = (float*)(((nint)Unsafe.AsPointer(ref s_shared[0]) + 63) & ~(nint)63);
        }
        return s_sharedAligned;
    }

    private static Worker[] Start()
    {
        // A ManualResetEventSlim allocates its lock object the first time a thread blocks on it: do that now
        // (a 1 ms timed wait on each unset event) so that no later call allocates.
        Done.Wait(1);
        var workers = new Worker[Threads - 1];
        for (int w = 0; w < workers.Length; w++)
        {
            var worker = workers[w] = new Worker();
            worker.Go.Wait(1);
            var thread = new Thread(() => Loop(worker)) { IsBackground = true, Name = $"GpuNet GEMM worker {w + 1}" };
            thread.Start();
        }
        return workers;
    }

    /// <summary>Claims and runs parts of the current call until none is left (shared mode claims inside the part).</summary>
    private static void Participate()
    {
        if (s_job.SharedB) { HostGemm.RunPart(ref s_job, 0); return; }
        for (int part; (part = Claim(ref s_partsClaimed, s_job.Parts)) >= 0;) HostGemm.RunPart(ref s_job, part);
    }

    private static void Loop(Worker worker)
    {
        while (true)
        {
            worker.Go.Wait();
            worker.Go.Reset();
            // Join the call if it is still open.
            int state;
            do
            {
                state = Volatile.Read(ref s_state);
            }
            while ((state & OpenFlag) != 0 && Interlocked.CompareExchange(ref s_state, state + 1, state) != state);
            if ((state & OpenFlag) == 0) continue;
            try
            {
                Participate();
            }
            catch (Exception e)
            {
                Volatile.Write(ref s_error, e);
            }
            Volatile.Write(ref worker.AllocatedBytes, GC.GetAllocatedBytesForCurrentThread());
            // The last worker out of a closed call releases the caller.
            if (Interlocked.Decrement(ref s_state) == 0) Done.Set();
        }
    }
}
