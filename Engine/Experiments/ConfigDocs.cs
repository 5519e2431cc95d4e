using System.Text;

namespace GpuNet.Experiments;

/// <summary>The reference part of docs/config.md, generated from the schema tables so the two cannot drift apart.</summary>
public static class ConfigDocs
{
    /// <summary>Markdown tables of every section setting and every kind with its arguments, types, defaults and ranges.</summary>
    public static string Reference()
    {
        var sb = new StringBuilder();
        Settings(sb, "data", ExperimentConfig.DataSettings);
        Settings(sb, "training", ExperimentConfig.TrainingSettings);
        Settings(sb, "training.early_stopping", ExperimentConfig.EarlyStoppingSettings);
        Settings(sb, "regularization", ExperimentConfig.RegularizationSettings);
        Kinds(sb, "data.source", ConfigKinds.Sources);
        Kinds(sb, "data.augment[i]", ConfigKinds.Augments);
        Kinds(sb, "layers[i]", ConfigKinds.Layers);
        Kinds(sb, "weight_init / bias_init", ConfigKinds.Inits);
        Kinds(sb, "loss", ConfigKinds.Losses);
        Kinds(sb, "optimizer", ConfigKinds.Optimizers);
        Kinds(sb, "schedule", ConfigKinds.Schedules);
        return sb.ToString();
    }

    private static void Settings(StringBuilder sb, string section, IReadOnlyList<ArgSpec> args)
    {
        sb.Append("### `").Append(section).Append("`\n\n");
        Table(sb, args);
    }

    private static void Kinds(StringBuilder sb, string where, IReadOnlyList<KindSpec> kinds)
    {
        sb.Append("### `").Append(where).Append("`: ").Append(string.Join(", ", kinds.Select(k => $"`{k.Name}`"))).Append("\n\n");
        foreach (var k in kinds)
        {
            sb.Append("- **`").Append(k.Name).Append("`**: ").Append(k.Doc).Append('\n');
            if (k.Args.Count > 0)
            {
                sb.Append('\n');
                Table(sb, k.Args, indent: "  ");
            }
        }
        sb.Append('\n');
    }

    private static void Table(StringBuilder sb, IReadOnlyList<ArgSpec> args, string indent = "")
    {
        sb.Append(indent).Append("| key | type | default | allowed | meaning |\n").Append(indent).Append("|---|---|---|---|---|\n");
        foreach (var a in args)
        {
            string def = a.Required ? "required" : a.Inferred is not null ? $"inferred: {a.Inferred}" : a.Default switch
            {
                "" => "(empty)",
                bool b => b ? "true" : "false",
                double d => ArgSpec.F(d),
                IReadOnlyList<Component> { Count: 0 } => "[]",
                var v => v!.ToString()!,
            };
            sb.Append(indent).Append($"| `{a.Key}` | {a.Type.ToString().ToLowerInvariant()} | {def} | {a.Expected()} | {a.Doc} |\n");
        }
        if (indent.Length == 0) sb.Append('\n');
    }
}
