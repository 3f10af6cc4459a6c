using IpyRpc.Http;
using IpyRpc.Protocol;

namespace IpyRpc.Http.Tests;

/// <summary>
/// A client's own WebSocket connection groups the messages that queue up behind a write (<see cref="WebSocketMessageChannel"/>),
/// against a real Kestrel server on loopback: packed into one WebSocket message under the packed subprotocol, or as
/// WebSocket messages gathered into one write under the plain one.
/// </summary>
public abstract class WebSocketGroupingTests : IAsyncLifetime
{
    private IpyRpcServer _server = null!;
    private IpyRpcHttpServer _host = null!;
    private WebSocketMessageChannel _channel = null!;
    private BatchingStream _stream = null!;
    private readonly TaskCompletionSource _held = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Whether the client offers the packed subprotocol (the server chooses it when offered).</summary>
    protected abstract bool OfferPacked { get; }

    public async Task InitializeAsync()
    {
        _server = new IpyRpcServer();
        _server.Register(typeof(HttpFunctions));
        _host = await IpyRpcHttpServer.StartAsync(_server);
        _channel = await WebSocketMessageChannel.ConnectAsync(IpyRpcHttpClient.WebSocketAddress(_host.Address), null, 4 << 20, OfferPacked, CancellationToken.None);
        _stream = Assert.IsType<BatchingStream>(_channel.Batching);
    }

    public async Task DisposeAsync()
    {
        _release.TrySetResult();
        await _channel.DisposeAsync();
        await _host.DisposeAsync();
        await _server.DisposeAsync();
    }

    private static IpyRpcMessage Ping(ulong id, int bytes = 0) => new() { Kind = MessageKind.Ping, Id = id, Parts = bytes > 0 ? [new byte[bytes]] : [] };

    /// <summary>Sends a ping whose write to the connection waits until <see cref="_release"/>; returns once it waits there.</summary>
    private async Task HoldAWriteAsync(ulong id)
    {
        _stream.BeforeInnerWrite = async () =>
        {
            _stream.BeforeInnerWrite = null; // this write only
            _held.TrySetResult();
            await _release.Task;
        };
        await _channel.SendAsync(Ping(id)); // queued: the write happens on the thread pool
        await _held.Task.WaitAsync(TimeSpan.FromSeconds(10));
    }

    private async Task<List<ulong>> PongsAsync(int count)
    {
        var ids = new List<ulong>();
        while (ids.Count < count)
        {
            IpyRpcMessage? message = await _channel.ReceiveAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            Assert.NotNull(message);
            if (message.Kind == MessageKind.Pong) ids.Add(message.Id);
        }

        return ids;
    }

    [Fact]
    public void TheServerChoosesThePackedSubprotocolWhenOffered() => Assert.Equal(OfferPacked, _channel.Packed);

    [Fact]
    public async Task MessagesQueuedBehindAWriteLeaveInOneWriteAndAllArriveInOrder()
    {
        long before = _stream.InnerWrites;
        await HoldAWriteAsync(100);
        Task[] queued = [.. Enumerable.Range(101, 20).Select(i => _channel.SendAsync(Ping((ulong)i)).AsTask())];
        Assert.All(queued, t => Assert.True(t.IsCompletedSuccessfully)); // queued within the budget: as good as written

        _release.SetResult();
        Assert.Equal(Enumerable.Range(100, 21).Select(i => (ulong)i), await PongsAsync(21));
        Assert.Equal(before + 2, _stream.InnerWrites); // the first ping's write, then the twenty together
    }

    [Fact]
    public async Task ALargeMessageQueuedAmongSmallOnesGoesOnItsOwnNotCopiedIntoTheGroup()
    {
        long before = _stream.InnerWrites;
        await HoldAWriteAsync(400);
        await _channel.SendAsync(Ping(401));
        await _channel.SendAsync(Ping(402, BatchingStream.MaxGathered * 3));
        await _channel.SendAsync(Ping(403));

        _release.SetResult();
        Assert.Equal([400UL, 401UL, 402UL, 403UL], await PongsAsync(4));
        Assert.Equal(before + 4, _stream.InnerWrites); // the held ping; 401; 402 straight through; 403 after it
    }

    [Fact]
    public async Task PastTheQueuesBudgetACallerWaitsForItsWriteAndOneCancelledWhileWaitingIsNotSent()
    {
        await HoldAWriteAsync(500);
        int third = WebSocketMessageChannel.QueueBudget / 3;
        await _channel.SendAsync(Ping(501, third));
        await _channel.SendAsync(Ping(502, third));
        using var cancel = new CancellationTokenSource();
        Task dropped = _channel.SendAsync(Ping(503, third + 1024), cancel.Token).AsTask();
        Task waiting = _channel.SendAsync(Ping(504)).AsTask();
        Assert.False(dropped.IsCompleted); // past the budget: each waits until its message is written
        Assert.False(waiting.IsCompleted);
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => dropped);

        _release.SetResult();
        await waiting.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal([500UL, 501UL, 502UL, 504UL], await PongsAsync(4)); // 503's pong would have come before 504's
    }

    [Fact]
    public async Task ALoneSendGoesInAWriteOfItsOwn()
    {
        long before = _stream.InnerWrites;
        for (ulong id = 300; id < 305; id++)
        {
            await _channel.SendAsync(Ping(id));
            Assert.Equal([id], await PongsAsync(1));
        }

        Assert.Equal(before + 5, _stream.InnerWrites);
    }

    [Fact]
    public async Task ManyCallersOnManyThreadsEachGetTheirOwnReplies()
    {
        // Real calls through a client, some cancelled while they wait, from sixteen threads at once: every call that
        // was not cancelled gets its own answer, and the connection serves on.
        await using IpyRpcClient client = await IpyRpcHttpClient.ConnectAsync(_host.Address);
        int[] wrong = new int[1];
        await Task.WhenAll(Enumerable.Range(0, 16).Select(t => Task.Run(async () =>
        {
            for (int i = 0; i < 150; i++)
            {
                if (i % 10 == 9)
                {
                    using var cancel = new CancellationTokenSource();
                    Task<int> call = client.CallAsync<int>("add", [t, i], null, cancel.Token);
                    cancel.Cancel();
                    try
                    {
                        if (await call != t + i) Interlocked.Increment(ref wrong[0]);
                    }
                    catch (OperationCanceledException)
                    {
                    }

                    continue;
                }

                if (await client.CallAsync<int>("add", t, i) != t + i) Interlocked.Increment(ref wrong[0]);
            }
        }))).WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(0, wrong[0]);
        Assert.Equal(7, await client.CallAsync<int>("add", 3, 4));
    }
}

/// <summary>Grouping under the packed subprotocol: several IpyRpc messages in one WebSocket message.</summary>
public sealed class WebSocketPackedGroupingTests : WebSocketGroupingTests
{
    protected override bool OfferPacked => true;
}

/// <summary>Grouping under the plain subprotocol (a server that does not know the packed one): WebSocket messages gathered into one write.</summary>
public sealed class WebSocketGatheredGroupingTests : WebSocketGroupingTests
{
    protected override bool OfferPacked => false;
}
