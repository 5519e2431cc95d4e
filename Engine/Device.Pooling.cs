using GpuNet.Kernels;

namespace GpuNet;

public sealed partial class Device
{
    // Pooling over NCHW tensors: x (N, C, H, W) -> y (N, C, P, Q), P = (H + 2 padH - kernelH) / strideH + 1 and
    // Q = (W + 2 padW - kernelW) / strideW + 1 (PyTorch, ceil_mode false). Backward ops take the input's geometry from dx.

    /// <summary>
    /// Max pooling forward. x: (N, C, H, W); y and <paramref name="indices"/> (Int32): (N, C, P, Q). indices receives
    /// the flat position h * W + w of each window's maximum within its input plane (PyTorch's return_indices), for
    /// <see cref="MaxPool2dBackward"/>. Padding counts as -inf; ties keep the first maximum in row-major window order;
    /// a NaN in the window wins (y is NaN).
    /// </summary>
    /// <exception cref="ShapeMismatchException">x is not rank 4 with C, H, W &gt;= 1, or y / indices is not (N, C, P, Q).</exception>
    /// <exception cref="ArgumentOutOfRangeException">kernel or stride &lt; 1, padding &lt; 0 or &gt; kernel / 2.</exception>
    /// <exception cref="ArgumentException">The padded input is smaller than the window (no output), or indices is not Int32.</exception>
    public void MaxPool2dForward(Tensor x, Tensor y, Tensor indices, int kernelH, int kernelW, int strideH, int strideW, int padH = 0, int padW = 0)
    {
        var a = Pool2dChecks("MaxPool2dForward", nameof(x), x, nameof(y), y, indices, kernelH, kernelW, strideH, strideW, padH, padW, true);
        if (a.N > 0) Launch().MaxPool2dForward(a, x, y, indices);
    }

    /// <summary>
    /// Max pooling backward: dx = 0 except dx[n, c, h, w] = sum of dy[n, c, p, q] over the windows whose saved index
    /// is h * W + w (overwrites dx; deterministic, overlapping windows included). dy, indices: (N, C, P, Q) as written by
    /// <see cref="MaxPool2dForward"/> with the same window parameters; dx: (N, C, H, W), the forward's input shape.
    /// An index outside its window is ignored.
    /// </summary>
    /// <exception cref="ShapeMismatchException">dx is not rank 4 with C, H, W &gt;= 1, or dy / indices is not (N, C, P, Q).</exception>
    /// <exception cref="ArgumentOutOfRangeException">kernel or stride &lt; 1, padding &lt; 0 or &gt; kernel / 2.</exception>
    /// <exception cref="ArgumentException">The padded input is smaller than the window, or indices is not Int32.</exception>
    public void MaxPool2dBackward(Tensor dy, Tensor indices, Tensor dx, int kernelH, int kernelW, int strideH, int strideW, int padH = 0, int padW = 0)
    {
        var a = Pool2dChecks("MaxPool2dBackward", nameof(dx), dx, nameof(dy), dy, indices, kernelH, kernelW, strideH, strideW, padH, padW, true);
        if (a.N > 0) Launch().MaxPool2dBackward(a, dy, indices, dx);
    }

    /// <summary>
    /// Average pooling forward. x: (N, C, H, W); y: (N, C, P, Q). Each output is its window's sum (padding adds zeros)
    /// divided by kernelH * kernelW when <paramref name="countIncludePad"/> (PyTorch's default), else by the number of
    /// input elements in the window.
    /// </summary>
    /// <exception cref="ShapeMismatchException">x is not rank 4 with C, H, W &gt;= 1, or y is not (N, C, P, Q).</exception>
    /// <exception cref="ArgumentOutOfRangeException">kernel or stride &lt; 1, padding &lt; 0 or &gt; kernel / 2.</exception>
    /// <exception cref="ArgumentException">The padded input is smaller than the window.</exception>
    public void AvgPool2dForward(Tensor x, Tensor y, int kernelH, int kernelW, int strideH, int strideW, int padH = 0, int padW = 0, bool countIncludePad = true)
    {
        var a = Pool2dChecks("AvgPool2dForward", nameof(x), x, nameof(y), y, null, kernelH, kernelW, strideH, strideW, padH, padW, countIncludePad);
        if (a.N > 0) Launch().AvgPool2dForward(a, x, y);
    }

    /// <summary>
    /// Average pooling backward: dx[n, c, h, w] = sum over the windows containing (h, w) of dy[n, c, p, q] / count
    /// (overwrites dx), with the forward's window parameters and divisor rule. dy: (N, C, P, Q); dx: (N, C, H, W).
    /// </summary>
    /// <exception cref="ShapeMismatchException">dx is not rank 4 with C, H, W &gt;= 1, or dy is not (N, C, P, Q).</exception>
    /// <exception cref="ArgumentOutOfRangeException">kernel or stride &lt; 1, padding &lt; 0 or &gt; kernel / 2.</exception>
    /// <exception cref="ArgumentException">The padded input is smaller than the window.</exception>
    public void AvgPool2dBackward(Tensor dy, Tensor dx, int kernelH, int kernelW, int strideH, int strideW, int padH = 0, int padW = 0, bool countIncludePad = true)
    {
        var a = Pool2dChecks("AvgPool2dBackward", nameof(dx), dx, nameof(dy), dy, null, kernelH, kernelW, strideH, strideW, padH, padW, countIncludePad);
        if (a.N > 0) Launch().AvgPool2dBackward(a, dy, dx);
    }

    /// <summary>Global average pooling forward: x: (N, C, H, W) -> y: (N, C), the mean of each H x W plane.</summary>
    /// <exception cref="ShapeMismatchException">x is not rank 4, or y is not (N, C).</exception>
    /// <exception cref="ArgumentException">H * W = 0 with N * C &gt; 0 (the mean of nothing).</exception>
    public void GlobalAvgPoolForward(Tensor x, Tensor y)
    {
        var (planes, size) = GlobalPoolChecks("GlobalAvgPoolForward", nameof(x), x, nameof(y), y);
        if (planes > 0) Launch().GlobalAvgPoolForward(planes, size, x, y);
    }

    /// <summary>Global average pooling backward: dx[n, c, h, w] = dy[n, c] / (H * W) (overwrites dx). dy: (N, C); dx: (N, C, H, W) gives H and W.</summary>
    /// <exception cref="ShapeMismatchException">dx is not rank 4, or dy is not (N, C).</exception>
    /// <exception cref="ArgumentException">H * W = 0 with N * C &gt; 0.</exception>
    public void GlobalAvgPoolBackward(Tensor dy, Tensor dx)
    {
        var (planes, size) = GlobalPoolChecks("GlobalAvgPoolBackward", nameof(dx), dx, nameof(dy), dy);
        if (planes > 0) Launch().GlobalAvgPoolBackward(planes, size, dy, dx);
    }

    // t: (N, C, H, W) (x for the forward, dx for the backward); pooled: (N, C) (y or dy).
    private (int Planes, int Size) GlobalPoolChecks(string op, string argument, Tensor t, string pooledName, Tensor pooled)
    {
        Check(op, argument, t); Check(op, pooledName, pooled);
        if (t.Rank != 4)
            throw new ShapeMismatchException(op, "(N, C, H, W)", ShapeUtil.Format(t.Shape), $"argument '{argument}' must have rank 4");
        int planes = t.Dim(0) * t.Dim(1), size = t.Dim(2) * t.Dim(3);   // both <= t.Length <= int.MaxValue when nonzero
        if (planes > 0 && size == 0)
            throw new ArgumentException($"{op}: '{argument}' has empty planes (H, W) = ({t.Dim(2)}, {t.Dim(3)}): the mean needs H * W >= 1", argument);
        CheckShape(op, pooledName, pooled, t.Dim(0), t.Dim(1));
        return (planes, size);
    }

    // Checks the tensors and validates the window against the input (N, C, H, W) of t (x for forwards, dx for
    // backwards), PyTorch's rules; pooled (y or dy) and the max pool's int32 indices must be (N, C, P, Q). Only the
    // batch may be 0, so the op has work exactly when N > 0.
    private Pool2dArgs Pool2dChecks(string op, string argument, Tensor t, string pooledName, Tensor pooled, Tensor? indices,
        int kernelH, int kernelW, int strideH, int strideW, int padH, int padW, bool countIncludePad)
    {
        Check(op, argument, t); Check(op, pooledName, pooled);
        if (indices is not null) Check(op, nameof(indices), indices, DType.Int32);
        if (t.Rank != 4)
            throw new ShapeMismatchException(op, "(N, C, H, W)", ShapeUtil.Format(t.Shape), $"argument '{argument}' must have rank 4");
        if (t.Dim(1) == 0 || t.Dim(2) == 0 || t.Dim(3) == 0)
            throw new ShapeMismatchException(op, "(N, C, H, W) with C, H, W >= 1", ShapeUtil.Format(t.Shape), $"argument '{argument}' has an empty channel or spatial dimension (only the batch may be 0, as in PyTorch)");
        PositiveWindow(op, nameof(kernelH), kernelH); PositiveWindow(op, nameof(kernelW), kernelW);
        PositiveWindow(op, nameof(strideH), strideH); PositiveWindow(op, nameof(strideW), strideW);
        Padding(op, nameof(padH), padH, kernelH, nameof(kernelH)); Padding(op, nameof(padW), padW, kernelW, nameof(kernelW));
        int h = t.Dim(2), w = t.Dim(3);
        if ((long)h + 2L * padH < kernelH || (long)w + 2L * padW < kernelW)
            throw new ArgumentException($"{op}: the padded input (H + 2 padH, W + 2 padW) = ({(long)h + 2L * padH}, {(long)w + 2L * padW}) of '{argument}' {ShapeUtil.Format(t.Shape)} " +
                $"is smaller than the window (kernelH, kernelW) = ({kernelH}, {kernelW}): the output size would be < 1", argument);
        var a = Pool2dArgs.Create(t.Dim(0), t.Dim(1), h, w, kernelH, kernelW, strideH, strideW, padH, padW, countIncludePad);
        CheckShape(op, pooledName, pooled, a.N, a.C, a.P, a.Q);
        if (indices is not null) CheckShape(op, nameof(indices), indices, a.N, a.C, a.P, a.Q);
        return a;
    }

    private static void PositiveWindow(string op, string name, int value)
    {
        if (value < 1) throw new ArgumentOutOfRangeException(name, value, $"{op}: {name} must be >= 1, got {value}");
    }

    private static void Padding(string op, string name, int pad, int kernel, string kernelName)
    {
        if (pad < 0 || pad > kernel / 2)
            throw new ArgumentOutOfRangeException(name, pad, $"{op}: {name} must be in [0, {kernelName} / 2] = [0, {kernel / 2}] (pad should be at most half of the kernel size), got {pad}");
    }
}
