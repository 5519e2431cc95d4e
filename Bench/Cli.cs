using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Numerics;

namespace GpuNet.Bench;

/// <summary>Exit codes, argument parsing and error reporting shared by the commands.</summary>
internal static class Cli
{
    public const int Ok = 0;
    public const int Failed = 1;
    public const int BadArguments = 2;

    /// <summary>Parses and runs; a parse error prints what was wrong and the command's help to stderr, exit 2.</summary>
    public static int Run(RootCommand root, string[] args)
    {
        var parse = root.Parse(args);
        if (parse.Errors.Count == 0) return parse.Invoke();
        foreach (var e in parse.Errors) Console.Error.WriteLine($"error: {e.Message}");
        Console.Error.WriteLine();
        // The help of the innermost command that was recognised lists the allowed commands, options and values.
        var path = new List<string>();
        for (SymbolResult? r = parse.CommandResult; r is CommandResult cr && cr.Command is not RootCommand; r = r.Parent)
            path.Insert(0, cr.Command.Name);
        path.Add("--help");
        root.Parse(path).Invoke(new InvocationConfiguration { Output = Console.Error });
        return BadArguments;
    }

    /// <summary>Runs a command body: an <see cref="UsageException"/> is a bad argument (exit 2), any other exception a failure (exit 1).</summary>
    public static int Guard(Func<int> body)
    {
        try { return body(); }
        catch (UsageException e) { Console.Error.WriteLine($"error: {e.Message}"); return BadArguments; }
        catch (Exception e) { Console.Error.WriteLine($"failed: {e.GetType().Name}: {e.Message}"); return Failed; }
    }

    /// <summary>The <c>--device</c> option: a device name, or GPUNET_DEVICE / auto when absent.</summary>
    public static Option<string?> DeviceOption() => new("--device", "-d")
    {
        Description = "device name: cpu, ilgpu-cpu, cuda, cuda:N, opencl, opencl:N or auto (default: $GPUNET_DEVICE, else auto)",
    };

    /// <summary>Opens a device; a name that is not present is a usage error listing the present ones.</summary>
    public static Device OpenDevice(string? name)
    {
        try { return Device.Create(name); }
        catch (ArgumentException e) { throw new UsageException(e.Message.Replace($" (Parameter '{e.ParamName}')", "")); }
    }

    /// <summary>A comma-separated list of integers in [min, max], e.g. <c>256,512,1024</c>.</summary>
    public static Option<int[]> IntListOption(string name, string description, int[] defaults, int min, int max)
        => new(name)
        {
            Description = $"{description} (comma-separated integers in [{min}, {max}])",
            DefaultValueFactory = _ => defaults,
            CustomParser = r =>
            {
                var text = string.Join(',', r.Tokens.Select(t => t.Value));
                var parts = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                var values = new List<int>();
                foreach (var p in parts)
                {
                    if (!int.TryParse(p, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) || v < min || v > max)
                    {
                        r.AddError($"{name}: '{p}' is not an integer in [{min}, {max}]");
                        return defaults;
                    }
                    values.Add(v);
                }
                if (values.Count == 0) r.AddError($"{name}: expected at least one integer in [{min}, {max}], got '{text}'");
                return values.ToArray();
            },
        };

    /// <summary>An integer option with a default, restricted to [min, max].</summary>
    public static Option<int> IntOption(string name, string description, int defaultValue, int min, int max)
        => NumberOption(name, $"{description} (integer in [{min}, {max}])", defaultValue, min, max, "an integer");

    /// <summary>A number option with a default, restricted to [min, max].</summary>
    public static Option<double> DoubleOption(string name, string description, double defaultValue, double min, double max)
        => NumberOption(name, $"{description} (number in [{min}, {max}])", defaultValue, min, max, "a number");

    // Parsing and range check in one place: a validator would see a value that failed to convert and throw.
    private static Option<T> NumberOption<T>(string name, string description, T defaultValue, T min, T max, string what)
        where T : struct, INumber<T>
        => new(name)
        {
            Description = description,
            DefaultValueFactory = _ => defaultValue,
            CustomParser = r =>
            {
                string text = r.Tokens.Count == 1 ? r.Tokens[0].Value : string.Join(' ', r.Tokens.Select(t => t.Value));
                if (T.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out T v) && v >= min && v <= max) return v;
                r.AddError($"{name}: '{text}' is not {what} in [{min}, {max}]");
                return defaultValue;
            },
        };

    public static string Bytes(long bytes) => bytes switch
    {
        >= 1L << 30 => $"{bytes / (double)(1L << 30):F1} GiB",
        >= 1L << 20 => $"{bytes / (double)(1L << 20):F1} MiB",
        _ => $"{bytes / 1024.0:F1} KiB",
    };
}

/// <summary>A bad argument found after parsing (e.g. a device that is not present): exit status 2.</summary>
internal sealed class UsageException(string message) : Exception(message);
