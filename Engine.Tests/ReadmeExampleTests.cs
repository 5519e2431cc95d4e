using GpuNet.Data;
using GpuNet.Kernels;
using GpuNet.Nn;
using GpuNet.Schedules;
using GpuNet.Training;

namespace GpuNet.Tests;

/// <summary>The library example of README.md, line for line (keep the two in step), on the <c>cpu</c> device.</summary>
public sealed class ReadmeExampleTests
{
    [Fact]
    public void TheReadmeProgramTrainsDigits()
    {
        using var device = Device.Create("cpu");                   // README: Device.Create() picks CUDA, OpenCL, else cpu
        var (train, val) = DataSplit.Stratified(DataSets.Digits(), 0.2, seed: 1);
        var std = Standardizer.Fit(train);                          // statistics of the training split only
        var net = new Sequential(
            new Linear(64, 128, name: "fc1"), new ActivationLayer(Activation.Relu),
            new Dropout(0.1f), new Linear(128, 10, name: "out"));
        using var model = Model.Build(device, net, inputShape: [64], batchSize: 32, new ModelOptions { Seed = 1 });
        using var optimizer = OptimizerFactory.AdamW(model, lr: 2e-3, weightDecay: 1e-2);   // no decay on biases
        using var trainData = new DataLoader(device, std.Apply(train), 32, shuffle: true, dropLast: false, seed: 1);
        using var valData = new DataLoader(device, std.Apply(val), 32, shuffle: false, dropLast: false, seed: 1);
        var schedule = new WarmupSchedule(new CosineAnnealingLR(2e-3, 30L * trainData.BatchCount), warmupSteps: 50);
        var trainer = new Trainer(model, new CrossEntropyLoss(labelSmoothing: 0.05f), optimizer, schedule);
        var fit = trainer.Fit(trainData, valData, epochs: 30, new EarlyStopping("val_loss", patience: 5));
        var eval = trainer.Evaluate(valData);
        int[] predicted = trainer.Predict(valData);

        Assert.True(fit.EpochsRun is > 5 and <= 30);
        Assert.True(eval.Accuracy > 0.95, $"validation accuracy {eval.Accuracy}");
        Assert.Equal(val.Count, predicted.Length);
        Assert.True(eval.Metrics!.MacroF1 > 0.95);
    }
}
