using System.CommandLine;
using GpuNet.Checkpoints;
using GpuNet.Data;
using GpuNet.Optim;
using GpuNet.Training;

namespace GpuNet.Bench;

/// <summary>
/// Hidden <c>checkpoint-child</c>: the process that <c>CrashSafeCheckpointTests</c> kills. It trains <c>digits-mlp</c> on
/// <c>cpu</c> through the same path as <c>train --out ... --resume</c> (<see cref="Trainer"/>, <see cref="ModelCheckpoint"/>,
/// <see cref="TrainerCheckpoints.Resume"/>) without train's start-up costs (no FMA probe, no final evaluation, plot or
/// summary), and with every checkpoint write slowed by <c>--write-delay-ms</c> after its first bytes and again before its
/// rename, so that random kills land inside writes. It prints <c>ready at epoch N</c> before training, <c>saving E</c> before the
/// checkpoints of epoch E are written, and one line per epoch with the exact bits of the losses: <c>epoch E train_loss XXXXXXXXXXXXXXXX val_loss XXXXXXXXXXXXXXXX</c>.
/// </summary>
internal static class CheckpointChildCommand
{
    public static Command Create()
    {
        var dir = new Option<string>("--dir") { Description = "checkpoint directory (last.safetensors, best.safetensors)", Required = true };
        var epochs = Cli.IntOption("--epochs", "epochs of the whole run", 20, 1, 10_000);
        var delay = Cli.IntOption("--write-delay-ms", "sleep inside every checkpoint write", 0, 0, 10_000);
        var resume = new Option<bool>("--resume") { Description = "continue from <dir>/last.safetensors when it exists" };
        var keep = new Option<bool>("--keep") { Description = "also copy last.safetensors to epoch-E.safetensors after every epoch (the reference run)" };
        var cmd = new Command("checkpoint-child", "Crash-test child: digits-mlp with checkpoints every epoch (hidden; used by CrashSafeCheckpointTests).")
        {
            dir, epochs, delay, resume, keep,
        };
        cmd.Hidden = true;
        cmd.SetAction(r => Cli.Guard(() => Run(r.GetValue(dir)!, r.GetValue(epochs), r.GetValue(delay), r.GetValue(resume), r.GetValue(keep))));
        return cmd;
    }

    private static int Run(string dir, int epochs, int delayMs, bool resume, bool keep)
    {
        SafeTensorsFormat.WriteDelay = TimeSpan.FromMilliseconds(delayMs);
        var preset = Preset.Find("digits-mlp")!;
        var s = preset.Defaults with { Epochs = epochs };
        using var device = Device.Create("cpu");
        var data = preset.Data(s.Seed, null);
        using var model = Nn.Model.Build(device, preset.Network(s), data.Train.SampleShape.ToArray(), s.BatchSize, new Nn.ModelOptions { Seed = s.Seed });
        using var optimizer = new Adam(device, model.Parameters, model.Gradients!, s.LearningRate, options: new OptimizerOptions().ForModel(model));
        using var train = new DataLoader(device, data.Train, s.BatchSize, shuffle: true, dropLast: false, s.Seed, prefetch: true, data.Targets, data.Augment);
        using var val = new DataLoader(device, data.Validation!, s.BatchSize, false, false, s.Seed, prefetch: false, data.Targets);
        var schedule = TrainCommand.MakeSchedule(s.Schedule, s.LearningRate, s.Epochs, train.BatchCount);
        var trainer = new Trainer(model, preset.Loss(), optimizer, schedule, new TrainerOptions { Monitor = MetricNames.ValLoss });
        var checkpoints = new ModelCheckpoint(dir, s.Seed, "checkpoint-child");
        int done = 0;
        if (resume && File.Exists(checkpoints.LastPath)) done = TrainerCheckpoints.Resume(checkpoints.LastPath, trainer).Epoch;
        trainer.EpochCompleted += r =>
            Console.WriteLine($"epoch {r.Epoch} train_loss {BitConverter.DoubleToInt64Bits(r.TrainLoss):X16} val_loss {BitConverter.DoubleToInt64Bits(r.ValLoss ?? double.NaN):X16}");
        Console.WriteLine($"ready at epoch {done}");
        Console.Out.Flush();
        if (done >= epochs) return Cli.Ok;
        ICallback[] callbacks = keep ? [new Announce(), checkpoints, new KeepEveryEpoch(checkpoints)] : [new Announce(), checkpoints];
        trainer.Fit(train, val, epochs - done, callbacks);
        return Cli.Ok;
    }

    /// <summary>Prints <c>saving E</c> just before the checkpoints of epoch E are written, so that the test can aim its kills.</summary>
    private sealed class Announce : ICallback
    {
        public void OnEpochEnd(TrainingContext context)
        {
            Console.WriteLine($"saving {context.Trainer.State.Epoch}");
            Console.Out.Flush();
        }
    }

    private sealed class KeepEveryEpoch(ModelCheckpoint checkpoints) : ICallback
    {
        public void OnEpochEnd(TrainingContext context) =>
            File.Copy(checkpoints.LastPath, Path.Combine(checkpoints.Directory, $"epoch-{context.Trainer.State.Epoch}.safetensors"), overwrite: true);
    }
}
