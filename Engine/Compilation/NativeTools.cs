using System.Diagnostics;
using System.Text;

namespace GpuNet.Compilation;

/// <summary>
/// The external compilers the kernel checks drive, found without installing anything: NVIDIA's <c>ptxas</c>
/// (assembles PTX, reports registers, shared memory and spills) and <c>cuobjdump</c> (disassembles the cubin to SASS),
/// both fetched by <c>.ci/fetch-ptxas.sh</c> into <c>.tools/cuda/usr/bin</c>, and <c>clang</c> (OpenCL C for SPIR).
/// </summary>
public static class NativeTools
{
    /// <summary>Environment variable with the path of ptxas (set by <c>.ci/run</c>); cuobjdump is looked for beside it.</summary>
    public const string PtxasVariable = "GPUNET_PTXAS";

    /// <summary>Environment variable with the path of an OpenCL-capable clang (default: <c>clang-14</c> on PATH).</summary>
    public const string ClangVariable = "GPUNET_CLANG";

    private static readonly Lazy<string?> _repoRoot = new(FindRepoRoot);

    /// <summary>The directory holding GpuNet.sln, found by walking up from the running binaries; null if none.</summary>
    public static string? RepoRoot => _repoRoot.Value;

    /// <summary>
    /// ptxas: <c>GPUNET_PTXAS</c> when set and non-empty (it must then exist), else <c>ptxas</c> on PATH, else
    /// <c>.tools/cuda/usr/bin/ptxas</c> under the repository root (where <c>.ci/fetch-ptxas.sh</c> puts it).
    /// </summary>
    public static ToolLookup Ptxas()
    {
        if (FromVariable(PtxasVariable) is { } fromEnv) return fromEnv;
        return OnPathOrTools("ptxas");
    }

    /// <summary>
    /// cuobjdump: beside the ptxas <see cref="Ptxas"/> finds (the same toolkit), else on PATH, else under
    /// <c>.tools/cuda/usr/bin</c>.
    /// </summary>
    public static ToolLookup Cuobjdump()
    {
        if (Ptxas().Path is { } ptxas && Path.GetDirectoryName(ptxas) is { } dir && File.Exists(Path.Combine(dir, "cuobjdump")))
            return new ToolLookup(Path.Combine(dir, "cuobjdump"), null);
        return OnPathOrTools("cuobjdump");
    }

    /// <summary>clang: <c>GPUNET_CLANG</c> when set and non-empty (it must then exist), else <c>clang-14</c> on PATH.</summary>
    public static ToolLookup Clang()
    {
        if (FromVariable(ClangVariable) is { } fromEnv) return fromEnv;
        if (OnPath("clang-14") is { } onPath) return new ToolLookup(onPath, null);
        return new ToolLookup(null, $"clang-14 not found on PATH and {ClangVariable} is unset (apt-get install clang-14)");
    }

    /// <summary>Runs <paramref name="exe"/> with <paramref name="args"/>; returns the exit code and stdout+stderr.</summary>
    /// <exception cref="TimeoutException">The tool ran over 2 minutes (it is killed).</exception>
    public static (int ExitCode, string Output) Run(string exe, params string[] args)
    {
        var psi = new ProcessStartInfo(exe)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {exe}");
        var output = new StringBuilder();
        var stderr = p.StandardError.ReadToEndAsync();
        output.Append(p.StandardOutput.ReadToEnd());
        output.Append(stderr.GetAwaiter().GetResult());
        if (!p.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{exe} {string.Join(' ', args)} ran over 2 minutes");
        }
        return (p.ExitCode, output.ToString());
    }

    private static ToolLookup OnPathOrTools(string name)
    {
        if (OnPath(name) is { } onPath) return new ToolLookup(onPath, null);
        if (RepoRoot is { } root && File.Exists(Path.Combine(root, ".tools", "cuda", "usr", "bin", name)))
            return new ToolLookup(Path.Combine(root, ".tools", "cuda", "usr", "bin", name), null);
        return new ToolLookup(null,
            $"{name} not found: {PtxasVariable} is unset or has no {name} beside it, no {name} on PATH, no .tools/cuda/usr/bin/{name} under " +
            $"{RepoRoot ?? "(no GpuNet.sln above " + AppContext.BaseDirectory + ")"}; run .ci/fetch-ptxas.sh");
    }

    private static ToolLookup? FromVariable(string variable)
    {
        var path = Environment.GetEnvironmentVariable(variable);
        if (string.IsNullOrWhiteSpace(path)) return null;
        if (File.Exists(path)) return new ToolLookup(path, null);
        return new ToolLookup(null, $"{variable}={path} does not exist");
    }

    private static string? OnPath(string name)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, name);
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }

    private static string? FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "GpuNet.sln"))) return dir.FullName;
        return null;
    }
}

/// <summary>Where a tool was found (<paramref name="Path"/>), or why not (<paramref name="Missing"/>).</summary>
/// <param name="Path">The tool's path; null when it was not found.</param>
/// <param name="Missing">Why the tool was not found, and how to get it; null when it was found.</param>
public sealed record ToolLookup(string? Path, string? Missing);
