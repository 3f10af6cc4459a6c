using IpyRpc.Http;
using IpyRpc.Protocol;

namespace IpyRpc.Http.Tests;

/// <summary>
/// A client's own WebSocket connection sends the messages that queue up behind a send in one write of its connection
/// (the group sending of <see cref="WebSocketMessageChannel"/>), against a real Kestrel server on loopback.
/// </summary>
public sealed class WebSocketBatchingTests : IAsyncLifetime
{
    private IpyRpcServer _server = null!;
    private IpyRpcHttpServer _host = null!;
    private WebSocketMessageChannel _channel = null!;
    private BatchingStream _stream = null!;
    private readonly TaskCompletionSource _held = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public async Task InitializeAsync()
    {
        _server = new IpyRpcServer();
        _server.Register(typeof(HttpFunctions));
        _host = await IpyRpcHttpServer.StartAsync(_server);
        _channel = await WebSocketMessageChannel.ConnectAsync(IpyRpcHttpClient.WebSocketAddress(_host.Address), null, 1 << 20);
        _stream = Assert.IsType<BatchingStream>(_channel.Batching);
    }

    public async Task DisposeAsync()
    {
        _release.TrySetResult();
        await _channel.DisposeAsync();
        await _host.DisposeAsync();
        await _server.DisposeAsync();
    }

    private static IpyRpcMessage Ping(ulong id) => new() { Kind = MessageKind.Ping, Id = id };

    /// <summary>Sends a ping whose write to the connection waits until <see cref="_release"/>, and returns once it waits there.</summary>
    private async Task<Task> SendHeldPingAsync(ulong id)
    {
        _stream.BeforeInnerWrite = async () =>
        {
            _stream.BeforeInnerWrite = null; // this write only
            _held.TrySetResult();
            await _release.Task;
        };
        Task first = _channel.SendAsync(Ping(id)).AsTask();
        await _held.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.False(first.IsCompleted);
        return first;
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
    public async Task MessagesQueuedBehindASendLeaveInOneWriteAndAllArriveInOrder()
    {
        long before = _stream.InnerWrites;
        Task first = await SendHeldPingAsync(100);
        Task[] queued = [.. Enumerable.Range(101, 20).Select(i => _channel.SendAsync(Ping((ulong)i)).AsTask())];
        Assert.DoesNotContain(queued, t => t.IsCompleted); // each waits until its message is on its way

        _release.SetResult();
        await first.WaitAsync(TimeSpan.FromSeconds(10));
        await Task.WhenAll(queued).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(before + 2, _stream.InnerWrites); // the first ping's write, then the twenty together
        Assert.Equal(Enumerable.Range(100, 21).Select(i => (ulong)i), await PongsAsync(21));
    }

    [Fact]
    public async Task AQueuedMessageWhoseSendIsCancelledIsNotSent()
    {
        Task first = await SendHeldPingAsync(200);
        using var cancel = new CancellationTokenSource();
        Task dropped = _channel.SendAsync(Ping(201), cancel.Token).AsTask();
        Task kept = _channel.SendAsync(Ping(202)).AsTask();
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => dropped);

        _release.SetResult();
        await Task.WhenAll(first, kept).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal([200UL, 202UL], await PongsAsync(2)); // 201's pong would have come between them
    }

    [Fact]
    public async Task ALargeMessageQueuedAmongSmallOnesGoesOnItsOwnNotCopiedIntoTheBatch()
    {
        long before = _stream.InnerWrites;
        Task first = await SendHeldPingAsync(400);
        Task[] queued =
        [
            _channel.SendAsync(Ping(401)).AsTask(),
            _channel.SendAsync(new IpyRpcMessage { Kind = MessageKind.Ping, Id = 402, Parts = [new byte[BatchingStream.MaxGathered * 3]] }).AsTask(),
            _channel.SendAsync(Ping(403)).AsTask(),
        ];

        _release.SetResult();
        await Task.WhenAll([first, .. queued]).WaitAsync(TimeSpan.FromSeconds(10));
        // The held ping; 401 gathered; 402 straight through; 403 gathered after it.
        Assert.Equal(before + 4, _stream.InnerWrites);
        Assert.Equal([400UL, 401UL, 402UL, 403UL], await PongsAsync(4));
    }

    [Fact]
    public async Task ManyCallersOnManyThreadsOverTheClientsOwnWebSocketEachGetTheirOwnReplies()
    {
        // Real calls through the client, some cancelled while they wait, from sixteen threads at once: every call that
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
        })));

        Assert.Equal(0, wrong[0]);
        Assert.Equal(7, await client.CallAsync<int>("add", 3, 4));
    }

    [Fact]
    public async Task ALoneSendGoesAtOnceInAWriteOfItsOwn()
    {
        long before = _stream.InnerWrites;
        for (ulong id = 300; id < 305; id++)
        {
            await _channel.SendAsync(Ping(id));
            Assert.Equal([id], await PongsAsync(1));
        }

        Assert.Equal(before + 5, _stream.InnerWrites);
    }
}
