using IpyRpc.Jobs;

namespace IpyRpc;

/// <summary>
/// An IpyRpc server: the registered functions, their glob config, and the job queues their calls
/// run on. Transports (in-process, HTTP, ZeroMQ) hand it messages through sessions; one server
/// can serve several transports at once.
/// </summary>
/// <example>
/// <code>
/// var server = new IpyRpcServer();
/// server.Config(new() { ["*_json"] = new() { InputSerialization = Serialization.Json } });
/// server.Register(typeof(Compute));
/// await using var client = await IpyRpcClient.ConnectInProcessAsync(server);
/// </code>
/// </example>
public sealed partial class IpyRpcServer : IAsyncDisposable
{
    private readonly Dictionary<string, IJobQueue> _queues = new(StringComparer.Ordinal);
    private readonly List<JobWorker> _workers = [];
    private readonly FunctionRegistry _registry;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, IpyRpcConnection> _connections = new(StringComparer.Ordinal);
    private volatile bool _disposed;

    /// <summary>
    /// Whether the server is stopping (its dispose has begun: running calls drain for up to
    /// <see cref="IpyRpcServerOptions.ShutdownTimeout"/>) or has stopped. It opens no new connection then, and runs no new
    /// call whose queue goes with it; a readiness check can report it.
    /// </summary>
    public bool IsStopping => _disposed;

    /// <summary>Creates a server. Its workers start at once.</summary>
    /// <exception cref="ArgumentException">Two queues share a name, or an in-memory queue would have no worker.</exception>
    public IpyRpcServer(IpyRpcServerOptions? options = null)
    {
        Options = options ?? new IpyRpcServerOptions();
        ArgumentOutOfRangeException.ThrowIfNegative(Options.Concurrency, nameof(options));
        ArgumentOutOfRangeException.ThrowIfNegative(Options.MaxCallsWaitingPerConnection, nameof(options));
        RetainEventsForSubscriptions();
        if (Options.AuthenticationTimeout <= TimeSpan.Zero && Options.AuthenticationTimeout != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(nameof(options), Options.AuthenticationTimeout, "AuthenticationTimeout must be positive, or Timeout.InfiniteTimeSpan for none.");
        }

        Log = (Options.LoggerFactory ?? Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance).CreateLogger("IpyRpc.Server");
        _registry = new FunctionRegistry(Options.CaptureOutput, Validate, id => _connections.GetValueOrDefault(id), id => Flows.GetValueOrDefault(id), Options.CallScopes);
        Data = Options.DataStore ?? new IpyRpcDataStore();
        _registry.Data = Data;
        _registry.HolderClientOptions = () => new IpyRpcClientOptions { SharedSecret = Options.SharedSecret, MaxMessageBytes = Options.MaxMessageBytes };
        _registry.HolderTrust = new HolderTrust(() => _queues.Values.Select(static q => q.PointerKey), HolderTrust.Validate(Options.TrustedHolders, nameof(IpyRpcServerOptions.TrustedHolders)), Log);
        SecretKey = Options.SharedSecret is { } secret ? SharedSecretProof.Key(secret) : null;
        RequiresAuthentication = Options.RequireAuthentication ?? SecretKey is not null;
        // Half the execution slots, so one client cannot take them all; a server that runs no jobs itself
        // only protects its queue from one client flooding it.
        MaxCallsInFlightPerConnection = Options.MaxCallsInFlightPerConnection ?? (Options.Concurrency > 0 ? Math.Max(8, Options.Concurrency / 2) : 256);
        if (Options.SharedSecret is { Length: < MinSecretLength } shortSecret)
        {
            Microsoft.Extensions.Logging.LoggerExtensions.LogWarning(Log, "The shared secret is {Length} characters long: anyone who can reach this server can test guesses of it offline (the server proves it knows the secret before the caller does), so use a random one of {Min} characters or more, such as `openssl rand -base64 32` makes.", shortSecret.Length, MinSecretLength);
        }

        if (Options.AllowUnauthenticatedRemote && !RequiresAuthentication)
        {
            Microsoft.Extensions.Logging.LoggerExtensions.LogWarning(Log, "AllowUnauthenticatedRemote is on: this server answers anyone who can reach it, from any machine, without authentication.");
        }
        Queue = Options.Queue ?? new InMemoryJobQueue();
        Data.SealWith(Queue.PointerKey);
        foreach (IJobQueue q in Options.AdditionalQueues.Prepend(Queue))
        {
            if (!_queues.TryAdd(q.Name, q))
            {
                throw new ArgumentException($"Two job queues are named \"{q.Name}\".", nameof(options));
            }

            if (Options.Concurrency == 0)
            {
                if (!q.IsDurable)
                {
                    throw new ArgumentException($"Concurrency is 0, so this server runs no jobs itself, but queue \"{q.Name}\" keeps its jobs in this process where no other worker can reach them. Use a durable queue (SQLite, Redis) with workers elsewhere, or a Concurrency above 0.", nameof(options));
                }

                continue;
            }

            var worker = new JobWorker(q, _registry, new JobWorkerOptions { Concurrency = Options.Concurrency, LeaseDuration = Options.LeaseDuration, WorkerId = Options.WorkerId, Logger = Log });
            worker.Start();
            _workers.Add(worker);
        }

        if (Options.CaptureOutput)
        {
            OutputCapture.Install();
        }
    }

    /// <summary>The options the server was created with.</summary>
    public IpyRpcServerOptions Options { get; }

    // Below this, a shared secret is warned about: 16 random base64 characters are 96 bits.
    private const int MinSecretLength = 16;

    /// <summary>The server's logger (from <see cref="IpyRpcServerOptions.LoggerFactory"/>); transports log through it too.</summary>
    public Microsoft.Extensions.Logging.ILogger Log { get; }

    /// <summary>The values this server holds for pointers: its transports serve them and advertise themselves here.</summary>
    public IpyRpcDataStore Data { get; }

    /// <summary>
    /// The value a pointer points to, or rows <c>[start, stop)</c> of it, encoded in <paramref name="serialization"/>:
    /// read from its store when it is held in this process, else fetched from its holder over the connections the server
    /// keeps for pointer arguments. For callers that reach the server but not the holder (JSON-RPC's <c>rpc.fetch</c>).
    /// </summary>
    /// <exception cref="IpyRpcPointerException">Gone (expired, released, evicted), a wrong key, no rows, or the holder could not be reached.</exception>
    public Task<ReadOnlyMemory<byte>> FetchPointerAsync(RemotePointer pointer, long? start, long? stop, Serialization serialization, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(pointer);
        return _registry.Holders.FetchAsync(pointer, start, stop, serialization == Serialization.Auto ? Serialization.MessagePack : serialization, cancellationToken);
    }

    /// <summary>Drops the value a pointer points to at its holder, as <see cref="FetchPointerAsync"/> reaches it. Releasing twice is not an error.</summary>
    /// <exception cref="IpyRpcPointerException">A wrong key, or the holder could not be reached.</exception>
    public Task ReleasePointerAsync(RemotePointer pointer, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(pointer);
        return _registry.Holders.ReleaseAsync(pointer, cancellationToken);
    }

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, UnavailableWarning> _unavailable = new(StringComparer.Ordinal);

    /// <summary>
    /// Says that a queue's store is out of reach: at most once every 10 s a queue, with how many requests failed for it
    /// since, so an outage under load is a few lines in the log rather than one a call.
    /// </summary>
    internal void WarnUnavailable(JobQueueUnavailableException e)
    {
        if (!_unavailable.GetOrAdd(e.Queue, _ => new UnavailableWarning()).Due(out long failed)) return;
        Microsoft.Extensions.Logging.LoggerExtensions.LogWarning(Log, e, "The job queue {Queue} is out of reach: {Failed} requests failed as unavailable since this was last said. The latest: {Message}", e.Queue, failed, e.Message);
    }

    private sealed class UnavailableWarning
    {
        private long _failed;
        private long _saidAt = long.MinValue; // Environment.TickCount64 of the last warning

        public bool Due(out long failed)
        {
            Interlocked.Increment(ref _failed);
            long now = Environment.TickCount64, last = Interlocked.Read(ref _saidAt);
            failed = 0;
            if ((last != long.MinValue && now - last < 10_000) || Interlocked.CompareExchange(ref _saidAt, now, last) != last) return false;
            failed = Interlocked.Exchange(ref _failed, 0);
            return true;
        }
    }

    /// <summary>The default job queue.</summary>
    public IJobQueue Queue { get; }

    /// <summary>Every queue, the default first.</summary>
    public IReadOnlyCollection<IJobQueue> Queues => _queues.Values;

    /// <summary>Every registered function's descriptor, sorted by name.</summary>
    public IReadOnlyList<FunctionDescriptor> Functions => _registry.Descriptors;

    /// <summary>The config as given so far.</summary>
    public GlobConfig Configuration => _registry.Configuration;

    /// <summary>Config patterns that match no registered function or event (usually a typo).</summary>
    public IReadOnlyList<string> UnmatchedPatterns => _registry.UnmatchedPatterns;

    internal FunctionRegistry Registry => _registry;

    /// <summary>Flow control of the streaming calls whose callers are connected here, by job id (their functions, run in this process, wait on it).</summary>
    internal System.Collections.Concurrent.ConcurrentDictionary<string, StreamFlow> Flows { get; } = new(StringComparer.Ordinal);

    /// <summary>The shared secret's key, when one is configured.</summary>
    internal byte[]? SecretKey { get; }

    /// <summary>Whether every caller must authenticate.</summary>
    public bool RequiresAuthentication { get; }

    /// <summary>How many calls one connection may have queued or running at once: <see cref="IpyRpcServerOptions.MaxCallsInFlightPerConnection"/>, or its default.</summary>
    public int MaxCallsInFlightPerConnection { get; }

    /// <summary>The connections open now, on every transport.</summary>
    public IReadOnlyCollection<IpyRpcConnection> Connections => (IReadOnlyCollection<IpyRpcConnection>)_connections.Values;

    /// <summary>
    /// Raised once per connection when a client is ready: it said hello and, where the server
    /// requires it, authenticated. The connection can call the client back (on transports that keep a
    /// connection open both ways: in-process, ZeroMQ, WebSockets). Handlers run off the transport's
    /// threads, one connection's events in order; an exception is logged.
    /// </summary>
    public event Action<IpyRpcConnection>? ClientConnected;

    /// <summary>
    /// Raised once per connection that was announced by <see cref="ClientConnected"/>, when it ends,
    /// with why: the client closed it, its process died or its network went (connection lost), it
    /// stopped answering heartbeats, the server closed it or is stopping.
    /// </summary>
    public event Action<IpyRpcConnection, DisconnectInfo>? ClientDisconnected;

    internal void Opened(IpyRpcConnection connection) => _connections[connection.Id] = connection;

    internal void Connected(IpyRpcConnection connection)
    {
        Microsoft.Extensions.Logging.LoggerExtensions.LogDebug(Log, "{Connection} connected", connection);
        connection.Announce(() => ClientConnected?.Invoke(connection), Log);
    }

    internal void Closed(IpyRpcConnection connection, DisconnectInfo info, bool announced)
    {
        _connections.TryRemove(connection.Id, out _);
        if (announced) Microsoft.Extensions.Logging.LoggerExtensions.LogDebug(Log, "{Connection} disconnected: {Reason} ({Message})", connection, info.Reason, info.Message);
        connection.Ended(info, announced, Log, announced ? ClientDisconnected : null);
    }

    /// <summary>
    /// Checks that a transport may listen on <paramref name="address"/>: a non-loopback address needs an
    /// authenticator (a shared secret, or the transport's own: HTTP authentication, ZeroMQ CURVE), or the
    /// explicit <see cref="IpyRpcServerOptions.AllowUnauthenticatedRemote"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException">It may not, with what to do about it.</exception>
    public void EnsureMayListen(string address, bool transportAuthenticates, string transportHint)
    {
        if (RequiresAuthentication || transportAuthenticates || Options.AllowUnauthenticatedRemote || IpyRpcConnection.IsLoopbackAddress(address) || IsLoopbackBind(address))
        {
            return;
        }

        throw new InvalidOperationException(
            $"Refusing to listen on {address}: it is reachable from other machines and nothing authenticates callers, so anyone who can reach it could run these functions. " +
            $"Set IpyRpcServerOptions.SharedSecret (clients set IpyRpcClientOptions.SharedSecret), {transportHint}, " +
            "or, if the network itself is trusted, set IpyRpcServerOptions.AllowUnauthenticatedRemote = true (logged at startup).");
    }

    private static bool IsLoopbackBind(string address)
    {
        // "http://localhost:5000", "tcp://127.0.0.1:*": the host part decides.
        if (!Uri.TryCreate(address.Replace("*", "0", StringComparison.Ordinal), UriKind.Absolute, out Uri? uri)) return false;
        return uri.IsLoopback;
    }

    /// <summary>
    /// Adds glob-pattern options (see <see cref="GlobConfig"/> for which pattern wins). May be
    /// called before or after functions are registered, and more than once.
    /// </summary>
    public IpyRpcServer Config(GlobConfig config)
    {
        _registry.Configure(config);
        return this;
    }

    /// <summary>
    /// Registers the exported functions of <paramref name="type"/>. A type with instance methods
    /// is created with its public parameterless constructor; otherwise pass an instance.
    /// </summary>
    /// <exception cref="ArgumentException">The type has no generated functions, or needs an instance.</exception>
    public IpyRpcServer Register(Type type)
    {
        _registry.Register(type);
        return this;
    }

    /// <summary>Registers the exported functions of a service instance (instance and static methods alike).</summary>
    public IpyRpcServer Register<TService>(TService instance) where TService : class
    {
        _registry.Register(instance);
        return this;
    }

    /// <summary>Registers one function under another name, as the seed's <c>server.register(name, fn)</c>.</summary>
    public IpyRpcServer Register(string name, IpyRpcFunction function) => Register([function.WithName(name)]);

    /// <summary>Registers functions.</summary>
    /// <exception cref="ArgumentException">A name is already registered.</exception>
    public IpyRpcServer Register(IEnumerable<IpyRpcFunction> functions)
    {
        _registry.Register(functions);
        return this;
    }

    /// <summary>The function named <paramref name="name"/>, if registered.</summary>
    public IpyRpcFunction? Find(string name) => _registry.Find(name);

    /// <summary>
    /// Registers the exported methods of <typeparamref name="TService"/> with instances resolved from
    /// each call's services (<see cref="IpyRpcServerOptions.CallScopes"/>): constructor injection, and
    /// a scope per call, so scoped dependencies live as long as the call.
    /// </summary>
    /// <exception cref="InvalidOperationException">The server has no <see cref="IpyRpcServerOptions.CallScopes"/>.</exception>
    public IpyRpcServer RegisterFromServices<TService>() where TService : class => RegisterFromServices(typeof(TService));

    /// <inheritdoc cref="RegisterFromServices{TService}"/>
    public IpyRpcServer RegisterFromServices(Type type)
    {
        _registry.RegisterFromServices(type);
        return this;
    }

    /// <summary>
    /// Handles calls to names under <paramref name="pattern"/> (a glob: <c>legacy.*</c>, <c>plugins.**</c>)
    /// that no registered function has. Registered functions always win; among fallbacks, the first
    /// registered that matches handles the name; a name nobody handles still fails with
    /// <c>unknown_function</c>. Fallbacks are not listed by describe (they have no signature to show)
    /// and run where they are registered: calls queued for workers in other processes need the
    /// fallback registered there too. Glob config (timeouts, auth, queues) applies to the names as to any function.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="pattern"/> is not a valid glob.</exception>
    public IpyRpcServer RegisterFallback(string pattern, IpyRpcFallback handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        _registry.AddFallback(pattern, handler);
        return this;
    }

    /// <summary>The options in force for <paramref name="name"/>.</summary>
    public FunctionOptions OptionsFor(string name) => _registry.OptionsFor(name);

    /// <summary>Checks a function's options as the config resolves them: its queue must exist; Inline that cannot apply is logged.</summary>
    private void Validate(IpyRpcFunction function, FunctionOptions options)
    {
        string name = function.Descriptor.Name;
        if (options.Queue is { } q && !_queues.ContainsKey(q))
        {
            throw new ArgumentException($"The config sends {name} to queue \"{q}\", but the server has no queue by that name (it has: {string.Join(", ", _queues.Keys)}).");
        }

        if (options.Inline == true && InlineRefusal(function, options) is { } why && _inlineWarned.TryAdd(name, 0))
        {
            Microsoft.Extensions.Logging.LoggerExtensions.LogWarning(Log, "{Function} is configured Inline, but {Reason}: its calls run on the queue's workers.", name, why);
        }
    }

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, byte> _inlineWarned = new(StringComparer.Ordinal);

    /// <summary>Why calls of <paramref name="function"/> cannot run on the receiving thread; <see langword="null"/> when they can.</summary>
    private string? InlineRefusal(IpyRpcFunction function, FunctionOptions options) =>
        !function.IsSynchronous ? "it is asynchronous (it returns a task or a stream)"
        : QueueFor(options) is not InMemoryJobQueue ? $"its queue \"{QueueFor(options).Name}\" is not an in-memory queue"
        : null;

    /// <summary>
    /// The in-memory queue a plain call without a deadline runs on, on the thread that received it
    /// (<see cref="FunctionOptions.Inline"/>); <see langword="null"/> when a worker runs it.
    /// </summary>
    internal InMemoryJobQueue? InlineQueue(IpyRpcFunction function, FunctionOptions options, JobRequest request) =>
        options.Inline == true && !request.Detached && request.Deadline is null && InlineRefusal(function, options) is null
            ? (InMemoryJobQueue)QueueFor(options)
            : null;

    /// <summary>Names the receiving threads as a worker in job listings (a server with an in-memory queue always has workers of its own).</summary>
    internal string InlineWorkerId => _inlineWorkerId ??= _workers[0].Id + ":inline";

    private string? _inlineWorkerId;

    internal IJobQueue QueueFor(FunctionOptions options) => options.Queue is { } name ? _queues[name] : Queue;

    /// <summary>The queue that knows job <paramref name="jobId"/>, with its current state.</summary>
    internal async ValueTask<(IJobQueue Queue, JobInfo Info)?> FindJobAsync(string jobId, bool withOutput, CancellationToken cancellationToken)
    {
        foreach (IJobQueue q in _queues.Values)
        {
            if (await q.GetAsync(jobId, withOutput, cancellationToken).ConfigureAwait(false) is { } info)
            {
                return (q, info);
            }
        }

        return null;
    }

    /// <summary>
    /// Stops the server's workers: running calls get <see cref="IpyRpcServerOptions.ShutdownTimeout"/>
    /// to finish, then are cancelled (on an in-memory queue their callers are told so; on a durable
    /// one the jobs go back to the queue for other workers).
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        _disposed = true;
        Task stopping = Task.WhenAll(_workers.Select(w => w.StopAsync(Options.ShutdownTimeout)));
        await Task.WhenAny(stopping, Task.Delay(Options.ShutdownTimeout)).ConfigureAwait(false);
        foreach (IJobQueue q in _queues.Values.Where(q => !q.IsDurable))
        {
            await q.DisposeAsync().ConfigureAwait(false); // cancels what still runs: nobody else could take it over
        }

        await stopping.ConfigureAwait(false); // workers of durable queues have handed their unfinished jobs back
        foreach (IJobQueue q in _queues.Values.Where(q => q.IsDurable))
        {
            await q.DisposeAsync().ConfigureAwait(false);
        }

        foreach (JobWorker w in _workers)
        {
            await w.DisposeAsync().ConfigureAwait(false);
        }

        // Connections no transport closed for us (in-process ones, those of a host still running) hear why they end.
        await Task.WhenAll(_connections.Values.Select(c => c.CloseAsync("The server stopped.", DisconnectReason.ServerStopping).AsTask())).ConfigureAwait(false);
        await _registry.DisposeAsync().ConfigureAwait(false);
        if (Options.DataStore is null) Data.Dispose();
    }
}
