namespace IpyRpc.TestWorker;

/// <summary>A singleton dependency: numbers the scopes.</summary>
public sealed class ScopeCounter
{
    private int _next;

    public int Next() => Interlocked.Increment(ref _next);
}

/// <summary>A scoped dependency: one per call.</summary>
public sealed class PerCall(ScopeCounter counter)
{
    public int Id { get; } = counter.Next();
}

/// <summary>Exported functions whose instance comes from dependency injection, a scope per call.</summary>
public sealed class DiFunctions(PerCall first, PerCall second)
{
    /// <summary>This call's scope number, and whether both injected PerCall are the same (one scope).</summary>
    [IpyRpcExport("di.scope")]
    public string Scope() => $"scope {first.Id}, shared {ReferenceEquals(first, second)}";
}

/// <summary>A dependency no test app registers.</summary>
public sealed class Unregistered
{
}

/// <summary>An exported service whose constructor needs what the app's services do not have.</summary>
public sealed class NeedsUnregistered(Unregistered dependency)
{
    /// <summary>Says that it was created.</summary>
    [IpyRpcExport("di.needs_unregistered")]
    public string Made() => dependency is null ? "made without it" : "made with it";
}
