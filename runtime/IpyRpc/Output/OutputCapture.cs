using System.Text;

namespace IpyRpc;

/// <summary>
/// Routes <see cref="Console.Out"/> and <see cref="Console.Error"/> per call. Once installed, the
/// console writers check an <see cref="AsyncLocal{T}"/>: inside a call (and any task it starts)
/// writes go to that call's sink; outside any call they go to the original console untouched.
/// Concurrent calls therefore never see each other's output.
/// </summary>
public static class OutputCapture
{
    private static readonly AsyncLocal<IOutputSink?> Current = new();
    private static readonly object Gate = new();
    private static bool _installed;

    /// <summary>Whether the console writers have been replaced.</summary>
    public static bool IsInstalled => _installed;

    /// <summary>Replaces the console writers with routing ones (once; later calls do nothing).</summary>
    public static void Install()
    {
        lock (Gate)
        {
            if (_installed)
            {
                return;
            }

            Console.SetOut(new RoutingWriter(Console.Out, OutputStream.Stdout));
            Console.SetError(new RoutingWriter(Console.Error, OutputStream.Stderr));
            _installed = true;
        }
    }

    /// <summary>
    /// Runs <paramref name="wait"/> with the console writers' locks let go. <see cref="Console.Out"/> and
    /// <see cref="Console.Error"/> are synchronized writers: a line is written under a lock that every thread's
    /// output shares, so a writer that waits for its reader (backpressure) while holding it would stop all
    /// output in the process. The locks are taken again, as often as they were held, before returning.
    /// </summary>
    internal static void WaitOutsideConsoleLocks(Action wait)
    {
        object output = Console.Out, error = Console.Error;
        int outputHeld = Release(output), errorHeld = Release(error);
        try
        {
            wait();
        }
        finally
        {
            for (; errorHeld > 0; errorHeld--) Monitor.Enter(error);
            for (; outputHeld > 0; outputHeld--) Monitor.Enter(output);
        }

        static int Release(object writer)
        {
            int held = 0;
            for (; Monitor.IsEntered(writer); held++) Monitor.Exit(writer);
            return held;
        }
    }

    /// <summary>The sink this flow's console output goes to now (inside a call), or <see langword="null"/>.</summary>
    internal static IOutputSink? CurrentSink => Current.Value;

    /// <summary>Routes this flow's console output to <paramref name="sink"/> until the scope is disposed.</summary>
    public static Scope Begin(IOutputSink sink)
    {
        IOutputSink? previous = Current.Value;
        Current.Value = sink;
        return new Scope(previous);
    }

    /// <summary>Restores the previous sink.</summary>
    public readonly struct Scope(IOutputSink? previous) : IDisposable
    {
        /// <inheritdoc/>
        public void Dispose() => Current.Value = previous;
    }

    private sealed class RoutingWriter(TextWriter original, OutputStream stream) : TextWriter
    {
        public override Encoding Encoding => original.Encoding;

        public override IFormatProvider FormatProvider => original.FormatProvider;

        public override string NewLine
        {
            get => original.NewLine;
#pragma warning disable CS8765 // TextWriter.NewLine's setter accepts null to mean the default
            set => original.NewLine = value;
#pragma warning restore CS8765
        }

        public override void Write(char value)
        {
            if (Current.Value is { } sink) sink.Write(stream, value.ToString());
            else original.Write(value);
        }

        public override void Write(string? value)
        {
            if (value is null) return;
            if (Current.Value is { } sink) sink.Write(stream, value);
            else original.Write(value);
        }

        public override void Write(char[] buffer, int index, int count)
        {
            if (Current.Value is { } sink) sink.Write(stream, new string(buffer, index, count));
            else original.Write(buffer, index, count);
        }

        public override void Write(ReadOnlySpan<char> buffer)
        {
            if (Current.Value is { } sink) sink.Write(stream, new string(buffer));
            else original.Write(buffer);
        }

        public override void WriteLine(string? value)
        {
            if (Current.Value is { } sink) sink.Write(stream, (value ?? "") + original.NewLine);
            else original.WriteLine(value);
        }

        public override void WriteLine()
        {
            if (Current.Value is { } sink) sink.Write(stream, original.NewLine);
            else original.WriteLine();
        }

        public override void Flush()
        {
            if (Current.Value is { } sink) sink.Flush();
            else original.Flush();
        }
    }
}

/// <summary>Receives a call's console output.</summary>
public interface IOutputSink
{
    /// <summary>Text written to <paramref name="stream"/>.</summary>
    void Write(OutputStream stream, string text);

    /// <summary>Sends whatever is buffered now.</summary>
    void Flush();
}
