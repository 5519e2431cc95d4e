using System.Reflection;
using Xunit.Sdk;
using Xunit.v3;

namespace GpuNet.Tests;

/// <summary>
/// The backends every device test runs on, in this order. A test row carries the trait <c>Backend=&lt;name&gt;</c>, so
/// <c>dotnet test -- --filter-trait "Backend=opencl"</c> runs exactly one backend's rows.
/// </summary>
public static class Backends
{
    /// <summary>Host SIMD code, ILGPU's CPU simulator, ILGPU's OpenCL and CUDA accelerators.</summary>
    public static readonly string[] All = ["cpu", "ilgpu-cpu", "opencl", "cuda"];

    /// <summary>
    /// Backends listed in <c>GPUNET_REQUIRE_BACKENDS</c> (comma-separated): when one of them is absent its tests fail
    /// instead of skipping, so CI cannot pass by silently skipping a whole backend.
    /// </summary>
    public static IReadOnlySet<string> Required { get; } =
        (Environment.GetEnvironmentVariable("GPUNET_REQUIRE_BACKENDS") ?? "")
        .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet();

    /// <summary>
    /// <paramref name="only"/> (comma-separated; null: all) minus <paramref name="except"/>; an unknown name throws,
    /// so a typo cannot drop a backend.
    /// </summary>
    internal static string[] Select(string? only, string? except)
    {
        static string[] Parse(string? s, string what)
        {
            var names = (s ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            foreach (var n in names)
                if (!All.Contains(n)) throw new ArgumentException($"unknown backend '{n}' in {what}; expected one of {string.Join(", ", All)}", what);
            return names;
        }
        var o = Parse(only, "Only"); var e = Parse(except, "Except");
        return [.. All.Where(b => (o.Length == 0 || o.Contains(b)) && !e.Contains(b))];
    }

    /// <summary>One row per backend for each of <paramref name="rows"/>: the backend name first, then the row's data.</summary>
    internal static IReadOnlyCollection<ITheoryDataRow> Cross(string[] backends, IEnumerable<ITheoryDataRow> rows)
    {
        var rowList = rows.ToList();
        var result = new List<ITheoryDataRow>(backends.Length * rowList.Count);
        foreach (var b in backends)
            foreach (var r in rowList)
            {
                var row = new TheoryDataRow([b, .. r.GetData()]) { Skip = r.Skip, Explicit = r.Explicit, Timeout = r.Timeout };
                if (r.Traits is { } traits) foreach (var (k, vs) in traits) foreach (var v in vs) row.WithTrait(k, v);
                result.Add(row.WithTrait("Backend", b));
            }
        return result;
    }
}

/// <summary>
/// Runs a theory once per backend: the test method's first parameter is <c>string backend</c>. With a member name, the
/// rows are the cross product backends x the member's rows (as <see cref="MemberDataAttribute"/> would give them).
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false)]
public sealed class BackendsAttribute(string? memberName = null) : DataAttribute
{
    /// <summary>Comma-separated backends to run on (default: all).</summary>
    public string? Only { get; set; }
    /// <summary>Comma-separated backends to leave out.</summary>
    public string? Except { get; set; }
    /// <summary>The type declaring the member (default: the test class).</summary>
    public Type? MemberType { get; set; }

    public override ValueTask<IReadOnlyCollection<ITheoryDataRow>> GetData(MethodInfo testMethod, DisposalTracker disposalTracker)
    {
        IEnumerable<ITheoryDataRow> rows = [new TheoryDataRow()];
        if (memberName is not null)
        {
            var type = MemberType ?? testMethod.ReflectedType ?? throw new ArgumentException($"{testMethod.Name} has no declaring type", nameof(testMethod));
            const BindingFlags Static = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.FlattenHierarchy;
            object? value = type.GetProperty(memberName, Static)?.GetValue(null)
                ?? type.GetField(memberName, Static)?.GetValue(null)
                ?? type.GetMethod(memberName, Static, Type.EmptyTypes)?.Invoke(null, null)
                ?? throw new ArgumentException($"{type.Name}.{memberName}: expected a static property, field or method returning rows, found none", nameof(memberName));
            if (value is not System.Collections.IEnumerable items)
                throw new ArgumentException($"{type.Name}.{memberName}: expected an IEnumerable of rows, got {value.GetType().Name}", nameof(memberName));
            rows = items.Cast<object>().Select(ConvertDataRow).ToList();
        }
        return new(Backends.Cross(Backends.Select(Only, Except), rows));
    }

    public override bool SupportsDiscoveryEnumeration() => true;
}

/// <summary>One inline row run on every backend (the device counterpart of <see cref="InlineDataAttribute"/>).</summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = true)]
public sealed class BackendDataAttribute(params object?[] data) : DataAttribute
{
    /// <summary>Comma-separated backends to run on (default: all).</summary>
    public string? Only { get; set; }
    /// <summary>Comma-separated backends to leave out.</summary>
    public string? Except { get; set; }

    public override ValueTask<IReadOnlyCollection<ITheoryDataRow>> GetData(MethodInfo testMethod, DisposalTracker disposalTracker) =>
        new(Backends.Cross(Backends.Select(Only, Except), [new TheoryDataRow(data)]));

    public override bool SupportsDiscoveryEnumeration() => true;
}

/// <summary>
/// A test class's devices: opened lazily, one per backend, and disposed with the class (xunit runs a class's tests one
/// after another, so a device's counters are never shared with tests running in parallel).
/// </summary>
public sealed class BackendFixture : IDisposable
{
    /// <summary>PoCL's device enumeration fails when two threads enumerate at once: open devices one at a time.</summary>
    private static readonly Lock OpenLock = new();
    private readonly Dictionary<string, (Device? Device, string? Absent)> _devices = [];

    /// <summary>
    /// The device for <paramref name="backend"/>. An absent backend skips the test with the reason, or fails it when
    /// <see cref="Backends.Required"/> lists it.
    /// </summary>
    public Device Get(string backend)
    {
        if (!Backends.All.Contains(backend))
            throw new ArgumentException($"unknown backend '{backend}'; expected one of {string.Join(", ", Backends.All)}", nameof(backend));
        (Device? Device, string? Absent) entry;
        lock (OpenLock)
        {
            if (!_devices.TryGetValue(backend, out entry))
            {
                try { entry = (Device.Create(backend), null); }
                catch (ArgumentException e) when (backend is "cuda" or "opencl") { entry = (null, e.Message); }
                _devices[backend] = entry;
            }
        }
        if (entry.Device is not null) return entry.Device;
        string reason = $"no {backend} device on this machine: {entry.Absent}";
        if (Backends.Required.Contains(backend)) Assert.Fail($"{reason} (GPUNET_REQUIRE_BACKENDS lists it)");
        Assert.Skip(reason);
        return null!;
    }

    public void Dispose()
    {
        foreach (var (d, _) in _devices.Values) d?.Dispose();
        _devices.Clear();
    }
}

/// <summary>
/// Base of backend-parametrised tests: <see cref="Use"/> picks the test's device (its first statement), and every test
/// must leave no live buffer behind on it.
/// </summary>
public abstract class DeviceTestBase(BackendFixture fixture) : IDisposable
{
    private Device? _device;

    /// <summary>Makes <paramref name="backend"/>'s device the one <see cref="D"/> returns for this test.</summary>
    protected Device Use(string backend)
    {
        var d = fixture.Get(backend);
        Assert.True(d.Counters.LiveBytes == 0, $"a previous test on {d.Name} leaked {d.Counters.LiveBytes} bytes");
        _device = d;
        return d;
    }

    /// <summary>The device chosen by <see cref="Use"/>.</summary>
    protected Device D => _device ?? throw new InvalidOperationException("call Use(backend) first in a device test");

    /// <summary>Every tensor a test made must be disposed by its end: live bytes and buffers are back to zero.</summary>
    public void Dispose()
    {
        if (_device is not null)
        {
            var c = _device.Counters;
            Assert.True(c.LiveBytes == 0 && c.LiveBuffers == 0, $"test leaked {c.LiveBuffers} buffers, {c.LiveBytes} bytes on {_device.Name}");
        }
        GC.SuppressFinalize(this);
    }
}
