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
        Assert.All(evals, e => Assert.True(e.GetProperty("threads").GetInt32() > e.GetProperty("on_demand_threads").GetInt32() && e.GetProperty("handles").GetInt32() > 0));
        Assert.Contains("soak: flat", output);
    }

    private static SoakPoint P(int step, long device = 1000, long heap = 5_000_000, int handles = 50, int threads = 20, int onDemand = 4)
        => new(step, device, heap, handles, threads, onDemand, 0.5, 0.9, step / 100.0);

    [Theory]
    [InlineData(".NET TP Worker", true)]
    [InlineData(".NET TP Gate", true)]
    [InlineData(".NET Tiered Com", true)]
    [InlineData(".NET Timer", true)]
    [InlineData(".NET Finalizer", false)]
    [InlineData("GpuNet host wor", false)]
    [InlineData("GpuNet.DataLoad", false)]
    [InlineData(".NET Long Runni", false)]
    public void OnDemandThreadsAreTheRuntimesOwn(string name, bool onDemand) => Assert.Equal(onDemand, SoakCommand.IsOnDemand(name));

    [Fact]
    public void TheRuleFlagsEveryKindOfGrowth()
    {
        Assert.True(new SoakReport("cpu", "x", 300, 100, [P(100), P(200, heap: 5_900_000), P(300, threads: 19)]).Flat);
        // The runtime's on-demand threads (thread pool, tiered compilation) come and go: not a leak.
        Assert.True(new SoakReport("cpu", "x", 300, 100, [P(100), P(200, threads: 16, onDemand: 0), P(300, threads: 23, onDemand: 7)]).Flat);
        Assert.False(new SoakReport("cpu", "x", 300, 100, [P(100), P(200), P(300, threads: 23, onDemand: 6)]).Flat);
        var r = new SoakReport("cpu", "x", 400, 100, [P(100), P(200, device: 1004), P(300, heap: 6_100_000), P(400, handles: 51, threads: 21)]);
        Assert.False(r.Flat);
        Assert.Equal(4, r.Violations.Count);
        Assert.Contains("step 200: live device bytes 1004, first evaluation 1000 (must be identical)", r.Violations);
        Assert.Contains("step 300: managed heap 6100000, first evaluation 5000000 (allowed +-1048576)", r.Violations);
        Assert.Contains("handles grew from 50 (step 100) to 51 (step 400)", r.Violations);
        Assert.Contains("threads other than the runtime's on-demand ones grew from 16 (step 100) to 17 (step 400)", r.Violations);
    }
}
