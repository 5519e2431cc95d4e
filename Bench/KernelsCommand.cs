using System.CommandLine;
using System.Reflection;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Filters;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace GpuNet.Bench;

/// <summary>
/// <c>kernels</c>: the BenchmarkDotNet suite of the host kernels (cpu device), with GFLOP/s and GB/s columns.
/// Benchmarks run in-process (no generated project to build), so it works from <c>dotnet run -c Release</c>.
/// </summary>
internal static class KernelsCommand
{
    private static readonly Type[] Suites = [typeof(GemmBenchmarks), typeof(GemmTransposeBenchmarks), typeof(ElementwiseBenchmarks)];

    public static Command Create()
    {
        var filter = new Option<string[]>("--filter", "-f")
        {
            Description = "glob patterns over 'Namespace.Class.Method' names, e.g. '*Gemm*' or '*ElementwiseBenchmarks.Add' (repeatable; default: all)",
            AllowMultipleArgumentsPerToken = true,
        };
        var shortRun = new Option<bool>("--short") { Description = "BenchmarkDotNet's ShortRun job (3 warm-up, 3 measured iterations): quick, less precise" };
        var list = new Option<bool>("--list") { Description = "list the benchmarks (after --filter) and exit" };
        var cmd = new Command("kernels", "BenchmarkDotNet suite of the host kernels on the cpu device, with GFLOP/s and GB/s from each op's cost.")
        {
            filter, shortRun, list,
        };
        cmd.SetAction(p => Cli.Guard(() => Run(p.GetValue(filter) ?? [], p.GetValue(shortRun), p.GetValue(list))));
        return cmd;
    }

    private static int Run(string[] patterns, bool shortRun, bool list)
    {
        var benchmarks = Suites.SelectMany(t => t.GetMethods().Where(m => m.GetCustomAttribute<BenchmarkAttribute>() is not null).Select(m => (Type: t, Method: m))).ToList();
        var missing = benchmarks.Where(b => CostColumn.CostProperty(b.Type, b.Method) is null).Select(b => $"{b.Type.Name}.{b.Method.Name}").ToList();
        if (missing.Count > 0)
            throw new InvalidOperationException($"benchmarks without an OpCost property named <Method>Cost: {string.Join(", ", missing)}");

        var globs = patterns.Length == 0 ? ["*"] : patterns;
        var glob = new GlobFilter(globs);
        var selected = Suites.Select(t => BenchmarkConverter.TypeToBenchmarks(t))
            .SelectMany(r => r.BenchmarksCases).Where(c => glob.Predicate(c)).ToList();
        if (selected.Count == 0)
            throw new UsageException($"--filter {string.Join(' ', globs)} matches no benchmark; there are: {string.Join(", ", benchmarks.Select(b => $"{b.Type.Name}.{b.Method.Name}"))}");
        if (list)
        {
            foreach (var c in selected) Console.WriteLine(c.DisplayInfo);
            return Cli.Ok;
        }

        var job = (shortRun ? Job.ShortRun : Job.Default).WithToolchain(InProcessEmitToolchain.Instance);
        var config = DefaultConfig.Instance
            .AddJob(job.AsDefault())
            .AddFilter(glob)
            .AddColumn(CostColumn.Gflops, CostColumn.GBps)
            .WithArtifactsPath(Path.Combine(AppContext.BaseDirectory, "BenchmarkDotNet.Artifacts"))
            .WithOptions(ConfigOptions.JoinSummary);
        var summaries = BenchmarkRunner.Run(Suites, config);
        bool failed = summaries.Any(s => s.HasCriticalValidationErrors || s.Reports.Any(r => !r.Success));
        Console.WriteLine($"reports: {Path.Combine(AppContext.BaseDirectory, "BenchmarkDotNet.Artifacts", "results")}");
        return failed ? Cli.Failed : Cli.Ok;
    }
}
