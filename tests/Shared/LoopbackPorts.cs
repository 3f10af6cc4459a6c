using System.Net;
using System.Net.Sockets;

namespace IpyRpc.Tests;

/// <summary>Free ports on loopback, for servers a test starts at an address of its own (or again at the same one).</summary>
public static class LoopbackPorts
{
    public static int Free()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
