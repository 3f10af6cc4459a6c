using System.Text;

namespace IpyRpc;

/// <summary>
/// Buffers a call's output and hands it on a line at a time (or when 8 KiB pile up, or on
/// <see cref="Flush"/>), so a caller sees each line as soon as it is complete without a message
/// per character. After <see cref="Close"/> further writes are dropped: a call that timed out
/// and runs on in the background cannot add output to a finished job.
/// </summary>
/// <param name="emit">Gets each chunk, in order.</param>
/// <param name="waitForRoom">Called after a chunk is emitted, outside the sink's lock: may block the writer while its reader is behind (backpressure).</param>
public sealed class LineBufferedSink(Action<OutputStream, string> emit, Action? waitForRoom = null) : IOutputSink
{
    private const int MaxBuffered = 8 * 1024;
    // Most calls print nothing: the buffers come into being on first use.
    private StringBuilder? _stdout;
    private StringBuilder? _stderr;
    private readonly object _gate = new();
    private bool _closed;

    /// <inheritdoc/>
    public void Write(OutputStream stream, string text)
    {
        string? ready = null;
        lock (_gate)
        {
            if (_closed) return;
            StringBuilder buffer = stream == OutputStream.Stderr ? _stderr ??= new StringBuilder() : _stdout ??= new StringBuilder();
            buffer.Append(text);
            int newline = text.LastIndexOf('\n');
            if (buffer.Length >= MaxBuffered)
            {
                ready = buffer.ToString();
                buffer.Clear();
            }
            else if (newline >= 0)
            {
                int end = buffer.Length - (text.Length - newline - 1);
                ready = buffer.ToString(0, end);
                buffer.Remove(0, end);
            }

            // Emitting inside the lock keeps chunks of one stream in order.
            if (ready is not null) emit(stream, ready);
        }

        if (ready is not null) waitForRoom?.Invoke();
    }

    /// <inheritdoc/>
    public void Flush()
    {
        lock (_gate)
        {
            if (_closed) return;
            FlushLocked();
        }
    }

    /// <summary>Flushes and stops accepting output.</summary>
    public void Close()
    {
        lock (_gate)
        {
            if (_closed) return;
            FlushLocked();
            _closed = true;
        }
    }

    private void FlushLocked()
    {
        if (_stdout is { Length: > 0 })
        {
            emit(OutputStream.Stdout, _stdout.ToString());
            _stdout.Clear();
        }

        if (_stderr is { Length: > 0 })
        {
            emit(OutputStream.Stderr, _stderr.ToString());
            _stderr.Clear();
        }
    }
}
