using BenchmarkDotNet.Attributes;
using GpuNet.Kernels;

namespace GpuNet.Bench;

// The kernel suite on the cpu device (the SIMD host implementations, through the Engine's validated ops).
// Adding an op: one [Benchmark] method M plus one property `OpCost MCost` built from the op's Cost function in
// GpuNet.Kernels; the GFLOP/s and GB/s columns divide that cost by the measured mean time. `kernels` refuses to run
// when a benchmark has no cost property, so a forgotten one cannot silently print empty columns.

/// <summary>Square SGEMM, C = A B, on the cpu device.</summary>
public class GemmBenchmarks
{
    private Device _device = null!;
    private Tensor _a = null!, _b = null!, _c = null!;

    [Params(256, 512, 1024)]
    public int N { get; set; }

    [GlobalSetup]
    public void Setup() => (_device, _a, _b, _c) = BenchData.SquareGemm(N);

    [GlobalCleanup]
    public void Cleanup() => BenchData.Dispose(_device, _a, _b, _c);

    [Benchmark] public void GemmNN() => _device.Gemm(_a, _b, _c, false, false);
    public OpCost GemmNNCost => GemmOp.Cost(N, N, N);
}

/// <summary>The transposed cases a linear layer uses: NT (forward, X W^T) and TN (weight gradient, dY^T X).</summary>
public class GemmTransposeBenchmarks
{
    private Device _device = null!;
    private Tensor _a = null!, _b = null!, _c = null!;

    [Params(512)]
    public int N { get; set; }

    [GlobalSetup]
    public void Setup() => (_device, _a, _b, _c) = BenchData.SquareGemm(N);

    [GlobalCleanup]
    public void Cleanup() => BenchData.Dispose(_device, _a, _b, _c);

    [Benchmark] public void GemmNT() => _device.Gemm(_a, _b, _c, false, true);
    public OpCost GemmNTCost => GemmOp.Cost(N, N, N);

    [Benchmark] public void GemmTN() => _device.Gemm(_a, _b, _c, true, false);
    public OpCost GemmTNCost => GemmOp.Cost(N, N, N);
}

/// <summary>Bandwidth-bound elementwise ops on the cpu device: 1M floats (12 MB touched, near the caches) and 16M (RAM).</summary>
public class ElementwiseBenchmarks
{
    private Device _device = null!;
    private Tensor _x = null!, _y = null!, _z = null!;

    [Params(1 << 20, 1 << 24)]
    public int N { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _device = Device.Create("cpu");
        _x = _device.FromArray(BenchData.Uniform(N, 3));
        _y = _device.FromArray(BenchData.Uniform(N, 4));
        _z = _device.Zeros(N);
    }

    [GlobalCleanup]
    public void Cleanup() => BenchData.Dispose(_device, _x, _y, _z);

    [Benchmark] public void Add() => _device.Add(_x, _y, _z);
    public OpCost AddCost => ElementwiseOp.Cost(N);

    [Benchmark] public void Mul() => _device.Mul(_x, _y, _z);
    public OpCost MulCost => ElementwiseOp.Cost(N);

    // y += alpha x with alpha tiny so y stays bounded however many times BenchmarkDotNet calls it.
    [Benchmark] public void Axpy() => _device.Axpy(1e-7f, _x, _y);
    public OpCost AxpyCost => ElementwiseOp.AxpyCost(N);
}

internal static class BenchData
{
    /// <summary>The cpu device with a, b: (n, n) uniform in [-1, 1] and c: (n, n) zero.</summary>
    public static (Device Device, Tensor A, Tensor B, Tensor C) SquareGemm(int n)
    {
        var device = Device.Create("cpu");
        return (device, device.FromArray(Uniform(n * n, 1), n, n), device.FromArray(Uniform(n * n, 2), n, n), device.Zeros(n, n));
    }

    public static void Dispose(Device device, params Tensor[] tensors)
    {
        foreach (var t in tensors) t.Dispose();
        device.Dispose();
    }

    public static float[] Uniform(int count, int seed)
    {
        var rng = new Random(seed);
        var x = new float[count];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(2 * rng.NextDouble() - 1);
        return x;
    }
}
