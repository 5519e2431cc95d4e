using GpuNet.Kernels;

namespace GpuNet;

public sealed partial class Device
{
    /// <summary>c = a + b, elementwise; all three have the same element count.</summary>
    public void Add(Tensor a, Tensor b, Tensor c) => Binary(BinaryOp.Add, "Add", a, b, c);
    /// <summary>c = a - b, elementwise.</summary>
    public void Sub(Tensor a, Tensor b, Tensor c) => Binary(BinaryOp.Sub, "Sub", a, b, c);
    /// <summary>c = a * b, elementwise.</summary>
    public void Mul(Tensor a, Tensor b, Tensor c) => Binary(BinaryOp.Mul, "Mul", a, b, c);

    private void Binary(BinaryOp op, string name, Tensor a, Tensor b, Tensor c)
    {
        Check(name, nameof(a), a); Check(name, nameof(b), b); Check(name, nameof(c), c);
        CheckSameLength(name, nameof(b), b, a); CheckSameLength(name, nameof(c), c, a);
        if (c.Length == 0) return;
        Launch().Binary(op, a, b, c);
    }

    /// <summary>y = alpha * x (y may be x).</summary>
    public void Scale(float alpha, Tensor x, Tensor y)
    {
        Check("Scale", nameof(x), x); Check("Scale", nameof(y), y); CheckSameLength("Scale", nameof(y), y, x);
        if (y.Length == 0) return;
        Launch().Scale(alpha, x, y);
    }

    /// <summary>y += alpha * x.</summary>
    public void Axpy(float alpha, Tensor x, Tensor y)
    {
        Check("Axpy", nameof(x), x); Check("Axpy", nameof(y), y); CheckSameLength("Axpy", nameof(y), y, x);
        if (y.Length == 0) return;
        Launch().Axpy(alpha, x, y);
    }

    /// <summary>Sets every element of <paramref name="x"/> to <paramref name="value"/>.</summary>
    public void Fill(Tensor x, float value)
    {
        Check("Fill", nameof(x), x, x.DType);
        if (x.Length == 0) return;
        FillCore(x, value);
    }

    private void FillCore(Tensor x, float value) => Launch().Fill(x, value);

    /// <summary>dst = src (same element count and type; shapes may differ).</summary>
    public void Copy(Tensor src, Tensor dst)
    {
        Check("Copy", nameof(src), src, src.DType); Check("Copy", nameof(dst), dst, src.DType); CheckSameLength("Copy", nameof(dst), dst, src);
        if (dst.Length == 0) return;
        Launch().Copy(src, dst);
    }
}
