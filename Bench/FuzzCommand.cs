using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using GpuNet.Init;

namespace GpuNet.Bench;

/// <summary>
/// <c>fuzz &lt;checkpoint|idx|csv|safetensors-import&gt;</c>: mutates valid files in process and loads each through the
/// public loader. Outcomes: a clean rejection (the loader's documented exception type with a message), a load, a crash
/// (any other exception), a hang (a load over <see cref="FuzzRunner.HangSeconds"/> s of CPU time, or
/// <see cref="FuzzRunner.HangWallSeconds"/> s of wall time). Exit 1 on any crash or hang or
/// an allocation over <see cref="FuzzRunner.MaxAllocRatio"/> x the file's size.
/// </summary>
internal static class FuzzCommand
{
    public static Command Create()
    {
        var format = new Argument<string>("format") { Description = $"what to fuzz: {string.Join(", ", FuzzTarget.Names)}" };
        format.AcceptOnlyFromAmong(FuzzTarget.Names);
        var iterations = Cli.IntOption("--iterations", "mutated files to load", 10_000, 1, 100_000_000);
        var seed = new Option<ulong>("--seed") { Description = "seed of the mutations; iteration i uses SplitMix64.At(seed, i)", DefaultValueFactory = _ => 1 };
        var replay = new Option<int?>("--replay") { Description = "run only iteration I of --seed and print its mutation and outcome (reproduces a sample)" };
        var json = new Option<string?>("--json") { Description = "write the counts as JSON (iterations, rejected, loaded, crashes, hangs, max_alloc_ratio, ...)" };
        var cmd = new Command("fuzz", "Mutate valid checkpoint, IDX, CSV or foreign safetensors files (bit flips, truncation, absurd dimensions, " +
            "NaN/Inf payloads, duplicate or missing keys, wrong dtypes, header edits) and load each: counts clean rejections, loads, crashes, " +
            $"hangs (> {FuzzRunner.HangSeconds} s) and the largest allocation relative to the file. Exit 1 on a crash, a hang or an allocation over {FuzzRunner.MaxAllocRatio}x.")
        {
            format, iterations, seed, replay, json,
        };
        cmd.SetAction(r => Cli.Guard(() =>
        {
            var report = FuzzRunner.Run(r.GetValue(format)!, r.GetValue(iterations), r.GetValue(seed), r.GetValue(replay), Console.Out);
            if (r.GetValue(json) is string path) AtomicFile.WriteAllText(path, report.ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            return report.Passed ? Cli.Ok : Cli.Failed;
        }));
        return cmd;
    }
}

/// <summary>One reproducible failure: the iteration, the seed file, the mutations and what happened.</summary>
internal sealed record FuzzSample(string Kind, int Iteration, string SeedFile, string Mutation, string Outcome);

/// <summary>The counts of one fuzzing run.</summary>
internal sealed record FuzzReport(string Format, ulong Seed, int Iterations, int Rejected, int Loaded, int Crashes, int Hangs,
    double MaxAllocRatio, int MaxAllocIteration, long MaxAllocBytes, double Seconds, IReadOnlyList<FuzzSample> Samples)
{
    public bool Passed => Crashes == 0 && Hangs == 0 && MaxAllocRatio <= FuzzRunner.MaxAllocRatio;

    public JsonObject ToJson() => new()
    {
        ["format"] = Format, ["seed"] = Seed, ["iterations"] = Iterations, ["rejected"] = Rejected, ["loaded"] = Loaded,
        ["crashes"] = Crashes, ["hangs"] = Hangs, ["max_alloc_ratio"] = Math.Round(MaxAllocRatio, 4),
        ["max_alloc_iteration"] = MaxAllocIteration, ["max_alloc_bytes"] = MaxAllocBytes, ["seconds"] = Math.Round(Seconds, 3),
        ["passed"] = Passed,
        ["samples"] = new JsonArray(Samples.Select(s => (JsonNode)new JsonObject
        {
            ["kind"] = s.Kind, ["iteration"] = s.Iteration, ["seed_file"] = s.SeedFile, ["mutation"] = s.Mutation, ["outcome"] = s.Outcome,
        }).ToArray()),
    };
}

/// <summary>
/// The fuzzing loop. Allocation is <see cref="GC.GetAllocatedBytesForCurrentThread"/> around the load (the loaders run on
/// the calling thread and allocate no native memory), divided by the file's size: the larger of its length, its
/// decompressed length (gzip) and the bytes of the arrays a successful load returns (a float32 tensor read from F16 is
/// twice its bytes in the file), floored at <see cref="SizeFloor"/> bytes, because the fixed costs of a load (an exception with
/// its message and stack trace, stream objects, a JSON document) are a few KiB whatever the file.
/// </summary>
internal static class FuzzRunner
{
    /// <summary>A load that takes more CPU time than this (wall time where the thread's CPU time is unknown) is a hang.</summary>
    public const double HangSeconds = 1.0;
    /// <summary>A load that takes more wall time than this is a hang whatever its CPU time (a blocked load).</summary>
    public const double HangWallSeconds = 30.0;
    public const double MaxAllocRatio = 2.0;
    public const long SizeFloor = 64 * 1024;
    private const int MaxSamples = 10;
    /// <summary>A load stuck this long ends the process with the sample printed (an in-process load cannot be aborted).</summary>
    private const double WatchdogSeconds = 60;

    public static FuzzReport Run(string format, int iterations, ulong seed, int? replay, TextWriter log)
    {
        string dir = Directory.CreateTempSubdirectory("gpunet-fuzz-").FullName;
        try
        {
            using var target = FuzzTarget.Create(format, dir);
            return Run(target, dir, iterations, seed, replay, log);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    private static FuzzReport Run(FuzzTarget target, string dir, int iterations, ulong seed, int? replay, TextWriter log)
    {
        // Warm-up and sanity: every seed file loads (this also JITs the loaders, so their first allocations are not counted).
        foreach (var s in target.Seeds)
        {
            string p = Path.Combine(dir, s.Name);
            File.WriteAllBytes(p, s.Bytes);
            for (int k = 0; k < 2; k++) s.Load(p);
        }
        int first = replay ?? 0, count = replay is null ? iterations : 1;
        int rejected = 0, loaded = 0, crashes = 0, hangs = 0, maxIteration = -1;
        double maxRatio = 0;
        long maxBytes = 0;
        var samples = new List<FuzzSample>();
        var clock = Stopwatch.StartNew();
        var current = new Watch();
        using var watchdog = new Timer(_ => current.Check(log), null, 1000, 1000);
        var description = new StringBuilder();
        log.WriteLine($"fuzz {target.Name}: {count} iteration(s) from {first}, seed {seed}, seed files {string.Join(", ", target.Seeds.Select(s => $"{s.Name} ({s.Bytes.Length} B)"))}");
        for (int i = first; i < first + count; i++)
        {
            var rng = new Random(unchecked((int)SplitMix64.At(seed, (ulong)i)));
            var s = target.Seeds[rng.Next(target.Seeds.Count)];
            description.Clear();
            var bytes = FuzzMutations.Mutate(s.Bytes, s.Kind, rng, description);
            string path = Path.Combine(dir, "case-" + s.Name);
            File.WriteAllBytes(path, bytes);
            string mutation = description.ToString();
            current.Start(i, s.Name, mutation);

            string outcome;
            long produced = 0;
            bool ok = false;
            Exception? error = null;
            double cpu0 = ThreadCpuSeconds();
            long before = GC.GetAllocatedBytesForCurrentThread();
            long t0 = Stopwatch.GetTimestamp();
            try { produced = s.Load(path); ok = true; }
            catch (Exception e) { error = e; }
            double wall = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            double seconds = double.IsNaN(cpu0) ? wall : ThreadCpuSeconds() - cpu0;
            current.Stop();

            if (ok)
            {
                loaded++;
                if (target.Name == "safetensors-import") produced = FuzzTarget.SafeTensorsOutput(path);
                outcome = "loaded";
            }
            else if (error!.GetType() == target.Documented && !string.IsNullOrWhiteSpace(error.Message))
            {
                rejected++;
                outcome = $"{error.GetType().Name}: {error.Message}";
            }
            else
            {
                crashes++;
                outcome = $"CRASH {error.GetType().FullName}: {error.Message}\n{FirstFrames(error)}";
                Add(samples, new FuzzSample("crash", i, s.Name, mutation, outcome), log, seed, target.Name);
            }
            if (seconds > HangSeconds || wall > HangWallSeconds)
            {
                hangs++;
                Add(samples, new FuzzSample("hang", i, s.Name, mutation, $"{seconds:F2} s of CPU, {wall:F2} s of wall time; {outcome}"), log, seed, target.Name);
            }
            long size = Math.Max(Math.Max(bytes.LongLength, FuzzTarget.GunzipLength(bytes)), Math.Max(produced, SizeFloor));
            double ratio = (double)allocated / size;
            if (ratio > maxRatio) { maxRatio = ratio; maxIteration = i; maxBytes = allocated; }
            if (ratio > MaxAllocRatio)
                Add(samples, new FuzzSample("allocation", i, s.Name, mutation, $"{allocated} bytes allocated for a file of {bytes.Length} bytes (size {size}): {ratio:F2}x; {outcome}"), log, seed, target.Name);
            if (replay is not null)
                log.WriteLine($"iteration {i}: seed file {s.Name}, mutation: {mutation}\n  {bytes.Length} bytes, {allocated} allocated ({ratio:F3}x), {seconds * 1e3:F2} ms\n  {outcome}");
        }
        var report = new FuzzReport(target.Name, seed, count, rejected, loaded, crashes, hangs, maxRatio, maxIteration, maxBytes, clock.Elapsed.TotalSeconds, samples);
        log.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"fuzz {target.Name}: {count} iterations in {report.Seconds:F1} s: {rejected} rejected, {loaded} loaded, {crashes} crashes, {hangs} hangs, " +
            $"max allocation {maxRatio:F3}x the file (iteration {maxIteration}, {maxBytes} bytes) -> {(report.Passed ? "PASS" : "FAIL")}"));
        return report;
    }

    /// <summary>
    /// CPU time of the calling thread (Linux: utime + stime of /proc/thread-self/stat, in 1/100 s), NaN elsewhere. A hang
    /// is judged on it, not on wall time, so that a machine loaded by other work does not turn slow loads into hangs.
    /// </summary>
    private static double ThreadCpuSeconds()
    {
        if (!OperatingSystem.IsLinux()) return double.NaN;
        string stat = File.ReadAllText("/proc/thread-self/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / 100.0;
    }

    private static void Add(List<FuzzSample> samples, FuzzSample s, TextWriter log, ulong seed, string format)
    {
        if (samples.Count >= MaxSamples) return;
        samples.Add(s);
        log.WriteLine($"{s.Kind} at iteration {s.Iteration} (reproduce: Bench fuzz {format} --seed {seed} --replay {s.Iteration}): seed file {s.SeedFile}, mutation: {s.Mutation}\n  {s.Outcome}");
    }

    private static string FirstFrames(Exception e) =>
        string.Join("\n", (e.StackTrace ?? "").Split('\n').Take(4).Select(l => "    " + l.Trim()));

    /// <summary>What the loop is loading now, for the watchdog.</summary>
    private sealed class Watch
    {
        private readonly object _lock = new();
        private long _start;
        private int _iteration;
        private string _seedFile = "", _mutation = "";

        public void Start(int iteration, string seedFile, string mutation)
        {
            lock (_lock) { _iteration = iteration; _seedFile = seedFile; _mutation = mutation; _start = Stopwatch.GetTimestamp(); }
        }

        public void Stop() { lock (_lock) _start = 0; }

        public void Check(TextWriter log)
        {
            lock (_lock)
            {
                if (_start == 0 || Stopwatch.GetElapsedTime(_start).TotalSeconds < WatchdogSeconds) return;
                log.WriteLine($"hang at iteration {_iteration}: seed file {_seedFile}, mutation: {_mutation}: the load has run {WatchdogSeconds} s; exiting");
                log.Flush();
                Environment.Exit(Cli.Failed);
            }
        }
    }
}
