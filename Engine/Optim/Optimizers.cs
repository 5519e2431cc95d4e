using GpuNet.Kernels;

namespace GpuNet.Optim;

// The optimizers, in order of increasing state: each is a thin constructor that validates PyTorch's arguments (with
// PyTorch's defaults) and fills the shared hyperparameter record; the fused kernel does the rest.

/// <summary>
/// SGD (torch.optim.SGD): g += wd*p; with momentum b = g at t = 1, else b = mu*b + (1 - dampening)*g; Nesterov
/// g = g + mu*b, else g = b; p -= lr*g. State: momentum_buffer (only with momentum).
/// </summary>
public sealed class Sgd : Optimizer
{
    /// <summary>Creates SGD over <paramref name="parameters"/> (defaults as PyTorch: lr 1e-3, no momentum).</summary>
    /// <exception cref="ArgumentOutOfRangeException">A hyperparameter outside its valid range (the message names it).</exception>
    /// <exception cref="ArgumentException">Nesterov without momentum or with dampening.</exception>
    public Sgd(Device device, Tensor parameters, Tensor gradients, double lr = 1e-3, double momentum = 0, double dampening = 0,
        double weightDecay = 0, bool nesterov = false, OptimizerOptions? options = null)
        : base("Sgd", device, parameters, gradients, lr, Hyper(momentum, dampening, nesterov),
            WithWeightDecay(options, weightDecay, decoupled: false), options)
    { }

    private static OptimizerHyper Hyper(double momentum, double dampening, bool nesterov)
    {
        Validate.Range(nameof(momentum), momentum, 0, true, 1, false);
        Validate.Range(nameof(dampening), dampening, 0, true, 1, true);
        if (nesterov && (momentum <= 0 || dampening != 0))
            throw new ArgumentException($"nesterov requires momentum > 0 and dampening = 0 (got momentum = {momentum}, dampening = {dampening})", nameof(nesterov));
        return new OptimizerHyper(OptimizerAlgorithm.Sgd) { Momentum = momentum, Dampening = dampening, Nesterov = nesterov };
    }

    internal static Regularization WithWeightDecay(OptimizerOptions? options, double weightDecay, bool decoupled)
    {
        Validate.AtLeastZero(nameof(weightDecay), weightDecay);
        var r = options?.Regularization ?? Regularization.None;
        return decoupled ? r with { DecoupledWeightDecay = r.DecoupledWeightDecay + weightDecay } : r with { WeightDecay = r.WeightDecay + weightDecay };
    }
}

/// <summary>
/// AdaGrad (torch.optim.Adagrad): lr_t = lr / (1 + (t - 1)*lr_decay); g += wd*p; sum += g^2; p -= lr_t*g/(sqrt(sum) + eps).
/// State: sum (starts at initial_accumulator_value).
/// </summary>
public sealed class Adagrad : Optimizer
{
    /// <summary>Creates AdaGrad (defaults as PyTorch: lr 1e-2, lr_decay 0, initial accumulator 0, eps 1e-10).</summary>
    /// <exception cref="ArgumentOutOfRangeException">A hyperparameter outside its valid range (the message names it).</exception>
    public Adagrad(Device device, Tensor parameters, Tensor gradients, double lr = 1e-2, double lrDecay = 0, double weightDecay = 0,
        double initialAccumulatorValue = 0, double eps = 1e-10, OptimizerOptions? options = null)
        : base("Adagrad", device, parameters, gradients, lr, new OptimizerHyper(OptimizerAlgorithm.Adagrad)
        {
            LrDecay = Validate.AtLeastZero(nameof(lrDecay), lrDecay),
            InitialAccumulatorValue = Validate.AtLeastZero(nameof(initialAccumulatorValue), initialAccumulatorValue),
            Eps = Validate.Positive(nameof(eps), eps),
        }, Sgd.WithWeightDecay(options, weightDecay, decoupled: false), options)
    { }
}

/// <summary>
/// RMSprop (torch.optim.RMSprop): g += wd*p; v = alpha*v + (1 - alpha)*g^2; centered: g_avg = alpha*g_avg + (1 - alpha)*g,
/// v~ = v - g_avg^2; with momentum b = mu*b + g/(sqrt(v~) + eps), p -= lr*b; else p -= lr*g/(sqrt(v~) + eps).
/// State: square_avg, momentum_buffer (momentum &gt; 0), grad_avg (centered).
/// </summary>
public sealed class RmsProp : Optimizer
{
    /// <summary>Creates RMSprop (defaults as PyTorch: lr 1e-2, alpha 0.99, eps 1e-8, no momentum, not centered).</summary>
    /// <exception cref="ArgumentOutOfRangeException">A hyperparameter outside its valid range (the message names it).</exception>
    public RmsProp(Device device, Tensor parameters, Tensor gradients, double lr = 1e-2, double alpha = 0.99, double eps = 1e-8,
        double weightDecay = 0, double momentum = 0, bool centered = false, OptimizerOptions? options = null)
        : base("RmsProp", device, parameters, gradients, lr, new OptimizerHyper(OptimizerAlgorithm.RmsProp)
        {
            Alpha = Validate.Range(nameof(alpha), alpha, 0, true, 1, false),
            Eps = Validate.Positive(nameof(eps), eps),
            Momentum = Validate.Range(nameof(momentum), momentum, 0, true, 1, false),
            Centered = centered,
        }, Sgd.WithWeightDecay(options, weightDecay, decoupled: false), options)
    { }
}

/// <summary>
/// Adam (torch.optim.Adam) and AdamW (torch.optim.AdamW, <see cref="AdamW"/>): AdamW first decays p *= 1 - lr*wd;
/// Adam adds g += wd*p; then m = b1*m + (1 - b1)*g; v = b2*v + (1 - b2)*g^2; AMSGrad v_max = max(v_max, v);
/// p -= lr/(1 - b1^t) * m / (sqrt(v or v_max)/sqrt(1 - b2^t) + eps), bias corrections computed on the host per step.
/// State: exp_avg, exp_avg_sq, max_exp_avg_sq (AMSGrad).
/// </summary>
public sealed class Adam : Optimizer
{
    /// <summary>Creates Adam with coupled L2 <paramref name="weightDecay"/> (defaults as PyTorch: lr 1e-3, betas (0.9, 0.999), eps 1e-8).</summary>
    /// <exception cref="ArgumentOutOfRangeException">A hyperparameter outside its valid range (the message names it).</exception>
    public Adam(Device device, Tensor parameters, Tensor gradients, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
        double eps = 1e-8, double weightDecay = 0, bool amsgrad = false, OptimizerOptions? options = null)
        : this("Adam", device, parameters, gradients, lr, beta1, beta2, eps, weightDecay, amsgrad, decoupled: false, options)
    { }

    private Adam(string name, Device device, Tensor parameters, Tensor gradients, double lr, double beta1, double beta2,
        double eps, double weightDecay, bool amsgrad, bool decoupled, OptimizerOptions? options)
        : base(name, device, parameters, gradients, lr, new OptimizerHyper(OptimizerAlgorithm.Adam)
        {
            Beta1 = Validate.Range(nameof(beta1), beta1, 0, true, 1, false),
            Beta2 = Validate.Range(nameof(beta2), beta2, 0, true, 1, false),
            Eps = Validate.Positive(nameof(eps), eps),
            Amsgrad = amsgrad,
        }, Sgd.WithWeightDecay(options, weightDecay, decoupled), options)
    { }

    /// <summary>AdamW: Adam with decoupled weight decay p *= 1 - lr*wd (defaults as PyTorch: weight_decay 1e-2).</summary>
    /// <exception cref="ArgumentOutOfRangeException">A hyperparameter outside its valid range (the message names it).</exception>
    public static Adam AdamW(Device device, Tensor parameters, Tensor gradients, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
        double eps = 1e-8, double weightDecay = 1e-2, bool amsgrad = false, OptimizerOptions? options = null)
        => new("AdamW", device, parameters, gradients, lr, beta1, beta2, eps, weightDecay, amsgrad, decoupled: true, options);
}
