using System.CommandLine;

namespace GpuNet.Bench;

/// <summary><c>devices</c>: every device GpuNet can open here, and what <c>auto</c> picks.</summary>
internal static class DevicesCommand
{
    public static Command Create()
    {
        var cmd = new Command("devices", "List every device (name, kind, memory, warp size, threads per group, multiprocessors) and the one 'auto' picks.");
        cmd.SetAction(_ => Cli.Guard(Run));
        return cmd;
    }

    private static int Run()
    {
        var table = new TextTable("name", "kind", "description", "memory", "warp", "max threads/group", "multiprocessors");
        foreach (var d in Device.Available())
            table.Add(d.Name, d.Kind.ToString(), d.Description, Cli.Bytes(d.MemoryBytes), d.WarpSize.ToString(), d.MaxThreadsPerGroup.ToString(), d.Multiprocessors.ToString());
        table.Write(Console.Out);
        Console.WriteLine();
        Console.WriteLine($"auto picks: {Device.AutoName()}");
        var env = Environment.GetEnvironmentVariable(Device.EnvironmentVariable);
        Console.WriteLine(string.IsNullOrWhiteSpace(env)
            ? $"{Device.EnvironmentVariable} is not set: a device opened without a name is 'auto'"
            : $"{Device.EnvironmentVariable}={env}: a device opened without a name is '{env.Trim().ToLowerInvariant()}'");
        return Cli.Ok;
    }
}
