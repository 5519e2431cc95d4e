using System.Globalization;
using System.Text.RegularExpressions;

namespace GpuNet.Bench;

/// <summary>One SASS instruction as <c>cuobjdump -sass</c> prints it: <c>/*0120*/ @!P0 BRA `(.L_x_3) ;</c>.</summary>
/// <param name="Address">Byte offset in the function (the <c>/*0120*/</c> column).</param>
/// <param name="Predicate">The guard (<c>@P0</c>, <c>@!UP1</c>), or null.</param>
/// <param name="Opcode">The opcode with its modifiers, e.g. <c>LDG.E.128.CONSTANT</c>.</param>
/// <param name="Operands">Everything after the opcode up to the ';'.</param>
internal sealed record SassInstruction(int Address, string? Predicate, string Opcode, string Operands)
{
    /// <summary>The opcode without modifiers: <c>LDG</c> for <c>LDG.E.128</c>.</summary>
    public string Base => Opcode.Split('.')[0];

    /// <summary>True when one of the opcode's modifiers is <paramref name="modifier"/> (e.g. <c>128</c>).</summary>
    public bool Has(string modifier) => Opcode.Split('.').Skip(1).Contains(modifier, StringComparer.Ordinal);
}

/// <summary>A backward branch's loop: instructions <see cref="Start"/>..<see cref="End"/> (indices, inclusive).</summary>
/// <param name="Start">Index of the first instruction after the branch target's label.</param>
/// <param name="End">Index of the backward branch.</param>
/// <param name="Fma">FFMA and HMMA instructions in the body.</param>
internal readonly record struct SassLoop(int Start, int End, int Fma)
{
    /// <summary>Instructions in the body, the branch included.</summary>
    public int Instructions => End - Start + 1;

    /// <summary>FMA instructions over all instructions of the body.</summary>
    public double FmaShare => (double)Fma / Instructions;

    /// <summary>True when <paramref name="other"/> lies within this loop and is not this loop.</summary>
    public bool Contains(SassLoop other) => other != this && Start <= other.Start && other.End <= End;
}

/// <summary>One function of a cuobjdump listing: its instructions in address order and its labels.</summary>
/// <param name="Name">The (mangled) function name of the <c>Function :</c> line.</param>
/// <param name="Instructions">Instructions in address order.</param>
/// <param name="Labels">Label name (e.g. <c>.L_x_3</c>) -> index of the first instruction after it.</param>
internal sealed record SassFunction(string Name, IReadOnlyList<SassInstruction> Instructions, IReadOnlyDictionary<string, int> Labels)
{
    /// <summary>Instructions whose base opcode is one of <paramref name="bases"/>.</summary>
    public int CountOpcodes(params string[] bases) => Instructions.Count(i => bases.Contains(i.Base, StringComparer.Ordinal));

    /// <summary>Instructions with base opcode <paramref name="baseOpcode"/> and the modifier <paramref name="modifier"/>.</summary>
    public int CountWithModifier(string baseOpcode, string modifier) => Instructions.Count(i => i.Base == baseOpcode && i.Has(modifier));

    /// <summary>
    /// Every loop: a <c>BRA</c> (guarded or not) to a label at or before it closes the loop that starts at the label.
    /// </summary>
    public IReadOnlyList<SassLoop> Loops()
    {
        var loops = new List<SassLoop>();
        for (int i = 0; i < Instructions.Count; i++)
        {
            var ins = Instructions[i];
            if (ins.Base != "BRA" || Target(ins.Operands) is not int start || start > i) continue;
            int fma = 0;
            for (int j = start; j <= i; j++) fma += SassParser.IsFma(Instructions[j]) ? 1 : 0;
            loops.Add(new SassLoop(start, i, fma));
        }
        return loops;
    }

    /// <summary>
    /// The smallest loop that contains <paramref name="inner"/> (for a GEMM: the K-tile loop around the inner product,
    /// with its tile loads, barriers and index math), or null when none does. Its counts are static: the inner loop
    /// runs several times per trip of this one.
    /// </summary>
    public SassLoop? EnclosingLoop(SassLoop inner)
        => Loops().Where(l => l.Contains(inner)).Select(l => (SassLoop?)l).MinBy(l => l!.Value.Instructions);

    /// <summary>
    /// The index of the instruction a branch jumps to: its operand is an address (<c>BRA 0x4450</c>, cuobjdump on a
    /// cubin) or a label (<c>BRA `(.L_x_3)</c>, nvdisasm); null when it names neither an instruction nor a label.
    /// </summary>
    public int? Target(string operands)
    {
        if (SassParser.BranchTarget(operands) is { } label) return Labels.TryGetValue(label, out int at) ? at : null;
        if (SassParser.BranchAddress(operands) is not int address) return null;
        for (int i = 0; i < Instructions.Count; i++)
            if (Instructions[i].Address == address) return i;
        return null;
    }

    /// <summary>
    /// The main loop of a GEMM-like kernel: of the innermost loops holding FFMA or HMMA (loops with an FMA that contain
    /// no other loop with an FMA), the one with the most (the earliest on a tie); null when no loop holds an FMA.
    /// </summary>
    public SassLoop? MainFmaLoop()
    {
        var loops = Loops().Where(l => l.Fma > 0).ToList();
        SassLoop? best = null;
        foreach (var l in loops)
        {
            if (loops.Any(l.Contains)) continue;
            if (best is not { } b || l.Fma > b.Fma) best = l;
        }
        return best;
    }
}

/// <summary>
/// Parses <c>cuobjdump -sass</c> output (CUDA 11.8: instruction lines <c>/*addr*/ [@pred] OPCODE operands ;</c>
/// followed by encoding comments; branch targets are addresses <c>0x4450</c>, or labels <c>`(.L_x_N)</c> defined by
/// lines <c>.L_x_N:</c> as nvdisasm prints them) and
/// <c>ptxas -v</c> resource lines.
/// </summary>
internal static partial class SassParser
{
    [GeneratedRegex(@"^\s*/\*([0-9a-fA-F]+)\*/\s+(@!?U?P[0-9T]+\s+)?([A-Z][A-Z0-9_]*(?:\.[A-Za-z0-9_]+)*)\s*([^;]*);")]
    private static partial Regex InstructionRegex();

    [GeneratedRegex(@"^\s*(\.[A-Za-z_$][\w.$]*):\s*$")]
    private static partial Regex LabelRegex();

    [GeneratedRegex(@"^\s*Function\s*:\s*(\S+)")]
    private static partial Regex FunctionRegex();

    [GeneratedRegex(@"`\(([^)]+)\)")]
    private static partial Regex TargetRegex();

    [GeneratedRegex(@"^\s*0x([0-9a-fA-F]+)\s*$")]
    private static partial Regex AddressRegex();

    [GeneratedRegex(@"Used (\d+) registers(?:, (\d+) bytes smem)?")]
    private static partial Regex UsedRegex();

    [GeneratedRegex(@"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")]
    private static partial Regex SpillRegex();

    /// <summary>The functions of a cuobjdump listing, in the order printed.</summary>
    /// <exception cref="FormatException">A function has no instruction the parser recognises.</exception>
    public static IReadOnlyList<SassFunction> Parse(string listing)
    {
        var functions = new List<SassFunction>();
        string? name = null;
        var instructions = new List<SassInstruction>();
        var labels = new Dictionary<string, int>(StringComparer.Ordinal);
        void Flush()
        {
            if (name is null) return;
            if (instructions.Count == 0) throw new FormatException($"cuobjdump listing: function '{name}' has no instruction of the form '/*addr*/ OPCODE operands ;'");
            functions.Add(new SassFunction(name, instructions, labels));
        }
        foreach (var line in listing.Split('\n'))
        {
            if (FunctionRegex().Match(line) is { Success: true } f)
            {
                Flush();
                (name, instructions, labels) = (f.Groups[1].Value, [], new Dictionary<string, int>(StringComparer.Ordinal));
            }
            else if (name is not null && LabelRegex().Match(line) is { Success: true } l) labels[l.Groups[1].Value] = instructions.Count;
            else if (name is not null && InstructionRegex().Match(line) is { Success: true } m)
                instructions.Add(new SassInstruction(int.Parse(m.Groups[1].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture),
                    m.Groups[2].Success ? m.Groups[2].Value.Trim() : null, m.Groups[3].Value, m.Groups[4].Value.Trim()));
        }
        Flush();
        return functions;
    }

    /// <summary>The label a branch's operands name (<c>`(.L_x_3)</c> -> <c>.L_x_3</c>), or null.</summary>
    public static string? BranchTarget(string operands) => TargetRegex().Match(operands) is { Success: true } m ? m.Groups[1].Value : null;

    /// <summary>The address a branch's operands name (<c>0x4450</c>), or null.</summary>
    public static int? BranchAddress(string operands)
        => AddressRegex().Match(operands) is { Success: true } m ? int.Parse(m.Groups[1].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture) : null;

    /// <summary>FFMA (fp32 fused multiply-add, any modifiers) or HMMA (tensor-core matrix multiply-accumulate).</summary>
    public static bool IsFma(SassInstruction i) => i.Base is "FFMA" or "HMMA";

    /// <summary>
    /// Resources from <c>ptxas -v</c>: the most registers and shared memory of any function, and the spill bytes
    /// (stores + loads) summed over functions.
    /// </summary>
    /// <exception cref="FormatException">The output has no <c>Used N registers</c> or no stack-frame line.</exception>
    public static PtxasResources ParsePtxas(string output)
    {
        var used = UsedRegex().Matches(output);
        var spills = SpillRegex().Matches(output);
        if (used.Count == 0 || spills.Count == 0)
            throw new FormatException($"ptxas -v output lacks 'Used N registers' or 'N bytes stack frame, ...' lines:\n{output}");
        static int Int(Group g) => g.Success ? int.Parse(g.Value, CultureInfo.InvariantCulture) : 0;
        return new PtxasResources(used.Max(m => Int(m.Groups[1])), used.Max(m => Int(m.Groups[2])),
            spills.Max(m => Int(m.Groups[1])), spills.Sum(m => Int(m.Groups[2]) + Int(m.Groups[3])));
    }
}

/// <summary>What ptxas reports for one kernel.</summary>
/// <param name="Registers">Registers per thread.</param>
/// <param name="SharedBytes">Static shared memory per group.</param>
/// <param name="StackBytes">Stack frame per thread (local memory).</param>
/// <param name="SpillBytes">Spill stores plus spill loads, in bytes.</param>
internal readonly record struct PtxasResources(int Registers, int SharedBytes, int StackBytes, int SpillBytes);

/// <summary>
/// The per-SM limits of theoretical occupancy (CUDA C++ Programming Guide, "Compute Capabilities", table of technical
/// specifications): 64K 32-bit registers allocated per warp in units of 256, 2048 threads, 32 resident blocks, and the
/// shared memory an SM can give its blocks, of which the CUDA runtime reserves 1 KB per block.
/// </summary>
/// <param name="Arch">ptxas's name for it, e.g. <c>sm_90</c>.</param>
/// <param name="SharedBytesPerSm">Shared memory per SM usable by blocks (sm_80: 164 KB, sm_90: 228 KB).</param>
internal sealed record ArchLimits(string Arch, int SharedBytesPerSm)
{
    public const int RegistersPerSm = 65536, ThreadsPerSm = 2048, BlocksPerSm = 32, RegisterUnit = 256, WarpSize = 32, ReservedSharedPerBlock = 1024;

    public static readonly ArchLimits[] All = [new("sm_80", 164 * 1024), new("sm_90", 228 * 1024)];

    /// <summary>The limits of <paramref name="arch"/>, or null when it is not one of <see cref="All"/>.</summary>
    public static ArchLimits? Find(string arch) => All.FirstOrDefault(a => a.Arch == arch);

    /// <summary>
    /// Resident warps over the SM's 64 warp slots for groups of <paramref name="threads"/> threads each using
    /// <paramref name="registers"/> registers and <paramref name="sharedBytes"/> shared memory: the least of the block
    /// limits from registers, threads, shared memory and the 32-block cap, times the warps per block.
    /// </summary>
    public double Occupancy(int registers, int sharedBytes, int threads)
    {
        if (threads < 1 || threads > 1024) throw new ArgumentOutOfRangeException(nameof(threads), threads, "expected a group size in [1, 1024]");
        int warps = (threads + WarpSize - 1) / WarpSize;
        int regsPerWarp = (Math.Max(registers, 1) * WarpSize + RegisterUnit - 1) / RegisterUnit * RegisterUnit;
        int byRegisters = RegistersPerSm / regsPerWarp / warps;
        int byThreads = ThreadsPerSm / (warps * WarpSize);
        int byShared = sharedBytes == 0 ? BlocksPerSm : SharedBytesPerSm / (sharedBytes + ReservedSharedPerBlock);
        int blocks = Math.Min(Math.Min(byRegisters, byThreads), Math.Min(byShared, BlocksPerSm));
        return (double)blocks * warps / (ThreadsPerSm / WarpSize);
    }

    /// <summary>
    /// The group size ILGPU's auto-grouping picks on CUDA (<c>cuOccupancyMaxPotentialBlockSize</c>): the largest
    /// multiple of 32 up to 1024 with the highest <see cref="Occupancy"/>.
    /// </summary>
    public int AutoGroupSize(int registers, int sharedBytes)
    {
        int best = WarpSize;
        for (int t = WarpSize; t <= 1024; t += WarpSize)
            if (Occupancy(registers, sharedBytes, t) >= Occupancy(registers, sharedBytes, best)) best = t;
        return best;
    }
}
