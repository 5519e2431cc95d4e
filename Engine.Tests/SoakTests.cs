using System.Diagnostics;
using System.Text.Json;
using GpuNet.Bench;

namespace GpuNet.Tests;

/// <summary>
/// <c>Bench soak</c>: a short run in a child process (handles, threads and the managed heap are process-wide figures,
/// which the tests running beside it in this process would disturb), and the flatness rule on made-up figures.
/// </summary>
public sealed class SoakTests
{
    [Fact]
    public async Task ShortSoakOnCpuIsFlat()
    {
        using var dir = new TempDir();
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "Bench.dll"), "soak", "--device", "cpu", "--steps", "300", "--eval-every", "100", "--json", dir.File("s.json") })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        string output = await p.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        await p.WaitForExitAsync(TestContext.Current.CancellationToken);
        Assert.True(p.ExitCode == 0, $"exit {p.ExitCode}\n{output}\n{await err}");
        using var json = JsonDocument.Parse(File.ReadAllText(dir.File("s.json")));
        var r = json.RootElement;
        Assert.True(r.GetProperty("flat").GetBoolean());
        var evals = r.GetProperty("evaluations").EnumerateArray().ToArray();
        Assert.Equal([100, 200, 300], evals.Select(e => e.GetProperty("step").GetInt32()));
        Assert.All(evals, e => Assert.True(e.GetProperty("live_device_bytes").GetInt64() > 0));
        Assert.All(evals, e => Assert.True(e.GetProperty("threads").GetInt32() > 0 && e.GetProperty("handles").GetInt32() > 0));
        Assert.Contains("soak: flat", output);
    }

    private static SoakPoint P(int step, long device = 1000, long heap = 5_000_000, int handles = 50, int threads = 20)
        => new(step, device, heap, handles, threads, 0.5, 0.9, step / 100.0);

    [Fact]
    public void TheRuleFlagsEveryKindOfGrowth()
    {
        Assert.True(new SoakReport("cpu", "x", 300, 100, [P(100), P(200, heap: 5_900_000), P(300, threads: 19)]).Flat);
        var r = new SoakReport("cpu", "x", 400, 100, [P(100), P(200, device: 1004), P(300, heap: 6_100_000), P(400, handles: 51, threads: 21)]);
        Assert.False(r.Flat);
        Assert.Equal(4, r.Violations.Count);
        Assert.Contains("step 200: live device bytes 1004, first evaluation 1000 (must be identical)", r.Violations);
        Assert.Contains("step 300: managed heap 6100000, first evaluation 5000000 (allowed +-1048576)", r.Violations);
        Assert.Contains("handles grew from 50 (step 100) to 51 (step 400)", r.Violations);
        Assert.Contains("threads grew from 20 (step 100) to 21 (step 400)", r.Violations);
    }
}
