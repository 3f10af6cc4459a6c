using System.Net;
using System.Net.Sockets;

namespace IpyRpc.Http.Tests;

/// <summary>A TCP connection over loopback, both of its ends, for channels tested without a web server.</summary>
internal static class LoopbackTcp
{
    /// <summary>Connects: <c>Near</c> is the accepted end, <c>Far</c> the connecting one.</summary>
    public static async Task<(TcpClient Near, TcpClient Far)> ConnectAsync()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var far = new TcpClient();
        await far.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        TcpClient near = await listener.AcceptTcpClientAsync();
        listener.Stop();
        return (near, far);
    }
}
