using System.Runtime.InteropServices;
using System.Runtime.ExceptionServices;
using System.Runtime.Intrinsics;

namespace GpuNet.Kernels;

/// <summary>
/// What the host's SIMD units offer, and the parallel loops of the host implementations. The loops allocate nothing
/// per call: the body is a <c>static</c> lambda (cached by the compiler) and its captured values travel in a struct
/// <c>state</c>; large jobs run on a persistent pool of <see cref="Environment.ProcessorCount"/> - 1 background
/// threads plus the calling thread, which claim work items with an interlocked counter. Work is split at fixed
/// boundaries that depend only on the length and the core count, never on thread timing, so results are bit-identical
/// run to run. One job runs on the pool at a time; a loop started while the pool is busy (another thread's job, or a
/// nested loop inside a job) runs its items inline, in order, on its own thread.
/// </summary>
public static class HostSimd
{
    /// <summary>float32 lanes of the widest hardware-accelerated vector (16 with AVX-512, 8 with AVX2).</summary>
    public static int FloatLanes => Vector512.IsHardwareAccelerated ? 16 : Vector256.IsHardwareAccelerated ? 8 : Vector128.IsHardwareAccelerated ? 4 : 1;

    /// <summary>Human-readable SIMD width, for device listings.</summary>
    public static string Description => Vector512.IsHardwareAccelerated ? "AVX-512 (16 float lanes)" : Vector256.IsHardwareAccelerated ? "256-bit SIMD (8 float lanes)" : "128-bit SIMD";

    /// <summary>Below this many elements, an elementwise host op runs on the calling thread.</summary>
    public const int ParallelThreshold = 1 << 16;

    /// <summary>
    /// Runs <paramref name="body"/>(state, start, count) over <paramref name="length"/> elements split into one chunk per
    /// core (or inline as one chunk when the work is small). Chunks are multiples of 64 elements so vector loops stay
    /// aligned. Pass a <c>static</c> lambda and the values it needs in <paramref name="state"/>: nothing is allocated.
    /// </summary>
    public static void ForChunks<TState>(int length, TState state, Action<TState, int, int> body)
    {
        int chunk = ChunkSize(length);
        if (chunk >= length) { body(state, 0, length); return; }
        ForRanges(length, chunk, true, state, body);
    }

    /// <summary>
    /// <see cref="ForChunks{TState}"/> for a body that captures what it needs (its closure is allocated by the caller:
    /// use the state overload on hot paths).
    /// </summary>
    public static void ForChunks(int length, Action<int, int> body) => ForChunks(length, body, static (b, s, n) => b(s, n));

    /// <summary>
    /// The chunk length <see cref="ForChunks"/> uses for <paramref name="length"/> elements (chunk i starts at
    /// i * ChunkSize); at least <paramref name="length"/> when it runs inline as one chunk.
    /// </summary>
    public static int ChunkSize(int length)
    {
        int workers = Environment.ProcessorCount;
        if (length < ParallelThreshold || workers == 1) return Math.Max(length, 1);
        return ((length + workers - 1) / workers + 63) & ~63;
    }

    /// <summary>
    /// Runs <paramref name="body"/>(state, start, count) over [0, <paramref name="length"/>) cut into consecutive ranges
    /// of <paramref name="chunk"/> units (the last may be shorter), on the pool when <paramref name="parallel"/> and
    /// there are several ranges, else on the calling thread in order. The cuts depend only on the arguments.
    /// </summary>
    public static void ForRanges<TState>(int length, int chunk, bool parallel, TState state, Action<TState, int, int> body)
    {
        if (length <= 0) return;
        if (chunk < 1) throw new ArgumentOutOfRangeException(nameof(chunk), chunk, "ForRanges: chunk must be >= 1");
        int ranges = (int)(((long)length + chunk - 1) / chunk);
        if (ranges == 1) { body(state, 0, length); return; }
        For(ranges, parallel, new RangeState<TState>(state, body, length, chunk),
            static (r, i) => r.Body(r.State, i * r.Chunk, Math.Min(r.Chunk, r.Length - i * r.Chunk)));
    }

    /// <summary>
    /// Runs <paramref name="body"/>(state, i) for i in [0, <paramref name="count"/>): on the pool when
    /// <paramref name="parallel"/>, else on the calling thread in order. Each i is one work item, so keep items coarse.
    /// </summary>
    public static void For<TState>(int count, bool parallel, TState state, Action<TState, int> body)
    {
        if (count <= 0) return;
        if (!parallel || count == 1 || Pool.Workers == 0 || t_insideJob || !Monitor.TryEnter(Pool.Gate))
        {
            for (int i = 0; i < count; i++) body(state, i);
            return;
        }
        try
        {
            Slot<TState>.State = state;
            Slot<TState>.Body = body;
            t_insideJob = true;
            Pool.Run(Slot<TState>.Invoke, count);
        }
        finally
        {
            t_insideJob = false;
            Slot<TState>.State = default!;
            Slot<TState>.Body = null;
            Monitor.Exit(Pool.Gate);
        }
    }

    /// <summary>Threads that can work on one job: the pool's workers plus the calling thread.</summary>
    public static int PoolThreads => Pool.Workers + 1;

    /// <summary>
    /// Diagnostics: the managed bytes the pool's worker threads have allocated, summed over the workers, as each
    /// recorded it (<see cref="GC.GetAllocatedBytesForCurrentThread"/>) after its last work item. Read it between jobs:
    /// with the calling thread's own count it is what a host computation allocated, whatever else the process does.
    /// </summary>
    internal static long WorkerAllocatedBytes => Pool.AllocatedBytes;

    // True on pool workers (always) and on a thread while it runs a pool job: loops started there run inline.
    [ThreadStatic] private static bool t_insideJob;

    private readonly struct RangeState<TState>(TState state, Action<TState, int, int> body, int length, int chunk)
    {
        public readonly TState State = state;
        public readonly Action<TState, int, int> Body = body;
        public readonly int Length = length;
        public readonly int Chunk = chunk;
    }

    // The running job of one state type: set under Pool.Gate before the job is published, cleared after it completes.
    private static class Slot<TState>
    {
        public static TState State = default!;
        public static Action<TState, int>? Body;
        public static readonly Action<int> Invoke = static i => Body!(State, i);
    }

    // The persistent pool. A job is (Job, Count); _claim holds (generation << 32) | next item. A worker reads the
    // claim word, then the job, and takes items by CAS on the claim word while its generation is unchanged; a new job
    // first closes the claim word under the next generation, then writes the job, then opens it. So an item is only
    // ever run with the job of its generation.
    private static class Pool
    {
        public static readonly object Gate = new();
        public static readonly int Workers = Math.Max(0, Environment.ProcessorCount - 1);
        // Per worker: GC.GetAllocatedBytesForCurrentThread after its last work item (written before the item counts as done).
        private static readonly long[] s_allocated = new long[Workers];
        private const int Closed = int.MaxValue;
        private static readonly SemaphoreSlim Wake = new(0);
        private static readonly ManualResetEventSlim Done = new(false);
        private static Action<int>? s_job;
        private static int s_count;
        private static long s_claim = Closed;
        private static int s_remaining;
        private static ExceptionDispatchInfo? s_error;
        private static bool s_started;

        public static void Run(Action<int> job, int count)
        {
            if (!s_started) Start();
            long generation = (Volatile.Read(ref s_claim) >> 32) + 1;
            Volatile.Write(ref s_claim, generation << 32 | Closed);
            Volatile.Write(ref s_job, job);
            Volatile.Write(ref s_count, count);
            Volatile.Write(ref s_remaining, count);
            Done.Reset();
            Volatile.Write(ref s_claim, generation << 32);
            Wake.Release(Math.Min(Workers, count - 1));
            Work(-1);
            if (Volatile.Read(ref s_remaining) != 0)
            {
                var spin = new SpinWait();
                for (int i = 0; i < 20 && Volatile.Read(ref s_remaining) != 0; i++) spin.SpinOnce(-1);
                if (Volatile.Read(ref s_remaining) != 0) Done.Wait();
            }
            Volatile.Write(ref s_job, null);
            var error = Interlocked.Exchange(ref s_error, null);
            error?.Throw();
        }

        private static void Start()
        {
            for (int w = 0; w < Workers; w++)
            {
                int worker = w;
                new Thread(() => WorkerLoop(worker)) { IsBackground = true, Name = "GpuNet host worker " + w }.Start();
            }
            s_started = true;
        }

        public static long AllocatedBytes
        {
            get
            {
                long sum = 0;
                for (int w = 0; w < s_allocated.Length; w++) sum += Volatile.Read(ref s_allocated[w]);
                return sum;
            }
        }

        private static void WorkerLoop(int worker)
        {
            t_insideJob = true;
            while (true)
            {
                Wake.Wait();
                Work(worker);
            }
        }

        // Takes items of the current generation until none is left; worker: the pool worker's index, -1 for the caller.
        private static void Work(int worker)
        {
            long seen = Volatile.Read(ref s_claim);
            if ((int)seen == Closed) return;
            long generation = seen >> 32;
            var job = Volatile.Read(ref s_job);
            int count = Volatile.Read(ref s_count);
            if (job is null) return;
            while (true)
            {
                long c = Volatile.Read(ref s_claim);
                if (c >> 32 != generation || (int)c >= count) return;
                if (Interlocked.CompareExchange(ref s_claim, c + 1, c) != c) continue;
                try { job((int)c); }
                catch (Exception e) { Interlocked.CompareExchange(ref s_error, ExceptionDispatchInfo.Capture(e), null); }
                if (worker >= 0) Volatile.Write(ref s_allocated[worker], GC.GetAllocatedBytesForCurrentThread());
                if (Interlocked.Decrement(ref s_remaining) == 0) Done.Set();
            }
        }
    }

    /// <summary>acc[j] += v[j], widening to float64 (acc and v have the same length): the accumulation of float rows in float64.</summary>
    public static void AddWide(ReadOnlySpan<float> v, Span<double> acc)
    {
        int j = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            ref float p = ref MemoryMarshal.GetReference(v);
            ref double q = ref MemoryMarshal.GetReference(acc);
            for (; j <= v.Length - 16; j += 16)
            {
                var (lo, hi) = Vector512.Widen(Vector512.LoadUnsafe(ref p, (nuint)j));
                (Vector512.LoadUnsafe(ref q, (nuint)j) + lo).StoreUnsafe(ref q, (nuint)j);
                (Vector512.LoadUnsafe(ref q, (nuint)(j + 8)) + hi).StoreUnsafe(ref q, (nuint)(j + 8));
            }
        }
        for (; j < v.Length; j++) acc[j] += v[j];
    }
}
