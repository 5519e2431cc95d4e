using System.Diagnostics;
using System.Text;

namespace GpuNet.Tests;

/// <summary>
/// The external compilers the kernel compile tests drive: NVIDIA's <c>ptxas</c> (validates PTX, reports registers,
/// shared memory and spills) and <c>clang</c> (compiles OpenCL C for SPIR). A missing tool makes a test report itself
/// skipped with the reason, except under CI (<c>CI=true</c>) where it is a failure: CI must run these checks.
/// </summary>
public static class Toolchain
{
    /// <summary>Environment variable with the path of ptxas (set by <c>.ci/run</c>).</summary>
    public const string PtxasVariable = "GPUNET_PTXAS";

    /// <summary>Environment variable with the path of an OpenCL-capable clang (default: <c>clang-14</c> on PATH).</summary>
    public const string ClangVariable = "GPUNET_CLANG";

    private static readonly Lazy<string?> _repoRoot = new(FindRepoRoot);

    /// <summary>True when the <c>CI</c> environment variable is <c>true</c> (case-insensitive) or <c>1</c>.</summary>
    public static bool IsCI => Environment.GetEnvironmentVariable("CI") is { } ci
        && (ci.Equals("true", StringComparison.OrdinalIgnoreCase) || ci == "1");

    /// <summary>The directory holding GpuNet.sln, found by walking up from the test binaries; null if none.</summary>
    public static string? RepoRoot => _repoRoot.Value;

    /// <summary>
    /// ptxas: <c>GPUNET_PTXAS</c> when set and non-empty (it must then exist), else <c>ptxas</c> on PATH, else
    /// <c>.tools/cuda/usr/bin/ptxas</c> under the repository root (where <c>.ci/fetch-ptxas.sh</c> puts it).
    /// </summary>
    public static ToolLookup Ptxas()
    {
        if (FromVariable(PtxasVariable) is { } fromEnv) return fromEnv;
        if (OnPath("ptxas") is { } onPath) return new ToolLookup(onPath, null);
        if (RepoRoot is { } root && File.Exists(Path.Combine(root, ".tools", "cuda", "usr", "bin", "ptxas")))
            return new ToolLookup(Path.Combine(root, ".tools", "cuda", "usr", "bin", "ptxas"), null);
        return new ToolLookup(null,
            $"ptxas not found: {PtxasVariable} is unset, no ptxas on PATH, no .tools/cuda/usr/bin/ptxas under " +
            $"{RepoRoot ?? "(no GpuNet.sln above " + AppContext.BaseDirectory + ")"}; run .ci/fetch-ptxas.sh");
    }

    /// <summary>clang: <c>GPUNET_CLANG</c> when set and non-empty (it must then exist), else <c>clang-14</c> on PATH.</summary>
    public static ToolLookup Clang()
    {
        if (FromVariable(ClangVariable) is { } fromEnv) return fromEnv;
        if (OnPath("clang-14") is { } onPath) return new ToolLookup(onPath, null);
        return new ToolLookup(null, $"clang-14 not found on PATH and {ClangVariable} is unset (apt-get install clang-14)");
    }

    /// <summary>
    /// Returns the tool's path, or ends the test: skipped with the reason, or failed under CI.
    /// </summary>
    public static string Require(ToolLookup tool)
    {
        if (tool.Path is not null) return tool.Path;
        if (IsCI) Assert.Fail($"CI=true and {tool.Missing}");
        Assert.Skip(tool.Missing!);
        return null!; // unreachable: Assert.Skip throws
    }

    /// <summary>Runs <paramref name="exe"/> with <paramref name="args"/>; returns the exit code and stdout+stderr.</summary>
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
public sealed record ToolLookup(string? Path, string? Missing);
