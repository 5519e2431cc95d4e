using System.Reflection;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using GpuNet.Kernels;

namespace GpuNet.Bench;

/// <summary>
/// GFLOP/s or GB/s of a benchmark: its <see cref="OpCost"/> divided by the measured mean time. The cost comes from
/// the property named after the benchmark method plus "Cost" (e.g. <c>Add</c> / <c>AddCost</c>), read on a fresh
/// instance of the benchmark class with the case's [Params] values set (no setup runs).
/// </summary>
internal sealed class CostColumn(bool flops) : IColumn
{
    public static readonly CostColumn Gflops = new(true);
    public static readonly CostColumn GBps = new(false);

    public string Id => flops ? "GpuNet.GFLOPs" : "GpuNet.GBps";
    public string ColumnName => flops ? "GFLOP/s" : "GB/s";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => flops ? 0 : 1;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => flops
        ? "Floating-point operations per second: the op's OpCost.Flops / mean time (an FMA counts 2)"
        : "Compulsory memory traffic per second: the op's OpCost.Bytes (read + written once) / mean time";

    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public bool IsAvailable(Summary summary) => true;
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, summary.Style);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var stats = summary[benchmarkCase]?.ResultStatistics;
        if (stats is null || !(stats.Mean > 0)) return "NA";
        var cost = CostOf(benchmarkCase);
        double perNs = (flops ? cost.Flops : cost.Bytes) / stats.Mean; // per ns = giga per second
        return perNs.ToString(perNs >= 100 ? "F0" : "F1");
    }

    /// <summary>The cost property of a benchmark method: <c>{Method}Cost</c>, or null when it has none.</summary>
    public static PropertyInfo? CostProperty(Type type, MethodInfo method)
    {
        var p = type.GetProperty(method.Name + "Cost", BindingFlags.Public | BindingFlags.Instance);
        return p is not null && p.PropertyType == typeof(OpCost) ? p : null;
    }

    private static OpCost CostOf(BenchmarkCase benchmarkCase)
    {
        var type = benchmarkCase.Descriptor.Type;
        var method = benchmarkCase.Descriptor.WorkloadMethod;
        var property = CostProperty(type, method) ?? throw new InvalidOperationException($"{type.Name}.{method.Name} has no public OpCost property {method.Name}Cost");
        object instance = Activator.CreateInstance(type)!;
        foreach (var param in benchmarkCase.Parameters.Items)
        {
            var target = type.GetProperty(param.Name, BindingFlags.Public | BindingFlags.Instance);
            if (target is not null) target.SetValue(instance, param.Value);
            else type.GetField(param.Name, BindingFlags.Public | BindingFlags.Instance)?.SetValue(instance, param.Value);
        }
        return (OpCost)property.GetValue(instance)!;
    }
}
