using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using GpuNet.Kernels;
using GpuNet.Nn;
using GpuNet.Optim;
using GpuNet.Training;

namespace GpuNet.Bench;

/// <summary>
/// <c>conv</c>: convolution forward and backward GFLOP/s for typical CNN layers, beside the host GEMM at the same
/// per-sample M, N, K, as a fraction of the measured peak; then training throughput of a small ResNet on synthetic
/// 3x32x32 images (CIFAR-shaped; CIFAR is not reachable here): images/s and MFU.
/// </summary>
internal static class ConvCommand
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    private sealed record Layer(string Name, int C, int K, int H, int Kernel, int Stride, int Pad, bool Depthwise = false);

    private static readonly Layer[] Layers =
    [
        new("3x3 32->64 28x28", 32, 64, 28, 3, 1, 1),
        new("3x3 64->64 14x14", 64, 64, 14, 3, 1, 1),
        new("3x3 3->64 32x32 (ResNet stem)", 3, 64, 32, 3, 1, 1),
        new("3x3 64->64 32x32 (ResNet block)", 64, 64, 32, 3, 1, 1),
        new("1x1 64->128 14x14", 64, 128, 14, 1, 1, 0),
        new("3x3 depthwise 64 28x28", 64, 64, 28, 3, 1, 1, Depthwise: true),
    ];

    public static Command Create()
    {
        var device = Cli.DeviceOption();
        var batch = Cli.IntOption("--batch", "batch size", 64, 1, 4096);
        var reps = Cli.IntOption("--reps", "timed runs per case (the median is reported)", 10, 1, 10000);
        var steps = Cli.IntOption("--steps", "training steps of the ResNet throughput run (0: skip it)", 30, 0, 100000);
        var cmd = new Command("conv", "Convolution GFLOP/s (forward, backward data, backward filter) against the host GEMM and the peak; ResNet training throughput on synthetic 3x32x32 images.")
        {
            device, batch, reps, steps,
        };
        cmd.SetAction(p => Cli.Guard(() => Run(p.GetValue(device), p.GetValue(batch), p.GetValue(reps), p.GetValue(steps))));
        return cmd;
    }

    private static int Run(string? deviceName, int n, int reps, int steps)
    {
        using var d = Cli.OpenDevice(deviceName);
        double? peak = d.IsHost ? Probes.MeasureFma(0.1, trials: 5).TotalGflops : null;
        Console.WriteLine($"device: {d}, batch {n}{(peak is double pk ? string.Create(Inv, $", host FMA peak {pk:F1} GFLOP/s") : "")}");
        var table = new TextTable("layer", "fwd GFLOP/s", "dx GFLOP/s", "dW GFLOP/s", "fwd % peak", "GEMM GFLOP/s", "fwd / GEMM");
        var rng = new Random(1);
        foreach (var l in Layers)
        {
            int p = (l.H + 2 * l.Pad - l.Kernel) / l.Stride + 1;
            int cg = l.Depthwise ? 1 : l.C;
            using var x = d.FromArray(Rand(rng, n * l.C * l.H * l.H), n, l.C, l.H, l.H);
            using var w = d.FromArray(Rand(rng, l.K * cg * l.Kernel * l.Kernel), l.K, cg, l.Kernel, l.Kernel);
            using var y = d.Zeros(n, l.K, p, p);
            using var dx = d.Zeros(n, l.C, l.H, l.H);
            using var dw = d.Zeros(l.K, cg, l.Kernel, l.Kernel);
            double flops = 2.0 * n * l.K * p * p * cg * l.Kernel * l.Kernel;
            var cp = new Conv2dParams(l.Stride, l.Stride, l.Pad, l.Pad, 1, 1, 1);
            Action fwd = l.Depthwise ? () => d.DepthwiseConv2dForward(x, w, null, y, l.Stride, l.Stride, l.Pad, l.Pad) : () => d.Conv2dForward(x, w, null, y, cp);
            Action bwdData = l.Depthwise ? () => d.DepthwiseConv2dBackwardData(y, w, dx, l.Stride, l.Stride, l.Pad, l.Pad) : () => d.Conv2dBackwardData(y, w, dx, cp);
            Action bwdFilter = l.Depthwise ? () => d.DepthwiseConv2dBackwardFilter(x, y, dw, null, l.Stride, l.Stride, l.Pad, l.Pad) : () => d.Conv2dBackwardFilter(x, y, dw, null, cp);
            double f = flops / (GemmCommand.TimeMedian(d, fwd, reps, 2) * 1e6);
            double bd = flops / (GemmCommand.TimeMedian(d, bwdData, reps, 2) * 1e6);
            double bf = flops / (GemmCommand.TimeMedian(d, bwdFilter, reps, 2) * 1e6);
            string gemmText = "-", ratio = "-";
            if (!l.Depthwise)
            {
                // the same work as one GEMM per sample: W (K, C*R*S) x columns (C*R*S, P*Q)
                int m = l.K, nn = p * p, k = l.C * l.Kernel * l.Kernel;
                using var a = d.FromArray(Rand(rng, m * k), m, k);
                using var b = d.FromArray(Rand(rng, k * nn), k, nn);
                using var c = d.Zeros(m, nn);
                double g = 2.0 * m * nn * k / (GemmCommand.TimeMedian(d, () => { for (int i = 0; i < n; i++) d.Gemm(a, b, c); }, reps, 2) / n * 1e6);
                gemmText = g.ToString("F1", Inv);
                ratio = (f / g).ToString("P0", Inv);
            }
            table.Add(l.Name, f.ToString("F1", Inv), bd.ToString("F1", Inv), bf.ToString("F1", Inv),
                peak is double pp ? (f / pp).ToString("P1", Inv) : "n/a", gemmText, ratio);
        }
        table.Write(Console.Out);
        if (steps > 0) Throughput(d, n, steps, peak);
        return Cli.Ok;
    }

    /// <summary>Training throughput of a small ResNet (stem 32, blocks 32, 64/2, 128/2, GAP, 10 classes) on synthetic 3x32x32 images.</summary>
    private static void Throughput(Device d, int n, int steps, double? peak)
    {
        var net = new Sequential(
            new Conv2d(3, 32, 3, padding: 1, bias: false), new BatchNorm2d(32), new ActivationLayer(Activation.Relu),
            Blocks.BasicResidual(32, 32), Blocks.BasicResidual(32, 64, 2), Blocks.BasicResidual(64, 128, 2),
            new GlobalAvgPool(), new Linear(128, 10));
        using var model = Model.Build(d, net, [3, 32, 32], n, new ModelOptions { Seed = 1 });
        using var optimizer = OptimizerFactory.Sgd(model, 0.05, momentum: 0.9, weightDecay: 5e-4);
        var rng = new Random(2);
        using var x = d.FromArray(Rand(rng, n * 3 * 32 * 32), n, 3, 32, 32);
        using var y = d.FromArray(Enumerable.Range(0, n).Select(_ => rng.Next(10)).ToArray(), n);
        using var lossValue = d.Zeros(1);
        var loss = new CrossEntropyLoss();
        double flopsPerSample = model.Summary().TrainingFlopsPerSample;
        for (int i = 0; i < 3; i++) { model.ForwardBackward(x, y, loss, lossValue); optimizer.Step(); }
        d.Synchronize();
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < steps; i++) { model.ForwardBackward(x, y, loss, lossValue); optimizer.Step(); }
        d.Synchronize();
        double seconds = sw.Elapsed.TotalSeconds;
        double images = (double)n * steps / seconds;
        double gflops = images * flopsPerSample / 1e9;
        Console.WriteLine();
        Console.WriteLine(string.Create(Inv, $"small ResNet on synthetic 3x32x32, batch {n}: {model.ParameterCount:N0} parameters, {flopsPerSample / 1e6:F1} MFLOP/image (train)"));
        Console.WriteLine(string.Create(Inv, $"training: {images:F0} images/s, {gflops:F1} GFLOP/s{(peak is double p ? $", MFU {gflops / p:P1}" : "")} ({steps} steps in {seconds:F2} s, loss {lossValue.ToArray()[0]:F3})"));
    }

    private static float[] Rand(Random r, int n)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(r.NextDouble() * 2 - 1);
        return a;
    }
}
