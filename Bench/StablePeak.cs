using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace GpuNet.Bench;

/// <summary>
/// What <c>/proc/cpuinfo</c> (and cpufreq) say about the host CPU: enough to compute a nominal FMA peak.
/// </summary>
/// <param name="Vendor">vendor_id: GenuineIntel, AuthenticAMD, ...</param>
/// <param name="Family">cpu family (decimal; AMD Zen 5 is 26 = 0x1A, Zen 3/4 25 = 0x19, Zen 1/2 23 = 0x17).</param>
/// <param name="Model">model (decimal).</param>
/// <param name="ModelName">model name, e.g. "AMD EPYC 9B45" or "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz".</param>
/// <param name="MaxClockGHz">cpufreq's cpuinfo_max_freq (the highest clock the kernel reports), when present.</param>
/// <param name="CurrentClockGHz">"cpu MHz" of the first core (what it ran at when read), when present.</param>
internal sealed record CpuInfo(string Vendor, int Family, int Model, string ModelName, double? MaxClockGHz, double? CurrentClockGHz)
{
    /// <summary>Parses the first processor block of <paramref name="procCpuinfo"/> and cpufreq's max frequency in kHz.</summary>
    public static CpuInfo Parse(string procCpuinfo, string? cpufreqMaxKHz)
    {
        string Field(string name)
        {
            var m = Regex.Match(procCpuinfo, $@"^{Regex.Escape(name)}\s*:\s*(.*)$", RegexOptions.Multiline);
            return m.Success ? m.Groups[1].Value.Trim() : "";
        }
        static double? Num(string s) => double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v > 0 ? v : null;
        int.TryParse(Field("cpu family"), out int family);
        int.TryParse(Field("model"), out int model);
        double? max = Num(cpufreqMaxKHz?.Trim() ?? "") is double khz ? khz / 1e6 : null;
        double? current = Num(Field("cpu MHz")) is double mhz ? mhz / 1e3 : null;
        return new CpuInfo(Field("vendor_id"), family, model, Field("model name"), max, current);
    }

    /// <summary>This machine's, or null where /proc/cpuinfo cannot be read (not Linux).</summary>
    public static CpuInfo? Read()
    {
        try
        {
            if (!File.Exists("/proc/cpuinfo")) return null;
            const string freq = "/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq";
            return Parse(File.ReadAllText("/proc/cpuinfo"), File.Exists(freq) ? File.ReadAllText(freq) : null);
        }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }

    /// <summary>
    /// The clock the nominal peak assumes, in GHz, and where it came from: cpufreq's maximum, else the "@ x.xxGHz" of
    /// the model name (Intel's base clock), else the current "cpu MHz" (a VM often reports only this).
    /// </summary>
    public (double GHz, string Source)? Clock()
    {
        if (MaxClockGHz is double max) return (max, "cpufreq cpuinfo_max_freq");
        var m = Regex.Match(ModelName, @"@\s*([0-9.]+)\s*GHz", RegexOptions.IgnoreCase);
        if (m.Success && double.TryParse(m.Groups[1].Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var ghz) && ghz > 0)
            return (ghz, "model name");
        if (CurrentClockGHz is double cur) return (cur, "cpu MHz");
        return null;
    }

    /// <summary>
    /// How many <paramref name="vectorBits"/>-wide FMA instructions one core issues per cycle, with the reason. AMD Zen 5
    /// (family 0x1A): two 512-bit FMA pipes (server and desktop parts; the mobile parts double-pump, which this cannot
    /// see). Zen 4 (0x19 with AVX-512): two 256-bit pipes, so one 512-bit FMA a cycle, or two 256-bit ones. Zen 2/3:
    /// two 256-bit. Zen 1 (0x17, model &lt; 0x30): two 128-bit pipes, one 256-bit FMA a cycle. Intel with AVX-512:
    /// two 512-bit FMA units (Xeon Gold/Platinum, Ice Lake-SP and later), except Xeon Silver/Bronze (Skylake and
    /// Cascade Lake: one). Intel with AVX2 (Haswell and later): two 256-bit. Anything else: one, a lower bound.
    /// </summary>
    public (int Units, string Reason) FmaUnits(int vectorBits)
    {
        bool amd = Vendor == "AuthenticAMD", intel = Vendor == "GenuineIntel";
        if (amd && Family >= 0x1A) return (2, "AMD Zen 5 or later: two FMA pipes as wide as the vector");
        if (amd && Family == 0x19) return vectorBits >= 512 ? (1, "AMD Zen 4: 512-bit FMAs double-pumped on two 256-bit pipes") : (2, "AMD Zen 3/4: two 256-bit FMA pipes");
        if (amd && Family == 0x17)
        {
            if (Model < 0x30) return (1, "AMD Zen 1: two 128-bit FMA pipes, one 256-bit FMA per cycle");
            return (2, "AMD Zen 2: two 256-bit FMA pipes");
        }
        if (intel && vectorBits >= 512)
        {
            if (ModelName.Contains("Silver", StringComparison.OrdinalIgnoreCase) || ModelName.Contains("Bronze", StringComparison.OrdinalIgnoreCase))
                return (1, "Intel Xeon Silver/Bronze: one 512-bit FMA unit");
            return (2, "Intel with AVX-512: two 512-bit FMA units");
        }
        if (intel) return (2, "Intel with AVX2: two 256-bit FMA units");
        return (1, "unknown CPU: one FMA unit assumed (a lower bound)");
    }
}

/// <summary>
/// The nominal float32 FMA peak: cores x lanes x FMA units x 2 (multiply + add) x clock. Cores are logical processors
/// (<see cref="Environment.ProcessorCount"/>): on an SMT machine two of them share one core's FMA units, so there the
/// figure is twice the hardware's (a VM without SMT, like the development machine, reports one per core).
/// </summary>
internal readonly record struct NominalPeak(int Cores, int Lanes, int FmaUnits, double ClockGHz, string ClockSource, string FmaReason)
{
    /// <summary>The peak in GFLOP/s.</summary>
    public double Gflops => Cores * Lanes * FmaUnits * 2.0 * ClockGHz;

    /// <summary>The formula with its factors, e.g. "2 cores x 16 lanes x 2 FMA x 2 x 2.80 GHz (model name)".</summary>
    public string Formula => string.Create(CultureInfo.InvariantCulture, $"{Cores} cores x {Lanes} lanes x {FmaUnits} FMA x 2 x {ClockGHz:F2} GHz ({ClockSource})");

    /// <summary>The nominal peak of <paramref name="cpu"/> with <paramref name="cores"/> cores and <paramref name="vectorBits"/>-bit vectors; null without a clock.</summary>
    public static NominalPeak? Of(CpuInfo cpu, int cores, int vectorBits)
    {
        ArgumentNullException.ThrowIfNull(cpu);
        if (cores < 1) throw new ArgumentOutOfRangeException(nameof(cores), cores, "NominalPeak: cores must be >= 1");
        if (vectorBits is not (128 or 256 or 512)) throw new ArgumentOutOfRangeException(nameof(vectorBits), vectorBits, "NominalPeak: vectorBits must be 128, 256 or 512");
        if (cpu.Clock() is not var (ghz, source)) return null;
        var (units, reason) = cpu.FmaUnits(vectorBits);
        return new NominalPeak(cores, vectorBits / 32, units, ghz, source, reason);
    }
}

/// <summary>
/// The peak that MFU is reported against, stable from run to run, with where it came from and this run's probe beside
/// it. The FMA probe of one run swings with the machine's load (290 to 478 GFLOP/s within an hour on a shared 2-core
/// machine), so the reference is the larger of the nominal peak (<see cref="NominalPeak"/>) and the best probe ever
/// measured on this machine, cached in <see cref="CacheFile"/> under a key of the CPU model, the core count and the
/// vector width. The best probe only rises, and only when this machine was quieter than ever before.
/// </summary>
/// <param name="Gflops">The reference peak.</param>
/// <param name="Source">"nominal" or "best cached probe".</param>
/// <param name="ProbeGflops">This run's probe.</param>
/// <param name="BestProbeGflops">The best probe of this machine, this run's included.</param>
/// <param name="Nominal">The nominal peak, when the clock could be read.</param>
/// <param name="CachePath">The cache file (null when it could not be written).</param>
internal sealed record PeakReference(double Gflops, string Source, double ProbeGflops, double BestProbeGflops, NominalPeak? Nominal, string? CachePath)
{
    /// <summary>The cache file's name in the data cache directory.</summary>
    public const string CacheFile = "fma-peak.json";

    /// <summary>One line for the log: the reference, its source, the nominal formula and this run's probe.</summary>
    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"peak {Gflops:F0} GFLOP/s ({Source}) | nominal {(Nominal is { } n ? $"{n.Gflops:F0} = {n.Formula}" : "n/a (no clock)")} | best probe {BestProbeGflops:F0}{(CachePath is null ? " (not cached)" : $" (cached in {CachePath})")} | this run's probe {ProbeGflops:F0}");

    /// <summary>The cache key of a machine: CPU model name, logical cores and vector width.</summary>
    public static string Key(string modelName, int cores, int vectorBits) => $"{modelName} | {cores} cores | {vectorBits}-bit";

    /// <summary>
    /// Combines <paramref name="probeGflops"/> with the best probe cached for <paramref name="key"/> in
    /// <paramref name="cacheDirectory"/> (updating the cache when this probe is better) and the nominal peak. A cache
    /// that cannot be read or written is ignored (the run goes on against the nominal peak and this probe).
    /// </summary>
    public static PeakReference Resolve(double probeGflops, NominalPeak? nominal, string key, string? cacheDirectory)
    {
        if (!(probeGflops > 0) || !double.IsFinite(probeGflops))
            throw new ArgumentOutOfRangeException(nameof(probeGflops), probeGflops, "PeakReference: the probe must be finite and > 0 GFLOP/s");
        ArgumentException.ThrowIfNullOrEmpty(key);
        double best = probeGflops;
        string? path = null;
        if (cacheDirectory is not null)
        {
            var file = Path.Combine(cacheDirectory, CacheFile);
            try
            {
                var cache = ReadCache(file);
                if (cache[key] is JsonValue v && v.TryGetValue<double>(out var cached) && cached > best && double.IsFinite(cached)) best = cached;
                else
                {
                    cache[key] = probeGflops;
                    AtomicFile.WriteAllText(file, cache.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
                }
                path = file;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
        double nominalGflops = nominal?.Gflops ?? 0;
        return best >= nominalGflops
            ? new PeakReference(best, "best cached probe", probeGflops, best, nominal, path)
            : new PeakReference(nominalGflops, "nominal", probeGflops, best, nominal, path);
    }

    /// <summary>This machine's reference: probes (best of 5 short trials), reads /proc/cpuinfo, uses the data cache directory.</summary>
    public static PeakReference ForThisHost(string? cacheDirectory)
    {
        var probe = Probes.MeasureFma(0.1, trials: 5);
        return ForProbe(probe, cacheDirectory);
    }

    /// <summary>The reference for an FMA probe already measured on this machine.</summary>
    public static PeakReference ForProbe(FmaPeak probe, string? cacheDirectory)
    {
        var cpu = CpuInfo.Read();
        var nominal = cpu is null ? null : NominalPeak.Of(cpu, probe.Threads, probe.VectorBits);
        string model = cpu?.ModelName is { Length: > 0 } name ? name : "unknown CPU";
        return Resolve(probe.TotalGflops, nominal, Key(model, probe.Threads, probe.VectorBits), cacheDirectory);
    }

    // The cache: a JSON object of key -> best GFLOP/s. A corrupt file starts over.
    private static JsonObject ReadCache(string file)
    {
        if (!File.Exists(file)) return [];
        try { return JsonNode.Parse(File.ReadAllText(file)) as JsonObject ?? []; }
        catch (JsonException) { return []; }
    }
}
