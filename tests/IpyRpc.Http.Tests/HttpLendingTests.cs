using System.Text;
using System.Text.Json;
using IpyRpc.Http;
using IpyRpc.Jobs;
using Microsoft.AspNetCore.Builder;

namespace IpyRpc.Http.Tests;

/// <summary>
/// A request's thread runs the job of the call it carries, as the waiting worker's job, and writes its reply: no
/// thread is woken for it. The job stays the worker's, and the thread runs no other request's job.
/// </summary>
public sealed class HttpLendingTests : IAsyncLifetime
{
    private IpyRpcServer _server = null!;
    private WebApplication _app = null!;
    private Uri _address = null!;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(60) };

    public async Task InitializeAsync()
    {
        _server = new IpyRpcServer(new IpyRpcServerOptions { Concurrency = 1 });
        _server.Register(typeof(HttpFunctions));
        WebApplicationBuilder builder = LoopbackKestrel.CreateBuilder();
        _app = builder.Build();
        _app.Use(RequestThread.Marked);
        _app.MapIpyRpc(_server);
        await _app.StartAsync();
        _address = LoopbackKestrel.AddressOf(_app);
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        await _server.DisposeAsync();
    }

    private async Task<string> PostAsync(string json, CancellationToken cancellationToken = default)
    {
        using var content = new StringContent(json, Encoding.UTF8, "application/json");
        using HttpResponseMessage response = await _http.PostAsync(new Uri(_address, "rpc"), content, cancellationToken);
        return await response.Content.ReadAsStringAsync(cancellationToken);
    }

    private async Task<JsonElement> CallAsync(string method, string parameters, CancellationToken cancellationToken = default)
    {
        using JsonDocument reply = JsonDocument.Parse(await PostAsync($$"""{"jsonrpc":"2.0","method":"{{method}}","params":{{parameters}},"id":1}""", cancellationToken));
        return reply.RootElement.TryGetProperty("result", out JsonElement result) ? result.Clone() : throw new InvalidOperationException(reply.RootElement.GetRawText());
    }

    [Fact]
    public async Task ACallsJobRunsOnItsRequestsThreadAsTheWorkersJob()
    {
        // JSON-RPC: the function sees the mark its own request's thread was given.
        Assert.NotEqual("", (await CallAsync("request_mark", "[]")).GetString());
        JobInfo job = Assert.Single(await _server.Queue.ListAsync(new JobQuery { Function = "request_mark" }));
        Assert.Equal(JobState.Succeeded, job.State);
        Assert.NotNull(job.Worker);
        Assert.DoesNotContain(":inline", job.Worker, StringComparison.Ordinal); // the queue's worker ran it, not the inline path

        // The binary protocol over HTTP requests, through the client.
        await using (IpyRpcClient client = await IpyRpcHttpClient.ConnectAsync(_address, HttpCarrier.Requests))
        {
            for (int i = 0; i < 3; i++) Assert.NotEqual("", await client.CallAsync<string>("request_mark"));
        }

        // A batch's calls are not lent a thread: they run side by side on the queue's workers.
        using JsonDocument batch = JsonDocument.Parse(await PostAsync("""[{"jsonrpc":"2.0","method":"request_mark","id":1},{"jsonrpc":"2.0","method":"request_mark","id":2}]"""));
        Assert.All(batch.RootElement.EnumerateArray(), r => Assert.Equal("", r.GetProperty("result").GetString()));
    }

    [Fact]
    public async Task ALentThreadAnswersItsOwnRequestAndLeavesTheNextJobToThePool()
    {
        // One worker. The first call's job holds its request's thread; the second call queues behind it. When the
        // first ends, the worker's next job must not run on the first request's thread, or that request would stay
        // unanswered until the second call ends.
        string first = Gates.NewName("lend-first"), second = Gates.NewName("lend-second");
        try
        {
            Task<JsonElement> one = CallAsync("hold", $"[\"{first}\"]");
            await Gates.WaitAsync(first + ".started");
            JobInfo running = Assert.Single(await _server.Queue.ListAsync(new JobQuery { Function = "hold" }));
            Assert.Equal(JobState.Running, running.State);

            Task<JsonElement> two = CallAsync("hold", $"[\"{second}\"]");
            await EventuallyQueuedAsync();
            Gates.Open(first);
            Assert.Equal(first, (await one.WaitAsync(TimeSpan.FromSeconds(20))).GetString());
            Assert.False(two.IsCompleted);

            await Gates.WaitAsync(second + ".started"); // the worker took it, from the pool
            Gates.Open(second);
            Assert.Equal(second, (await two.WaitAsync(TimeSpan.FromSeconds(20))).GetString());
        }
        finally
        {
            Gates.Open(first);
            Gates.Open(second);
        }
    }

    private async Task EventuallyQueuedAsync()
    {
        DateTime giveUp = DateTime.UtcNow.AddSeconds(20);
        while (!(await _server.Queue.ListAsync(new JobQuery { Function = "hold", State = JobState.Queued })).Any())
        {
            Assert.True(DateTime.UtcNow < giveUp, "the second call was never queued");
            await Task.Delay(10);
        }
    }
}
