using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Threading.Channels;
using IpyRpc.Formatting;
using IpyRpc.MessagePack;
using IpyRpc.Protocol;

namespace IpyRpc;

/// <summary>
/// The other end of a connection, as something to call. A client calls its server through one
/// (<see cref="IpyRpcClient"/>); a server calls a client back through another (<see cref="IpyRpcConnection"/>):
/// the same dynamic calls, typed proxies, jobs, streams, live output, remote exceptions, cancellation
/// and timeouts in both directions.
/// </summary>
public abstract partial class IpyRpcPeer
{
    /// <summary>How many stream items a caller buffers before the callee must wait for it, unless <see cref="CallOptions.StreamWindow"/> says otherwise.</summary>
    public const int DefaultStreamWindow = 1024;

    private protected IpyRpcPeer()
    {
    }

    /// <summary>The live link calls go through now.</summary>
    /// <exception cref="IpyRpcConnectionException">There is none: the connection is closed, or cannot carry calls this way.</exception>
    private protected abstract PeerLink CurrentLink();

    /// <summary>
    /// The live link for a request made at <paramref name="started"/> (a <see cref="Stopwatch"/> timestamp) with
    /// <paramref name="timeout"/>: at once when the connection is up; a client that is reconnecting makes the request
    /// wait for it (<see cref="ReconnectOptions.WaitForReconnect"/>).
    /// </summary>
    private protected virtual ValueTask<PeerLink> LinkAsync(long started, TimeSpan? timeout, CancellationToken cancellationToken) => new(CurrentLink());

    /// <summary>
    /// Whether a request that failed on <paramref name="failedOn"/> without reaching the peer
    /// (<see cref="IpyRpcConnectionException.NotDelivered"/>) is to be made again, after whatever pause this waits; the
    /// next <see cref="LinkAsync"/> waits for a reconnect in progress.
    /// </summary>
    private protected virtual ValueTask<bool> AgainAsync(PeerLink failedOn, IpyRpcConnectionException failure, int attempt, long started, TimeSpan? timeout, CancellationToken cancellationToken) => new(false);

    /// <summary>
    /// The link an attempt at a request goes through, and what is left of its <paramref name="timeout"/> (the wait for
    /// the link, and earlier attempts, count against it). At once, and the whole timeout, when the connection is up.
    /// </summary>
    private ValueTask<(PeerLink Link, TimeSpan? Left)> AttemptAsync(int attempt, long started, TimeSpan? timeout, CancellationToken cancellationToken)
    {
        ValueTask<PeerLink> next = LinkAsync(started, timeout, cancellationToken);
        return attempt == 0 && next.IsCompletedSuccessfully ? new((next.Result, timeout)) : Waited(next, started, timeout);

        static async ValueTask<(PeerLink, TimeSpan?)> Waited(ValueTask<PeerLink> next, long started, TimeSpan? timeout)
            => (await next.ConfigureAwait(false), Left(timeout, started));
    }

    /// <summary>
    /// Sends a request over the current link and waits for its result (its error is thrown as the matching
    /// <see cref="IpyRpcException"/>). Its parts are not pooled, so it can be sent as it is again: one that certainly did
    /// not reach the peer is made again while <see cref="AgainAsync"/> says so (a client reconnecting).
    /// </summary>
    internal async Task<IpyRpcMessage> RequestAsync(IpyRpcMessage message, string what, Action<IpyRpcMessage>? output, CancellationToken cancellationToken, Action<IpyRpcMessage>? items = null, Action<IpyRpcMessage>? progress = null)
    {
        long started = Stopwatch.GetTimestamp();
        for (int attempt = 0; ; attempt++)
        {
            (PeerLink link, _) = await AttemptAsync(attempt, started, null, cancellationToken).ConfigureAwait(false);
            try
            {
                return await link.RequestAsync(message, what, new PendingRequest(null, output) { Items = items, Progress = progress }, cancellationToken, null).ConfigureAwait(false);
            }
            catch (IpyRpcConnectionException e) when (e.NotDelivered)
            {
                if (!await AgainAsync(link, e, attempt, started, null, cancellationToken).ConfigureAwait(false)) throw GaveUp(e, attempt, started);
            }
        }
    }

    /// <summary>The failure of a request that was made again until it was time to stop: the last failure, saying how long that was.</summary>
    private static IpyRpcConnectionException GaveUp(IpyRpcConnectionException last, int attempt, long started) => attempt == 0 ? last
        : new IpyRpcConnectionException(last.Error with { Message = $"{last.Error.Message} (made {attempt + 1} times over {Stopwatch.GetElapsedTime(started).TotalSeconds:0.#} s; it never reached the server)" }, last.Function, last.InnerException)
        {
            Reason = last.Reason,
            NotDelivered = true,
        };

    /// <summary>What is left of <paramref name="timeout"/> since <paramref name="started"/> (at least a millisecond, so that it is still sent as a deadline).</summary>
    private static TimeSpan? Left(TimeSpan? timeout, long started) => timeout is { } t
        ? TimeSpan.FromTicks(Math.Max(TimeSpan.TicksPerMillisecond, (t - Stopwatch.GetElapsedTime(started)).Ticks))
        : null;

    /// <summary>How calls encode their arguments unless told otherwise.</summary>
    private protected abstract Serialization DefaultSerialization { get; }

    /// <summary>
    /// After a call of <paramref name="function"/> in <paramref name="used"/> was refused as a serialization it does not
    /// accept: fetches the function list again, and says whether the function now asks for another one.
    /// </summary>
    private protected virtual Task<bool> RelearnAsync(string function, Serialization used, CancellationToken cancellationToken) => Task.FromResult(false);

    /// <summary>How a call of <paramref name="function"/> encodes its arguments when the call does not say: the one the function accepts, when its descriptor names one, else <see cref="DefaultSerialization"/>.</summary>
    private protected virtual Serialization SerializationFor(string function) => DefaultSerialization;

    /// <summary>Whether the other side describes <paramref name="function"/> as streaming its items (false when it is not known).</summary>
    private protected virtual bool Streams(string function) => false;

    /// <summary>Whether <paramref name="function"/> is known to the other side's function list, and streams its items.</summary>
    internal bool? IsStream(string function) => Streams(function) ? true : IsDescribed(function) ? false : null;

    /// <summary>Whether the other side's function list (as last fetched) has <paramref name="function"/>.</summary>
    private protected virtual bool IsDescribed(string function) => false;

    /// <summary>The deadline of calls that set none.</summary>
    private protected abstract TimeSpan? DefaultTimeout { get; }

    /// <summary>Where remote output goes unless a call says otherwise (<see langword="null"/>: see <see cref="OutputFor"/>).</summary>
    private protected abstract Action<OutputStream, string>? DefaultOutput { get; }

    /// <summary>
    /// Where a call's remote output goes: the call's handler, else the peer's, else, inside a running
    /// IpyRpc function, that function's own output (so it reaches whoever called it), else the console.
    /// </summary>
    internal Action<OutputStream, string> OutputFor(CallOptions? options)
        => options?.Output ?? DefaultOutput ?? (OutputCapture.CurrentSink is { } sink ? sink.Write : WriteToConsole);

    /// <summary>Creates a generated typed proxy over this peer.</summary>
    public T Proxy<T>() where T : IIpyRpcProxy<T> => T.Create(this);

    /// <summary>Asks the peer for every function it exports, with signatures and docs.</summary>
    public async Task<IReadOnlyList<FunctionDescriptor>> DescribeAsync(CancellationToken cancellationToken = default)
    {
        IpyRpcMessage reply = await RequestAsync(new IpyRpcMessage { Kind = MessageKind.Describe, Serialization = DefaultSerialization }, "describe", null, cancellationToken).ConfigureAwait(false);
        return DescriptorCodec.Decode(reply.Body.Span, reply.Serialization);
    }

    /// <summary>Calls <paramref name="function"/> with positional arguments; the result is converted to <typeparamref name="T"/>.</summary>
    public Task<T> CallAsync<T>(string function, params object?[] args) => CallAsync<T>(function, args, null, CancellationToken.None);

    /// <summary>Calls <paramref name="function"/> with positional arguments, options and cancellation.</summary>
    public Task<T> CallAsync<T>(string function, object?[] args, CallOptions? options, CancellationToken cancellationToken = default)
        => InvokeAsync(function, Positional(args), FormatterRegistry.Get<T>(), options, cancellationToken);

    /// <summary>Calls <paramref name="function"/> and returns its result as plain data (numbers, strings, arrays, dictionaries).</summary>
    public Task<object?> CallAsync(string function, params object?[] args) => CallAsync<object?>(function, args, null, CancellationToken.None);

    /// <summary>Calls <paramref name="function"/> with named arguments.</summary>
    public Task<T> CallNamedAsync<T>(string function, IReadOnlyDictionary<string, object?> args, CallOptions? options = null, CancellationToken cancellationToken = default)
        => InvokeAsync(function, Named(args), FormatterRegistry.Get<T>(), options, cancellationToken);

    /// <summary>Calls a function whose result is nil (a <see langword="void"/> method).</summary>
    public Task InvokeAsync(string function, IpyRpcArguments arguments, CallOptions? options = null, CancellationToken cancellationToken = default)
        => t_capturing is { } capture ? capture.Take(this, function, arguments, Formatters.Object, options, cancellationToken)
            : InvokeCoreAsync(function, arguments, Formatters.Object, options, cancellationToken);

    /// <summary>Calls a function with typed arguments and a typed result. Generated proxies use this.</summary>
    public Task<TResult> InvokeAsync<TResult>(string function, IpyRpcArguments arguments, IpyRpcFormatter<TResult> result, CallOptions? options = null, CancellationToken cancellationToken = default)
        => t_capturing is { } capture ? capture.Take(this, function, arguments, result, options, cancellationToken)
            : InvokeCoreAsync(function, arguments, result, options, cancellationToken);

    private async Task<TResult> InvokeCoreAsync<TResult>(string function, IpyRpcArguments arguments, IpyRpcFormatter<TResult> result, CallOptions? options, CancellationToken cancellationToken)
    {
        Serialization serialization = options?.Serialization ?? SerializationFor(function);
        TimeSpan? timeout = TimeoutFor(options);
        using Activity? span = IpyRpcTelemetry.StartDetached(function, ActivityKind.Client, null, function);
        long started = Stopwatch.GetTimestamp();
        try
        {
            // Made again only when it certainly did not reach the server (AgainAsync): a client reconnecting.
            for (int attempt = 0; ; attempt++)
            {
                (PeerLink link, TimeSpan? left) = await AttemptAsync(attempt, started, timeout, cancellationToken).ConfigureAwait(false);
                // Large arguments are encoded into pooled arrays: the transport gives them back once it has sent them.
                ReadOnlyMemory<byte> encoded = arguments.Encode(serialization, pooling: true, out PooledParts? pooled);
                var call = new IpyRpcMessage
                {
                    Kind = MessageKind.Call,
                    Function = function,
                    Serialization = serialization,
                    TimeoutMs = TimeoutMs(left),
                    Trace = span?.Id,
                    ReturnPointer = options?.ReturnPointer,
                    PointerTtlMs = PointerTtlMs(options),
                    Parts = [encoded],
                    Pooled = pooled,
                };

                var pending = new PendingRequest(OutputFor(options)) { Progress = arguments.ProgressHandler };
                IpyRpcMessage reply;
                try
                {
                    reply = await link.RequestAsync(call, function, pending, cancellationToken, left).ConfigureAwait(false);
                }
                catch (IpyRpcConnectionException e) when (e.NotDelivered)
                {
                    if (!await AgainAsync(link, e, attempt, started, timeout, cancellationToken).ConfigureAwait(false)) throw GaveUp(e, attempt, started);
                    continue;
                }
                catch (IpyRpcProtocolException e) when (e.Code == ErrorCodes.UnsupportedSerialization && options?.Serialization is null)
                {
                    // Refused unread, by a config given since the function list was fetched: the list again, and the call
                    // again in what the function accepts now (once; a caller that named a serialization is not second-guessed).
                    if (!await RelearnAsync(function, serialization, cancellationToken).ConfigureAwait(false)) throw;
                    return await InvokeCoreAsync(function, arguments, result, (options ?? new CallOptions()) with { Serialization = SerializationFor(function) }, cancellationToken).ConfigureAwait(false);
                }

                try
                {
                    return await ResultAsync(reply, result, function, cancellationToken).ConfigureAwait(false);
                }
                finally
                {
                    reply.Pooled?.Release(); // the result is decoded (formatters copy what they read): its frame can go back
                }
            }
        }
        catch (Exception e) when (span is not null)
        {
            span.SetStatus(ActivityStatusCode.Error, e.Message);
            throw;
        }
    }

    /// <summary>Calls a streaming function (one that returns <c>IAsyncEnumerable&lt;T&gt;</c>) with positional arguments; items arrive as the function produces them.</summary>
    public IAsyncEnumerable<T> StreamAsync<T>(string function, params object?[] args) => StreamAsync(function, Positional(args), FormatterRegistry.Get<T>(), null, CancellationToken.None);

    /// <summary>Calls a streaming function with positional arguments, options and cancellation.</summary>
    public IAsyncEnumerable<T> StreamAsync<T>(string function, object?[] args, CallOptions? options, CancellationToken cancellationToken = default)
        => StreamAsync(function, Positional(args), FormatterRegistry.Get<T>(), options, cancellationToken);

    /// <summary>Calls a streaming function with named arguments.</summary>
    public IAsyncEnumerable<T> StreamNamedAsync<T>(string function, IReadOnlyDictionary<string, object?> args, CallOptions? options = null, CancellationToken cancellationToken = default)
        => StreamAsync(function, Named(args), FormatterRegistry.Get<T>(), options, cancellationToken);

    /// <summary>
    /// Calls a streaming function: its items arrive as it produces them, in order. The callee
    /// may run at most <see cref="CallOptions.StreamWindow"/> items ahead of this enumerator (flow
    /// control); stopping the enumeration early (break, dispose, or <paramref name="cancellationToken"/>)
    /// cancels the function. The function's failure is thrown from the enumeration. Generated proxies use this.
    /// </summary>
    public IAsyncEnumerable<TItem> StreamAsync<TItem>(string function, IpyRpcArguments arguments, IpyRpcFormatter<TItem> item, CallOptions? options = null, CancellationToken cancellationToken = default)
    {
        // Recorded rather than made when it is being submitted as a job (SubmitStreamAsync); its result is the item count.
        if (t_capturing is { } capture) return capture.TakeStream<TItem>(this, function, arguments, options, cancellationToken);
        return StreamCoreAsync(function, arguments, item, options, cancellationToken);
    }

    private async IAsyncEnumerable<TItem> StreamCoreAsync<TItem>(string function, IpyRpcArguments arguments, IpyRpcFormatter<TItem> item, CallOptions? options, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        Serialization serialization = options?.Serialization ?? SerializationFor(function);
        TimeSpan? timeout = TimeoutFor(options);
        int window = options?.StreamWindow ?? DefaultStreamWindow;
        if (window < 1) throw new ArgumentOutOfRangeException(nameof(options), "CallOptions.StreamWindow must be at least 1.");

        using Activity? span = IpyRpcTelemetry.StartDetached(function, ActivityKind.Client, null, function); // lives as long as the enumeration
        long started = Stopwatch.GetTimestamp();
        bool relearned = options?.Serialization is not null; // a caller that named a serialization is not second-guessed
        // Made again only when it certainly did not reach the server (AgainAsync), or was refused unread for its
        // serialization (once, as a call is): then no item has come either.
        for (int attempt = 0; ; attempt++)
        {
            (PeerLink link, TimeSpan? left) = await AttemptAsync(attempt, started, timeout, cancellationToken).ConfigureAwait(false);
            var batches = Channel.CreateUnbounded<IpyRpcMessage>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
            var pending = new PendingRequest(OutputFor(options))
            {
                Progress = arguments.ProgressHandler,
                Items = m => batches.Writer.TryWrite(m),
            };
            var call = new IpyRpcMessage
            {
                Kind = MessageKind.Call,
                Function = function,
                Serialization = serialization,
                TimeoutMs = TimeoutMs(left),
                Window = window,
                Trace = span?.Id,
                Parts = [arguments.Encode(serialization)],
            };

            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            Task<IpyRpcMessage> done = link.RequestAsync(call, function, pending, stop.Token, left);
            // Items come before the final reply on the same link, so every one is queued before this completes the queue.
            _ = done.ContinueWith(static (_, w) => ((ChannelWriter<IpyRpcMessage>)w!).TryComplete(), batches.Writer, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            long unacknowledged = 0;
            IpyRpcException? undelivered;
            try
            {
                while (await batches.Reader.WaitToReadAsync(CancellationToken.None).ConfigureAwait(false))
                {
                    while (batches.Reader.TryRead(out IpyRpcMessage? batch))
                    {
                        foreach (TItem value in DecodeItems(batch, item, function))
                        {
                            yield return value;
                            if (++unacknowledged >= Math.Max(1, window / 2))
                            {
                                // Consumed half the window: let the callee run ahead again.
                                _ = link.SendQuietlyAsync(new IpyRpcMessage { Kind = MessageKind.Credit, Id = pending.Id, Credit = unacknowledged });
                                unacknowledged = 0;
                            }
                        }
                    }
                }

                undelivered = await UndeliveredAsync(done, refusedSerialization: !relearned).ConfigureAwait(false); // the function's failure, timeout or cancellation surfaces here
            }
            finally
            {
                await StopEarlyAsync(done, stop).ConfigureAwait(false); // cancels the function
            }

            if (undelivered is null) yield break;
            if (undelivered is IpyRpcProtocolException refused)
            {
                if (!await RelearnAsync(function, serialization, cancellationToken).ConfigureAwait(false)) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(refused);
                relearned = true;
                serialization = SerializationFor(function);
                continue;
            }

            var lost = (IpyRpcConnectionException)undelivered;
            if (!await AgainAsync(link, lost, attempt, started, timeout, cancellationToken).ConfigureAwait(false)) throw GaveUp(lost, attempt, started);
        }
    }

    /// <summary>
    /// Waits for a request's end: <see langword="null"/> when it succeeded; the failure when it certainly did not reach the
    /// peer, or (with <paramref name="refusedSerialization"/>) when it was refused unread for its serialization; any other
    /// failure is thrown.
    /// </summary>
    private static async Task<IpyRpcException?> UndeliveredAsync(Task<IpyRpcMessage> done, bool refusedSerialization)
    {
        try
        {
            await done.ConfigureAwait(false);
            return null;
        }
        catch (IpyRpcConnectionException e) when (e.NotDelivered)
        {
            return e;
        }
        catch (IpyRpcProtocolException e) when (refusedSerialization && e.Code == ErrorCodes.UnsupportedSerialization)
        {
            return e;
        }
    }

    /// <summary>
    /// For a reading stopped before its request ended (break, dispose, cancel): cancels the request (<paramref name="stop"/>)
    /// and waits until the other side has been told. Nothing to do for one that ended.
    /// </summary>
    internal static async Task StopEarlyAsync(Task<IpyRpcMessage> done, CancellationTokenSource stop)
    {
        if (done.IsCompleted) return;
        stop.Cancel();
        try
        {
            await done.ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or IpyRpcException)
        {
        }
    }

    /// <summary>Reads one <c>items</c> message: an array of items.</summary>
    internal static List<T> DecodeItems<T>(IpyRpcMessage batch, IpyRpcFormatter<T> formatter, string function)
    {
        try
        {
            if (batch.Serialization == Serialization.Json)
            {
                var reader = new Utf8JsonReader(batch.Body.Span, new JsonReaderOptions { MaxDepth = 128 });
                Formatting.Json.JsonRead.Next(ref reader);
                if (reader.TokenType != JsonTokenType.StartArray) throw new IpyRpcSerializationException("stream items must come as an array");
                var items = new List<T>();
                Formatting.Json.JsonRead.Next(ref reader);
                while (reader.TokenType != JsonTokenType.EndArray)
                {
                    items.Add(formatter.Read(ref reader));
                    Formatting.Json.JsonRead.Next(ref reader);
                }

                return items;
            }

            var r = new MessagePackReader(batch.Body.Span) { MaxDepth = 128 };
            int count = r.ReadArrayHeader();
            var list = new List<T>(count);
            for (int i = 0; i < count; i++) list.Add(formatter.Read(ref r));
            return list;
        }
        catch (Exception e) when (e is IpyRpcSerializationException or JsonException or MessagePackSerializationException)
        {
            throw new IpyRpcException(new RemoteError
            {
                Code = ErrorCodes.BadMessage,
                Message = $"Items of {function}'s stream could not be read as {TypeNames.Display(typeof(T))}: {e.Message}",
            }, function, e);
        }
    }

    /// <summary>Decodes a reply's value (<paramref name="what"/> names it in the error: the result, or an event's payload).</summary>
    internal static T Decode<T>(IpyRpcMessage reply, IpyRpcFormatter<T> formatter, string function, string what = "The result")
    {
        try
        {
            if (reply.Serialization == Serialization.Json)
            {
                var reader = new Utf8JsonReader(reply.Body.Span, new JsonReaderOptions { MaxDepth = 128 });
                Formatting.Json.JsonRead.Next(ref reader);
                return formatter.Read(ref reader);
            }

            var r = new MessagePackReader(reply.Body.Span) { MaxDepth = 128 };
            return formatter.Read(ref r);
        }
        catch (Exception e) when (e is IpyRpcSerializationException or JsonException or MessagePackSerializationException)
        {
            throw new IpyRpcException(new RemoteError
            {
                Code = ErrorCodes.BadMessage,
                Message = $"{what} could not be read as {TypeNames.Display(typeof(T))}: {e.Message}",
            }, function, e);
        }
    }

    /// <exception cref="ArgumentOutOfRangeException">Zero or negative.</exception>
    private static long? PointerTtlMs(CallOptions? options) => options?.PointerTimeToLive switch
    {
        null => null,
        { } ttl when ttl == Timeout.InfiniteTimeSpan => long.MaxValue,
        { } ttl when ttl > TimeSpan.Zero => (long)Math.Ceiling(ttl.TotalMilliseconds),
        { } ttl => throw new ArgumentOutOfRangeException(nameof(options), ttl, "CallOptions.PointerTimeToLive must be positive, or Timeout.InfiniteTimeSpan for until released or evicted."),
    };

    /// <summary>A call's timeout: its own, else the peer's default; <see cref="Timeout.InfiniteTimeSpan"/> is none.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Zero or negative.</exception>
    private TimeSpan? TimeoutFor(CallOptions? options)
    {
        TimeSpan? timeout = options?.Timeout ?? DefaultTimeout;
        if (timeout == Timeout.InfiniteTimeSpan) return null;
        if (timeout is { } t && t <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(options), t, $"A call's timeout must be positive (or null, or Timeout.InfiniteTimeSpan, for none), not {t}.");
        }

        return timeout;
    }

    private static long? TimeoutMs(TimeSpan? timeout) => timeout is { } t ? (long)Math.Ceiling(t.TotalMilliseconds) : null;

    private static IpyRpcArguments Positional(object?[] args)
    {
        var arguments = new IpyRpcArguments();
        foreach (object? a in args) arguments.Add(a, Formatters.Object);
        return arguments;
    }

    private static IpyRpcArguments Named(IReadOnlyDictionary<string, object?> args)
    {
        var arguments = new IpyRpcArguments();
        foreach (KeyValuePair<string, object?> a in args) arguments.Add(a.Key, a.Value, Formatters.Object);
        return arguments;
    }

    /// <summary>Writes remote output to this process's console.</summary>
    public static void WriteToConsole(OutputStream stream, string text)
    {
        TextWriter writer = stream == OutputStream.Stderr ? Console.Error : Console.Out;
        writer.Write(text);
        writer.Flush();
    }
}
