using System.Collections.Concurrent;
using IpyRpc.Protocol;
using IpyRpc.Transports;

namespace IpyRpc.Http;

/// <summary>
/// The client side of the binary protocol over HTTP. Each request message is one POST whose
/// response streams back that call's messages; many calls run at once over one
/// <see cref="HttpClient"/>. Cancelling a call aborts its request, which cancels it on the server.
/// A caller's continuation after its reply runs on the thread that read the reply, once that request's response
/// has ended (no other thread is woken for it); that thread serves nothing else, so a continuation may block.
/// While no request is in flight the channel keeps its connection on the server with a <c>ping</c> now and then (the
/// server ends a connection idle for longer than the timeout its answer to <c>hello</c> names); when the server says it
/// no longer holds the connection (it restarted, or this process was suspended past the timeout), the channel closes,
/// and a client reconnects.
/// </summary>
public sealed class HttpMessageChannel : PushMessageChannel
{
    // The channel's own: a message invoker over the handler, without HttpClient's layer (its linked cancellation
    // source, timeout and buffering, a request each). A caller's HttpClient (its handlers, default headers) is used as is.
    private readonly HttpMessageInvoker _http;
    private readonly bool _ownsHttp;
    private readonly Uri _endpoint;
    private readonly long _maxMessageBytes;
    private readonly ConcurrentDictionary<ulong, CancellationTokenSource> _requests = new();
    private readonly CancellationTokenSource _closing = new();
    private volatile string? _connection;
    private Timer? _keepAlive;
    private long _lastActive = Environment.TickCount64; // when a request last started or ended
    private long _keepAliveEvery; // ms: a ping when nothing has been sent for this long
    private int _pinging;

    /// <summary>Creates the channel for the server at <paramref name="baseAddress"/> (its binary endpoint is <c>ipyrpc</c> under it).</summary>
    public HttpMessageChannel(Uri baseAddress, HttpClient? http = null, long maxMessageBytes = ProtocolVersion.DefaultMaxMessageBytes, string binaryPath = "ipyrpc")
    {
        _ownsHttp = http is null;
        _http = http ?? new HttpMessageInvoker(new SocketsHttpHandler { PooledConnectionIdleTimeout = TimeSpan.FromMinutes(1) });
        _endpoint = new Uri(baseAddress, binaryPath.TrimStart('/'));
        _maxMessageBytes = maxMessageBytes;
    }

    /// <summary>Separate requests: the server cannot call back or push events over them.</summary>
    public override bool IsDuplex => false;

    /// <summary>Each request succeeds or fails on its own: nothing to keep alive.</summary>
    public override bool NeedsHeartbeat => false;

    /// <inheritdoc/>
    public override ValueTask SendAsync(IpyRpcMessage message, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_closing.IsCancellationRequested, this);
        if (message.Kind == MessageKind.Cancel && message.JobId is null)
        {
            if (_requests.TryRemove(message.Id, out CancellationTokenSource? request))
            {
                Abort(request);
            }

            return default;
        }

        if (message.Kind == MessageKind.Close)
        {
            // The client goes: told before the channel closes (closing aborts every request in flight), so the server ends
            // this connection now rather than when its idle sweep finds it (ConnectionIdleTimeout, minutes later).
            return _connection is null ? default : new ValueTask(CloseAsync(message));
        }

        if (message.Kind == MessageKind.Credit)
        {
            // About a stream another request carries (same id): a request of its own, answered with 204, tracked by none.
            _ = CreditAsync(message);
            return default;
        }

        Volatile.Write(ref _lastActive, Environment.TickCount64);
        // A source of the request's own, not one linked to the channel's closing (a registration a request): closing
        // cancels every request it finds, and one added while it did so cancels itself here.
        var cts = new CancellationTokenSource();
        _requests[message.Id] = cts;
        // Looked at after the request is counted in flight, as Lost looks at what is in flight after marking the channel
        // lost: a request is either refused here or waited for there, never failed by the channel's end unanswered.
        if (Volatile.Read(ref _lost) == 1)
        {
            // The server said it no longer holds this connection (or could not be reached): the request would be refused
            // unread. The client is connecting again, and makes it again over the new connection.
            _requests.TryRemove(message.Id, out _);
            cts.Dispose();
            DeliverError(message.Id, ErrorCodes.ConnectionLost, _lostBecause, notDelivered: true);
            if (_requests.IsEmpty) EndLost();
            return default;
        }

        if (_closing.IsCancellationRequested) Abort(cts);
        _ = ExchangeAsync(message, cts);
        return default;
    }

    /// <summary>How long a client's dispose waits for the server to take its <c>close</c>; the <c>close</c> itself goes on.</summary>
    private static readonly TimeSpan CloseTimeout = TimeSpan.FromSeconds(2);

    /// <summary>How long the <c>close</c> may take before it is given up (the server's idle sweep then ends the connection).</summary>
    private static readonly TimeSpan CloseGiveUp = TimeSpan.FromSeconds(30);

    /// <summary>The <c>close</c> on its way, if any: the channel's own HTTP client is disposed only once it is done.</summary>
    private Task? _closeSent;

    private async Task CloseAsync(IpyRpcMessage message)
    {
        // A server slow to answer (a busy machine) still gets the close: the dispose that sent it stops waiting after
        // CloseTimeout, the request does not.
        Task sending = SendCloseAsync(message);
        _closeSent = sending;
        await Task.WhenAny(sending, Task.Delay(CloseTimeout)).ConfigureAwait(false);
    }

    private async Task SendCloseAsync(IpyRpcMessage message)
    {
        try
        {
            using var timeout = new CancellationTokenSource(CloseGiveUp);
            using HttpRequestMessage request = Request(message);
            using HttpResponseMessage response = await PostAsync(request, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException or IOException or OperationCanceledException or ObjectDisposedException)
        {
            // The server is gone or does not answer in time: its idle sweep ends the connection instead.
        }
    }

    private async Task CreditAsync(IpyRpcMessage message)
    {
        try
        {
            using HttpRequestMessage request = Request(message);
            using HttpResponseMessage response = await PostAsync(request, _closing.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException or IOException or OperationCanceledException)
        {
            // The stream's own request fails or ends on its own; a lost credit only slows it.
        }
    }

    private async Task ExchangeAsync(IpyRpcMessage message, CancellationTokenSource cts)
    {
        try
        {
            await ExchangeCoreAsync(message, cts).ConfigureAwait(false);
        }
        finally
        {
            // No longer in flight once its answer is delivered (not before: the channel's end must not overtake it). The
            // last request in flight when the server said it no longer holds the connection has its answer: the channel ends.
            _requests.TryRemove(message.Id, out _);
            if (Volatile.Read(ref _lost) == 1 && _requests.IsEmpty) EndLost();
        }
    }

    private async Task ExchangeCoreAsync(IpyRpcMessage message, CancellationTokenSource cts)
    {
        IpyRpcMessage? final = null;
        bool notFound = false;
        try
        {
            using HttpRequestMessage request = Request(message);
            using HttpResponseMessage response = await PostAsync(request, cts.Token).ConfigureAwait(false);
            notFound = response.StatusCode == System.Net.HttpStatusCode.NotFound;
            // The server names the connection in its answer to a hello, and repeats the name the request carried after.
            if ((_connection is null || message.Kind == MessageKind.Hello)
                && response.Headers.TryGetValues(BinaryEndpoint.ConnectionHeader, out IEnumerable<string>? ids) && ids.FirstOrDefault() is { Length: > 0 } id)
            {
                _connection = id;
                if (message.Kind == MessageKind.Hello) KeepAlive(response);
            }

            if (!response.IsSuccessStatusCode && response.Content.Headers.ContentType?.MediaType is not BinaryEndpoint.ContentType)
            {
                // A refusal that is not the endpoint's (a proxy's or a gateway's page): said by its status, not read as messages.
                FailWithoutReply(message.Id, response, $"with {response.Content.Headers.ContentType?.MediaType ?? "no content type"}, not IpyRpc messages");
                return;
            }

            await using Stream body = response.Content.ReadAsStream(cts.Token); // the handler's response stream: there at once
            (bool any, final) = await ReadMessagesAsync(body, message.Id, cts.Token).ConfigureAwait(false);
            if (!any && !response.IsSuccessStatusCode) FailWithoutReply(message.Id, response, "and no IpyRpc reply");
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            // Cancelled by the caller (the client has already given up on the call) or by dispose.
        }
        catch (HttpRequestException e) when (e.HttpRequestError == HttpRequestError.ConnectionError)
        {
            // No connection to the server could be made for the request: it was not sent, so the caller may make it again.
            // The server is down or out of reach: the connection counts as lost (once the requests still in flight have
            // their answers), and the client dials again, its calls waiting for it as over the other transports.
            DeliverError(message.Id, ErrorCodes.ConnectionLost, "The HTTP exchange failed: " + e.Message, notDelivered: true);
            Lost(e.Message);
        }
        catch (Exception e) when (e is HttpRequestException or IOException or ProtocolException)
        {
            // The exchange broke off: a connection failure, as on the other transports (the request may have been read).
            Fail(message.Id, e is ProtocolException p ? p.Code : ErrorCodes.ConnectionLost, "The HTTP exchange failed: " + e.Message);
        }
        finally
        {
            cts.Dispose(); // still listed in flight until its answer is delivered: an abort finds it disposed, and lets it be
            Volatile.Write(ref _lastActive, Environment.TickCount64);
        }

        if (final is not null)
        {
            // The server refused the request unread: it does not hold the connection any more (it restarted, say). The
            // request did not run, and the client makes it again once it has connected again.
            bool lost = notFound && IsConnectionLost(final);
            DeliverFinal(lost ? final with { NotDelivered = true } : final);
            if (lost) Lost();
        }
    }

    /// <summary>Fails a request whose response carried no IpyRpc reply, by its HTTP status.</summary>
    private void FailWithoutReply(ulong id, HttpResponseMessage response, string what)
    {
        (string code, string why) = (int)response.StatusCode switch
        {
            401 or 403 => (ErrorCodes.Unauthorized, ": missing or wrong credentials"),
            502 or 503 or 504 => (ErrorCodes.ConnectionLost, ": a gateway in between could not reach the server"),
            _ => (ErrorCodes.Internal, ""),
        };
        Fail(id, code, $"The server answered HTTP {(int)response.StatusCode} {response.ReasonPhrase} {what}{why}.");
    }

    /// <summary>
    /// Pings the server whenever the connection its <c>hello</c> answer named has gone a third of the idle timeout that
    /// answer gave without a request, so that a client that is merely quiet keeps its connection (and with it its
    /// authentication). A server that names no timeout ends no connection for idling.
    /// </summary>
    private void KeepAlive(HttpResponseMessage hello)
    {
        if (_keepAlive is not null
            || !hello.Headers.TryGetValues(BinaryEndpoint.IdleTimeoutHeader, out IEnumerable<string>? values)
            || !double.TryParse(values.FirstOrDefault(), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double seconds)
            || !(seconds > 0))
        {
            return;
        }

        long every = (long)Math.Clamp(seconds * 1000 / 3, 10, int.MaxValue);
        _keepAliveEvery = every;
        _keepAlive = new Timer(static s => ((HttpMessageChannel)s!).Tick(), this, every / 2, every / 2);
    }

    private void Tick()
    {
        if (_closing.IsCancellationRequested || !_requests.IsEmpty || Environment.TickCount64 - Volatile.Read(ref _lastActive) < _keepAliveEvery) return;
        if (Interlocked.Exchange(ref _pinging, 1) == 0) _ = PingAsync();
    }

    private async Task PingAsync()
    {
        try
        {
            // Id 0, about no call of the client's: its pong is the channel's own and goes no further.
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_closing.Token);
            timeout.CancelAfter(CloseGiveUp);
            using HttpRequestMessage request = Request(new IpyRpcMessage { Kind = MessageKind.Ping, Id = 0 });
            using HttpResponseMessage response = await PostAsync(request, timeout.Token).ConfigureAwait(false);
            await using Stream body = response.Content.ReadAsStream(timeout.Token);
            // A close the server sends (it closed this connection on purpose) goes on to the client; the pong stops here.
            (_, IpyRpcMessage? answer) = await ReadMessagesAsync(body, 0, timeout.Token).ConfigureAwait(false);
            if (response.StatusCode == System.Net.HttpStatusCode.NotFound && answer is not null && IsConnectionLost(answer)) Lost();
        }
        catch (Exception e) when (e is HttpRequestException or IOException or OperationCanceledException or ObjectDisposedException or ProtocolException)
        {
            // The server cannot be reached now: the client's next request finds out what it is told.
        }
        finally
        {
            Volatile.Write(ref _lastActive, Environment.TickCount64);
            Volatile.Write(ref _pinging, 0);
        }
    }

    /// <summary>Whether a <c>404</c>'s reply is the endpoint's word that it does not hold the connection the request named.</summary>
    private static bool IsConnectionLost(IpyRpcMessage reply)
        => reply.Kind == MessageKind.Error && reply.Parts.Count > 0 && RemoteError.Decode(reply.Parts[0].Span, reply.Serialization).Code == ErrorCodes.ConnectionLost;

    private const string LostMessage = "The server no longer holds this connection (it restarted, or the connection was idle for longer than its timeout).";

    /// <summary>How long the channel waits, once the server no longer holds its connection, for the answers of requests still in flight.</summary>
    private static readonly TimeSpan LostGrace = TimeSpan.FromSeconds(5);

    /// <summary>Set once the server said it no longer holds this channel's connection, or could not be reached.</summary>
    private int _lost;

    /// <summary>
    /// The server does not hold this channel's connection any more (or, with <paramref name="unreachable"/>, could not be
    /// dialled: it is down or out of reach): the channel ends, and a client connects again. It
    /// ends once the requests in flight have their own answers (the server refuses each unread, and says so, so their
    /// callers can make them again) rather than failing them at once as lost, which would say they may have run.
    /// </summary>
    private void Lost(string? unreachable = null)
    {
        if (Volatile.Read(ref _lost) == 1) return;
        _lostBecause = unreachable is null ? LostMessage : "The server could not be reached: " + unreachable; // before it is seen lost
        if (Interlocked.Exchange(ref _lost, 1) == 1) return;
        _keepAlive?.Dispose();
        if (_requests.IsEmpty) EndLost();
        else _ = Task.Delay(LostGrace).ContinueWith(static (_, c) => ((HttpMessageChannel)c!).EndLost(), this, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
    }

    private string _lostBecause = LostMessage;

    private void EndLost() => CompleteReceiving(new IOException(_lostBecause));

    /// <summary>
    /// The POST carrying <paramref name="message"/>, framed: a small one copied into one array (its pooled parts go back
    /// at once), a large one written from its own parts (they go back once the request is disposed and not being written).
    /// </summary>
    private HttpRequestMessage Request(IpyRpcMessage message)
    {
        HttpContent content;
        if (message.PartBytes >= PooledParts.Threshold)
        {
            content = new FramedContent(message);
        }
        else
        {
            content = new ByteArrayContent(MessageCodec.EncodeFramed(message));
            message.Pooled?.Release(); // its parts are copied: the sender's arrays can go back
        }

        content.Headers.TryAddWithoutValidation("Content-Type", BinaryEndpoint.ContentType); // a constant: not parsed a request
        var request = new HttpRequestMessage(HttpMethod.Post, _endpoint) { Content = content };
        if (_connection is { } connection && message.Kind != MessageKind.Hello)
        {
            // Ties this request to the logical connection the server opened at hello (its authentication, limits, state).
            request.Headers.TryAddWithoutValidation(BinaryEndpoint.ConnectionHeader, connection);
        }

        return request;
    }

    /// <summary>Sends a request, its response's body read as it comes (never buffered: output streams live).</summary>
    private Task<HttpResponseMessage> PostAsync(HttpRequestMessage request, CancellationToken cancellationToken) => _http is HttpClient client
        ? client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken)
        : _http.SendAsync(request, cancellationToken);

    private static void Abort(CancellationTokenSource request)
    {
        try
        {
            request.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // Its exchange ended meanwhile: nothing left to abort.
        }
    }

    /// <summary>
    /// Hands over a request's last reply once its response has ended (its connection is back in the pool before the
    /// caller can start its next call), and runs the caller's continuation on this thread, now: the exchange is over
    /// and this thread has nothing else to receive, so no other thread is woken for the caller.
    /// </summary>
    private void DeliverFinal(IpyRpcMessage final)
    {
        ReplyHandoff handoff = ReplyHandoff.Begin();
        try
        {
            Deliver(final);
        }
        finally
        {
            handoff.End();
        }

        handoff.RunInline();
    }

    /// <summary>The connection id the server handed out at hello (<see langword="null"/> before it).</summary>
    public string? ConnectionId => _connection;

    /// <summary>What a response is read into: messages that fit are copied out of it, larger ones read into arrays of their own.</summary>
    private const int ReadBufferBytes = PooledParts.Threshold;

    /// <summary>
    /// Reads a response's messages, delivering each but the last reply, which it returns once the response has ended.
    /// Messages are read into a buffer of the response's (from the shared pool; their parts copied out, small as they
    /// are), except one that does not fit it, which is read into an array of its own sized by its frame's prefix (pooled,
    /// as large parts are) and handed to the message whole: no copy, and nothing of its size kept by anyone once it is read.
    /// </summary>
    private async Task<(bool Any, IpyRpcMessage? Final)> ReadMessagesAsync(Stream body, ulong requestId, CancellationToken cancellationToken)
    {
        byte[] buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(ReadBufferBytes);
        int filled = 0;
        bool any = false;
        IpyRpcMessage? final = null;
        try
        {
            while (true)
            {
                int start = 0;
                while (MessageCodec.TryReadFramed(buffer.AsMemory(start, filled - start), _maxMessageBytes, out IpyRpcMessage? message, out int consumed))
                {
                    // Parts are slices of the buffer, which is reused: copy them out.
                    final = Take(Detach(message!), requestId, final);
                    any = true;
                    start += consumed;
                }

                if (start > 0)
                {
                    Buffer.BlockCopy(buffer, start, buffer, 0, filled - start);
                    filled -= start;
                }

                // A message the buffer cannot hold (its size was checked against the limit as its prefix was read).
                long declared = MessageCodec.DeclaredFrameLength(buffer.AsSpan(0, filled));
                if (declared > buffer.Length)
                {
                    IpyRpcMessage large = await ReadLargeAsync(body, buffer.AsMemory(0, filled), declared, cancellationToken).ConfigureAwait(false);
                    final = Take(large, requestId, final);
                    any = true;
                    filled = 0;
                    continue;
                }

                int read = await body.ReadAsync(buffer.AsMemory(filled), cancellationToken).ConfigureAwait(false);
                if (read == 0)
                {
                    if (filled > 0) throw new ProtocolException(ErrorCodes.BadMessage, $"The response ended inside a message ({filled} bytes left over).");
                    return (any, final);
                }

                filled += read;
            }
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Delivers a message of a response, or returns it when it is the response's last reply (the final one so far otherwise).</summary>
    private IpyRpcMessage? Take(IpyRpcMessage message, ulong requestId, IpyRpcMessage? final)
    {
        // A refusal written before the server read the request (id 0) answers this request all the same.
        if (message.Id == 0) message = message with { Id = requestId };
        if (message.Kind is MessageKind.Result or MessageKind.Error or MessageKind.Hello or MessageKind.Pong) return message;
        Deliver(message);
        return final;
    }

    /// <summary>Reads the message of <paramref name="declared"/> bytes that starts with <paramref name="begun"/> into an array of its own.</summary>
    private async Task<IpyRpcMessage> ReadLargeAsync(Stream body, ReadOnlyMemory<byte> begun, long declared, CancellationToken cancellationToken)
    {
        if (declared > Array.MaxLength)
        {
            throw new ProtocolException(ErrorCodes.TooLarge, $"A message of {declared} bytes cannot be read as one block.");
        }

        int size = (int)declared;
        PooledParts? pool = PooledParts.ShouldPool(size) ? new PooledParts() : null;
        byte[] own = pool is not null ? pool.Rent(size) : GC.AllocateUninitializedArray<byte>(size);
        try
        {
            begun.CopyTo(own);
            int read = await body.ReadAtLeastAsync(own.AsMemory(begun.Length, size - begun.Length), size - begun.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
            if (begun.Length + read < size)
            {
                throw new ProtocolException(ErrorCodes.BadMessage, $"The response ended inside a message ({begun.Length + read} of its {size} bytes).");
            }

            return MessageCodec.DecodeFramed(own.AsMemory(0, size), _maxMessageBytes, pool);
        }
        catch
        {
            pool?.Release(); // not handed to a message
            throw;
        }
    }

    // Large parts go into pooled arrays, which the reader gives back (a client once it has decoded the result).
    private static IpyRpcMessage Detach(IpyRpcMessage m)
    {
        PooledParts? pool = null;
        var parts = new ReadOnlyMemory<byte>[m.Parts.Count];
        for (int i = 0; i < parts.Length; i++)
        {
            ReadOnlyMemory<byte> part = m.Parts[i];
            byte[] copy = PooledParts.ShouldPool(part.Length) ? (pool ??= new PooledParts()).Rent(part.Length) : GC.AllocateUninitializedArray<byte>(part.Length);
            part.Span.CopyTo(copy);
            parts[i] = copy.AsMemory(0, part.Length);
        }

        return m with { Parts = parts, Pooled = pool };
    }

    private void Fail(ulong id, string code, string message) => DeliverError(id, code, message);

    /// <summary>Aborts every request in flight and closes the channel.</summary>
    public override ValueTask DisposeAsync()
    {
        if (_closing.IsCancellationRequested) return default;
        _closing.Cancel();
        _keepAlive?.Dispose();
        foreach (CancellationTokenSource request in _requests.Values) Abort(request);
        if (_ownsHttp)
        {
            if (_closeSent is { IsCompleted: false } sending) _ = sending.ContinueWith(_ => _http.Dispose(), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
            else _http.Dispose();
        }

        CompleteReceiving();
        return default;
    }
}
