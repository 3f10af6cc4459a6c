using System.Security.Claims;
using IpyRpc.Jobs;
using IpyRpc.Protocol;
using Microsoft.Extensions.Logging;

namespace IpyRpc;

/// <summary>
/// The server's side of one connection: answers hellos and describes, turns calls into jobs and
/// relays their output and outcome, serves the job messages (submit, attach, status, list, cancel).
/// Transports create one per peer and feed it messages; it sends through the callback it was given,
/// which may be called concurrently.
/// </summary>
public sealed class ServerSession : IAsyncDisposable
{
    private readonly IpyRpcServer _server;
    private readonly Func<IpyRpcMessage, CancellationToken, ValueTask> _send;
    // Calls this side makes to the peer (a server calling its client back), when the transport carries them.
    private readonly PeerLink? _link;
    private readonly TaskCompletionSource<DisconnectInfo> _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    // Calls and attaches of this connection by request id: what a cancel or a disconnect acts on.
    private readonly Dictionary<ulong, Relay> _inFlight = [];
    private List<(IJobQueue Queue, string JobId)>? _tiedJobs;
    private readonly bool _duplex;
    // Event subscriptions by pattern: the serialization asked for, and the events the caller may receive under it.
    private readonly object _subscriptionGate = new();
    private Dictionary<string, (Serialization Serialization, HashSet<string> Events)>? _subscriptions;
    private EventOutbox? _outbox;
    private bool _closed;
    private int _closing;
    private int _announced;
    private byte[]? _serverNonce;
    private byte[]? _clientNonce;
    private int _failedProofs;
    private int _callsInFlight;
    private long _bytesInFlight;
    // Calls that came while the connection had as many running as it may: they start, in order, as those end. Under _inFlight.
    private Queue<Parked>? _waiting;
    private int _waitingCount;
    private long _bytesWaiting;

    internal ServerSession(IpyRpcServer server, Func<IpyRpcMessage, CancellationToken, ValueTask> send, IpyRpcConnection connection, bool duplex, PeerLink? callsBack = null)
    {
        _server = server;
        _send = send;
        Connection = connection;
        _duplex = duplex;
        _link = duplex ? new PeerLink(send, "the client") : null;
        connection.Attach(_link ?? callsBack, info => CloseAsync(info, notifyPeer: true),
            duplex ? null : $"its transport ({connection.Transport}) carries separate requests from the client, not one connection both ways (over HTTP, clients connect with WebSockets for that)");
        // A connection of separate requests has begun once it says hello (a request without one is a connection of its own).
        if (duplex) AwaitAuthentication();
    }

    private int _awaitingAuthentication;
    private long _unauthenticatedSince; // Environment.TickCount64: the connection's start, or its last fetch or release by a pointer's key

    /// <summary>
    /// On a server that requires authentication, closes this connection unless it authenticates within
    /// <see cref="IpyRpcServerOptions.AuthenticationTimeout"/> (counted again from each fetch or release it makes by a
    /// pointer's key, which needs no authentication).
    /// </summary>
    private void AwaitAuthentication()
    {
        TimeSpan limit = _server.Options.AuthenticationTimeout;
        if (!_server.RequiresAuthentication || Connection.IsAuthenticated || limit == Timeout.InfiniteTimeSpan || Interlocked.Exchange(ref _awaitingAuthentication, 1) == 1) return;
        Volatile.Write(ref _unauthenticatedSince, Environment.TickCount64);
        _ = CloseUnlessAuthenticatedAsync(limit);
    }

    /// <summary>A pointer's key was right: its own credential, so an unauthenticated connection that uses keys is about its business.</summary>
    private void KeyUsed()
    {
        if (!Connection.IsAuthenticated) Volatile.Write(ref _unauthenticatedSince, Environment.TickCount64);
    }

    private async Task CloseUnlessAuthenticatedAsync(TimeSpan limit)
    {
        for (TimeSpan wait = limit; wait > TimeSpan.Zero; wait = limit - TimeSpan.FromMilliseconds(Environment.TickCount64 - Volatile.Read(ref _unauthenticatedSince)))
        {
            try
            {
                await Task.Delay(wait, Connection.Closed).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return; // the connection ended first
            }

            if (Connection.IsAuthenticated) return;
        }

        _server.Log.LogWarning("Closing {Connection}: not authenticated within {Seconds} s", Connection, limit.TotalSeconds);
        await CloseAsync(new DisconnectInfo(DisconnectReason.Unauthorized, $"The connection did not authenticate within {limit.TotalSeconds:0.###} s, as this server requires."), notifyPeer: true).ConfigureAwait(false);
    }

    /// <summary>The connection this session serves: who is on the other side.</summary>
    public IpyRpcConnection Connection { get; }

    /// <summary>Completes when the session has ended, for whatever reason: the peer said goodbye, the server closed the connection, the transport reported it gone.</summary>
    public Task<DisconnectInfo> Ended => _ended.Task;

    /// <summary>How many calls and attaches of this session are still in flight.</summary>
    public int InFlight
    {
        get
        {
            lock (_inFlight) return _inFlight.Count;
        }
    }

    /// <summary>
    /// Handles one message as <see cref="HandleAsync(IpyRpcMessage)"/> does, holding what its synchronous part completes
    /// on this thread (a job handed to a waiting worker) in <paramref name="held"/>, for the caller to run there or queue
    /// (<see cref="Transports.ReplyHandoff"/>).
    /// </summary>
    public ValueTask HandleHolding(IpyRpcMessage message, out Transports.ReplyHandoff held)
    {
        held = Transports.ReplyHandoff.Begin();
        try
        {
            return HandleAsync(message);
        }
        finally
        {
            held.End();
        }
    }

    /// <summary>Handles one message from the peer. Never throws for bad input: the peer gets an error reply.</summary>
    public ValueTask HandleAsync(IpyRpcMessage message)
    {
        if (message.Kind is MessageKind.Call or MessageKind.Submit && PeerHearsClose && _server.IsStopping
            && NothingWillRun(_server.OptionsFor(message.Function ?? "")))
        {
            // The server is stopping and the call's queue goes with it: it will not run. Neither read nor answered: the
            // close that ends this connection once the server has stopped says so (an answer could come after that close,
            // and the caller would not know it did not run), and a client that reconnects makes it again with the next server.
            message.Pooled?.Release();
            return default;
        }

        // Noted before the session's closing is looked at, and the close reads it after marking the session closing: a
        // request is either under the close's mark or refused here, never both run and said unread. A ping runs nothing.
        if (message.Id != 0 && message.Kind != MessageKind.Ping) NoteRead(message.Id);
        if (Volatile.Read(ref _closing) == 1 && message.Id != 0 && message.Kind is not (MessageKind.Result or MessageKind.Error
                or MessageKind.Output or MessageKind.Progress or MessageKind.Items or MessageKind.Pong or MessageKind.Credit or MessageKind.Cancel))
        {
            // A request past the close's mark: not run, and answered only by the close again (once it has gone), which says
            // it was not read. An answer of its own could arrive before the close and say only that it was cancelled; and a
            // peer that heard the close and says hello again on the same connection learns to wait for the next server.
            message.Pooled?.Release();
            return Volatile.Read(ref _closeSent) is { } close ? SendQuietlyAsync(close) : default;
        }

        return HandleAsync(message, null);
    }

    /// <summary>
    /// Whether the peer hears the <c>close</c> this session sends and what its <c>read</c> mark says (true for the
    /// protocol's own transports). Then a call that comes while the server stops, with nothing left to run it, is left
    /// for the close to tell of, and a client that reconnects makes it again with the next server. Otherwise (JSON-RPC,
    /// which has no close) it is answered <c>unavailable</c> at once.
    /// </summary>
    public bool PeerHearsClose { get; set; } = true;

    /// <summary>The highest request id read from the peer, which a <c>close</c> tells it (<see cref="DisconnectInfo.ReadUpTo"/>).</summary>
    private long _readUpTo;

    /// <summary>The <c>close</c> this session sent, once sent: the answer to any request that comes after it.</summary>
    private IpyRpcMessage? _closeSent;

    private void NoteRead(ulong id)
    {
        long seen = Volatile.Read(ref _readUpTo);
        while ((ulong)seen < id)
        {
            long was = Interlocked.CompareExchange(ref _readUpTo, (long)id, seen);
            if (was == seen) return;
            seen = was;
        }
    }

    /// <summary>Handles a message; a call that waited for room on its connection keeps the time it <paramref name="arrived"/>.</summary>
    private async ValueTask HandleAsync(IpyRpcMessage message, DateTimeOffset? arrived)
    {
        try
        {
            if (message.Kind is MessageKind.Describe or MessageKind.Call or MessageKind.Submit or MessageKind.Attach or MessageKind.Status or MessageKind.List or MessageKind.Cancel
                    or MessageKind.Subscribe or MessageKind.Unsubscribe
                && AccessDenied() is { } denied)
            {
                _server.Log.LogWarning("Refused a {Kind} from {Connection}: {Reason}", MessageCodec.KindName(message.Kind), Connection, denied.Message);
                await ReplyErrorAsync(message.Id, message.Serialization, denied).ConfigureAwait(false);
                return;
            }

            switch (message.Kind)
            {
                case MessageKind.Hello:
                    await HelloAsync(message).ConfigureAwait(false);
                    break;
                case MessageKind.Auth:
                    await AuthAsync(message).ConfigureAwait(false);
                    break;
                case MessageKind.Describe:
                    await IgnoreResult(SendAsync(new IpyRpcMessage
                    {
                        Kind = MessageKind.Result,
                        Id = message.Id,
                        Serialization = message.Serialization,
                        Parts = [DescriptorCodec.Encode(await AllowedFunctionsAsync().ConfigureAwait(false), message.Serialization), DescriptorCodec.EncodeEvents(_server.Events, message.Serialization)],
                    })).ConfigureAwait(false);
                    break;
                case MessageKind.Subscribe:
                    await SubscribeAsync(message).ConfigureAwait(false);
                    break;
                case MessageKind.Unsubscribe:
                    await UnsubscribeAsync(message).ConfigureAwait(false);
                    break;
                case MessageKind.Call:
                case MessageKind.Submit:
                    await CallAsync(message, arrived).ConfigureAwait(false);
                    break;
                case MessageKind.Attach:
                    await AttachAsync(message).ConfigureAwait(false);
                    break;
                case MessageKind.Status:
                    await StatusAsync(message).ConfigureAwait(false);
                    break;
                case MessageKind.List:
                    await ListAsync(message).ConfigureAwait(false);
                    break;
                case MessageKind.Cancel:
                    await CancelAsync(message).ConfigureAwait(false);
                    break;
                case MessageKind.Ping:
                    await IgnoreResult(SendAsync(new IpyRpcMessage { Kind = MessageKind.Pong, Id = message.Id })).ConfigureAwait(false);
                    break;
                case MessageKind.Result:
                case MessageKind.Error:
                case MessageKind.Output:
                case MessageKind.Progress:
                case MessageKind.Items:
                case MessageKind.Pong:
                    // About a call this side made to the peer; one nobody waits for any more is dropped.
                    _link?.Dispatch(message);
                    break;
                case MessageKind.Close:
                    await CloseAsync(DisconnectInfo.FromMessage(message, "The client"), notifyPeer: false).ConfigureAwait(false);
                    break;
                case MessageKind.Fetch:
                case MessageKind.Release:
                    await PointerAsync(message).ConfigureAwait(false);
                    break;
                case MessageKind.Credit:
                    // The caller of a stream consumed items: its function may run further ahead.
                    if (message.Credit is > 0 and var credit && FindRelay(message.Id) is { Flow: { } flow }) flow.Grant(credit);
                    break;
                default:
                    // Events from a client and unsolicited hellos need no reply.
                    break;
            }
        }
        catch (ProtocolException e)
        {
            await ReplyErrorAsync(message.Id, message.Serialization, new RemoteError { Code = e.Code, Message = e.Message }).ConfigureAwait(false);
        }
        catch (JobQueueUnavailableException e)
        {
            // A job store that is unreachable for now: the caller is told so, without the store's internals, and the connection goes on.
            _server.WarnUnavailable(e);
            await ReplyErrorAsync(message.Id, message.Serialization, new RemoteError { Code = ErrorCodes.Unavailable, Message = e.Message }).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Not the caller's fault: it gets an answer and the connection goes on.
            _server.Log.LogError(e, "Handling a {Kind} (id {Id}, function {Function}) from {Connection} failed", MessageCodec.KindName(message.Kind), message.Id, message.Function, Connection);
            await ReplyErrorAsync(message.Id, message.Serialization, new RemoteError
            {
                Code = ErrorCodes.Internal,
                Message = $"The server could not handle this {MessageCodec.KindName(message.Kind)}: {e.GetType().Name}: {e.Message}",
            }).ConfigureAwait(false);
        }
    }

    /// <summary>Logs a failed queueing: a store out of reach as the server's throttled warning, anything else as an error.</summary>
    private void LogQueueingFailure(Exception e, string? function, IJobQueue queue)
    {
        if (e is JobQueueUnavailableException unavailable) _server.WarnUnavailable(unavailable);
        else _server.Log.LogError(e, "Queueing {Function} on {Queue} failed", function, queue.Name);
    }

    /// <summary>The answer to a call or job request whose queueing failed: <c>unavailable</c> when the queue's store is out of reach.</summary>
    private static RemoteError QueueingFailed(Exception e, string what, IJobQueue queue) => e is JobQueueUnavailableException unavailable
        ? new RemoteError { Code = ErrorCodes.Unavailable, Message = unavailable.Message, Job = unavailable.MayHaveBeenQueued ? unavailable.JobId : null }
        : new RemoteError { Code = ErrorCodes.Internal, Message = $"The {what} could not be queued on \"{queue.Name}\": {e.Message}" };

    /// <summary>Answers a message that could not be decoded, so the peer learns why.</summary>
    public ValueTask ReplyProtocolErrorAsync(ProtocolException error)
        => ReplyErrorAsync(error.Id, Serialization.MessagePack, new RemoteError { Code = error.Code, Message = error.Message });

    /// <summary>Why this connection may not do anything but hello, auth and ping; <see langword="null"/> when it may.</summary>
    public RemoteError? AccessDenied()
    {
        if (Connection.IsAuthenticated) return null;
        if (_server.RequiresAuthentication)
        {
            return new RemoteError
            {
                Code = ErrorCodes.Unauthorized,
                Message = _server.SecretKey is not null
                    ? "This server requires authentication: connect with its shared secret (IpyRpcClientOptions.SharedSecret; Python: IpyRpcClient(endpoint, secret=...))."
                    : "This server requires an authenticated caller (HTTP authentication, or a ZeroMQ CURVE key the server knows).",
            };
        }

        if (!Connection.IsLoopback && !_server.Options.AllowUnauthenticatedRemote)
        {
            return new RemoteError
            {
                Code = ErrorCodes.Unauthorized,
                Message = $"This server has no authentication configured, so it answers only callers on its own machine, and {Connection.RemoteAddress} is not. " +
                    "Its operator can set a shared secret (IpyRpcServerOptions.SharedSecret), HTTP authentication (MapIpyRpc(...).RequireAuthorization()) or ZeroMQ CURVE keys, " +
                    "or allow unauthenticated callers from anywhere (AllowUnauthenticatedRemote).",
            };
        }

        return null;
    }

    /// <summary>
    /// A fetch or release of a value this process holds. The pointer's secret key is the only
    /// credential asked for (it is a capability, like a pre-signed URL), so holders such as workers
    /// serve any caller that has the pointer.
    /// </summary>
    private async ValueTask PointerAsync(IpyRpcMessage message)
    {
        string what = MessageCodec.KindName(message.Kind);
        Dictionary<string, object?> fields;
        try
        {
            fields = JobCodec.Decode(message.Body.Span, message.Serialization) as Dictionary<string, object?>
                ?? throw new ProtocolException(ErrorCodes.BadMessage, $"A {what} needs a map in part 0 with \"path\" and \"secret_key\".", message.Id);
        }
        catch (Exception e) when (e is Formatting.IpyRpcSerializationException or System.Text.Json.JsonException or MessagePack.MessagePackSerializationException)
        {
            throw new ProtocolException(ErrorCodes.BadMessage, $"The body of a {what} could not be read: {e.Message}", message.Id);
        }

        string path = fields.GetValueOrDefault("path") as string is { Length: > 0 } p ? p
            : throw new ProtocolException(ErrorCodes.BadMessage, $"A {what} needs the value's \"path\" (from the pointer).", message.Id);
        string? key = fields.GetValueOrDefault("secret_key") as string;
        long? Row(string name) => fields.GetValueOrDefault(name) switch
        {
            null => null,
            long l => l,
            ulong u when u <= long.MaxValue => (long)u,
            var other => throw new ProtocolException(ErrorCodes.BadMessage, $"\"{name}\" of a fetch is a row index (a whole number), not {other.GetType().Name}.", message.Id),
        };

        try
        {
            if (message.Kind == MessageKind.Fetch)
            {
                byte[] value = _server.Data.Fetch(path, key, Row("start"), Row("stop"), message.Serialization);
                KeyUsed();
                await ReplyAsync(message, value).ConfigureAwait(false);
            }
            else
            {
                _server.Data.Release(path, key);
                KeyUsed();
                await ReplyAsync(message, message.Serialization == Serialization.Json ? "true"u8.ToArray() : [0xc3]).ConfigureAwait(false);
            }
        }
        catch (PointerFault fault)
        {
            if (fault.Error.Code == ErrorCodes.PointerDenied) _server.Log.LogWarning("A {Kind} of {Path} with the wrong secret key from {Connection}", what, path, Connection);
            await ReplyErrorAsync(message.Id, message.Serialization, fault.Error).ConfigureAwait(false);
        }
    }

    private ValueTask HelloAsync(IpyRpcMessage message)
    {
        IReadOnlyList<int> offered = message.Versions ?? [ProtocolVersion.Current];
        int chosen = ProtocolVersion.Supported.FirstOrDefault(offered.Contains);
        if (chosen == 0)
        {
            return ReplyErrorAsync(message.Id, message.Serialization, new RemoteError
            {
                Code = ErrorCodes.UnsupportedVersion,
                Message = $"No protocol version in common: the client offers {string.Join(", ", offered)}, the server speaks {string.Join(", ", ProtocolVersion.Supported)}.",
            });
        }

        var reply = new IpyRpcMessage { Kind = MessageKind.Hello, Id = message.Id, Versions = [chosen], Agent = _server.Options.Agent };
        if (_server.SecretKey is { } key && !Connection.IsAuthenticated)
        {
            // The challenge: the client must answer our nonce; we answer its nonce, proving we know the secret too.
            _serverNonce = SharedSecretProof.NewNonce();
            _clientNonce = message.Nonce?.ToArray();
            reply = reply with
            {
                Auth = [SharedSecretProof.Scheme],
                Nonce = _serverNonce,
                Proof = _clientNonce is { Length: > 0 } clientNonce ? SharedSecretProof.Server(key, clientNonce, _serverNonce) : null,
            };
        }

        ValueTask sent = IgnoreResult(SendAsync(reply));
        if (reply.Auth is null && AccessDenied() is null) Announce();
        AwaitAuthentication();
        return sent;
    }

    /// <summary>The connection is ready (hello done, authenticated where the server requires it): raise the server's connected event, once.</summary>
    private void Announce()
    {
        if (Interlocked.Exchange(ref _announced, 1) == 0) _server.Connected(Connection);
    }

    private async ValueTask AuthAsync(IpyRpcMessage message)
    {
        RemoteError Refuse(string why) => new() { Code = ErrorCodes.Unauthorized, Message = why };
        if (_server.SecretKey is not { } key)
        {
            await ReplyErrorAsync(message.Id, message.Serialization, new RemoteError { Code = ErrorCodes.BadMessage, Message = "This server has no shared secret: there is nothing to authenticate with auth." }).ConfigureAwait(false);
            return;
        }

        if (_failedProofs >= 3)
        {
            await ReplyErrorAsync(message.Id, message.Serialization, Refuse("Too many wrong proofs on this connection; connect again with the right shared secret.")).ConfigureAwait(false);
            return;
        }

        if (_serverNonce is not { } serverNonce)
        {
            await ReplyErrorAsync(message.Id, message.Serialization, Refuse("Send hello first: auth answers the challenge in the server's hello.")).ConfigureAwait(false);
            return;
        }

        var fields = JobCodec.Decode(message.Body.Span, message.Serialization) as Dictionary<string, object?>;
        byte[]? proof = fields?.GetValueOrDefault("proof") as byte[];
        string? name = fields?.GetValueOrDefault("name") as string;
        byte[] expected = SharedSecretProof.Client(key, serverNonce, _clientNonce ?? []);
        if (fields?.GetValueOrDefault("scheme") as string != SharedSecretProof.Scheme || proof is null || !SharedSecretProof.Matches(expected, proof))
        {
            _failedProofs++;
            _server.Log.LogWarning("A wrong shared-secret proof from {Connection}", Connection);
            await ReplyErrorAsync(message.Id, message.Serialization, Refuse("The shared secret does not match the server's: check IpyRpcClientOptions.SharedSecret (Python: secret=).")).ConfigureAwait(false);
            return;
        }

        _serverNonce = null; // a challenge answers once
        var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, string.IsNullOrWhiteSpace(name) ? "ipyrpc-secret" : name)], "ipyrpc-secret");
        Connection.Authenticate(new ClaimsPrincipal(identity));
        _server.Log.LogDebug("{Connection} authenticated with the shared secret", Connection);
        await ReplyAsync(message, JobCodec.Encode(new Dictionary<string, object?> { ["principal"] = identity.Name, ["scheme"] = SharedSecretProof.Scheme }, message.Serialization)).ConfigureAwait(false);
        Announce();
    }

    /// <summary>
    /// What a listing shows this caller (for transports with a listing of their own, such as OpenRPC's
    /// <c>rpc.discover</c>): the functions it may call, or the refusal when it may do nothing yet.
    /// </summary>
    public async ValueTask<(IReadOnlyList<FunctionDescriptor>? Functions, RemoteError? Refusal)> DescribeAsync()
        => AccessDenied() is { } denied ? (null, denied) : (await AllowedFunctionsAsync().ConfigureAwait(false), null);

    /// <summary>The functions this caller may call, or all of them when the server lists everything.</summary>
    internal async ValueTask<IReadOnlyList<FunctionDescriptor>> AllowedFunctionsAsync()
    {
        IReadOnlyList<FunctionDescriptor> all = _server.Functions;
        if (!_server.Options.ListOnlyAllowedFunctions) return all;
        // Asked side by side: rules that look something up would otherwise take their time once per function.
        var asked = new ValueTask<RemoteError?>[all.Count];
        for (int i = 0; i < all.Count; i++) asked[i] = AuthorizeAsync(all[i].Name, null, AuthorizationPurpose.Listing);
        var allowed = new List<FunctionDescriptor>(all.Count);
        for (int i = 0; i < all.Count; i++)
        {
            if (await asked[i].ConfigureAwait(false) is null) allowed.Add(all[i]);
        }

        return allowed;
    }

    /// <summary>Asks the function's authorizer; the refusal the caller gets, or <see langword="null"/> when allowed.</summary>
    private async ValueTask<RemoteError?> AuthorizeAsync(string function, IReadOnlyDictionary<string, object?>? arguments, AuthorizationPurpose purpose, CancellationToken stop = default)
    {
        if (_server.OptionsFor(function).Auth is not { } authorizer) return null;
        AuthorizationResult result;
        try
        {
            result = await authorizer(new AuthorizationContext(Connection, function, arguments, purpose) { CancellationToken = stop }).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            throw; // the call ended before its rule decided (its caller no longer waits for the answer)
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A failing rule denies: access is never granted by accident.
            _server.Log.LogError(e, "The authorizer of {Function} failed for {Connection} ({Purpose})", function, Connection, purpose);
            result = AuthorizationResult.Deny($"its authorizer failed ({e.GetType().Name})");
        }

        if (result.Allowed) return null;
        string who = Connection.Principal.Identity?.Name ?? "an anonymous caller";
        string verb = purpose switch { AuthorizationPurpose.JobAccess => "see jobs of", AuthorizationPurpose.Subscription => "receive the event", _ => "call" };
        return new RemoteError { Code = ErrorCodes.Unauthorized, Message = $"{who} may not {verb} {function}: {result.Reason ?? "refused by its authorizer"}." };
    }

    /// <summary>Whether this caller may look at, attach to or cancel <paramref name="job"/>.</summary>
    private async ValueTask<RemoteError?> MayAccessAsync(JobInfo job)
    {
        if (await AuthorizeAsync(job.Function, null, AuthorizationPurpose.JobAccess).ConfigureAwait(false) is { } denied) return denied;
        if (_server.OptionsFor(job.Function).SharedJobs == true || job.Owner == Connection.Principal.Identity?.Name) return null;
        return UnknownJob(job.Id); // another principal's job: as if it did not exist
    }

    private async ValueTask CallAsync(IpyRpcMessage message, DateTimeOffset? arrived)
    {
        DateTimeOffset received = arrived ?? DateTimeOffset.UtcNow;
        string name = message.Function!;
        if (_server.Find(name) is not { } function)
        {
            await ReplyErrorAsync(message.Id, message.Serialization, _server.Registry.UnknownFunction(name)).ConfigureAwait(false);
            return;
        }

        FunctionOptions options = _server.OptionsFor(name);
        if (options.InputSerialization is { } input and not Serialization.Auto && input != message.Serialization)
        {
            await ReplyErrorAsync(message.Id, message.Serialization, new RemoteError
            {
                Code = ErrorCodes.UnsupportedSerialization,
                Message = $"{name} accepts {MessageCodec.SerializationName(input)} arguments only; this call used {MessageCodec.SerializationName(message.Serialization)}.",
            }).ConfigureAwait(false);
            return;
        }

        if (options.MaxArgumentBytes is { } max && message.Body.Length > max)
        {
            await ReplyErrorAsync(message.Id, message.Serialization, new RemoteError
            {
                Code = ErrorCodes.TooLarge,
                Message = $"The arguments of {name} are {message.Body.Length} bytes; it accepts at most {max}.",
            }).ConfigureAwait(false);
            return;
        }

        if (message.TimeoutMs is < 0)
        {
            throw new ProtocolException(ErrorCodes.BadMessage, $"timeout_ms must be a positive number of milliseconds (or absent for none), not {message.TimeoutMs}.", message.Id);
        }

        // Deadlines are absolute and count from now: time spent queued is part of the timeout.
        TimeSpan? timeout = options.Timeout == Timeout.InfiniteTimeSpan ? null : options.Timeout;
        if (message.TimeoutMs is long ms and > 0 && ms < (long)(DateTimeOffset.MaxValue - received).TotalMilliseconds)
        {
            TimeSpan asked = TimeSpan.FromMilliseconds(ms);
            timeout = timeout is { } t && t < asked ? t : asked;
        }

        if (arrived is not null && timeout is { } allowed && DateTimeOffset.UtcNow - received >= allowed)
        {
            // It waited for room on its connection past its timeout (its timer and its start crossed): it never starts.
            await ReplyErrorAsync(message.Id, message.Serialization, NeverStarted(name, allowed, _server.MaxCallsInFlightPerConnection)).ConfigureAwait(false);
            return;
        }

        int callLimit = _server.MaxCallsInFlightPerConnection;
        long byteLimit = _server.Options.MaxBytesInFlightPerConnection;
        // Taken here, at the check, and given back below unless a call or job comes to hold it: calls on one connection
        // are handled concurrently (HTTP requests each on their own, a waiting call beside the connection's reader).
        if (!TryTakeRoom(message.Body.Length, behindWaiting: arrived is null, out bool roomForBytes))
        {
            // As many calls running as the connection may have: this one waits for one of them to end, in a bounded line.
            if (roomForBytes && Park(message, received, name, timeout)) return;
            await ReplyErrorAsync(message.Id, message.Serialization, new RemoteError
            {
                Code = ErrorCodes.TooManyRequests,
                Message = $"This connection has {Volatile.Read(ref _callsInFlight)} calls queued or running and {Volatile.Read(ref _waitingCount)} waiting to start "
                    + $"({Interlocked.Read(ref _bytesInFlight) + Interlocked.Read(ref _bytesWaiting)} argument bytes); the server allows {callLimit} calls at once, "
                    + $"{_server.Options.MaxCallsWaitingPerConnection} more waiting, and {byteLimit} bytes per connection. Wait for some to finish.",
            }).ConfigureAwait(false);
            return;
        }

        bool held = false; // whether a relay or a submitted job holds the room taken, and gives it back when it ends
        // Only an authorizer can keep a call waiting before it is listed in flight (after that, a cancel finds its relay):
        // a call without one is not listed as starting, which keeps that off the path of every other call.
        Starting? starting = message.Kind == MessageKind.Call && options.Auth is not null ? BeginStarting(message.Id, endsWithCaller: options.CancelOnDisconnect ?? true) : null;
        try
        {
            held = await StartAsync(message, name, function, options, received, timeout, starting).ConfigureAwait(false);
        }
        finally
        {
            if (!held) GiveRoomBack(message.Body.Length);
            if (starting is not null) EndStarting(message.Id, starting);
        }
    }

    /// <summary>
    /// A call between taking its room and being listed in flight (its authorizer deciding): a cancel that comes meanwhile
    /// is kept here for it, and it never starts.
    /// </summary>
    private sealed class Starting(bool endsWithCaller)
    {
        private CancellationTokenSource? _stop;
        private volatile bool _cancelled;

        public bool Cancelled => _cancelled;

        /// <summary>Whether its caller going away cancels it too (<see cref="FunctionOptions.CancelOnDisconnect"/>).</summary>
        public bool EndsWithCaller => endsWithCaller;

        /// <summary>Marks it cancelled: under the session's lock, so that the call, listing itself under that lock too, sees it or is found listed.</summary>
        public void MarkCancelled() => _cancelled = true;

        /// <summary>Stops what it waits on (its authorizer), once marked cancelled; outside the session's lock, as what waits goes on at once.</summary>
        public void StopWaiting()
        {
            CancellationTokenSource? stop;
            lock (this) stop = _stop;
            try
            {
                stop?.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // it stopped waiting meanwhile
            }
        }

        /// <summary>What a cancel stops while it waits (null once it no longer waits).</summary>
        public void StopWith(CancellationTokenSource? stop)
        {
            lock (this) _stop = stop;
            if (stop is not null && _cancelled) stop.Cancel();
        }
    }

    private Dictionary<ulong, Starting>? _starting; // under _inFlight

    private Starting? BeginStarting(ulong id, bool endsWithCaller)
    {
        var starting = new Starting(endsWithCaller);
        lock (_inFlight) return !_inFlight.ContainsKey(id) && (_starting ??= []).TryAdd(id, starting) ? starting : null;
    }

    private void EndStarting(ulong id, Starting starting)
    {
        lock (_inFlight)
        {
            if (_starting is not null && _starting.TryGetValue(id, out Starting? current) && current == starting) _starting.Remove(id);
        }
    }

    private static readonly RemoteError CancelledBeforeStart = new() { Code = ErrorCodes.Cancelled, Message = "The call was cancelled before it started." };

    /// <summary>Takes room for a call among the connection's calls in flight; false when there is none (or others wait for it first).</summary>
    private bool TryTakeRoom(long bytes, bool behindWaiting, out bool roomForBytes)
    {
        lock (_inFlight)
        {
            roomForBytes = Interlocked.Read(ref _bytesInFlight) + Interlocked.Read(ref _bytesWaiting) + bytes <= _server.Options.MaxBytesInFlightPerConnection;
            if (!roomForBytes || Volatile.Read(ref _callsInFlight) >= _server.MaxCallsInFlightPerConnection || (behindWaiting && Volatile.Read(ref _waitingCount) > 0)) return false;
            Interlocked.Increment(ref _callsInFlight);
            Interlocked.Add(ref _bytesInFlight, bytes);
            return true;
        }
    }

    /// <summary>Gives back the room a call or job held, and starts a call waiting for it.</summary>
    private void GiveRoomBack(long bytes)
    {
        Interlocked.Decrement(ref _callsInFlight);
        Interlocked.Add(ref _bytesInFlight, -bytes);
        Unpark();
    }

    /// <summary>Authorizes and queues a call that has room on its connection; true once a relay or a submitted job holds that room.</summary>
    private async ValueTask<bool> StartAsync(IpyRpcMessage message, string name, IpyRpcFunction function, FunctionOptions options, DateTimeOffset received, TimeSpan? timeout, Starting? starting)
    {
        if (options.Auth is not null)
        {
            IReadOnlyDictionary<string, object?> arguments;
            try
            {
                arguments = CallArguments.Parse(message.Body, message.Serialization, function.Descriptor).Plain(function.Descriptor);
            }
            catch (ArgumentBindingException e)
            {
                await ReplyErrorAsync(message.Id, message.Serialization, e.Error).ConfigureAwait(false);
                return false;
            }

            RemoteError? denied;
            using (var stop = new CancellationTokenSource())
            {
                // The rule is not waited for past the call's timeout, nor once the call is cancelled: a rule that never
                // decides would hold the call's room on the connection for good.
                if (timeout is { } allowed && received + allowed - DateTimeOffset.UtcNow is var left && left < TimeSpan.FromDays(24)) stop.CancelAfter(left > TimeSpan.Zero ? left : TimeSpan.Zero);
                starting?.StopWith(stop);
                try
                {
                    ValueTask<RemoteError?> deciding = AuthorizeAsync(name, arguments, AuthorizationPurpose.Call, stop.Token);
                    denied = deciding.IsCompleted ? await deciding.ConfigureAwait(false) : await deciding.AsTask().WaitAsync(stop.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested)
                {
                    bool cancelled = starting is { Cancelled: true };
                    _server.Log.LogWarning("The authorizer of {Function} had not decided when the call was {Ended}", name, cancelled ? "cancelled" : "past its timeout");
                    await ReplyErrorAsync(message.Id, message.Serialization, cancelled ? CancelledBeforeStart : new RemoteError
                    {
                        Code = ErrorCodes.Timeout,
                        Message = $"{name} did not start within its timeout of {timeout!.Value.TotalMilliseconds:0} ms: its authorizer had not decided.",
                    }).ConfigureAwait(false);
                    return false;
                }
                finally
                {
                    starting?.StopWith(null);
                }
            }

            if (denied is not null)
            {
                _server.Log.LogWarning("Refused {Function} to {Connection}: {Reason}", name, Connection, denied.Message);
                await ReplyErrorAsync(message.Id, message.Serialization, denied).ConfigureAwait(false);
                return false;
            }
        }

        if (NothingWillRun(options))
        {
            // Came as the server began to stop (a peer that hears the close had it left to the close, above).
            await ReplyErrorAsync(message.Id, message.Serialization, ShuttingDown).ConfigureAwait(false);
            return false;
        }

        if (starting is { Cancelled: true })
        {
            await ReplyErrorAsync(message.Id, message.Serialization, CancelledBeforeStart).ConfigureAwait(false);
            return false;
        }

        bool detached = message.Kind == MessageKind.Submit;
        if (detached)
        {
            // A job runs on without its submitter, perhaps on another machine: arguments that cannot fit the function, or
            // cannot be read as its parameters' types, are refused now, not found by the worker after the submitter has gone.
            try
            {
                CallArguments arguments = CallArguments.Parse(message.Body, message.Serialization, function.Descriptor);
                arguments.CheckFits(function.Descriptor);
                if (function.ArgumentFormatters is { } formatters) arguments.CheckTypes(function.Descriptor, formatters);
            }
            catch (ArgumentBindingException e)
            {
                await ReplyErrorAsync(message.Id, message.Serialization, e.Error).ConfigureAwait(false);
                return false;
            }
        }

        System.Diagnostics.Activity? span = IpyRpcTelemetry.StartDetached(name, System.Diagnostics.ActivityKind.Server, message.Trace, name);
        var methodTag = new KeyValuePair<string, object?>("rpc.method", name);
        IpyRpcTelemetry.Calls.Add(1, methodTag);
        var request = new JobRequest
        {
            TraceParent = span?.Id ?? message.Trace,
            Function = name,
            Arguments = message.Body,
            ArgumentsPool = message.Pooled, // the queue holds the arguments' pooled arrays until the job ends
            InputSerialization = message.Serialization,
            OutputSerialization = options.OutputSerialization is { } o and not Serialization.Auto ? o : message.Serialization,
            Deadline = timeout is { } limit && limit < DateTimeOffset.MaxValue - received ? received + limit : null,
            CreatedAt = received,
            Detached = detached,
            EndsWithCaller = !detached && (options.CancelOnDisconnect ?? true),
            Caller = Connection.Caller,
            ReturnPointer = message.ReturnPointer ?? options.ReturnPointer ?? false,
            // A century or more stands for "until released or evicted" (a .NET caller's Timeout.InfiniteTimeSpan arrives as long.MaxValue).
            PointerTimeToLive = message.PointerTtlMs is long ttl ? (ttl >= 100L * 365 * 24 * 3600 * 1000 ? Timeout.InfiniteTimeSpan : TimeSpan.FromMilliseconds(ttl)) : options.PointerTimeToLive,
            HandedOver = true, // submitted once, below: the queue may give it its id in place
        };
        if (_server.Log.IsEnabled(LogLevel.Debug))
        {
            _server.Log.LogDebug("{Kind} {Function} ({Bytes} argument bytes) from {Connection}", MessageCodec.KindName(message.Kind), name, message.Body.Length, Connection);
        }
        IJobQueue queue = _server.QueueFor(options);
        if (detached)
        {
            span?.Stop(); // the job's own span carries on in the worker
            await SubmitAsync(message, queue, request, options).ConfigureAwait(false);
            return true; // the submitted job holds the room until it ends
        }

        var relay = new Relay(this, message.Id, queue, cancelOnDisconnect: options.CancelOnDisconnect ?? true, release: true, message.Body.Length)
        {
            Flow = message.Window is > 0 and var window ? new StreamFlow(window) : null,
            Span = span,
            Function = name,
        };
        IpyRpcTelemetry.Active.Add(1, methodTag);
        if (!TryAdd(relay, starting))
        {
            relay.Measure(starting is { Cancelled: true } ? "cancelled" : "failed");
            return false;
        }

        // From here the relay holds the room, and gives it back when the call ends (Finished).
        try
        {
            // A short synchronous function configured Inline runs here, on the thread that received the call.
            JobTicket ticket = _server.InlineQueue(function, options, request) is { } inline
                ? await inline.SubmitAndRunAsync(request, relay, _server.Registry, _server.InlineWorkerId).ConfigureAwait(false)
                : await queue.SubmitAsync(request, relay).ConfigureAwait(false);
            relay.Subscription = ticket.Subscription;
            // Cancelled while it was being queued: the cancel may have come before the queue held the job, and missed it.
            if (relay.CancelRequested) await queue.CancelAsync(ticket.JobId).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ObjectDisposedException or OperationCanceledException or InvalidOperationException)
        {
            Remove(relay);
            Finished(relay);
            relay.Measure("cancelled");
            await ReplyErrorAsync(message.Id, message.Serialization, ShuttingDown).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // A durable queue's store is unreachable (the call was not queued, or may have been: the error says which), or failed.
            LogQueueingFailure(e, name, queue);
            Remove(relay);
            Finished(relay);
            relay.Measure("failed");
            await ReplyErrorAsync(message.Id, message.Serialization, QueueingFailed(e, "call", queue)).ConfigureAwait(false);
        }

        return true;
    }

    private async ValueTask SubmitAsync(IpyRpcMessage message, IJobQueue queue, JobRequest request, FunctionOptions options)
    {
        JobInfo info;
        // A submitted job holds its room on the connection until it ends, like a call; one never queued gives it back at once.
        var tracker = new SubmittedJob(this, request.Arguments.Length);
        try
        {
            JobTicket ticket = await queue.SubmitAsync(request, tracker).ConfigureAwait(false);
            tracker.Subscription = ticket.Subscription;
            info = await queue.GetAsync(ticket.JobId).ConfigureAwait(false) ?? new JobInfo { Id = ticket.JobId, Function = request.Function, Queue = queue.Name, State = JobState.Queued, CreatedAt = request.CreatedAt, Detached = true };
            if (options.CancelOnDisconnect == true)
            {
                lock (_inFlight) (_tiedJobs ??= []).Add((queue, ticket.JobId));
            }
        }
        catch (Exception e)
        {
            tracker.Ended();
            if (e is ProtocolException) throw;
            LogQueueingFailure(e, message.Function, queue);
            await ReplyErrorAsync(message.Id, message.Serialization, QueueingFailed(e, "job", queue)).ConfigureAwait(false);
            return;
        }

        await ReplyAsync(message, JobCodec.Encode(JobCodec.ToMap(info), message.Serialization), info.Id).ConfigureAwait(false);
    }

    /// <summary>Counts a submitted job against its connection until the job ends (or the connection does).</summary>
    private sealed class SubmittedJob : IJobObserver
    {
        private readonly ServerSession _session;
        private readonly long _bytes;
        private int _done;

        /// <summary>Holds the room already taken for the job on <paramref name="session"/>.</summary>
        public SubmittedJob(ServerSession session, long bytes)
        {
            _session = session;
            _bytes = bytes;
        }

        public IDisposable? Subscription { get; set; }

        public void OnAccepted(string jobId)
        {
        }

        public void OnEvent(in JobEvent jobEvent)
        {
            if (jobEvent.Kind == JobEventKind.Completed) Ended();
        }

        /// <summary>Gives the job's room back, once: it ended, or was never queued.</summary>
        public void Ended()
        {
            if (Interlocked.Exchange(ref _done, 1) == 1) return;
            _session.GiveRoomBack(_bytes);
            Subscription?.Dispose();
        }
    }

    private async ValueTask AttachAsync(IpyRpcMessage message)
    {
        string jobId = message.JobId!;
        if (await _server.FindJobAsync(jobId, withOutput: false, CancellationToken.None).ConfigureAwait(false) is not { } found)
        {
            await ReplyErrorAsync(message.Id, message.Serialization, UnknownJob(jobId), jobId).ConfigureAwait(false);
            return;
        }

        if (await MayAccessAsync(found.Info).ConfigureAwait(false) is { } refused)
        {
            await ReplyErrorAsync(message.Id, message.Serialization, refused, jobId).ConfigureAwait(false);
            return;
        }

        var relay = new Relay(this, message.Id, found.Queue, cancelOnDisconnect: false, release: false);
        if (!TryAdd(relay))
        {
            return;
        }

        IDisposable? subscription = await found.Queue.WatchAsync(jobId, message.After ?? 0, relay).ConfigureAwait(false);
        if (subscription is null)
        {
            Remove(relay);
            await ReplyErrorAsync(message.Id, message.Serialization, UnknownJob(jobId), jobId).ConfigureAwait(false);
            return;
        }

        relay.Subscription = subscription;
    }

    private async ValueTask StatusAsync(IpyRpcMessage message)
    {
        string jobId = message.JobId!;
        if (await _server.FindJobAsync(jobId, withOutput: message.After is not null, CancellationToken.None).ConfigureAwait(false) is not { } found)
        {
            await ReplyErrorAsync(message.Id, message.Serialization, UnknownJob(jobId), jobId).ConfigureAwait(false);
            return;
        }

        if (await MayAccessAsync(found.Info).ConfigureAwait(false) is { } refused)
        {
            await ReplyErrorAsync(message.Id, message.Serialization, refused, jobId).ConfigureAwait(false);
            return;
        }

        await ReplyAsync(message, JobCodec.Encode(JobCodec.ToMap(found.Info), message.Serialization), jobId).ConfigureAwait(false);
    }

    private async ValueTask ListAsync(IpyRpcMessage message)
    {
        JobQuery query;
        try
        {
            query = ParseQuery(JobCodec.Decode(message.Body.Span, message.Serialization));
        }
        catch (Exception e) when (e is Formatting.IpyRpcSerializationException or System.Text.Json.JsonException or ArgumentException)
        {
            await ReplyErrorAsync(message.Id, message.Serialization, new RemoteError { Code = ErrorCodes.InvalidArguments, Message = "A list filter is a map with optional \"state\", \"function\" (a glob) and \"limit\": " + e.Message }).ConfigureAwait(false);
            return;
        }

        var all = new List<JobInfo>();
        foreach (IJobQueue q in _server.Queues)
        {
            foreach (JobInfo job in await q.ListAsync(query).ConfigureAwait(false))
            {
                if (await MayAccessAsync(job).ConfigureAwait(false) is null) all.Add(job);
            }
        }

        object?[] listed = [.. all.OrderByDescending(j => j.CreatedAt).Take(query.Limit).Select(j => (object?)JobCodec.ToMap(j))];
        await ReplyAsync(message, JobCodec.Encode(listed, message.Serialization)).ConfigureAwait(false);
    }

    private static JobQuery ParseQuery(object? filter)
    {
        if (filter is null) return new JobQuery();
        if (filter is not Dictionary<string, object?> map) throw new ArgumentException("the filter is not a map");
        JobState? state = null;
        if (map.GetValueOrDefault("state") is string s)
        {
            state = JobStates.Parse(s) ?? throw new ArgumentException($"\"{s}\" is not a job state (queued, running, succeeded, failed, cancelled, timed_out)");
        }

        string? function = map.GetValueOrDefault("function") as string;
        if (function is not null) Glob.Validate(function);
        int limit = map.GetValueOrDefault("limit") is long l ? (int)Math.Clamp(l, 1, 10_000) : 100;
        return new JobQuery { State = state, Function = function, Limit = limit };
    }

    private async ValueTask CancelAsync(IpyRpcMessage message)
    {
        if (message.JobId is { } jobId)
        {
            // Cancel a job by id: answered, so the caller learns whether it was still running.
            if (await _server.FindJobAsync(jobId, withOutput: false, CancellationToken.None).ConfigureAwait(false) is not { } found)
            {
                await ReplyErrorAsync(message.Id, message.Serialization, UnknownJob(jobId), jobId).ConfigureAwait(false);
                return;
            }

            if (await MayAccessAsync(found.Info).ConfigureAwait(false) is { } refused)
            {
                await ReplyErrorAsync(message.Id, message.Serialization, refused, jobId).ConfigureAwait(false);
                return;
            }

            bool cancelled = await found.Queue.CancelAsync(jobId).ConfigureAwait(false);

            await ReplyAsync(message, JobCodec.Encode(cancelled, message.Serialization), jobId).ConfigureAwait(false);
            return;
        }

        // Cancel one of this connection's requests by its id: a call stops its job; an attach stops following (the job goes on).
        Relay? relay;
        Starting? starting;
        lock (_inFlight)
        {
            starting = _inFlight.TryGetValue(message.Id, out relay) ? null : _starting?.GetValueOrDefault(message.Id);
            starting?.MarkCancelled();
        }

        if (starting is not null)
        {
            starting.StopWaiting(); // it answers, as it ends before starting
            return;
        }

        if (relay is null)
        {
            if (Unqueue(message.Id))
            {
                await ReplyErrorAsync(message.Id, message.Serialization, new RemoteError { Code = ErrorCodes.Cancelled, Message = "The call was cancelled before it started: it was waiting for room on its connection." }).ConfigureAwait(false);
            }

            return;
        }

        if (relay.Releases)
        {
            relay.CancelRequested = true; // seen by the call once queued, should the queue not hold the job yet
            if (relay.JobId is { } id) await relay.Queue.CancelAsync(id).ConfigureAwait(false);
        }
        else if (relay.StopFollowing())
        {
            Remove(relay);
            await ReplyErrorAsync(message.Id, message.Serialization, new RemoteError { Code = ErrorCodes.Cancelled, Message = $"Stopped following job {relay.JobId}; the job goes on." }, relay.JobId).ConfigureAwait(false);
        }
    }

    private async ValueTask SubscribeAsync(IpyRpcMessage message)
    {
        string pattern = message.Function!;
        if (!_duplex)
        {
            await ReplyErrorAsync(message.Id, message.Serialization, new RemoteError
            {
                Code = ErrorCodes.BadMessage,
                Message = $"Events need a connection that carries messages both ways (in process, ZeroMQ, WebSockets); this {Connection.Transport} connection carries separate requests.",
            }).ConfigureAwait(false);
            return;
        }

        if (Internal.GlobMatcher.Problem(pattern) is { } problem)
        {
            await ReplyErrorAsync(message.Id, message.Serialization, new RemoteError { Code = ErrorCodes.InvalidArguments, Message = $"\"{pattern}\" is not a valid event name or glob: {problem}." }).ConfigureAwait(false);
            return;
        }

        IReadOnlyList<EventDescriptor> all = _server.Events;
        List<string> matching = [.. all.Select(e => e.Name).Where(n => Glob.IsLiteral(pattern) ? n == pattern : Internal.GlobMatcher.IsMatch(pattern, n))];
        if (matching.Count == 0)
        {
            await ReplyErrorAsync(message.Id, message.Serialization, new RemoteError
            {
                Code = ErrorCodes.NotFound,
                Message = all.Count == 0
                    ? $"No event matches '{pattern}': this server publishes no events."
                    : $"No event matches '{pattern}'. This server publishes: {string.Join(", ", all.Select(e => e.Name))}.",
            }).ConfigureAwait(false);
            return;
        }

        var allowed = new HashSet<string>(StringComparer.Ordinal);
        RemoteError? refusal = null;
        foreach (string name in matching)
        {
            if (await AuthorizeAsync(name, null, AuthorizationPurpose.Subscription).ConfigureAwait(false) is { } denied) refusal = denied;
            else allowed.Add(name);
        }

        if (allowed.Count == 0)
        {
            await ReplyErrorAsync(message.Id, message.Serialization, refusal!).ConfigureAwait(false);
            return;
        }

        object?[] names = [.. allowed.Order(StringComparer.Ordinal)];
        if (_server.SubscriptionHistory is not { } history)
        {
            if (!Register(pattern, message.Serialization, allowed)) return;
            await ReplyAsync(message, JobCodec.Encode(names, message.Serialization)).ConfigureAwait(false);
            return;
        }

        // With a history: the subscription starts at the last event numbered (told in part 1, as an id), and one that asks
        // to resume after an id first hears the events it matches published since (answering this request: they carry its
        // id), all before the answer. Registering and queueing the replay are one step under the history's lock, as
        // publishing is, so the replay comes before every later event and none falls between.
        (string? resume, Dictionary<string, object?>? missed) = ResumePoint(message, history);
        long? after = resume is null ? null : history.NumberOf(resume);
        long start;
        EventOutbox.Posted posted = EventOutbox.Posted.Nothing;
        lock (history.Gate)
        {
            if (!Register(pattern, message.Serialization, allowed)) return;
            start = history.Last;
            if (after is { } from)
            {
                List<KeptEvent> replay = history.After(from, out bool complete);
                foreach (KeptEvent e in replay)
                {
                    if (!allowed.Contains(e.Name)) continue;
                    EventOutbox.Posted p = _outbox!.Queue(new IpyRpcMessage
                    {
                        Kind = MessageKind.Event,
                        Id = message.Id,
                        Function = e.Name,
                        Serialization = message.Serialization,
                        Parts = [e.Payload(message.Serialization)],
                        Sequence = e.Number,
                    });
                    if (p != EventOutbox.Posted.Nothing) posted = p;
                }

                if (!complete) missed = Missed("expired", history.Expired(resume!, "subscription"));
            }
        }

        _outbox!.Then(posted);
        if (after is not null) await _outbox.SentAsync().ConfigureAwait(false); // the replay goes before the answer
        var resumed = new Dictionary<string, object?> { ["start"] = history.IdOf(start) };
        if (missed is not null) resumed["missed"] = missed;
        await IgnoreResult(SendAsync(new IpyRpcMessage
        {
            Kind = MessageKind.Result,
            Id = message.Id,
            Serialization = message.Serialization,
            Parts = [JobCodec.Encode(names, message.Serialization), JobCodec.Encode(resumed, message.Serialization)],
        })).ConfigureAwait(false);
    }

    // Adds a subscription (false: the connection closed meanwhile).
    private bool Register(string pattern, Serialization serialization, HashSet<string> allowed)
    {
        lock (_subscriptionGate)
        {
            if (_closed) return false;
            (_subscriptions ??= new(StringComparer.Ordinal))[pattern] = (serialization, allowed);
            _outbox ??= new EventOutbox(SendAsync, why => _ = CloseAsync(new DisconnectInfo(DisconnectReason.ClosedByServer, why), notifyPeer: true).AsTask(),
                _server.Options.EventBufferSize, _server.Options.EventOverflow);
        }

        _server.Subscribed(this);
        return true;
    }

    // The id a subscribe asks to resume after (part 0: {"resume": id}), and why it cannot when this server did not give it.
    private static (string? Resume, Dictionary<string, object?>? Missed) ResumePoint(IpyRpcMessage message, EventHistory history)
    {
        if (message.Body.IsEmpty) return (null, null);
        object? body;
        try
        {
            body = JobCodec.Decode(message.Body.Span, message.Serialization);
        }
        catch (Exception e) when (e is Formatting.IpyRpcSerializationException or System.Text.Json.JsonException or MessagePack.MessagePackSerializationException)
        {
            throw new ProtocolException(ErrorCodes.BadMessage, $"The body of a subscribe could not be read: {e.Message}", message.Id);
        }

        object? resume = body is Dictionary<string, object?> fields ? fields.GetValueOrDefault("resume")
            : body is null ? null
            : throw new ProtocolException(ErrorCodes.BadMessage, "A subscribe's part 0, when there is one, is a map: {\"resume\": the id of the last event heard}.", message.Id);
        if (resume is null) return (null, null);
        if (resume is not string { Length: > 0 and <= 64 } id)
        {
            throw new ProtocolException(ErrorCodes.BadMessage, "\"resume\" of a subscribe is the id of the last event heard (a string such as \"1f2e3d4c-42\", from the subscribe's answer and the events' seq).", message.Id);
        }

        return history.NumberOf(id) is null ? (null, Missed("unknown_id", EventHistory.Unknown(id, "subscription"))) : (id, null);
    }

    private static Dictionary<string, object?> Missed(string reason, string message) => new() { ["reason"] = reason, ["message"] = message };

    private async ValueTask UnsubscribeAsync(IpyRpcMessage message)
    {
        bool removed, none;
        lock (_subscriptionGate)
        {
            removed = _subscriptions?.Remove(message.Function!) == true;
            none = _subscriptions is not { Count: > 0 };
        }

        if (none) _server.Unsubscribed(this);
        await ReplyAsync(message, JobCodec.Encode(removed, message.Serialization)).ConfigureAwait(false);
    }

    /// <summary>Queues a published event for this connection if it subscribed to it, sending nothing (never waits): the caller passes what this returns to the outbox's <see cref="EventOutbox.Then"/>.</summary>
    internal (EventOutbox? Outbox, EventOutbox.Posted Posted) QueueEvent(OutgoingEvent e)
    {
        EventOutbox? outbox;
        Serialization serialization = Serialization.MessagePack;
        lock (_subscriptionGate)
        {
            if (_closed || _subscriptions is null || (outbox = _outbox) is null) return default;
            bool wanted = false;
            foreach ((Serialization ser, HashSet<string> events) in _subscriptions.Values)
            {
                if (events.Contains(e.Name))
                {
                    wanted = true;
                    serialization = ser;
                    break;
                }
            }

            if (!wanted) return default;
        }

        return (outbox, outbox.Queue(e.For(serialization)));
    }

    /// <summary>How many published events wait for this connection's transport to take them.</summary>
    public int EventsWaiting => _outbox?.Waiting ?? 0;

    /// <summary>
    /// Whether a call of a function with these options would never run: the server is stopping and the function's queue
    /// goes with it. (A durable queue's call is queued for whoever serves the queue next.)
    /// </summary>
    private bool NothingWillRun(FunctionOptions options) => _server.IsStopping && !_server.QueueFor(options).IsDurable;

    /// <summary>The answer to a call that came while the server was stopping, with nothing left to run it.</summary>
    private static readonly RemoteError ShuttingDown = new()
    {
        Code = ErrorCodes.Unavailable,
        Message = "The server is shutting down: the call was not queued and did not run. Make it again once the server is back (a client that reconnects waits for it).",
    };

    private static RemoteError UnknownJob(string jobId) => new()
    {
        Code = ErrorCodes.NotFound,
        Message = $"No queue of this server knows job '{jobId}': it never existed here, or it finished longer ago than the queue's retention keeps jobs.",
    };

    private bool TryAdd(Relay relay, Starting? starting = null)
    {
        bool added, closed, cancelled;
        lock (_inFlight)
        {
            closed = _closed;
            // Listed, or cancelled while starting: a cancel finds the one or the other, never neither.
            cancelled = !closed && starting is { Cancelled: true };
            added = !closed && !cancelled && _inFlight.TryAdd(relay.RequestId, relay);
            if (added && starting is not null) _starting!.Remove(relay.RequestId);
        }

        if (closed || cancelled)
        {
            _ = ReplyErrorAsync(relay.RequestId, Serialization.MessagePack, closed ? new RemoteError { Code = ErrorCodes.Cancelled, Message = "The connection is closing." } : CancelledBeforeStart);
            return false;
        }

        if (!added)
        {
            _ = ReplyErrorAsync(relay.RequestId, Serialization.MessagePack, new RemoteError
            {
                Code = ErrorCodes.BadMessage,
                Message = $"Request id {relay.RequestId} is already in use by a call that has not finished.",
            });
        }

        return added;
    }

    /// <summary>Gives a finished call's share of the connection's in-flight limits back, and starts a call waiting for it.</summary>
    private void Finished(Relay relay)
    {
        if (relay.Releases && relay.MarkFinished()) GiveRoomBack(relay.Bytes);
    }

    /// <summary>A call waiting for room on its connection, when it came, and the timer that answers it should its timeout pass first.</summary>
    private sealed class Parked(IpyRpcMessage message, DateTimeOffset arrived, string function)
    {
        public IpyRpcMessage Message => message;

        public KeyValuePair<string, object?> MethodTag => new("rpc.method", function);

        public DateTimeOffset Arrived => arrived;

        public Timer? Deadline;
    }

    /// <summary>Puts a call in the connection's line of calls waiting to start; false when the line is full or the connection closing.</summary>
    private bool Park(IpyRpcMessage message, DateTimeOffset arrived, string function, TimeSpan? timeout)
    {
        var parked = new Parked(message, arrived, function);
        lock (_inFlight)
        {
            if (_closed || _waitingCount >= _server.Options.MaxCallsWaitingPerConnection) return false;
            (_waiting ??= new Queue<Parked>()).Enqueue(parked);
            IpyRpcTelemetry.Waiting.Add(1, parked.MethodTag);
            Volatile.Write(ref _waitingCount, _waiting.Count);
            Interlocked.Add(ref _bytesWaiting, message.Body.Length);
            if (timeout is { } t)
            {
                // Answered when its timeout passes, not only once room is made: it never starts then.
                TimeSpan left = arrived + t - DateTimeOffset.UtcNow;
                parked.Deadline = new Timer(static state =>
                {
                    var (session, waiting, name, allowed) = ((ServerSession, Parked, string, TimeSpan))state!;
                    if (session.Unqueue(waiting)) _ = session.ReplyErrorAsync(waiting.Message.Id, waiting.Message.Serialization, NeverStarted(name, allowed, session._server.MaxCallsInFlightPerConnection));
                }, (this, parked, function, t), left > TimeSpan.Zero ? left : TimeSpan.Zero, Timeout.InfiniteTimeSpan);
            }
        }

        // A call may have ended between the count's check and the line, and found nobody in it.
        Unpark();
        return true;
    }

    private static RemoteError NeverStarted(string function, TimeSpan timeout, int limit) => new()
    {
        Code = ErrorCodes.Timeout,
        Message = $"{function} did not start within its timeout of {timeout.TotalMilliseconds:0} ms: it waited for room among this connection's calls ({limit} may run at once).",
    };

    /// <summary>Starts the call that has waited longest, if the connection has room for it now.</summary>
    private void Unpark()
    {
        if (Volatile.Read(ref _waitingCount) == 0) return;
        Parked next;
        lock (_inFlight)
        {
            if (_waiting is not { Count: > 0 } || Volatile.Read(ref _callsInFlight) >= _server.MaxCallsInFlightPerConnection) return;
            next = _waiting.Dequeue();
            Volatile.Write(ref _waitingCount, _waiting.Count);
            Interlocked.Add(ref _bytesWaiting, -next.Message.Body.Length);
            next.Deadline?.Dispose();
            IpyRpcTelemetry.Waiting.Add(-1, next.MethodTag);
        }

        // Not on the thread that ended the last call (a worker's, or a transport's): the call goes through the checks again,
        // and waits again should another have taken the room meanwhile.
        ThreadPool.UnsafeQueueUserWorkItem(static state => _ = state.Session.HandleAsync(state.Next.Message, state.Next.Arrived), (Session: this, Next: next), preferLocal: false);
    }

    /// <summary>Takes a call out of the line before it started (its caller cancelled it, or its timeout passed); false when it is not there.</summary>
    private bool Unqueue(Parked parked) => Unqueue(p => p == parked);

    /// <inheritdoc cref="Unqueue(Parked)"/>
    private bool Unqueue(ulong requestId) => Unqueue(p => p.Message.Id == requestId);

    private bool Unqueue(Func<Parked, bool> which)
    {
        lock (_inFlight)
        {
            if (_waiting is not { Count: > 0 } || _waiting.FirstOrDefault(which) is not { } gone) return false;
            _waiting = new Queue<Parked>(_waiting.Where(p => p != gone));
            Volatile.Write(ref _waitingCount, _waiting.Count);
            Interlocked.Add(ref _bytesWaiting, -gone.Message.Body.Length);
            gone.Deadline?.Dispose();
            IpyRpcTelemetry.Waiting.Add(-1, gone.MethodTag);
            gone.Message.Pooled?.Release(); // its arguments' arrays, which no job will hold
            return true;
        }
    }

    private void Remove(Relay relay)
    {
        lock (_inFlight)
        {
            if (_inFlight.TryGetValue(relay.RequestId, out Relay? current) && current == relay) _inFlight.Remove(relay.RequestId);
        }

        if (relay.Flow is not null && relay.JobId is { } job) _server.Flows.TryRemove(job, out _);
    }

    private Relay? FindRelay(ulong requestId)
    {
        lock (_inFlight) return _inFlight.GetValueOrDefault(requestId);
    }

    /// <summary>
    /// Turns one job's events into messages to the caller, in order. A send that completes at once
    /// (ZeroMQ, in-process) happens right on the thread that reported the event: no hop. One that
    /// does not (an HTTP response write) queues the rest behind it.
    /// </summary>
    private sealed class Relay(ServerSession session, ulong requestId, IJobQueue queue, bool cancelOnDisconnect, bool release, long bytes = 0) : IJobObserver, IOutputBackpressure
    {
        private long _buffered; // bytes of output and progress posted and not yet handed to the transport; under _gate

        private int _finished;

        /// <summary>The argument bytes this call counts against its connection.</summary>
        public long Bytes => bytes;

        /// <summary>True the first time only: the call's in-flight count is given back once.</summary>
        public bool MarkFinished() => Interlocked.Exchange(ref _finished, 1) == 0;

        // The lock for what follows, and what waits behind a message being sent (made when one must wait: a call's
        // one reply, sent at once, needs none).
        private readonly object _gate = new();
        private Queue<IpyRpcMessage>? _waiting;
        private bool _sending;
        private bool _done;
        // Writers waiting in WaitForRoom; under _gate. Monitor.PulseAll is called only when one is: even with nobody to
        // wake it gives the object a sync block (a runtime-wide table entry, freed only by the collector), on every call.
        private int _waitingForRoom;

        public ulong RequestId => requestId;

        public IJobQueue Queue => queue;

        public string? JobId { get; private set; }

        public IDisposable? Subscription { get; set; }

        public bool CancelOnDisconnect => cancelOnDisconnect;

        /// <summary>The caller cancelled the call (its job is cancelled too once queued).</summary>
        public volatile bool CancelRequested;

        /// <summary>Whether this is a call whose result is released once delivered (an attach leaves it for others).</summary>
        public bool Releases => release;

        /// <summary>The caller's flow control, for a streaming call that gave a window.</summary>
        public StreamFlow? Flow { get; init; }

        /// <summary>The server span of the call (when someone listens).</summary>
        public System.Diagnostics.Activity? Span { get; init; }

        /// <summary>The function called (for metrics); null for an attach.</summary>
        public string? Function { get; init; }

        private readonly long _started = System.Diagnostics.Stopwatch.GetTimestamp();
        private int _measured;

        /// <summary>Records the call's duration and outcome once, and ends its span.</summary>
        public void Measure(string outcome)
        {
            if (Function is null || Interlocked.Exchange(ref _measured, 1) == 1) return;
            var method = new KeyValuePair<string, object?>("rpc.method", Function);
            var result = new KeyValuePair<string, object?>("ipyrpc.outcome", outcome);
            IpyRpcTelemetry.Active.Add(-1, method);
            IpyRpcTelemetry.Duration.Record(System.Diagnostics.Stopwatch.GetElapsedTime(_started).TotalSeconds, method, result);
            if (outcome != "succeeded") IpyRpcTelemetry.Failures.Add(1, method, result);
            if (Span is { } span)
            {
                if (JobId is { } job) span.SetTag("ipyrpc.job", job);
                span.SetTag("ipyrpc.outcome", outcome);
                if (outcome != "succeeded") span.SetStatus(System.Diagnostics.ActivityStatusCode.Error, outcome);
                span.Stop();
            }
        }

        public void OnAccepted(string jobId)
        {
            JobId = jobId;
            if (Flow is { } flow) session._server.Flows[jobId] = flow; // before any worker can take the job
        }

        public void OnEvent(in JobEvent e)
        {
            switch (e.Kind)
            {
                case JobEventKind.Output when !JobData.IsConsole(e.Stream):
                    PostData(e);
                    break;
                case JobEventKind.Output:
                    Post(new IpyRpcMessage
                    {
                        Kind = MessageKind.Output,
                        Id = requestId,
                        Stream = e.Stream,
                        JobId = JobId,
                        Sequence = e.Sequence,
                        Parts = [System.Text.Encoding.UTF8.GetBytes(e.Text!)],
                    });
                    break;
                case JobEventKind.Started when e.Attempt > 1 && _itemsPosted is { } serialization:
                    StartedOver(e.Attempt, serialization);
                    break;
                case JobEventKind.Started when e.Attempt > 1:
                    Post(new IpyRpcMessage
                    {
                        Kind = MessageKind.Output,
                        Id = requestId,
                        Stream = OutputStream.Stderr,
                        JobId = JobId,
                        Sequence = e.Sequence,
                        Parts = [System.Text.Encoding.UTF8.GetBytes($"[ipyrpc] job {JobId} was delivered again after its worker stopped answering (attempt {e.Attempt}); its output starts over.\n")],
                    });
                    break;
                case JobEventKind.Completed:
                    Measure(IpyRpcTelemetry.Outcome(e.Outcome!.State));
                    if (JobId is { } id && Flow is not null) session._server.Flows.TryRemove(id, out _);
                    Post(Final(e.Outcome!));
                    break;
            }
        }

        // Ends a reading that has items of a run the job was delivered again after: the new run's items would repeat them.
        private void StartedOver(int attempt, Serialization serialization)
        {
            var error = new RemoteError
            {
                Code = ErrorCodes.DeliveredAgain,
                Message = $"Job {JobId} was delivered again after its worker stopped answering (attempt {attempt}), when items of the earlier run had "
                    + (release ? "been sent: its new run would make them again from the start, so the call ends here, and its job is cancelled. Call it again."
                        : "been read: its new run makes them again from the start, so this reading ends here; the job goes on. Read its items again."),
            };
            Post(ErrorMessage(requestId, serialization, error, JobId));
            Measure("failed");
            if (Flow is { } flow)
            {
                if (JobId is { } id) session._server.Flows.TryRemove(id, out _);
                flow.Grant(long.MaxValue / 2); // the new run must not wait for credit nobody will give
            }

            Subscription?.Dispose();
            if (release && JobId is { } job) _ = IgnoreFailures(new ValueTask(queue.CancelAsync(job).AsTask())); // a plain call's run is for this caller alone
        }

        // The serialization of the items sent to the reader, once any were: a redelivery after them ends the reading.
        private Serialization? _itemsPosted;

        private void PostData(in JobEvent e)
        {
            (Serialization serialization, byte[] bytes) data;
            try
            {
                data = JobData.Decode(e.Text!);
            }
            catch (FormatException)
            {
                return; // not data a worker of ours recorded
            }

            if (e.Stream == JobData.Items) _itemsPosted ??= data.serialization;
            Post(new IpyRpcMessage
            {
                Kind = e.Stream == JobData.Items ? MessageKind.Items : MessageKind.Progress,
                Id = requestId,
                JobId = JobId,
                Sequence = e.Sequence,
                Serialization = data.serialization,
                Parts = [data.bytes],
            });
        }

        // Called as the job completes (or is watched once complete), while the queue still holds its result: a result
        // in pooled arrays gets a reference of the message's own, which the transport gives back once it has sent it.
        private IpyRpcMessage Final(JobOutcome outcome)
        {
            if (outcome.Error is not null) return ErrorMessage(requestId, outcome.ResultSerialization, outcome.Error, JobId);
            PooledParts? pooled = outcome.ResultPool;
            if (pooled is not null && !pooled.TryAcquire())
            {
                return ErrorMessage(requestId, outcome.ResultSerialization, new RemoteError { Code = ErrorCodes.NotFound, Message = $"The result of job {JobId} was released before it could be sent." }, JobId);
            }

            return new IpyRpcMessage { Kind = MessageKind.Result, Id = requestId, JobId = JobId, Serialization = outcome.ResultSerialization, Parts = [outcome.Result], Pooled = pooled };
        }

        /// <summary>
        /// Blocks the function's writer while more than <see cref="IpyRpcServerOptions.MaxBufferedOutputBytesPerCall"/>
        /// of its output waits for the transport (the caller reads slowly), until half of it has gone, the call
        /// ends or stops being followed, or <paramref name="cancellationToken"/> fires.
        /// </summary>
        public void WaitForRoom(CancellationToken cancellationToken)
        {
            long limit = session._server.Options.MaxBufferedOutputBytesPerCall;
            lock (_gate)
            {
                if (_buffered <= limit) return; // the common case: no waiting, and the writer keeps every lock it holds
            }

            // The writer is usually inside Console.WriteLine, under the lock all the process's console output shares.
            OutputCapture.WaitOutsideConsoleLocks(() =>
            {
                lock (_gate)
                {
                    while (_buffered > limit / 2 && !_done && !cancellationToken.IsCancellationRequested)
                    {
                        _waitingForRoom++;
                        try
                        {
                            Monitor.Wait(_gate, 50); // woken as the backlog drains; the timeout notices a cancel
                        }
                        finally
                        {
                            _waitingForRoom--;
                        }
                    }
                }
            });
        }

        /// <summary>Stops following the job without an outcome; false when the outcome is already on its way.</summary>
        public bool StopFollowing()
        {
            lock (_gate)
            {
                if (_done) return false;
                _done = true;
                WakeWritersLocked(); // a function waiting for room goes on: nobody reads its output any more
            }

            Measure("cancelled"); // the caller went away before the outcome
            if (Flow is { } flow)
            {
                if (JobId is { } id) session._server.Flows.TryRemove(id, out _);
                flow.Grant(long.MaxValue / 2); // a producer waiting for this caller's credit must not wait forever
            }

            Subscription?.Dispose();
            return true;
        }

        /// <summary>Wakes the writers waiting for room, if any; under <see cref="_gate"/>.</summary>
        private void WakeWritersLocked()
        {
            if (_waitingForRoom > 0) Monitor.PulseAll(_gate);
        }

        private void Post(IpyRpcMessage message)
        {
            lock (_gate)
            {
                if (_done) return;
                if (message.Kind is MessageKind.Result or MessageKind.Error)
                {
                    _done = true;
                    WakeWritersLocked();
                }

                if (message.Kind is MessageKind.Output or MessageKind.Progress) _buffered += message.Body.Length;
                if (_sending)
                {
                    (_waiting ??= new Queue<IpyRpcMessage>()).Enqueue(message);
                    return;
                }

                _sending = true;
            }

            _ = DrainAsync(message);
        }

        /// <summary>Sends <paramref name="next"/>, then whatever was posted meanwhile, in order.</summary>
        private async Task DrainAsync(IpyRpcMessage next)
        {
            while (true)
            {
                // The call's share of the connection's limits is given back before its reply goes: a caller that
                // answers a reply with its next call at once (up to the limit in flight) must find the room there.
                if (next.Kind is MessageKind.Result or MessageKind.Error) session.Finished(this);
                bool sent = await session.SendAsync(next).ConfigureAwait(false);
                if (next.Kind is MessageKind.Output or MessageKind.Progress)
                {
                    lock (_gate)
                    {
                        _buffered -= next.Body.Length;
                        if (_buffered <= session._server.Options.MaxBufferedOutputBytesPerCall / 2) WakeWritersLocked();
                    }
                }

                if (next.Kind is MessageKind.Result or MessageKind.Error)
                {
                    // In flight until its last message is handed to the transport, so a shutdown can wait for it.
                    session.Remove(this);
                    if (release && sent && JobId is { } id)
                    {
                        // Delivered to the only caller that wanted it: the queue need not keep the result.
                        await IgnoreFailures(queue.ReleaseAsync(id)).ConfigureAwait(false);
                    }
                }

                lock (_gate)
                {
                    if (_waiting is null || !_waiting.TryDequeue(out next!))
                    {
                        _sending = false;
                        return;
                    }
                }
            }
        }
    }

    private ValueTask ReplyAsync(IpyRpcMessage request, byte[] body, string? jobId = null) => IgnoreResult(SendAsync(new IpyRpcMessage
    {
        Kind = MessageKind.Result,
        Id = request.Id,
        JobId = jobId,
        Serialization = request.Serialization,
        Parts = [body],
    }));

    private ValueTask ReplyErrorAsync(ulong id, Serialization serialization, RemoteError error, string? jobId = null)
        => IgnoreResult(SendAsync(ErrorMessage(id, serialization, error, jobId)));

    private static IpyRpcMessage ErrorMessage(ulong id, Serialization serialization, RemoteError error, string? jobId) => new()
    {
        Kind = MessageKind.Error,
        Id = id,
        JobId = jobId,
        Serialization = serialization,
        Parts = [error.Encode(serialization)],
    };

    /// <summary>Sends a message; false when the connection closed under us (nothing is left to tell).</summary>
    private async ValueTask SendQuietlyAsync(IpyRpcMessage message) => await SendAsync(message).ConfigureAwait(false);

    private async ValueTask<bool> SendAsync(IpyRpcMessage message)
    {
        try
        {
            // Sent even after close: a call cancelled by a shutdown still tells its caller so, where the transport is still up.
            ValueTask sending = _send(message, CancellationToken.None);
            if (!sending.IsCompletedSuccessfully) await sending.ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or IpyRpcConnectionException or IOException)
        {
            return false;
        }
    }

    private static async ValueTask IgnoreResult(ValueTask<bool> sending) => await sending.ConfigureAwait(false);

    private static async ValueTask IgnoreFailures(ValueTask task)
    {
        try
        {
            await task.ConfigureAwait(false);
        }
        catch (Exception)
        {
            // A result left unreleased is dropped by the retention rules instead.
        }
    }

    /// <summary>
    /// The caller of one request went away while the session goes on (an HTTP request aborted on a connection
    /// whose other requests continue): that call is treated as a disconnect would treat it. A plain call is
    /// cancelled, unless <see cref="FunctionOptions.CancelOnDisconnect"/> is false (it runs on and waits to be
    /// attached); an attach stops following.
    /// </summary>
    public async ValueTask AbandonAsync(ulong requestId)
    {
        Relay? relay;
        Starting? starting;
        lock (_inFlight)
        {
            starting = _inFlight.TryGetValue(requestId, out relay) ? null : _starting?.GetValueOrDefault(requestId);
            if (starting is { EndsWithCaller: true }) starting.MarkCancelled();
        }

        if (starting is { EndsWithCaller: true })
        {
            starting.StopWaiting(); // still starting: it never will
            return;
        }

        if (relay is not null) await AbandonAsync(relay).ConfigureAwait(false);
    }

    // What a caller going away does to one of its requests; true when it cancelled the request's job.
    private async ValueTask<bool> AbandonAsync(Relay relay)
    {
        if (relay.Releases && relay.CancelOnDisconnect)
        {
            relay.CancelRequested = true; // seen by the call once queued, should the queue not hold the job yet
            if (relay.JobId is { } id)
            {
                await IgnoreFailures(new ValueTask(relay.Queue.CancelAsync(id).AsTask())).ConfigureAwait(false);
                return true;
            }
        }

        if (relay.StopFollowing()) Remove(relay);
        return false;
    }

    /// <summary>
    /// Ends the session because its transport ended without a goodbye (the peer vanished); see <see cref="CloseAsync"/>.
    /// </summary>
    public ValueTask DisposeAsync() => CloseAsync(new DisconnectInfo(DisconnectReason.ConnectionLost, "The connection ended without a goodbye."), notifyPeer: false);

    /// <summary>
    /// Ends the session, once (later calls do nothing). With <paramref name="notifyPeer"/> the peer is
    /// told why first. Its plain calls are cancelled, since no one is left to receive their results
    /// (unless <see cref="FunctionOptions.CancelOnDisconnect"/> is false: they run on and wait to be attached);
    /// jobs it submitted run on (unless that option is true); attaches stop following; calls this side
    /// made to the peer fail; and, if the connection had been announced, the server's disconnected event is raised.
    /// </summary>
    public async ValueTask CloseAsync(DisconnectInfo info, bool notifyPeer)
    {
        if (Interlocked.Exchange(ref _closing, 1) == 1) return;
        Relay[] open;
        (IJobQueue Queue, string JobId)[] tied;
        Parked[] waiting;
        Starting[] starting;
        lock (_inFlight)
        {
            _closed = true;
            open = [.. _inFlight.Values];
            // Calls whose authorizer still decides: none will be listed now (TryAdd sees the close), so none waits on.
            starting = _starting is null ? [] : [.. _starting.Values];
            foreach (Starting s in starting) s.MarkCancelled();
            tied = _tiedJobs is null ? [] : [.. _tiedJobs];
            _tiedJobs = null;
            waiting = _waiting is null ? [] : [.. _waiting];
            _waiting = null;
            Volatile.Write(ref _waitingCount, 0);
            Interlocked.Exchange(ref _bytesWaiting, 0);
        }

        foreach (Starting s in starting) s.StopWaiting();

        foreach (Parked p in waiting)
        {
            p.Deadline?.Dispose();
            IpyRpcTelemetry.Waiting.Add(-1, p.MethodTag);
            p.Message.Pooled?.Release();
            await ReplyErrorAsync(p.Message.Id, p.Message.Serialization, new RemoteError { Code = ErrorCodes.Cancelled, Message = "The connection is closing; this call had not started." }).ConfigureAwait(false);
        }

        var cancelled = new List<Relay>();
        foreach (Relay relay in open)
        {
            if (await AbandonAsync(relay).ConfigureAwait(false)) cancelled.Add(relay);
        }

        foreach ((IJobQueue queue, string jobId) in tied)
        {
            await IgnoreFailures(new ValueTask(queue.CancelAsync(jobId).AsTask())).ConfigureAwait(false);
        }

        if (notifyPeer)
        {
            // The peer hears its cancelled calls end first ("cancelled"), then why the connection closes.
            long giveUp = Environment.TickCount64 + 1000;
            bool Waiting()
            {
                lock (_inFlight) return cancelled.Any(r => _inFlight.ContainsKey(r.RequestId));
            }

            while (cancelled.Count > 0 && Waiting() && Environment.TickCount64 < giveUp) await Task.Delay(5).ConfigureAwait(false);
            // With the mark of what was read: the peer's requests after it never ran, and it may make them again.
            IpyRpcMessage close = (info with { ReadUpTo = (ulong)Interlocked.Read(ref _readUpTo) }).ToMessage();
            await SendAsync(close).ConfigureAwait(false);
            Volatile.Write(ref _closeSent, close);
        }

        lock (_subscriptionGate)
        {
            _subscriptions = null;
            _outbox?.Close();
        }

        _server.Unsubscribed(this);
        _server.Closed(Connection, info, announced: Volatile.Read(ref _announced) == 1);
        _ended.TrySetResult(info);
    }
}
