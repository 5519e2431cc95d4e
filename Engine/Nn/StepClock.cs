namespace GpuNet.Nn;

/// <summary>The model's training-step counter, shared by the nodes that need it (dropout masks).</summary>
internal sealed class StepClock
{
    public long Step { get; set; }
}
