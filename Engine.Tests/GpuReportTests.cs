using System.Text.Json;
using GpuNet.Bench;

namespace GpuNet.Tests;

/// <summary>
/// <c>Bench gpu-report</c>: the device rule (refuse without CUDA unless another ILGPU device is named), the presets'
/// GEMM shapes, the table reader, and a <c>--quick</c> run on ILGPU's CPU simulator end to end.
/// </summary>
[Collection(nameof(ConsoleCollection))]
public sealed class GpuReportTests
{
    private static readonly DeviceInfo Host = new("cpu", DeviceKind.Cpu, "host", 1L << 30, 16, 2, 2, DeviceHardware.Cpu);
    private static readonly DeviceInfo Simulator = new("ilgpu-cpu", DeviceKind.IlgpuCpu, "simulator", 1L << 30, 4, 256, 1, DeviceHardware.Simulator);
    private static readonly DeviceInfo Gpu = new("cuda", DeviceKind.Cuda, "H200", 141L << 30, 32, 1024, 132, DeviceHardware.Gpu);

    [Fact]
    public void RefusesWithoutCudaUnlessAnotherIlgpuDeviceIsNamed()
    {
        var e = Assert.Throws<UsageException>(() => GpuReportCommand.ChooseDevice(null, [Host, Simulator]));
        Assert.Contains("--device: gpu-report expected a CUDA device (cuda, cuda:N), got none", e.Message);
        Assert.Contains("ilgpu-cpu (IlgpuCpu)", e.Message);
        Assert.Equal(Simulator, GpuReportCommand.ChooseDevice("ilgpu-cpu", [Host, Simulator]));
        Assert.Equal(Gpu, GpuReportCommand.ChooseDevice(null, [Host, Gpu, Simulator]));
        e = Assert.Throws<UsageException>(() => GpuReportCommand.ChooseDevice("cpu", [Host, Simulator]));
        Assert.Contains("expected an ILGPU device (cuda[:N], opencl[:N], ilgpu-cpu), got 'cpu'", e.Message);
        e = Assert.Throws<UsageException>(() => GpuReportCommand.ChooseDevice("cuda:3", [Host, Simulator]));
        Assert.Contains("got 'cuda:3'", e.Message);
    }

    [Fact]
    public void ACommandLineNamingTheHostExitsWith2()
    {
        using var dir = new TempDir();
        var (code, _, err) = Run("gpu-report", "--out", dir.Path, "--device", "cpu");
        Assert.Equal(2, code);
        Assert.Contains("expected an ILGPU device", err);
        Assert.Empty(dir.Entries);
    }

    [Fact]
    public void PresetShapesFollowTheLayers()
    {
        var mlp = Preset.Find("mnist-mlp")!;
        var shapes = GpuReportCommand.Shapes("mnist-mlp", mlp.Network(mlp.Defaults), [1, 28, 28], 128);
        Assert.Equal(9, shapes.Count);   // three Linear layers x (forward, dx, dW)
        Assert.Equal(new GpuReportCommand.GemmShape("mnist-mlp fc1 forward", 128, 256, 784, false, true), shapes[0]);
        Assert.Equal(new GpuReportCommand.GemmShape("mnist-mlp fc1 dx", 128, 784, 256, false, false), shapes[1]);
        Assert.Equal(new GpuReportCommand.GemmShape("mnist-mlp fc1 dW", 256, 784, 128, true, false), shapes[2]);
        var cnn = Preset.Find("mnist-cnn")!;
        var conv = GpuReportCommand.Shapes("mnist-cnn", cnn.Network(cnn.Defaults), [1, 28, 28], 128).Where(s => s.Name.Contains("conv")).ToList();
        Assert.Equal([(32, 784, 9), (64, 196, 288)], conv.Select(s => (s.M, s.N, s.K)));
    }

    [Fact]
    public void ReadsTheTablesACommandPrinted()
    {
        var table = new TextTable("op", "n", "name with spaces");
        table.Add("NN", "1024", "a b");
        table.Add("NT", "8", "");
        var w = new StringWriter();
        w.WriteLine("preamble line");
        table.Write(w);
        w.WriteLine();
        w.WriteLine("after");
        var t = Assert.Single(PrintedTables.Parse(w.ToString()));
        Assert.Equal(["op", "n", "name with spaces"], t.Columns);
        Assert.Equal(2, t.Rows.Count);
        Assert.Equal(["NN", "1024", "a b"], t.Rows[0]);
        Assert.Equal(["NT", "8", ""], t.Rows[1]);
    }

    /// <summary>The whole report on ILGPU's CPU simulator with tiny sizes: every section ran or says why not.</summary>
    [Fact]
    public void QuickReportOnTheSimulatorWritesJsonAndMarkdown()
    {
        using var dir = new TempDir();
        var (code, output, err) = Run("gpu-report", "--out", dir.Path, "--device", "ilgpu-cpu", "--quick");
        Assert.True(code == 0, $"{err}\n{output}");
        using var json = JsonDocument.Parse(File.ReadAllText(dir.File("report.json")));
        var root = json.RootElement;
        Assert.Equal("ilgpu-cpu", root.GetProperty("device").GetString());
        Assert.True(root.GetProperty("quick").GetBoolean());
        var sections = root.GetProperty("sections").EnumerateArray().ToDictionary(s => s.GetProperty("name").GetString()!);
        Assert.Equal(["devices", "sgemm fp32", "sgemm tf32", "preset gemm shapes", "optimizer vs copy", "conv", "train mnist-mlp", "train mnist-cnn", "cuda test classes"], sections.Keys);
        foreach (var name in new[] { "devices", "sgemm fp32", "preset gemm shapes", "optimizer vs copy" })
            Assert.Equal("ok", sections[name].GetProperty("status").GetString());
        foreach (var name in new[] { "sgemm tf32", "conv", "train mnist-mlp", "train mnist-cnn", "cuda test classes" })
        {
            Assert.Equal("skipped", sections[name].GetProperty("status").GetString());
            Assert.False(string.IsNullOrEmpty(sections[name].GetProperty("reason").GetString()));
        }
        var gemm = Assert.Single(sections["sgemm fp32"].GetProperty("tables").EnumerateArray());
        Assert.Equal("16", gemm.GetProperty("rows")[0][1].GetString());
        var shapes = Assert.Single(sections["preset gemm shapes"].GetProperty("tables").EnumerateArray());
        Assert.Equal(2, shapes.GetProperty("rows").GetArrayLength());   // the first GEMM of mnist-mlp and of mnist-cnn
        Assert.Contains("copy probe", sections["optimizer vs copy"].GetProperty("output").GetString());
        string md = File.ReadAllText(dir.File("report.md"));
        Assert.Contains("# GPU report: ilgpu-cpu (quick)", md);
        Assert.Contains("| sgemm tf32 | skipped", md);
        Assert.Contains("## preset gemm shapes", md);
    }

    private static (int Code, string Out, string Err) Run(params string[] args) => BenchCli.Run(args);
}
