namespace IpyRpc.Http;

/// <summary>How a client's messages travel over HTTP (docs/PROTOCOL.md, "HTTP").</summary>
public enum HttpCarrier
{
    /// <summary>
    /// One WebSocket on the binary endpoint, kept open both ways: the server can call the client's
    /// exports and push events, and a lost connection is noticed and redialled. The default.
    /// </summary>
    WebSocket,

    /// <summary>
    /// One POST per message, its response streaming that call's replies. Works through any proxy
    /// that passes plain requests, but the server cannot call back or push events.
    /// </summary>
    Requests,
}

/// <summary>Connects IpyRpc clients over HTTP.</summary>
public static class IpyRpcHttpClient
{
    /// <summary>
    /// Lets this process fetch pointers from holders that serve over HTTP (<c>http</c>, <c>https</c>).
    /// It runs by itself when this assembly loads; call it when a process uses IpyRpc.Http for nothing else.
    /// </summary>
    public static void RegisterPointerConnector()
    {
        foreach (string scheme in (string[])["http", "https"])
        {
            PointerConnectors.Register(scheme, (endpoint, options, cancellationToken) => ConnectWebSocketAsync(
                new Uri($"{scheme}://{endpoint.Host}:{endpoint.Port}/"), endpoint.BasePath.TrimStart('/') is { Length: > 0 } path ? path : "ipyrpc", options, null, cancellationToken));
        }
    }

#pragma warning disable CA2255 // registering the transport with the core when the assembly loads is the point
    [System.Runtime.CompilerServices.ModuleInitializer]
    internal static void OnLoad() => RegisterPointerConnector();
#pragma warning restore CA2255

    /// <summary>
    /// Connects to the server at <paramref name="address"/> (for example <c>http://127.0.0.1:7777/</c>)
    /// over a WebSocket (<see cref="HttpCarrier.WebSocket"/>). Headers of <paramref name="http"/>, such as
    /// <c>Authorization</c>, go with the upgrade request; without one the client uses its own.
    /// </summary>
    public static Task<IpyRpcClient> ConnectAsync(Uri address, IpyRpcClientOptions? options = null, HttpClient? http = null, CancellationToken cancellationToken = default)
        => ConnectAsync(address, HttpCarrier.WebSocket, options, http, cancellationToken);

    /// <summary>Connects to the server at <paramref name="address"/> over the given <paramref name="carrier"/>.</summary>
    public static Task<IpyRpcClient> ConnectAsync(Uri address, HttpCarrier carrier, IpyRpcClientOptions? options = null, HttpClient? http = null, CancellationToken cancellationToken = default)
    {
        options ??= new IpyRpcClientOptions();
        if (carrier == HttpCarrier.Requests)
        {
            // Dialled again (hello, authentication, the function list) when the server says it no longer holds the connection.
            long maxBytes = options.MaxMessageBytes;
            return IpyRpcClient.ConnectAsync(_ => new ValueTask<IpyRpc.Transports.IMessageChannel>(new HttpMessageChannel(address, http, maxBytes)), options, onDispose: null, cancellationToken);
        }

        return ConnectWebSocketAsync(address, "ipyrpc", options, http, cancellationToken);
    }

    private static Task<IpyRpcClient> ConnectWebSocketAsync(Uri address, string binaryPath, IpyRpcClientOptions options, HttpClient? http, CancellationToken cancellationToken)
    {
        Uri endpoint = WebSocketAddress(address, binaryPath);
        long max = options.MaxMessageBytes;
        return IpyRpcClient.ConnectAsync(
            async ct => await WebSocketMessageChannel.ConnectAsync(endpoint, http, max, ct).ConfigureAwait(false),
            options,
            onDispose: null,
            cancellationToken);
    }

    /// <summary>Connects to the server at <paramref name="address"/>.</summary>
    public static Task<IpyRpcClient> ConnectAsync(string address, IpyRpcClientOptions? options = null, CancellationToken cancellationToken = default)
        => ConnectAsync(new Uri(address.EndsWith('/') ? address : address + "/"), options, null, cancellationToken);

    /// <summary>The WebSocket address of the binary endpoint under a server's base address: <c>http://h:p/</c> → <c>ws://h:p/ipyrpc</c>.</summary>
    public static Uri WebSocketAddress(Uri address, string binaryPath = "ipyrpc")
    {
        var builder = new UriBuilder(new Uri(address.AbsoluteUri.EndsWith('/') ? address : new Uri(address.AbsoluteUri + "/"), binaryPath.TrimStart('/')));
        builder.Scheme = address.Scheme switch
        {
            "https" or "wss" => "wss",
            _ => "ws",
        };
        return builder.Uri;
    }
}
