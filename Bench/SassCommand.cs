using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using GpuNet.Compilation;

namespace GpuNet.Bench;

/// <summary>One kernel's row of <c>Bench sass</c>.</summary>
/// <param name="Name">Catalog name, e.g. <c>GemmOp.Kernel&lt;ReluActivation&gt;</c>.</param>
/// <param name="Resources">Registers, shared memory and spills from ptxas -v.</param>
/// <param name="LocalOps">LDL and STL instructions (local memory: spills, or arrays ptxas could not keep in registers).</param>
/// <param name="GroupSize">Threads per group the occupancy assumes.</param>
/// <param name="Occupancy">Theoretical occupancy (resident warps / 64).</param>
/// <param name="Ldg128">128-bit global loads (LDG with the .128 modifier).</param>
/// <param name="Lds128">128-bit shared loads.</param>
/// <param name="Sts128">128-bit shared stores.</param>
/// <param name="Instructions">Instructions in the function.</param>
/// <param name="MainLoop">The innermost loop with the most FFMA/HMMA, or null.</param>
/// <param name="EnclosingLoop">The smallest loop around <paramref name="MainLoop"/> (a GEMM's K-tile loop), or null.</param>
internal sealed record SassRow(string Name, PtxasResources Resources, int LocalOps, int GroupSize, double Occupancy,
    int Ldg128, int Lds128, int Sts128, int Instructions, SassLoop? MainLoop, SassLoop? EnclosingLoop)
{
    /// <summary>LDG.E.128 + LDS.128 + STS.128: the 16-byte memory instructions a tiled GEMM stages its tiles with.</summary>
    public int VectorLoads => Ldg128 + Lds128 + Sts128;

    /// <summary>True when the kernel spills or touches local memory at all.</summary>
    public bool UsesLocalMemory => Resources.SpillBytes > 0 || LocalOps > 0;
}

/// <summary>
/// <c>sass [--arch sm_80|sm_90] [--kernel GLOB] [--json PATH] [--markdown PATH] [--dump DIR]</c>: every
/// [GpuKernel] kernel (and every closed generic instantiation) compiled by ILGPU to PTX, assembled by ptxas for the
/// architecture and disassembled by cuobjdump; per kernel the registers, spills, local-memory instructions, shared
/// memory, theoretical occupancy, 128-bit memory instructions and the FMA share of the main loop. No GPU is needed.
/// Exit 1 when a kernel spills or uses local memory (the offenders are printed; the outputs are still written).
/// </summary>
internal static class SassCommand
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Threads per group of explicitly grouped kernels: the largest group their launchers use (GemmOp.GroupSize and the reductions' 256 cap).</summary>
    public const int ExplicitGroupSize = 256;

    public static Command Create()
    {
        var arch = new Option<string>("--arch")
        {
            Description = $"target architecture: {string.Join(" or ", ArchLimits.All.Select(a => a.Arch))}",
            DefaultValueFactory = _ => "sm_90",
        };
        arch.AcceptOnlyFromAmong([.. ArchLimits.All.Select(a => a.Arch)]);
        var kernel = new Option<string>("--kernel") { Description = "glob over kernel names ('*' and '?'), e.g. 'GemmOp.*' (default: every kernel)", DefaultValueFactory = _ => "*" };
        var json = new Option<string?>("--json") { Description = "write {\"arch\", \"kernels\": [...]} to this file" };
        var markdown = new Option<string?>("--markdown") { Description = "write the table as a markdown page (docs/kernels/sass.md) to this file" };
        var dump = new Option<string?>("--dump") { Description = "keep each kernel's .ptx, .cubin and .sass in this directory" };
        var groupSize = Cli.IntOption("--group-size", "threads per group assumed for explicitly grouped kernels (implicitly grouped ones get ILGPU's auto-grouping choice)", ExplicitGroupSize, 1, 1024);
        var cmd = new Command("sass", "Per kernel from ptxas + cuobjdump (no GPU needed): registers, spills, local-memory instructions, shared memory, occupancy, 128-bit loads/stores, main-loop FMA share.")
        {
            arch, kernel, json, markdown, dump, groupSize,
        };
        cmd.SetAction(p => Cli.Guard(() => Run(p.GetValue(arch)!, p.GetValue(kernel)!, p.GetValue(json), p.GetValue(markdown), p.GetValue(dump), p.GetValue(groupSize))));
        return cmd;
    }

    private static int Run(string arch, string glob, string? jsonPath, string? markdownPath, string? dumpDir, int explicitGroup)
    {
        var limits = ArchLimits.Find(arch) ?? throw new UsageException($"--arch: expected one of {string.Join(", ", ArchLimits.All.Select(a => a.Arch))}, got '{arch}'");
        string ptxas = NativeTools.Ptxas().Path ?? throw new UsageException(NativeTools.Ptxas().Missing!);
        string cuobjdump = NativeTools.Cuobjdump().Path ?? throw new UsageException(NativeTools.Cuobjdump().Missing!);
        var names = Select(glob);
        if (dumpDir is not null) Directory.CreateDirectory(dumpDir);

        var (rows, errors) = Analyze(names, limits, ptxas, cuobjdump, explicitGroup, dumpDir);
        foreach (var e in errors) Console.Error.WriteLine(e);
        string version = ToolVersion(ptxas);
        string commandLine = CommandLine(arch, glob, explicitGroup);
        WriteText(Console.Out, rows, limits, version);
        if (jsonPath is not null) AtomicFile.WriteAllText(jsonPath, ToJson(rows, limits, version));
        if (markdownPath is not null) AtomicFile.WriteAllText(markdownPath, ToMarkdown(rows, limits, version, commandLine, explicitGroup));

        var offenders = rows.Where(r => r.UsesLocalMemory).ToList();
        foreach (var r in offenders)
            Console.Error.WriteLine($"sass: {r.Name} uses local memory on {arch}: {r.Resources.SpillBytes} spill bytes, {r.LocalOps} LDL/STL, {r.Resources.StackBytes} bytes stack frame");
        if (offenders.Count > 0) Console.Error.WriteLine($"sass: FAIL: {offenders.Count} of {rows.Count} kernels spill or use local memory on {arch}");
        return offenders.Count == 0 && errors.Count == 0 ? Cli.Ok : Cli.Failed;
    }

    /// <summary>Catalog names matching <paramref name="glob"/> ('*' any run, '?' one character), sorted.</summary>
    /// <exception cref="UsageException">No kernel matches.</exception>
    internal static IReadOnlyList<string> Select(string glob)
    {
        var regex = new Regex("^" + Regex.Escape(glob).Replace(@"\*", ".*", StringComparison.Ordinal).Replace(@"\?", ".", StringComparison.Ordinal) + "$");
        var names = KernelCatalog.Names.Where(n => regex.IsMatch(n)).ToList();
        if (names.Count == 0)
            throw new UsageException($"--kernel: '{glob}' matches none of the {KernelCatalog.Names.Count} kernels: {string.Join(", ", KernelCatalog.Names)}");
        return names;
    }

    /// <summary>
    /// Compiles each kernel to PTX (one ILGPU context, in order), then assembles and disassembles them on every core.
    /// A kernel ILGPU, ptxas or cuobjdump fails on is an error line instead of a row.
    /// </summary>
    internal static (List<SassRow> Rows, List<string> Errors) Analyze(IReadOnlyList<string> names, ArchLimits limits, string ptxas, string cuobjdump, int explicitGroup, string? dumpDir)
    {
        using var compiler = new PtxCompiler();
        var errors = new List<string>();
        var files = new List<(string Name, string Ptx)>();
        foreach (var name in names)
        {
            string? ptx = compiler.TryCompilePtx(name, KernelCatalog.Kernels[name], out var error);
            if (ptx is null) { errors.Add($"sass: {error}"); continue; }
            files.Add((name, compiler.WriteScratch(KernelCompiler.FileName(name) + ".ptx", ptx)));
        }
        var rows = new SassRow?[files.Count];
        var failures = new string?[files.Count];
        Parallel.For(0, files.Count, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
        {
            var (name, ptx) = files[i];
            try { rows[i] = AnalyzeOne(name, ptx, limits, ptxas, cuobjdump, explicitGroup, dumpDir); }
            catch (Exception e) when (e is InvalidOperationException or FormatException or TimeoutException) { failures[i] = $"sass: {name}: {e.Message}"; }
        });
        errors.AddRange(failures.OfType<string>());
        return (rows.OfType<SassRow>().ToList(), errors);
    }

    private static SassRow AnalyzeOne(string name, string ptxFile, ArchLimits limits, string ptxas, string cuobjdump, int explicitGroup, string? dumpDir)
    {
        string cubin = Path.ChangeExtension(ptxFile, limits.Arch + ".cubin");
        var (exit, output) = NativeTools.Run(ptxas, $"-arch={limits.Arch}", "-v", ptxFile, "-o", cubin);
        if (exit != 0) throw new InvalidOperationException($"ptxas -arch={limits.Arch} failed (exit {exit}):\n{output}");
        var resources = SassParser.ParsePtxas(output);
        var (dumpExit, listing) = NativeTools.Run(cuobjdump, "-sass", cubin);
        if (dumpExit != 0) throw new InvalidOperationException($"cuobjdump -sass failed (exit {dumpExit}):\n{listing}");
        if (dumpDir is not null)
        {
            string stem = Path.Combine(dumpDir, KernelCompiler.FileName(name));
            File.Copy(ptxFile, stem + ".ptx", overwrite: true);
            File.Copy(cubin, $"{stem}.{limits.Arch}.cubin", overwrite: true);
            File.WriteAllText($"{stem}.{limits.Arch}.sass", listing);
        }
        var functions = SassParser.Parse(listing);
        if (functions.Count == 0) throw new FormatException($"cuobjdump -sass printed no function:\n{listing}");
        // ILGPU emits one .entry and may emit .func helpers: count over all; the main loop is the best of any function.
        var all = functions.SelectMany(f => f.Instructions).ToList();
        int Count128(string op) => functions.Sum(f => f.CountWithModifier(op, "128"));
        SassLoop? loop = null, enclosing = null;
        foreach (var f in functions)
            if (f.MainFmaLoop() is { } main && (loop is not { } best || main.Fma > best.Fma))
                (loop, enclosing) = (main, f.EnclosingLoop(main));
        bool explicitly = KernelCatalog.IsExplicitlyGrouped(KernelCatalog.Kernels[name]);
        int group = explicitly ? explicitGroup : limits.AutoGroupSize(resources.Registers, resources.SharedBytes);
        return new SassRow(name, resources, functions.Sum(f => f.CountOpcodes("LDL", "STL")), group,
            limits.Occupancy(resources.Registers, resources.SharedBytes, group),
            Count128("LDG"), Count128("LDS"), Count128("STS"), all.Count, loop, enclosing);
    }

    private static string ToolVersion(string ptxas)
    {
        var (_, output) = NativeTools.Run(ptxas, "--version");
        return output.Split('\n').LastOrDefault(l => l.Contains("release", StringComparison.Ordinal))?.Trim() ?? "ptxas (version unknown)";
    }

    private static string CommandLine(string arch, string glob, int explicitGroup)
    {
        var sb = new StringBuilder($"dotnet Bench/bin/Release/net10.0/Bench.dll sass --arch {arch}");
        if (glob != "*") sb.Append(Inv, $" --kernel '{glob}'");
        if (explicitGroup != ExplicitGroupSize) sb.Append(Inv, $" --group-size {explicitGroup}");
        return sb.Append(" --markdown docs/kernels/sass.md").ToString();
    }

    private static string[] Headers => ["kernel", "regs", "spill B", "LDL/STL", "smem B", "group", "occupancy", "LDG.128", "LDS.128", "STS.128", "main loop FMA share", "enclosing loop (FMA/instr)"];

    private static string[] Cells(SassRow r) =>
    [
        r.Name, r.Resources.Registers.ToString(Inv), r.Resources.SpillBytes.ToString(Inv), r.LocalOps.ToString(Inv),
        r.Resources.SharedBytes.ToString(Inv), r.GroupSize.ToString(Inv), r.Occupancy.ToString("F3", Inv),
        r.Ldg128.ToString(Inv), r.Lds128.ToString(Inv), r.Sts128.ToString(Inv),
        r.MainLoop is { } l ? string.Create(Inv, $"{l.FmaShare:F3} ({l.Fma}/{l.Instructions})") : "-",
        r.EnclosingLoop is { } e ? string.Create(Inv, $"{e.Fma}/{e.Instructions}") : "-",
    ];

    private static void WriteText(TextWriter w, List<SassRow> rows, ArchLimits limits, string version)
    {
        w.WriteLine($"{rows.Count} kernels, {limits.Arch}, {version}");
        var table = new TextTable(Headers);
        foreach (var r in rows) table.Add(Cells(r));
        table.Write(w);
    }

    /// <summary>The JSON document: <c>{"arch", "ptxas", "kernels": [{"name", "registers", ...}]}</c>.</summary>
    internal static string ToJson(IEnumerable<SassRow> rows, ArchLimits limits, string version)
    {
        var kernels = new JsonArray();
        foreach (var r in rows)
            kernels.Add(new JsonObject
            {
                ["name"] = r.Name,
                ["registers"] = r.Resources.Registers,
                ["spill_bytes"] = r.Resources.SpillBytes,
                ["stack_bytes"] = r.Resources.StackBytes,
                ["local_ops"] = r.LocalOps,
                ["shared_bytes"] = r.Resources.SharedBytes,
                ["group_size"] = r.GroupSize,
                ["occupancy"] = r.Occupancy,
                ["ldg_128"] = r.Ldg128,
                ["lds_128"] = r.Lds128,
                ["sts_128"] = r.Sts128,
                ["vector_loads"] = r.VectorLoads,
                ["instructions"] = r.Instructions,
                ["main_loop_fma"] = r.MainLoop?.Fma,
                ["main_loop_instructions"] = r.MainLoop?.Instructions,
                ["main_loop_fma_share"] = r.MainLoop?.FmaShare,
                ["enclosing_loop_fma"] = r.EnclosingLoop?.Fma,
                ["enclosing_loop_instructions"] = r.EnclosingLoop?.Instructions,

            });
        var doc = new JsonObject { ["arch"] = limits.Arch, ["ptxas"] = version, ["kernels"] = kernels };
        return doc.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>docs/kernels/sass.md: how it was made, what each column means, the table.</summary>
    internal static string ToMarkdown(IReadOnlyList<SassRow> rows, ArchLimits limits, string version, string commandLine, int explicitGroup)
    {
        var sb = new StringBuilder();
        sb.AppendLine(Inv, $"# Kernels in SASS ({limits.Arch})");
        sb.AppendLine();
        sb.AppendLine("Generated by `Bench sass` from ILGPU's PTX, assembled by ptxas and disassembled by cuobjdump (no GPU involved).");
        sb.AppendLine("Regenerate after changing a kernel (needs ptxas and cuobjdump: `bash .ci/fetch-ptxas.sh`):");
        sb.AppendLine();
        sb.AppendLine("```");
        sb.AppendLine("dotnet build GpuNet.sln -c Release");
        sb.AppendLine(commandLine);
        sb.AppendLine("```");
        sb.AppendLine();
        sb.AppendLine(Inv, $"{rows.Count} kernels; {version}.");
        sb.AppendLine();
        sb.AppendLine("- **regs**, **smem B**, **spill B** (spill stores + loads): ptxas -v. **LDL/STL**: local-memory instructions in the SASS.");
        sb.AppendLine(Inv, $"- **occupancy**: resident warps / 64 from registers (allocated per warp in units of 256 of 64K), shared memory ({limits.SharedBytesPerSm / 1024} KB per SM, 1 KB reserved per block), 2048 threads and 32 blocks per SM, at **group** threads: {explicitGroup} for explicitly grouped kernels, ILGPU's auto-grouping choice (the largest group with the best occupancy) for the others.");
        sb.AppendLine("- **LDG.128 / LDS.128 / STS.128**: 16-byte global loads, shared loads and shared stores (`vector_loads` in the JSON is their sum).");
        sb.AppendLine("- **main loop FMA share**: a loop is a backward `BRA` and the instructions from its target to it; of the innermost loops holding FFMA or HMMA (containing no other such loop), the one with the most FMAs; FMA instructions / all instructions of its body (counts in brackets). `-`: no loop holds an FMA.");
        sb.AppendLine("- **enclosing loop (FMA/instr)**: FMA and all instructions of the smallest loop around the main loop (for a GEMM, the K-tile loop: tile loads, barriers, index math, and the main loop once), static counts: the main loop runs several times per trip, so this is no issued-instruction share; the instructions outside the main loop are the per-tile overhead. `-`: the main loop is outermost.");
        sb.AppendLine();
        sb.AppendLine("| " + string.Join(" | ", Headers) + " |");
        sb.AppendLine("|" + string.Concat(Headers.Select((_, i) => i == 0 ? " --- |" : " ---: |")));
        foreach (var r in rows) sb.AppendLine("| " + string.Join(" | ", Cells(r).Select((c, i) => i == 0 ? $"`{c}`" : c)) + " |");
        return sb.ToString();
    }
}
