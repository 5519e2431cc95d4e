using GpuNet.Bench;

namespace GpuNet.Tests;

/// <summary>
/// Runs a Bench command line in-process with the console captured. Console redirection is process-wide: classes that
/// use it belong to <c>ConsoleCollection</c>, so they never run at the same time.
/// </summary>
internal static class BenchCli
{
    /// <summary>The command's exit code and what it wrote to standard output and standard error.</summary>
    public static (int Code, string Out, string Err) Run(params string[] args)
    {
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        var (o, e) = (new StringWriter(), new StringWriter());
        Console.SetOut(o);
        Console.SetError(e);
        try { return (BenchApp.Run(args), o.ToString(), e.ToString()); }
        finally
        {
            Console.SetOut(oldOut);
            Console.SetError(oldErr);
        }
    }
}
