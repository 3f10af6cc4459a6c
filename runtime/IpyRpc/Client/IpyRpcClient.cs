using IpyRpc.Protocol;
using IpyRpc.Transports;

namespace IpyRpc;

/// <summary>
/// A connection to an IpyRpc server. On connect it learns every function with its docstrings
/// (<see cref="Functions"/>, <see cref="Help(string)"/>); calls can be dynamic (<see cref="IpyRpcPeer.CallAsync{T}(string, object?[])"/>)
/// or typed through a generated proxy (<see cref="IpyRpcPeer.Proxy{T}"/>). Remote output is written to the
/// local console as it arrives; remote exceptions are rethrown as <see cref="RemoteException"/>.
/// Many calls may be in flight at once over one client.
/// </summary>
/// <remarks>
/// The connection works both ways: functions the client exports (<see cref="IpyRpcClientOptions.Exports"/>)
/// can be called by the server, and the client receives the events it subscribes to
/// (<see cref="SubscribeAsync{T}(IpyRpcEvent{T}, Action{T}, CancellationToken)"/>). When the connection
/// ends, <see cref="Disconnected"/> says why; with <see cref="IpyRpcClientOptions.Reconnect"/> the client
/// dials again by itself where the transport can.
/// </remarks>
public sealed partial class IpyRpcClient : IpyRpcPeer, IAsyncDisposable
{
    private readonly Func<CancellationToken, ValueTask<IMessageChannel>>? _dial;
    private readonly Func<ValueTask>? _onDispose;
    private readonly CancellationTokenSource _closing = new();
    private readonly object _gate = new();
    private readonly Lazy<IpyRpcServer> _exports;
    private readonly EventHub _events;
    private Link? _link;
    private Task _reconnecting = Task.CompletedTask;
    private Task _announcements = Task.CompletedTask;
    private IReadOnlyList<FunctionDescriptor> _functions = [];
    private int _reconnectAttempt;
    private volatile string? _gaveUp;
    private int _disposed;

    // Calls that wait for the connection to come back: they wake the reconnect loop, and the loop wakes them when a
    // link is ready or it stops trying. Each signal is a task completed once and replaced.
    private int _callsWaiting;
    private TaskCompletionSource _dialSoon = NewSignal();
    private TaskCompletionSource _linkChanged = NewSignal();

    private IpyRpcClient(IpyRpcClientOptions options, Func<CancellationToken, ValueTask<IMessageChannel>>? dial, Func<ValueTask>? onDispose)
    {
        Options = options;
        _dial = dial;
        _onDispose = onDispose;
        _exports = new Lazy<IpyRpcServer>(CreateExportsHost, LazyThreadSafetyMode.ExecutionAndPublication);
        _events = new EventHub(this);
        if (options.Exports.Count > 0) _ = _exports.Value; // registration errors surface at connect
    }

    private long _bytesReceived;

    /// <summary>Payload bytes (message parts: values, output, errors) received from the server on this client's connection, reconnects included. Fetches from pointers' holders count in <see cref="IpyRpcPeer.PointerBytesFetched"/>.</summary>
    public long BytesReceived => Interlocked.Read(ref _bytesReceived);

    /// <summary>The options the client was created with.</summary>
    public IpyRpcClientOptions Options { get; }

    /// <summary>Every function the server has, with its signature and docs, as of connecting (or <see cref="RefreshAsync(CancellationToken)"/>).</summary>
    public IReadOnlyList<FunctionDescriptor> Functions => _functions;

    /// <summary>Every event the server publishes, with its payload type and docs, as of connecting.</summary>
    public IReadOnlyList<EventDescriptor> Events { get; private set; } = [];

    /// <summary>The protocol version agreed with the server.</summary>
    public int ProtocolVersionInUse { get; private set; }

    /// <summary>What the server called itself in its hello.</summary>
    public string? ServerAgent { get; private set; }

    /// <summary>Whether the connection is up now (false after it was lost, while reconnecting, and after dispose).</summary>
    public bool IsConnected => _link is { Ready: true, Calls.Broken: null };

    /// <summary>
    /// Raised once each time the connection ends, with why: the server closed it or is stopping, it was
    /// lost (the server's process died, the network went), heartbeats went unanswered, the server revoked
    /// its credentials, or this client was disposed. Handlers run off the transport's threads, in order with
    /// <see cref="Reconnecting"/> and <see cref="Reconnected"/>.
    /// </summary>
    public event Action<DisconnectInfo>? Disconnected;

    /// <summary>Raised before each attempt to reconnect (with <see cref="IpyRpcClientOptions.Reconnect"/>).</summary>
    public event Action<ReconnectAttempt>? Reconnecting;

    /// <summary>Raised when the client has reconnected: hello, authentication, functions and subscriptions are done again.</summary>
    public event Action? Reconnected;

    /// <summary>Connects over <paramref name="channel"/>: says hello, agrees a version and fetches the function list.</summary>
    public static Task<IpyRpcClient> ConnectAsync(IMessageChannel channel, IpyRpcClientOptions? options = null, CancellationToken cancellationToken = default)
        => ConnectAsync(channel, options, null, cancellationToken);

    /// <summary>
    /// Connects to a server in this process. Messages still go through bytes (encoded and decoded
    /// as on any transport), so this is the real protocol, minus the network.
    /// </summary>
    public static Task<IpyRpcClient> ConnectInProcessAsync(IpyRpcServer server, IpyRpcClientOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new IpyRpcClientOptions();
        (IMessageChannel client, IMessageChannel serverEnd) = InProcessTransport.CreatePair(options.MaxMessageBytes, server.Options.MaxMessageBytes);
        var stop = new CancellationTokenSource();
        Task serving = server.ServeAsync(serverEnd, stop.Token);
        return ConnectAsync(client, options, async () =>
        {
            await client.DisposeAsync().ConfigureAwait(false);
            await Task.WhenAny(serving, Task.Delay(TimeSpan.FromSeconds(5))).ConfigureAwait(false); // the server sees the goodbye, then the end
            stop.Cancel();
            await serving.ConfigureAwait(false);
            await serverEnd.DisposeAsync().ConfigureAwait(false);
            stop.Dispose();
        }, cancellationToken);
    }

    /// <summary>For transports: connects over a channel and runs <paramref name="onDispose"/> when the client is disposed.</summary>
    public static async Task<IpyRpcClient> ConnectAsync(IMessageChannel channel, IpyRpcClientOptions? options, Func<ValueTask>? onDispose, CancellationToken cancellationToken = default)
    {
        var client = new IpyRpcClient(options ?? new IpyRpcClientOptions(), null, onDispose);
        try
        {
            await client.OpenAsync(channel, cancellationToken).ConfigureAwait(false);
            return client;
        }
        catch
        {
            await client.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// For transports that can dial again: connects over the channel <paramref name="dial"/> makes, and
    /// with <see cref="IpyRpcClientOptions.Reconnect"/> dials again after the connection is lost.
    /// </summary>
    public static async Task<IpyRpcClient> ConnectAsync(Func<CancellationToken, ValueTask<IMessageChannel>> dial, IpyRpcClientOptions? options, Func<ValueTask>? onDispose = null, CancellationToken cancellationToken = default)
    {
        var client = new IpyRpcClient(options ?? new IpyRpcClientOptions(), dial, onDispose);
        try
        {
            IMessageChannel channel = await dial(cancellationToken).ConfigureAwait(false);
            await client.OpenAsync(channel, cancellationToken).ConfigureAwait(false);
            return client;
        }
        catch
        {
            await client.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Opens a link over <paramref name="channel"/>: hello, authentication, the function list, the subscriptions; then it becomes the client's link.</summary>
    private async Task OpenAsync(IMessageChannel channel, CancellationToken cancellationToken)
    {
        var link = new Link(this, channel);
        lock (_gate)
        {
            if (_disposed == 1)
            {
                _ = channel.DisposeAsync().AsTask();
                throw new IpyRpcConnectionException("The client was disposed.");
            }

            _link = link; // messages from the server find their link from the first one on
        }

        link.Start();
        bool greeted = false;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _closing.Token);
            timeout.CancelAfter(Options.ConnectTimeout);
            byte[]? clientNonce = Options.SharedSecret is null ? null : SharedSecretProof.NewNonce();
            IpyRpcMessage hello = await link.RequestAsync(new IpyRpcMessage { Kind = MessageKind.Hello, Versions = ProtocolVersion.Supported, Agent = "ipyrpc-dotnet-client/" + ProtocolVersion.Current, Nonce = clientNonce }, "hello", timeout.Token).ConfigureAwait(false);
            greeted = true;
            ProtocolVersionInUse = hello.Versions is [int v, ..] ? v : ProtocolVersion.Current;
            ServerAgent = hello.Agent;
            if (hello.Auth?.Contains(SharedSecretProof.Scheme) == true)
            {
                await ProveSecretAsync(link, hello, clientNonce, timeout.Token).ConfigureAwait(false);
            }

            await RefreshAsync(link, timeout.Token).ConfigureAwait(false);
            await _events.ResubscribeAsync((request, ask, token) => link.RequestAsync(request, "subscribe", ask, token), timeout.Token).ConfigureAwait(false);
            link.StartHeartbeat();
            link.Ready = true; // calls go through it from now on, never before its hello and authentication are done
            Signal(ref _linkChanged);
        }
        catch (Exception e)
        {
            if (greeted && link.Calls.Broken is null)
            {
                // The server holds a connection for this link since its hello (a refused secret included): say goodbye,
                // so that a carrier without a socket of its own to close (HTTP requests) does not leave it to the idle sweep.
                try
                {
                    await link.Calls.SendQuietlyAsync(new DisconnectInfo(DisconnectReason.Closed, "The client gave up connecting: " + e.Message).ToMessage()).WaitAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
                }
                catch (TimeoutException)
                {
                }
            }

            End(link, new DisconnectInfo(DisconnectReason.ConnectionLost, "Connecting failed: " + e.Message, e), announce: false);
            if (e is OperationCanceledException && !cancellationToken.IsCancellationRequested && !_closing.IsCancellationRequested)
            {
                throw new IpyRpcTimeoutException(new RemoteError { Code = ErrorCodes.Timeout, Message = $"The server did not complete the connection within {Options.ConnectTimeout}." }, "connect");
            }

            throw;
        }
    }

    /// <summary>Answers the server's shared-secret challenge, after checking the server's own proof.</summary>
    private async Task ProveSecretAsync(Link link, IpyRpcMessage hello, byte[]? clientNonce, CancellationToken cancellationToken)
    {
        static IpyRpcUnauthorizedException Refused(string message) => new(new RemoteError { Code = ErrorCodes.Unauthorized, Message = message }, "connect");
        if (Options.SharedSecret is not { } secret || clientNonce is null)
        {
            throw Refused("The server requires a shared secret: set IpyRpcClientOptions.SharedSecret to the server's.");
        }

        byte[] key = SharedSecretProof.Key(secret);
        if (hello.Nonce is not { } serverNonce || hello.Proof is not { } serverProof
            || !SharedSecretProof.Matches(SharedSecretProof.Server(key, clientNonce, serverNonce.Span), serverProof.Span))
        {
            throw Refused("The server's proof does not match this shared secret: the secrets differ, or this is not the server you meant to reach.");
        }

        var proof = new Dictionary<string, object?>
        {
            ["scheme"] = SharedSecretProof.Scheme,
            ["proof"] = SharedSecretProof.Client(key, serverNonce.Span, clientNonce),
            ["name"] = Options.ClientName,
        };
        await link.RequestAsync(new IpyRpcMessage { Kind = MessageKind.Auth, Parts = [Jobs.JobCodec.Encode(proof, Serialization.MessagePack)] }, "auth", cancellationToken).ConfigureAwait(false);
        link.Server.Authenticate(new System.Security.Claims.ClaimsPrincipal(new System.Security.Claims.ClaimsIdentity(
            [new System.Security.Claims.Claim(System.Security.Claims.ClaimTypes.Name, ServerAgent ?? "server")], "ipyrpc-secret")));
    }

    /// <summary>Fetches the function and event lists again (after the server registered more).</summary>
    public Task RefreshAsync(CancellationToken cancellationToken = default) => RefreshAsync(CurrentClientLink(), cancellationToken);

    private async Task RefreshAsync(Link link, CancellationToken cancellationToken)
    {
        IpyRpcMessage reply = await link.RequestAsync(new IpyRpcMessage { Kind = MessageKind.Describe, Serialization = Options.Serialization }, "describe", cancellationToken).ConfigureAwait(false);
        IReadOnlyList<FunctionDescriptor> functions = DescriptorCodec.Decode(reply.Body.Span, reply.Serialization);
        _byName = functions.GroupBy(f => f.Name).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        _functions = functions;
        Events = reply.Parts.Count > 1 ? DescriptorCodec.DecodeEvents(reply.Parts[1].Span, reply.Serialization) : [];
    }

    // The last function list by name, replaced whole with it.
    private Dictionary<string, FunctionDescriptor>? _byName;

    /// <summary>The descriptor of <paramref name="function"/> from the last function list, or null (a lookup cheap enough for every call).</summary>
    internal FunctionDescriptor? Find(string function) => _byName?.GetValueOrDefault(function);

    /// <summary>The descriptor of <paramref name="function"/>.</summary>
    /// <exception cref="KeyNotFoundException">The server has no such function.</exception>
    public FunctionDescriptor Describe(string function)
        => Find(function) ?? throw new KeyNotFoundException($"The server has no function named '{function}'.");

    /// <summary>Readable help for one function, like Python's <c>help()</c>: signature, summary, parameters, returns.</summary>
    public string Help(string function) => Describe(function).Help();

    /// <summary>Readable help for every function.</summary>
    public string Help() => string.Join(Environment.NewLine, _functions.Select(f => f.Help()));

    /// <summary>Exports more functions for the server to call (as <see cref="IpyRpcClientOptions.Exports"/>).</summary>
    public IpyRpcClient Register(object exports)
    {
        _exports.Value.Registry.Register(exports);
        return this;
    }

    /// <summary>Sends a <c>ping</c> and waits for the <c>pong</c>: the round trip to the server.</summary>
    /// <exception cref="IpyRpcConnectionException">The connection is down.</exception>
    public async Task<TimeSpan> PingAsync(CancellationToken cancellationToken = default)
    {
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        await CurrentClientLink().RequestAsync(new IpyRpcMessage { Kind = MessageKind.Ping }, "ping", cancellationToken).ConfigureAwait(false);
        return System.Diagnostics.Stopwatch.GetElapsedTime(start);
    }

    /// <summary>The functions this client exports, with their docs.</summary>
    public IReadOnlyList<FunctionDescriptor> Exports => _exports.IsValueCreated ? _exports.Value.Functions : [];

    private IpyRpcServer CreateExportsHost()
    {
        var host = new IpyRpcServer(new IpyRpcServerOptions
        {
            Concurrency = Math.Max(1, Options.ExportConcurrency),
            MaxCallsInFlightPerConnection = Math.Max(8, Options.ExportConcurrency * 4),
            Agent = "ipyrpc-dotnet-client/" + ProtocolVersion.Current,
        });
        if (Options.ExportsConfig is { } config) host.Config(config);
        foreach (object export in Options.Exports) host.Registry.Register(export);
        return host;
    }

    private protected override PeerLink CurrentLink() => CurrentClientLink().Calls;

    private Link CurrentClientLink(bool waiting = false)
    {
        Link? link = _link;
        if (link is null || Volatile.Read(ref _disposed) == 1)
        {
            throw new IpyRpcConnectionException("The client was disposed.") { Reason = DisconnectReason.Disposed, NotDelivered = true };
        }

        if (link.Ready && link.Calls.Broken is null) return link;
        if (ReconnectInProgress())
        {
            if (waiting) return link;
            throw ReconnectingFailure(link, null);
        }

        if (link.Calls.Broken is { } lost && _gaveUp is { } why)
        {
            throw new IpyRpcConnectionException($"The connection to the server was lost ({lost.Message}) and {why}", lost) { NotDelivered = true };
        }

        return link; // a broken link throws its reason on use
    }

    /// <summary>Whether the client is reconnecting now. Under the lock that <see cref="End"/> ends a link and starts reconnecting in, so a link seen broken is never seen without its reconnect.</summary>
    private bool ReconnectInProgress()
    {
        lock (_gate) return !_reconnecting.IsCompleted;
    }

    /// <summary>The failure of a call made while the client reconnects, which it did not send.</summary>
    private IpyRpcConnectionException ReconnectingFailure(Link link, TimeSpan? waited)
    {
        Exception? broken = link.Calls.Broken;
        string why = broken is null ? "The connection to the server is being opened again" : $"The connection to the server was lost ({broken.Message})";
        string wait = waited is { } w ? $"; the call waited {w.TotalSeconds:0.#} s for it and was not sent" : "";
        return new IpyRpcConnectionException($"{why}; reconnecting (attempt {Volatile.Read(ref _reconnectAttempt)}){wait}.", broken) { NotDelivered = true };
    }

    private protected override ValueTask<PeerLink> LinkAsync(long started, TimeSpan? timeout, CancellationToken cancellationToken)
    {
        Link? link = _link;
        if (link is { Ready: true, Calls.Broken: null } && Volatile.Read(ref _disposed) == 0) return new(link.Calls);
        return WaitForLinkAsync(started, timeout, cancellationToken);
    }

    /// <summary>
    /// The link a call goes through when the connection is not up: while the client reconnects, the call waits for it (up
    /// to <see cref="ReconnectOptions.WaitForReconnect"/> and its own timeout, both counted from when it was made), and
    /// its waiting makes the client dial again soon. Otherwise, or when the wait runs out, it fails without being sent.
    /// </summary>
    private async ValueTask<PeerLink> WaitForLinkAsync(long started, TimeSpan? timeout, CancellationToken cancellationToken)
    {
        bool counted = false;
        try
        {
            while (true)
            {
                Task changed = Volatile.Read(ref _linkChanged).Task;
                Link link = CurrentClientLink(waiting: true); // throws when the client was disposed or gave up
                if (link.Ready && link.Calls.Broken is null) return link.Calls;
                if (!ReconnectInProgress()) return link.Calls; // closed for good: the request fails with why, unsent
                TimeSpan left = WaitLeft(started, timeout);
                if (left <= TimeSpan.Zero) throw ReconnectingFailure(link, System.Diagnostics.Stopwatch.GetElapsedTime(started));
                if (!counted)
                {
                    counted = true;
                    Interlocked.Increment(ref _callsWaiting);
                    Signal(ref _dialSoon);
                }

                try
                {
                    await changed.WaitAsync(left < MaxWait ? left : MaxWait, cancellationToken).ConfigureAwait(false);
                }
                catch (TimeoutException)
                {
                    // Checked again above: it may have come back just then.
                }
            }
        }
        finally
        {
            if (counted) Interlocked.Decrement(ref _callsWaiting);
        }
    }

    /// <summary>How much longer a call made at <paramref name="started"/> may wait for the connection to come back.</summary>
    private TimeSpan WaitLeft(long started, TimeSpan? timeout)
    {
        if (Options.Reconnect is not { } policy || Volatile.Read(ref _disposed) == 1) return TimeSpan.Zero;
        bool endless = policy.WaitForReconnect == Timeout.InfiniteTimeSpan;
        if (endless && timeout is null) return MaxWait; // each wait looks again after it
        TimeSpan limit = endless ? timeout!.Value : timeout is { } t && t < policy.WaitForReconnect ? t : policy.WaitForReconnect;
        return limit - System.Diagnostics.Stopwatch.GetElapsedTime(started);
    }

    private protected override async ValueTask<bool> AgainAsync(PeerLink failedOn, IpyRpcConnectionException failure, int attempt, long started, TimeSpan? timeout, CancellationToken cancellationToken)
    {
        if (!failure.NotDelivered || _dial is null) return false;
        TimeSpan left = WaitLeft(started, timeout);
        if (left <= TimeSpan.Zero) return false;
        Link? link = _link;
        if (link is { Ready: true, Calls.Broken: null })
        {
            if (link.Calls != failedOn) return true; // a new connection is up: at once

            // The connection is up but the request did not get through: over HTTP requests, the channel refuses requests
            // once the server said it no longer holds the connection, until those in flight have their answers and the
            // link ends. Tried again after a pause that grows, as reconnecting does, at most a second.
            TimeSpan first = Options.Reconnect!.FirstDelay;
            var pause = TimeSpan.FromMilliseconds(Math.Min(1000, Math.Max(1, first.TotalMilliseconds) * Math.Pow(2, Math.Min(attempt, 10))));
            if (pause >= left) return false; // no time left to make it again after the pause: it fails now, unsent
            await Task.Delay(pause, cancellationToken).ConfigureAwait(false);
            return true;
        }

        return ReconnectInProgress(); // the next LinkAsync waits for it
    }

    private protected override Serialization DefaultSerialization => Options.Serialization;

    private protected override Serialization SerializationFor(string function) => Find(function)?.InputSerialization ?? Options.Serialization;

    private protected override bool Streams(string function) => Find(function)?.IsStream == true;

    private protected override bool IsDescribed(string function) => Find(function) is not null;

    private protected override async Task<bool> RelearnAsync(string function, Serialization used, CancellationToken cancellationToken)
    {
        await RefreshAsync(cancellationToken).ConfigureAwait(false);
        return SerializationFor(function) != used;
    }

    private protected override TimeSpan? DefaultTimeout => Options.DefaultTimeout;

    private protected override Action<OutputStream, string>? DefaultOutput => Options.Output;

    private protected override IpyRpcClientOptions HolderOptions => new()
    {
        SharedSecret = Options.SharedSecret,
        ClientName = Options.ClientName,
        MaxMessageBytes = Options.MaxMessageBytes,
        Serialization = Options.Serialization,
    };

    /// <summary>Routes one message from the server. With a push channel this runs on the transport's receiving thread: it must not block.</summary>
    private void OnMessage(Link link, IpyRpcMessage message)
    {
        link.Heard();
        long bytes = message.PartBytes;
        if (bytes > 0) Interlocked.Add(ref _bytesReceived, bytes);
        switch (message.Kind)
        {
            case MessageKind.Result:
            case MessageKind.Error:
            case MessageKind.Hello:
            case MessageKind.Pong:
            case MessageKind.Output:
            case MessageKind.Items:
            case MessageKind.Progress:
                link.Calls.Dispatch(message);
                break;
            case MessageKind.Call:
            case MessageKind.Submit:
            case MessageKind.Attach:
            case MessageKind.Status:
            case MessageKind.List:
            case MessageKind.Cancel:
            case MessageKind.Describe:
            case MessageKind.Credit:
            case MessageKind.Ping:
                // The server calls this client: the exported functions run as jobs here, as a server's do.
                ValueTask handled = link.Exports().HandleAsync(message);
                if (!handled.IsCompletedSuccessfully) _ = handled.AsTask();
                break;
            case MessageKind.Event:
                // Not from a link that ended (read before it did, handled after): a newer link's subscriptions resume
                // where they left off, and an event from the old one now would come out of its order, or twice.
                if (link == Volatile.Read(ref _link)) _events.Deliver(message);
                break;
            case MessageKind.Close:
                End(link, DisconnectInfo.FromMessage(message, "The server"));
                break;
        }
    }

    /// <summary>
    /// Ends a link, once: its calls fail, calls from the server running here are cancelled, the channel
    /// closes. When it was the client's link, <see cref="Disconnected"/> is raised and, where allowed, reconnecting starts.
    /// </summary>
    private void End(Link link, DisconnectInfo info, bool announce = true)
    {
        bool reconnect;
        lock (_gate)
        {
            if (!link.TryEnd(info)) return;
            // A link still opening (hello, authentication) that ends is the opening's failure, which its caller (a connect,
            // or the reconnect loop's attempt) reports and acts on: it is neither announced nor a reason to reconnect.
            bool current = _link == link && link.Ready;
            announce &= current;
            reconnect = current && announce && _dial is not null && Options.Reconnect is not null && _disposed == 0 && _reconnecting.IsCompleted
                && info.Reason is DisconnectReason.ConnectionLost or DisconnectReason.HeartbeatLost or DisconnectReason.ServerStopping or DisconnectReason.Closed;
            if (reconnect)
            {
                _reconnecting = ReconnectAsync();
                // Once it is over (back, refused, given up or disposed), calls waiting for the connection see how it went.
                _reconnecting.ContinueWith(static (_, c) => Signal(ref ((IpyRpcClient)c!)._linkChanged), this, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }
        }

        if (announce) Announce(() => Disconnected?.Invoke(info));
    }

    /// <summary>The longest a call waits for the connection in one go (so that an endless wait fits a timer): it looks again after it.</summary>
    private static readonly TimeSpan MaxWait = TimeSpan.FromDays(1);

    /// <summary>The longest pause between attempts while calls wait for the connection to come back.</summary>
    private static readonly TimeSpan WaitingCallsDialEvery = TimeSpan.FromSeconds(1);

    private async Task ReconnectAsync()
    {
        await Task.Yield();
        ReconnectOptions policy = Options.Reconnect!;
        TimeSpan delay = policy.FirstDelay;
        Exception? last = null;
        long lastTry = System.Diagnostics.Stopwatch.GetTimestamp(); // the connection was just lost
        for (int attempt = 1; policy.MaxAttempts is not { } max || attempt <= max; attempt++)
        {
            try
            {
                // The pause grows as attempts fail; while calls wait for the connection it is at most a second, and a call
                // that starts waiting cuts a longer one short.
                while (true)
                {
                    Task soon = Volatile.Read(ref _dialSoon).Task;
                    TimeSpan pause = Volatile.Read(ref _callsWaiting) > 0 && delay > WaitingCallsDialEvery ? WaitingCallsDialEvery : delay;
                    TimeSpan left = pause - System.Diagnostics.Stopwatch.GetElapsedTime(lastTry);
                    if (left <= TimeSpan.Zero) break;
                    await Task.WhenAny(soon, Task.Delay(left, _closing.Token)).ConfigureAwait(false);
                    _closing.Token.ThrowIfCancellationRequested();
                }
            }
            catch (OperationCanceledException)
            {
                return;
            }

            Volatile.Write(ref _reconnectAttempt, attempt);
            var report = new ReconnectAttempt(attempt, last);
            Announce(() => Reconnecting?.Invoke(report));
            try
            {
                IMessageChannel channel = await _dial!(_closing.Token).ConfigureAwait(false);
                await OpenAsync(channel, _closing.Token).ConfigureAwait(false);
                Announce(() => Reconnected?.Invoke());
                return;
            }
            catch (OperationCanceledException) when (_closing.IsCancellationRequested)
            {
                return;
            }
            catch (IpyRpcUnauthorizedException e)
            {
                // Credentials that the server refuses now will not do better on the next attempt.
                Announce(() => Disconnected?.Invoke(new DisconnectInfo(DisconnectReason.Unauthorized, "Reconnecting was refused: " + e.Message, e)));
                return;
            }
            catch (Exception e)
            {
                last = e;
                lastTry = System.Diagnostics.Stopwatch.GetTimestamp();
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, policy.MaxDelay.Ticks));
            }
        }

        _gaveUp = $"the client gave up reconnecting after {policy.MaxAttempts} attempts (the last failed with: {last?.Message}). Connect a new client.";
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes a signal and puts a fresh one in its place, so that whoever waits on it goes on and later waiters wait for the next.</summary>
    private static void Signal(ref TaskCompletionSource signal) => Interlocked.Exchange(ref signal, NewSignal()).TrySetResult();

    /// <summary>Runs the client's events one after another, off the transport's threads.</summary>
    private void Announce(Action action)
    {
        lock (_gate)
        {
            _announcements = _announcements.ContinueWith(_ =>
            {
                try
                {
                    action();
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    // A handler's failure is the handler's business.
                }
            }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
        }
    }

    /// <summary>Closes the connection (telling the server so). Calls still in flight fail with <see cref="IpyRpcConnectionException"/>.</summary>
    public async ValueTask DisposeAsync()
    {
        Link? link;
        lock (_gate)
        {
            if (_disposed == 1) return;
            _disposed = 1;
            link = _link;
        }

        _closing.Cancel();
        Signal(ref _linkChanged); // calls waiting for a reconnect fail now
        await DisposeHoldersAsync().ConfigureAwait(false);
        if (link is not null)
        {
            if (link.Calls.Broken is null)
            {
                await link.Calls.SendQuietlyAsync(new DisconnectInfo(DisconnectReason.Closed, "The client closed the connection.").ToMessage()).ConfigureAwait(false);
            }

            End(link, new DisconnectInfo(DisconnectReason.Disposed, "The client was disposed."));
            await link.Finished.ConfigureAwait(false);
        }

        try
        {
            await _reconnecting.ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or IpyRpcException)
        {
        }

        await _events.DisposeAsync().ConfigureAwait(false);
        if (_exports.IsValueCreated) await _exports.Value.DisposeAsync().ConfigureAwait(false);
        if (_onDispose is not null) await _onDispose().ConfigureAwait(false);
        Task announcements;
        lock (_gate) announcements = _announcements;
        await announcements.ConfigureAwait(false);
        _closing.Dispose();
    }

    /// <summary>
    /// One live connection to the server: its channel, the calls this client makes over it, the
    /// session that runs the server's calls to this client, and its heartbeat.
    /// </summary>
    private sealed class Link
    {
        private readonly IpyRpcClient _client;
        private readonly CancellationTokenSource _stop = new();
        private readonly TaskCompletionSource _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private ServerSession? _exports;
        private Timer? _heartbeat;
        private Task _reader = Task.CompletedTask;
        private long _lastHeard = Environment.TickCount64;
        private int _ended;

        public Link(IpyRpcClient client, IMessageChannel channel)
        {
            _client = client;
            Channel = channel;
            Calls = new PeerLink(channel.SendAsync, "the server");
            Server = new IpyRpcConnection(channel.GetType().Name, null);
            Server.Attach(Calls, null);
        }

        public IMessageChannel Channel { get; }

        /// <summary>Whether the link is open for calls: hello, authentication, the function list and subscriptions are done.</summary>
        public bool Ready
        {
            get => Volatile.Read(ref _ready);
            set => Volatile.Write(ref _ready, value);
        }

        private bool _ready;

        /// <summary>The calls this client makes to the server.</summary>
        public PeerLink Calls { get; }

        /// <summary>The server, as the client's exported functions see it (they can call it back through it).</summary>
        public IpyRpcConnection Server { get; }

        /// <summary>Completes once the link has ended and its channel and session are closed.</summary>
        public Task Finished => _finished.Task;

        public void Start()
        {
            if (Channel is IPushMessageChannel push)
            {
                push.StartReceiving(m => _client.OnMessage(this, m), e => _client.End(this, e is null
                    ? new DisconnectInfo(DisconnectReason.ConnectionLost, "The server closed the connection.")
                    : new DisconnectInfo(DisconnectReason.ConnectionLost, "The connection failed: " + e.Message, e)));
            }
            else
            {
                _reader = Task.Run(ReadLoopAsync, CancellationToken.None);
            }
        }

        public Task<IpyRpcMessage> RequestAsync(IpyRpcMessage message, string what, CancellationToken cancellationToken)
            => Calls.RequestAsync(message, what, new PendingRequest(), cancellationToken, null);

        /// <summary>Sends a request as <paramref name="pending"/>, whose <see cref="PendingRequest.Id"/> is the request's id once it is sent.</summary>
        public Task<IpyRpcMessage> RequestAsync(IpyRpcMessage message, string what, PendingRequest pending, CancellationToken cancellationToken)
            => Calls.RequestAsync(message, what, pending, cancellationToken, null);

        private async Task ReadLoopAsync()
        {
            DisconnectInfo info = new(DisconnectReason.ConnectionLost, "The server closed the connection.");
            ReplyHandoff? held = null;
            try
            {
                while (true)
                {
                    IpyRpcMessage? message;
                    try
                    {
                        // A caller the last reply completed goes on on this thread once the next receive waits.
                        LendingReceive next = LendingReceive.Next(Channel, held, _stop.Token);
                        held = null;
                        message = await next;
                    }
                    catch (ProtocolException e)
                    {
                        // An unreadable reply fails the call it names, if any; the connection goes on.
                        if (e.Id != 0)
                        {
                            Calls.Dispatch(new IpyRpcMessage { Kind = MessageKind.Error, Id = e.Id, Parts = [new RemoteError { Code = e.Code, Message = e.Message }.Encode(Serialization.MessagePack)] });
                        }

                        continue;
                    }

                    if (message is null) break;
                    ReplyHandoff handoff = ReplyHandoff.Begin();
                    try
                    {
                        _client.OnMessage(this, message);
                    }
                    catch
                    {
                        handoff.RunQueued(); // what it completed before failing still goes on
                        throw;
                    }

                    handoff.End();
                    held = handoff;
                }
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                return; // ended by someone else, who said why
            }
            catch (Exception e)
            {
                info = new DisconnectInfo(DisconnectReason.ConnectionLost, "The connection failed: " + e.Message, e);
            }

            _client.End(this, info);
        }

        /// <summary>Notes that the server was heard from (any message counts).</summary>
        public void Heard() => Volatile.Write(ref _lastHeard, Environment.TickCount64);

        public void StartHeartbeat()
        {
            if (_client.Options.HeartbeatInterval is not { } every || !Channel.NeedsHeartbeat || Volatile.Read(ref _ended) == 1) return;
            TimeSpan period = TimeSpan.FromMilliseconds(Math.Max(10, Math.Min(every.TotalMilliseconds, _client.Options.HeartbeatTimeout.TotalMilliseconds / 3)));
            _heartbeat = new Timer(static s => ((Link)s!).Beat(), this, period, period);
        }

        private void Beat()
        {
            long quiet = Environment.TickCount64 - Volatile.Read(ref _lastHeard);
            if (quiet >= _client.Options.HeartbeatTimeout.TotalMilliseconds)
            {
                _client.End(this, new DisconnectInfo(DisconnectReason.HeartbeatLost, $"The server did not answer for {quiet / 1000.0:0.#} s (heartbeat timeout {_client.Options.HeartbeatTimeout.TotalSeconds:0.#} s)."));
            }
            else if (quiet >= _client.Options.HeartbeatInterval!.Value.TotalMilliseconds)
            {
                _ = Calls.SendQuietlyAsync(new IpyRpcMessage { Kind = MessageKind.Ping, Id = Calls.NextId() });
            }
        }

        /// <summary>The session that runs the server's calls to this client (made at the first such call).</summary>
        public ServerSession Exports()
        {
            if (_exports is { } made) return made;
            lock (this)
            {
                return _exports ??= _client._exports.Value.CreateSession(Channel.SendAsync, Server, duplex: false, callsBack: Calls);
            }
        }

        /// <summary>Marks the link ended (true the first time) and closes what it holds in the background.</summary>
        public bool TryEnd(DisconnectInfo info)
        {
            if (Interlocked.Exchange(ref _ended, 1) == 1) return false;
            Calls.Close(info.ToException("the server"), info.ReadUpTo);
            _heartbeat?.Dispose();
            _ = ShutDownAsync(info);
            return true;
        }

        private async Task ShutDownAsync(DisconnectInfo info)
        {
            await Task.Yield(); // off the transport's thread: closing a channel may wait for that thread
            try
            {
                ServerSession? exports;
                lock (this) exports = _exports;
                if (exports is not null) await exports.CloseAsync(info, notifyPeer: false).ConfigureAwait(false);
                _stop.Cancel();
                await Channel.DisposeAsync().ConfigureAwait(false);
                try
                {
                    await _reader.ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                }
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // Closing what is already broken may fail; the link is over either way.
            }
            finally
            {
                _finished.TrySetResult();
            }
        }
    }
}
