using GpuNet.Kernels;

namespace GpuNet.Nn;

/// <summary>Standard convolutional blocks built from the layers.</summary>
public static class Blocks
{
    /// <summary>
    /// ResNet basic block: conv3x3(stride) + BN + ReLU, conv3x3 + BN, plus the shortcut (identity, or a 1x1 convolution
    /// with stride + BN when the shape changes), then ReLU. Convolutions have no bias (batch norm has one).
    /// </summary>
    public static Layer BasicResidual(int inChannels, int outChannels, int stride = 1, string? name = null)
    {
        string? n(string part) => name is null ? null : $"{name}.{part}";
        var main = new Sequential(n("main"),
            new Conv2d(inChannels, outChannels, 3, stride, 1, bias: false, name: n("conv1")), new BatchNorm2d(outChannels, name: n("bn1")),
            new ActivationLayer(Activation.Relu),
            new Conv2d(outChannels, outChannels, 3, 1, 1, bias: false, name: n("conv2")), new BatchNorm2d(outChannels, name: n("bn2")));
        Layer? shortcut = stride == 1 && inChannels == outChannels ? null
            : new Sequential(n("shortcut"), new Conv2d(inChannels, outChannels, 1, stride, 0, bias: false, name: n("shortcut.conv")),
                new BatchNorm2d(outChannels, name: n("shortcut.bn")));
        return new Sequential(name, new Residual(main, shortcut, n("add")), new ActivationLayer(Activation.Relu));
    }

    /// <summary>
    /// Depthwise-separable block (MobileNet): depthwise 3x3(stride) + BN + ReLU, then pointwise 1x1 + BN + ReLU.
    /// </summary>
    public static Layer DepthwiseSeparable(int inChannels, int outChannels, int stride = 1, string? name = null)
    {
        string? n(string part) => name is null ? null : $"{name}.{part}";
        return new Sequential(name,
            new DepthwiseConv2d(inChannels, 3, stride, 1, bias: false, name: n("dw")), new BatchNorm2d(inChannels, name: n("bn1")),
            new ActivationLayer(Activation.Relu),
            new Conv2d(inChannels, outChannels, 1, bias: false, name: n("pw")), new BatchNorm2d(outChannels, name: n("bn2")),
            new ActivationLayer(Activation.Relu));
    }
}
