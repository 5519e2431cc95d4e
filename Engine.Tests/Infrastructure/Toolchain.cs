using GpuNet.Compilation;

namespace GpuNet.Tests;

/// <summary>
/// The external compilers the kernel tests drive, looked up by <see cref="NativeTools"/>. A missing tool makes a test
/// report itself skipped with the reason, except under CI (<c>CI=true</c>) where it is a failure: CI must run these
/// checks.
/// </summary>
public static class Toolchain
{
    /// <summary>True when the <c>CI</c> environment variable is <c>true</c> (case-insensitive) or <c>1</c>.</summary>
    public static bool IsCI => Environment.GetEnvironmentVariable("CI") is { } ci
        && (ci.Equals("true", StringComparison.OrdinalIgnoreCase) || ci == "1");

    /// <summary>Returns the tool's path, or ends the test: skipped with the reason, or failed under CI.</summary>
    public static string Require(ToolLookup tool)
    {
        if (tool.Path is not null) return tool.Path;
        if (IsCI) Assert.Fail($"CI=true and {tool.Missing}");
        Assert.Skip(tool.Missing!);
        return null!; // unreachable: Assert.Skip throws
    }
}
