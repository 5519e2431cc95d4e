namespace GpuNet.Kernels;

/// <summary>Work of one op call: floating-point operations and bytes that must cross the memory bus at least once.</summary>
/// <param name="Flops">Floating-point operations (an FMA counts as 2).</param>
/// <param name="Bytes">Bytes read plus bytes written (compulsory traffic, no cache reuse assumed beyond one pass).</param>
public readonly record struct OpCost(double Flops, double Bytes)
{
    /// <summary>Sum of two costs.</summary>
    public static OpCost operator +(OpCost a, OpCost b) => new(a.Flops + b.Flops, a.Bytes + b.Bytes);
}
