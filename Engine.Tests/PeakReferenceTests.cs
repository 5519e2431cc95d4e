using System.Text.Json.Nodes;
using GpuNet.Bench;

namespace GpuNet.Tests;

/// <summary>The stable peak MFU is reported against: the nominal formula per CPU, and the per-machine cache of the best probe.</summary>
public sealed class PeakReferenceTests
{
    private const string IceLake = """
        processor	: 0
        vendor_id	: GenuineIntel
        cpu family	: 6
        model		: 106
        model name	: Intel(R) Xeon(R) Processor @ 2.80GHz
        cpu MHz		: 2793.438
        flags		: fpu avx2 avx512f

        processor	: 1
        vendor_id	: GenuineIntel
        model name	: something else
        """;

    private const string Zen5 = """
        processor	: 0
        vendor_id	: AuthenticAMD
        cpu family	: 26
        model		: 2
        model name	: AMD EPYC 9B45 128-Core Processor
        cpu MHz		: 3700.000
        """;

    private const string Zen4 = """
        processor	: 0
        vendor_id	: AuthenticAMD
        cpu family	: 25
        model		: 17
        model name	: AMD EPYC 9R14 96-Core Processor
        cpu MHz		: 2600.000
        """;

    private const string SkylakeSilver = """
        vendor_id	: GenuineIntel
        cpu family	: 6
        model		: 85
        model name	: Intel(R) Xeon(R) Silver 4114 CPU @ 2.20GHz
        """;

    [Fact]
    public void CpuInfoReadsTheFirstProcessorAndPicksTheClock()
    {
        var cpu = CpuInfo.Parse(IceLake, null);
        Assert.Equal(("GenuineIntel", 6, 106, "Intel(R) Xeon(R) Processor @ 2.80GHz"), (cpu.Vendor, cpu.Family, cpu.Model, cpu.ModelName));
        Assert.Equal((2.80, "model name"), cpu.Clock());
        // cpufreq's maximum (kHz) wins over the model name; "cpu MHz" is the last resort.
        Assert.Equal((3.5, "cpufreq cpuinfo_max_freq"), CpuInfo.Parse(IceLake, "3500000\n").Clock());
        Assert.Equal((3.7, "cpu MHz"), CpuInfo.Parse(Zen5, null).Clock());
        Assert.Null(CpuInfo.Parse("vendor_id : Foo\n", null).Clock());
    }

    public static TheoryData<string, string?, int, int, int, double> Nominal => new()
    {
        // cpuinfo, cpufreq max kHz, cores, vector bits, FMA units, GFLOP/s = cores x lanes x units x 2 x GHz
        { IceLake, null, 2, 512, 2, 2 * 16 * 2 * 2 * 2.8 },
        { IceLake, null, 2, 256, 2, 2 * 8 * 2 * 2 * 2.8 },
        { Zen5, "4100000", 2, 512, 2, 2 * 16 * 2 * 2 * 4.1 },
        { Zen5, null, 8, 512, 2, 8 * 16 * 2 * 2 * 3.7 },
        { Zen4, null, 4, 512, 1, 4 * 16 * 1 * 2 * 2.6 },
        { Zen4, null, 4, 256, 2, 4 * 8 * 2 * 2 * 2.6 },
        { SkylakeSilver, null, 1, 512, 1, 1 * 16 * 1 * 2 * 2.2 },
    };

    [Theory, MemberData(nameof(Nominal))]
    public void NominalPeakIsCoresTimesLanesTimesUnitsTimesTwoTimesClock(string cpuinfo, string? maxKHz, int cores, int bits, int units, double gflops)
    {
        var peak = NominalPeak.Of(CpuInfo.Parse(cpuinfo, maxKHz), cores, bits)!.Value;
        Assert.Equal(units, peak.FmaUnits);
        Assert.Equal(bits / 32, peak.Lanes);
        Assert.Equal(gflops, peak.Gflops, 9);
        Assert.Contains($"{cores} cores x {bits / 32} lanes x {units} FMA x 2", peak.Formula);
        Assert.Throws<ArgumentOutOfRangeException>(() => NominalPeak.Of(CpuInfo.Parse(cpuinfo, maxKHz), 0, bits));
        Assert.Throws<ArgumentOutOfRangeException>(() => NominalPeak.Of(CpuInfo.Parse(cpuinfo, maxKHz), cores, 384));
    }

    [Fact]
    public void TheBestProbeIsCachedPerMachineAndTheReferenceIsTheLargerOfItAndTheNominal()
    {
        using var dir = new TempDir();
        var nominal = NominalPeak.Of(CpuInfo.Parse(IceLake, null), 2, 512);   // 358.4
        string key = PeakReference.Key("Intel(R) Xeon(R) Processor @ 2.80GHz", 2, 512);
        double Cached() => JsonNode.Parse(File.ReadAllText(dir.File(PeakReference.CacheFile)))![key]!.GetValue<double>();

        // A probe on a busy machine: below the nominal peak, which is the reference; the probe is cached.
        var r = PeakReference.Resolve(290, nominal, key, dir.Path);
        Assert.Equal(("nominal", 358.4, 290.0, 290.0), (r.Source, Math.Round(r.Gflops, 6), r.ProbeGflops, r.BestProbeGflops));
        Assert.Equal(290, Cached());
        Assert.Equal(dir.File(PeakReference.CacheFile), r.CachePath);

        // A quieter run beats the nominal (turbo above the base clock): the cache rises and becomes the reference.
        r = PeakReference.Resolve(478, nominal, key, dir.Path);
        Assert.Equal(("best cached probe", 478.0, 478.0), (r.Source, r.Gflops, r.ProbeGflops));
        Assert.Equal(478, Cached());

        // A busy run afterwards: the reference stays 478, the probe is reported beside it, the cache is unchanged.
        r = PeakReference.Resolve(405, nominal, key, dir.Path);
        Assert.Equal(("best cached probe", 478.0, 405.0, 478.0), (r.Source, r.Gflops, r.ProbeGflops, r.BestProbeGflops));
        Assert.Equal(478, Cached());
        Assert.Contains("peak 478 GFLOP/s (best cached probe)", r.Describe());
        Assert.Contains("nominal 358 = 2 cores x 16 lanes x 2 FMA x 2 x 2.80 GHz (model name)", r.Describe());
        Assert.Contains("this run's probe 405", r.Describe());

        // Another machine (other core count) has its own entry.
        string other = PeakReference.Key("Intel(R) Xeon(R) Processor @ 2.80GHz", 4, 512);
        Assert.Equal(100, PeakReference.Resolve(100, null, other, dir.Path).Gflops);
        Assert.Equal(478, Cached());

        // A corrupt cache starts over; no cache directory means the probe and the nominal only.
        File.WriteAllText(dir.File(PeakReference.CacheFile), "{ not json");
        Assert.Equal(("nominal", 300.0), (PeakReference.Resolve(300, nominal, key, dir.Path).Source, PeakReference.Resolve(300, nominal, key, dir.Path).BestProbeGflops));
        r = PeakReference.Resolve(300, null, key, null);
        Assert.Equal(("best cached probe", 300.0, null), (r.Source, r.Gflops, r.CachePath));
        Assert.Contains("nominal n/a", r.Describe());
        Assert.Throws<ArgumentOutOfRangeException>(() => PeakReference.Resolve(double.NaN, nominal, key, null));
        Assert.Throws<ArgumentOutOfRangeException>(() => PeakReference.Resolve(0, nominal, key, null));
    }

    [Fact]
    public void ThisHostHasANominalPeak()
    {
        Assert.SkipUnless(File.Exists("/proc/cpuinfo"), "no /proc/cpuinfo (not Linux)");
        var cpu = CpuInfo.Read()!;
        var peak = NominalPeak.Of(cpu, Environment.ProcessorCount, Kernels.HostSimd.FloatLanes * 32 >= 512 ? 512 : 256);
        Assert.NotNull(peak);
        Assert.True(peak.Value.Gflops > 0, peak.Value.Formula);
    }
}
