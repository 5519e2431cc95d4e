namespace GpuNet.Tests;

public sealed class TensorTests(BackendFixture f) : DeviceTestBase(f), IClassFixture<BackendFixture>
{
    [Theory, Backends]
    public void RoundTripsFloatAndIntData(string backend)
    {
        Use(backend);
        using var t = D.FromArray([1f, 2f, 3f, 4f, 5f, 6f], 2, 3);
        Assert.Equal([2, 3], t.Shape.ToArray());
        Assert.Equal([1f, 2f, 3f, 4f, 5f, 6f], t.ToArray());
        using var i = D.FromArray([7, -1, 3], 3);
        Assert.Equal(DType.Int32, i.DType);
        Assert.Equal([7, -1, 3], i.ToInt32Array());
    }

    [Theory, Backends]
    public void LiveBytesReturnToZeroAndThePoolReusesBuffers(string backend)
    {
        Use(backend);
        long allocsBefore = D.Counters.DeviceAllocations;
        using (var a = D.Zeros(1000))
        {
            Assert.Equal(4000, D.Counters.LiveBytes);
            Assert.Equal(1, D.Counters.LiveBuffers);
            Assert.True(D.Counters.PeakBytes >= 4000);
        }
        Assert.Equal(0, D.Counters.LiveBytes);
        Assert.Equal(0, D.Counters.LiveBuffers);
        long allocsAfterFirst = D.Counters.DeviceAllocations;
        for (int i = 0; i < 10; i++)
        {
            using var again = D.Zeros(1000);
        }
        Assert.True(allocsAfterFirst - allocsBefore <= 1);
        Assert.Equal(allocsAfterFirst, D.Counters.DeviceAllocations);
        Assert.Equal(0, D.Counters.LiveBytes);
    }

    [Theory, Backends]
    public void ViewsShareTheBufferAndDieWithTheOwner(string backend)
    {
        Use(backend);
        var owner = D.FromArray([1f, 2f, 3f, 4f, 5f, 6f], 2, 3);
        var flat = owner.Reshape(6);
        var tail = owner.Slice(3, 3);
        Assert.True(flat.IsView);
        Assert.Equal([4f, 5f, 6f], tail.ToArray());
        tail.CopyFrom([9f, 8f, 7f]);
        Assert.Equal([1f, 2f, 3f, 9f, 8f, 7f], flat.ToArray());
        flat.Dispose();
        Assert.Equal(24, D.Counters.LiveBytes);
        owner.Dispose();
        Assert.Equal(0, D.Counters.LiveBytes);
        var e = Assert.Throws<ObjectDisposedException>(() => tail.ToArray());
        Assert.Contains("view of a disposed tensor", e.Message);
        using var reuse = D.Zeros(6);
        Assert.Throws<ObjectDisposedException>(() => tail.ToArray());
    }

    [Theory, Backends]
    public void BadReshapeSliceAndCopyAreClearErrors(string backend)
    {
        Use(backend);
        using var t = D.Zeros(2, 3);
        var e = Assert.Throws<ShapeMismatchException>(() => t.Reshape(4, 2));
        Assert.Contains("(2, 3)", e.Message); Assert.Contains("(4, 2)", e.Message);
        var s = Assert.Throws<ArgumentOutOfRangeException>(() => t.Slice(4, 3));
        Assert.Equal("start", s.ParamName);
        var c = Assert.Throws<ArgumentException>(() => t.CopyFrom(new float[5]));
        Assert.Contains("5", c.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => D.Zeros(2, -1));
        Assert.Throws<ShapeMismatchException>(() => D.FromArray(new float[5], 2, 3));
    }

    [Theory, Backends]
    public void DisposedTensorIsAClearError(string backend)
    {
        Use(backend);
        var t = D.Zeros(4);
        t.Dispose();
        t.Dispose();
        using var other = D.Zeros(4);
        var e = Assert.Throws<ObjectDisposedException>(() => D.Add(t, other, other));
        Assert.Contains("Add", e.Message);
    }

    [Theory, Backends]
    public void CopiesAreCounted(string backend)
    {
        Use(backend);
        using var t = D.Zeros(4);
        var c = D.Counters.Snapshot();
        t.CopyFrom([1f, 2f, 3f, 4f]);
        _ = t.ToArray();
        Assert.Equal(c.HostToDeviceCopies + 1, D.Counters.HostToDeviceCopies);
        Assert.Equal(c.DeviceToHostCopies + 1, D.Counters.DeviceToHostCopies);
    }
}


public class DeviceSelectionTests
{
    [Fact]
    public void MixingDevicesIsAClearError()
    {
        using var cpu = Device.Create("cpu");
        using var sim = Device.Create("ilgpu-cpu");
        using var a = cpu.Zeros(3); using var b = sim.Zeros(3); using var c = cpu.Zeros(3);
        var e = Assert.Throws<ArgumentException>(() => cpu.Add(a, b, c));
        Assert.Contains("ilgpu-cpu", e.Message);
        Assert.Equal("b", e.ParamName);
    }

    [Fact]
    public void AbsentDeviceListsWhatIsPresent()
    {
        var e = Assert.Throws<ArgumentException>(() => Device.Create("cuda:7"));
        Assert.Contains("cuda:7", e.Message);
        Assert.Contains("cpu", e.Message);
        Assert.Contains("ilgpu-cpu", e.Message);
        Assert.Throws<ArgumentException>(() => Device.Create("tpu"));
    }

    [Fact]
    public void AutoPicksAGpuElseCpu()
    {
        var available = Device.Available();
        Assert.Equal("cpu", available[0].Name);
        string expected = available.FirstOrDefault(d => d.Kind == DeviceKind.Cuda)?.Name
            ?? available.FirstOrDefault(d => d.Kind == DeviceKind.OpenCL && d.Hardware == DeviceHardware.Gpu)?.Name ?? "cpu";
        Assert.Equal(expected, Device.AutoName());
        using var auto = Device.Create("auto");
        Assert.Equal(expected, auto.Name);
    }
}
