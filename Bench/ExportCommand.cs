using System.CommandLine;
using GpuNet.Checkpoints;
using GpuNet.Nn;
using GpuNet.Onnx;

namespace GpuNet.Bench;

/// <summary>
/// <c>export --checkpoint FILE --preset NAME --onnx PATH</c>: builds the preset's network on the <c>cpu</c> device,
/// restores the checkpoint's weights and running statistics (strictly: every tensor's name and shape must match), and
/// writes the model as ONNX (<see cref="OnnxExport.ExportOnnx"/>).
/// </summary>
internal static class ExportCommand
{
    public static Command Create()
    {
        var names = Preset.All.Concat(Preset.Cnn).Select(p => p.Name).ToArray();
        var checkpoint = new Option<string>("--checkpoint") { Description = "a checkpoint written by train --out (best.safetensors, last.safetensors)", Required = true };
        var preset = new Option<string>("--preset") { Description = $"the network the checkpoint was trained with: one of {string.Join(", ", names)}", Required = true };
        preset.Validators.Add(r =>
        {
            var v = r.GetValueOrDefault<string>();
            if (Preset.Find(v) is null) r.AddError($"--preset: unknown preset '{v}'; allowed: {string.Join(", ", names)}");
        });
        var onnx = new Option<string>("--onnx") { Description = "the ONNX file to write (opset 17, dynamic batch; its directory must exist)", Required = true };
        var cmd = new Command("export", "Export a trained checkpoint of a preset network as an ONNX model.") { checkpoint, preset, onnx };
        cmd.SetAction(p => Cli.Guard(() => Run(p.GetValue(checkpoint)!, Preset.Find(p.GetValue(preset)!)!, p.GetValue(onnx)!, Console.Out)));
        return cmd;
    }

    private static int Run(string checkpointPath, Preset preset, string onnxPath, TextWriter log)
    {
        if (!Directory.Exists(Path.GetDirectoryName(Path.GetFullPath(onnxPath))))
            throw new UsageException($"--onnx: the directory of '{onnxPath}' does not exist");
        CheckpointFile file;
        try { file = Checkpoint.Read(checkpointPath); }
        catch (Exception e) when (e is CheckpointException or FileNotFoundException or DirectoryNotFoundException) { throw new UsageException($"--checkpoint: {e.Message}"); }
        using var device = Device.Create("cpu");
        Model Build(int[] sampleShape) => Model.Build(device, preset.Network(preset.Defaults), sampleShape, 1,
            new ModelOptions { Seed = file.ModelSeed ?? preset.Defaults.Seed, Training = false });
        int[] PresetShape() => preset.Data(preset.Defaults.Seed, null).Train.SampleShape.ToArray();
        // the sample shape is saved in GpuNet's checkpoints; a file without it takes the preset's data set's
        Model model;
        try { model = Build(file.InputShape ?? PresetShape()); }
        catch (LayerShapeException e) when (file.InputShape is not null)
        {
            // the checkpoint's network takes other samples than the preset's: build the preset's own, so that the
            // restore below names every tensor that differs
            int[] own;
            try { own = PresetShape(); }
            catch (Exception inner) when (inner is IOException or HttpRequestException or InvalidDataException)
            {
                throw new UsageException($"--checkpoint was saved from a model taking {ShapeUtil.Format(file.InputShape)} per sample, which preset '{preset.Name}' does not take: {e.Message}");
            }
            model = Build(own);
        }
        using var owned = model;
        try { Checkpoint.Restore(file, model); }
        catch (CheckpointException e) { throw new UsageException($"--checkpoint does not fit preset '{preset.Name}': {e.Message}"); }
        model.ExportOnnx(onnxPath);
        log.WriteLine($"exported {preset.Name} from {checkpointPath} to {onnxPath}: input {ShapeUtil.Format(model.InputShape)}, output {ShapeUtil.Format(model.OutputShape)} per sample, {model.ParameterCount:N0} parameters, opset {OnnxExport.Opset}");
        return Cli.Ok;
    }
}
