using GpuNet.Data;
using GpuNet.Kernels;
using GpuNet.Nn;
using GpuNet.Optim;
using GpuNet.Schedules;
using GpuNet.Training;

namespace GpuNet.Tests;

/// <summary>
/// Training 4 epochs straight, and training 2, saving, building everything anew and resuming for 2, give bit-identical
/// weights, buffers and optimizer state on <c>cpu</c> (shuffles, dropout, batch norm, Adam and a cosine schedule).
/// </summary>
public sealed class ResumeTests
{
    private sealed class Run : IDisposable
    {
        public readonly Device Device = Device.Create("cpu");
        public readonly Model Model;
        public readonly Optimizer Optimizer;
        public readonly DataLoader Train, Validation;
        public readonly Trainer Trainer;

        public Run(Dataset train, Dataset val)
        {
            var net = new Sequential(new Linear(64, 32, name: "fc1"), new BatchNorm1d(32, name: "bn1"), new ActivationLayer(Activation.Relu),
                new Dropout(0.2f, name: "drop1"), new Linear(32, 10, name: "out"));
            Model = Model.Build(Device, net, [64], 32, new ModelOptions { Seed = 5 });
            Optimizer = OptimizerFactory.Adam(Model, 2e-3, weightDecay: 1e-4);
            Train = new DataLoader(Device, train, 32, shuffle: true, dropLast: false, seed: 5);
            Validation = new DataLoader(Device, val, 32, shuffle: false, dropLast: false, seed: 5, prefetch: false);
            var schedule = new CosineAnnealingLR(2e-3, 4L * Train.BatchCount);
            Trainer = new Trainer(Model, new CrossEntropyLoss(), Optimizer, schedule);
        }

        public float[] State() => [.. Model.Parameters.ToArray(), .. Model.Buffers.ToArray(), .. Optimizer.Save().Tensors.Values.SelectMany(v => v)];

        public void Dispose()
        {
            Train.Dispose(); Validation.Dispose(); Optimizer.Dispose(); Model.Dispose(); Device.Dispose();
        }
    }

    [Fact]
    public void TwoPlusTwoEpochsEqualFourBitForBit()
    {
        var all = DataSets.Digits();
        var (train, val) = DataSplit.Stratified(all.Subset(Enumerable.Range(0, 600).ToArray()), 0.25, 3);
        using var dir = new TempDir();
        string path = dir.File("last.safetensors");

        float[] straight;
        double[] straightLosses;
        using (var a = new Run(train, val))
        {
            var fit = a.Trainer.Fit(a.Train, a.Validation, 4);
            straight = a.State();
            straightLosses = fit.History.Select(h => h.TrainLoss).ToArray();
        }
        using (var b = new Run(train, val))
        {
            b.Trainer.Fit(b.Train, b.Validation, 2);
            TrainerCheckpoints.Save(path, b.Trainer, seed: 5, "resume test");
        }
        using var c = new Run(train, val);
        var state = TrainerCheckpoints.Resume(path, c.Trainer);
        Assert.Equal(2, state.Epoch);
        var resumed = c.Trainer.Fit(c.Train, c.Validation, 2);
        Assert.Equal(4, resumed.History.Count);
        Assert.Equal(straightLosses, resumed.History.Select(h => h.TrainLoss).ToArray());
        Assert.Equal(straight, c.State());
        Assert.Equal(c.Trainer.History[1].ValAccuracy, resumed.History[1].ValAccuracy);
    }
}
