using System.Reflection;
using ILGPU;
using ILGPU.Backends;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace GpuNet.Compilation;

/// <summary>
/// Compiles catalog kernels with ILGPU backends that need no device, in one <see cref="Context"/> made like
/// <see cref="Device"/>'s (algorithms enabled, O2). A failing front-end compile poisons an ILGPU Context (every later
/// compile in it throws NullReferenceException), so after a failure the context is rebuilt and the failure is
/// reported in full, with the first failure of the run named in every later one.
/// </summary>
public abstract class KernelCompiler : IDisposable
{
    private readonly Dictionary<string, Backend> _backends = new(StringComparer.Ordinal);
    private Context? _context;
    private string? _firstFailure;

    /// <summary>Creates the compiler and its scratch directory, named <paramref name="scratchPrefix"/> plus a random suffix.</summary>
    protected KernelCompiler(string scratchPrefix) => Scratch = Directory.CreateTempSubdirectory(scratchPrefix).FullName;

    /// <summary>A temporary directory for generated sources and compiler outputs, removed on dispose.</summary>
    public string Scratch { get; }

    /// <summary>Makes the backend named <paramref name="config"/> (a name the derived class defines).</summary>
    protected abstract Backend CreateBackend(Context context, string config);

    /// <summary>
    /// Compiles <paramref name="kernel"/> (named <paramref name="name"/> in messages) with the backend
    /// <paramref name="config"/>. On failure returns null and the full exception in <paramref name="error"/>, and
    /// rebuilds the context for the next kernel.
    /// </summary>
    public CompiledKernel? TryCompile(string name, MethodInfo kernel, string config, out string? error)
    {
        _context ??= Device.CreateContext();
        if (!_backends.TryGetValue(config, out var backend)) _backends[config] = backend = CreateBackend(_context, config);
        try
        {
            error = null;
            return backend.Compile(KernelCatalog.EntryPoint(kernel), new KernelSpecialization());
        }
        catch (Exception e)
        {
            string earlier = _firstFailure is null ? "" : $"\n(an earlier compile in this run failed first: {_firstFailure})";
            _firstFailure ??= $"{name} [{config}]: {e.GetType().Name}: {e.Message.Split('\n')[0]}";
            ResetContext();
            error = $"ILGPU could not compile {name} for {config} (the context is rebuilt for the next kernel){earlier}{Hint(e)}\n{e}";
            return null;
        }
    }

    private static string Hint(Exception e)
    {
        string all = e.ToString();
        if (all.Contains("Not supported IL instruction of type 'Throw'", StringComparison.Ordinal))
            return "\nhint: something the kernel calls can throw (Math.Clamp, checked casts, argument checks): use XMath.Clamp or Min/Max";
        if (all.Contains("InvalidCodeGenerationException", StringComparison.Ordinal) && all.Contains("Shuffle", StringComparison.Ordinal))
            return "\nhint: ILGPU 1.5.3's OpenCL backend emits Warp.Shuffle* only for Intel devices; use ILGPU.Algorithms' Warp/Group Reduce or shared memory";
        if (all.Contains("CapabilityNotSupportedException", StringComparison.Ordinal))
            return "\nhint: the kernel needs an optional OpenCL capability (fp16, fp64, int64 atomics, subgroups) that this capability set lacks";
        return "";
    }

    /// <summary>Writes <paramref name="text"/> to a file in <see cref="Scratch"/> and returns its path.</summary>
    public string WriteScratch(string fileName, string text)
    {
        var path = Path.Combine(Scratch, fileName);
        File.WriteAllText(path, text);
        return path;
    }

    /// <summary><paramref name="kernel"/>'s name as a file name: characters other than letters, digits, '_' and '.' become '_'.</summary>
    public static string FileName(string kernel)
        => string.Concat(kernel.Select(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' ? c : '_'));

    private void ResetContext()
    {
        foreach (var b in _backends.Values) b.Dispose();
        _backends.Clear();
        _context?.Dispose();
        _context = null;
    }

    /// <summary>Disposes backends and context and removes the scratch directory.</summary>
    public void Dispose()
    {
        ResetContext();
        try { Directory.Delete(Scratch, recursive: true); } catch (IOException) { }
        GC.SuppressFinalize(this);
    }
}

/// <summary>
/// ILGPU's PTX backend: SM_80 code at PTX ISA 7.0 (ptxas 11.8 accepts up to ISA 7.8), which ptxas assembles for
/// sm_80 and sm_90 alike. No GPU or CUDA toolkit is needed to generate it.
/// </summary>
public class PtxCompiler() : KernelCompiler("gpunet-ptx-")
{
    /// <summary>The only backend configuration: SM_80 at ISA 7.0.</summary>
    public const string Config = "ptx-sm80-isa70";

    /// <inheritdoc/>
    protected override Backend CreateBackend(Context context, string config) => config == Config
        ? new PTXBackend(context, CudaArchitecture.SM_80, CudaInstructionSet.ISA_70, null!)
        : throw new ArgumentException($"PtxCompiler has one configuration, '{Config}'; got '{config}'", nameof(config));

    /// <summary>The PTX of <paramref name="kernel"/>, or null with ILGPU's error in <paramref name="error"/>.</summary>
    public string? TryCompilePtx(string name, MethodInfo kernel, out string? error)
        => ((PTXCompiledKernel?)TryCompile(name, kernel, Config, out error))?.PTXAssembly;
}
