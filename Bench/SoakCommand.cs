using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using GpuNet.Data;
using GpuNet.Nn;
using GpuNet.Optim;
using GpuNet.Training;

namespace GpuNet.Bench;

/// <summary>
/// <c>soak [--device D] [--steps N]</c>: N training steps of the mnist-mlp network (MNIST when it is in the cache,
/// else a seeded synthetic set of the same shape) with an evaluation every <c>--eval-every</c> steps, recording at each:
/// live device bytes, the managed heap after a full collection, the process's handle count, its thread count, and of
/// those the threads the runtime starts and retires on demand (thread-pool workers and gate, the tiered-compilation
/// worker, timers: <see cref="OnDemandThreads"/>). The run is flat when, against the first evaluation (which follows the
/// warm-up of pools, JIT and threads): live device bytes are identical at every evaluation, the managed heap stays
/// within <see cref="HeapToleranceBytes"/>, and the last evaluation has no more handles and no more other threads (the
/// engine's own, the loader's, any the program started) than the first. On-demand threads are reported, not judged:
/// the runtime adds them when the machine is loaded and retires them when idle, so a count of them moves without a
/// leak (measured: 11 to 15 threads between evaluations of one run on a loaded machine). Exit 0 when flat, 1 when not.
/// </summary>
internal static class SoakCommand
{
    public const long HeapToleranceBytes = 1 << 20;

    public static Command Create()
    {
        var device = Cli.DeviceOption();
        var steps = Cli.IntOption("--steps", "training steps", 20_000, 2, 100_000_000);
        var every = Cli.IntOption("--eval-every", "steps between evaluations", 1_000, 1, 100_000_000);
        var batch = Cli.IntOption("--batch-size", "batch size", 128, 1, 65_536);
        var json = new Option<string?>("--json") { Description = "write every evaluation's figures and the verdict as JSON" };
        var cmd = new Command("soak", "Train mnist-mlp for N steps, evaluating every K: live device bytes, managed heap after a full GC, handles and threads " +
            "must stay flat (device bytes identical, heap within 1 MiB, no growth of handles or of threads other than the runtime's on-demand ones from the first evaluation to the last); exit 1 otherwise.")
        {
            device, steps, every, batch, json,
        };
        cmd.SetAction(r => Cli.Guard(() =>
        {
            int n = r.GetValue(steps), k = r.GetValue(every);
            if (k > n / 2) throw new UsageException($"--eval-every: {k} leaves fewer than two evaluations in --steps {n}; expected <= {n / 2}");
            using var dev = Cli.OpenDevice(r.GetValue(device));
            var report = Run(dev, n, k, r.GetValue(batch), Console.Out);
            if (r.GetValue(json) is string path) AtomicFile.WriteAllText(path, report.ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            return report.Flat ? Cli.Ok : Cli.Failed;
        }));
        return cmd;
    }

    public static SoakReport Run(Device device, int steps, int every, int batchSize, TextWriter log)
    {
        const ulong seed = 1;
        var (train, val, source) = Data(seed);
        var preset = Preset.Find("mnist-mlp")!;
        var s = preset.Defaults with { BatchSize = batchSize };
        using var model = Model.Build(device, preset.Network(s), train.SampleShape.ToArray(), batchSize, new ModelOptions { Seed = seed });
        using var optimizer = new Adam(device, model.Parameters, model.Gradients!, s.LearningRate, options: new OptimizerOptions().ForModel(model));
        using var loader = new DataLoader(device, train, batchSize, shuffle: true, dropLast: true, seed, prefetch: true, BatchTargets.Labels);
        using var valLoader = new DataLoader(device, val, batchSize, false, false, seed, prefetch: false, BatchTargets.Labels);
        var trainer = new Trainer(model, preset.Loss(), optimizer, new Schedules.CosineAnnealingLR(s.LearningRate, steps));
        var window = new StepWindow(loader, every);
        log.WriteLine($"soak: {steps} steps of mnist-mlp on {device.Name}, batch {batchSize}, data {source} (train {train.Count}, validation {val.Count}), evaluation every {every} steps");
        var table = new TextTable("step", "live device bytes", "managed heap", "handles", "threads", "on-demand threads", "val loss", "val acc", "s");
        var points = new List<SoakPoint>();
        var clock = Stopwatch.StartNew();
        for (int done = 0; done + every <= steps; done += every)
        {
            trainer.Fit(window, null, 1);
            var eval = trainer.Evaluate(valLoader);
            device.Synchronize();
            var p = Measure(done + every, device, eval.Loss, eval.Accuracy ?? double.NaN, clock.Elapsed.TotalSeconds);
            points.Add(p);
            table.Add(p.Step.ToString(CultureInfo.InvariantCulture), p.LiveDeviceBytes.ToString("N0", CultureInfo.InvariantCulture),
                p.ManagedHeapBytes.ToString("N0", CultureInfo.InvariantCulture), p.Handles.ToString(CultureInfo.InvariantCulture),
                p.Threads.ToString(CultureInfo.InvariantCulture), p.OnDemandThreads.ToString(CultureInfo.InvariantCulture), p.ValLoss.ToString("F4", CultureInfo.InvariantCulture),
                p.ValAccuracy.ToString("P2", CultureInfo.InvariantCulture), p.Seconds.ToString("F1", CultureInfo.InvariantCulture));
            log.WriteLine($"step {p.Step}: live device bytes {p.LiveDeviceBytes}, managed heap {p.ManagedHeapBytes}, handles {p.Handles}, threads {p.Threads} ({p.OnDemandThreads} on demand), val loss {p.ValLoss:F4}");
        }
        table.Write(log);
        var report = new SoakReport(device.Name, source, steps, every, points);
        foreach (var v in report.Violations) log.WriteLine($"not flat: {v}");
        log.WriteLine(report.Flat ? "soak: flat" : "soak: NOT flat");
        return report;
    }

    private static SoakPoint Measure(int step, Device device, double loss, double accuracy, double seconds)
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        using var self = Process.GetCurrentProcess();
        return new SoakPoint(step, device.Counters.LiveBytes, GC.GetTotalMemory(forceFullCollection: false), self.HandleCount, self.Threads.Count,
            OnDemandThreads(), loss, accuracy, seconds);
    }

    /// <summary>
    /// Threads the runtime starts and retires on its own: on Linux those whose name (/proc/self/task/*/comm) is a
    /// thread-pool worker or gate, the tiered-compilation worker or a timer; elsewhere <see cref="ThreadPool.ThreadCount"/>.
    /// </summary>
    public static int OnDemandThreads()
    {
        const string tasks = "/proc/self/task";
        if (!Directory.Exists(tasks)) return ThreadPool.ThreadCount;
        int n = 0;
        foreach (var task in Directory.EnumerateDirectories(tasks))
        {
            string name;
            try { name = File.ReadAllText(Path.Combine(task, "comm")).TrimEnd('\n'); }
            catch (IOException) { continue; }   // the thread ended while we looked
            if (IsOnDemand(name)) n++;
        }
        return n;
    }

    /// <summary>Whether a thread name (as Linux truncates it, 15 characters) is one of the runtime's on-demand threads.</summary>
    public static bool IsOnDemand(string name)
        => name.StartsWith(".NET TP ", StringComparison.Ordinal) || name.StartsWith(".NET Tiered Com", StringComparison.Ordinal)
           || name.StartsWith(".NET Timer", StringComparison.Ordinal);

    // MNIST when it is already in the cache (never fetched here), else seeded synthetic images of the same shape.
    private static (Dataset Train, Dataset Val, string Source) Data(ulong seed)
    {
        try
        {
            var (train, test) = DataSets.Mnist(fetchIfMissing: false);
            var (_, val) = DataSplit.Stratified(test, 0.2, seed);
            return (train, val, "MNIST (cached)");
        }
        catch (Exception e) when (e is DataFetchException or DataFormatException or IOException)
        {
            var rng = new Random((int)seed);
            Dataset Make(int count)
            {
                var x = new float[count * 784];
                var y = new int[count];
                for (int i = 0; i < count; i++)
                {
                    y[i] = rng.Next(10);
                    for (int j = 0; j < 784; j++) x[i * 784 + j] = (float)rng.NextDouble() * 0.5f + (j % 10 == y[i] ? 0.5f : 0f);
                }
                return Dataset.Classification("synthetic-mnist", x, [1, 28, 28], y, 10);
            }
            return (Make(6_000), Make(1_000), $"synthetic (MNIST not cached: {e.GetType().Name})");
        }
    }

    /// <summary>Serves the next <c>steps</c> batches of a loader per call of <see cref="Batches"/>, continuing its epochs.</summary>
    private sealed class StepWindow(DataLoader loader, int steps) : IBatchSource
    {
        private IEnumerator<Training.Batch>? _batches;
        private int _epoch;

        public int Count => steps * loader.BatchSize;

        public IEnumerable<Training.Batch> Batches(int epoch)
        {
            for (int i = 0; i < steps; i++)
            {
                while (_batches is null || !_batches.MoveNext())
                {
                    _batches?.Dispose();
                    _batches = ((IBatchSource)loader).Batches(_epoch++).GetEnumerator();
                }
                yield return _batches.Current;
            }
        }
    }
}

/// <summary>The figures of one soak evaluation.</summary>
/// <param name="Threads">All the process's threads.</param>
/// <param name="OnDemandThreads">Of <paramref name="Threads"/>, the runtime's on-demand ones (<see cref="SoakCommand.OnDemandThreads"/>).</param>
internal sealed record SoakPoint(int Step, long LiveDeviceBytes, long ManagedHeapBytes, int Handles, int Threads, int OnDemandThreads,
    double ValLoss, double ValAccuracy, double Seconds)
{
    /// <summary>The threads the rule judges: all but the runtime's on-demand ones.</summary>
    public int OwnThreads => Threads - OnDemandThreads;
}

/// <summary>A soak run and its verdict (see <see cref="SoakCommand"/> for the rule).</summary>
internal sealed record SoakReport(string Device, string Data, int Steps, int EvalEvery, IReadOnlyList<SoakPoint> Points)
{
    public IReadOnlyList<string> Violations
    {
        get
        {
            var v = new List<string>();
            var first = Points[0];
            var last = Points[^1];
            foreach (var p in Points.Skip(1))
            {
                if (p.LiveDeviceBytes != first.LiveDeviceBytes)
                    v.Add($"step {p.Step}: live device bytes {p.LiveDeviceBytes}, first evaluation {first.LiveDeviceBytes} (must be identical)");
                if (Math.Abs(p.ManagedHeapBytes - first.ManagedHeapBytes) > SoakCommand.HeapToleranceBytes)
                    v.Add($"step {p.Step}: managed heap {p.ManagedHeapBytes}, first evaluation {first.ManagedHeapBytes} (allowed +-{SoakCommand.HeapToleranceBytes})");
            }
            if (last.Handles > first.Handles) v.Add($"handles grew from {first.Handles} (step {first.Step}) to {last.Handles} (step {last.Step})");
            if (last.OwnThreads > first.OwnThreads)
                v.Add($"threads other than the runtime's on-demand ones grew from {first.OwnThreads} (step {first.Step}) to {last.OwnThreads} (step {last.Step})");
            return v;
        }
    }

    public bool Flat => Violations.Count == 0;

    public JsonObject ToJson() => new()
    {
        ["device"] = Device, ["data"] = Data, ["steps"] = Steps, ["eval_every"] = EvalEvery, ["flat"] = Flat,
        ["violations"] = new JsonArray(Violations.Select(s => (JsonNode)s).ToArray()),
        ["evaluations"] = new JsonArray(Points.Select(p => (JsonNode)new JsonObject
        {
            ["step"] = p.Step, ["live_device_bytes"] = p.LiveDeviceBytes, ["managed_heap_bytes"] = p.ManagedHeapBytes,
            ["handles"] = p.Handles, ["threads"] = p.Threads, ["on_demand_threads"] = p.OnDemandThreads, ["val_loss"] = p.ValLoss, ["val_accuracy"] = p.ValAccuracy, ["seconds"] = p.Seconds,
        }).ToArray()),
    };
}
