using System.Reflection;
using Google.Protobuf;
using GpuNet.Checkpoints;
using GpuNet.Nn;
using Onnx;

namespace GpuNet.Onnx;

/// <summary>Options of <see cref="OnnxExport.ExportOnnx"/>: the names of the graph's input, output and batch dimension.</summary>
public sealed record OnnxExportOptions
{
    /// <summary>Name of the graph input, (batch, ...<see cref="Model.InputShape"/>).</summary>
    public string InputName { get; init; } = "input";
    /// <summary>Name of the graph output, (batch, ...<see cref="Model.OutputShape"/>): the network's last layer's output (logits, not probabilities).</summary>
    public string OutputName { get; init; } = "output";
    /// <summary>The symbolic (<c>dim_param</c>) first dimension of the input and output: any batch size runs.</summary>
    public string BatchDimension { get; init; } = "batch";
}

/// <summary>Thrown by <see cref="OnnxExport.ExportOnnx"/> when a layer of the network has no ONNX form.</summary>
public sealed class OnnxExportException : NotSupportedException
{
    /// <summary>Creates the exception for <paramref name="layer"/>.</summary>
    public OnnxExportException(Layer layer, string why)
        : base($"ONNX export: layer '{layer.Name ?? layer.Kind}' ({layer.GetType().Name}) has no ONNX form: {why}")
    {
        Layer = layer.Name ?? layer.Kind;
        LayerType = layer.GetType().Name;
    }

    /// <summary>The layer's name.</summary>
    public string Layer { get; }
    /// <summary>The layer's type name.</summary>
    public string LayerType { get; }
}

/// <summary>
/// ONNX export of a built model in evaluation form (opset <see cref="Opset"/>, IR version <see cref="IrVersion"/>):
/// dropout is absent, batch norm uses its running statistics. Every layer exports itself
/// (<see cref="Layer.ExportOnnx"/>); containers recurse.
/// </summary>
public static class OnnxExport
{
    /// <summary>The ONNX operator set the graph is written for (ONNX 1.12).</summary>
    public const int Opset = 17;
    /// <summary>The IR version that goes with <see cref="Opset"/>.</summary>
    public const long IrVersion = 8;

    /// <summary>
    /// Writes <paramref name="model"/> as an ONNX file at <paramref name="path"/>: one float input
    /// (batch, ...<see cref="Model.InputShape"/>) and one float output (batch, ...<see cref="Model.OutputShape"/>) with
    /// a symbolic batch dimension, and the parameters and running statistics as initializers named as in the
    /// checkpoint (<see cref="Model.ParameterTable"/>: <c>fc1.weight</c>, <c>bn1.running_mean</c>). The whole graph is
    /// built in memory first, then written to a temporary file in the same directory and renamed over
    /// <paramref name="path"/>: on any failure nothing is written and an existing file is left as it was.
    /// </summary>
    /// <param name="model">The model, on any device (the weights are read to the host).</param>
    /// <param name="path">The file to write; its directory must exist.</param>
    /// <param name="options">Input, output and batch-dimension names; null for the defaults.</param>
    /// <exception cref="OnnxExportException">A layer has no ONNX form; the message names it, its type and why.</exception>
    /// <exception cref="DirectoryNotFoundException">The directory of <paramref name="path"/> does not exist.</exception>
    /// <exception cref="ArgumentException">An empty name in <paramref name="options"/>, or the input and output share a name.</exception>
    public static void ExportOnnx(this Model model, string path, OnnxExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(path);
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full) ?? throw new ArgumentException($"'{path}' has no directory", nameof(path));
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"ONNX export '{path}': directory '{dir}' does not exist");
        var proto = ToProto(model, options ?? new OnnxExportOptions());

        string temp = Path.Combine(dir, $"{SafeTensorsFormat.TempPrefix(full)}{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                proto.WriteTo(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
            SafeTensorsFormat.FsyncDirectory(dir);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    /// <summary>The ONNX model of <paramref name="model"/>, as <see cref="ExportOnnx"/> writes it.</summary>
    internal static ModelProto ToProto(Model model, OnnxExportOptions options)
    {
        ArgumentException.ThrowIfNullOrEmpty(options.InputName, nameof(options));
        ArgumentException.ThrowIfNullOrEmpty(options.OutputName, nameof(options));
        ArgumentException.ThrowIfNullOrEmpty(options.BatchDimension, nameof(options));
        if (options.InputName == options.OutputName)
            throw new ArgumentException($"OnnxExportOptions: InputName and OutputName are both '{options.InputName}'; they must differ", nameof(options));

        var graph = new OnnxGraph(options.InputName, options.OutputName);
        string output = model.Network.ExportOnnx(graph, options.InputName);
        graph.Rename(output, options.OutputName);
        graph.Proto.Input.Add(OnnxGraph.Value(options.InputName, options.BatchDimension, [null, .. model.InputShape.Select(d => (int?)d)]));
        graph.Proto.Output.Add(OnnxGraph.Value(options.OutputName, options.BatchDimension, [null, .. model.OutputShape.Select(d => (int?)d)]));

        var proto = new ModelProto
        {
            IrVersion = IrVersion,
            ProducerName = "GpuNet",
            ProducerVersion = typeof(OnnxExport).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "",
            Graph = graph.Proto,
        };
        proto.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        return proto;
    }
}
