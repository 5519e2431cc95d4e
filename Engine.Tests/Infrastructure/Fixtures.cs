namespace GpuNet.Tests;

/// <summary>
/// One device per test class (xunit runs a class's tests one after another, so counters are not shared with
/// tests running in parallel). Derived fixtures name the backend; the same abstract test class runs on each.
/// </summary>
public abstract class DeviceFixture : IDisposable
{
    private readonly Device? _device;
    private readonly string? _skipReason;

    protected DeviceFixture(string name)
    {
        Name = name;
        try { _device = Device.Create(name); }
        catch (ArgumentException e) when (name is "cuda" or "opencl") { _skipReason = e.Message; }
    }

    /// <summary>The backend name.</summary>
    public string Name { get; }

    /// <summary>The device; a test on an absent GPU backend reports itself skipped with the reason.</summary>
    public Device Device
    {
        get
        {
            if (_device is null) Assert.Skip($"no {Name} device on this machine: {_skipReason}");
            return _device;
        }
    }

    public void Dispose()
    {
        _device?.Dispose();
        GC.SuppressFinalize(this);
    }
}

public sealed class CpuFixture() : DeviceFixture("cpu");
public sealed class IlgpuCpuFixture() : DeviceFixture("ilgpu-cpu");
public sealed class CudaFixture() : DeviceFixture("cuda");

/// <summary>Base of backend-parametrised tests: gives the device and checks every test leaves no live buffer behind.</summary>
public abstract class DeviceTestBase(DeviceFixture fixture) : IDisposable
{
    private readonly DeviceFixture _fixture = fixture;
    private bool _checked;

    protected Device D
    {
        get
        {
            var d = _fixture.Device;
            if (!_checked)
            {
                _checked = true;
                Assert.True(d.Counters.LiveBytes == 0, $"a previous test on {d.Name} leaked {d.Counters.LiveBytes} bytes");
            }
            return d;
        }
    }

    /// <summary>Every tensor a test made must be disposed by its end: live bytes and buffers are back to zero.</summary>
    public void Dispose()
    {
        if (_checked)
        {
            var c = _fixture.Device.Counters;
            Assert.True(c.LiveBytes == 0 && c.LiveBuffers == 0, $"test leaked {c.LiveBuffers} buffers, {c.LiveBytes} bytes on {_fixture.Name}");
        }
        GC.SuppressFinalize(this);
    }
}
