using IpyRpc.ZeroMq;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace IpyRpc.Hosting;

/// <summary>Options of a hosted IpyRpc server, bound from the <c>IpyRpc</c> configuration section.</summary>
public sealed class IpyRpcHostingOptions
{
    /// <summary>The configuration section these options come from.</summary>
    public const string Section = "IpyRpc";

    /// <summary>ZeroMQ endpoints to serve (<c>tcp://127.0.0.1:5555</c>).</summary>
    public List<string> ZeroMq { get; set; } = [];

    /// <summary>How many calls run at once (<see cref="IpyRpcServerOptions.Concurrency"/>).</summary>
    public int? Concurrency { get; set; }

    /// <summary>The largest message accepted (<see cref="IpyRpcServerOptions.MaxMessageBytes"/>).</summary>
    public long? MaxMessageBytes { get; set; }

    /// <summary>A shared secret callers must prove (<see cref="IpyRpcServerOptions.SharedSecret"/>).</summary>
    public string? SharedSecret { get; set; }

    /// <summary>Holders of other deployments the server resolves pointers from (<see cref="IpyRpcServerOptions.TrustedHolders"/>): globs over their addresses.</summary>
    public List<string> TrustedHolders { get; set; } = [];

    /// <summary>On shutdown, how long running calls may finish before they are cancelled. Default 10 s (keep it under the host's own shutdown timeout).</summary>
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Glob config: options by function-name pattern, as <see cref="GlobConfig"/> takes them.</summary>
    public Dictionary<string, FunctionConfig> Functions { get; set; } = [];
}

/// <summary>The configurable part of <see cref="FunctionOptions"/>, as plain settings.</summary>
public sealed class FunctionConfig
{
    /// <summary>
    /// <see cref="FunctionOptions.Timeout"/>: a duration as .NET writes one (<c>"00:05:00"</c>, <c>"1.00:00:00"</c>), or
    /// <c>"infinite"</c> for no limit (which lifts a wider pattern's).
    /// </summary>
    public string? Timeout { get; set; }

    /// <summary><see cref="FunctionOptions.CancelOnDisconnect"/>.</summary>
    public bool? CancelOnDisconnect { get; set; }

    /// <summary><see cref="FunctionOptions.Queue"/>.</summary>
    public string? Queue { get; set; }

    /// <summary><see cref="FunctionOptions.InputSerialization"/>.</summary>
    public Serialization? InputSerialization { get; set; }

    /// <summary><see cref="FunctionOptions.OutputSerialization"/>.</summary>
    public Serialization? OutputSerialization { get; set; }

    /// <summary><see cref="FunctionOptions.ReturnPointer"/>.</summary>
    public bool? ReturnPointer { get; set; }

    /// <summary><see cref="FunctionOptions.PointerTimeToLive"/>: a duration, or <c>"infinite"</c> for until released or evicted.</summary>
    public string? PointerTimeToLive { get; set; }

    /// <summary><see cref="FunctionOptions.Inline"/>.</summary>
    public bool? Inline { get; set; }

    internal FunctionOptions ToOptions() => new()
    {
        Timeout = Duration(Timeout, nameof(Timeout)),
        ReturnPointer = ReturnPointer,
        PointerTimeToLive = Duration(PointerTimeToLive, nameof(PointerTimeToLive)),
        CancelOnDisconnect = CancelOnDisconnect,
        Queue = Queue,
        InputSerialization = InputSerialization,
        OutputSerialization = OutputSerialization,
        Inline = Inline,
    };

    // A duration as TimeSpan reads one, or "infinite" (Timeout.InfiniteTimeSpan, whose own text is "-00:00:00.001").
    private static TimeSpan? Duration(string? text, string name)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        if (text.Trim().Equals("infinite", StringComparison.OrdinalIgnoreCase)) return System.Threading.Timeout.InfiniteTimeSpan;
        if (!TimeSpan.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, out TimeSpan value))
        {
            throw new ArgumentException($"{name} is a duration such as \"00:05:00\" (hh:mm:ss) or \"1.00:00:00\" (a day), or \"infinite\"; not \"{text}\".", name);
        }

        return value > TimeSpan.Zero ? value : throw new ArgumentException($"{name} must be positive, or \"infinite\" for none; not \"{text}\".", name);
    }
}

/// <summary>Says what the hosted server exports.</summary>
public sealed class IpyRpcHostBuilder
{
    private readonly List<Action<IpyRpcServer, IServiceProvider>> _registrations = [];
    private readonly List<Func<IpyRpcServerOptions, IServiceProvider, IpyRpcServerOptions>> _serverOptions = [];

    internal IpyRpcHostBuilder(IServiceCollection services) => Services = services;

    /// <summary>The app's services.</summary>
    public IServiceCollection Services { get; }

    /// <summary>Exports the <c>[IpyRpcExport]</c> methods of <typeparamref name="TService"/>, resolved per call from a scope of its own (registered as scoped unless it is registered already).</summary>
    /// <exception cref="InvalidOperationException">On the server's creation (the host's start): the container would create <typeparamref name="TService"/> itself, and none of its public constructors has services for all its parameters.</exception>
    public IpyRpcHostBuilder Export<[System.Diagnostics.CodeAnalysis.DynamicallyAccessedMembers(System.Diagnostics.CodeAnalysis.DynamicallyAccessedMemberTypes.PublicConstructors)] TService>() where TService : class
    {
        Services.TryAddScoped<TService>();
        bool madeByTheContainer = Services.LastOrDefault(d => d.ServiceType == typeof(TService)) is { ImplementationType: { } made } && made == typeof(TService);
        _registrations.Add((server, services) =>
        {
            // Found now, at the start, rather than by every call failing with the container's complaint.
            if (madeByTheContainer && services.GetService<IServiceProviderIsService>() is { } known) EnsureCreatable(typeof(TService), known);
            server.RegisterFromServices<TService>();
        });
        return this;
    }

    private static void EnsureCreatable([System.Diagnostics.CodeAnalysis.DynamicallyAccessedMembers(System.Diagnostics.CodeAnalysis.DynamicallyAccessedMemberTypes.PublicConstructors)] Type type, IServiceProviderIsService known)
    {
        System.Reflection.ConstructorInfo[] constructors = type.GetConstructors();
        if (constructors.Length == 0) return; // the container says why
        var missing = new List<string>();
        foreach (System.Reflection.ConstructorInfo constructor in constructors)
        {
            string[] lacking = [.. constructor.GetParameters().Where(p => !p.HasDefaultValue && !known.IsService(p.ParameterType)).Select(p => $"{p.ParameterType.Name} (parameter '{p.Name}')")];
            if (lacking.Length == 0) return;
            missing.Add(lacking.Length == 1 ? lacking[0] : string.Join(", ", lacking[..^1]) + " and " + lacking[^1]);
        }

        throw new InvalidOperationException(
            $"{type.Name} is exported with Export<{type.Name}>(), but no call could create it: its constructor needs {string.Join("; or another needs ", missing)}, "
            + "which the app's services do not have. Register them (builder.Services.AddSingleton<...>() or the like), or register "
            + $"{type.Name} with a factory of your own before Export<{type.Name}>().");
    }

    /// <summary>Exports a type's static methods, or a given instance, as <see cref="IpyRpcServer.Register(Type)"/> would.</summary>
    public IpyRpcHostBuilder Export(object typeOrInstance)
    {
        _registrations.Add((server, _) =>
        {
            if (typeOrInstance is Type type) server.Register(type);
            else server.Register(typeOrInstance);
        });
        return this;
    }

    /// <summary>
    /// Sets server options that configuration cannot carry (queues, authorizers, ...): return the
    /// options changed, <c>(options, services) =&gt; options with { Queue = services.GetRequiredService&lt;IJobQueue&gt;() }</c>.
    /// </summary>
    public IpyRpcHostBuilder ConfigureServer(Func<IpyRpcServerOptions, IServiceProvider, IpyRpcServerOptions> configure)
    {
        _serverOptions.Add(configure);
        return this;
    }

    internal IpyRpcServer CreateServer(IServiceProvider services)
    {
        IpyRpcHostingOptions o = services.GetRequiredService<Microsoft.Extensions.Options.IOptions<IpyRpcHostingOptions>>().Value;
        var defaults = new IpyRpcServerOptions();
        var options = new IpyRpcServerOptions
        {
            Concurrency = o.Concurrency ?? defaults.Concurrency,
            MaxMessageBytes = o.MaxMessageBytes ?? defaults.MaxMessageBytes,
            SharedSecret = o.SharedSecret,
            TrustedHolders = o.TrustedHolders,
            ShutdownTimeout = o.ShutdownTimeout,
            LoggerFactory = services.GetService<ILoggerFactory>(),
            CallScopes = () =>
            {
                AsyncServiceScope scope = services.CreateAsyncScope();
                return (scope.ServiceProvider, scope);
            },
        };
        foreach (Func<IpyRpcServerOptions, IServiceProvider, IpyRpcServerOptions> configure in _serverOptions) options = configure(options, services);
        var server = new IpyRpcServer(options);
        foreach (Action<IpyRpcServer, IServiceProvider> register in _registrations) register(server, services);
        if (o.Functions.Count > 0)
        {
            var config = new GlobConfig();
            foreach ((string pattern, FunctionConfig f) in o.Functions)
            {
                try
                {
                    config[pattern] = f.ToOptions();
                }
                catch (ArgumentException e)
                {
                    // A value that could never work (a zero timeout, a bad glob): named by its place in the configuration.
                    throw new InvalidOperationException($"{IpyRpcHostingOptions.Section}:Functions:{pattern}: {e.Message}", e);
                }
            }

            server.Config(config);
            // A pattern from configuration is not seen by the generator's check (IPYRPC0008): most likely a typo.
            foreach (string unmatched in server.UnmatchedPatterns.Where(o.Functions.ContainsKey))
            {
                server.Log.LogWarning("The configuration's {Section}:Functions pattern '{Pattern}' matches none of the exported functions or events ({Functions})",
                    IpyRpcHostingOptions.Section, unmatched, string.Join(", ", server.Functions.Select(f => f.Name).Concat(server.Events.Select(e => e.Name))));
            }
        }

        return server;
    }
}

/// <summary>Starts the ZeroMQ endpoints with the host; on shutdown lets running calls finish, then closes them.</summary>
internal sealed class IpyRpcHostedService(IpyRpcServer server, IpyRpcHostingOptions options) : IHostedService
{
    private readonly List<IpyRpcZeroMqServer> _zeroMq = [];

    public Task StartAsync(CancellationToken cancellationToken)
    {
        foreach (string endpoint in options.ZeroMq)
        {
            IpyRpcZeroMqServer host = IpyRpcZeroMqServer.Start(server, endpoint);
            _zeroMq.Add(host);
            server.Log.LogInformation("IpyRpc serving ZeroMQ at {Endpoint}", host.Endpoint);
        }

        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        // Running calls finish (within the shutdown timeout) while their callers are still connected to hear the results.
        await server.DisposeAsync().ConfigureAwait(false);
        foreach (IpyRpcZeroMqServer z in _zeroMq) await z.DisposeAsync().ConfigureAwait(false);
    }
}
