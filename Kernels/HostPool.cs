namespace GpuNet.Kernels;

/// <summary>
/// Per-thread scratch memory for the host implementations, so that a steady-state training step allocates nothing.
/// Each thread owns a float and a double arena; <see cref="Enter"/> opens a frame, <see cref="Floats"/> and
/// <see cref="Doubles"/> hand out zeroed spans from it, and disposing the frame gives them all back. An arena that is
/// too small is replaced by one at least twice as large (spans already handed out keep the old one alive), so after
/// the first calls of each size the arenas stop growing.
/// </summary>
public static class HostPool
{
    [ThreadStatic] private static Arena<float>? t_floats;
    [ThreadStatic] private static Arena<double>? t_doubles;

    /// <summary>Opens a scratch frame on this thread: dispose it (with <c>using</c>) when the spans are no longer used.</summary>
    public static Frame Enter()
    {
        var f = t_floats ??= new Arena<float>();
        var d = t_doubles ??= new Arena<double>();
        return new Frame(f, f.Used, d, d.Used);
    }

    /// <summary><paramref name="count"/> zeroed floats from this thread's arena, valid until the enclosing frame ends.</summary>
    public static Span<float> Floats(int count) => (t_floats ??= new Arena<float>()).Take(count);

    /// <summary>Like <see cref="Doubles"/>, as a segment that a parallel loop's state can carry.</summary>
    public static ArraySegment<double> DoubleSegment(int count) => (t_doubles ??= new Arena<double>()).Take(count);

    /// <summary><paramref name="count"/> zeroed doubles from this thread's arena, valid until the enclosing frame ends.</summary>
    public static Span<double> Doubles(int count) => (t_doubles ??= new Arena<double>()).Take(count);

    /// <summary>A scratch frame: disposing it returns the spans taken since <see cref="Enter"/>.</summary>
    public readonly struct Frame : IDisposable
    {
        private readonly Arena<float> _floats;
        private readonly int _floatMark;
        private readonly Arena<double> _doubles;
        private readonly int _doubleMark;

        internal Frame(Arena<float> floats, int floatMark, Arena<double> doubles, int doubleMark)
        {
            _floats = floats; _floatMark = floatMark; _doubles = doubles; _doubleMark = doubleMark;
        }

        /// <summary>Gives the frame's spans back to the arenas.</summary>
        public void Dispose()
        {
            _floats.Used = _floatMark;
            _doubles.Used = _doubleMark;
        }
    }

    internal sealed class Arena<T> where T : unmanaged
    {
        private T[] _buffer = new T[4096];
        public int Used;

        public ArraySegment<T> Take(int count)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(count);
            if (_buffer.Length - Used < count)
            {
                // Spans handed out from the old buffer stay valid (they keep it alive); later frames use the new one.
                _buffer = new T[Math.Max(2L * _buffer.Length, (long)Used + count) > Array.MaxLength ? Array.MaxLength : Math.Max(2 * _buffer.Length, Used + count)];
            }
            var segment = new ArraySegment<T>(_buffer, Used, count);
            Used += count;
            segment.AsSpan().Clear();
            return segment;
        }
    }
}
