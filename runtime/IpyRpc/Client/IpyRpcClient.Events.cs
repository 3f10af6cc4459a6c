using System.Runtime.CompilerServices;
using IpyRpc.Formatting;
using IpyRpc.Protocol;

namespace IpyRpc;

public sealed partial class IpyRpcClient
{
    // What a payload that cannot be read is called in its error.
    private const string EventPayload = "The event's payload";

    /// <summary>
    /// Subscribes to a typed event: <paramref name="handler"/> runs for each one, in order, on a task
    /// of the subscription's own (never on the connection's thread, so a slow handler holds up nothing
    /// but its own buffer). Dispose the subscription to stop. Survives reconnects.
    /// </summary>
    /// <exception cref="IpyRpcNotFoundException">The server publishes no such event.</exception>
    /// <exception cref="IpyRpcUnauthorizedException">The server's rules do not let this client receive it.</exception>
    /// <exception cref="SchemaMismatchException">An event from a schema file that the server no longer publishes, or publishes with another payload.</exception>
    public Task<IpyRpcSubscription> SubscribeAsync<T>(IpyRpcEvent<T> ipyRpcEvent, Action<T> handler, CancellationToken cancellationToken = default)
        => SubscribeAsync(ipyRpcEvent, handler, null, cancellationToken);

    /// <summary>Subscribes to a typed event, starting as <paramref name="options"/> say (after an event heard before: <see cref="SubscribeOptions.ResumeAfter"/>).</summary>
    /// <exception cref="ArgumentException"><see cref="SubscribeOptions.ResumeAfter"/> is not an event id.</exception>
    public Task<IpyRpcSubscription> SubscribeAsync<T>(IpyRpcEvent<T> ipyRpcEvent, Action<T> handler, SubscribeOptions? options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(handler);
        return SubscribeAsync(ipyRpcEvent, (value, _) =>
        {
            handler(value);
            return default;
        }, options, cancellationToken);
    }

    /// <summary>Subscribes to a typed event with an asynchronous handler (awaited before the next event is handed over).</summary>
    public Task<IpyRpcSubscription> SubscribeAsync<T>(IpyRpcEvent<T> ipyRpcEvent, Func<T, CancellationToken, ValueTask> handler, CancellationToken cancellationToken = default)
        => SubscribeAsync(ipyRpcEvent, handler, null, cancellationToken);

    /// <summary>Subscribes to a typed event with an asynchronous handler, starting as <paramref name="options"/> say.</summary>
    /// <exception cref="ArgumentException"><see cref="SubscribeOptions.ResumeAfter"/> is not an event id.</exception>
    public Task<IpyRpcSubscription> SubscribeAsync<T>(IpyRpcEvent<T> ipyRpcEvent, Func<T, CancellationToken, ValueTask> handler, SubscribeOptions? options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(handler);
        if (SchemaGuard.EventMismatch(this, ipyRpcEvent.Name, ipyRpcEvent.Schema) is { } mismatch) return Task.FromException<IpyRpcSubscription>(mismatch);
        IpyRpcFormatter<T> formatter = ipyRpcEvent.Formatter;
        return _events.SubscribeAsync(ipyRpcEvent.Name, (heard, token) => handler(Decode(heard.Message, formatter, heard.Message.Function!, EventPayload), token), options, cancellationToken);
    }

    /// <summary>Subscribes to every event whose name matches <paramref name="pattern"/> (a name or a glob such as <c>chat.*</c>); payloads arrive as plain data.</summary>
    public Task<IpyRpcSubscription> SubscribeAsync(string pattern, Action<ReceivedEvent> handler, CancellationToken cancellationToken = default)
        => SubscribeAsync(pattern, handler, null, cancellationToken);

    /// <summary>Subscribes to every event whose name matches <paramref name="pattern"/>, starting as <paramref name="options"/> say.</summary>
    /// <exception cref="ArgumentException"><see cref="SubscribeOptions.ResumeAfter"/> is not an event id.</exception>
    public Task<IpyRpcSubscription> SubscribeAsync(string pattern, Action<ReceivedEvent> handler, SubscribeOptions? options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(handler);
        return _events.SubscribeAsync(pattern, (heard, _) =>
        {
            handler(Received(heard));
            return default;
        }, options, cancellationToken);
    }

    /// <summary>A typed event's occurrences as an async stream; the subscription ends when the enumeration does.</summary>
    public async IAsyncEnumerable<T> EventsAsync<T>(IpyRpcEvent<T> ipyRpcEvent, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        if (SchemaGuard.EventMismatch(this, ipyRpcEvent.Name, ipyRpcEvent.Schema) is { } mismatch) throw mismatch;
        IpyRpcFormatter<T> formatter = ipyRpcEvent.Formatter;
        await foreach (IpyRpcSubscription.Heard heard in _events.ReadAsync(ipyRpcEvent.Name, null, cancellationToken).ConfigureAwait(false))
        {
            yield return Decode(heard.Message, formatter, heard.Message.Function!, EventPayload);
        }
    }

    /// <summary>The events matching <paramref name="pattern"/> as an async stream of names, plain-data payloads and ids.</summary>
    public IAsyncEnumerable<ReceivedEvent> EventsAsync(string pattern, CancellationToken cancellationToken = default) => EventsAsync(pattern, null, cancellationToken);

    /// <summary>
    /// The events matching <paramref name="pattern"/> as an async stream, starting as <paramref name="options"/> say: after
    /// an event heard before (<see cref="SubscribeOptions.ResumeAfter"/>, such as the last <see cref="ReceivedEvent.Id"/>
    /// an earlier enumeration gave).
    /// </summary>
    /// <exception cref="ArgumentException"><see cref="SubscribeOptions.ResumeAfter"/> is not an event id.</exception>
    public async IAsyncEnumerable<ReceivedEvent> EventsAsync(string pattern, SubscribeOptions? options, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await foreach (IpyRpcSubscription.Heard heard in _events.ReadAsync(pattern, options, cancellationToken).ConfigureAwait(false))
        {
            yield return Received(heard);
        }
    }

    private static ReceivedEvent Received(IpyRpcSubscription.Heard heard)
        => new(heard.Message.Function!, Decode(heard.Message, Formatters.Object, heard.Message.Function!, EventPayload)) { Id = heard.Id };

    /// <summary>How many events the server dropped for this client because it fell behind (see <see cref="IpyRpcServerOptions.EventBufferSize"/>).</summary>
    public long EventsDroppedByServer => _events.DroppedByServer;

    /// <summary>
    /// Refuses a subscription over a transport that cannot carry events (HTTP requests: the server cannot speak first),
    /// before it is listed: a listed one is renewed at every reconnect, which the server would refuse each time.
    /// </summary>
    internal void EnsureEventsCarried()
    {
        if (_link is { Channel.IsDuplex: false })
        {
            throw new IpyRpcProtocolException(new RemoteError
            {
                Code = ErrorCodes.BadMessage,
                Message = "Events need a connection that carries messages both ways (in process, ZeroMQ, WebSockets); this one carries separate HTTP requests, which the server cannot speak over first. Connect with HttpCarrier.WebSocket for events.",
            }, "subscribe");
        }
    }

    /// <summary>
    /// Sends a subscribe (made afresh for each try by <paramref name="ask"/>); while the client reconnects, once it is back
    /// (as calls wait, up to <see cref="ReconnectOptions.WaitForReconnect"/>). A subscription can be asked for again
    /// whatever became of the last ask: one lost with its connection is asked for again over the next. It is listed
    /// already, so a reconnect that completes meanwhile renews it too, which the server takes once.
    /// </summary>
    internal async Task<IpyRpcMessage> SubscribeOnServerAsync(Func<(IpyRpcMessage Request, PendingRequest Ask)> ask, CancellationToken cancellationToken)
    {
        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        while (true)
        {
            await LinkAsync(started, null, cancellationToken).ConfigureAwait(false);
            Link link = CurrentClientLink();
            try
            {
                (IpyRpcMessage request, PendingRequest pending) = ask();
                return await link.RequestAsync(request, "subscribe", pending, cancellationToken).ConfigureAwait(false);
            }
            catch (IpyRpcConnectionException) when (_dial is not null && WaitLeft(started, null) > TimeSpan.Zero && (ReconnectInProgress() || link.Calls.Broken is null))
            {
                // Lost with the connection (or, over HTTP requests, not sent while the server is out of reach): again, once
                // the connection is back; a link still up gets a moment first, for its end to be noticed.
                if (link.Calls.Broken is null && _link == link) await Task.Delay(100, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    internal async Task UnsubscribeOnServerAsync(string pattern)
    {
        try
        {
            await CurrentClientLink().RequestAsync(new IpyRpcMessage { Kind = MessageKind.Unsubscribe, Function = pattern, Serialization = Options.Serialization }, "unsubscribe", CancellationToken.None).ConfigureAwait(false);
        }
        catch (IpyRpcConnectionException)
        {
            // Gone: the server forgot the subscription with the connection.
        }
    }
}

/// <summary>An event as an untyped subscription receives it.</summary>
/// <param name="Name">The event's name.</param>
/// <param name="Payload">Its payload as plain data (numbers, strings, arrays, dictionaries).</param>
public readonly record struct ReceivedEvent(string Name, object? Payload)
{
    /// <summary>
    /// Its id (<c>EPOCH-NUMBER</c>) from a server that keeps a history of its events, or <see langword="null"/>: keep the
    /// last one handled to go on from there later (<see cref="SubscribeOptions.ResumeAfter"/>).
    /// </summary>
    public string? Id { get; init; }
}
