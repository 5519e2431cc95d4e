using System.Runtime.InteropServices;
using Google.Protobuf;
using GpuNet.Kernels;
using GpuNet.Nn;
using Onnx;

namespace GpuNet.Onnx;

/// <summary>
/// The ONNX graph a model is exported into: each layer's <see cref="Layer.ExportOnnx"/> adds its nodes and
/// initializers here and hands back the name of its output value. Value names are unique (a layer's name, with a
/// suffix when taken); initializers carry the checkpoint's names (<c>fc1.weight</c>) and are added once per tensor, so a
/// layer used twice shares them.
/// </summary>
internal sealed class OnnxGraph
{
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);

    /// <summary>Starts an empty graph whose value names will not take <paramref name="reserved"/> (the graph's input and output).</summary>
    public OnnxGraph(params string[] reserved)
    {
        foreach (var r in reserved) _names.Add(r);
    }

    /// <summary>The graph's nodes, initializers, inputs and outputs.</summary>
    public GraphProto Proto { get; } = new() { Name = "gpunet" };

    /// <summary>
    /// The trainable parameter <paramref name="index"/> of <paramref name="layer"/> (in <see cref="Layer.ParameterSpecs"/>
    /// order) as a float initializer named <c>layer.name</c>, read from the device; returns its name.
    /// </summary>
    public string Parameter(Layer layer, int index) => Initializer($"{layer.Name}.{layer.ParameterSpecs[index].Name}", layer.Parameters[index]);

    /// <summary>The buffer <paramref name="index"/> of <paramref name="layer"/> (running statistics) as an initializer; returns its name.</summary>
    public string Buffer(Layer layer, int index) => Initializer($"{layer.Name}.{layer.BufferSpecs[index].Name}", layer.Buffers[index]);

    /// <summary>
    /// Adds a node of <paramref name="opType"/> reading <paramref name="inputs"/> and returns the name of its one output,
    /// <paramref name="name"/> made unique.
    /// </summary>
    public string Node(string opType, string name, string[] inputs, params AttributeProto[] attributes)
    {
        string output = Unique(name);
        var node = new NodeProto { OpType = opType, Name = output };
        node.Input.AddRange(inputs);
        node.Output.Add(output);
        node.Attribute.AddRange(attributes);
        Proto.Node.Add(node);
        return output;
    }

    /// <summary>A scalar float constant (a <c>Constant</c> node, so that the initializers are exactly the model's tensors).</summary>
    public string Constant(string name, float value) => Node("Constant", name, [], Float("value_float", value));

    /// <summary>An integer attribute.</summary>
    public static AttributeProto Int(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    /// <summary>A float attribute.</summary>
    public static AttributeProto Float(string name, float value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    /// <summary>A list-of-integers attribute.</summary>
    public static AttributeProto Ints(string name, params long[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(values);
        return a;
    }

    /// <summary>
    /// Renames the value <paramref name="from"/> to <paramref name="to"/> (a reserved name) wherever a node writes or
    /// reads it; when no node writes it (an identity network: the input itself), adds an <c>Identity</c> node instead.
    /// </summary>
    public void Rename(string from, string to)
    {
        if (!Proto.Node.Any(n => n.Output.Contains(from)))
        {
            var id = new NodeProto { OpType = "Identity", Name = to };
            id.Input.Add(from);
            id.Output.Add(to);
            Proto.Node.Add(id);
            return;
        }
        foreach (var n in Proto.Node)
        {
            for (int i = 0; i < n.Input.Count; i++) if (n.Input[i] == from) n.Input[i] = to;
            for (int i = 0; i < n.Output.Count; i++) if (n.Output[i] == from) n.Output[i] = to;
        }
    }

    /// <summary>A float tensor value (graph input or output) of shape <paramref name="dims"/>, where a null dimension is <paramref name="symbol"/>.</summary>
    public static ValueInfoProto Value(string name, string symbol, IEnumerable<int?> dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
            shape.Dim.Add(d is int n ? new TensorShapeProto.Types.Dimension { DimValue = n } : new TensorShapeProto.Types.Dimension { DimParam = symbol });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        };
    }

    private string Initializer(string name, Tensor t)
    {
        if (_names.Contains(name))
        {
            if (Proto.Initializer.Any(i => i.Name == name)) return name;   // a shared layer's tensor, added at its first use
            throw new InvalidOperationException($"ONNX export: tensor name '{name}' is already a value name of the graph (the input or output name?)");
        }
        _names.Add(name);
        var init = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        foreach (int d in t.Shape) init.Dims.Add(d);
        init.RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(t.ToArray().AsSpan()));   // little-endian, as ONNX requires
        Proto.Initializer.Add(init);
        return name;
    }

    private string Unique(string name)
    {
        if (_names.Add(name)) return name;
        for (int i = 2; ; i++)
            if (_names.Add($"{name}_{i}")) return $"{name}_{i}";
    }
}

/// <summary>An activation's ONNX operators into an <see cref="OnnxGraph"/>, every value named after the layer.</summary>
internal sealed class OnnxActivationWriter(OnnxGraph graph, string layerName) : IOnnxWriter
{
    /// <inheritdoc/>
    public string Op(string opType, string[] inputs, float? alpha = null)
        => alpha is float a ? graph.Node(opType, layerName, inputs, OnnxGraph.Float("alpha", a)) : graph.Node(opType, layerName, inputs);

    /// <inheritdoc/>
    public string Constant(float value) => graph.Constant($"{layerName}.const", value);
}
