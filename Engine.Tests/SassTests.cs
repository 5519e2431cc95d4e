using System.Text.Json;
using GpuNet.Bench;
using GpuNet.Compilation;

namespace GpuNet.Tests;

/// <summary>
/// The SASS analysis of <c>Bench sass</c>: the cuobjdump parser and loop finder on a captured listing and on a
/// hand-written one, ptxas -v parsing, the occupancy model against hand-computed cases, and the command end to end
/// (skipped without ptxas and cuobjdump, failing under CI=true).
/// </summary>
[Collection(nameof(ConsoleCollection))]
public sealed class SassTests
{
    /// <summary>
    /// <c>cuobjdump -sass</c> (CUDA 11.8) of <c>MseLossOp.PartialKernel</c> for sm_90: a grid-stride loop from 0x130 to
    /// the guarded backward branch at 0x240 holding one FFMA, and the trailing <c>BRA 0x280</c> to itself.
    /// </summary>
    internal const string MsePartialSm90 = """

	code for sm_90
		Function : Kernel_PartialKernel
	.headerflags    @"EF_CUDA_SM90 EF_CUDA_PTX_SM(EF_CUDA_SM90)"
        /*0000*/                   LDC R1, c[0x0][0x28] ;                      /* 0x00000a00ff017b82 */
                                                                               /* 0x000e240000000800 */
        /*0010*/                   S2UR UR4, SR_CTAID.X ;                      /* 0x00000000000479c3 */
                                                                               /* 0x000e700000002500 */
        /*0020*/                   LDC R5, c[0x0][RZ] ;                        /* 0x00000000ff057b82 */
                                                                               /* 0x000e620000000800 */
        /*0030*/                   S2R R0, SR_TID.X ;                          /* 0x0000000000007919 */
                                                                               /* 0x000e640000002100 */
        /*0040*/                   IMAD R5, R5, UR4, R0 ;                      /* 0x0000000405057c24 */
                                                                               /* 0x002fe2000f8e0200 */
        /*0050*/                   ULDC UR4, c[0x0][0x210] ;                   /* 0x0000840000047ab9 */
                                                                               /* 0x000fc80000000800 */
        /*0060*/                   ISETP.GE.AND P0, PT, R5, UR4, PT ;          /* 0x0000000405007c0c */
                                                                               /* 0x000fda000bf06270 */
        /*0070*/               @P0 EXIT ;                                      /* 0x000000000000094d */
                                                                               /* 0x000fea0003800000 */
        /*0080*/                   LDC.64 R2, c[0x0][0x248] ;                  /* 0x00009200ff027b82 */
                                                                               /* 0x000e620000000a00 */
        /*0090*/                   ULDC UR4, c[0x0][0x258] ;                   /* 0x0000960000047ab9 */
                                                                               /* 0x000fe20000000800 */
        /*00a0*/                   BSSY B0, 0x260 ;                            /* 0x000001b000007945 */
                                                                               /* 0x000fe20003800000 */
        /*00b0*/                   ISETP.GE.AND P0, PT, R5.reuse, UR4, PT ;    /* 0x0000000405007c0c */
                                                                               /* 0x040fe2000bf06270 */
        /*00c0*/                   ULDC.64 UR4, c[0x0][0x208] ;                /* 0x0000820000047ab9 */
                                                                               /* 0x000fe20000000a00 */
        /*00d0*/                   HFMA2.MMA R13, -RZ, RZ, 0, 0 ;              /* 0x00000000ff0d7435 */
                                                                               /* 0x000fe200000001ff */
        /*00e0*/                   IMAD.WIDE.U32 R2, R5, 0x4, R2 ;             /* 0x0000000405027825 */
                                                                               /* 0x002fd400078e0002 */
        /*00f0*/               @P0 BRA 0x250 ;                                 /* 0x0000000000540947 */
                                                                               /* 0x000fea0003800000 */
        /*0100*/                   ULDC UR6, c[0x0][0x264] ;                   /* 0x0000990000067ab9 */
                                                                               /* 0x000fe20000000800 */
        /*0110*/                   MOV R11, R5 ;                               /* 0x00000005000b7202 */
                                                                               /* 0x000fe40000000f00 */
        /*0120*/                   ISETP.NE.AND P0, PT, RZ, UR6, PT ;          /* 0x00000006ff007c0c */
                                                                               /* 0x000fda000bf05270 */
        /*0130*/                   LDC.64 R4, c[0x0][0x218] ;                  /* 0x00008600ff047b82 */
                                                                               /* 0x002e620000000a00 */
        /*0140*/                   ULDC UR6, c[0x0][0x25c] ;                   /* 0x0000970000067ab9 */
                                                                               /* 0x000fce0000000800 */
        /*0150*/                   LDC.64 R6, c[0x0][0x228] ;                  /* 0x00008a00ff067b82 */
                                                                               /* 0x000eb00000000a00 */
        /*0160*/               @P0 LDC.64 R8, c[0x0][0x238] ;                  /* 0x00008e00ff080b82 */
                                                                               /* 0x000ee20000000a00 */
        /*0170*/                   IMAD.WIDE.U32 R4, R11, 0x4, R4 ;            /* 0x000000040b047825 */
                                                                               /* 0x002fce00078e0004 */
        /*0180*/               @P0 LDC R15, c[0x0][0x260] ;                    /* 0x00009800ff0f0b82 */
                                                                               /* 0x000e620000000800 */
        /*0190*/                   LDG.E R4, [R4.64] ;                         /* 0x0000000404047981 */
                                                                               /* 0x000f22000c1e1900 */
        /*01a0*/                   IMAD.WIDE.U32 R6, R11, 0x4, R6 ;            /* 0x000000040b067825 */
                                                                               /* 0x004fcc00078e0006 */
        /*01b0*/                   LDG.E R7, [R6.64] ;                         /* 0x0000000406077981 */
                                                                               /* 0x000f22000c1e1900 */
        /*01c0*/               @P0 IMAD.WIDE.U32 R8, R11.reuse, 0x4, R8 ;      /* 0x000000040b080825 */
                                                                               /* 0x048fe200078e0008 */
        /*01d0*/                   IADD3 R11, R11, UR6, RZ ;                   /* 0x000000060b0b7c10 */
                                                                               /* 0x000fe2000fffe0ff */
        /*01e0*/                   ULDC UR6, c[0x0][0x258] ;                   /* 0x0000960000067ab9 */
                                                                               /* 0x000fc60000000800 */
        /*01f0*/                   ISETP.GE.AND P1, PT, R11, UR6, PT ;         /* 0x000000060b007c0c */
                                                                               /* 0x000fe2000bf26270 */
        /*0200*/                   FADD R0, R4, -R7 ;                          /* 0x8000000704007221 */
                                                                               /* 0x010fc80000000000 */
        /*0210*/               @P0 FMUL R15, R0, R15 ;                         /* 0x0000000f000f0220 */
                                                                               /* 0x002fca0000400000 */
        /*0220*/               @P0 STG.E [R8.64], R15 ;                        /* 0x0000000f08000986 */
                                                                               /* 0x0003e2000c101904 */
        /*0230*/                   FFMA R13, R0, R0, R13 ;                     /* 0x00000000000d7223 */
                                                                               /* 0x000fe4000000000d */
        /*0240*/              @!P1 BRA 0x130 ;                                 /* 0xfffffffc00b89947 */
                                                                               /* 0x000fea000383ffff */
        /*0250*/                   BSYNC B0 ;                                  /* 0x0000000000007941 */
                                                                               /* 0x000fea0003800000 */
        /*0260*/                   STG.E [R2.64], R13 ;                        /* 0x0000000d02007986 */
                                                                               /* 0x000fe2000c101904 */
        /*0270*/                   EXIT ;                                      /* 0x000000000000794d */
                                                                               /* 0x000fea0003800000 */
        /*0280*/                   BRA 0x280;                                  /* 0xfffffffc00fc7947 */
                                                                               /* 0x000fc0000383ffff */
        /*0290*/                   NOP;                                        /* 0x0000000000007918 */
                                                                               /* 0x000fc00000000000 */
        /*02a0*/                   NOP;                                        /* 0x0000000000007918 */
                                                                               /* 0x000fc00000000000 */
        /*02b0*/                   NOP;                                        /* 0x0000000000007918 */
                                                                               /* 0x000fc00000000000 */
        /*02c0*/                   NOP;                                        /* 0x0000000000007918 */
                                                                               /* 0x000fc00000000000 */
        /*02d0*/                   NOP;                                        /* 0x0000000000007918 */
                                                                               /* 0x000fc00000000000 */
        /*02e0*/                   NOP;                                        /* 0x0000000000007918 */
                                                                               /* 0x000fc00000000000 */
        /*02f0*/                   NOP;                                        /* 0x0000000000007918 */
                                                                               /* 0x000fc00000000000 */
        /*0300*/                   NOP;                                        /* 0x0000000000007918 */
                                                                               /* 0x000fc00000000000 */
        /*0310*/                   NOP;                                        /* 0x0000000000007918 */
                                                                               /* 0x000fc00000000000 */
        /*0320*/                   NOP;                                        /* 0x0000000000007918 */
                                                                               /* 0x000fc00000000000 */
        /*0330*/                   NOP;                                        /* 0x0000000000007918 */
                                                                               /* 0x000fc00000000000 */
        /*0340*/                   NOP;                                        /* 0x0000000000007918 */
                                                                               /* 0x000fc00000000000 */
        /*0350*/                   NOP;                                        /* 0x0000000000007918 */
                                                                               /* 0x000fc00000000000 */
        /*0360*/                   NOP;                                        /* 0x0000000000007918 */
                                                                               /* 0x000fc00000000000 */
        /*0370*/                   NOP;                                        /* 0x0000000000007918 */
                                                                               /* 0x000fc00000000000 */
		..........


""";

    /// <summary>ptxas 11.8 -v for the GEMM kernel on sm_90.</summary>
    internal const string PtxasGemmSm90 = """
ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function 'Kernel_Kernel' for 'sm_90'
ptxas info    : Function properties for Kernel_Kernel
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 48 registers, 16640 bytes smem
""";

    /// <summary>
    /// nvdisasm-style listing (labels, branch targets as labels): an outer loop holding 1 FFMA around an inner loop
    /// holding 4 FFMA and a second inner loop holding 2 HMMA; 128-bit global and shared traffic; a local store and load.
    /// </summary>
    private const string Handwritten = """
        code for sm_90
                Function : Kernel_Hand
        /*0000*/                   LDG.E.128 R4, desc[UR4][R2.64] ;
        /*0010*/                   STS.128 [R0], R4 ;
        /*0020*/                   STL [R1], R4 ;
        .L_x_0:
        /*0030*/                   FFMA R8, R4, R5, R8 ;
        .L_x_1:
        /*0040*/                   LDS.128 R12, [R0+0x10] ;
        /*0050*/                   FFMA R8, R12, R13, R8 ;
        /*0060*/                   FFMA R9, R12, R14, R9 ;
        /*0070*/                   FFMA.FTZ R10, R12, R15, R10 ;
        /*0080*/                   FFMA R11, R13, R15, R11 ;
        /*0090*/               @P0 BRA `(.L_x_1) ;
        .L_x_2:
        /*00a0*/                   HMMA.1688.F32.TF32 R16, R20, R22, R16 ;
        /*00b0*/                   HMMA.1688.F32.TF32 R16, R21, R23, R16 ;
        /*00c0*/                   IADD3 R2, R2, 0x1, RZ ;
        /*00d0*/              @!P1 BRA `(.L_x_2) ;
        /*00e0*/                   LDL R4, [R1] ;
        /*00f0*/              @!P2 BRA `(.L_x_0) ;
        /*0100*/                   LDG.E.128.CONSTANT R4, desc[UR4][R2.64+0x10] ;
        /*0110*/                   LDS.64 R6, [R0] ;
        /*0120*/                   EXIT ;
        .L_x_3:
        /*0130*/                   BRA `(.L_x_3);
        """;

    [Fact]
    public void ParsesACapturedCuobjdumpListing()
    {
        var f = Assert.Single(SassParser.Parse(MsePartialSm90));
        Assert.Equal("Kernel_PartialKernel", f.Name);
        Assert.Equal(56, f.Instructions.Count);
        Assert.Equal(0, f.Instructions[0].Address);
        Assert.Equal("LDC", f.Instructions[0].Opcode);
        Assert.Equal("R1, c[0x0][0x28]", f.Instructions[0].Operands);
        var branch = f.Instructions.Single(i => i.Address == 0x240);
        Assert.Equal(("@!P1", "BRA"), (branch.Predicate, branch.Opcode));
        Assert.Equal(1, f.CountOpcodes("FFMA"));
        Assert.Equal(0, f.CountOpcodes("LDL", "STL"));

        // two backward branches: the grid-stride loop and the trap loop after EXIT; the forward @P0 BRA 0x250 is none
        var loops = f.Loops();
        Assert.Equal(2, loops.Count);
        var main = Assert.IsType<SassLoop>(f.MainFmaLoop());
        Assert.Equal((0x130, 0x240), (f.Instructions[main.Start].Address, f.Instructions[main.End].Address));
        Assert.Equal(18, main.Instructions);
        Assert.Equal(1, main.Fma);
        Assert.Equal(1.0 / 18, main.FmaShare, 12);
        Assert.Null(f.EnclosingLoop(main));
    }

    [Fact]
    public void MainLoopIsTheInnermostFmaLoopWithTheMostFmas()
    {
        var f = Assert.Single(SassParser.Parse(Handwritten));
        Assert.Equal(20, f.Instructions.Count);
        Assert.Equal(4, f.Loops().Count);   // inner FFMA loop, HMMA loop, outer loop, trap loop
        var main = Assert.IsType<SassLoop>(f.MainFmaLoop());
        Assert.Equal((0x40, 0x90), (f.Instructions[main.Start].Address, f.Instructions[main.End].Address));
        Assert.Equal(4, main.Fma);
        Assert.Equal(4.0 / 6, main.FmaShare, 12);
        var outer = Assert.IsType<SassLoop>(f.EnclosingLoop(main));
        Assert.Equal((0x30, 0xf0, 7, 13), (f.Instructions[outer.Start].Address, f.Instructions[outer.End].Address, outer.Fma, outer.Instructions));
        Assert.Equal(2, f.CountWithModifier("LDG", "128"));
        Assert.Equal(1, f.CountWithModifier("LDS", "128"));   // LDS.64 is not a 128-bit load
        Assert.Equal(1, f.CountWithModifier("STS", "128"));
        Assert.Equal(2, f.CountOpcodes("LDL", "STL"));
        Assert.Equal(2, f.CountOpcodes("HMMA"));
    }

    [Fact]
    public void AListingWithoutFmaLoopsHasNoMainLoop()
    {
        var f = Assert.Single(SassParser.Parse("""
            Function : Kernel_Copy
            /*0000*/                   LDG.E R2, desc[UR4][R2.64] ;
            /*0010*/                   FFMA R2, R2, R2, R3 ;
            /*0020*/                   EXIT ;
            /*0030*/                   BRA 0x30;
            """));
        Assert.Single(f.Loops());
        Assert.Null(f.MainFmaLoop());
    }

    [Fact]
    public void AFunctionWithoutInstructionsIsAFormatError()
    {
        var e = Assert.Throws<FormatException>(() => SassParser.Parse("Function : Kernel_Empty\n.headerflags @\"EF_CUDA_SM90\"\n"));
        Assert.Contains("Kernel_Empty", e.Message);
    }

    [Fact]
    public void ParsesPtxasResources()
    {
        Assert.Equal(new PtxasResources(48, 16640, 0, 0), SassParser.ParsePtxas(PtxasGemmSm90));
        var spilling = SassParser.ParsePtxas("""
            ptxas info    : Function properties for Kernel_Kernel
                40 bytes stack frame, 24 bytes spill stores, 16 bytes spill loads
            ptxas info    : Used 255 registers
            """);
        Assert.Equal(new PtxasResources(255, 0, 40, 40), spilling);
        Assert.Throws<FormatException>(() => SassParser.ParsePtxas("ptxas info    : 0 bytes gmem"));
    }

    /// <summary>Hand-computed: warps per SM from registers (per-warp units of 256), threads, shared memory + 1 KB per block, 32 blocks.</summary>
    [Theory]
    [InlineData("sm_90", 48, 16640, 256, 0.625)]   // 1536 regs/warp -> 42 warps -> 5 blocks of 8 warps
    [InlineData("sm_90", 58, 16640, 256, 0.5)]     // 1856 -> 2048 regs/warp -> 32 warps -> 4 blocks
    [InlineData("sm_90", 16, 0, 1024, 1.0)]        // 2 blocks of 32 warps by threads
    [InlineData("sm_80", 32, 49152, 256, 0.375)]   // 164 KB / 49 KB -> 3 blocks
    [InlineData("sm_90", 32, 49152, 256, 0.5)]     // 228 KB / 49 KB -> 4 blocks
    [InlineData("sm_90", 16, 0, 32, 0.5)]          // 32 blocks of 1 warp
    [InlineData("sm_90", 255, 0, 1024, 0.0)]       // 8192 regs/warp -> 8 warps < one 32-warp block
    public void OccupancyMatchesHandComputedCases(string arch, int registers, int shared, int threads, double expected)
        => Assert.Equal(expected, ArchLimits.Find(arch)!.Occupancy(registers, shared, threads), 12);

    [Fact]
    public void AutoGroupSizeIsTheLargestWithTheBestOccupancy()
    {
        var sm90 = ArchLimits.Find("sm_90")!;
        Assert.Equal(1024, sm90.AutoGroupSize(16, 0));
        // 64 registers: 32 warps fit, so a block of 1024 threads (32 warps) gives 0.5 like 512; 1024 is the largest
        Assert.Equal(1024, sm90.AutoGroupSize(64, 0));
        // 40 registers: 1280 regs/warp -> 51 warps; 3 blocks of 17 warps (544 threads) hold all 51
        Assert.Equal(544, sm90.AutoGroupSize(40, 0));
        Assert.Equal(51.0 / 64, sm90.Occupancy(40, 0, 544), 12);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => sm90.Occupancy(32, 0, 0));
        Assert.Equal("threads", e.ParamName);
    }

    [Fact]
    public void KernelGlobSelectsAndAnEmptyMatchIsAUsageError()
    {
        Assert.All(SassCommand.Select("GemmOp.Kernel<*>"), n => Assert.StartsWith("GemmOp.Kernel<", n));
        Assert.Equal(["ElementwiseOp.AxpyKernel"], SassCommand.Select("ElementwiseOp.Axpy?ernel"));
        var (code, _, err) = Run("sass", "--kernel", "NoSuchOp.*");
        Assert.Equal(2, code);
        Assert.Contains("'NoSuchOp.*' matches none of the", err);
        (code, _, err) = Run("sass", "--arch", "sm_70");
        Assert.Equal(2, code);
        Assert.Contains("sm_70", err);
    }

    /// <summary>
    /// End to end on the GEMM with ReLU and two elementwise kernels: the JSON has every key, the GEMM has an FMA main
    /// loop, no FMA loop means a null share, and the markdown page carries the command that regenerates it.
    /// </summary>
    [Fact]
    public void SassCommandWritesJsonAndMarkdown()
    {
        Toolchain.Require(NativeTools.Ptxas());
        Toolchain.Require(NativeTools.Cuobjdump());
        using var dir = new TempDir();
        var (code, output, err) = Run("sass", "--arch", "sm_80", "--kernel", "GemmOp.Kernel<Relu*>", "--json", dir.File("s.json"), "--markdown", dir.File("s.md"));
        Assert.True(code == 0, err);
        Assert.Contains("GemmOp.Kernel<ReluActivation>", output);
        using var json = JsonDocument.Parse(File.ReadAllText(dir.File("s.json")));
        Assert.Equal("sm_80", json.RootElement.GetProperty("arch").GetString());
        var kernels = json.RootElement.GetProperty("kernels").EnumerateArray().ToList();
        Assert.Equal(["GemmOp.Kernel<ReluActivation>"], kernels.Select(k => k.GetProperty("name").GetString()));
        var gemm = kernels[0];
        foreach (var key in new[] { "name", "registers", "spill_bytes", "local_ops", "shared_bytes", "occupancy", "vector_loads", "main_loop_fma_share" })
            Assert.True(gemm.TryGetProperty(key, out _), $"missing key {key}");
        Assert.InRange(gemm.GetProperty("registers").GetInt32(), 1, 255);
        Assert.True(gemm.GetProperty("shared_bytes").GetInt32() > 0);
        Assert.Equal(0, gemm.GetProperty("spill_bytes").GetInt32());
        Assert.InRange(gemm.GetProperty("occupancy").GetDouble(), 1.0 / 64, 1.0);
        Assert.InRange(gemm.GetProperty("main_loop_fma_share").GetDouble(), 0.05, 1.0);
        Assert.True(gemm.GetProperty("enclosing_loop_instructions").GetInt32() > gemm.GetProperty("main_loop_instructions").GetInt32());
        string md = File.ReadAllText(dir.File("s.md"));
        Assert.Contains("sass --arch sm_80 --kernel 'GemmOp.Kernel<Relu*>' --markdown docs/kernels/sass.md", md);
        Assert.Contains("| `GemmOp.Kernel<ReluActivation>` |", md);

        (code, _, err) = Run("sass", "--kernel", "ElementwiseOp.CopyKernel", "--json", dir.File("c.json"));
        Assert.True(code == 0, err);
        using var copy = JsonDocument.Parse(File.ReadAllText(dir.File("c.json")));
        var c = Assert.Single(copy.RootElement.GetProperty("kernels").EnumerateArray());
        Assert.Equal(JsonValueKind.Null, c.GetProperty("main_loop_fma_share").ValueKind);
        Assert.Equal("sm_90", copy.RootElement.GetProperty("arch").GetString());
    }

    private static (int Code, string Out, string Err) Run(params string[] args) => BenchCli.Run(args);
}
