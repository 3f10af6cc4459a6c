using System.Threading.Channels;
using IpyRpc.Protocol;

namespace IpyRpc.Transports;

/// <summary>
/// The receiving half that push-capable transports share: until <see cref="StartReceiving"/>,
/// received messages queue for <see cref="ReceiveAsync"/>; after it, each goes straight to the
/// callback, one at a time and in order, on the thread that received it.
/// </summary>
public abstract class PushMessageChannel : IPushMessageChannel
{
    private readonly Channel<IpyRpcMessage> _incoming = Channel.CreateUnbounded<IpyRpcMessage>(new UnboundedChannelOptions { SingleReader = true });
    private readonly object _deliverGate = new();
    private Action<IpyRpcMessage>? _push;
    private Action<Exception?>? _closed;
    private int _completed;
    private Exception? _completion;

    /// <inheritdoc/>
    public abstract ValueTask SendAsync(IpyRpcMessage message, CancellationToken cancellationToken = default);

    /// <inheritdoc/>
    public abstract ValueTask DisposeAsync();

    /// <inheritdoc/>
    public virtual bool IsDuplex => true;

    /// <inheritdoc/>
    public virtual bool NeedsHeartbeat => true;

    /// <inheritdoc/>
    public void StartReceiving(Action<IpyRpcMessage> onMessage, Action<Exception?> onClosed)
    {
        lock (_deliverGate)
        {
            _closed = onClosed;
            _push = onMessage;
            while (_incoming.Reader.TryRead(out IpyRpcMessage? early)) onMessage(early);
        }

        if (Volatile.Read(ref _completed) == 1) onClosed(_completion); // it ended before anyone listened
    }

    /// <inheritdoc/>
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<IpyRpcMessage?> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        // Nothing may keep a message handed over, and with it its parts (a large result's array), until the next comes:
        // a single reader's ReadAsync keeps the last one it handed to a waiting reader in the operation it reuses, so
        // this waits with WaitToReadAsync; that operation keeps the continuation it last ran, this method's state, which
        // a pooled builder clears (the message with it) once its result has been taken.
        ChannelReader<IpyRpcMessage> reader = _incoming.Reader;
        while (true)
        {
            if (reader.TryRead(out IpyRpcMessage? message)) return message;
            if (!await reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false)) return null;
        }
    }

    /// <summary>Hands a received message on. Serialized: transports may call it from several threads.</summary>
    protected void Deliver(IpyRpcMessage message)
    {
        lock (_deliverGate)
        {
            if (_push is { } push) push(message);
            else _incoming.Writer.TryWrite(message);
        }
    }

    /// <summary>Reports a call's failure as an error message about it.</summary>
    protected void DeliverError(ulong id, string code, string message) => DeliverError(id, code, message, notDelivered: false);

    /// <summary>
    /// Reports a call's failure as an error message about it; <paramref name="notDelivered"/>: the request certainly did
    /// not reach the peer's functions (see <see cref="IpyRpcMessage.NotDelivered"/>).
    /// </summary>
    protected void DeliverError(ulong id, string code, string message, bool notDelivered) => Deliver(new IpyRpcMessage
    {
        Kind = MessageKind.Error,
        Id = id,
        Parts = [new RemoteError { Code = code, Message = message }.Encode(Serialization.MessagePack)],
        NotDelivered = notDelivered,
    });

    /// <summary>Ends receiving: readers see the end, the push callback hears of the close.</summary>
    protected void CompleteReceiving(Exception? error = null)
    {
        if (Volatile.Read(ref _completed) == 1) return;
        _completion = error;
        if (Interlocked.Exchange(ref _completed, 1) == 1) return;
        _incoming.Writer.TryComplete();
        Action<Exception?>? closed;
        lock (_deliverGate) closed = _closed;
        closed?.Invoke(error);
    }
}
