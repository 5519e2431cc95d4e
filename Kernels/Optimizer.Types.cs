namespace GpuNet.Kernels;

// The value types of the fused optimizer step (Optimizer.cs): algorithms, float64 hyperparameters, group rows, kernel scalars.

/// <summary>The update rules of the fused optimizer kernel (PyTorch's <c>torch.optim</c> pseudo-code).</summary>
public enum OptimizerAlgorithm
{
    /// <summary>SGD, optionally with momentum, dampening and Nesterov momentum.</summary>
    Sgd = 0,
    /// <summary>AdaGrad with learning-rate decay and an initial accumulator value.</summary>
    Adagrad = 1,
    /// <summary>RMSprop, optionally centered and with momentum.</summary>
    RmsProp = 2,
    /// <summary>Adam, optionally AMSGrad (AdamW is Adam with decoupled weight decay in the group table).</summary>
    Adam = 3,
}

/// <summary>
/// Hyperparameters of one optimizer in float64: the input of the reference and the source of the per-step kernel
/// scalars (<see cref="Pack"/>). Unused fields are ignored by the algorithm that does not need them.
/// </summary>
public sealed record OptimizerHyper(OptimizerAlgorithm Algorithm)
{
    /// <summary>SGD/RMSprop momentum factor (0 = none).</summary>
    public double Momentum { get; init; }
    /// <summary>SGD dampening.</summary>
    public double Dampening { get; init; }
    /// <summary>SGD Nesterov momentum.</summary>
    public bool Nesterov { get; init; }
    /// <summary>Adam beta1.</summary>
    public double Beta1 { get; init; } = 0.9;
    /// <summary>Adam beta2.</summary>
    public double Beta2 { get; init; } = 0.999;
    /// <summary>RMSprop smoothing constant alpha.</summary>
    public double Alpha { get; init; } = 0.99;
    /// <summary>Term added to the denominator (AdaGrad, RMSprop, Adam).</summary>
    public double Eps { get; init; } = 1e-8;
    /// <summary>Adam: AMSGrad variant (keeps the running maximum of the second moment).</summary>
    public bool Amsgrad { get; init; }
    /// <summary>RMSprop: centered variant (normalises by the estimated variance).</summary>
    public bool Centered { get; init; }
    /// <summary>AdaGrad learning-rate decay: lr_t = lr / (1 + (t - 1) * lr_decay).</summary>
    public double LrDecay { get; init; }
    /// <summary>AdaGrad initial value of the squared-gradient sum.</summary>
    public double InitialAccumulatorValue { get; init; }
    /// <summary>Clip the gradient to this global L2 norm before the update (0 = off), like <c>clip_grad_norm_</c>.</summary>
    public double MaxGradNorm { get; init; }
    /// <summary>Clip each gradient element to [-ClipValue, ClipValue] (0 = off), like <c>clip_grad_value_</c>.</summary>
    public double ClipValue { get; init; }
    /// <summary>L1 as a proximal soft-threshold after the update (exact zeros) instead of the subgradient l1*sign(p).</summary>
    public bool ProximalL1 { get; init; }

    /// <summary>True when the algorithm keeps a momentum buffer (SGD/RMSprop with momentum &gt; 0).</summary>
    public bool HasMomentum => Momentum != 0 && Algorithm is OptimizerAlgorithm.Sgd or OptimizerAlgorithm.RmsProp;

    /// <summary>
    /// The state buffers this configuration reads and writes, in argument order: SGD momentum_buffer (s1, with momentum);
    /// AdaGrad sum (s1, starting at <see cref="InitialAccumulatorValue"/>); RMSprop square_avg (s1), momentum_buffer (s2,
    /// with momentum), grad_avg (s3, centered); Adam exp_avg (s1), exp_avg_sq (s2), max_exp_avg_sq (s3, AMSGrad).
    /// </summary>
    public IReadOnlyList<StateSlot> States
    {
        get
        {
            var slots = new List<StateSlot>(3);
            switch (Algorithm)
            {
                case OptimizerAlgorithm.Sgd:
                    if (HasMomentum) slots.Add(new("momentum_buffer", StateArgument.S1));
                    break;
                case OptimizerAlgorithm.Adagrad:
                    slots.Add(new("sum", StateArgument.S1, InitialAccumulatorValue));
                    break;
                case OptimizerAlgorithm.RmsProp:
                    slots.Add(new("square_avg", StateArgument.S1));
                    if (HasMomentum) slots.Add(new("momentum_buffer", StateArgument.S2));
                    if (Centered) slots.Add(new("grad_avg", StateArgument.S3));
                    break;
                default:
                    slots.Add(new("exp_avg", StateArgument.S1));
                    slots.Add(new("exp_avg_sq", StateArgument.S2));
                    if (Amsgrad) slots.Add(new("max_exp_avg_sq", StateArgument.S3));
                    break;
            }
            return slots;
        }
    }

    /// <summary>
    /// The kernel scalars of step <paramref name="t"/> (1-based) at learning rate <paramref name="lr"/>: bias corrections
    /// and AdaGrad's decayed lr are computed here, on the host, once per step (no Pow in kernels).
    /// </summary>
    public OptimizerParams Pack(long t, double lr, int length, int segments, int slot)
    {
        int flags = (Nesterov ? OptimizerParams.FlagNesterov : 0) | (Amsgrad ? OptimizerParams.FlagAmsgrad : 0)
            | (Centered ? OptimizerParams.FlagCentered : 0) | (t == 1 ? OptimizerParams.FlagFirstStep : 0)
            | (ProximalL1 ? OptimizerParams.FlagProximalL1 : 0) | (MaxGradNorm > 0 ? OptimizerParams.FlagClipNorm : 0)
            | (HasMomentum ? OptimizerParams.FlagMomentum : 0);
        double stepLr = Algorithm == OptimizerAlgorithm.Adagrad ? lr / (1 + (t - 1) * LrDecay) : lr;
        double bc1 = 1 - Math.Pow(Beta1, t), bc2 = 1 - Math.Pow(Beta2, t);
        return new OptimizerParams
        {
            Algorithm = (int)Algorithm, Flags = flags, Length = length, Segments = segments, Slot = slot,
            Lr = (float)stepLr,
            Beta1 = (float)(Algorithm == OptimizerAlgorithm.Adam ? Beta1 : Momentum),
            Beta2 = (float)(Algorithm == OptimizerAlgorithm.Adam ? Beta2 : Alpha),
            Dampening = (float)Dampening, Eps = (float)Eps,
            InvBc1 = (float)(Algorithm == OptimizerAlgorithm.Adam ? 1 / bc1 : 1),
            InvBc2Sqrt = (float)(Algorithm == OptimizerAlgorithm.Adam ? 1 / Math.Sqrt(bc2) : 1),
            MaxNorm = (float)MaxGradNorm, ClipValue = (float)ClipValue,
        };
    }
}

/// <summary>Settings of one parameter group, as the kernels read them from the group table (<see cref="GroupTable"/>).</summary>
/// <param name="LrScale">Multiplies the optimizer's learning rate.</param>
/// <param name="L2">Coupled L2 (PyTorch weight_decay): g += L2 * p.</param>
/// <param name="L1">L1 strength: g += L1 * sign(p), or the proximal soft-threshold by lr * L1.</param>
/// <param name="Decoupled">Decoupled weight decay (AdamW): p *= 1 - lr * Decoupled, before the update.</param>
/// <param name="Frozen">Frozen: p and state are left untouched and the gradient is left out of the clipping norm.</param>
public readonly record struct GroupSettings(double LrScale, double L2, double L1, double Decoupled, bool Frozen)
{
    /// <summary>Writes this group's row into <paramref name="table"/> (G * <see cref="GroupTable.Stride"/>), padding zeroed.</summary>
    public void WriteTo(Span<float> table, int group)
    {
        var row = table.Slice(GroupTable.Row(group), GroupTable.Stride);
        row.Clear();
        row[GroupTable.LrScale] = (float)LrScale;
        row[GroupTable.L2] = (float)L2;
        row[GroupTable.L1] = (float)L1;
        row[GroupTable.Decoupled] = (float)Decoupled;
        row[GroupTable.Frozen] = Frozen ? 1 : 0;
    }
}

/// <summary>
/// Layout of the group table: one row of <see cref="Stride"/> floats per parameter group, each setting of
/// <see cref="GroupSettings"/> at its named column. <see cref="GroupSettings.WriteTo"/> writes it; the step kernel, the
/// host step and both gradient-norm passes read it through these constants only.
/// </summary>
public static class GroupTable
{
    /// <summary>Floats per row: the five settings and padding to 32 bytes.</summary>
    public const int Stride = 8;
    /// <summary>Column of <see cref="GroupSettings.LrScale"/>.</summary>
    public const int LrScale = 0;
    /// <summary>Column of <see cref="GroupSettings.L2"/>.</summary>
    public const int L2 = 1;
    /// <summary>Column of <see cref="GroupSettings.L1"/>.</summary>
    public const int L1 = 2;
    /// <summary>Column of <see cref="GroupSettings.Decoupled"/>.</summary>
    public const int Decoupled = 3;
    /// <summary>Column of <see cref="GroupSettings.Frozen"/>: 1 frozen, 0 not.</summary>
    public const int Frozen = 4;

    /// <summary>Index of the first float of <paramref name="group"/>'s row. Kernel-safe.</summary>
    public static int Row(int group) => group * Stride;
}

/// <summary>The three state arguments of the fused step; each algorithm gives them its own meaning (<see cref="OptimizerHyper.States"/>).</summary>
public enum StateArgument
{
    /// <summary>The step's s1.</summary>
    S1 = 0,
    /// <summary>The step's s2.</summary>
    S2 = 1,
    /// <summary>The step's s3.</summary>
    S3 = 2,
}

/// <summary>One flat (n) state buffer of an optimizer configuration.</summary>
/// <param name="Name">PyTorch's name of the state, the checkpoint key (momentum_buffer, sum, square_avg, grad_avg, exp_avg, exp_avg_sq, max_exp_avg_sq).</param>
/// <param name="Argument">The state argument of the step (and of <see cref="OptimizerOp.Reference"/>) that carries it.</param>
/// <param name="Initial">The value the buffer starts at (AdaGrad's initial_accumulator_value; 0 otherwise).</param>
public readonly record struct StateSlot(string Name, StateArgument Argument, double Initial = 0);

/// <summary>Scalars of one fused optimizer step (a kernel parameter; no more than 14 kernel parameters in all).</summary>
public struct OptimizerParams
{
    /// <summary>Flag: Nesterov momentum (SGD).</summary>
    public const int FlagNesterov = 1;
    /// <summary>Flag: AMSGrad (Adam).</summary>
    public const int FlagAmsgrad = 2;
    /// <summary>Flag: centered (RMSprop).</summary>
    public const int FlagCentered = 4;
    /// <summary>Flag: first step (SGD's momentum buffer starts as the gradient).</summary>
    public const int FlagFirstStep = 8;
    /// <summary>Flag: proximal L1 (soft threshold after the update).</summary>
    public const int FlagProximalL1 = 16;
    /// <summary>Flag: clip by the global norm found in the norm buffer.</summary>
    public const int FlagClipNorm = 32;
    /// <summary>Flag: momentum buffer in use (SGD, RMSprop).</summary>
    public const int FlagMomentum = 64;

    /// <summary><see cref="OptimizerAlgorithm"/> as int.</summary>
    public int Algorithm;
    /// <summary>Flag bits.</summary>
    public int Flags;
    /// <summary>Elements of the flat parameter buffer.</summary>
    public int Length;
    /// <summary>Entries of the dense segment table.</summary>
    public int Segments;
    /// <summary>Slot of the norm buffer holding this step's sum of squares (the other one is zeroed for the next step).</summary>
    public int Slot;
    /// <summary>Learning rate of this step (AdaGrad: already decayed).</summary>
    public float Lr;
    /// <summary>Adam beta1, or SGD/RMSprop momentum.</summary>
    public float Beta1;
    /// <summary>Adam beta2, or RMSprop alpha.</summary>
    public float Beta2;
    /// <summary>SGD dampening.</summary>
    public float Dampening;
    /// <summary>Epsilon.</summary>
    public float Eps;
    /// <summary>Adam: 1 / (1 - beta1^t).</summary>
    public float InvBc1;
    /// <summary>Adam: 1 / sqrt(1 - beta2^t).</summary>
    public float InvBc2Sqrt;
    /// <summary>Global-norm clip threshold.</summary>
    public float MaxNorm;
    /// <summary>Value clip threshold (0 = off).</summary>
    public float ClipValue;
}
