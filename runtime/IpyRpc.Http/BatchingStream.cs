namespace IpyRpc.Http;

/// <summary>
/// A client's WebSocket connection stream that can gather what is written to it and send it in one write: while held
/// (<see cref="Hold"/>), writes are kept, and <see cref="ReleaseAsync"/> sends them together, so several WebSocket
/// messages cost the connection one system call. Not held, a write goes straight through. Writes of whatever kind (a
/// release, a WebSocket's own pong or close frame) reach the inner stream one at a time and whole.
/// </summary>
internal sealed class BatchingStream(Stream inner) : Stream
{
    /// <summary>The size of message worth gathering: a larger one is sent on its own rather than copied.</summary>
    public const int MaxGathered = 64 * 1024;

    private readonly SemaphoreSlim _write = new(1, 1);
    private readonly object _gate = new();
    private byte[] _held = new byte[4096];
    private byte[]? _spare;
    private int _heldBytes;
    private bool _holding;

    private long _innerWrites;

    /// <summary>How many writes reached the inner stream (for tests).</summary>
    internal long InnerWrites => Interlocked.Read(ref _innerWrites);

    /// <summary>Awaited before each write reaches the inner stream (for tests: a write held up while others queue).</summary>
    internal Func<ValueTask>? BeforeInnerWrite;

    /// <summary>Keeps what is written from now on until <see cref="ReleaseAsync"/>.</summary>
    public void Hold()
    {
        lock (_gate) _holding = true;
    }

    /// <summary>Sends what was kept since <see cref="Hold"/> in one write, and lets writes through again.</summary>
    public async ValueTask ReleaseAsync(CancellationToken cancellationToken)
    {
        byte[] held;
        int count;
        lock (_gate)
        {
            _holding = false;
            (held, count) = (_held, _heldBytes);
            if (count == 0) return;
            // Whatever is kept while this batch is written goes into the other array.
            _held = _spare ?? new byte[4096];
            _spare = null;
            _heldBytes = 0;
        }

        try
        {
            await WriteThroughAsync(held.AsMemory(0, count), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            if (held.Length <= 2 * MaxGathered)
            {
                lock (_gate) _spare ??= held; // a large batch's array is not kept
            }
        }
    }

    /// <summary>Forgets what was kept and lets writes through again (the connection failed mid-batch).</summary>
    public void Drop()
    {
        lock (_gate)
        {
            _holding = false;
            _heldBytes = 0;
        }
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            if (_holding)
            {
                Keep(buffer.Span);
                return default;
            }
        }

        return WriteThroughAsync(buffer, cancellationToken);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    private void Keep(ReadOnlySpan<byte> data)
    {
        if (_heldBytes + data.Length > _held.Length)
        {
            byte[] larger = new byte[Math.Max(_held.Length * 2, _heldBytes + data.Length)];
            _held.AsSpan(0, _heldBytes).CopyTo(larger);
            _held = larger;
        }

        data.CopyTo(_held.AsSpan(_heldBytes));
        _heldBytes += data.Length;
    }

    private async ValueTask WriteThroughAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        await _write.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (BeforeInnerWrite is { } before) await before().ConfigureAwait(false);
            Interlocked.Increment(ref _innerWrites);
            await inner.WriteAsync(data, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _write.Release();
        }
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, cancellationToken);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => inner.ReadAsync(buffer, offset, count, cancellationToken);

    public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override void Flush() => inner.Flush();

    public override bool CanRead => inner.CanRead;

    public override bool CanWrite => inner.CanWrite;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Dispose();
        base.Dispose(disposing);
    }

    public override ValueTask DisposeAsync() => inner.DisposeAsync();
}
