namespace GpuNet.Init;

/// <summary>
/// A (semi-)orthogonal matrix times <see cref="Gain"/> (Saxe et al. 2013; PyTorch's <c>orthogonal_</c>). The tensor
/// is seen as a (rows, cols) matrix with rows = shape[0] and cols = the product of the trailing dimensions. A
/// (rows, cols) matrix of N(0, 1) draws (float64, row-major order) is transposed if rows &lt; cols, factored as
/// A = QR by Householder reflections in float64, and each column of Q is multiplied by the sign of R's diagonal
/// element (so Q is the unique factor with a positive diagonal in R, Haar-distributed); Q (transposed back if A was)
/// times the gain is rounded to float32. The rows are orthonormal when rows &lt;= cols (W W^T = I), the columns when
/// rows &gt;= cols (W^T W = I). Cost O(max(r, c) min(r, c)^2) on the host; columns are updated in parallel for large
/// matrices, each column's arithmetic in a fixed order, so the values do not depend on the thread count.
/// </summary>
public sealed class Orthogonal : Initializer
{
    /// <summary>An orthogonal initialiser with gain <paramref name="gain"/>.</summary>
    /// <param name="gain">Scale factor, finite and &gt; 0.</param>
    /// <exception cref="ArgumentOutOfRangeException">gain &lt;= 0 or non-finite.</exception>
    public Orthogonal(double gain = 1.0)
    {
        InitChecks.Positive("orthogonal", nameof(gain), gain);
        Gain = gain;
    }

    /// <summary>The gain.</summary>
    public double Gain { get; }

    /// <inheritdoc/>
    public override string Name => $"orthogonal(gain={F(Gain)})";

    /// <inheritdoc/>
    protected override void CheckShape(ReadOnlySpan<int> shape)
    {
        if (shape.Length < 2)
            throw new ArgumentException($"{Name}: only tensors with 2 or more dimensions are supported, got shape {ShapeUtil.Format(shape)}", nameof(shape));
    }

    /// <inheritdoc/>
    protected override void GenerateCore(ReadOnlySpan<int> shape, ref SplitMix64 rng, Span<float> destination)
    {
        int rows = shape[0], cols = destination.Length / rows;
        bool transpose = rows < cols;
        int m = transpose ? cols : rows, n = transpose ? rows : cols; // a: (m, n), m >= n
        // a[j][i] = A[i, j]: column-major, one array per column. Draw order is row-major in (rows, cols).
        var a = new double[n][];
        for (int j = 0; j < n; j++) a[j] = new double[m];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
            {
                double z = rng.NextNormal();
                if (transpose) a[r][c] = z; else a[c][r] = z;
            }

        var q = OrthonormalColumns(a, m, n);
        // W (rows, cols) = Q (m, n), or Q^T when transposed.
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++)
            {
                float v = (float)(Gain * q[j][i]);
                if (transpose) destination[j * cols + i] = v; else destination[i * cols + j] = v;
            }
    }

    /// <summary>
    /// Q of A = QR (A: (m, n) column-major, m &gt;= n, overwritten) with columns sign-corrected so that R's diagonal
    /// is positive. Householder: H_k = I - 2 v v^T / (v^T v) zeroes column k below the diagonal; Q = H_0 ... H_{n-1} E.
    /// </summary>
    internal static double[][] OrthonormalColumns(double[][] a, int m, int n)
    {
        var vs = new double[n][];
        var sign = new double[n];
        bool parallel = (long)m * n >= 1 << 16;
        for (int k = 0; k < n; k++)
        {
            var col = a[k];
            double norm2 = 0;
            for (int i = k; i < m; i++) norm2 += col[i] * col[i];
            double norm = Math.Sqrt(norm2);
            double alpha = col[k] >= 0 ? -norm : norm; // R[k, k]; the sign opposite to col[k] avoids cancellation
            var v = new double[m - k];
            for (int i = k; i < m; i++) v[i - k] = col[i];
            v[0] -= alpha;
            double vv = 0;
            for (int i = 0; i < v.Length; i++) vv += v[i] * v[i];
            sign[k] = alpha < 0 ? -1.0 : 1.0; // R[k, k] = 0 only for a zero column (probability 0): taken as +1
            vs[k] = vv > 0 ? v : Array.Empty<double>();
            if (vv == 0) continue;
            double scale = 2.0 / vv;
            int kk = k;
            void Apply(int j) => Reflect(a[j], v, kk, scale);
            if (parallel) Parallel.For(k + 1, n, Apply);
            else for (int j = k + 1; j < n; j++) Apply(j);
        }

        var q = new double[n][];
        for (int j = 0; j < n; j++) { q[j] = new double[m]; q[j][j] = 1.0; }
        for (int k = n - 1; k >= 0; k--)
        {
            var v = vs[k];
            if (v.Length == 0) continue;
            double vv = 0;
            for (int i = 0; i < v.Length; i++) vv += v[i] * v[i];
            double scale = 2.0 / vv;
            int kk = k;
            // H_k touches rows k..m-1; columns j < k of the partial product are still e_j there (zero in those rows).
            void Apply(int j) => Reflect(q[j], v, kk, scale);
            if (parallel) Parallel.For(k, n, Apply);
            else for (int j = k; j < n; j++) Apply(j);
        }
        for (int j = 0; j < n; j++)
            if (sign[j] < 0)
                for (int i = 0; i < m; i++) q[j][i] = -q[j][i];
        return q;
    }

    /// <summary>x[k..] -= scale (v . x[k..]) v.</summary>
    private static void Reflect(double[] x, double[] v, int k, double scale)
    {
        double dot = 0;
        for (int i = 0; i < v.Length; i++) dot += v[i] * x[k + i];
        double f = scale * dot;
        for (int i = 0; i < v.Length; i++) x[k + i] -= f * v[i];
    }
}
