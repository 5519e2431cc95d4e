using System.Globalization;

namespace GpuNet.Schedules;

/// <summary>Hyperparameter validation shared by the schedules: every failure is an
/// <see cref="ArgumentOutOfRangeException"/> naming the schedule, the parameter, the valid range and the value.</summary>
internal static class ScheduleChecks
{
    static string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    internal static ArgumentOutOfRangeException Fail(string schedule, string name, object value, string range) =>
        new(name, value, $"{schedule}: {name} must be in {range}, got {LearningRateSchedule.Format(value)}");

    /// <summary>finite and &gt; 0.</summary>
    internal static void Positive(string schedule, string name, double v)
    {
        if (!(v > 0) || !double.IsFinite(v)) throw Fail(schedule, name, v, "(0, +inf)");
    }

    /// <summary>finite and &gt;= 0.</summary>
    internal static void NonNegative(string schedule, string name, double v)
    {
        if (!(v >= 0) || !double.IsFinite(v)) throw Fail(schedule, name, v, "[0, +inf)");
    }

    /// <summary>&gt;= min (integers).</summary>
    internal static void AtLeast(string schedule, string name, long v, long min)
    {
        if (v < min) throw Fail(schedule, name, v, $"[{min}, {long.MaxValue}]");
    }

    /// <summary>lo &lt; v &lt;= hi, or lo &lt; v &lt; hi when <paramref name="includeHi"/> is false.</summary>
    internal static void OpenLow(string schedule, string name, double v, double lo, double hi, bool includeHi)
    {
        bool ok = v > lo && (includeHi ? v <= hi : v < hi);
        if (!ok) throw Fail(schedule, name, v, $"({F(lo)}, {F(hi)}{(includeHi ? "]" : ")")}");
    }

    /// <summary>lo &lt;= v &lt;= hi, or lo &lt;= v &lt; hi when <paramref name="includeHi"/> is false.</summary>
    internal static void ClosedLow(string schedule, string name, double v, double lo, double hi, bool includeHi)
    {
        bool ok = v >= lo && (includeHi ? v <= hi : v < hi);
        if (!ok) throw Fail(schedule, name, v, $"[{F(lo)}, {F(hi)}{(includeHi ? "]" : ")")}");
    }
}
