using System.Net;
using System.Net.Sockets;
using System.Text;

namespace IpyRpc.Http.Tests;

/// <summary>
/// A TCP relay on loopback in front of a server, whose connections the test can drop (each closed in order, after
/// what was relayed: a client reads all it was sent, then the end) and which can refuse connections for a while, as a
/// network that fails does. It remembers the text it relayed to clients.
/// </summary>
internal sealed class DroppingProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly Uri _target;
    private readonly List<(TcpClient Client, TcpClient Upstream, CancellationTokenSource Stop, Task Relaying)> _open = [];
    private readonly StringBuilder _relayed = new();
    private readonly CancellationTokenSource _disposed = new();
    private readonly Task _accepting;
    private volatile bool _down;

    public DroppingProxy(Uri target)
    {
        _target = target;
        _listener.Start();
        _accepting = AcceptAsync();
    }

    /// <summary>The proxy's address, the target's path kept.</summary>
    public Uri Address => new UriBuilder(_target) { Port = ((IPEndPoint)_listener.LocalEndpoint).Port }.Uri;

    /// <summary>How many connections it has taken (refused ones not counted).</summary>
    public int Accepted { get; private set; }

    /// <summary>Whether the text relayed to clients so far contains <paramref name="text"/>.</summary>
    public bool Relayed(string text)
    {
        lock (_relayed) return _relayed.ToString().Contains(text, StringComparison.Ordinal);
    }

    /// <summary>Ends every open connection (the client gets what was relayed, then the end) and, while <paramref name="down"/>, closes new ones at once.</summary>
    public async Task DropAsync(bool down)
    {
        _down = down;
        (TcpClient Client, TcpClient Upstream, CancellationTokenSource Stop, Task Relaying)[] open;
        lock (_open)
        {
            open = [.. _open];
            _open.Clear();
        }

        foreach ((TcpClient client, TcpClient upstream, CancellationTokenSource stop, Task relaying) in open)
        {
            stop.Cancel();
            await relaying;
            client.Client.Shutdown(SocketShutdown.Both);
            client.Dispose();
            upstream.Dispose();
        }
    }

    /// <summary>Takes connections again.</summary>
    public void Up() => _down = false;

    private async Task AcceptAsync()
    {
        while (!_disposed.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_disposed.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            if (_down)
            {
                client.Dispose();
                continue;
            }

            Accepted++;
            var upstream = new TcpClient();
            await upstream.ConnectAsync(_target.Host, _target.Port);
            var stop = CancellationTokenSource.CreateLinkedTokenSource(_disposed.Token);
            Task relaying = Task.WhenAll(RelayAsync(client.GetStream(), upstream.GetStream(), null, stop.Token), RelayAsync(upstream.GetStream(), client.GetStream(), _relayed, stop.Token));
            lock (_open) _open.Add((client, upstream, stop, relaying));
        }
    }

    private static async Task RelayAsync(NetworkStream from, NetworkStream to, StringBuilder? record, CancellationToken stop)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            int read;
            while ((read = await from.ReadAsync(buffer, stop)) > 0)
            {
                await to.WriteAsync(buffer.AsMemory(0, read), CancellationToken.None); // never cut in the middle
                if (record is not null)
                {
                    lock (record) record.Append(Encoding.UTF8.GetString(buffer, 0, read));
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException)
        {
            // dropped, or the other side went
        }
    }

    public async ValueTask DisposeAsync()
    {
        await DropAsync(down: true);
        _disposed.Cancel();
        _listener.Stop();
        await _accepting;
    }
}
