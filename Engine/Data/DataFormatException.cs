namespace GpuNet.Data;

/// <summary>
/// A data file (or embedded resource) does not hold what its format promises: wrong magic number, truncated data,
/// a label out of range, a count mismatch, a ragged or non-numeric CSV row. The message names the file and the problem,
/// so bad data stops at load time instead of deep inside a kernel.
/// </summary>
public sealed class DataFormatException : Exception
{
    /// <summary>An error about <paramref name="path"/>; the message is <c>"{path}: {problem}"</c>.</summary>
    /// <param name="path">The file (or resource name) that is wrong.</param>
    /// <param name="problem">What is wrong, with the expected and the actual value.</param>
    /// <param name="inner">The underlying exception, if any (e.g. a gzip decoding error).</param>
    public DataFormatException(string path, string problem, Exception? inner = null)
        : base($"{path}: {problem}", inner)
    {
        Path = path;
        Problem = problem;
    }

    /// <summary>The file (or resource name) that is wrong.</summary>
    public string Path { get; }

    /// <summary>What is wrong with it.</summary>
    public string Problem { get; }
}

/// <summary>
/// A data set could not be fetched into the cache (tool missing, tool failed, checksum mismatch). The message says
/// what failed and how to place the files by hand.
/// </summary>
public sealed class DataFetchException : Exception
{
    /// <summary>A fetch failure with its message (which includes the manual instructions).</summary>
    /// <param name="message">What failed and what to do by hand.</param>
    /// <param name="inner">The underlying exception, if any.</param>
    public DataFetchException(string message, Exception? inner = null) : base(message, inner) { }
}
