using System.Runtime.InteropServices;
using GpuNet.Kernels;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;

namespace GpuNet;

// Device discovery: which devices exist, which one a name opens, and what `auto` picks.
public sealed partial class Device
{
    /// <summary>
    /// Opens a device by name: <c>auto</c> (CUDA, then OpenCL, then <c>cpu</c>), <c>cpu</c>, <c>ilgpu-cpu</c>,
    /// <c>cuda</c>/<c>cuda:N</c>, <c>opencl</c>/<c>opencl:N</c>. With no name, <c>GPUNET_DEVICE</c> decides, else <c>auto</c>.
    /// </summary>
    /// <exception cref="ArgumentException">The named device is not present; the message lists those that are.</exception>
    public static Device Create(string? name = null)
    {
        name = string.IsNullOrWhiteSpace(name) ? Environment.GetEnvironmentVariable(EnvironmentVariable) : name;
        name = string.IsNullOrWhiteSpace(name) ? "auto" : name.Trim().ToLowerInvariant();
        if (name == "cpu") return new Device(HostInfo(), null, null);

        var context = CreateContext();
        try
        {
            var found = Enumerate(context);
            if (name == "auto") name = AutoName(found);
            if (name == "cpu") { context.Dispose(); return new Device(HostInfo(), null, null); }
            var match = found.FirstOrDefault(f => f.Info.Name == name || (f.Info.Name == name + ":0"));
            if (match.Device is null)
            {
                string present = string.Join(", ", new[] { "cpu" }.Concat(found.Select(f => f.Info.Name)));
                throw new ArgumentException($"device '{name}' is not present; present: {present} (or 'auto')", nameof(name));
            }
            var accelerator = match.Device.CreateAccelerator(context);
            return new Device(match.Info with { Name = name }, context, accelerator);
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    /// <summary>Every device present on this machine, the <c>cpu</c> device first.</summary>
    public static IReadOnlyList<DeviceInfo> Available()
    {
        using var context = CreateContext();
        return new[] { HostInfo() }.Concat(Enumerate(context).Select(f => f.Info)).ToList();
    }

    /// <summary>The name <c>auto</c> resolves to on this machine.</summary>
    public static string AutoName()
    {
        using var context = CreateContext();
        return AutoName(Enumerate(context));
    }

    private static string AutoName(List<(ILGPU.Runtime.Device Device, DeviceInfo Info)> found)
        => found.FirstOrDefault(f => f.Info.Kind == DeviceKind.Cuda).Info?.Name
           ?? found.FirstOrDefault(f => f.Info.Kind == DeviceKind.OpenCL).Info?.Name
           ?? "cpu";

    internal static Context CreateContext()
        => Context.Create(b => b.Default().EnableAlgorithms().Math(MathMode.Default).Optimize(OptimizationLevel.O2));

    /// <summary>
    /// The CPU accelerator's shape: warp 4, up to 256 threads per group (the GEMM's 16x16 thread tile), 1 multiprocessor.
    /// A warp size of 4 keeps kernels honest about not assuming 32.
    /// </summary>
    internal static CPUDevice IlgpuCpuDevice => new(4, 64, 1);

    private static List<(ILGPU.Runtime.Device Device, DeviceInfo Info)> Enumerate(Context context)
    {
        var list = new List<(ILGPU.Runtime.Device, DeviceInfo)>();
        int cuda = 0, cl = 0;
        foreach (var d in context.GetCudaDevices())
            list.Add((d, Describe(d, DeviceKind.Cuda, cuda++ == 0 ? "cuda" : $"cuda:{cuda - 1}")));
        foreach (var d in context.GetCLDevices())
            list.Add((d, Describe(d, DeviceKind.OpenCL, cl++ == 0 ? "opencl" : $"opencl:{cl - 1}")));
        var cpu = IlgpuCpuDevice;
        list.Add((cpu, Describe(cpu, DeviceKind.IlgpuCpu, "ilgpu-cpu")));
        return list;
    }

    private static DeviceInfo Describe(ILGPU.Runtime.Device d, DeviceKind kind, string name)
        => new(name, kind, kind == DeviceKind.IlgpuCpu ? "ILGPU CPU accelerator (simulator)" : d.Name,
            kind == DeviceKind.IlgpuCpu ? HostMemory() : d.MemorySize, d.WarpSize, d.MaxNumThreadsPerGroup, d.NumMultiprocessors);

    private static DeviceInfo HostInfo()
        => new("cpu", DeviceKind.Cpu, $"{RuntimeInformation.ProcessArchitecture} host, {HostSimd.Description}",
            HostMemory(), HostSimd.FloatLanes, Environment.ProcessorCount, Environment.ProcessorCount);

    private static long HostMemory() => GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
}
