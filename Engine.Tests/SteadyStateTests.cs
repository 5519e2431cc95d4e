using GpuNet.Kernels;
using GpuNet.Nn;

namespace GpuNet.Tests;

public abstract class SteadyStateTests(DeviceFixture f) : DeviceTestBase(f)
{
    /// <summary>
    /// After warm-up, 100 training steps (zero-grad, forward, loss, backward) allocate no device memory and no
    /// managed memory, on a model with every layer kind and a short last batch in the loop.
    /// </summary>
    [Fact]
    public void TrainingStepsAllocateNothing()
    {
        var net = new Sequential(new Linear(12, 16), new BatchNorm1d(16), new ActivationLayer(Activation.Relu), new Dropout(0.2f),
            new Residual(new Sequential(new Linear(16, 16), new ActivationLayer(Activation.Gelu))), new Linear(16, 4));
        using var model = Model.Build(D, net, [12], 8);
        var loss = new CrossEntropyLoss();
        using var x = D.FromArray(TestData.Uniform(1, 8 * 12), 8, 12);
        using var y = D.FromArray([0, 1, 2, 3, 0, 1, 2, 3], 8);
        using var xs = D.FromArray(TestData.Uniform(2, 3 * 12), 3, 12);
        using var ys = D.FromArray([3, 2, 1], 3);
        using var lossValue = D.Zeros(1);
        void Step(int i)
        {
            if (i % 4 == 3) model.ForwardBackward(xs, ys, loss, lossValue);
            else model.ForwardBackward(x, y, loss, lossValue);
        }
        for (int i = 0; i < 8; i++) Step(i);
        D.Synchronize();
        long deviceAllocations = D.Counters.DeviceAllocations;
        long managed = GC.GetTotalAllocatedBytes(precise: true);
        for (int i = 0; i < 100; i++) Step(i);
        D.Synchronize();
        long managedDelta = GC.GetTotalAllocatedBytes(precise: true) - managed;
        Assert.Equal(deviceAllocations, D.Counters.DeviceAllocations);
        Assert.True(managedDelta == 0, $"100 steps allocated {managedDelta} managed bytes on {D.Name}");
        Assert.True(float.IsFinite(lossValue.ToArray()[0]));
    }
}

public sealed class SteadyStateTestsCpu(CpuFixture f) : SteadyStateTests(f), IClassFixture<CpuFixture>;
public sealed class SteadyStateTestsIlgpuCpu(IlgpuCpuFixture f) : SteadyStateTests(f), IClassFixture<IlgpuCpuFixture>;
public sealed class SteadyStateTestsCuda(CudaFixture f) : SteadyStateTests(f), IClassFixture<CudaFixture>;
