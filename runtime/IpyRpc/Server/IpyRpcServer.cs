using IpyRpc.Jobs;
using IpyRpc.Protocol;

namespace IpyRpc;

/// <summary>
/// An IpyRpc server: the registered functions, their glob config, and the job queue their calls
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
public sealed partial class IpyRpcServer : IAsyncDisposable, IJobExecutor
{
    private readonly object _gate = new();
    private GlobConfig _config = new();
    private readonly Dictionary<string, IJobQueue> _queues = new(StringComparer.Ordinal);
    private Dictionary<string, IpyRpcFunction> _functions = new(StringComparer.Ordinal);
    private Dictionary<string, FunctionOptions> _options = new(StringComparer.Ordinal);
    private IReadOnlyList<FunctionDescriptor> _descriptors = [];
    private bool _disposed;

    /// <summary>Creates a server. Its queue's workers start at once.</summary>
    public IpyRpcServer(IpyRpcServerOptions? options = null)
    {
        Options = options ?? new IpyRpcServerOptions();
        Queue = Options.Queue ?? new InMemoryJobQueue(new InMemoryJobQueueOptions { Concurrency = Options.Concurrency });
        foreach (IJobQueue q in Options.AdditionalQueues.Prepend(Queue))
        {
            if (!_queues.TryAdd(q.Name, q))
            {
                throw new ArgumentException($"Two job queues are named \"{q.Name}\".", nameof(options));
            }

            q.Start(this);
        }

        if (Options.CaptureOutput)
        {
            OutputCapture.Install();
        }
    }

    /// <summary>The options the server was created with.</summary>
    public IpyRpcServerOptions Options { get; }

    /// <summary>The default job queue.</summary>
    public IJobQueue Queue { get; }

    /// <summary>Every registered function's descriptor, sorted by name.</summary>
    public IReadOnlyList<FunctionDescriptor> Functions => _descriptors;

    /// <summary>The config as given so far.</summary>
    public GlobConfig Configuration => _config;

    /// <summary>Config patterns that match no registered function (usually a typo).</summary>
    public IReadOnlyList<string> UnmatchedPatterns
    {
        get
        {
            lock (_gate) return _config.Unmatched(_functions.Keys);
        }
    }

    /// <summary>
    /// Adds glob-pattern options (see <see cref="GlobConfig"/> for which pattern wins). May be
    /// called before or after functions are registered, and more than once.
    /// </summary>
    public IpyRpcServer Config(GlobConfig config)
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

        return this;
    }

    /// <summary>
    /// Registers the exported functions of <paramref name="type"/>. A type with instance methods
    /// is created with its public parameterless constructor; otherwise pass an instance.
    /// </summary>
    /// <exception cref="ArgumentException">The type has no generated functions, or needs an instance.</exception>
    public IpyRpcServer Register(Type type)
    {
        GeneratedService service = FindService(type);
        object? instance = null;
        if (service.HasInstanceMethods)
        {
            instance = service.CreateInstance?.Invoke() ?? throw new ArgumentException(
                $"{type.Name} has exported instance methods but no public parameterless constructor; register an instance: server.Register(new {type.Name}(...)).", nameof(type));
        }

        return RegisterFunctions(service.CreateFunctions(instance));
    }

    /// <summary>Registers the exported functions of a service instance (instance and static methods alike).</summary>
    public IpyRpcServer Register<TService>(TService instance) where TService : class
    {
        ArgumentNullException.ThrowIfNull(instance);
        return instance switch
        {
            Type type => Register(type),
            IpyRpcFunction function => RegisterFunctions([function]),
            IEnumerable<IpyRpcFunction> functions => RegisterFunctions(functions),
            _ => RegisterFunctions(FindService(instance.GetType()).CreateFunctions(instance)),
        };
    }

    /// <summary>Registers one function under another name, as the seed's <c>server.register(name, fn)</c>.</summary>
    public IpyRpcServer Register(string name, IpyRpcFunction function) => RegisterFunctions([function.WithName(name)]);

    /// <summary>Registers functions.</summary>
    /// <exception cref="ArgumentException">A name is already registered.</exception>
    public IpyRpcServer Register(IEnumerable<IpyRpcFunction> functions) => RegisterFunctions(functions);

    private IpyRpcServer RegisterFunctions(IEnumerable<IpyRpcFunction> functions)
    {
        lock (_gate)
        {
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
        }

        return this;
    }

    /// <summary>The function named <paramref name="name"/>, if registered.</summary>
    public IpyRpcFunction? Find(string name) => _functions.TryGetValue(name, out IpyRpcFunction? f) ? f : null;

    /// <summary>The options in force for <paramref name="name"/>.</summary>
    public FunctionOptions OptionsFor(string name) => _options.TryGetValue(name, out FunctionOptions? o) ? o : _config.Resolve(name);

    private static GeneratedService FindService(Type type) => GeneratedServices.Find(type) ?? throw new ArgumentException(
        $"{type.Name} has no generated IpyRpc functions. Mark its methods with [IpyRpcExport] and make sure the IpyRpc source generator runs for its project.",
        nameof(type));

    private void Rebuild(Dictionary<string, IpyRpcFunction> functions, GlobConfig config)
    {
        var options = new Dictionary<string, FunctionOptions>(StringComparer.Ordinal);
        foreach (string name in functions.Keys)
        {
            options[name] = config.Resolve(name);
            if (options[name].Queue is { } q && !_queues.ContainsKey(q))
            {
                throw new ArgumentException($"The config sends {name} to queue \"{q}\", but the server has no queue by that name (it has: {string.Join(", ", _queues.Keys)}).");
            }
        }

        _options = options;
        _descriptors = [.. functions.Values.Select(f => f.Descriptor).OrderBy(d => d.Name, StringComparer.Ordinal)];
        _functions = functions; // published last: readers take the dictionaries without the lock
    }

    internal IJobQueue QueueFor(FunctionOptions options) => options.Queue is { } name ? _queues[name] : Queue;

    /// <summary>A name close to <paramref name="name"/>, for "did you mean" hints.</summary>
    internal string? Suggest(string name)
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

    /// <summary>Stops the queues: running calls are cancelled and their callers told so.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (IJobQueue q in _queues.Values)
        {
            await q.DisposeAsync().ConfigureAwait(false);
        }
    }
}
