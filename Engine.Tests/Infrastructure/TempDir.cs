namespace GpuNet.Tests;

/// <summary>A fresh temporary directory, deleted with everything in it on Dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir() => Path = Directory.CreateTempSubdirectory("gpunet-test-").FullName;

    public string Path { get; }
    /// <summary>Full path of <paramref name="name"/> inside the directory.</summary>
    public string File(string name) => System.IO.Path.Combine(Path, name);
    /// <summary>Full path of <paramref name="name"/> inside the directory.</summary>
    public string this[string name] => File(name);
    /// <summary>File and directory names inside, sorted.</summary>
    public string[] Entries => Directory.GetFileSystemEntries(Path).Select(System.IO.Path.GetFileName).Order().ToArray()!;

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); }
        catch (IOException) { }
    }
}
