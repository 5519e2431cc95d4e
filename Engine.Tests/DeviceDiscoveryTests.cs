namespace GpuNet.Tests;

/// <summary>
/// The rule of <c>auto</c> over lists of devices (no hardware needed: the lists are made up), and the message of an
/// absent device, both as a pure function and through <see cref="Device.Create"/> on this machine.
/// </summary>
public class DeviceDiscoveryTests
{
    private static readonly DeviceInfo Host = new("cpu", DeviceKind.Cpu, "X64 host", 1L << 34, 16, 2, 2, DeviceHardware.Cpu);
    private static readonly DeviceInfo Simulator = new("ilgpu-cpu", DeviceKind.IlgpuCpu, "simulator", 1L << 34, 4, 256, 1, DeviceHardware.Simulator);

    private static DeviceInfo Cuda(string name) => new(name, DeviceKind.Cuda, "NVIDIA H200", 1L << 37, 32, 1024, 132, DeviceHardware.Gpu);
    private static DeviceInfo OpenCl(string name, DeviceHardware hardware, string description)
        => new(name, DeviceKind.OpenCL, description, 1L << 33, hardware == DeviceHardware.Gpu ? 64 : 4096, 1024, 2, hardware);

    [Fact]
    public void OnlyHostDevicesPickCpu()
    {
        var choice = Device.ChooseAuto([Host, Simulator]);
        Assert.Equal("cpu", choice.Name);
        Assert.Contains("no CUDA device and no OpenCL device", choice.Reason);
    }

    [Fact]
    public void OpenClGpuIsChosenOverCpu()
    {
        var choice = Device.ChooseAuto([Host, OpenCl("opencl", DeviceHardware.Gpu, "gfx1100"), Simulator]);
        Assert.Equal("opencl", choice.Name);
        Assert.Contains("first OpenCL GPU (gfx1100)", choice.Reason);
    }

    [Fact]
    public void CpuTypeOpenClDeviceIsNeverChosen()
    {
        var pocl = OpenCl("opencl", DeviceHardware.Cpu, "cpu-skylake-avx512-AMD EPYC");
        var choice = Device.ChooseAuto([Host, pocl, Simulator]);
        Assert.Equal("cpu", choice.Name);
        Assert.Contains("opencl (cpu-skylake-avx512-AMD EPYC) is an OpenCL CPU device", choice.Reason);
        Assert.Contains("open it by name", choice.Reason);
    }

    [Fact]
    public void OpenClGpuAfterACpuTypeOneIsChosen()
    {
        var choice = Device.ChooseAuto([Host, OpenCl("opencl", DeviceHardware.Cpu, "pocl"), OpenCl("opencl:1", DeviceHardware.Gpu, "gfx1100"), Simulator]);
        Assert.Equal("opencl:1", choice.Name);
    }

    [Fact]
    public void OpenClAcceleratorIsNotChosen()
        => Assert.Equal("cpu", Device.ChooseAuto([Host, OpenCl("opencl", DeviceHardware.Other, "fpga"), Simulator]).Name);

    [Fact]
    public void CudaComesFirst()
    {
        var choice = Device.ChooseAuto([Host, OpenCl("opencl", DeviceHardware.Gpu, "gfx1100"), Cuda("cuda"), Cuda("cuda:1"), Simulator]);
        Assert.Equal("cuda", choice.Name);
        Assert.Contains("first CUDA device (NVIDIA H200)", choice.Reason);
    }

    [Fact]
    public void AbsentOpenClMessageListsWhatIsPresent()
    {
        string message = Device.NotPresentMessage("opencl", [Host, Simulator]);
        Assert.StartsWith("device 'opencl' is not present on this machine; present: cpu (Cpu, Cpu), ilgpu-cpu (IlgpuCpu, Simulator)", message);
        Assert.Contains("ILGPU found no OpenCL device", message);
    }

    [Fact]
    public void AbsentSecondOpenClDeviceDoesNotClaimNoneIsPresent()
    {
        string message = Device.NotPresentMessage("opencl:1", [Host, OpenCl("opencl", DeviceHardware.Cpu, "pocl"), Simulator]);
        Assert.Contains("present: cpu (Cpu, Cpu), opencl (OpenCL, Cpu), ilgpu-cpu", message);
        Assert.DoesNotContain("found no OpenCL device", message);
    }

    [Fact]
    public void OpeningAnAbsentOpenClDeviceListsEveryPresentDevice()
    {
        var available = Device.Available();
        int openCl = available.Count(d => d.Kind == DeviceKind.OpenCL);
        // One past the last OpenCL device: "opencl:0", i.e. plain "opencl", where there is none.
        string name = $"opencl:{openCl}";
        var e = Assert.Throws<ArgumentException>(() => Device.Create(name));
        Assert.Equal("name", e.ParamName);
        Assert.Contains($"device '{(openCl == 0 ? "opencl" : name)}' is not present", e.Message);
        foreach (var d in available) Assert.Contains($"{d.Name} ({d.Kind}, {d.Hardware})", e.Message);
    }

    [Fact]
    public void IndexZeroOpensTheFirstDevice()
    {
        using var device = Device.Create("ilgpu-cpu:0");
        Assert.Equal("ilgpu-cpu", device.Name);
    }
}
