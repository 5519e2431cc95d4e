namespace GpuNet.Kernels;

/// <summary>
/// Persistent worker threads of the host GEMM: the caller runs part 0, each worker one other part. Signalling uses
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
    private static int s_pending;
    private static Exception? s_error;

    private sealed class Worker
    {
        public readonly ManualResetEventSlim Go = new(false);
        public int Part;
    }

    /// <summary>Runs <paramref name="job"/> split into job.Parts parts; false (nothing done) when the pool is busy.</summary>
    internal static bool TryRun(ref HostGemm.Job job)
    {
        if (!Monitor.TryEnter(Gate)) return false;
        try
        {
            var workers = s_workers ??= Start();
            s_job = job;
            s_error = null;
            int helpers = job.Parts - 1;
            Volatile.Write(ref s_pending, helpers);
            Done.Reset();
            for (int w = 0; w < helpers; w++)
            {
                workers[w].Part = w + 1;
                workers[w].Go.Set();
            }
            HostGemm.RunPart(ref job, 0);
            if (helpers > 0) Done.Wait();
            if (s_error is { } e) throw new AggregateException("Gemm.Host: a worker thread failed", e);
            return true;
        }
        finally
        {
            Monitor.Exit(Gate);
        }
    }

    private static Worker[] Start()
    {
        var workers = new Worker[Threads - 1];
        for (int w = 0; w < workers.Length; w++)
        {
            var worker = workers[w] = new Worker();
            var thread = new Thread(() => Loop(worker)) { IsBackground = true, Name = $"GpuNet GEMM worker {w + 1}" };
            thread.Start();
        }
        return workers;
    }

    private static void Loop(Worker worker)
    {
        while (true)
        {
            worker.Go.Wait();
            worker.Go.Reset();
            try
            {
                HostGemm.RunPart(ref s_job, worker.Part);
            }
            catch (Exception e)
            {
                s_error = e;
            }
            if (Interlocked.Decrement(ref s_pending) == 0) Done.Set();
        }
    }
}
