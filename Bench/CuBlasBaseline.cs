using ILGPU.Runtime.Cuda;

namespace GpuNet.Bench;

/// <summary>
/// cuBLAS SGEMM through ILGPU.Algorithms, the yardstick for our GEMM on CUDA devices, run in the same process on
/// the same tensors. cuBLAS is column-major: a row-major (R, C) buffer is, to cuBLAS, its (C, R) transpose. So
/// row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: pass B first, then A, keep each op flag, and
/// swap M and N. Leading dimensions are the row lengths of the stored row-major buffers. In TF32 mode the handle's math
/// mode is CUBLAS_TF32_TENSOR_OP_MATH (3; ILGPU.Algorithms 1.5.3's <see cref="CuBlasMathMode"/> names only 0 and 1), so
/// cuBLAS runs SGEMM on TF32 tensor cores, as PyTorch's allow_tf32 does.
/// </summary>
internal sealed class CuBlasBaseline : IDisposable
{
    private readonly CuBlas _blas;

    /// <summary>CUBLAS_TF32_TENSOR_OP_MATH in cublas_api.h (cuBLAS 11+).</summary>
    private const CuBlasMathMode Tf32TensorOpMath = (CuBlasMathMode)3;

    private CuBlasBaseline(Device device, bool tf32)
    {
        // Engine's internal KernelCache holds the device's accelerator (InternalsVisibleTo Bench).
        _blas = new CuBlas((CudaAccelerator)device.Kernels.Accelerator) { PointerMode = CuBlasPointerMode.Host };
        try { if (tf32) _blas.MathMode = Tf32TensorOpMath; }
        catch { _blas.Dispose(); throw; }
    }

    /// <summary>
    /// A baseline for CUDA devices; null for every other kind, or when cuBLAS cannot be loaded (ILGPU needs only the
    /// driver, cuBLAS needs libcublas): then <paramref name="reason"/> says why. <paramref name="tf32"/>: SGEMM in TF32
    /// tensor-op math (CUBLAS_TF32_TENSOR_OP_MATH).
    /// </summary>
    public static CuBlasBaseline? TryCreate(Device device, bool tf32, out string reason)
    {
        reason = "";
        if (device.Kind != DeviceKind.Cuda) return null;
        try { return new CuBlasBaseline(device, tf32); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or CuBlasException or TypeInitializationException)
        {
            reason = $"cuBLAS unavailable, running without the baseline: {e.GetType().Name}: {e.Message}";
            return null;
        }
    }

    /// <summary>c = op(a) op(b); a: (M, K) or (K, M) when transA; b: (K, N) or (N, K) when transB; c: (M, N).</summary>
    public void Sgemm(Tensor a, Tensor b, Tensor c, bool transA, bool transB)
    {
        int m = c.Dim(0), n = c.Dim(1), k = transA ? a.Dim(0) : a.Dim(1);
        var opA = transA ? CuBlasOperation.Transpose : CuBlasOperation.NonTranspose;
        var opB = transB ? CuBlasOperation.Transpose : CuBlasOperation.NonTranspose;
        // Column-major view: C^T (N, M) = op(B)^T (N, K) x op(A)^T (K, M).
        _blas.Gemm(opB, opA, n, m, k, 1f, b.View, transB ? k : n, a.View, transA ? m : k, 0f, c.View, n);
    }

    public void Dispose() => _blas.Dispose();
}
