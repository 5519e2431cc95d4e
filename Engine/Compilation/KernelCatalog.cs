using System.Reflection;
using GpuNet.Kernels;
using ILGPU.Backends.EntryPoints;

namespace GpuNet.Compilation;

/// <summary>
/// Every kernel of the product: the static methods of GpuNet.Kernels carrying <see cref="GpuKernelAttribute"/>, a
/// generic one closed over every struct of the assembly that satisfies its constraints (e.g.
/// <c>ActivationOp.ForwardKernel&lt;ReluActivation&gt;</c> for each <see cref="IActivation"/> struct).
/// The compile tests and <c>Bench sass</c> take their cases from here, so a newly merged kernel or op struct is checked
/// without touching either.
/// </summary>
public static class KernelCatalog
{
    private static readonly Lazy<IReadOnlyDictionary<string, MethodInfo>> _kernels = new(Discover);

    private static readonly HashSet<string> IndexTypeNames =
        ["Index1D", "Index2D", "Index3D", "LongIndex1D", "LongIndex2D", "LongIndex3D"];

    /// <summary>The GpuNet.Kernels assembly.</summary>
    public static Assembly Assembly => typeof(KernelCache).Assembly;

    /// <summary>
    /// Compilable kernels by name (<c>Class.Method</c>, nested classes dotted, <c>&lt;type arguments&gt;</c> appended to
    /// a generic kernel's instantiations, parameter types appended to overloads).
    /// </summary>
    public static IReadOnlyDictionary<string, MethodInfo> Kernels => _kernels.Value;

    /// <summary>Kernel names, sorted ordinally.</summary>
    public static IReadOnlyList<string> Names => [.. Kernels.Keys.Order(StringComparer.Ordinal)];

    /// <summary>Every static method of the assembly (public or not, declared by any type) with the attribute.</summary>
    public static IEnumerable<MethodInfo> Attributed()
        => AllStaticMethods().Where(m => m.GetCustomAttribute<GpuKernelAttribute>() is not null);

    /// <summary>
    /// The closed instantiations of the generic kernel <paramref name="kernel"/>: every combination of type arguments
    /// drawn from the assembly's non-generic structs that satisfy each type parameter's constraints. A type parameter
    /// with no interface constraint gets none (it would match every struct), nor does an unsatisfiable one.
    /// </summary>
    public static IReadOnlyList<MethodInfo> Instantiations(MethodInfo kernel)
    {
        var structs = Assembly.GetTypes().Where(t => t.IsValueType && !t.IsEnum && !t.ContainsGenericParameters).ToList();
        IEnumerable<Type[]> combos = [[]];
        foreach (var parameter in kernel.GetGenericArguments())
        {
            var interfaces = parameter.GetGenericParameterConstraints().Where(c => c.IsInterface).ToList();
            var matches = interfaces.Count == 0 ? [] : structs.Where(t => interfaces.All(i => i.IsAssignableFrom(t))).ToList();
            combos = combos.SelectMany(c => matches.Select(t => (Type[])[.. c, t])).ToList();
        }
        return combos.Select(args => kernel.MakeGenericMethod(args)).ToList();
    }

    /// <summary>Every static method declared by any type of the assembly.</summary>
    public static IEnumerable<MethodInfo> AllStaticMethods()
        => Assembly.GetTypes().SelectMany(t =>
            t.GetMethods(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly));

    /// <summary>The attribute's <see cref="GpuKernelAttribute.ExplicitlyGrouped"/>.</summary>
    public static bool IsExplicitlyGrouped(MethodInfo kernel) => kernel.GetCustomAttribute<GpuKernelAttribute>()!.ExplicitlyGrouped;

    /// <summary>ILGPU's entry point description of <paramref name="kernel"/>, by its attribute.</summary>
    public static EntryPointDescription EntryPoint(MethodInfo kernel) => IsExplicitlyGrouped(kernel)
        ? EntryPointDescription.FromExplicitlyGroupedKernel(kernel)
        : EntryPointDescription.FromImplicitlyGroupedKernel(kernel);

    /// <summary>ILGPU's thread index types (Index1D/2D/3D and their Long forms).</summary>
    public static bool IsIndexType(Type t) => t.Namespace == "ILGPU" && IndexTypeNames.Contains(t.Name);

    /// <summary>ILGPU's array views (ArrayView&lt;T&gt;, ArrayView1D/2D/3D, ...).</summary>
    public static bool IsArrayView(Type t) => t.Namespace == "ILGPU" && t.Name.StartsWith("ArrayView", StringComparison.Ordinal);

    /// <summary>
    /// The guard's rule for "this is a kernel", attribute or not: a public static method whose first parameter is an
    /// ILGPU index type, or a public static void method named <c>*Kernel</c> taking an ArrayView parameter.
    /// </summary>
    public static bool LooksLikeKernel(MethodInfo m)
    {
        if (!m.IsPublic || !m.IsStatic) return false;
        var ps = m.GetParameters();
        if (ps.Length > 0 && IsIndexType(ps[0].ParameterType)) return true;
        return m.ReturnType == typeof(void) && m.Name.EndsWith("Kernel", StringComparison.Ordinal)
            && ps.Any(p => IsArrayView(p.ParameterType));
    }

    private static string TypeArguments(MethodInfo m)
        => m.IsGenericMethod ? $"<{string.Join(", ", m.GetGenericArguments().Select(TypeName))}>" : "";

    private static string TypeName(Type t) => t.FullName!.Replace(Assembly.GetName().Name + ".", "", StringComparison.Ordinal).Replace('+', '.');

    private static IReadOnlyDictionary<string, MethodInfo> Discover()
    {
        var result = new Dictionary<string, MethodInfo>(StringComparer.Ordinal);
        var closed = Attributed().SelectMany(m => m.IsGenericMethodDefinition ? Instantiations(m) : [m]);
        foreach (var group in closed.GroupBy(m => $"{TypeName(m.DeclaringType!)}.{m.Name}{TypeArguments(m)}"))
        {
            if (group.Count() == 1) { result.Add(group.Key, group.Single()); continue; }
            foreach (var m in group)
                result.Add($"{group.Key}({string.Join(",", m.GetParameters().Select(p => p.ParameterType.Name))})", m);
        }
        return result;
    }
}
