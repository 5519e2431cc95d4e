using GpuNet.Kernels;
using GpuNet.Nn;
using GpuNet.Optim;
using GpuNet.Schedules;
using GpuNet.Training;

namespace GpuNet.Tests;

/// <summary>The training loop, its callbacks and its determinism, on small problems (tens of samples, tiny MLPs).</summary>
public sealed class TrainerTests(BackendFixture f) : DeviceTestBase(f), IClassFixture<BackendFixture>
{
    /// <summary>Three Gaussian blobs in 2-D (std 0.45) around (-2, 0), (2, 0), (0, 2.5): separable by a small MLP.</summary>
    internal static (float[] X, int[] Y) Blobs(int n, int seed)
    {
        var r = new Random(seed);
        var x = new float[2 * n]; var y = new int[n];
        (float, float)[] centres = [(-2f, 0f), (2f, 0f), (0f, 2.5f)];
        for (int i = 0; i < n; i++)
        {
            y[i] = i % 3;
            x[2 * i] = centres[y[i]].Item1 + 0.45f * Normal(r);
            x[2 * i + 1] = centres[y[i]].Item2 + 0.45f * Normal(r);
        }
        return (x, y);
    }

    private static float Normal(Random r) => (float)(Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble()));

    private static Layer Mlp(bool batchNorm = false, bool dropout = false)
    {
        var layers = new List<Layer> { new Linear(2, 12) };
        if (batchNorm) layers.Add(new BatchNorm1d(12));
        layers.Add(new ActivationLayer(Activation.Tanh));
        if (dropout) layers.Add(new Dropout(0.2f));
        layers.Add(new Linear(12, 3));
        return new Sequential([.. layers]);
    }

    /// <summary>
    /// The host-side logic of the loop is the same on every device; these longer runs stay off the slow ILGPU CPU
    /// simulator, which runs the determinism, guard, early-stopping and plateau tests.
    /// </summary>
    private void SkipOnSimulator() => Assert.SkipWhen(D.Name == "ilgpu-cpu", "long training run: covered on cpu (and cuda); the simulator runs the short trainer tests");

    private Model Build(Layer net, int batch = 16, ulong seed = 3) => Model.Build(D, net, [2], batch, new ModelOptions { Seed = seed });

    private ArrayBatchSource Source(int n, int seed, int batch = 16, bool shuffle = true)
    {
        var (x, y) = Blobs(n, seed);
        return new ArrayBatchSource(D, x, [2], y, batch, shuffle, seed: (ulong)seed);
    }

    /// <summary>Records what callbacks see.</summary>
    private sealed class Recorder : ICallback
    {
        public List<(int Epoch, long Step, double Lr)> Steps { get; } = new();
        public List<float[]> Parameters { get; } = new();
        public List<float[]> Buffers { get; } = new();
        public List<float> StepLosses { get; } = new();
        public bool ReadLosses { get; init; }

        public void OnBatchEnd(TrainingContext c)
        {
            Steps.Add((c.Epoch, c.GlobalStep, c.Optimizer.LearningRate));
            if (ReadLosses) StepLosses.Add(c.ReadStepLoss());
        }

        public void OnEpochEnd(TrainingContext c)
        {
            Parameters.Add(c.Model.Parameters.ToArray());
            Buffers.Add(c.Model.Buffers.ToArray());
        }
    }

    [Theory, Backends]
    public void SmallClassificationTaskLearns(string backend)
    {
        Use(backend);
        SkipOnSimulator();
        using var train = Source(96, 1);
        using var val = Source(48, 2, shuffle: false);
        using var model = Build(Mlp());
        using var opt = OptimizerFactory.Adam(model, lr: 0.05);
        var trainer = new Trainer(model, new CrossEntropyLoss(), opt);
        int epochEvents = 0, batchEvents = 0;
        trainer.EpochCompleted += _ => epochEvents++;
        trainer.BatchCompleted += b => { batchEvents++; Assert.Equal(96, b.EpochSamples); };
        var fit = trainer.Fit(train, val, 6);

        Assert.Equal(6, fit.EpochsRun);
        Assert.Null(fit.StopReason);
        Assert.Equal(6, epochEvents);
        Assert.Equal(36, batchEvents);
        Assert.Equal(TaskKind.MultiClass, trainer.Task);
        var first = fit.History[0]; var last = fit.Last!;
        Assert.True(last.TrainLoss < first.TrainLoss / 2, $"train loss {first.TrainLoss} -> {last.TrainLoss}");
        Assert.True(last.ValAccuracy > 0.95, $"validation accuracy {last.ValAccuracy}");
        Assert.True(last.TrainAccuracy > 0.9, $"train accuracy {last.TrainAccuracy}");
        Assert.Equal(96, last.Samples); Assert.Equal(6, last.Steps); Assert.Equal(36, last.GlobalStep);
        Assert.True(last.Seconds > 0 && last.SamplesPerSecond > 0 && last.TotalSeconds >= last.Seconds);
        Assert.Equal(trainer.TrainingFlopsPerSample * 96, last.TrainingFlops);
        Assert.True(last.TrainingFlops > 0);
        Assert.Equal(0.05, last.LearningRate);
        Assert.Equal("val_loss", fit.Monitor);
        Assert.Equal(fit.History.Select(h => h.ValLoss!.Value).Min(), fit.BestMetric);

        // the weights did not move since the last validation: Evaluate reproduces it exactly
        var eval = trainer.Evaluate(val);
        Assert.Equal(last.ValLoss, eval.Loss);
        Assert.Equal(last.ValAccuracy, eval.Accuracy);
        var (_, labels) = Blobs(48, 2);
        var predicted = trainer.Predict(val);
        Assert.Equal(eval.Accuracy!.Value, predicted.Zip(labels).Count(p => p.First == p.Second) / 48.0, 15);
        var scores = trainer.PredictScores(val);
        Assert.Equal(48 * 3, scores.Length);
        for (int i = 0; i < 48; i++)
        {
            int arg = 0;
            for (int c = 1; c < 3; c++) if (scores[3 * i + c] > scores[3 * i + arg]) arg = c;
            Assert.Equal(arg, predicted[i]);
        }
    }

    [Theory, Backends]
    public void BinaryTaskWithOneLogitPredictsLogitAboveZeroAndReportsAuc(string backend)
    {
        Use(backend);
        SkipOnSimulator();
        var (x3, y3) = Blobs(90, 4);
        // class 0 vs the rest, targets (n, 1) in {0, 1}
        float[] t = y3.Select(v => v == 0 ? 1f : 0f).ToArray();
        using var train = new ArrayBatchSource(D, x3[..120], [2], t[..60], [1], 16, shuffle: true, seed: 4);
        using var val = new ArrayBatchSource(D, x3[120..], [2], t[60..], [1], 16);
        using var model = Model.Build(D, new Sequential(new Linear(2, 8), new ActivationLayer(Activation.Tanh), new Linear(8, 1)), [2], 16);
        using var opt = OptimizerFactory.Adam(model, lr: 0.05);
        var trainer = new Trainer(model, new BceWithLogitsLoss(), opt);
        Assert.Equal(TaskKind.Binary, trainer.Task);
        var fit = trainer.Fit(train, val, 5, new EarlyStopping(MetricNames.ValAuc, patience: 10));
        var m = fit.Last!.Validation!.Metrics!;
        Assert.True(m.RocAuc > 0.95, $"AUC {m.RocAuc}");
        Assert.True(m.Accuracy > 0.9, $"accuracy {m.Accuracy}");
        var scores = trainer.PredictScores(val);
        Assert.Equal(scores.Select(s => s > 0 ? 1 : 0), trainer.Predict(val));
        Assert.Equal(ClassificationMetrics.BinaryRocAuc(t[60..].Select(v => (int)v).ToArray(), scores), m.RocAuc!.Value, 15);
    }

    [Theory, Backends]
    public void EarlyStoppingStopsAfterPatienceAndRestoresTheBestWeightsBitForBit(string backend)
    {
        Use(backend);
        using var train = Source(30, 5);
        using var model = Build(Mlp(batchNorm: true));
        using var opt = OptimizerFactory.Sgd(model, lr: 0.1, momentum: 0.9);
        var trainer = new Trainer(model, new CrossEntropyLoss(), opt);
        // the train loss falls every epoch, so in Max mode epoch 1 stays the best and patience 2 stops at epoch 3
        var stopper = new EarlyStopping(MetricNames.TrainLoss, patience: 2, mode: MonitorMode.Max);
        var rec = new Recorder();
        var fit = trainer.Fit(train, null, 10, stopper, rec);

        Assert.Equal(3, fit.EpochsRun);
        Assert.True(fit.StoppedEarly);
        Assert.Contains("early stopping at epoch 3", fit.StopReason);
        Assert.Equal(1, stopper.BestEpoch);
        Assert.Equal(3, stopper.StoppedEpoch);
        Assert.True(fit.History[2].TrainLoss < fit.History[0].TrainLoss);
        Assert.Equal(rec.Parameters[0], model.Parameters.ToArray());
        Assert.Equal(rec.Buffers[0], model.Buffers.ToArray());
        Assert.NotEqual(rec.Parameters[2], model.Parameters.ToArray());
        Assert.NotEqual(rec.Buffers[2], model.Buffers.ToArray());
    }

    [Theory, Backends]
    public void ScheduleSetsTheLearningRatePerStepOrPerEpoch(string backend)
    {
        Use(backend);
        SkipOnSimulator();
        using var train = Source(40, 6);   // 3 steps per epoch (16 + 16 + 8)
        {
            var schedule = new StepLR(0.1, stepSize: 2, gamma: 0.5);
            using var model = Build(Mlp());
            using var opt = OptimizerFactory.Sgd(model, lr: 1);
            var rec = new Recorder();
            new Trainer(model, new CrossEntropyLoss(), opt, schedule).Fit(train, null, 2, rec);
            Assert.Equal(6, rec.Steps.Count);
            for (int i = 0; i < 6; i++)
            {
                Assert.Equal(i + 1, rec.Steps[i].Step);
                Assert.Equal(schedule.LearningRate(i), rec.Steps[i].Lr);
            }
            Assert.Equal([0.1, 0.1, 0.05, 0.05, 0.025, 0.025], rec.Steps.Select(s => s.Lr));
        }
        {
            var schedule = new StepLR(0.1, stepSize: 1, gamma: 0.5) { Unit = ScheduleUnit.Epoch };
            using var model = Build(Mlp());
            using var opt = OptimizerFactory.Sgd(model, lr: 1);
            var rec = new Recorder();
            var fit = new Trainer(model, new CrossEntropyLoss(), opt, schedule).Fit(train, null, 3, rec);
            Assert.Equal([0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025], rec.Steps.Select(s => s.Lr));
            Assert.Equal([0.1, 0.05, 0.025], fit.History.Select(h => h.LearningRate));
        }
    }

    [Theory, Backends]
    public void ReduceOnPlateauLowersTheLearningRate(string backend)
    {
        Use(backend);
        using var train = Source(32, 7);
        using var model = Build(Mlp());
        using var opt = OptimizerFactory.Sgd(model, lr: 1);
        // an absolute threshold of 1e6 makes every epoch after the first a plateau
        var plateau = new ReduceLROnPlateau(0.05, factor: 0.5, patience: 0, threshold: 1e6, thresholdMode: ThresholdMode.Abs);
        var fit = new Trainer(model, new CrossEntropyLoss(), opt).Fit(train, null, 3, new ReduceLROnPlateauCallback(plateau, MetricNames.TrainLoss));
        Assert.Equal([0.05, 0.05, 0.025], fit.History.Select(h => h.LearningRate));
        Assert.Equal(0.0125, opt.LearningRate);
        Assert.Equal(3, plateau.LastEpoch);
    }

    /// <summary>Replaces the inputs of one batch of one epoch by NaN.</summary>
    private sealed class PoisonedSource(ArrayBatchSource inner, int epoch, int batch) : IBatchSource
    {
        public int Count => inner.Count;

        public IEnumerable<Batch> Batches(int e)
        {
            int b = 0;
            foreach (var x in inner.Batches(e))
            {
                if (e == epoch && b++ == batch) x.X.Device.Fill(x.X, float.NaN);
                yield return x;
            }
        }
    }

    [Theory, Backends]
    public void NanGuardStopsAtTheEpochWithTheLastGoodLoss(string backend)
    {
        Use(backend);
        using var inner = Source(48, 8);   // 3 steps per epoch
        using var model = Build(Mlp());
        using var opt = OptimizerFactory.Adam(model, lr: 0.01);
        var fit = new Trainer(model, new CrossEntropyLoss(), opt).Fit(new PoisonedSource(inner, epoch: 1, batch: 1), null, 5);
        Assert.Equal(2, fit.EpochsRun);
        Assert.True(double.IsNaN(fit.History[1].TrainLoss));
        string good = fit.History[0].TrainLoss.ToString("G6", System.Globalization.CultureInfo.InvariantCulture);
        Assert.Contains("non-finite training loss NaN (epoch mean) in epoch 2, steps 4..6", fit.StopReason);
        Assert.Contains($"last good loss {good} (mean of epoch 1)", fit.StopReason);
    }

    [Theory, Backends]
    public void NanGuardWithAStepIntervalNamesTheStep(string backend)
    {
        Use(backend);
        using var inner = Source(48, 8);
        using var model = Build(Mlp());
        using var opt = OptimizerFactory.Adam(model, lr: 0.01);
        var rec = new Recorder { ReadLosses = true };
        var guard = new NanGuard(checkEverySteps: 1);
        var fit = new Trainer(model, new CrossEntropyLoss(), opt).Fit(new PoisonedSource(inner, epoch: 1, batch: 1), null, 5, guard, rec);
        Assert.Single(fit.History);   // the interrupted epoch is not recorded
        Assert.Equal(5, rec.StepLosses.Count);
        Assert.True(float.IsNaN(rec.StepLosses[4]));
        string good = ((double)rec.StepLosses[3]).ToString("G6", System.Globalization.CultureInfo.InvariantCulture);
        Assert.Contains("non-finite training loss NaN at step 5 (epoch 2, batch 2)", fit.StopReason);
        Assert.Contains($"last good loss {good} (step 4)", fit.StopReason);
        Assert.Equal(guard.Message, fit.StopReason);
    }

    private (double[] Losses, float[] Weights) Run(ulong dataSeed, int epochs = 2)
    {
        var (x, y) = Blobs(28, 9);   // 2 steps per epoch (16 + 12)
        using var train = new ArrayBatchSource(D, x, [2], y, 16, shuffle: true, seed: dataSeed);
        using var val = new ArrayBatchSource(D, x[..24], [2], y[..12], 16);
        using var model = Build(Mlp(batchNorm: true, dropout: true), seed: 11);
        using var opt = OptimizerFactory.AdamW(model, lr: 0.02);
        var fit = new Trainer(model, new CrossEntropyLoss(), opt).Fit(train, val, epochs);
        return (fit.History.SelectMany(h => new[] { h.TrainLoss, h.ValLoss!.Value }).ToArray(), model.Parameters.ToArray());
    }

    [Theory, Backends]
    public void SameSeedGivesABitIdenticalLossHistory(string backend)
    {
        Use(backend);
        var a = Run(21);
        var b = Run(21);
        Assert.Equal(a.Losses.Select(BitConverter.DoubleToInt64Bits), b.Losses.Select(BitConverter.DoubleToInt64Bits));
        Assert.Equal(a.Weights.Select(BitConverter.SingleToInt32Bits), b.Weights.Select(BitConverter.SingleToInt32Bits));
        if (D.Name == "ilgpu-cpu") return;   // a third run is too slow on the simulator
        var c = Run(22);   // another shuffle seed changes the trajectory
        Assert.NotEqual(a.Losses, c.Losses);
    }

    [Theory, Backends]
    public void RestoredStateResumesExactly(string backend)
    {
        Use(backend);
        SkipOnSimulator();
        using var train = Source(40, 10);
        float[] straight;
        {
            using var model = Build(Mlp(dropout: true));
            using var opt = OptimizerFactory.Adam(model, lr: 0.02);
            new Trainer(model, new CrossEntropyLoss(), opt, new ExponentialLR(0.02, 0.9)).Fit(train, null, 4);
            straight = model.Parameters.ToArray();
        }
        TrainerState state; OptimizerState optState; float[] weights;
        {
            using var model = Build(Mlp(dropout: true));
            using var opt = OptimizerFactory.Adam(model, lr: 0.02);
            var t = new Trainer(model, new CrossEntropyLoss(), opt, new ExponentialLR(0.02, 0.9));
            t.Fit(train, null, 2);
            (state, optState, weights) = (t.State, opt.Save(), model.Parameters.ToArray());
        }
        {
            using var model = Build(Mlp(dropout: true));   // same seed: dropout masks are keyed by (model seed, step)
            using var opt = OptimizerFactory.Adam(model, lr: 0.5);
            model.Parameters.CopyFrom(weights);
            opt.Restore(optState);
            var t = new Trainer(model, new CrossEntropyLoss(), opt, new ExponentialLR(0.02, 0.9));
            t.Restore(state);
            var fit = t.Fit(train, null, 2);
            Assert.Equal([1, 2, 3, 4], fit.History.Select(h => h.Epoch));
            Assert.Equal(straight, model.Parameters.ToArray());
        }
    }

    [Theory, Backends]
    public void ArgumentsAreValidatedWithClearMessages(string backend)
    {
        Use(backend);
        using var train = Source(16, 12);
        using var model = Build(Mlp());
        using var opt = OptimizerFactory.Sgd(model, lr: 0.1);
        var trainer = new Trainer(model, new CrossEntropyLoss(), opt);
        var e1 = Assert.Throws<ArgumentOutOfRangeException>(() => trainer.Fit(train, null, 0));
        Assert.Contains("epochs must be >= 1, got 0", e1.Message);
        var e2 = Assert.Throws<ArgumentOutOfRangeException>(() => new EarlyStopping(patience: -1));
        Assert.Contains("patience must be >= 0, got -1", e2.Message);
        var e3 = Assert.Throws<ArgumentException>(() => new EarlyStopping("val_los"));
        Assert.Contains("unknown metric 'val_los'; valid names: train_loss, train_accuracy, val_loss", e3.Message);
        var e4 = Assert.Throws<InvalidOperationException>(() => trainer.Fit(train, null, 1, new EarlyStopping(MetricNames.ValLoss)));
        Assert.Contains("EarlyStopping monitors 'val_loss' but Fit received no validation source", e4.Message);
        var e5 = Assert.Throws<ArgumentException>(() => new ReduceLROnPlateauCallback(new ReduceLROnPlateau(0.1), MetricNames.ValAccuracy));
        Assert.Contains("'val_accuracy' should be maximised but the scheduler's mode is Min", e5.Message);
        Assert.Throws<ArgumentException>(() => new Trainer(model, new CrossEntropyLoss(), opt, options: new TrainerOptions { Monitor = "accuracy" }));
        using var other = Build(Mlp());
        var e6 = Assert.Throws<ArgumentException>(() => new Trainer(other, new CrossEntropyLoss(), opt));
        Assert.Contains("must update model.Parameters", e6.Message);
        Assert.Empty(trainer.History);   // the failed calls trained nothing
    }

    [Theory, Backends]
    public void OptimizerFactoryDecaysWeightsOnly(string backend)
    {
        Use(backend);
        using var model = Build(Mlp(batchNorm: true));
        var o = new OptimizerOptions().ForModel(model);
        Assert.Equal([ParamGroup.Default, ParamGroup.NoDecay], o.Groups);
        var covered = new int[model.ParameterCount];
        foreach (var s in o.Segments!) for (long i = s.Offset; i < s.Offset + s.Length; i++) covered[i] = s.Group + 1;
        foreach (var e in model.ParameterTable.Where(p => !p.IsBuffer))
            for (long i = e.Offset; i < e.Offset + e.Length; i++)
                Assert.True(covered[i] == (e.Decay ? 1 : 2), $"{e.Name}[{i - e.Offset}] in group {covered[i] - 1}");
        Assert.Contains(model.ParameterTable, p => p.Decay);
        Assert.Contains(model.ParameterTable, p => !p.Decay && !p.IsBuffer);
    }

    [Theory, Backends]
    public void ShuffleOrderIsAPureFunctionOfSeedAndEpoch(string backend)
    {
        Use(backend);
        using var a = Source(30, 13, batch: 7);
        using var b = Source(30, 13, batch: 7);
        Assert.Equal(a.Order(2), b.Order(2));
        Assert.NotEqual(a.Order(1), a.Order(2));
        Assert.Equal(Enumerable.Range(0, 30), a.Order(3).Order());
        Assert.Equal([7, 7, 7, 7, 2], a.Batches(0).Select(x => x.N));
    }
}

