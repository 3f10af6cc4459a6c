using System.Threading.Channels;
using IpyRpc.Protocol;

namespace IpyRpc;

/// <summary>
/// A client's subscription to the events matching <see cref="Pattern"/>. Events wait in a buffer of
/// <see cref="IpyRpcClientOptions.EventBufferSize"/> for the handler (or the enumerator); when it is
/// full the oldest is dropped, so a slow handler never holds up the connection. Dispose it to stop.
/// </summary>
public sealed class IpyRpcSubscription : IAsyncDisposable
{
    private static readonly AsyncLocal<IpyRpcSubscription?> InHandler = new();
    private readonly Channel<IpyRpcMessage> _buffer;
    private readonly Func<IpyRpcSubscription, ValueTask> _unsubscribe;
    private readonly CancellationTokenSource _stop = new();
    private long _received;
    private long _dropped;
    private int _disposed;

    internal IpyRpcSubscription(string pattern, int capacity, Func<IpyRpcSubscription, ValueTask> unsubscribe)
    {
        Pattern = pattern;
        _unsubscribe = unsubscribe;
        _buffer = Channel.CreateBounded<IpyRpcMessage>(
            new BoundedChannelOptions(Math.Max(1, capacity)) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true, SingleWriter = true },
            _ => Interlocked.Increment(ref _dropped));
    }

    /// <summary>The event name or glob subscribed to.</summary>
    public string Pattern { get; }

    /// <summary>The events the server said match <see cref="Pattern"/> (and this client may receive), as of subscribing.</summary>
    public IReadOnlyList<string> Events { get; internal set; } = [];

    /// <summary>How many events arrived for this subscription.</summary>
    public long Received => Interlocked.Read(ref _received);

    /// <summary>How many events this subscription missed: dropped from its full buffer here, or by the server for a connection that fell behind.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>The last exception a handler threw (handlers' failures do not end the subscription).</summary>
    public Exception? LastHandlerError { get; private set; }

    internal CancellationToken Stopping => _stop.Token;

    internal ChannelReader<IpyRpcMessage> Reader => _buffer.Reader;

    internal Task Pump { get; set; } = Task.CompletedTask;

    internal bool Matches(string name) => Glob.IsLiteral(Pattern) ? Pattern == name : Internal.GlobMatcher.IsMatch(Pattern, name);

    /// <summary>Takes an event (on the receiving thread: never blocks).</summary>
    internal void Offer(IpyRpcMessage message, long droppedByServer)
    {
        if (droppedByServer > 0) Interlocked.Add(ref _dropped, droppedByServer);
        Interlocked.Increment(ref _received);
        _buffer.Writer.TryWrite(message);
    }

    internal void Failed(Exception e) => LastHandlerError = e;

    /// <summary>Runs the handler for one event, noting that this flow is inside it (a handler may dispose its own subscription).</summary>
    internal async ValueTask HandleAsync(Func<IpyRpcMessage, CancellationToken, ValueTask> handler, IpyRpcMessage message)
    {
        InHandler.Value = this;
        try
        {
            await handler(message, _stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Failed(e);
        }
        finally
        {
            InHandler.Value = null;
        }
    }

    /// <summary>Ends the subscription: the server stops sending its events (when no other subscription of this client shares the pattern) and the handler stops.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        _buffer.Writer.TryComplete();
        _stop.Cancel();
        try
        {
            await _unsubscribe(this).ConfigureAwait(false);
        }
        catch (IpyRpcException)
        {
            // The connection is gone: nothing is sent any more anyway.
        }

        if (InHandler.Value != this) await Pump.ConfigureAwait(false); // no handler runs after this returns (unless it is the one disposing)
    }
}
