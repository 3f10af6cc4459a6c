using IpyRpc.Jobs;
using IpyRpc.Protocol;

namespace IpyRpc;

/// <summary>
/// The functions a process can run, their glob config, and the executor that runs one as a job:
/// find the function, bind the arguments, capture the output, honour the deadline. Servers and
/// workers each hold one.
/// </summary>
internal sealed class FunctionRegistry(bool captureOutput, Action<IpyRpcFunction, FunctionOptions>? validate = null, Func<string, IpyRpcConnection?>? liveConnections = null, Func<string, StreamFlow?>? flows = null, Func<(IServiceProvider Services, IAsyncDisposable Scope)>? callScopes = null) : IJobExecutor, IAsyncDisposable
{
    private static readonly TimeSpan CancelGrace = TimeSpan.FromMilliseconds(200);
    private readonly object _gate = new();
    private GlobConfig _config = new();
    private Dictionary<string, IpyRpcFunction> _functions = new(StringComparer.Ordinal);
    private Dictionary<string, FunctionOptions> _options = new(StringComparer.Ordinal);
    private IReadOnlyList<FunctionDescriptor> _descriptors = [];
    private Dictionary<string, EventDescriptor> _events = new(StringComparer.Ordinal);
    private IReadOnlyList<EventDescriptor> _eventList = [];

    public IReadOnlyList<FunctionDescriptor> Descriptors => _descriptors;

    /// <summary>Where results returned as pointers are kept; <see langword="null"/>: this process keeps none (pointer results then fail clearly).</summary>
    public IpyRpcDataStore? Data { get; set; }

    /// <summary>The credentials for connecting to other holders, to fetch the values of pointer arguments they hold.</summary>
    public Func<IpyRpcClientOptions> HolderClientOptions { get; set; } = static () => new IpyRpcClientOptions();

    private HolderConnections? _holders;

    /// <summary>Which holders it connects to for its callers' pointers (a server's or worker's); <see langword="null"/>: any (a client's exports, whose caller is the server it chose).</summary>
    public HolderTrust? HolderTrust { get; set; }

    internal HolderConnections Holders => HolderConnections.Ensure(ref _holders, HolderClientOptions, HolderTrust);

    public ValueTask DisposeAsync() => _holders?.DisposeAsync() ?? default;

    /// <summary>The events registered (declared with <see cref="IpyRpcEventAttribute"/> on registered types), sorted by name.</summary>
    public IReadOnlyList<EventDescriptor> Events => _eventList;

    public EventDescriptor? FindEvent(string name) => _events.GetValueOrDefault(name);

    public GlobConfig Configuration => _config;

    public int Count => _functions.Count;

    public IReadOnlyList<string> UnmatchedPatterns
    {
        get
        {
            lock (_gate) return _config.Unmatched(_functions.Keys.Concat(_events.Keys)); // an event's pattern decides who may subscribe
        }
    }

    public void Configure(GlobConfig config)
    {
        lock (_gate)
        {
            // Validate the merged config against the functions before it takes effect.
            var merged = new GlobConfig();
            merged.Add(_config);
            merged.Add(config);
            Rebuild(_functions, merged);
            _config = merged;
        }
    }

    public void Register(Type type)
    {
        IReadOnlyList<GeneratedService> services = ServicesOf(type);
        object? instance = null;
        if (services.Any(s => s.HasInstanceMethods))
        {
            instance = services.FirstOrDefault(s => s.CreateInstance is not null)?.CreateInstance!.Invoke() ?? throw new ArgumentException(
                services.All(s => s.Type.IsInterface)
                    ? $"{type.Name} implements the contract {string.Join(", ", services.Select(s => s.Type.Name))}; register an instance: Register(new {type.Name}(...)), or resolve it from services: RegisterFromServices<{type.Name}>()."
                    : $"{type.Name} has exported instance methods but no public parameterless constructor; register an instance: Register(new {type.Name}(...)).",
                nameof(type));
        }

        RegisterAll(services, instance);
    }

    /// <summary>Registers a type whose instances come from each call's services (a scope per call).</summary>
    public void RegisterFromServices(Type type)
    {
        if (callScopes is null) throw new InvalidOperationException($"{type.Name} is to be resolved from services, but this server has none: set IpyRpcServerOptions.CallScopes (services.AddIpyRpc() does).");
        RegisterAll(ServicesOf(type), new ServicesTarget(type));
    }

    /// <summary>The target of instance methods whose instance each call resolves from its services, as <see cref="Type"/>.</summary>
    internal sealed record ServicesTarget(Type Type);

    public void Register(object instance)
    {
        ArgumentNullException.ThrowIfNull(instance);
        switch (instance)
        {
            case Type type:
                Register(type);
                break;
            case IpyRpcFunction function:
                Register([function]);
                break;
            case IEnumerable<IpyRpcFunction> functions:
                Register(functions);
                break;
            default:
                RegisterAll(ServicesOf(instance.GetType()), instance);
                break;
        }
    }

    // A type's own exported methods and those of the contracts it implements, registered together (all or none).
    private void RegisterAll(IReadOnlyList<GeneratedService> services, object? target)
        => Register(services.SelectMany(s => s.CreateFunctions(target)).ToList(), services.SelectMany(s => s.Events ?? []).ToList());

    public void Register(IEnumerable<IpyRpcFunction> functions, IReadOnlyList<EventDescriptor>? events = null)
    {
        lock (_gate)
        {
            Dictionary<string, EventDescriptor>? nextEvents = null;
            if (events is { Count: > 0 })
            {
                nextEvents = new Dictionary<string, EventDescriptor>(_events, StringComparer.Ordinal);
                foreach (EventDescriptor e in events)
                {
                    if (!nextEvents.TryAdd(e.Name, e))
                    {
                        throw new ArgumentException($"An event named \"{e.Name}\" is already registered.", nameof(events));
                    }
                }
            }

            var next = new Dictionary<string, IpyRpcFunction>(_functions, StringComparer.Ordinal);
            foreach (IpyRpcFunction f in functions)
            {
                if (string.IsNullOrWhiteSpace(f.Name))
                {
                    throw new ArgumentException("A function needs a name.", nameof(functions));
                }

                if (!next.TryAdd(f.Name, f))
                {
                    throw new ArgumentException($"A function named \"{f.Name}\" is already registered.", nameof(functions));
                }
            }

            Rebuild(next, _config);
            if (nextEvents is not null)
            {
                _eventList = [.. nextEvents.Values.OrderBy(e => e.Name, StringComparer.Ordinal)];
                _events = nextEvents;
            }
        }
    }

    private volatile (string Pattern, IpyRpcFallback Handler)[] _fallbacks = [];

    /// <summary>Adds a handler for names no function has that match <paramref name="pattern"/>; the first added that matches handles a name.</summary>
    public void AddFallback(string pattern, IpyRpcFallback handler)
    {
        Glob.Validate(pattern);
        lock (_gate) _fallbacks = [.. _fallbacks, (pattern, handler)];
    }

    /// <summary>The function of that name, or a fallback's stand-in for it; <see langword="null"/> when nobody handles it.</summary>
    public IpyRpcFunction? Find(string name)
    {
        if (_functions.TryGetValue(name, out IpyRpcFunction? f)) return f;
        foreach ((string pattern, IpyRpcFallback handler) in _fallbacks)
        {
            if (Glob.IsMatch(pattern, name)) return Fallback(name, pattern, handler);
        }

        return null;
    }

    private static IpyRpcFunction Fallback(string name, string pattern, IpyRpcFallback handler) => new(
        new FunctionDescriptor { Name = name, ReturnType = "object", Summary = $"Handled by the fallback for '{pattern}'.", TakesAnyArguments = true },
        async call =>
        {
            (IReadOnlyList<object?> positional, IReadOnlyDictionary<string, object?> named) = call.Arguments.PlainAll(name);
            object? result = await handler(new FallbackCall(name, positional, named, call.Connection), call.CancellationToken).ConfigureAwait(false);
            call.Return(result, Formatting.Formatters.Object);
        },
        isSynchronous: false);

    public FunctionOptions OptionsFor(string name) => _options.TryGetValue(name, out FunctionOptions? o) ? o : _config.Resolve(name);

    private static IReadOnlyList<GeneratedService> ServicesOf(Type type)
    {
        GeneratedService? own = GeneratedServices.Find(type);
        IReadOnlyList<GeneratedService> contracts = GeneratedServices.FindContracts(type);
        IReadOnlyList<GeneratedService> services = own is null ? contracts : [own, .. contracts];
        return services.Count > 0 ? services : throw new ArgumentException(
            $"{type.Name} has no generated IpyRpc functions or events. Mark its methods with [IpyRpcExport] (or its event fields with [IpyRpcEvent]), or implement an interface marked [IpyRpcContract], and make sure the IpyRpc source generator runs for the project that declares them.",
            nameof(type));
    }

    private void Rebuild(Dictionary<string, IpyRpcFunction> functions, GlobConfig config)
    {
        var options = new Dictionary<string, FunctionOptions>(StringComparer.Ordinal);
        foreach (string name in functions.Keys)
        {
            options[name] = config.Resolve(name);
            validate?.Invoke(functions[name], options[name]);
        }

        _options = options;
        // A config that restricts a function's input serialization is part of what callers are told of it.
        _descriptors = [.. functions.Select(f => options[f.Key].InputSerialization is { } only and not Serialization.Auto
                ? f.Value.Descriptor with { InputSerialization = only }
                : f.Value.Descriptor).OrderBy(d => d.Name, StringComparer.Ordinal)];
        _functions = functions; // published last: readers take the dictionaries without the lock
    }

    /// <summary>A name close to <paramref name="name"/>, for "did you mean" hints.</summary>
    public string? Suggest(string name)
    {
        string? best = null;
        int bestDistance = int.MaxValue;
        foreach (string candidate in _functions.Keys)
        {
            int d = Distance(name, candidate);
            if (d < bestDistance)
            {
                bestDistance = d;
                best = candidate;
            }
        }

        return bestDistance <= Math.Max(2, name.Length / 3) ? best : null;
    }

    private static int Distance(string a, string b)
    {
        var row = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++) row[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            int diagonal = row[0];
            row[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int above = row[j];
                row[j] = Math.Min(Math.Min(row[j] + 1, row[j - 1] + 1), diagonal + (char.ToLowerInvariant(a[i - 1]) == char.ToLowerInvariant(b[j - 1]) ? 0 : 1));
                diagonal = above;
            }
        }

        return row[b.Length];
    }

    public RemoteError UnknownFunction(string name)
    {
        string? hint = Suggest(name);
        return new RemoteError
        {
            Code = ErrorCodes.UnknownFunction,
            Message = hint is null
                ? $"No function is named '{name}'. The server has {_functions.Count} functions; describe lists them (client.Functions in .NET, client.functions in Python, rpc.discover over JSON-RPC, ipyrpc ls from a shell)."
                : $"No function is named '{name}'. Did you mean '{hint}'?",
        };
    }

    /// <summary>Runs one job: finds the function, binds its arguments, captures its output, enforces its deadline.</summary>
    public async ValueTask<JobOutcome> ExecuteAsync(JobRequest request, IJobOutput output, CancellationToken cancellationToken)
    {
        if (!IpyRpcTelemetry.Source.HasListeners()) return await ExecuteCoreAsync(request, output, cancellationToken).ConfigureAwait(false);

        // The job's span joins the trace of the call that queued it, in whichever process it runs; the function's own spans nest under it.
        System.Diagnostics.ActivityContext.TryParse(request.TraceParent, null, out System.Diagnostics.ActivityContext parent);
        using System.Diagnostics.Activity? span = request.TraceParent is null
            ? IpyRpcTelemetry.Source.StartActivity(request.Function, System.Diagnostics.ActivityKind.Internal)
            : IpyRpcTelemetry.Source.StartActivity(request.Function, System.Diagnostics.ActivityKind.Internal, parent);
        span?.SetTag("rpc.system", "ipyrpc");
        span?.SetTag("rpc.method", request.Function);
        span?.SetTag("ipyrpc.job", request.Id);
        JobOutcome outcome = await ExecuteCoreAsync(request, output, cancellationToken).ConfigureAwait(false);
        string result = IpyRpcTelemetry.Outcome(outcome.State);
        span?.SetTag("ipyrpc.outcome", result);
        if (result != "succeeded") span?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, outcome.Error?.Message ?? result);
        return outcome;
    }

    private async ValueTask<JobOutcome> ExecuteCoreAsync(JobRequest request, IJobOutput output, CancellationToken cancellationToken)
    {
        if (Find(request.Function) is not { } function)
        {
            return JobOutcome.Failure(JobState.Failed, UnknownFunction(request.Function));
        }

        TimeSpan? left = request.Deadline is { } d ? d - DateTimeOffset.UtcNow : null;
        if (left <= TimeSpan.Zero)
        {
            return JobOutcome.DeadlinePassed(request, whileQueued: true);
        }

        // Arguments in pooled arrays stay readable while the function runs, even past its job's end (a function left behind by its deadline).
        PooledParts? pool = request.ArgumentsPool;
        if (pool is not null && !pool.TryAcquire())
        {
            return JobOutcome.CancelledBy(request, whileQueued: true); // the job ended before it started: its arguments are gone, and so is anyone waiting
        }

        bool poolHandedOn = false;

        var host = new CallHost(output, cancellationToken, request.Caller, liveConnections);
        (IServiceProvider Services, IAsyncDisposable Scope)? scope = null;
        OutputCapture.Scope capture = captureOutput ? OutputCapture.Begin(host) : default;
        CancellationTokenSource? deadline = null;
        try
        {
            var arguments = CallArguments.Parse(request.Arguments, request.InputSerialization, function.Descriptor);
            if (callScopes is not null && function.Target is ServicesTarget)
            {
                scope = callScopes();
            }

            var invocation = new IpyRpcInvocation(function, arguments, request.OutputSerialization, cancellationToken)
            {
                Services = scope?.Services,
                Flow = flows?.Invoke(request.Id),
                Host = host,
                Registry = this,
                CallerTransport = request.Caller?.Transport,
            };
            if (request.ReturnPointer)
            {
                invocation.ReturnAsPointer = (Data ?? throw new PointerFault(new RemoteError { Code = ErrorCodes.Internal, Message = $"{function.Name} is to return a pointer, but this process keeps no data store." }),
                    request.PointerTimeToLive, ProtocolOf(request.Caller?.Transport));
            }

            CancellationToken token = cancellationToken;
            if (left is { } time)
            {
                deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                deadline.CancelAfter(time);
                token = deadline.Token;
                invocation.CancellationToken = token;
            }

            await invocation.FetchPointerArgumentsAsync(Holders, token).ConfigureAwait(false);

            // A synchronous method with a deadline runs on a worker of its own so the deadline can
            // answer the caller even if the method never looks at its token.
            ValueTask invoked = function.IsSynchronous && deadline is not null
                ? new ValueTask(RunOnWorker(function, invocation))
                : function.Invoker(invocation);

            if (invoked.IsCompleted)
            {
                invoked.GetAwaiter().GetResult(); // the common case: no Task, no await
            }
            else
            {
                Task run = invoked.AsTask();
                if (token.CanBeCanceled)
                {
                    try
                    {
                        await run.WaitAsync(token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (token.IsCancellationRequested && !run.IsCompleted)
                    {
                        // A cooperative function unwinds at once: a moment's grace keeps its last output and its own ending.
                        // One that ignores its token is left behind, so the caller hears of the cancel or timeout on time.
                        if (function.IsSynchronous || await Task.WhenAny(run, Task.Delay(CancelGrace, CancellationToken.None)).ConfigureAwait(false) != run)
                        {
                            // Observe a late failure; the arguments stay readable until the function is done with them.
                            _ = run.ContinueWith(static (t, p) => { _ = t.Exception; ((PooledParts?)p)?.Release(); }, pool, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
                            poolHandedOn = true;
                            return Stopped(request, deadline, cancellationToken);
                        }
                    }
                }

                await run.ConfigureAwait(false);
            }

            if (!invocation.HasResult)
            {
                return JobOutcome.Failure(JobState.Failed, new RemoteError { Code = ErrorCodes.Internal, Message = $"The invoker of {function.Name} returned without a result." });
            }

            return JobOutcome.Success(invocation.Result, request.OutputSerialization, invocation.ResultPool);
        }
        catch (ArgumentBindingException e)
        {
            return JobOutcome.Failure(JobState.Failed, e.Error);
        }
        catch (PointerFault e)
        {
            return JobOutcome.Failure(JobState.Failed, e.Error);
        }
        catch (ResultSerializationException e)
        {
            return JobOutcome.Failure(JobState.Failed, new RemoteError { Code = ErrorCodes.Internal, Message = e.Message });
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested || deadline?.IsCancellationRequested == true)
        {
            return Stopped(request, deadline, cancellationToken);
        }
        catch (Exception e)
        {
            return JobOutcome.Failure(JobState.Failed, RemoteError.FromException(e, ErrorCodes.RemoteException, OptionsFor(request.Function).ErrorDetail ?? ErrorDetail.StackWithoutPaths));
        }
        finally
        {
            if (!poolHandedOn) pool?.Release();
            host.Close();
            capture.Dispose();
            deadline?.Dispose();
            if (scope is { } s) await s.Scope.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>The pointer protocol of the transport a caller came in on: a pointer made for it has its main address there when the holder serves it.</summary>
    internal static string? ProtocolOf(string? transport) => transport switch
    {
        "zeromq" => "zmq",
        "websocket" or "http" => "http",
        "in-process" => PointerEndpoint.InProcess,
        _ => null,
    };

    // Stopped by its deadline (ours, or the queue's, which cancels the lease at the same moment) or by a cancel.
    // A method of its own: a lambda in ExecuteCoreAsync would capture its locals in a closure made on every call.
    private static Task RunOnWorker(IpyRpcFunction function, IpyRpcInvocation invocation) => Task.Run(() => function.Invoker(invocation).AsTask(), CancellationToken.None);

    private static JobOutcome Stopped(JobRequest request, CancellationTokenSource? deadline, CancellationToken cancelled)
    {
        bool late = request.Deadline is { } d && DateTimeOffset.UtcNow >= d - TimeSpan.FromMilliseconds(20);
        return late || (deadline?.IsCancellationRequested == true && !cancelled.IsCancellationRequested)
            ? JobOutcome.DeadlinePassed(request, whileQueued: false)
            : JobOutcome.CancelledBy(request, whileQueued: false);
    }
}
