using System.Collections.Concurrent;
using System.Reflection;
using ILGPU.Runtime;

namespace GpuNet.Kernels;

/// <summary>
/// Loaded kernels of one accelerator, keyed by the kernel method (a generic kernel's closed instantiation is its own
/// key). Each launcher is compiled once (5-160 ms) and its typed delegate kept; every launch made through an op's
/// <c>Launch</c> method is counted in <see cref="Launches"/>.
/// </summary>
public sealed class KernelCache
{
    private readonly ConcurrentDictionary<MethodInfo, Delegate> _loaded = new();
    private long _launches;

    /// <summary>Creates an empty cache for <paramref name="accelerator"/>.</summary>
    public KernelCache(Accelerator accelerator) => Accelerator = accelerator;

    /// <summary>The accelerator the kernels are loaded on.</summary>
    public Accelerator Accelerator { get; }

    /// <summary>Kernel launches made through this cache so far.</summary>
    public long Launches => Interlocked.Read(ref _launches);

    /// <summary>
    /// Returns the launcher of <paramref name="kernel"/>, loading it with <paramref name="load"/> on first use.
    /// A compile failure is rethrown naming the kernel.
    /// </summary>
    /// <exception cref="KernelCompilationException">ILGPU could not compile the kernel for this accelerator.</exception>
    public T Get<T>(Delegate kernel, Func<Accelerator, T> load) where T : Delegate
        => (T)_loaded.GetOrAdd(kernel.Method, static (m, s) => Load(m, s.load, s.acc), (load, acc: Accelerator));

    private static T Load<T>(MethodInfo kernel, Func<Accelerator, T> load, Accelerator accelerator) where T : Delegate
    {
        try { return load(accelerator); }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new KernelCompilationException(KernelName(kernel), accelerator.AcceleratorType.ToString(), e);
        }
    }

    /// <summary>The kernel's name as <c>Type.Method</c>, with type arguments for a generic kernel.</summary>
    public static string KernelName(MethodInfo kernel)
    {
        string name = $"{kernel.DeclaringType?.Name}.{kernel.Name}";
        return kernel.IsGenericMethod ? $"{name}<{string.Join(", ", kernel.GetGenericArguments().Select(t => t.Name))}>" : name;
    }

    /// <summary>Counts <paramref name="count"/> kernel launches.</summary>
    public void CountLaunch(int count = 1) => Interlocked.Add(ref _launches, count);
}

/// <summary>A kernel failed to compile for an accelerator; <see cref="Kernel"/> names it.</summary>
public sealed class KernelCompilationException(string kernel, string accelerator, Exception inner)
    : Exception($"kernel {kernel} failed to compile for the {accelerator} accelerator: {inner.Message}", inner)
{
    /// <summary>The kernel as <c>Type.Method</c>.</summary>
    public string Kernel { get; } = kernel;
}
