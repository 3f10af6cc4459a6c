using System.Net;
using System.Net.Sockets;
using System.Text;

namespace IpyRpc.Tests;

/// <summary>
/// A TCP proxy on loopback in front of a real server, to break connections the way a network does. It can cut the
/// connection that carries a given request right after the server got it, so that the request runs and its answer is
/// lost; and it can turn new connections away for a while, as a host that is down.
/// </summary>
public sealed class TcpProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly int _target;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Link> _links = [];
    private readonly Task _accepting;
    private Cut? _armed;

    private TcpProxy(int target)
    {
        _target = target;
        _listener.Start();
        _accepting = AcceptAsync();
    }

    /// <summary>Starts a proxy to <c>127.0.0.1:<paramref name="target"/></c>.</summary>
    public static TcpProxy Start(int target, bool recording = false) => new(target) { Recording = recording };

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>While true, a new connection is closed as soon as it is accepted, and nothing reaches the server.</summary>
    public volatile bool Refusing;

    private readonly StringBuilder _passed = new();

    /// <summary>Whether it keeps the text it passes to clients, for <see cref="PassedToClients"/> (off: tests move megabytes through it).</summary>
    public bool Recording { get; init; }

    /// <summary>Whether the text passed to clients so far (with <see cref="Recording"/>) holds <paramref name="text"/>.</summary>
    public bool PassedToClients(string text)
    {
        lock (_passed) return _passed.ToString().Contains(text, StringComparison.Ordinal);
    }

    /// <summary>
    /// Arms a cut: the next bytes a client sends that contain <paramref name="marker"/> are passed to the server; then,
    /// once <paramref name="landed"/> says the server acted on them, both sides of that connection are closed, and
    /// nothing the server said after them reaches the client. The task completes when the cut is made.
    /// </summary>
    public Task CutAfterAsync(string marker, Func<Task> landed)
    {
        var cut = new Cut(Encoding.ASCII.GetBytes(marker), landed);
        Volatile.Write(ref _armed, cut);
        return cut.Done.Task;
    }

    /// <summary>Closes every connection it carries now, as a network that breaks.</summary>
    public void CloseAll()
    {
        lock (_links)
        {
            foreach (Link link in _links) link.Close();
        }
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            if (Refusing)
            {
                client.Dispose();
                continue;
            }

            _ = ServeAsync(client);
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        var server = new TcpClient();
        var link = new Link(client, server);
        try
        {
            await server.ConnectAsync(IPAddress.Loopback, _target, _stop.Token);
            lock (_links) _links.Add(link);
            await Task.WhenAny(PumpAsync(link, client.GetStream(), server.GetStream(), up: true), PumpAsync(link, server.GetStream(), client.GetStream(), up: false));
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or IOException or ObjectDisposedException)
        {
        }
        finally
        {
            lock (_links) _links.Remove(link);
            link.Close();
        }
    }

    private async Task PumpAsync(Link link, NetworkStream from, NetworkStream to, bool up)
    {
        byte[] buffer = new byte[64 * 1024];
        while (true)
        {
            int n = await from.ReadAsync(buffer, _stop.Token);
            if (n == 0) return;
            if (!up)
            {
                if (link.Doomed) continue; // the answers to what comes before the cut are lost with it
                await to.WriteAsync(buffer.AsMemory(0, n), _stop.Token);
                if (Recording)
                {
                    lock (_passed) _passed.Append(Encoding.UTF8.GetString(buffer, 0, n));
                }

                continue;
            }

            Cut? cut = Volatile.Read(ref _armed);
            if (cut is not null && buffer.AsSpan(0, n).IndexOf(cut.Marker) >= 0 && Interlocked.CompareExchange(ref _armed, null, cut) == cut)
            {
                link.Doomed = true;
                await to.WriteAsync(buffer.AsMemory(0, n), _stop.Token);
                try
                {
                    await cut.Landed();
                    link.Close();
                    cut.Done.TrySetResult();
                }
                catch (Exception e)
                {
                    link.Close();
                    cut.Done.TrySetException(e);
                }

                return;
            }

            await to.WriteAsync(buffer.AsMemory(0, n), _stop.Token);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        CloseAll();
        await _accepting;
    }

    private sealed record Cut(byte[] Marker, Func<Task> Landed)
    {
        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private sealed class Link(TcpClient client, TcpClient server)
    {
        public volatile bool Doomed;

        public void Close()
        {
            client.Dispose();
            server.Dispose();
        }
    }
}
