using System.CommandLine;

namespace GpuNet.Bench;

/// <summary><c>devices</c>: every device GpuNet can open here, and what <c>auto</c> picks.</summary>
internal static class DevicesCommand
{
    public static Command Create()
    {
        var cmd = new Command("devices", "List every device (name, kind, hardware, memory, warp size, threads per group, multiprocessors) and the one 'auto' picks, with the reason.");
        cmd.SetAction(_ => Cli.Guard(Run));
        return cmd;
    }

    private static int Run()
    {
        var devices = Device.Available();
        var table = new TextTable("name", "kind", "hardware", "description", "memory", "warp", "max threads/group", "multiprocessors");
        foreach (var d in devices)
            table.Add(d.Name, d.Kind.ToString(), d.Hardware.ToString(), d.Description, Cli.Bytes(d.MemoryBytes), d.WarpSize.ToString(), d.MaxThreadsPerGroup.ToString(), d.Multiprocessors.ToString());
        table.Write(Console.Out);
        Console.WriteLine();
        var auto = Device.ChooseAuto(devices);
        Console.WriteLine($"auto picks: {auto.Name} ({auto.Reason})");
        var env = Environment.GetEnvironmentVariable(Device.EnvironmentVariable);
        Console.WriteLine(string.IsNullOrWhiteSpace(env)
            ? $"{Device.EnvironmentVariable} is not set: a device opened without a name is 'auto'"
            : $"{Device.EnvironmentVariable}={env}: a device opened without a name is '{env.Trim().ToLowerInvariant()}'");
        return Cli.Ok;
    }
}
