namespace GpuNet.Tests;

/// <summary>Seeded test inputs and float64 helpers.</summary>
public static class TestData
{
    /// <summary>n floats uniform in [lo, hi), from a seeded generator.</summary>
    public static float[] Uniform(int seed, int n, float lo = -1f, float hi = 1f)
    {
        var r = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = lo + (hi - lo) * r.NextSingle();
        return a;
    }

    /// <summary>Widens to float64.</summary>
    public static double[] D(float[] a) => Array.ConvertAll(a, x => (double)x);

    /// <summary>
    /// Central finite differences in float64: grad[i] = (f(x + h e_i) - f(x - h e_i)) / 2h.
    /// </summary>
    public static double[] FiniteDifference(Func<double[], double> f, double[] x, double h = 1e-6)
    {
        var g = new double[x.Length];
        var xp = (double[])x.Clone();
        for (int i = 0; i < x.Length; i++)
        {
            double v = xp[i];
            xp[i] = v + h; double fp = f(xp);
            xp[i] = v - h; double fm = f(xp);
            xp[i] = v;
            g[i] = (fp - fm) / (2 * h);
        }
        return g;
    }

    /// <summary>Sum of a[i] * b[i] in float64.</summary>
    public static double Dot(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += a[i] * b[i];
        return s;
    }
}
