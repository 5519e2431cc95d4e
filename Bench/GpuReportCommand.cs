using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using GpuNet.Compilation;
using GpuNet.Kernels;
using GpuNet.Nn;
using ILGPU.Runtime.Cuda;

namespace GpuNet.Bench;

/// <summary>
/// <c>gpu-report --out DIR [--device D] [--quick]</c>: one run that characterises a GPU: <c>devices</c>; SGEMM fp32
/// (and TF32 where the device and the <c>gemm</c> command offer it) beside cuBLAS at 1024-8192; the GEMMs of the
/// mnist-mlp and mnist-cnn presets at their shapes; the fused optimizer step beside the device copy kernel;
/// <c>conv</c>; one epoch each of <c>mnist-mlp</c> and <c>mnist-cnn</c> with accuracy; the CUDA test classes.
/// Each section runs the existing command in-process (its console output captured) and is recorded with its status,
/// time, output and the tables it printed; DIR receives <c>report.json</c> and <c>report.md</c>. Without a CUDA
/// device it refuses unless <c>--device</c> names another ILGPU device; <c>--quick</c> shrinks every size so the
/// report runs on ILGPU's CPU simulator (it skips conv, training and the test classes).
/// </summary>
internal static class GpuReportCommand
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static Command Create()
    {
        var outDir = new Option<string>("--out") { Description = "directory for report.json, report.md and the training summaries", Required = true };
        var device = new Option<string?>("--device", "-d") { Description = "an ILGPU device: cuda, cuda:N, opencl, opencl:N or ilgpu-cpu (default: cuda; without a CUDA device the report refuses unless this names another)" };
        var quick = new Option<bool>("--quick") { Description = "tiny sizes, 1 timed run, no conv, training or test classes: a smoke run for ILGPU's CPU simulator" };
        var cmd = new Command("gpu-report", "One run characterising a GPU: devices, SGEMM (fp32, TF32) beside cuBLAS, the presets' GEMM shapes, optimizer vs copy bandwidth, conv, one epoch of mnist-mlp and mnist-cnn, the CUDA tests; JSON + markdown.")
        {
            outDir, device, quick,
        };
        cmd.SetAction(p => Cli.Guard(() => Run(p.GetValue(outDir)!, p.GetValue(device), p.GetValue(quick))));
        return cmd;
    }

    /// <summary>The device the report runs on: a CUDA device, or the ILGPU device <paramref name="requested"/> names.</summary>
    /// <exception cref="UsageException">No CUDA device and none requested; a requested device that is absent or not an ILGPU device.</exception>
    internal static DeviceInfo ChooseDevice(string? requested, IReadOnlyList<DeviceInfo> present)
    {
        string list = string.Join(", ", present.Select(d => $"{d.Name} ({d.Kind})"));
        if (requested is null)
            return present.FirstOrDefault(d => d.Kind == DeviceKind.Cuda)
                ?? throw new UsageException($"--device: gpu-report expected a CUDA device (cuda, cuda:N), got none on this machine (present: {list}); " +
                    "name another ILGPU device to report on it, e.g. --device ilgpu-cpu --quick");
        string name = requested.Trim().ToLowerInvariant();
        var info = present.FirstOrDefault(d => d.Name == name)
            ?? throw new UsageException($"--device: expected one of the present devices ({list}), got '{requested}'");
        if (info.Kind == DeviceKind.Cpu)
            throw new UsageException($"--device: expected an ILGPU device (cuda[:N], opencl[:N], ilgpu-cpu), got '{requested}', the host SIMD path");
        return info;
    }

    private static int Run(string outDir, string? requested, bool quick)
    {
        var info = ChooseDevice(requested, Device.Available());
        Directory.CreateDirectory(outDir);
        string d = info.Name;
        var total = Stopwatch.StartNew();
        var report = new Report(d, quick);
        Console.WriteLine($"gpu-report: {d} ({info.Description}){(quick ? ", quick" : "")} -> {Path.GetFullPath(outDir)}");

        report.Bench("devices", ["devices"]);
        string[] sizes = quick ? ["16"] : ["1024,2048,4096,8192"];
        string[] timing = quick ? ["--reps", "1", "--warmup", "0"] : ["--reps", "10", "--warmup", "2"];
        report.Bench("sgemm fp32", ["gemm", "--device", d, "--sizes", sizes[0], "--trans", "NN", .. timing]);
        if (Tf32Skip(info) is { } tf32Skip) report.Skip("sgemm tf32", tf32Skip);
        else report.Bench("sgemm tf32", ["gemm", "--device", d, "--sizes", sizes[0], "--trans", "NN", "--math", "tf32", .. timing]);
        report.Run("preset gemm shapes", $"(in-process) {PresetShapesTitle(quick)}", () => PresetGemms(d, quick));
        report.Bench("optimizer vs copy", ["optim", "--device", d, "--sizes", quick ? "4K" : "10M,100M", "--optimizers", quick ? "sgd,adam" : "sgd,momentum,adam", .. (quick ? new[] { "--runs", "2" } : [])]);
        if (quick)
        {
            const string why = "--quick: ILGPU's CPU simulator needs minutes for these";
            report.Skip("conv", why);
            report.Skip("train mnist-mlp", why);
            report.Skip("train mnist-cnn", why);
        }
        else
        {
            report.Bench("conv", ["conv", "--device", d, "--batch", "128"]);
            foreach (var preset in new[] { "mnist-mlp", "mnist-cnn" })
            {
                string json = Path.Combine(outDir, $"train-{preset}.json");
                var section = report.Bench($"train {preset}", ["train", preset, "--device", d, "--epochs", "1", "--quiet", "--json", json]);
                section.Summary = File.Exists(json) ? JsonNode.Parse(File.ReadAllText(json))?["final"]?.DeepClone() : null;
            }
        }
        if (TestSkip(info, quick) is { } testSkip) report.Skip("cuda test classes", testSkip);
        else report.Run("cuda test classes", "dotnet test Engine.Tests -c Release --no-build -- --filter-trait Backend=cuda", CudaTests);

        report.TotalSeconds = total.Elapsed.TotalSeconds;
        AtomicFile.WriteAllText(Path.Combine(outDir, "report.json"), report.ToJson());
        AtomicFile.WriteAllText(Path.Combine(outDir, "report.md"), report.ToMarkdown());
        int failed = report.Sections.Count(s => s.Status == "failed");
        Console.WriteLine(string.Create(Inv, $"gpu-report: {report.Sections.Count} sections, {failed} failed, {report.TotalSeconds:F0} s; {Path.Combine(outDir, "report.md")}"));
        return failed == 0 ? Cli.Ok : Cli.Failed;
    }

    /// <summary>
    /// Why TF32 is not measured, or null when it is: the tensor-core GEMM needs a CUDA device of compute capability
    /// 8.0 or later.
    /// </summary>
    private static string? Tf32Skip(DeviceInfo info)
    {
        if (info.Kind != DeviceKind.Cuda) return $"TF32 needs a CUDA device; {info.Name} is {info.Kind}";
        using var device = Device.Create(info.Name);
        var arch = ((CudaAccelerator)device.Kernels.Accelerator).Architecture;
        return arch is { } a && a >= CudaArchitecture.SM_80 ? null : $"TF32 needs compute capability 8.0 or later; {info.Name} is {arch}";
    }

    private static string? TestSkip(DeviceInfo info, bool quick)
    {
        if (quick) return "--quick";
        if (info.Kind != DeviceKind.Cuda) return $"the report's device {info.Name} is {info.Kind}, not CUDA";
        return TestProject() is null ? "Engine.Tests/Engine.Tests.csproj not found above the Bench binaries (no source checkout)" : null;
    }

    private static string? TestProject()
        => NativeTools.RepoRoot is { } root && File.Exists(Path.Combine(root, "Engine.Tests", "Engine.Tests.csproj"))
            ? Path.Combine(root, "Engine.Tests", "Engine.Tests.csproj") : null;

    /// <summary>The per-backend tests on CUDA (GPUNET_REQUIRE_BACKENDS=cuda: an absent CUDA backend fails, not skips).</summary>
    private static int CudaTests()
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "test", TestProject()!, "-c", "Release", "--no-build", "--", "--filter-trait", "Backend=cuda" }) psi.ArgumentList.Add(a);
        psi.Environment["GPUNET_REQUIRE_BACKENDS"] = "cuda";
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("could not start dotnet test");
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) Console.WriteLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) Console.Error.WriteLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        if (!p.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException("dotnet test --filter-trait Backend=cuda ran over 5 minutes");
        }
        p.WaitForExit();
        return p.ExitCode;
    }

    private static string PresetShapesTitle(bool quick)
        => quick ? "GEMMs of mnist-mlp and mnist-cnn, every dimension capped at 16" : "GEMMs of mnist-mlp and mnist-cnn at batch 128";

    /// <summary>
    /// One GEMM of a preset: C (M, N) = op(A) op(B) with inner dimension K, as a training step runs it (Linear: the
    /// forward <c>x W^T</c>, the input gradient <c>dy W</c>, the weight gradient <c>dy^T x</c>; Conv2d: today's
    /// per-sample im2col GEMM <c>W (K, C R S) x columns (C R S, P Q)</c>).
    /// </summary>
    internal sealed record GemmShape(string Name, int M, int N, int K, bool TransA, bool TransB);

    /// <summary>The GEMM shapes of <paramref name="network"/> at <paramref name="batch"/>, walking its Sequential levels with per-sample shapes.</summary>
    internal static List<GemmShape> Shapes(string preset, Layer network, int[] sampleShape, int batch)
    {
        var shapes = new List<GemmShape>();
        void Walk(Layer layer, int[] input)
        {
            switch (layer)
            {
                case Sequential s:
                    foreach (var child in s.Layers) { Walk(child, input); input = child.OutputShape(input); }
                    break;
                case Linear l:
                    shapes.Add(new($"{preset} {l.Name} forward", batch, l.OutFeatures, l.InFeatures, false, true));
                    shapes.Add(new($"{preset} {l.Name} dx", batch, l.InFeatures, l.OutFeatures, false, false));
                    shapes.Add(new($"{preset} {l.Name} dW", l.OutFeatures, l.InFeatures, batch, true, false));
                    break;
                case Conv2d c when c.Params.Groups == 1:
                    var output = c.OutputShape(input);
                    shapes.Add(new($"{preset} {c.Name} forward (per sample)", c.OutChannels, output[1] * output[2], input[0] * c.KernelSize * c.KernelSize, false, false));
                    break;
            }
        }
        Walk(network, sampleShape);
        return shapes;
    }

    private static int PresetGemms(string deviceName, bool quick)
    {
        var shapes = new List<GemmShape>();
        foreach (var name in new[] { "mnist-mlp", "mnist-cnn" })
        {
            var p = Preset.Find(name)!;
            var layer = p.Network(p.Defaults);
            shapes.AddRange(Shapes(name, layer, [1, 28, 28], p.Defaults.BatchSize));
        }
        if (quick)   // the first GEMM of each preset, each dimension capped at 16
            shapes = [.. shapes.GroupBy(s => s.Name.Split(' ')[0]).Select(g => g.First() with { M = Math.Min(g.First().M, 16), N = Math.Min(g.First().N, 16), K = Math.Min(g.First().K, 16) })];
        using var device = Cli.OpenDevice(deviceName);
        using var cublas = CuBlasBaseline.TryCreate(device, tf32: false, out string noCuBlas);
        if (noCuBlas.Length > 0) Console.WriteLine(noCuBlas);
        int reps = quick ? 1 : 20, warmup = quick ? 0 : 3;
        var headers = new List<string> { "gemm", "M", "N", "K", "op", "ms", "GFLOP/s", "err/tol" };
        if (cublas is not null) headers.AddRange(["cuBLAS ms", "cuBLAS GFLOP/s", "ours/cuBLAS"]);
        var table = new TextTable([.. headers]);
        var rng = new Random(7);
        bool ok = true;
        foreach (var s in shapes)
        {
            using var a = device.FromArray(Random(rng, s.M * s.K), s.TransA ? new[] { s.K, s.M } : new[] { s.M, s.K });
            using var b = device.FromArray(Random(rng, s.K * s.N), s.TransB ? new[] { s.N, s.K } : new[] { s.K, s.N });
            using var c = device.AllocateUninitialized([s.M, s.N]);
            double flops = GemmOp.Cost(s.M, s.N, s.K).Flops;
            device.Gemm(a, b, c, s.TransA, s.TransB);
            double ratio = Check(a.ToArray(), b.ToArray(), c.ToArray(), s, rng);
            ok &= ratio <= 1;
            double ms = GemmCommand.TimeMedian(device, () => device.Gemm(a, b, c, s.TransA, s.TransB), reps, warmup);
            var row = new List<string> { s.Name, s.M.ToString(Inv), s.N.ToString(Inv), s.K.ToString(Inv), $"{(s.TransA ? 'T' : 'N')}{(s.TransB ? 'T' : 'N')}",
                ms.ToString("F4", Inv), (flops / (ms * 1e6)).ToString("F1", Inv), ratio.ToString("F3", Inv) };
            if (cublas is not null)
            {
                double cb = GemmCommand.TimeMedian(device, () => cublas.Sgemm(a, b, c, s.TransA, s.TransB), reps, warmup);
                row.AddRange([cb.ToString("F4", Inv), (flops / (cb * 1e6)).ToString("F1", Inv), (cb / ms).ToString("F2", Inv) + "x"]);
            }
            table.Add([.. row]);
        }
        Console.WriteLine($"{PresetShapesTitle(quick)} on {device.Name}: median of {reps} runs; err/tol: worst sampled |got - ref| / (atol + rtol |ref|) against float64");
        table.Write(Console.Out);
        if (!ok) Console.Error.WriteLine("preset gemm shapes: WRONG RESULT (err/tol > 1)");
        return ok ? Cli.Ok : Cli.Failed;
    }

    /// <summary>Worst ratio |got - ref| / (atol + rtol |ref|) over 64 sampled entries of C (the gemm command's constants).</summary>
    private static double Check(float[] a, float[] b, float[] c, GemmShape s, Random rng)
    {
        double atol = 8e-6 * Math.Sqrt(s.K), rtol = 1e-5, worst = 0;
        for (int t = 0; t < 64; t++)
        {
            int i = rng.Next(s.M), j = rng.Next(s.N);
            double r = 0;
            for (int p = 0; p < s.K; p++)
                r += (double)(s.TransA ? a[p * s.M + i] : a[i * s.K + p]) * (s.TransB ? b[j * s.K + p] : b[p * s.N + j]);
            double got = c[i * s.N + j];
            worst = Math.Max(worst, double.IsFinite(got) ? Math.Abs(got - r) / (atol + rtol * Math.Abs(r)) : double.PositiveInfinity);
        }
        return worst;
    }

    private static float[] Random(Random rng, int n)
    {
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)(2 * rng.NextDouble() - 1);
        return x;
    }

    /// <summary>The report: its sections in order, each run with the console captured.</summary>
    private sealed class Report(string device, bool quick)
    {
        public List<ReportSection> Sections { get; } = [];
        public double TotalSeconds { get; set; }

        public ReportSection Bench(string name, string[] args) => Run(name, "Bench " + string.Join(' ', args), () => BenchApp.Run(args));

        public void Skip(string name, string reason)
        {
            Console.WriteLine($"== {name}: skipped ({reason})");
            Sections.Add(new ReportSection(name, "", "skipped", reason, 0, null, ""));
        }

        public ReportSection Run(string name, string command, Func<int> body)
        {
            Console.WriteLine($"== {name}: {command}");
            var (oldOut, oldErr) = (Console.Out, Console.Error);
            var captured = new StringWriter();
            Console.SetOut(new TeeWriter(oldOut, captured));
            Console.SetError(new TeeWriter(oldErr, captured));
            var sw = Stopwatch.StartNew();
            int? code;
            string? reason = null;
            try { code = body(); }
            catch (Exception e)
            {
                code = null;
                reason = $"{e.GetType().Name}: {e.Message}";
                Console.Error.WriteLine($"failed: {reason}");
            }
            finally
            {
                Console.SetOut(oldOut);
                Console.SetError(oldErr);
            }
            if (code is int c && c != 0) reason = $"exit code {c}";
            var section = new ReportSection(name, command, reason is null ? "ok" : "failed", reason, sw.Elapsed.TotalSeconds, code, captured.ToString());
            Sections.Add(section);
            return section;
        }

        public string ToJson()
        {
            var sections = new JsonArray();
            foreach (var s in Sections)
                sections.Add(new JsonObject
                {
                    ["name"] = s.Name,
                    ["command"] = s.Command,
                    ["status"] = s.Status,
                    ["reason"] = s.Reason,
                    ["seconds"] = s.Seconds,
                    ["exit_code"] = s.ExitCode,
                    ["tables"] = new JsonArray([.. PrintedTables.Parse(s.Output).Select(t => (JsonNode)t.ToJson())]),
                    ["summary"] = s.Summary?.DeepClone(),
                    ["output"] = s.Output,
                });
            var doc = new JsonObject
            {
                ["device"] = device,
                ["quick"] = quick,
                ["total_seconds"] = TotalSeconds,
                ["sections"] = sections,
            };
            return doc.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
        }

        public string ToMarkdown()
        {
            var sb = new StringBuilder();
            sb.AppendLine(Inv, $"# GPU report: {device}{(quick ? " (quick)" : "")}");
            sb.AppendLine();
            sb.AppendLine(Inv, $"`Bench gpu-report --device {device}{(quick ? " --quick" : "")}`: {Sections.Count} sections in {TotalSeconds:F0} s.");
            sb.AppendLine();
            sb.AppendLine("| section | status | seconds |");
            sb.AppendLine("|---|---|---:|");
            foreach (var s in Sections) sb.AppendLine(Inv, $"| {s.Name} | {s.Status}{(s.Reason is null ? "" : $" ({s.Reason})")} | {s.Seconds:F1} |");
            foreach (var s in Sections.Where(s => s.Status != "skipped"))
            {
                sb.AppendLine();
                sb.AppendLine(Inv, $"## {s.Name}");
                sb.AppendLine();
                sb.AppendLine(Inv, $"`{s.Command}` ({s.Status}, {s.Seconds:F1} s)");
                if (s.Summary is not null) sb.AppendLine().AppendLine(Inv, $"final: `{s.Summary.ToJsonString()}`");
                sb.AppendLine();
                sb.AppendLine("```");
                sb.AppendLine(s.Output.TrimEnd());
                sb.AppendLine("```");
            }
            return sb.ToString();
        }
    }

    /// <summary>One section: what ran, how it ended, how long it took and what it printed.</summary>
    private sealed record ReportSection(string Name, string Command, string Status, string? Reason, double Seconds, int? ExitCode, string Output)
    {
        /// <summary>The training run's final validation and test figures (train sections only).</summary>
        public JsonNode? Summary { get; set; }
    }

    /// <summary>Writes everything to two writers: the console and the section's capture.</summary>
    private sealed class TeeWriter(TextWriter first, TextWriter second) : TextWriter
    {
        public override Encoding Encoding => first.Encoding;
        public override void Write(char value) { first.Write(value); second.Write(value); }
        public override void Write(string? value) { first.Write(value); second.Write(value); }
        public override void WriteLine(string? value) { first.WriteLine(value); second.WriteLine(value); }
        public override void Flush() { first.Flush(); second.Flush(); }
    }
}
