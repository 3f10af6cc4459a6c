namespace IpyRpc;

/// <summary>
/// Handles calls to names no registered function has, under a namespace pattern
/// (<see cref="IpyRpcServer.RegisterFallback"/>): the seeds' "generic handler for unhandled api methods".
/// </summary>
/// <param name="call">The name called and its arguments as plain data.</param>
/// <param name="cancellationToken">Cancelled when the caller cancels, the call times out, or the server stops.</param>
/// <returns>The result, as plain data (numbers, strings, booleans, lists, string-keyed dictionaries, byte arrays, or null).</returns>
public delegate ValueTask<object?> IpyRpcFallback(FallbackCall call, CancellationToken cancellationToken);

/// <summary>A call a fallback handles.</summary>
/// <param name="Name">The name the caller called (<c>legacy.orders.list</c>).</param>
/// <param name="Positional">The positional arguments, decoded as plain data.</param>
/// <param name="Named">The named arguments, decoded as plain data.</param>
/// <param name="Connection">The caller's connection.</param>
public sealed record FallbackCall(string Name, IReadOnlyList<object?> Positional, IReadOnlyDictionary<string, object?> Named, IpyRpcConnection Connection);
