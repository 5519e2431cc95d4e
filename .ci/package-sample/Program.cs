// The package check's consumer: trains digits-mlp through the library API of the packed GpuNet.Engine package, exports
// it as ONNX and runs the file in ONNX Runtime on the whole validation split. Exits 1 when the validation accuracy is
// below the floor (argument 2, default 0.90) after N epochs (argument 1), or when ONNX Runtime's logits differ from
// GpuNet's by more than 1e-5 scaled by max(1, |x|) anywhere.
using System.Globalization;
using GpuNet;
using GpuNet.Data;
using GpuNet.Kernels;
using GpuNet.Nn;
using GpuNet.Onnx;
using GpuNet.Training;
using Microsoft.ML.OnnxRuntime;

int epochs = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 5;
double floor = args.Length > 1 ? double.Parse(args[1], CultureInfo.InvariantCulture) : 0.90;

using var device = Device.Create("cpu");
var (train, val) = DataSplit.Stratified(DataSets.Digits(), 0.2, seed: 1);
var std = Standardizer.Fit(train);
var net = new Sequential(new Linear(64, 128, name: "fc1"), new ActivationLayer(Activation.Relu), new Linear(128, 10, name: "out"));
using var model = Model.Build(device, net, inputShape: [64], batchSize: 32, new ModelOptions { Seed = 1 });
using var optimizer = OptimizerFactory.Adam(model, lr: 1e-3);
using var trainData = new DataLoader(device, std.Apply(train), 32, shuffle: true, dropLast: false, seed: 1);
using var valData = new DataLoader(device, std.Apply(val), 32, shuffle: false, dropLast: false, seed: 1);
var trainer = new Trainer(model, new CrossEntropyLoss(), optimizer);
trainer.Fit(trainData, valData, epochs);
double accuracy = trainer.Evaluate(valData).Accuracy!.Value;
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"package sample: digits-mlp, {epochs} epochs on {device.Name}: validation accuracy {accuracy:P2} (floor {floor:P0})"));

// ONNX: export, run the validation split through ONNX Runtime (dynamic batch: all of it at once), compare the logits.
string dir = Directory.CreateTempSubdirectory("gpunet-package-sample-").FullName;
try
{
    string path = Path.Combine(dir, "digits.onnx");
    model.ExportOnnx(path);
    var valStd = std.Apply(val);
    float[] expected = trainer.PredictScores(valData);                  // (n, 10)
    using var session = new InferenceSession(path);
    using var input = OrtValue.CreateTensorValueFromMemory(valStd.Features.ToArray(), [valStd.Count, 64]);
    using var output = session.Run(new RunOptions(), new Dictionary<string, OrtValue> { ["input"] = input }, ["output"]);
    ReadOnlySpan<float> actual = output[0].GetTensorDataAsSpan<float>();
    if (actual.Length != expected.Length)
    {
        Console.WriteLine($"package sample: FAIL: ONNX Runtime gave {actual.Length} logits, GpuNet {expected.Length}");
        return 1;
    }
    double worst = 0;
    for (int i = 0; i < expected.Length; i++)
        worst = Math.Max(worst, Math.Abs(actual[i] - expected[i]) / Math.Max(1.0, Math.Abs(expected[i])));
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"package sample: ONNX export ({new FileInfo(path).Length:N0} bytes) run by ONNX Runtime on {valStd.Count} samples: largest scaled difference {worst:E2} (limit 1e-5)"));
    if (worst > 1e-5) return 1;
}
finally { Directory.Delete(dir, recursive: true); }

return accuracy >= floor ? 0 : 1;
