using System.Runtime.InteropServices;
using GpuNet.Kernels;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;

namespace GpuNet;

/// <summary>What <c>auto</c> resolves to on a list of devices, and why.</summary>
/// <param name="Name">The device name <c>auto</c> opens.</param>
/// <param name="Reason">One sentence: the rule that chose it and the devices it passed over.</param>
public sealed record AutoChoice(string Name, string Reason);

// Device discovery: which devices exist, which one a name opens, and what `auto` picks.
public sealed partial class Device
{
    // PoCL's first clGetDeviceIDs can fail when two threads enumerate at once, and ILGPU then silently lists no
    // OpenCL device. Context creation (which enumerates), enumeration and accelerator creation all hold this lock.
    private static readonly Lock DiscoveryLock = new();

    /// <summary>
    /// Opens a device by name: <c>auto</c> (see <see cref="ChooseAuto"/>), <c>cpu</c>, <c>ilgpu-cpu</c>,
    /// <c>cuda</c>/<c>cuda:N</c>, <c>opencl</c>/<c>opencl:N</c> (<c>:0</c> is the first). With no name,
    /// <c>GPUNET_DEVICE</c> decides, else <c>auto</c>. A CPU-type OpenCL device opens only by name.
    /// </summary>
    /// <exception cref="ArgumentException">The named device is not present; the message lists those that are.</exception>
    public static Device Create(string? name = null)
    {
        name = string.IsNullOrWhiteSpace(name) ? Environment.GetEnvironmentVariable(EnvironmentVariable) : name;
        name = string.IsNullOrWhiteSpace(name) ? "auto" : name.Trim().ToLowerInvariant();
        if (name.EndsWith(":0", StringComparison.Ordinal)) name = name[..^2];
        if (name == "cpu") return new Device(HostInfo(), null, null);

        lock (DiscoveryLock)
        {
            var context = CreateContext();
            try
            {
                var found = Enumerate(context);
                if (name == "auto") name = ChooseAuto(Listed(found)).Name;
                if (name == "cpu") { context.Dispose(); return new Device(HostInfo(), null, null); }
                var match = found.FirstOrDefault(f => f.Info.Name == name);
                if (match.Device is null) throw new ArgumentException(NotPresentMessage(name, Listed(found)), nameof(name));
                var accelerator = match.Device.CreateAccelerator(context);
                return new Device(match.Info, context, accelerator);
            }
            catch
            {
                context.Dispose();
                throw;
            }
        }
    }

    /// <summary>Every device present on this machine, the <c>cpu</c> device first.</summary>
    public static IReadOnlyList<DeviceInfo> Available()
    {
        lock (DiscoveryLock)
        {
            using var context = CreateContext();
            return Listed(Enumerate(context));
        }
    }

    /// <summary>The name <c>auto</c> resolves to on this machine.</summary>
    public static string AutoName() => ChooseAuto(Available()).Name;

    /// <summary>
    /// The rule of <c>auto</c> over <paramref name="devices"/>: the first CUDA device, else the first OpenCL GPU, else
    /// <c>cpu</c>. It never picks an OpenCL device whose hardware is a CPU (PoCL, Intel's CPU runtime): the host SIMD
    /// path is far faster on the same cores. Nor does it pick <c>ilgpu-cpu</c> (a simulator).
    /// </summary>
    public static AutoChoice ChooseAuto(IReadOnlyList<DeviceInfo> devices)
    {
        ArgumentNullException.ThrowIfNull(devices);
        var cuda = devices.FirstOrDefault(d => d.Kind == DeviceKind.Cuda);
        if (cuda is not null) return new(cuda.Name, $"{cuda.Name} is the first CUDA device ({cuda.Description})");

        var openCl = devices.Where(d => d.Kind == DeviceKind.OpenCL).ToList();
        var gpu = openCl.FirstOrDefault(d => d.Hardware == DeviceHardware.Gpu);
        if (gpu is not null) return new(gpu.Name, $"no CUDA device; {gpu.Name} is the first OpenCL GPU ({gpu.Description})");

        var passed = openCl.Select(d => $"{d.Name} ({d.Description}) is an OpenCL {(d.Hardware == DeviceHardware.Cpu ? "CPU" : "non-GPU")} device").ToList();
        string over = passed.Count == 0
            ? "no OpenCL device"
            : $"no OpenCL GPU: {string.Join("; ", passed)}, which auto never picks (the host SIMD path is faster; open it by name)";
        return new("cpu", $"no CUDA device and {over}");
    }

    /// <summary>The message of opening <paramref name="name"/> when only <paramref name="present"/> exist.</summary>
    internal static string NotPresentMessage(string name, IReadOnlyList<DeviceInfo> present)
    {
        string list = string.Join(", ", present.Select(d => $"{d.Name} ({d.Kind}, {d.Hardware})"));
        string message = $"device '{name}' is not present on this machine; present: {list} (or 'auto')";
        if (name.StartsWith("opencl", StringComparison.Ordinal) && !present.Any(d => d.Kind == DeviceKind.OpenCL))
            message += ". ILGPU found no OpenCL device: it needs libOpenCL.so and an OpenCL 2.0+ runtime with the generic "
                + "address space (PoCL 6 has one: .ci/opencl-pocl.sh runs a command with it)";
        else if (name.StartsWith("cuda", StringComparison.Ordinal) && !present.Any(d => d.Kind == DeviceKind.Cuda))
            message += ". ILGPU found no CUDA device: it needs an NVIDIA GPU and its driver (libcuda.so)";
        return message;
    }

    internal static Context CreateContext()
        => Context.Create(b => b.Default().EnableAlgorithms().Math(ILGPU.MathMode.Default).Optimize(OptimizationLevel.O2));

    /// <summary>
    /// The CPU accelerator's shape: warp 4, up to 256 threads per group (the GEMM's 16x16 thread tile), 1 multiprocessor.
    /// A warp size of 4 keeps kernels honest about not assuming 32.
    /// </summary>
    internal static CPUDevice IlgpuCpuDevice => new(4, 64, 1);

    private static List<DeviceInfo> Listed(List<(ILGPU.Runtime.Device Device, DeviceInfo Info)> found)
        => new[] { HostInfo() }.Concat(found.Select(f => f.Info)).ToList();

    private static List<(ILGPU.Runtime.Device Device, DeviceInfo Info)> Enumerate(Context context)
    {
        var list = new List<(ILGPU.Runtime.Device, DeviceInfo)>();
        int cuda = 0, cl = 0;
        foreach (var d in context.GetCudaDevices())
            list.Add((d, Describe(d, DeviceKind.Cuda, cuda++ == 0 ? "cuda" : $"cuda:{cuda - 1}", DeviceHardware.Gpu)));
        foreach (var d in context.GetCLDevices())
            list.Add((d, Describe(d, DeviceKind.OpenCL, cl++ == 0 ? "opencl" : $"opencl:{cl - 1}", Hardware(d))));
        var cpu = IlgpuCpuDevice;
        list.Add((cpu, Describe(cpu, DeviceKind.IlgpuCpu, "ilgpu-cpu", DeviceHardware.Simulator)));
        return list;
    }

    // CL_DEVICE_TYPE is a bit field (a runtime may add CL_DEVICE_TYPE_DEFAULT to its one type).
    private static DeviceHardware Hardware(CLDevice d)
        => (d.DeviceType & CLDeviceType.CL_DEVICE_TYPE_GPU) != 0 ? DeviceHardware.Gpu
            : (d.DeviceType & CLDeviceType.CL_DEVICE_TYPE_CPU) != 0 ? DeviceHardware.Cpu
            : DeviceHardware.Other;

    private static DeviceInfo Describe(ILGPU.Runtime.Device d, DeviceKind kind, string name, DeviceHardware hardware)
        => new(name, kind, kind == DeviceKind.IlgpuCpu ? "ILGPU CPU accelerator (simulator)" : d.Name,
            kind == DeviceKind.IlgpuCpu ? HostMemory() : d.MemorySize, d.WarpSize, d.MaxNumThreadsPerGroup, d.NumMultiprocessors, hardware);

    private static DeviceInfo HostInfo()
        => new("cpu", DeviceKind.Cpu, $"{RuntimeInformation.ProcessArchitecture} host, {HostSimd.Description}",
            HostMemory(), HostSimd.FloatLanes, Environment.ProcessorCount, Environment.ProcessorCount, DeviceHardware.Cpu);

    private static long HostMemory() => GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
}
