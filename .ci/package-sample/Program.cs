// The package check's consumer: trains digits-mlp through the library API of the packed GpuNet.Engine package and
// exits 1 when the validation accuracy is below the floor (argument 2, default 0.90) after N epochs (argument 1).
using System.Globalization;
using GpuNet;
using GpuNet.Data;
using GpuNet.Kernels;
using GpuNet.Nn;
using GpuNet.Training;

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

// ONNX: the export of this model and its check in ONNX Runtime go here (after the ONNX export lands).

return accuracy >= floor ? 0 : 1;
