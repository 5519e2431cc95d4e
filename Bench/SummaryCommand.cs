using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using GpuNet.Data;
using GpuNet.Kernels;
using GpuNet.Nn;
using GpuNet.Training;

namespace GpuNet.Bench;

/// <summary>
/// <c>summary &lt;preset&gt;</c>: the preset's model summary (layers, shapes, parameters, FLOPs) without training, and
/// the launches of one full training step (zero-grad, forward, loss, backward, optimizer, loss accumulation) on the
/// device, counted by running real steps (<see cref="Trainer.Step"/>) on synthetic data of the preset's input shape:
/// device ops (<see cref="DeviceCounters.Launches"/>, the same on every device) and kernels
/// (<see cref="DeviceCounters.KernelLaunches"/>, ILGPU devices), with a breakdown by phase.
/// </summary>
internal static class SummaryCommand
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Steps run before counting: the first steps load kernels and fill the pool.</summary>
    private const int WarmupSteps = 2;
    /// <summary>Steps counted; every step of a built plan launches the same sequence, so the count divides exactly.</summary>
    private const int CountedSteps = 2;

    public static Command Create()
    {
        var names = Preset.All.Concat(Preset.Cnn).Select(p => p.Name).ToArray();
        var preset = new Argument<string>("preset") { Description = $"one of: {string.Join(", ", names)}" };
        preset.Validators.Add(r =>
        {
            var v = r.GetValueOrDefault<string>();
            if (Preset.Find(v) is null) r.AddError($"unknown preset '{v}'; allowed: {string.Join(", ", names)}");
        });
        var device = Cli.DeviceOption();
        var batch = Cli.IntOption("--batch-size", "batch size (default: the preset's)", 0, 0, 65536);
        var json = new Option<string?>("--json") { Description = "write the summary as JSON to this path (keys include launches_per_step)" };
        var cmd = new Command("summary", "Model summary of a preset (layers, shapes, parameters, FLOPs) and the launches of one full training step on the device, without training.")
        {
            preset, device, batch, json,
        };
        cmd.SetAction(p => Cli.Guard(() => Run(Preset.Find(p.GetValue(preset)!)!, p.GetValue(device), p.GetValue(batch), p.GetValue(json))));
        return cmd;
    }

    private static int Run(Preset preset, string? deviceName, int batchSize, string? jsonPath)
    {
        var s = batchSize > 0 ? preset.Defaults with { BatchSize = batchSize } : preset.Defaults;
        using var device = Cli.OpenDevice(deviceName);
        // the input shape and target kind are the preset's data set's; the samples themselves are synthetic
        var data = preset.Data(s.Seed, null);
        var sampleShape = data.Train.SampleShape.ToArray();
        using var model = Model.Build(device, preset.Network(s), sampleShape, s.BatchSize, new ModelOptions { Seed = s.Seed });
        var loss = preset.Loss();
        using var optimizer = TrainRun.MakeOptimizer(model, s);
        var trainer = new Trainer(model, loss, optimizer);
        var summary = model.Summary();

        int n = s.BatchSize;
        var rng = new Random(1);
        var x = new float[n * (int)ShapeUtil.Count(sampleShape)];
        for (int i = 0; i < x.Length; i++) x[i] = (float)rng.NextDouble();
        bool labels = data.Targets == BatchTargets.Labels || (data.Targets == BatchTargets.Auto && data.Train.LabelArray is not null);
        int classes = Math.Max(2, model.OutputShape[0]);
        using var xs = device.FromArray(x, [n, .. sampleShape]);
        using var ys = labels
            ? device.FromArray(Enumerable.Range(0, n).Select(_ => rng.Next(classes)).ToArray(), n)
            : device.FromArray(Enumerable.Range(0, n * (int)ShapeUtil.Count(model.OutputShape)).Select(_ => (float)rng.Next(2)).ToArray(), [n, .. model.OutputShape]);
        using var stepLoss = device.Zeros(1);
        using var lossSum = device.Zeros(1);
        var b = new GpuNet.Training.Batch(xs, ys, n);

        for (int i = 0; i < WarmupSteps; i++) trainer.Step(b, stepLoss, lossSum);
        device.Synchronize();
        var before = device.Counters.Snapshot();
        for (int i = 0; i < CountedSteps; i++) trainer.Step(b, stepLoss, lossSum);
        var after = device.Counters.Snapshot();
        long ops = (after.Launches - before.Launches) / CountedSteps;
        long kernels = (after.KernelLaunches - before.KernelLaunches) / CountedSteps;
        long syncs = (after.Synchronizations - before.Synchronizations) / CountedSteps;

        // where they go: the same step, one phase at a time
        var phases = new List<(string Name, long Ops, long Kernels)>();
        void Phase(string name, Action a)
        {
            var p0 = device.Counters.Snapshot();
            a();
            var p1 = device.Counters.Snapshot();
            phases.Add((name, p1.Launches - p0.Launches, p1.KernelLaunches - p0.KernelLaunches));
        }
        Tensor output = null!;
        Phase("zero-grad", model.ZeroGrad);
        Phase("forward", () => output = model.Forward(xs, training: true));
        Phase("loss", () => loss.Compute(device, output, ys, stepLoss, model.OutputGrad));
        Phase("backward", model.Backward);
        Phase("optimizer", optimizer.Step);
        Phase("loss accumulation", () => device.Axpy(loss.Reduction == LossReduction.Mean ? n : 1f, stepLoss, lossSum));
        device.Synchronize();

        Console.WriteLine($"GpuNet summary {preset.Name} | device {device.Name} ({device.Info.Description}) | batch {n} | input {ShapeUtil.Format(sampleShape)} | optimizer {s.Optimizer}");
        Console.Write(summary);
        var table = new TextTable("step phase", "device ops", "kernel launches");
        foreach (var (name, o, k) in phases) table.Add(name, o.ToString(Inv), device.IsHost ? "-" : k.ToString(Inv));
        table.Add("total", ops.ToString(Inv), device.IsHost ? "-" : kernels.ToString(Inv));
        table.Write(Console.Out);
        long perStep = device.IsHost ? ops : kernels;
        Console.WriteLine(string.Create(Inv, $"launches per step: {perStep} ({(device.IsHost ? "device ops: the cpu device launches no kernels" : $"ILGPU kernels; {ops} device ops")}); host synchronisations per step: {syncs}"));

        if (jsonPath is not null)
        {
            var json = new JsonObject
            {
                ["preset"] = preset.Name,
                ["device"] = device.Name,
                ["batch_size"] = n,
                ["input_shape"] = new JsonArray(sampleShape.Select(d => (JsonNode)d).ToArray()),
                ["parameters"] = summary.TotalParameters,
                ["forward_flops_per_sample"] = summary.ForwardFlopsPerSample,
                ["training_flops_per_sample"] = summary.TrainingFlopsPerSample,
                ["launches_per_step"] = perStep,
                ["device_ops_per_step"] = ops,
                ["kernel_launches_per_step"] = device.IsHost ? null : kernels,
                ["synchronizations_per_step"] = syncs,
                ["phases"] = new JsonArray(phases.Select(p => (JsonNode)new JsonObject
                {
                    ["phase"] = p.Name, ["device_ops"] = p.Ops, ["kernel_launches"] = device.IsHost ? null : p.Kernels,
                }).ToArray()),
                ["layers"] = new JsonArray(summary.Layers.Select(l => (JsonNode)new JsonObject
                {
                    ["name"] = l.Name, ["kind"] = l.Kind, ["output_shape"] = new JsonArray(l.OutputShape.Select(d => (JsonNode)d).ToArray()),
                    ["parameters"] = l.Parameters, ["forward_flops"] = l.ForwardFlops, ["backward_flops"] = l.BackwardFlops,
                    ["forward_launches"] = l.ForwardLaunches, ["backward_launches"] = l.BackwardLaunches,
                }).ToArray()),
            };
            AtomicFile.WriteAllText(jsonPath, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        }
        return Cli.Ok;
    }
}
