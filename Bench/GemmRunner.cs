using GpuNet.Kernels;

namespace GpuNet.Bench;

/// <summary>
/// The one place the benchmarks call a GEMM: C = op(A) op(B), alpha 1, beta 0, no bias, identity activation.
/// a: (M, K), or (K, M) when transA; b: (K, N), or (N, K) when transB; c: (M, N); row-major, contiguous.
/// </summary>
internal static class GemmRunner
{
    public static void Run(Device device, Tensor a, Tensor b, Tensor c, bool transA, bool transB)
    {
        if (device.IsHost)
        {
            int m = c.Dim(0), n = c.Dim(1), k = transA ? a.Dim(0) : a.Dim(1);
            Gemm.Host(transA, transB, m, n, k, 1f, a.Host, b.Host, 0f, c.Host, ArraySegment<float>.Empty, Activation.Identity, 0f);
        }
        else OnAccelerator(device, a, b, c, transA, transB);
    }

    // ILGPU devices (cuda, opencl, ilgpu-cpu). Device.Gemm (Engine/Device.Gemm.cs) is written on another branch:
    // once merged, the body of OnAccelerator becomes `=> device.Gemm(a, b, c, transA, transB);`.
    private static void OnAccelerator(Device device, Tensor a, Tensor b, Tensor c, bool transA, bool transB)
        => throw new NotSupportedException($"gemm on '{device.Name}' needs Device.Gemm, which this build does not have yet (a {a}, b {b}, c {c}, transA {transA}, transB {transB})");
}
