using GpuNet.Kernels;

namespace GpuNet;

/// <summary>
/// Hyperparameters of a 2-D convolution (PyTorch's Conv2d): stride, zero padding and dilation per axis, and groups.
/// <c>new Conv2dParams()</c> is stride 1, no padding, dilation 1, one group; <c>default</c> (all zeros) is invalid.
/// </summary>
/// <param name="StrideH">Vertical stride (&gt;= 1).</param>
/// <param name="StrideW">Horizontal stride (&gt;= 1).</param>
/// <param name="PadH">Zero rows added above and below (&gt;= 0).</param>
/// <param name="PadW">Zero columns added left and right (&gt;= 0).</param>
/// <param name="DilationH">Vertical spacing of the kernel taps (&gt;= 1).</param>
/// <param name="DilationW">Horizontal spacing of the kernel taps (&gt;= 1).</param>
/// <param name="Groups">Channel groups (&gt;= 1); input and output channels must both be divisible by it.</param>
public readonly record struct Conv2dParams(int StrideH = 1, int StrideW = 1, int PadH = 0, int PadW = 0,
    int DilationH = 1, int DilationW = 1, int Groups = 1)
{
    /// <summary>Stride 1, no padding, dilation 1, one group.</summary>
    public Conv2dParams() : this(1, 1, 0, 0, 1, 1, 1) { }

    /// <summary>The same stride, padding and dilation on both axes.</summary>
    public static Conv2dParams Square(int stride = 1, int padding = 0, int dilation = 1, int groups = 1)
        => new(stride, stride, padding, padding, dilation, dilation, groups);

    /// <summary>
    /// Output length along one axis: (input + 2 padding - dilation (kernel - 1) - 1) / stride + 1, or 0 when the dilated
    /// kernel does not fit in the padded input.
    /// </summary>
    public static int OutputSize(int input, int kernel, int stride, int padding, int dilation)
    {
        long span = (long)input + 2L * padding - (long)dilation * (kernel - 1) - 1;
        return span < 0 || stride < 1 ? 0 : (int)(span / stride + 1);
    }

    /// <summary>The output shape (N, K, P, Q) for x (N, C, H, W) and w (K, C/groups, R, S) (shapes are not validated).</summary>
    public int[] OutputShape(ReadOnlySpan<int> x, ReadOnlySpan<int> w)
        => [x[0], w[0], OutputSize(x[2], w[2], StrideH, PadH, DilationH), OutputSize(x[3], w[3], StrideW, PadW, DilationW)];
}

public sealed partial class Device
{
    /// <summary>
    /// 2-D convolution forward (cross-correlation, as PyTorch's conv2d), NCHW: y = conv(x, w) + b.
    /// </summary>
    /// <param name="x">Input (N, C, H, W).</param>
    /// <param name="w">Filters (K, C/groups, R, S).</param>
    /// <param name="b">Optional bias (K).</param>
    /// <param name="y">Output (N, K, P, Q), overwritten, with P = <see cref="Conv2dParams.OutputSize"/>(H, R, StrideH, PadH, DilationH), Q likewise.</param>
    /// <param name="p">Stride, padding, dilation, groups.</param>
    /// <exception cref="ShapeMismatchException">A tensor is not 4-D (b: 1-D) or its shape does not fit the others.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A hyperparameter is out of range (stride, dilation, groups &lt; 1, padding &lt; 0).</exception>
    /// <exception cref="ArgumentException">Channels not divisible by groups, kernel larger than the padded input, y overlaps x or w,
    /// or a tensor on another device.</exception>
    public void Conv2dForward(Tensor x, Tensor w, Tensor? b, Tensor y, Conv2dParams p)
    {
        const string op = "Conv2dForward";
        Check(op, nameof(x), x); Check(op, nameof(w), w); Check(op, nameof(y), y);
        var s = Conv2dShapeOf(op, p, x, nameof(x), w, nameof(w));
        CheckShape(op, nameof(y), y, s.N, s.K, s.P, s.Q);
        if (b is not null) { Check(op, nameof(b), b); CheckShape(op, nameof(b), b, s.K); }
        CheckNoOverlap(op, nameof(y), y, nameof(x), x);
        CheckNoOverlap(op, nameof(y), y, nameof(w), w);
        if (b is not null) CheckNoOverlap(op, nameof(y), y, nameof(b), b);
        if (y.Length == 0) return;
        Launch().Conv2dForward(s, x, w, b, y);
    }

    /// <summary>
    /// 2-D convolution backward with respect to the input: dx = the gradient of sum(dy * conv(x, w)) in x.
    /// dx is an activation gradient: it is overwritten (=).
    /// </summary>
    /// <param name="dy">Gradient of the output (N, K, P, Q).</param>
    /// <param name="w">Filters (K, C/groups, R, S).</param>
    /// <param name="dx">Gradient of the input (N, C, H, W), overwritten; its shape gives H and W.</param>
    /// <param name="p">Stride, padding, dilation, groups (as in the forward).</param>
    /// <exception cref="ShapeMismatchException">A tensor is not 4-D or its shape does not fit the others.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A hyperparameter is out of range.</exception>
    /// <exception cref="ArgumentException">Channels not divisible by groups, kernel larger than the padded input, dx overlaps dy or w.</exception>
    public void Conv2dBackwardData(Tensor dy, Tensor w, Tensor dx, Conv2dParams p)
    {
        const string op = "Conv2dBackwardData";
        Check(op, nameof(dy), dy); Check(op, nameof(w), w); Check(op, nameof(dx), dx);
        var s = Conv2dShapeOf(op, p, dx, nameof(dx), w, nameof(w));
        CheckShape(op, nameof(dy), dy, s.N, s.K, s.P, s.Q);
        CheckNoOverlap(op, nameof(dx), dx, nameof(dy), dy);
        CheckNoOverlap(op, nameof(dx), dx, nameof(w), w);
        if (dx.Length == 0) return;
        Launch().Conv2dBackwardData(s, dy, w, dx);
    }

    /// <summary>
    /// 2-D convolution backward with respect to the parameters: dw += the gradient of sum(dy * conv(x, w)) in w, and
    /// db += sum of dy over (N, P, Q) when given. Parameter gradients accumulate (+=).
    /// </summary>
    /// <param name="x">The forward's input (N, C, H, W).</param>
    /// <param name="dy">Gradient of the output (N, K, P, Q).</param>
    /// <param name="dw">Filter gradient (K, C/groups, R, S), accumulated; its shape gives R and S.</param>
    /// <param name="db">Optional bias gradient (K), accumulated.</param>
    /// <param name="p">Stride, padding, dilation, groups (as in the forward).</param>
    /// <exception cref="ShapeMismatchException">A tensor is not 4-D (db: 1-D) or its shape does not fit the others.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A hyperparameter is out of range.</exception>
    /// <exception cref="ArgumentException">Channels not divisible by groups, kernel larger than the padded input, dw or db overlaps an input.</exception>
    public void Conv2dBackwardFilter(Tensor x, Tensor dy, Tensor dw, Tensor? db, Conv2dParams p)
    {
        const string op = "Conv2dBackwardFilter";
        Check(op, nameof(x), x); Check(op, nameof(dy), dy); Check(op, nameof(dw), dw);
        var s = Conv2dShapeOf(op, p, x, nameof(x), dw, nameof(dw));
        CheckShape(op, nameof(dy), dy, s.N, s.K, s.P, s.Q);
        if (db is not null) { Check(op, nameof(db), db); CheckShape(op, nameof(db), db, s.K); }
        CheckNoOverlap(op, nameof(dw), dw, nameof(x), x);
        CheckNoOverlap(op, nameof(dw), dw, nameof(dy), dy);
        if (db is not null)
        {
            CheckNoOverlap(op, nameof(db), db, nameof(x), x); CheckNoOverlap(op, nameof(db), db, nameof(dy), dy);
            CheckNoOverlap(op, nameof(db), db, nameof(dw), dw);
        }
        if (s.N == 0 || dw.Length == 0 && db is null) return;
        Launch().Conv2dBackwardFilter(s, x, dy, dw, db);
    }

    /// <summary>
    /// Validates the hyperparameters and the shapes of the input-side tensor <paramref name="x"/> (x or dx: (N, C, H, W))
    /// and the filter-side tensor <paramref name="w"/> (w or dw: (K, C/groups, R, S)); returns the kernels' shape.
    /// </summary>
    private static Conv2dShape Conv2dShapeOf(string op, Conv2dParams p, Tensor x, string xName, Tensor w, string wName)
    {
        CheckAtLeast(op, "StrideH", p.StrideH, 1); CheckAtLeast(op, "StrideW", p.StrideW, 1);
        CheckAtLeast(op, "PadH", p.PadH, 0); CheckAtLeast(op, "PadW", p.PadW, 0);
        CheckAtLeast(op, "DilationH", p.DilationH, 1); CheckAtLeast(op, "DilationW", p.DilationW, 1);
        CheckAtLeast(op, "Groups", p.Groups, 1);
        if (x.Rank != 4)
            throw new ShapeMismatchException(op, "(N, C, H, W)", ShapeUtil.Format(x.Shape), $"argument '{xName}' must be 4-D (NCHW), it has rank {x.Rank}");
        if (w.Rank != 4)
            throw new ShapeMismatchException(op, "(K, C/groups, R, S)", ShapeUtil.Format(w.Shape), $"argument '{wName}' must be 4-D, it has rank {w.Rank}");
        int n = x.Dim(0), c = x.Dim(1), h = x.Dim(2), wi = x.Dim(3), k = w.Dim(0), r = w.Dim(2), sz = w.Dim(3);
        if (c < 1)
            throw new ShapeMismatchException(op, "(N, C >= 1, H, W)", ShapeUtil.Format(x.Shape), $"argument '{xName}' must have at least one channel");
        if (c % p.Groups != 0)
            throw new ArgumentException($"{op}: the input channels of '{xName}' {ShapeUtil.Format(x.Shape)} must be divisible by p.Groups = {p.Groups}; C = {c}", nameof(p));
        if (k % p.Groups != 0)
            throw new ArgumentException($"{op}: the output channels of '{wName}' {ShapeUtil.Format(w.Shape)} must be divisible by p.Groups = {p.Groups}; K = {k}", nameof(p));
        if (w.Dim(1) != c / p.Groups || r < 1 || sz < 1)
            throw new ShapeMismatchException(op, $"({k}, {c / p.Groups}, R >= 1, S >= 1)", ShapeUtil.Format(w.Shape),
                $"argument '{wName}' must be (K, C/groups, R, S) with C = {c} from '{xName}' {ShapeUtil.Format(x.Shape)} and groups = {p.Groups}");
        int outH = Conv2dParams.OutputSize(h, r, p.StrideH, p.PadH, p.DilationH);
        int outW = Conv2dParams.OutputSize(wi, sz, p.StrideW, p.PadW, p.DilationW);
        if (outH < 1 || outW < 1)
            throw new ArgumentException($"{op}: the dilated kernel ({(long)p.DilationH * (r - 1) + 1}, {(long)p.DilationW * (sz - 1) + 1}) of '{wName}' {ShapeUtil.Format(w.Shape)} " +
                $"does not fit the padded input ({(long)h + 2L * p.PadH}, {(long)wi + 2L * p.PadW}) of '{xName}' {ShapeUtil.Format(x.Shape)}: output size ({outH}, {outW}), expected >= 1", xName);
        long colFloats = (long)c * r * sz * outH * outW;
        if (colFloats > int.MaxValue)
            throw new ArgumentOutOfRangeException(xName, colFloats, $"{op}: one sample's im2col matrix (C R S, P Q) would hold {colFloats} floats, at most {int.MaxValue}");
        return new Conv2dShape
        {
            N = n, C = c, H = h, W = wi, K = k, R = r, S = sz, P = outH, Q = outW,
            StrideH = p.StrideH, StrideW = p.StrideW, PadH = p.PadH, PadW = p.PadW,
            DilH = p.DilationH, DilW = p.DilationW, Groups = p.Groups,
        };
    }

    private static void CheckAtLeast(string op, string field, int value, int min)
    {
        if (value < min)
            throw new ArgumentOutOfRangeException("p", value, $"{op}: p.{field} must be >= {min}, got {value}");
    }
}
