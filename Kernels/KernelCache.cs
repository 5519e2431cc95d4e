using System.Collections.Concurrent;
using ILGPU.Runtime;

namespace GpuNet.Kernels;

/// <summary>
/// Loaded kernels of one accelerator. Each launcher is compiled once (5-160 ms) and its typed delegate kept;
/// every launch made through an op's <c>Launch</c> method is counted in <see cref="Launches"/>.
/// </summary>
public sealed class KernelCache
{
    private readonly ConcurrentDictionary<string, Delegate> _loaded = new();
    private long _launches;

    /// <summary>Creates an empty cache for <paramref name="accelerator"/>.</summary>
    public KernelCache(Accelerator accelerator) => Accelerator = accelerator;

    /// <summary>The accelerator the kernels are loaded on.</summary>
    public Accelerator Accelerator { get; }

    /// <summary>Kernel launches made through this cache so far.</summary>
    public long Launches => Interlocked.Read(ref _launches);

    /// <summary>Returns the launcher stored under <paramref name="key"/>, loading it with <paramref name="load"/> on first use.</summary>
    public T Get<T>(string key, Func<Accelerator, T> load) where T : Delegate
        => (T)_loaded.GetOrAdd(key, static (_, s) => s.load(s.acc), (load, acc: Accelerator));

    /// <summary>Counts <paramref name="count"/> kernel launches.</summary>
    public void CountLaunch(int count = 1) => Interlocked.Add(ref _launches, count);
}
