namespace IpyRpc.Http;

/// <summary>Connects IpyRpc clients over HTTP.</summary>
public static class IpyRpcHttpClient
{
    /// <summary>
    /// Connects to the server at <paramref name="address"/> (for example <c>http://127.0.0.1:7777/</c>).
    /// Pass an <see cref="HttpClient"/> to share its connection pool; otherwise the client owns one.
    /// </summary>
    public static Task<IpyRpcClient> ConnectAsync(Uri address, IpyRpcClientOptions? options = null, HttpClient? http = null, CancellationToken cancellationToken = default)
    {
        options ??= new IpyRpcClientOptions();
        var channel = new HttpMessageChannel(address, http, options.MaxMessageBytes);
        return IpyRpcClient.ConnectAsync(channel, options, cancellationToken);
    }

    /// <summary>Connects to the server at <paramref name="address"/>.</summary>
    public static Task<IpyRpcClient> ConnectAsync(string address, IpyRpcClientOptions? options = null, CancellationToken cancellationToken = default)
        => ConnectAsync(new Uri(address.EndsWith('/') ? address : address + "/"), options, null, cancellationToken);
}
