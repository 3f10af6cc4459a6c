namespace IpyRpc.Http;

/// <summary>Options of the HTTP endpoints.</summary>
public sealed record IpyRpcHttpOptions
{
    /// <summary>The path of the JSON-RPC 2.0 endpoint.</summary>
    public string JsonRpcPath { get; init; } = "/rpc";

    /// <summary>The path of the binary protocol endpoint (one framed message in, framed messages streamed out).</summary>
    public string BinaryPath { get; init; } = "/ipyrpc";

    /// <summary>The largest JSON-RPC request body, in bytes.</summary>
    public long MaxJsonRequestBytes { get; init; } = 16 * 1024 * 1024;

    /// <summary>The deepest JSON nesting accepted in a JSON-RPC request.</summary>
    public int MaxJsonDepth { get; init; } = 64;

    /// <summary>The title of the OpenRPC document <c>rpc.discover</c> returns.</summary>
    public string Title { get; init; } = "IpyRpc server";

    /// <summary>The version in the OpenRPC document.</summary>
    public string Version { get; init; } = "1.0.0";

    /// <summary>
    /// How long a binary-protocol connection (the requests of one client, tied by the
    /// <c>IpyRpc-Connection</c> header) lives without any request in flight. After it the connection
    /// ends as a disconnect would, and the client's next request opens a new one.
    /// </summary>
    public TimeSpan ConnectionIdleTimeout { get; init; } = TimeSpan.FromMinutes(5);
}
