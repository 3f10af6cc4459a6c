using System.Net;
using System.Net.Sockets;

namespace IpyRpc.Tests;

/// <summary>Free ports on loopback, for servers a test starts at an address of its own (or again at the same one).</summary>
public static class LoopbackPorts
{
    // Below Linux's ephemeral range (32768 and up by default), from which every bind to port 0 (Kestrel's, ZeroMQ's
    // "tcp://127.0.0.1:*", a client's own end) is given a port: a server a test stops and starts again at the same
    // port (Redis killed and restarted, a server restarted) cannot find it taken by one of those meanwhile.
    private const int First = 20000, Last = 32000;

    /// <summary>A port nothing listens on now, outside the range the system hands out for binds to port 0.</summary>
    public static int Free()
    {
        for (int attempt = 0; attempt < 200; attempt++)
        {
            int port = Random.Shared.Next(First, Last);
            try
            {
                using var listener = new TcpListener(IPAddress.Loopback, port);
                listener.Start();
                return port;
            }
            catch (SocketException)
            {
                // Taken: another.
            }
        }

        throw new InvalidOperationException($"No free loopback port between {First} and {Last}.");
    }
}
