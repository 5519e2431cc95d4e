using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;
using GpuNet.Bench;
using GpuNet.Compilation;
using GpuNet.Kernels;
using ILGPU;
using ILGPU.Backends;
using ILGPU.Backends.OpenCL;
using ILGPU.Runtime;
using ILGPU.Runtime.OpenCL;

namespace GpuNet.Tests;

/// <summary>The catalog's kernel names as theory cases.</summary>
public static class KernelCases
{
    /// <summary>Kernel names, sorted: the cases of the per-kernel theories.</summary>
    public static TheoryData<string> Names => new(KernelCatalog.Names);
}

/// <summary>
/// Discovery and the guard: every kernel is found, carries a consistent attribute, and nothing that looks like a
/// kernel lacks the attribute (it would escape the PTX and OpenCL compile tests).
/// </summary>
public sealed class KernelCatalogTests
{
    /// <summary>The catalog is not empty and holds the elementwise kernels, generic ones once per op struct.</summary>
    [Fact]
    public void DiscoversKernels()
    {
        var names = KernelCatalog.Kernels.Keys.ToList();
        Assert.Contains("ElementwiseOp.AxpyKernel", names);
        Assert.Contains("ElementwiseOp.BinaryKernel<SubOp>", names);
        Assert.Contains("ActivationOp.BackwardKernel<GeluActivation>", names);
        Assert.Contains("GemmOp.Kernel<IdentityActivation>", names);
        Assert.DoesNotContain("ActivationOp.ForwardKernel", names);   // the open definition itself cannot be compiled
        TestContext.Current.TestOutputHelper?.WriteLine($"{names.Count} kernels: {string.Join(", ", names.Order(StringComparer.Ordinal))}");
    }

    /// <summary>
    /// Rule: a public static method of GpuNet.Kernels whose first parameter is Index1D/2D/3D, or that returns void,
    /// is named *Kernel and takes an ArrayView, must carry [GpuKernel].
    /// </summary>
    [Fact]
    public void EveryKernelLikeMethodCarriesTheAttribute()
    {
        var missing = KernelCatalog.AllStaticMethods()
            .Where(m => KernelCatalog.LooksLikeKernel(m) && m.GetCustomAttribute<GpuKernelAttribute>() is null)
            .Select(m => $"{m.DeclaringType!.FullName}.{m.Name}")
            .ToList();
        Assert.True(missing.Count == 0,
            "these methods look like kernels (first parameter Index1D/2D/3D, or void *Kernel taking an ArrayView) " +
            $"but lack [GpuKernel], so no test compiles them to PTX or OpenCL: {string.Join(", ", missing)}");
    }

    /// <summary>
    /// Every generic [GpuKernel] is compiled once per struct of its constraint interface: one instantiation per
    /// <see cref="Activation"/> value for the activation kernels and the GEMM, one per <see cref="BinaryOp"/> value
    /// for the binary kernel.
    /// </summary>
    [Fact]
    public void GenericKernelsAreInstantiatedForEveryOpStruct()
    {
        int activations = Enum.GetValues<Activation>().Length, binaryOps = Enum.GetValues<BinaryOp>().Length;
        foreach (var name in new[] { "ActivationOp.ForwardKernel", "ActivationOp.BackwardKernel", "GemmOp.Kernel" })
            Assert.Equal(activations, KernelCatalog.Kernels.Keys.Count(k => k.StartsWith(name + "<", StringComparison.Ordinal)));
        Assert.Equal(binaryOps, KernelCatalog.Kernels.Keys.Count(k => k.StartsWith("ElementwiseOp.BinaryKernel<", StringComparison.Ordinal)));
        var forward = KernelCatalog.Attributed().Single(m => m.DeclaringType == typeof(ActivationOp) && m.Name == nameof(ActivationOp.ForwardKernel));
        Assert.Equal(
            Enum.GetValues<Activation>().Select(a => ActivationMath.Definition(a).GetType()).Order(TypeComparer).ToList(),
            KernelCatalog.Instantiations(forward).Select(m => m.GetGenericArguments()[0]).Order(TypeComparer).ToList());
    }

    private static readonly Comparer<Type> TypeComparer = Comparer<Type>.Create((a, b) => string.CompareOrdinal(a.FullName, b.FullName));

    /// <summary>The instantiation rule: no interface constraint, or no struct satisfying it, means no instantiation.</summary>
    [Fact]
    public void InstantiationNeedsAnInterfaceConstraintAStructSatisfies()
    {
        Assert.Empty(KernelCatalog.Instantiations(typeof(GuardSamples).GetMethod(nameof(GuardSamples.Unconstrained))!));
        Assert.Empty(KernelCatalog.Instantiations(typeof(GuardSamples).GetMethod(nameof(GuardSamples.Unsatisfiable))!));
    }

    /// <summary>
    /// Every [GpuKernel] method is static and returns void, and a generic one has at least one instantiation (else no
    /// test would compile it); implicitly grouped kernels take an index first, explicitly grouped ones take none; at
    /// most 14 parameters besides the index.
    /// </summary>
    [Fact]
    public void AttributedKernelsAreWellFormed()
    {
        var problems = new List<string>();
        foreach (var m in KernelCatalog.Attributed())
        {
            string name = $"{m.DeclaringType!.FullName}.{m.Name}";
            var ps = m.GetParameters();
            bool indexFirst = ps.Length > 0 && KernelCatalog.IsIndexType(ps[0].ParameterType);
            bool explicitly = KernelCatalog.IsExplicitlyGrouped(m);
            if (m.ReturnType != typeof(void)) problems.Add($"{name} returns {m.ReturnType.Name}, expected void");
            if (m.IsGenericMethodDefinition && KernelCatalog.Instantiations(m).Count == 0)
                problems.Add($"{name} is generic but no struct of GpuNet.Kernels satisfies its type parameters' interface constraints, " +
                    "so it has no instantiation to compile: constrain each type parameter to an op interface (IActivation, IBinaryOp) with implementations");
            if (explicitly && indexFirst) problems.Add($"{name} is ExplicitlyGrouped but takes {ps[0].ParameterType.Name} first");
            if (!explicitly && !indexFirst) problems.Add($"{name} is implicitly grouped but its first parameter is not Index1D/2D/3D (set ExplicitlyGrouped = true?)");
            if (ps.Count(p => !KernelCatalog.IsIndexType(p.ParameterType)) > 14) problems.Add($"{name} has more than 14 parameters besides the index");
            if (ps.Skip(indexFirst ? 1 : 0).Any(p => KernelCatalog.IsIndexType(p.ParameterType)))
                problems.Add($"{name} takes an index type after the first parameter");
        }
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    /// <summary>The guard's rule recognises kernels and leaves launchers and host code alone.</summary>
    [Fact]
    public void GuardRuleSeparatesKernelsFromLaunchers()
    {
        static MethodInfo M(string name) => typeof(ElementwiseOp).GetMethod(name)!;
        Assert.True(KernelCatalog.LooksLikeKernel(M(nameof(ElementwiseOp.ScaleKernel))));
        Assert.True(KernelCatalog.LooksLikeKernel(typeof(GuardSamples).GetMethod(nameof(GuardSamples.IndexFirst))!));
        Assert.True(KernelCatalog.LooksLikeKernel(typeof(GuardSamples).GetMethod(nameof(GuardSamples.GroupedKernel))!));
        Assert.False(KernelCatalog.LooksLikeKernel(M(nameof(ElementwiseOp.LaunchScale))));
        Assert.False(KernelCatalog.LooksLikeKernel(M(nameof(ElementwiseOp.HostScale))));
    }
}

/// <summary>Methods the guard rule must flag (test-only; not in GpuNet.Kernels, so not compiled).</summary>
public static class GuardSamples
{
    /// <summary>Index first: a kernel whatever its name.</summary>
    public static void IndexFirst(Index2D i, ArrayView<float> x) => x[i.X] = i.Y;

    /// <summary>No index, void, *Kernel, takes a view: an explicitly grouped kernel.</summary>
    public static void GroupedKernel(ArrayView<float> x) => x[Grid.GlobalIndex.X] = 0;

    /// <summary>A generic kernel with no interface constraint: it would match every struct, so it gets no instantiation.</summary>
    public static void Unconstrained<T>(Index1D i, ArrayView<float> x) where T : struct => x[i] = 0;

    /// <summary>A generic kernel constrained to an interface no struct of GpuNet.Kernels implements.</summary>
    public static void Unsatisfiable<T>(Index1D i, ArrayView<float> x) where T : struct, IOutsideOp => x[i] = 0;

    /// <summary>An op interface that lives outside GpuNet.Kernels.</summary>
    public interface IOutsideOp;
}

/// <summary>The PTX compiler shared by a test class.</summary>
public sealed class PtxCompilerFixture : PtxCompiler;

/// <summary>
/// Compiles every kernel to PTX with ILGPU and assembles it with NVIDIA's ptxas for sm_80 (A100) and sm_90 (H100):
/// invalid PTX, ptxas warnings, register spills and any local-memory instruction (LDL/STL in cuobjdump's SASS) fail, so
/// the README's test command catches what <c>Bench sass</c> reports. Prints registers, shared memory and spills per kernel.
/// </summary>
public sealed class PtxCompileTests(PtxCompilerFixture fixture) : IClassFixture<PtxCompilerFixture>
{
    /// <summary>The architectures ptxas assembles each kernel for.</summary>
    public static readonly string[] Architectures = ["sm_80", "sm_90"];

    private static readonly Regex UsedRegex = new(@"Used (\d+) registers(?:, (\d+) bytes smem)?", RegexOptions.Compiled);
    private static readonly Regex SpillRegex = new(@"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", RegexOptions.Compiled);
    private static readonly Regex LineRegex = new(@"line (\d+)", RegexOptions.Compiled);

    /// <summary>The table's header.</summary>
    public const string Header = "kernel                                   arch   regs  smem(B)  stack(B)  spill st/ld(B)  ilgpu+ptxas(ms)";

    /// <summary>ILGPU generates PTX for the kernel; ptxas assembles it for every architecture without spills or warnings.</summary>
    [Theory]
    [MemberData(nameof(KernelCases.Names), MemberType = typeof(KernelCases))]
    public void AssemblesWithPtxas(string kernel)
    {
        string ptxas = Toolchain.Require(NativeTools.Ptxas());
        string cuobjdump = Toolchain.Require(NativeTools.Cuobjdump());
        var method = KernelCatalog.Kernels[kernel];
        var sw = Stopwatch.StartNew();
        string? ptx = fixture.TryCompilePtx(kernel, method, out var error);
        Assert.True(ptx is not null, error);
        double ilgpuMs = sw.Elapsed.TotalMilliseconds;
        Assert.Contains(".target sm_80", ptx, StringComparison.Ordinal);
        Assert.Contains(".entry", ptx, StringComparison.Ordinal);
        string file = fixture.WriteScratch(KernelCompiler.FileName(kernel) + ".ptx", ptx);

        var rows = new List<string>();
        var problems = new List<string>();
        foreach (var arch in Architectures)
        {
            sw.Restart();
            string cubin = Path.ChangeExtension(file, arch + ".cubin");
            var (exit, output) = NativeTools.Run(ptxas, $"-arch={arch}", "-v", file, "-o", cubin);
            double ptxasMs = sw.Elapsed.TotalMilliseconds;
            if (exit != 0)
            {
                problems.Add($"ptxas -arch={arch} failed (exit {exit}):\n{output}{QuoteLines(ptx, output)}{ExternHint(output)}");
                continue;
            }
            var used = UsedRegex.Matches(output);
            var spills = SpillRegex.Matches(output);
            if (used.Count == 0 || spills.Count == 0)
            {
                problems.Add($"ptxas -arch={arch}: could not read registers/spills from its -v output:\n{output}");
                continue;
            }
            int regs = used.Max(m => Int(m.Groups[1]));
            int smem = used.Max(m => m.Groups[2].Success ? Int(m.Groups[2]) : 0);
            int stack = spills.Max(m => Int(m.Groups[1]));
            int stores = spills.Sum(m => Int(m.Groups[2])), loads = spills.Sum(m => Int(m.Groups[3]));
            rows.Add(string.Create(CultureInfo.InvariantCulture,
                $"{kernel,-40} {arch,-6} {regs,4}  {smem,7}  {stack,8}  {stores,6}/{loads,-7}  {ilgpuMs,6:F0}+{ptxasMs,-5:F0}"));
            if (stores != 0 || loads != 0) problems.Add($"{kernel} spills on {arch}: {stores} bytes stored, {loads} bytes loaded");
            var (dumpExit, listing) = NativeTools.Run(cuobjdump, "-sass", cubin);
            if (dumpExit != 0) problems.Add($"cuobjdump -sass on the {arch} cubin failed (exit {dumpExit}):\n{listing}");
            else if (SassParser.Parse(listing).Sum(f => f.CountOpcodes("LDL", "STL")) is int local and > 0)
                problems.Add($"{kernel} uses local memory on {arch}: {local} LDL/STL instructions ({stack} bytes stack frame); Bench sass --kernel '{kernel}' --dump DIR shows the SASS");
            var warnings = output.Split('\n').Where(l => l.Contains("warning", StringComparison.OrdinalIgnoreCase)).ToList();
            if (warnings.Count > 0) problems.Add($"ptxas -arch={arch} warned:\n{string.Join("\n", warnings)}");
        }

        string table = Header + "\n" + string.Join("\n", rows);
        TestContext.Current.TestOutputHelper?.WriteLine(table);
        TestContext.Current.SendDiagnosticMessage(table);
        Assert.True(problems.Count == 0, $"{string.Join("\n", problems)}\n\n{table}");
    }

    /// <summary>Explains an unresolved call: a .NET method ILGPU has no GPU intrinsic for was emitted as an external function.</summary>
    internal static string ExternHint(string output)
    {
        var m = Regex.Match(output, @"(?:Unresolved extern function|implicit declaration of function) '([^']+)'");
        return m.Success
            ? $"\nhint: '{m.Groups[1].Value}' has no GPU implementation in ILGPU 1.5.3, so it was emitted as a call to an external function " +
              "(e.g. MathF.FusedMultiplyAdd: write a * b + c, which ptxas and OpenCL compilers contract to an FMA)"
            : "";
    }

    private static int Int(System.Text.RegularExpressions.Group g) => int.Parse(g.Value, CultureInfo.InvariantCulture);

    /// <summary>The PTX lines ptxas's errors point at (<c>line N</c>), to make a failure readable without the file.</summary>
    private static string QuoteLines(string source, string output)
    {
        var lines = source.Split('\n');
        var quoted = new StringBuilder();
        foreach (var n in LineRegex.Matches(output).Select(m => Int(m.Groups[1])).Distinct().Take(10))
            if (n >= 1 && n <= lines.Length) quoted.Append(CultureInfo.InvariantCulture, $"\n  line {n}: {lines[n - 1].Trim()}");
        return quoted.Length == 0 ? "" : "\nPTX lines:" + quoted;
    }
}

/// <summary>OpenCL capability sets of real devices the OpenCL C of every kernel must compile for.</summary>
/// <param name="Name">Test-case label.</param>
/// <param name="Vendor">Vendor (changes how ILGPU emits warp shuffles).</param>
/// <param name="Float16">cl_khr_fp16.</param>
/// <param name="Float64">cl_khr_fp64.</param>
/// <param name="Int64Atomics">cl_khr_int64_base_atomics / extended_atomics.</param>
/// <param name="SubGroups">cl_khr_subgroups (Intel: cl_intel_subgroups).</param>
public sealed record CLConfig(string Name, CLDeviceVendor Vendor, bool Float16, bool Float64, bool Int64Atomics, bool SubGroups)
{
    /// <summary>
    /// Full-featured GPUs (fp16, fp64, 64-bit atomics, subgroups) of two vendors (ILGPU emits warp shuffles only for
    /// Intel) and the OpenCL 2.0 baseline ILGPU requires (generic address space, fp64, no optional extension).
    /// Kernels needing fp16 or subgroups fail the baseline: such a kernel needs a fallback path on OpenCL, or this
    /// list changes on purpose.
    /// </summary>
    public static readonly CLConfig[] All =
    [
        new("nvidia-full", CLDeviceVendor.Nvidia, Float16: true, Float64: true, Int64Atomics: true, SubGroups: true),
        new("intel-full", CLDeviceVendor.Intel, Float16: true, Float64: true, Int64Atomics: true, SubGroups: true),
        new("baseline-cl20", CLDeviceVendor.Other, Float16: false, Float64: true, Int64Atomics: false, SubGroups: false),
    ];

    /// <summary>
    /// clang's header arguments for <paramref name="source"/>. clang-14's default header
    /// (<c>-finclude-default-header</c>) lacks the cl_intel_subgroups built-ins (<c>intel_sub_group_shuffle*</c>) that
    /// ILGPU emits for Intel, so sources using them include the full <c>opencl-c.h</c> (0.1-0.7 s to parse here).
    /// </summary>
    public static string[] ClangHeaderArgs(string source) => source.Contains("intel_sub_group", StringComparison.Ordinal)
        ? ["-include", "opencl-c.h"]
        : ["-Xclang", "-finclude-default-header"];
}

/// <summary>The OpenCL backend, one per <see cref="CLConfig"/>, all OpenCL C 2.0.</summary>
public sealed class CLCompilerFixture() : KernelCompiler("gpunet-cl-")
{
    /// <inheritdoc/>
    protected override Backend CreateBackend(Context context, string config)
    {
        var c = CLConfig.All.Single(x => x.Name == config);
        var caps = new CLCapabilityContext(c.Float16, c.Float64, genericAddressSpace: true, c.Int64Atomics, c.SubGroups);
        return new CLBackend(context, caps, c.Vendor, CLCVersion.CL20);
    }
}

/// <summary>
/// Compiles every kernel through ILGPU's OpenCL backend (no device needed) for each <see cref="CLConfig"/> and
/// checks the OpenCL C with clang as an OpenCL 2.0 compiler for SPIR: any error or warning fails.
/// </summary>
public sealed class OpenCLCompileTests(CLCompilerFixture fixture) : IClassFixture<CLCompilerFixture>
{
    /// <summary>ILGPU emits OpenCL C for the kernel that clang compiles without diagnostics, for every capability set.</summary>
    [Theory]
    [MemberData(nameof(KernelCases.Names), MemberType = typeof(KernelCases))]
    public void CompilesWithClang(string kernel)
    {
        string clang = Toolchain.Require(NativeTools.Clang());
        var method = KernelCatalog.Kernels[kernel];
        var problems = new List<string>();
        var report = new List<string>();
        foreach (var config in CLConfig.All)
        {
            var sw = Stopwatch.StartNew();
            var compiled = (CLCompiledKernel?)fixture.TryCompile(kernel, method, config.Name, out var error);
            if (compiled is null) { problems.Add(error!); continue; }
            double ilgpuMs = sw.Elapsed.TotalMilliseconds;
            string file = fixture.WriteScratch($"{KernelCompiler.FileName(kernel)}.{config.Name}.cl", compiled.Source);
            sw.Restart();
            var (exit, output) = NativeTools.Run(clang, ["-cl-std=CL2.0", .. CLConfig.ClangHeaderArgs(compiled.Source),
                "-target", "spir64", "-c", "-emit-llvm", file, "-o", Path.ChangeExtension(file, ".bc")]);
            double clangMs = sw.Elapsed.TotalMilliseconds;
            report.Add(string.Create(CultureInfo.InvariantCulture,
                $"{kernel} [{config.Name}]: {compiled.Source.Length} chars of OpenCL C, ilgpu {ilgpuMs:F0} ms, clang {clangMs:F0} ms"));
            if (exit != 0 || output.Contains("warning", StringComparison.OrdinalIgnoreCase))
                problems.Add($"clang on {kernel} [{config.Name}] (exit {exit}):\n{output}{PtxCompileTests.ExternHint(output)}");
        }
        TestContext.Current.TestOutputHelper?.WriteLine(string.Join("\n", report));
        Assert.True(problems.Count == 0, string.Join("\n\n", problems));
    }
}
