using System.Collections.Concurrent;
using System.Diagnostics;
using GpuNet.Checkpoints;

namespace GpuNet.Tests;

/// <summary>
/// Checkpoints survive SIGKILL at any moment, and a run resumed from them continues exactly as an uninterrupted one.
/// Design (100 child processes of about 0.5 s of CPU each: about a minute on two idle cores, several under heavy load):
/// <list type="number">
/// <item>A reference run of the hidden <c>Bench checkpoint-child</c> (digits-mlp on cpu, checkpoints after every epoch
/// through <see cref="Training.ModelCheckpoint"/>) trains <see cref="Epochs"/> epochs uninterrupted, keeping a copy of
/// last.safetensors after every epoch and printing the bits of every epoch's losses.</item>
/// <item><see cref="Chains"/> chains run side by side, each in its own directory: start the child with <c>--resume</c>,
/// kill it (<see cref="Process.Kill()"/>: SIGKILL), check the directory, start again. Every checkpoint write sleeps
/// <see cref="WriteDelayMs"/> ms after its first bytes and again before its rename. One kill in three comes at a random
/// moment of the first <see cref="MaxKillDelayMs"/> ms after the child's <c>ready</c> line (start-up, training and
/// writes alike); the others are aimed at the writes: a random moment of the 4 x <see cref="WriteDelayMs"/> ms after the
/// first or second <c>saving E</c> line the child prints just before writing epoch E's checkpoints. Kills that leave a
/// temporary file behind are counted as kills during a write (at least a fifth must be). A chain that finishes all
/// epochs checks its output and starts over in an empty directory. <see cref="Kills"/> kills in all.</item>
/// <item>After every kill: last.safetensors and best.safetensors, when present, load, and each equals, tensor for tensor
/// and bit for bit, the reference run's checkpoint of the epoch its training state names (so it is a complete file from
/// one epoch, never a mix); its loss history equals the reference's first epochs bit for bit; and every epoch line the
/// killed child printed, resumed or not, equals the reference's line for that epoch.</item>
/// </list>
/// </summary>
public sealed class CrashSafeCheckpointTests
{
    private const int Epochs = 8;
    private const int Kills = 100;
    private const int Chains = 4;
    private const int WriteDelayMs = 20;
    private const int MaxKillDelayMs = 300;

    private static string BenchDll => Path.Combine(AppContext.BaseDirectory, "Bench.dll");

    [Fact]
    public async Task SigkillAtRandomMomentsLeavesCompleteCheckpointsAndResumesExactly()
    {
        using var root = new TempDir();
        string refDir = root.File("reference");
        var (code, refOut) = RunToEnd(refDir, keep: true);
        Assert.True(code == 0, $"reference run failed ({code}):\n{refOut}");
        var reference = EpochLines(refOut);
        Assert.Equal(Enumerable.Range(1, Epochs), reference.Keys.Order());
        var refFiles = Enumerable.Range(1, Epochs).ToDictionary(e => e, e => Checkpoint.Read(Path.Combine(refDir, $"epoch-{e}.safetensors")));

        var stats = new ConcurrentBag<(bool DuringWrite, int ResumedFrom, int Completed)>();
        var failures = new ConcurrentQueue<string>();
        int killsLeft = Kills;
        var chains = Enumerable.Range(0, Chains).Select(c => Task.Run(() =>
        {
            var rng = new Random(1000 + c);
            string dir = root.File($"chain{c}");
            int cycle = 0, kills = 0;
            // Each pass of the outer loop holds one of the Kills and runs children until one is killed: a slot is never
            // handed back, so exactly Kills kills happen whatever the chains' timing.
            while (Interlocked.Decrement(ref killsLeft) >= 0)
            {
                int resumedFrom;
                while (true)
                {
                    (bool killed, string output, resumedFrom) = RunAndKill(dir, rng, aimAtWrites: kills++ % 3 != 0);
                    foreach (var (epoch, line) in EpochLines(output))
                        if (reference[epoch] != line) failures.Enqueue($"chain {c}: epoch {epoch} after a resume from {resumedFrom}: '{line}', reference '{reference[epoch]}'");
                    if (killed) break;
                    // The run finished before the kill: it must have reached the last epoch; start over.
                    if (!output.Contains($"epoch {Epochs} ") && resumedFrom < Epochs) failures.Enqueue($"chain {c}: the child exited early:\n{output}");
                    Directory.Delete(dir, recursive: true);
                    cycle++;
                }
                bool duringWrite = Directory.Exists(dir) && Directory.EnumerateFiles(dir, ".*.tmp").Any();
                foreach (var name in new[] { "last.safetensors", "best.safetensors" })
                    if (CheckFile(Path.Combine(dir, name), refFiles, reference) is string problem) failures.Enqueue($"chain {c}, {name}: {problem}");
                stats.Add((duringWrite, resumedFrom, cycle));
            }
        }, TestContext.Current.CancellationToken)).ToArray();
        await Task.WhenAll(chains);

        Assert.True(failures.IsEmpty, string.Join("\n", failures.Take(10)));
        Assert.Equal(Kills, stats.Count);
        int duringWrites = stats.Count(s => s.DuringWrite);
        Assert.True(duringWrites >= Kills / 5, $"only {duringWrites} of {Kills} kills landed inside a checkpoint write");
        Assert.True(stats.Count(s => s.ResumedFrom > 0) >= Kills / 4, $"only {stats.Count(s => s.ResumedFrom > 0)} kills hit a resumed run");
    }

    // Null when the file is absent or a complete checkpoint of the reference run; else the problem.
    private static string? CheckFile(string path, Dictionary<int, CheckpointFile> refFiles, Dictionary<int, string> reference)
    {
        if (!File.Exists(path)) return null;
        CheckpointFile file;
        try { file = Checkpoint.Read(path); }
        catch (CheckpointException e) { return $"does not load: {e.Message}"; }
        var state = file.TrainingState;
        if (state is null) return "no training state";
        if (!refFiles.TryGetValue(state.Epoch, out var expected)) return $"epoch {state.Epoch} is not one of the reference's";
        if (!file.Tensors.Select(t => t.Name).SequenceEqual(expected.Tensors.Select(t => t.Name))) return "tensor names differ from the reference";
        foreach (var t in file.Tensors)
            if (!Bits(t.Floats).SequenceEqual(Bits(expected[t.Name].Floats))) return $"tensor {t.Name} differs from the reference's epoch {state.Epoch}";
        if (state.History.Count != state.Epoch) return $"history has {state.History.Count} epochs at epoch {state.Epoch}";
        foreach (var h in state.History)
        {
            string line = $"epoch {h.Epoch} train_loss {BitConverter.DoubleToInt64Bits(h.Values["train_loss"]):X16} val_loss {BitConverter.DoubleToInt64Bits(h.Values["val_loss"]):X16}";
            if (reference[h.Epoch] != line) return $"history '{line}' differs from the reference '{reference[h.Epoch]}'";
        }
        return null;
    }

    private static int[] Bits(float[] a) => Array.ConvertAll(a, BitConverter.SingleToInt32Bits);

    private static Dictionary<int, string> EpochLines(string output) => output.Split('\n')
        .Select(l => l.Trim()).Where(l => l.StartsWith("epoch ", StringComparison.Ordinal))
        .ToDictionary(l => int.Parse(l.Split(' ')[1]), l => l);

    private static ProcessStartInfo Child(string dir, bool keep, int delayMs)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { BenchDll, "checkpoint-child", "--dir", dir, "--epochs", Epochs.ToString(), "--write-delay-ms", delayMs.ToString(), "--resume" })
            psi.ArgumentList.Add(a);
        if (keep) psi.ArgumentList.Add("--keep");
        return psi;
    }

    private static (int Code, string Output) RunToEnd(string dir, bool keep)
    {
        using var p = Process.Start(Child(dir, keep, delayMs: 0))!;
        var err = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output + err.Result);
    }

    // Starts the child with --resume and reads its lines until "ready at epoch N". Two kinds of kill, alternating: at a
    // random moment of the first MaxKillDelayMs after ready (start-up, training, writes alike), or aimed at the writes:
    // after the k-th "saving E" line (k in 1..2), at a random moment of the next 4 x WriteDelayMs. Returns whether the
    // kill came before the child ended, everything it printed, and N.
    private static (bool Killed, string Output, int ResumedFrom) RunAndKill(string dir, Random rng, bool aimAtWrites)
    {
        using var p = Process.Start(Child(dir, keep: false, WriteDelayMs))!;
        var err = p.StandardError.ReadToEndAsync();
        var output = new System.Text.StringBuilder();
        string? line = p.StandardOutput.ReadLine();
        output.AppendLine(line);
        int resumedFrom = -1;
        if (line is not null && line.StartsWith("ready at epoch ", StringComparison.Ordinal))
        {
            resumedFrom = int.Parse(line["ready at epoch ".Length..]);
            if (aimAtWrites)
            {
                int saves = 1 + rng.Next(2);
                while (saves > 0 && (line = p.StandardOutput.ReadLine()) is not null)
                {
                    output.AppendLine(line);
                    if (line.StartsWith("saving ", StringComparison.Ordinal)) saves--;
                }
                Thread.Sleep(rng.Next(4 * WriteDelayMs));
            }
            else Thread.Sleep(rng.Next(MaxKillDelayMs));
        }
        bool killed = false;
        try
        {
            if (!p.HasExited) { p.Kill(); killed = true; }
        }
        catch (InvalidOperationException) { }   // it exited between the check and the kill
        output.Append(p.StandardOutput.ReadToEnd());
        p.WaitForExit();
        if (resumedFrom < 0) throw new InvalidOperationException($"the child did not start: {output}\n{err.Result}");
        return (killed, output.ToString(), resumedFrom);
    }
}
