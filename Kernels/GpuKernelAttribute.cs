namespace GpuNet.Kernels;

/// <summary>
/// Marks a static method as an ILGPU kernel of the product. The PTX (ptxas) and OpenCL (clang) compile tests
/// discover every method carrying this attribute, so a new kernel cannot be left out of those checks.
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false)]
public sealed class GpuKernelAttribute : Attribute
{
    /// <summary>True for explicitly grouped kernels (no index parameter; may use shared memory and barriers).</summary>
    public bool ExplicitlyGrouped { get; init; }
}
