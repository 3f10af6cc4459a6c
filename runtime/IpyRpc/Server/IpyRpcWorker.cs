using IpyRpc.Jobs;

namespace IpyRpc;

/// <summary>Options of an <see cref="IpyRpcWorker"/>.</summary>
public sealed record IpyRpcWorkerOptions
{
    /// <summary>How many jobs run at once.</summary>
    public int Concurrency { get; init; } = 16;

    /// <summary>
    /// How long a lease holds without renewal: a worker killed mid-job has its jobs delivered
    /// again after this long. Every worker of a queue should use the same value.
    /// </summary>
    public TimeSpan LeaseDuration { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>On stop, how long running jobs may go on before they are cancelled and handed back to the queue.</summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Whether console output of jobs is captured and recorded with them (so callers see it live).</summary>
    public bool CaptureOutput { get; init; } = true;

    /// <summary>Names the worker in job listings. Default: host, process id and a random suffix.</summary>
    public string? WorkerId { get; init; }

    /// <summary>
    /// Where the worker logs what goes wrong around jobs: a take that fails (a SQLite file another process holds
    /// locked), an outcome it could not record. A Redis queue's take waits out an outage instead; the queue itself says
    /// so through <c>RedisJobQueueOptions.Logger</c>.
    /// </summary>
    public Microsoft.Extensions.Logging.ILoggerFactory? LoggerFactory { get; init; }

    /// <summary>
    /// Where results its jobs return as pointers are kept. Unset: a store of the worker's own with
    /// the defaults of <see cref="DataStoreOptions"/>. Serve it with a transport on <see cref="IpyRpcWorker.DataServer"/>
    /// so callers fetch from the worker directly.
    /// </summary>
    public IpyRpcDataStore? DataStore { get; init; }

    /// <summary>
    /// Holders of other deployments this worker connects to when it resolves a pointer argument: globs over their
    /// addresses, as <see cref="IpyRpcServerOptions.TrustedHolders"/>. Pointers made beside its own queue (sealed under
    /// its <see cref="Jobs.IJobQueue.PointerKey"/>) need no entry here. Empty by default.
    /// </summary>
    public IReadOnlyList<string> TrustedHolders { get; init; } = [];
}

/// <summary>
/// Runs jobs from a durable queue (SQLite or Redis) in this process, with the functions registered
/// here: a worker in another process or on another machine than the server that took the calls.
/// Output is recorded through the queue, so the caller sees it live; a worker killed mid-job loses
/// nothing: its lease lapses and the job is delivered to another worker (at-least-once).
/// </summary>
/// <example>
/// <code>
/// await using var queue = await RedisJobQueue.ConnectAsync("127.0.0.1:6379");
/// await using var worker = new IpyRpcWorker(queue).Register(typeof(Compute));
/// await worker.RunAsync(stoppingToken);   // until Ctrl+C / SIGTERM, then drains
/// </code>
/// </example>
public sealed class IpyRpcWorker : IAsyncDisposable
{
    private readonly FunctionRegistry _registry;
    private readonly JobWorker _worker;
    private int _started;

    /// <summary>Creates a worker for <paramref name="queue"/>; register functions, then <see cref="Start"/> or <see cref="RunAsync"/>.</summary>
    public IpyRpcWorker(IJobQueue queue, IpyRpcWorkerOptions? options = null)
    {
        Options = options ?? new IpyRpcWorkerOptions();
        _registry = new FunctionRegistry(Options.CaptureOutput);
        Data = Options.DataStore ?? new IpyRpcDataStore();
        Data.SealWith(queue.PointerKey);
        _registry.Data = Data;
        _registry.HolderTrust = new HolderTrust(() => [queue.PointerKey], HolderTrust.Validate(Options.TrustedHolders, nameof(IpyRpcWorkerOptions.TrustedHolders)), Options.LoggerFactory?.CreateLogger("IpyRpc.Worker"));
        _dataServer = new Lazy<IpyRpcServer>(() => new IpyRpcServer(new IpyRpcServerOptions
        {
            DataStore = Data,
            Concurrency = 1,
            CaptureOutput = false,
            AllowUnauthenticatedRemote = true, // it runs nothing: it serves fetches and releases, each authorized by its pointer's key
            LoggerFactory = Options.LoggerFactory,
            Agent = "ipyrpc-dotnet-worker/" + Protocol.ProtocolVersion.Current,
        }));
        _worker = new JobWorker(queue, _registry, new JobWorkerOptions { Concurrency = Options.Concurrency, LeaseDuration = Options.LeaseDuration, WorkerId = Options.WorkerId, Logger = Options.LoggerFactory?.CreateLogger("IpyRpc.Worker") });
        if (Options.CaptureOutput)
        {
            OutputCapture.Install();
        }
    }

    /// <summary>The options.</summary>
    public IpyRpcWorkerOptions Options { get; }

    private readonly Lazy<IpyRpcServer> _dataServer;

    /// <summary>The values this worker's jobs returned as pointers.</summary>
    public IpyRpcDataStore Data { get; }

    /// <summary>
    /// A server with no functions that serves <see cref="Data"/>: start a transport on it
    /// (<c>IpyRpcZeroMqServer.Start(worker.DataServer, "tcp://0.0.0.0:5601")</c>) and the pointers this
    /// worker returns carry that address, so callers and other workers fetch from it directly.
    /// </summary>
    public IpyRpcServer DataServer => _dataServer.Value;

    /// <summary>The worker's id, as job listings show it.</summary>
    public string Id => _worker.Id;

    /// <summary>How many jobs it runs now.</summary>
    public int Running => _worker.Running;

    /// <summary>Every registered function's descriptor.</summary>
    public IReadOnlyList<FunctionDescriptor> Functions => _registry.Descriptors;

    /// <summary>Registers the exported functions of <paramref name="type"/> (see <see cref="IpyRpcServer.Register(Type)"/>).</summary>
    public IpyRpcWorker Register(Type type)
    {
        _registry.Register(type);
        return this;
    }

    /// <summary>Registers the exported functions of a service instance.</summary>
    public IpyRpcWorker Register<TService>(TService instance) where TService : class
    {
        _registry.Register(instance);
        return this;
    }

    /// <summary>Handles jobs for names under <paramref name="pattern"/> that no registered function has (as <see cref="IpyRpcServer.RegisterFallback"/>).</summary>
    public IpyRpcWorker RegisterFallback(string pattern, IpyRpcFallback handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        _registry.AddFallback(pattern, handler);
        return this;
    }

    /// <summary>Registers functions.</summary>
    public IpyRpcWorker Register(IEnumerable<IpyRpcFunction> functions)
    {
        _registry.Register(functions);
        return this;
    }

    /// <summary>Starts taking jobs.</summary>
    public IpyRpcWorker Start()
    {
        if (_registry.Count == 0)
        {
            throw new InvalidOperationException("The worker has no functions: register some before starting it.");
        }

        if (Interlocked.Exchange(ref _started, 1) == 0) _worker.Start();
        return this;
    }

    /// <summary>Runs until <paramref name="stoppingToken"/> fires, then stops gracefully (<see cref="StopAsync"/>).</summary>
    public async Task RunAsync(CancellationToken stoppingToken)
    {
        Start();
        try
        {
            await Task.Delay(Timeout.Infinite, stoppingToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        await StopAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// The runnable form: runs until the process is asked to stop (Ctrl+C, SIGINT or SIGTERM), then
    /// stops gracefully (<see cref="StopAsync"/>) and returns, so <c>Main</c> can end.
    /// </summary>
    public async Task RunUntilStoppedAsync(CancellationToken cancellationToken = default)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        void OnSignal(System.Runtime.InteropServices.PosixSignalContext context)
        {
            context.Cancel = true; // we end the process ourselves, after draining
            stop.Cancel();
        }

        using var interrupt = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGINT, OnSignal);
        using var terminate = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, OnSignal);
        await RunAsync(stop.Token).ConfigureAwait(false);
    }

    /// <summary>Stops taking jobs; running ones get <see cref="IpyRpcWorkerOptions.ShutdownTimeout"/>, then go back to the queue.</summary>
    public Task StopAsync() => _worker.StopAsync(Options.ShutdownTimeout);

    /// <summary>Stops at once: running jobs are cancelled and handed back to the queue; the values it held are dropped.</summary>
    public async ValueTask DisposeAsync()
    {
        await _worker.DisposeAsync().ConfigureAwait(false);
        await _registry.DisposeAsync().ConfigureAwait(false);
        if (_dataServer.IsValueCreated) await _dataServer.Value.DisposeAsync().ConfigureAwait(false);
        if (Options.DataStore is null) Data.Dispose();
    }
}
