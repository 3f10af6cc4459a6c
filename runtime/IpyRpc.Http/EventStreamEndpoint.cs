using System.Buffers;
using System.Text;
using System.Text.Json;
using IpyRpc.Protocol;
using Microsoft.AspNetCore.Http;

namespace IpyRpc.Http;

/// <summary>
/// The server's events as a Server-Sent Events stream (<c>GET /events?pattern=chat.*</c>, <c>text/event-stream</c>), for
/// clients that have no connection both ways: a browser's <c>EventSource</c>, <c>curl -N</c>, a JSON-RPC caller. Each
/// request is a connection of its own (a server session) that subscribes to its patterns and writes every event as
/// <c>event: NAME</c> and <c>data: PAYLOAD</c> (JSON on one line), until the client goes or the server stops.
/// </summary>
internal sealed class EventStreamEndpoint(IpyRpcServer server, IpyRpcHttpOptions options)
{
    /// <summary>The most patterns one stream subscribes to.</summary>
    public const int MaxPatterns = 32;

    private readonly CancellationTokenSource _stopping = new();

    // The server's latest events, numbered: each event goes out with an id, and a stream that reconnects with the last
    // it had (Last-Event-ID, as an EventSource does by itself) first hears what was published meanwhile.
    private readonly EventHistory? _history = options.EventStreamHistory switch
    {
        < 0 => throw new ArgumentOutOfRangeException(nameof(options), options.EventStreamHistory, "IpyRpcHttpOptions.EventStreamHistory is a count of events: 0 keeps none."),
        0 => null,
        var count => options.EventStreamHistoryBytes < 1
            ? throw new ArgumentOutOfRangeException(nameof(options), options.EventStreamHistoryBytes, "IpyRpcHttpOptions.EventStreamHistoryBytes is a size in bytes, 1 or more.")
            : server.RetainEvents(count, options.EventStreamHistoryBytes),
    };

    /// <summary>Ends every stream, telling its client the server is stopping (the app is shutting down; requests that stream forever would hold it up).</summary>
    public void Stop() => _stopping.Cancel();

    public async Task HandleAsync(HttpContext context)
    {
        HttpResponse response = context.Response;
        if (!HttpMethods.IsGet(context.Request.Method))
        {
            response.Headers.Allow = "GET";
            await ErrorAsync(response, StatusCodes.Status405MethodNotAllowed, ErrorCodes.BadMessage, $"The event stream is read with GET, not {context.Request.Method}.");
            return;
        }

        string[] patterns = [.. context.Request.Query["pattern"].Where(p => !string.IsNullOrEmpty(p)).Select(p => p!)];
        if (patterns.Length == 0) patterns = ["*"];
        if (patterns.Length > MaxPatterns)
        {
            await ErrorAsync(response, StatusCodes.Status400BadRequest, ErrorCodes.InvalidArguments, $"One stream takes at most {MaxPatterns} patterns, not {patterns.Length}: use globs (chat.*).");
            return;
        }

        if (server.IsStopping)
        {
            await ErrorAsync(response, StatusCodes.Status503ServiceUnavailable, ErrorCodes.Unavailable, "The server is shutting down.");
            return;
        }

        // Where the stream starts: what is published after this number reaches it (published while it subscribes too).
        long from = 0;
        // The header an EventSource sends when it reconnects; else the query's, for a page that starts a new EventSource
        // after an id it kept (an EventSource sets no headers of its own).
        string? resumeFrom = context.Request.Headers["Last-Event-ID"].FirstOrDefault() is { Length: > 0 } header ? header : context.Request.Query["lastEventId"].FirstOrDefault();
        Missed? missed = null;
        if (_history is not null)
        {
            from = _history.Last;
            if (!string.IsNullOrEmpty(resumeFrom))
            {
                if (_history.NumberOf(resumeFrom) is { } number) from = number;
                else missed = new Missed("unknown_id", EventHistory.Unknown(resumeFrom, "stream"));
            }
        }

        var stream = new EventWriter(response, _history, context.RequestAborted);
        ServerSession session = server.CreateSession(stream.SendAsync, new IpyRpcConnection("http", JsonRpcEndpoint.Address(context), RequestUser.Authenticated(context)));
        try
        {
            var names = new SortedSet<string>(StringComparer.Ordinal);
            for (int i = 0; i < patterns.Length; i++)
            {
                IpyRpcMessage reply = await stream.RequestAsync(session, new IpyRpcMessage { Kind = MessageKind.Subscribe, Id = (ulong)i + 1, Function = patterns[i], Serialization = Serialization.Json });
                if (reply.Kind == MessageKind.Error)
                {
                    RemoteError error = RemoteError.Decode(reply.Body.Span, Serialization.Json);
                    await ErrorAsync(response, StatusOf(error.Code, context), error.Code, error.Message);
                    return;
                }

                using JsonDocument matched = JsonDocument.Parse(reply.Body);
                foreach (JsonElement name in matched.RootElement.EnumerateArray()) names.Add(name.GetString()!);
            }

            response.StatusCode = StatusCodes.Status200OK;
            response.ContentType = "text/event-stream; charset=utf-8";
            response.Headers.CacheControl = "no-cache";
            response.Headers["X-Accel-Buffering"] = "no"; // a proxy in front (nginx) passes each event on at once
            List<KeptEvent> replay = [];
            if (_history is not null)
            {
                replay = _history.After(from, out bool complete);
                replay.RemoveAll(e => !names.Contains(e.Name));
                if (!complete && missed is null && !string.IsNullOrEmpty(resumeFrom))
                {
                    missed = new Missed("expired", _history.Expired(resumeFrom, "stream"));
                }
            }

            await stream.StartAsync(names, from, missed, replay);
            using var keepAlive = new PeriodicTimer(options.EventStreamKeepAlive);
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, _stopping.Token);
            Task<DisconnectInfo> ended = session.Ended;
            while (!context.RequestAborted.IsCancellationRequested)
            {
                Task tick = keepAlive.WaitForNextTickAsync(wait.Token).AsTask();
                if (await Task.WhenAny(ended, tick) == ended || _stopping.IsCancellationRequested)
                {
                    // The server ended it (it is stopping, or this stream fell too far behind): the client learns why.
                    DisconnectInfo info = ended.IsCompleted ? await ended : new DisconnectInfo(DisconnectReason.ServerStopping, "The server is shutting down.");
                    await stream.WriteAsync(Event("ipyrpc.closed", w =>
                    {
                        w.WriteStartObject();
                        w.WriteString("reason", DisconnectInfo.WireName(info.Reason));
                        w.WriteString("message", info.Message);
                        w.WriteEndObject();
                    }));
                    break;
                }

                if (!tick.IsCompletedSuccessfully) break; // the client went
                await stream.WriteAsync(": keep-alive\n\n"u8.ToArray());
            }
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went.
        }
        finally
        {
            await session.CloseAsync(new DisconnectInfo(DisconnectReason.ConnectionLost, "The event stream's client went."), notifyPeer: false);
        }
    }

    /// <summary>Why a stream that asked to resume could not hear everything it missed (<c>ipyrpc.missed</c>).</summary>
    private sealed record Missed(string Reason, string Message);

    // The statuses an EventSource gives up on (anything but 200): a refusal, not a failure worth retrying.
    private static int StatusOf(string code, HttpContext context) => code switch
    {
        ErrorCodes.NotFound => StatusCodes.Status404NotFound,
        ErrorCodes.InvalidArguments or ErrorCodes.BadMessage => StatusCodes.Status400BadRequest,
        ErrorCodes.Unauthorized => RequestUser.Authenticated(context) is null ? StatusCodes.Status401Unauthorized : StatusCodes.Status403Forbidden,
        ErrorCodes.Unavailable or ErrorCodes.TooManyRequests => StatusCodes.Status503ServiceUnavailable,
        _ => StatusCodes.Status500InternalServerError,
    };

    /// <summary>One event of the stream: its name, and its data as the JSON <paramref name="write"/> writes (one line).</summary>
    internal static byte[] Event(string name, Action<Utf8JsonWriter> write)
    {
        var text = new ArrayBufferWriter<byte>();
        text.Write(Encoding.UTF8.GetBytes($"event: {name}\ndata: "));
        using (var w = new Utf8JsonWriter(text, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            write(w);
        }

        text.Write("\n\n"u8);
        return text.WrittenSpan.ToArray();
    }

    /// <summary>A refusal, before the stream begins: <c>{"error": {"code", "message"}}</c> with an HTTP status an <c>EventSource</c> does not retry.</summary>
    internal static Task ErrorAsync(HttpResponse response, int status, string code, string message)
    {
        response.StatusCode = status;
        response.ContentType = "application/json";
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteStartObject("error");
            w.WriteString("code", code);
            w.WriteString("message", message);
            w.WriteEndObject();
            w.WriteEndObject();
        }

        return response.Body.WriteAsync(buffer.WrittenMemory).AsTask();
    }

    /// <summary>
    /// One response's writer: the session's replies to its subscribes, then its events, one write at a time. Events that
    /// come before the response has begun (between two subscribes) are held and written after <c>ipyrpc.subscribed</c>
    /// and the events replayed from the history. With a history, each event goes with its id, and an event whose number
    /// is not past the last written (replayed already) is not written again.
    /// </summary>
    private sealed class EventWriter(HttpResponse response, EventHistory? history, CancellationToken aborted)
    {
        private readonly SemaphoreSlim _writing = new(1, 1);
        private readonly List<IpyRpcMessage> _held = [];
        private TaskCompletionSource<IpyRpcMessage>? _reply;
        private bool _started;
        private long _last; // the number of the last event written (under the _held lock)
        private long _dropped; // events the server dropped, told with the next event written (under the _held lock)

        public async Task<IpyRpcMessage> RequestAsync(ServerSession session, IpyRpcMessage request)
        {
            var reply = new TaskCompletionSource<IpyRpcMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
            Volatile.Write(ref _reply, reply);
            await session.HandleAsync(request);
            return await reply.Task.WaitAsync(aborted);
        }

        /// <summary>Begins the stream: <c>ipyrpc.subscribed</c> (with the id of <paramref name="from"/>), <c>ipyrpc.missed</c>, the events replayed, the events held.</summary>
        public async Task StartAsync(IEnumerable<string> names, long from, Missed? missed, List<KeptEvent> replay)
        {
            var text = new ArrayBufferWriter<byte>();
            if (history is not null) text.Write(Encoding.UTF8.GetBytes($"id: {history.IdOf(from)}\n"));
            text.Write(Event("ipyrpc.subscribed", w =>
            {
                w.WriteStartArray();
                foreach (string name in names) w.WriteStringValue(name);
                w.WriteEndArray();
            }));
            if (missed is not null)
            {
                text.Write(Event("ipyrpc.missed", w =>
                {
                    w.WriteStartObject();
                    w.WriteString("reason", missed.Reason);
                    w.WriteString("message", missed.Message);
                    w.WriteEndObject();
                }));
            }

            await _writing.WaitAsync(aborted);
            try
            {
                lock (_held)
                {
                    _last = from;
                    foreach (KeptEvent e in replay) Append(text, e.Name, e.Number, e.Payload(Serialization.Json).Span, 0);
                    foreach (IpyRpcMessage message in _held) Append(text, message);
                    _held.Clear();
                    _started = true;
                }

                await WriteLockedAsync(text.WrittenMemory);
            }
            finally
            {
                _writing.Release();
            }
        }

        public async ValueTask SendAsync(IpyRpcMessage message, CancellationToken cancellationToken)
        {
            switch (message.Kind)
            {
                case MessageKind.Result or MessageKind.Error:
                    Volatile.Read(ref _reply)?.TrySetResult(message);
                    return;
                case MessageKind.Event:
                    var text = new ArrayBufferWriter<byte>(message.Body.Length + 96);
                    lock (_held)
                    {
                        if (!_started)
                        {
                            _held.Add(message);
                            return;
                        }

                        Append(text, message);
                    }

                    if (text.WrittenCount > 0) await WriteAsync(text.WrittenMemory);
                    return;
                default:
                    return; // nothing else is sent to a connection that calls nothing and said no hello
            }
        }

        private void Append(ArrayBufferWriter<byte> text, IpyRpcMessage message) => Append(text, message.Function!, message.Sequence ?? 0, message.Body.Span, message.Dropped ?? 0);

        // Writes one event (after an ipyrpc.dropped, when events were dropped before it), unless it was written already.
        private void Append(ArrayBufferWriter<byte> text, string name, long number, ReadOnlySpan<byte> json, long dropped)
        {
            _dropped += dropped;
            if (history is not null && number <= _last) return; // replayed already
            if (_dropped > 0) text.Write(Encoding.UTF8.GetBytes($"event: ipyrpc.dropped\ndata: {{\"dropped\":{_dropped}}}\n\n"));
            _dropped = 0;
            if (history is not null)
            {
                text.Write(Encoding.UTF8.GetBytes($"id: {history.IdOf(number)}\n"));
                _last = number;
            }

            text.Write(Encoding.UTF8.GetBytes($"event: {name}\ndata: "));
            // Compact JSON has no line breaks (they are escaped inside strings), so the payload is one data line.
            text.Write(json);
            text.Write("\n\n"u8);
        }

        public async Task WriteAsync(ReadOnlyMemory<byte> bytes)
        {
            try
            {
                await _writing.WaitAsync(aborted);
            }
            catch (OperationCanceledException)
            {
                return; // the client went
            }

            try
            {
                await WriteLockedAsync(bytes);
            }
            finally
            {
                _writing.Release();
            }
        }

        private async Task WriteLockedAsync(ReadOnlyMemory<byte> bytes)
        {
            try
            {
                await response.Body.WriteAsync(bytes, aborted);
                await response.Body.FlushAsync(aborted);
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException)
            {
                // The client went: the request's end closes the session.
            }
        }
    }
}
