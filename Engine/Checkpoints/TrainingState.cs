using GpuNet.Schedules;
using System.Globalization;
using System.Text.Json;

namespace GpuNet.Checkpoints;

/// <summary>The metrics of one finished epoch (loss, accuracy, ...), by name.</summary>
/// <param name="Epoch">The epoch index (0-based).</param>
/// <param name="Values">Metric name to value.</param>
public sealed record EpochMetrics(int Epoch, IReadOnlyDictionary<string, double> Values)
{
    /// <inheritdoc/>
    public bool Equals(EpochMetrics? other) => other is not null && Epoch == other.Epoch && Values.Count == other.Values.Count
        && Values.All(kv => other.Values.TryGetValue(kv.Key, out double v) && v.Equals(kv.Value));

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Epoch, Values.Count);
}

/// <summary>
/// Where training stands, for an exact resume: the data-order position (<see cref="Epoch"/> and
/// <see cref="BatchInEpoch"/>), the step counters, the random state, the plateau scheduler and early stopping.
/// Stored as JSON in the checkpoint's metadata under <c>training_state</c>. Equality compares every field, the history
/// element by element.
/// </summary>
public sealed record TrainingState
{
    /// <summary>The epoch in progress (0-based); with <see cref="BatchInEpoch"/> = 0, the next epoch to run.</summary>
    public int Epoch { get; init; }
    /// <summary>Batches of <see cref="Epoch"/> already consumed (the data order is resumed from here).</summary>
    public int BatchInEpoch { get; init; }
    /// <summary>Optimizer steps taken over the whole run.</summary>
    public long Step { get; init; }
    /// <summary>The run's seed (data shuffling, augmentation).</summary>
    public ulong Seed { get; init; }
    /// <summary>The state of the run's random generator (e.g. <see cref="Init.SplitMix64.State"/>); 0 when unused.</summary>
    public ulong RngState { get; init; }
    /// <summary>The step a <see cref="LearningRateSchedule"/> is at (schedules are pure functions of it).</summary>
    public long ScheduleStep { get; init; }
    /// <summary>The state of a <see cref="ReduceLROnPlateau"/>, when one is used.</summary>
    public PlateauState? Plateau { get; init; }
    /// <summary>The best monitored metric so far (early stopping, best-model saving), or null before the first.</summary>
    public double? BestMetric { get; init; }
    /// <summary>The epoch of <see cref="BestMetric"/>, or null.</summary>
    public int? BestEpoch { get; init; }
    /// <summary>Epochs since the best one (early stopping patience counter).</summary>
    public int EpochsWithoutImprovement { get; init; }
    /// <summary>Per-epoch metrics so far.</summary>
    public IReadOnlyList<EpochMetrics> History { get; init; } = [];

    /// <inheritdoc/>
    public bool Equals(TrainingState? other) => other is not null && Epoch == other.Epoch && BatchInEpoch == other.BatchInEpoch
        && Step == other.Step && Seed == other.Seed && RngState == other.RngState && ScheduleStep == other.ScheduleStep
        && Equals(Plateau, other.Plateau) && Nullable.Equals(BestMetric, other.BestMetric) && BestEpoch == other.BestEpoch
        && EpochsWithoutImprovement == other.EpochsWithoutImprovement && History.SequenceEqual(other.History);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Epoch, BatchInEpoch, Step, Seed, ScheduleStep);

    /// <summary>The JSON form stored in checkpoints (non-finite numbers as the strings "NaN", "Infinity", "-Infinity").</summary>
    public string ToJson() => SafeTensorsFormat.Json(w =>
    {
        w.WriteStartObject();
        w.WriteNumber("epoch", Epoch);
        w.WriteNumber("batch_in_epoch", BatchInEpoch);
        w.WriteNumber("step", Step);
        w.WriteString("seed", Seed.ToString(CultureInfo.InvariantCulture));
        w.WriteString("rng_state", RngState.ToString(CultureInfo.InvariantCulture));
        w.WriteNumber("schedule_step", ScheduleStep);
        if (Plateau is { } p)
        {
            w.WriteStartObject("plateau");
            WriteDouble(w, "learning_rate", p.LearningRate);
            WriteDouble(w, "best", p.Best);
            w.WriteNumber("num_bad_epochs", p.NumBadEpochs);
            w.WriteNumber("cooldown_counter", p.CooldownCounter);
            w.WriteNumber("last_epoch", p.LastEpoch);
            w.WriteEndObject();
        }
        if (BestMetric is { } b) WriteDouble(w, "best_metric", b);
        if (BestEpoch is { } be) w.WriteNumber("best_epoch", be);
        w.WriteNumber("epochs_without_improvement", EpochsWithoutImprovement);
        w.WriteStartArray("history");
        foreach (var h in History)
        {
            w.WriteStartObject();
            w.WriteNumber("epoch", h.Epoch);
            foreach (var (k, v) in h.Values.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                if (k == "epoch") throw new ArgumentException("a metric must not be named 'epoch'", nameof(History));
                WriteDouble(w, k, v);
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    });

    /// <summary>Parses <see cref="ToJson"/>'s form.</summary>
    /// <exception cref="FormatException">Invalid JSON, a missing field or a value out of range (the message names it).</exception>
    public static TrainingState FromJson(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json); }
        catch (JsonException e) { throw new FormatException($"training_state is not valid JSON: {e.Message}", e); }
        using (doc)
        {
            var r = doc.RootElement;
            if (r.ValueKind != JsonValueKind.Object) throw new FormatException($"training_state must be a JSON object, found {r.ValueKind}");
            PlateauState? plateau = null;
            if (r.TryGetProperty("plateau", out var p))
            {
                if (p.ValueKind != JsonValueKind.Object) throw new FormatException($"training_state: field 'plateau' must be an object, found {p.ValueKind}");
                plateau = new PlateauState(ReadDouble(p, "learning_rate"), ReadDouble(p, "best"), ReadInt(p, "num_bad_epochs"),
                    ReadInt(p, "cooldown_counter"), ReadLong(p, "last_epoch"));
            }
            var history = new List<EpochMetrics>();
            foreach (var h in Get(r, "history", JsonValueKind.Array).EnumerateArray())
            {
                if (h.ValueKind != JsonValueKind.Object) throw new FormatException($"training_state.history entries must be objects, found {h.ValueKind}");
                var values = new Dictionary<string, double>();
                foreach (var m in h.EnumerateObject()) if (m.Name != "epoch") values[m.Name] = AsDouble(m.Value, m.Name);
                history.Add(new EpochMetrics(ReadInt(h, "epoch"), values));
            }
            return new TrainingState
            {
                Epoch = ReadInt(r, "epoch"),
                BatchInEpoch = ReadInt(r, "batch_in_epoch"),
                Step = ReadLong(r, "step"),
                Seed = ReadULong(r, "seed"),
                RngState = ReadULong(r, "rng_state"),
                ScheduleStep = ReadLong(r, "schedule_step"),
                Plateau = plateau,
                BestMetric = r.TryGetProperty("best_metric", out var bm) ? AsDouble(bm, "best_metric") : null,
                BestEpoch = r.TryGetProperty("best_epoch", out _) ? ReadInt(r, "best_epoch") : null,
                EpochsWithoutImprovement = ReadInt(r, "epochs_without_improvement"),
                History = history,
            };
        }
    }

    internal static void WriteDouble(Utf8JsonWriter w, string name, double v)
    {
        if (double.IsFinite(v)) w.WriteNumber(name, v);
        else w.WriteString(name, double.IsNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity");
    }

    private static JsonElement Get(JsonElement o, string name, JsonValueKind kind)
    {
        if (!o.TryGetProperty(name, out var v)) throw new FormatException($"training_state: missing field '{name}'");
        if (v.ValueKind != kind) throw new FormatException($"training_state: field '{name}' must be a {kind}, found {v.GetRawText()}");
        return v;
    }

    private static double AsDouble(JsonElement v, string name) => v.ValueKind switch
    {
        JsonValueKind.Number => v.GetDouble(),
        JsonValueKind.String when v.GetString() is "NaN" => double.NaN,
        JsonValueKind.String when v.GetString() is "Infinity" => double.PositiveInfinity,
        JsonValueKind.String when v.GetString() is "-Infinity" => double.NegativeInfinity,
        _ => throw new FormatException($"training_state: field '{name}' must be a number, found {v.GetRawText()}"),
    };

    private static double ReadDouble(JsonElement o, string name)
    {
        if (!o.TryGetProperty(name, out var v)) throw new FormatException($"training_state: missing field '{name}'");
        return AsDouble(v, name);
    }

    private static long ReadLong(JsonElement o, string name)
    {
        var v = Get(o, name, JsonValueKind.Number);
        if (!v.TryGetInt64(out long x) || x < 0) throw new FormatException($"training_state: field '{name}' = {v.GetRawText()} must be an integer >= 0");
        return x;
    }

    private static int ReadInt(JsonElement o, string name)
    {
        long x = ReadLong(o, name);
        if (x > int.MaxValue) throw new FormatException($"training_state: field '{name}' = {x} exceeds {int.MaxValue}");
        return (int)x;
    }

    private static ulong ReadULong(JsonElement o, string name)
    {
        var v = Get(o, name, JsonValueKind.String);
        if (!ulong.TryParse(v.GetString(), NumberStyles.None, CultureInfo.InvariantCulture, out ulong x))
            throw new FormatException($"training_state: field '{name}' = {v.GetRawText()} must be a decimal unsigned 64-bit integer string");
        return x;
    }
}
