using GpuNet.Kernels;

namespace GpuNet;

public sealed partial class Device
{
    // Depthwise 2-D convolution, NCHW, channel multiplier 1: x (N, C, H, W), w (C, 1, R, S), b (C), y (N, C, P, Q) with
    // P = (H + 2 padH - dilationH (R - 1) - 1) / strideH + 1 and Q likewise.

    /// <summary>
    /// Depthwise convolution forward: y[n,c,p,q] = b[c] + sum_{r,s} w[c,0,r,s] * x[n,c, p*strideH - padH + r*dilationH,
    /// q*strideW - padW + s*dilationW] with zero padding. x: (N, C, H, W); w: (C, 1, R, S); b: (C) or null; y: (N, C, P, Q)
    /// (overwritten).
    /// </summary>
    /// <exception cref="ShapeMismatchException">A tensor's shape does not fit x and w.</exception>
    /// <exception cref="ArgumentOutOfRangeException">Stride or dilation &lt; 1, padding &lt; 0, or an empty output.</exception>
    public void DepthwiseConv2dForward(Tensor x, Tensor w, Tensor? b, Tensor y, int strideH, int strideW, int padH, int padW,
        int dilationH = 1, int dilationW = 1)
    {
        const string op = "DepthwiseConv2dForward";
        Check(op, nameof(x), x); Check(op, nameof(w), w); Check(op, nameof(y), y);
        var (n, c, h, wd) = DepthwiseDims(op, nameof(x), x);
        var (r, s) = DepthwiseFilter(op, w, c);
        if (b is not null) { Check(op, nameof(b), b); CheckShape(op, nameof(b), b, c); }
        var a = DepthwiseArgs(op, n, c, h, wd, r, s, strideH, strideW, padH, padW, dilationH, dilationW, b is not null);
        CheckShape(op, nameof(y), y, n, c, a.P, a.Q);
        if (y.Length == 0) return;
        Launch().DepthwiseConv2dForward(a, x, w, b, y);
    }

    /// <summary>
    /// Depthwise convolution backward to the input (overwrites dx =): dx[n,c,h,w] = sum of dy[n,c,p,q] * w[c,0,r,s] over
    /// the (p, q, r, s) whose forward read x[n,c,h,w]. dy: (N, C, P, Q); w: (C, 1, R, S); dx: (N, C, H, W) (its H and W
    /// pick the input size, which a stride &gt; 1 leaves ambiguous).
    /// </summary>
    /// <exception cref="ShapeMismatchException">A tensor's shape does not fit dx and w.</exception>
    /// <exception cref="ArgumentOutOfRangeException">Stride or dilation &lt; 1, padding &lt; 0, or an empty output.</exception>
    public void DepthwiseConv2dBackwardData(Tensor dy, Tensor w, Tensor dx, int strideH, int strideW, int padH, int padW,
        int dilationH = 1, int dilationW = 1)
    {
        const string op = "DepthwiseConv2dBackwardData";
        Check(op, nameof(dy), dy); Check(op, nameof(w), w); Check(op, nameof(dx), dx);
        var (n, c, h, wd) = DepthwiseDims(op, nameof(dx), dx);
        var (r, s) = DepthwiseFilter(op, w, c);
        var a = DepthwiseArgs(op, n, c, h, wd, r, s, strideH, strideW, padH, padW, dilationH, dilationW, false);
        CheckShape(op, nameof(dy), dy, n, c, a.P, a.Q);
        if (dx.Length == 0) return;
        Launch().DepthwiseConv2dBackwardData(a, dy, w, dx);
    }

    /// <summary>
    /// Depthwise convolution backward to the parameters (accumulates +=): dw[c,0,r,s] += sum_{n,p,q} dy[n,c,p,q] *
    /// x[n,c, p*strideH - padH + r*dilationH, q*strideW - padW + s*dilationW] and, when <paramref name="db"/> is given,
    /// db[c] += sum_{n,p,q} dy[n,c,p,q]. x: (N, C, H, W); dy: (N, C, P, Q); dw: (C, 1, R, S); db: (C) or null.
    /// Deterministic: per-channel reductions in a fixed order (no float atomics).
    /// </summary>
    /// <exception cref="ShapeMismatchException">A tensor's shape does not fit x and dw.</exception>
    /// <exception cref="ArgumentOutOfRangeException">Stride or dilation &lt; 1, padding &lt; 0, or an empty output.</exception>
    public void DepthwiseConv2dBackwardFilter(Tensor x, Tensor dy, Tensor dw, Tensor? db, int strideH, int strideW, int padH, int padW,
        int dilationH = 1, int dilationW = 1)
    {
        const string op = "DepthwiseConv2dBackwardFilter";
        Check(op, nameof(x), x); Check(op, nameof(dy), dy); Check(op, nameof(dw), dw);
        var (n, c, h, wd) = DepthwiseDims(op, nameof(x), x);
        var (r, s) = DepthwiseFilter(op, dw, c, nameof(dw));
        if (db is not null) { Check(op, nameof(db), db); CheckShape(op, nameof(db), db, c); }
        var a = DepthwiseArgs(op, n, c, h, wd, r, s, strideH, strideW, padH, padW, dilationH, dilationW, db is not null);
        CheckShape(op, nameof(dy), dy, n, c, a.P, a.Q);
        if (dw.Length == 0) return;
        Launch().DepthwiseConv2dBackwardFilter(a, x, dy, dw, db);
    }

    private static (int N, int C, int H, int W) DepthwiseDims(string op, string argument, Tensor t)
    {
        if (t.Rank != 4)
            throw new ShapeMismatchException(op, "(N, C, H, W)", ShapeUtil.Format(t.Shape), $"argument '{argument}' must have rank 4 (NCHW)");
        return (t.Dim(0), t.Dim(1), t.Dim(2), t.Dim(3));
    }

    private static (int R, int S) DepthwiseFilter(string op, Tensor w, int channels, string argument = "w")
    {
        if (w.Rank != 4 || w.Dim(0) != channels || w.Dim(1) != 1 || w.Dim(2) < 1 || w.Dim(3) < 1)
            throw new ShapeMismatchException(op, $"({channels}, 1, R, S) with R, S >= 1", ShapeUtil.Format(w.Shape),
                $"argument '{argument}' must be one R x S filter per channel (channel multiplier 1)");
        return (w.Dim(2), w.Dim(3));
    }

    private static DepthwiseParams DepthwiseArgs(string op, int n, int c, int h, int w, int r, int s, int strideH, int strideW,
        int padH, int padW, int dilationH, int dilationW, bool bias)
    {
        static void AtLeast(string op, string name, int value, int min)
        {
            if (value < min) throw new ArgumentOutOfRangeException(name, value, $"{op}: {name} must be >= {min}, got {value}");
        }
        AtLeast(op, nameof(strideH), strideH, 1); AtLeast(op, nameof(strideW), strideW, 1);
        AtLeast(op, nameof(padH), padH, 0); AtLeast(op, nameof(padW), padW, 0);
        AtLeast(op, nameof(dilationH), dilationH, 1); AtLeast(op, nameof(dilationW), dilationW, 1);
        var a = DepthwiseParams.Create(n, c, h, w, r, s, strideH, strideW, padH, padW, dilationH, dilationW, bias);
        if (a.P < 1 || a.Q < 1)
            throw new ArgumentOutOfRangeException(a.P < 1 ? "padH" : "padW", a.P < 1 ? padH : padW,
                $"{op}: input {h}x{w} with padding ({padH}, {padW}) is smaller than the dilated {r}x{s} filter " +
                $"({dilationH * (r - 1) + 1}x{dilationW * (s - 1) + 1}): output would be {a.P}x{a.Q}");
        return a;
    }
}
