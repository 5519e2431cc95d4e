using GpuNet.Kernels;
using GpuNet.Nn;

namespace GpuNet.Tests;

// Allocation is counted per engine thread (EngineAllocations), and the host pools are process-wide: a test of another
// class running on the same pool workers meanwhile would be counted, so these tests run alone.
[CollectionDefinition(nameof(SteadyStateTests), DisableParallelization = true)]
public sealed class SteadyStateCollection;

[Collection(nameof(SteadyStateTests))]
public sealed class SteadyStateTests(BackendFixture f) : DeviceTestBase(f), IClassFixture<BackendFixture>
{
    /// <summary>
    /// After warm-up, training steps (zero-grad, forward, loss, backward) on a model with every layer kind and a short
    /// last batch in the loop allocate no device memory. Managed allocation is counted on the engine's threads (the
    /// calling thread and the host pools' workers, <see cref="EngineAllocations"/>), so the test runner's and the JIT's
    /// threads do not count. On the <c>cpu</c> device 100 steps allocate nothing at all. On ILGPU devices the runtime
    /// itself allocates on every launch (ILGPU 1.5.3's launch path builds a task object holding the kernel's arguments
    /// on the calling thread, and the CPU accelerator a shared-memory buffer per group instance on its own threads), so the bound
    /// is per kernel launch (<see cref="DeviceCounters.KernelLaunches"/>): the steps may allocate at most (their kernel
    /// launches) x (what one launch of a plain elementwise kernel
    /// with the largest argument list of the step's elementwise kernels costs, measured here) x 2, the factor 2 covering
    /// the explicitly grouped kernels' one shared-memory buffer per group. Anything of ours per call (a closure, a
    /// boxed value, a message string) would add hundreds of bytes per op and break the bound.
    /// </summary>
    [Theory, Backends]
    public void TrainingStepsAllocateNothing(string backend)
    {
        Use(backend);
        // The fixture's Device getter builds its skip message on every call: read it once, outside the measurements.
        var D = this.D;
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
        // The ILGPU CPU accelerator simulates every GPU thread with an OS thread: fewer steps keep the test fast.
        int steps = D.IsHost ? 100 : 24;
        for (int i = 0; i < 8; i++) Step(i);
        D.Synchronize();
        long deviceAllocations = D.Counters.DeviceAllocations;
        long startLaunches = D.Counters.KernelLaunches;
        long managed = EngineAllocations.Now();
        for (int i = 0; i < steps; i++) Step(i);
        D.Synchronize();
        long managedDelta = EngineAllocations.Now() - managed, launches = D.Counters.KernelLaunches - startLaunches;
        Assert.Equal(deviceAllocations, D.Counters.DeviceAllocations);
        if (D.IsHost)
            Assert.True(managedDelta == 0, $"{steps} steps allocated {managedDelta} managed bytes on {D.Name}");
        else
        {
            double perLaunch = RuntimeBytesPerLaunch(D);
            Assert.True(launches > 0);
            Assert.True(managedDelta <= 2 * perLaunch * launches,
                $"{steps} steps ({launches} kernel launches) allocated {managedDelta} managed bytes on {D.Name}; the runtime's own cost is about {perLaunch:F0} B per launch");
        }
        Assert.True(float.IsFinite(lossValue.ToArray()[0]));
    }

    /// <summary>
    /// The measure can fail: host jobs whose items allocate on the pool's workers are counted in full, though the
    /// calling thread alone would miss the workers' part. Items sleep 1 ms so that the workers surely join.
    /// </summary>
    [Fact]
    public void EngineAllocationsCountThePoolWorkers()
    {
        Assert.SkipUnless(HostSimd.PoolThreads > 1, "a single-core machine has no pool workers");
        static void Job() => HostSimd.For(16, true, 0, static (_, _) => { GC.KeepAlive(new byte[1024]); Thread.Sleep(1); });
        Job();
        long before = EngineAllocations.Now(), workersBefore = HostSimd.WorkerAllocatedBytes;
        for (int r = 0; r < 20; r++) Job();
        long total = EngineAllocations.Now() - before, workers = HostSimd.WorkerAllocatedBytes - workersBefore;
        Assert.True(total >= 20 * 16 * 1024, $"320 items of 1 KiB counted as {total} bytes");
        Assert.True(workers >= 1024, $"the pool workers ran no item of 20 jobs ({workers} bytes)");
    }

    // Managed bytes ILGPU allocates per launch of ActivationBackward on a small tensor: four views and two scalars, as
    // wide as the step's widest elementwise kernel argument list, nothing of ours on the launch path.
    private static double RuntimeBytesPerLaunch(Device D)
    {
        using var a = D.FromArray(TestData.Uniform(3, 16), 16);
        using var b = D.Zeros(16);
        for (int i = 0; i < 5; i++) D.ActivationBackward(Activation.Gelu, a, a, a, b);
        D.Synchronize();
        long launches = D.Counters.KernelLaunches;
        long managed = EngineAllocations.Now();
        for (int i = 0; i < 100; i++) D.ActivationBackward(Activation.Gelu, a, a, a, b);
        D.Synchronize();
        long bytes = EngineAllocations.Now() - managed;
        return (double)bytes / (D.Counters.KernelLaunches - launches);
    }
}

