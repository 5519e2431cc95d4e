using GpuNet.Kernels;
using GpuNet.Nn;

namespace GpuNet.Tests;

/// <summary>
/// A float64 evaluation of a network description from the ops' float64 references: the spec whole models are
/// checked against (loss value, and gradients by central finite differences of this function).
/// </summary>
public static class RefNet
{
    /// <summary>Forward of <paramref name="layer"/> on x: (batch, ...shape); parameters looked up by name.</summary>
    /// <remarks><paramref name="dropoutSeed"/> gives the mask seed of a dropout layer (the model derives one per node).</remarks>
    public static double[] Forward(Layer layer, double[] x, int batch, int[] shape, Func<string, double[]> p, bool training, long step, Func<Dropout, ulong> dropoutSeed)
    {
        switch (layer)
        {
            case Sequential s:
                foreach (var l in s.Layers) { x = Forward(l, x, batch, shape, p, training, step, dropoutSeed); shape = l.OutputShape(shape); }
                return x;
            case Residual r:
                {
                    var main = Forward(r.Block, x, batch, shape, p, training, step, dropoutSeed);
                    var skip = r.Shortcut is null ? x : Forward(r.Shortcut, x, batch, shape, p, training, step, dropoutSeed);
                    return main.Zip(skip, (a, b) => a + b).ToArray();
                }
            case Linear lin:
                {
                    var w = p($"{lin.Name}.weight");
                    var y = new double[batch * lin.OutFeatures];
                    GemmOp.Reference(false, true, batch, lin.OutFeatures, lin.InFeatures, 1, x, w, 0, y,
                        lin.HasBias ? p($"{lin.Name}.bias") : [], Activation.Identity, 0);
                    return y;
                }
            case ActivationLayer a:
                return x.Select(v => ActivationMath.Reference(a.Function, v, a.Alpha)).ToArray();
            case Flatten:
                return x;
            case Conv2d cv:
                {
                    var o = cv.OutputShape(shape);
                    var a = new Conv2dShape
                    {
                        N = batch, C = shape[0], H = shape[1], W = shape[2], K = cv.OutChannels, R = cv.KernelSize, S = cv.KernelSize, P = o[1], Q = o[2],
                        StrideH = cv.Params.StrideH, StrideW = cv.Params.StrideW, PadH = cv.Params.PadH, PadW = cv.Params.PadW,
                        DilH = cv.Params.DilationH, DilW = cv.Params.DilationW, Groups = cv.Params.Groups,
                    };
                    var y = new double[batch * o[0] * o[1] * o[2]];
                    Conv2dOp.Reference(a, x, p($"{cv.Name}.weight"), cv.HasBias ? p($"{cv.Name}.bias") : [], y);
                    return y;
                }
            case DepthwiseConv2d dw:
                {
                    var o = dw.OutputShape(shape);
                    var a = DepthwiseParams.Create(batch, shape[0], shape[1], shape[2], dw.KernelSize, dw.KernelSize, dw.Stride, dw.Stride,
                        dw.Padding, dw.Padding, dw.Dilation, dw.Dilation, dw.HasBias);
                    var y = new double[batch * o[0] * o[1] * o[2]];
                    DepthwiseConv2dOp.Reference(a, x, p($"{dw.Name}.weight"), dw.HasBias ? p($"{dw.Name}.bias") : [], y);
                    return y;
                }
            case MaxPool2d mp:
                {
                    var o = mp.OutputShape(shape);
                    var a = Pool2dArgs.Create(batch, shape[0], shape[1], shape[2], mp.Kernel, mp.Kernel, mp.Stride, mp.Stride, mp.Padding, mp.Padding);
                    var y = new double[batch * o[0] * o[1] * o[2]];
                    MaxPool2dOp.Reference(a, x, y, new int[y.Length]);
                    return y;
                }
            case AvgPool2d ap:
                {
                    var o = ap.OutputShape(shape);
                    var a = Pool2dArgs.Create(batch, shape[0], shape[1], shape[2], ap.Kernel, ap.Kernel, ap.Stride, ap.Stride, ap.Padding, ap.Padding, ap.CountIncludePad);
                    var y = new double[batch * o[0] * o[1] * o[2]];
                    AvgPool2dOp.Reference(a, x, y);
                    return y;
                }
            case GlobalAvgPool:
                {
                    var y = new double[batch * shape[0]];
                    GlobalAvgPoolOp.Reference(batch * shape[0], shape[1] * shape[2], x, y);
                    return y;
                }
            case Dropout d:
                {
                    if (!training || d.P == 0) return x;
                    var y = new double[x.Length];
                    GpuNet.Kernels.DropoutOp.Reference(x, y, d.P, dropoutSeed(d), step);
                    return y;
                }
            case BatchNorm bn:
                {
                    int s = (int)(x.Length / batch / bn.Features);
                    var y = new double[x.Length];
                    var rm = training ? [] : p($"{bn.Name}.running_mean");
                    var rv = training ? [] : p($"{bn.Name}.running_var");
                    GpuNet.Kernels.BatchNormOp.Reference(batch, bn.Features, s, x, p($"{bn.Name}.weight"), p($"{bn.Name}.bias"), rm, rv, [], [], y,
                        training, bn.Momentum, bn.Eps, relu: false);
                    return y;
                }
            default:
                throw new NotSupportedException($"RefNet has no reference for {layer.GetType().Name}");
        }
    }

    /// <summary>The float64 loss of <paramref name="loss"/> on output against targets (float or int).</summary>
    public static double Loss(Loss loss, double[] output, int rows, float[]? targets, int[]? labels)
    {
        int cols = output.Length / rows;
        return loss switch
        {
            CrossEntropyLoss ce => SoftmaxCrossEntropyLossOp.Reference(output, labels, rows, cols, ce.Reduction, ce.LabelSmoothing, []),
            MultiMarginLoss mm => MultiMarginLossOp.Reference(output, labels, rows, cols, mm.Reduction, []),
            MseLoss m => MseLossOp.Reference(output, TestData.D(targets!), m.Reduction, []),
            BceWithLogitsLoss b => BceWithLogitsLossOp.Reference(output, TestData.D(targets!), b.Reduction, []),
            HingeLoss h => HingeLossOp.Reference(output, TestData.D(targets!), h.Reduction, []),
            _ => throw new NotSupportedException(loss.GetType().Name),
        };
    }
}
