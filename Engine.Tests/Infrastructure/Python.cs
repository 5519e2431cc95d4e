using System.Diagnostics;

namespace GpuNet.Tests;

/// <summary>
/// Runs a Python standard-library script: the independent writer or reader some tests check GpuNet's files against.
/// </summary>
internal static class Python
{
    /// <summary>
    /// Runs <c>python3 -c <paramref name="script"/> args...</c> with <paramref name="stdin"/> on its standard input and
    /// returns its standard output; fails the test on a non-zero exit (with its standard error) and skips it when
    /// python3 is absent.
    /// </summary>
    public static string Run(string script, IEnumerable<string> args, string? stdin = null)
    {
        try
        {
            var psi = new ProcessStartInfo("python3") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add(script);
            foreach (var a in args) psi.ArgumentList.Add(a);
            using var proc = Process.Start(psi)!;
            var stderr = proc.StandardError.ReadToEndAsync();
            if (stdin is not null) proc.StandardInput.Write(stdin);
            proc.StandardInput.Close();
            string output = proc.StandardOutput.ReadToEnd();
            proc.WaitForExit();
            Assert.True(proc.ExitCode == 0, $"python3 failed ({proc.ExitCode}): {stderr.Result}");
            return output;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            Assert.Skip($"python3 is not available: {e.Message}");
            throw;
        }
    }
}
