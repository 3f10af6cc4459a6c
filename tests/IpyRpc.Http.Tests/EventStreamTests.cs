using System.Net;
using System.Text;
using System.Text.Json;
using IpyRpc.Tests.BothWays;

namespace IpyRpc.Http.Tests;

/// <summary>
/// The event stream (GET /events, Server-Sent Events) against a real Kestrel: what a browser's EventSource or
/// curl -N reads, for clients without a connection both ways.
/// </summary>
public sealed class EventStreamTests
{
    /// <summary>One item of a stream: an event with its data, or a comment (a keep-alive).</summary>
    private sealed record Item(string? Event, string? Data, string? Comment);

    /// <summary>Reads a text/event-stream response item by item, as an EventSource parses it.</summary>
    private sealed class SseReader(Stream body) : IDisposable
    {
        private readonly StreamReader _reader = new(body, Encoding.UTF8);

        public async Task<Item?> NextAsync(TimeSpan within)
        {
            using var timeout = new CancellationTokenSource(within);
            string? name = null, comment = null;
            var data = new List<string>();
            while (true)
            {
                string? line = await _reader.ReadLineAsync(timeout.Token);
                if (line is null) return null;
                if (line.Length == 0)
                {
                    if (name is null && data.Count == 0 && comment is null) continue;
                    return new Item(name, data.Count > 0 ? string.Join("\n", data) : null, comment);
                }

                if (line.StartsWith(':')) comment = line[1..].Trim();
                else if (line.StartsWith("event: ", StringComparison.Ordinal)) name = line["event: ".Length..];
                else if (line.StartsWith("data: ", StringComparison.Ordinal)) data.Add(line["data: ".Length..]);
                else throw new InvalidDataException("Not a line of an event stream: " + line);
            }
        }

        public async Task<Item> EventAsync(TimeSpan? within = null)
        {
            while (true)
            {
                Item item = await NextAsync(within ?? TimeSpan.FromSeconds(20)) ?? throw new EndOfStreamException("The stream ended.");
                if (item.Event is not null) return item;
            }
        }

        public void Dispose() => _reader.Dispose();
    }

    private static async Task<(HttpResponseMessage Response, SseReader Reader)> OpenAsync(HttpClient http, string query)
    {
        HttpResponseMessage response = await http.GetAsync("events" + query, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        return (response, new SseReader(await response.Content.ReadAsStreamAsync()));
    }

    private static IpyRpcServer EventServer(IpyRpcServerOptions? options = null)
    {
        var server = new IpyRpcServer(options);
        server.Register(typeof(BothWaysEvents));
        return server;
    }

    [Fact]
    public async Task EachEventComesOnceAsItsNameAndItsJsonPayloadInTheOrderPublished()
    {
        await using IpyRpcServer server = EventServer();
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server);
        using var http = new HttpClient { BaseAddress = host.Address };
        // Two patterns that both match bw.ticked.
        (HttpResponseMessage response, SseReader sse) = await OpenAsync(http, "?pattern=bw.ticked&pattern=bw.*");
        using HttpResponseMessage _ = response;
        using SseReader __ = sse;
        Assert.Equal("no-cache", response.Headers.CacheControl?.ToString());
        Item subscribed = await sse.EventAsync();
        Assert.Equal("ipyrpc.subscribed", subscribed.Event);
        Assert.Equal(["bw.other", "bw.ticked"], JsonDocument.Parse(subscribed.Data!).RootElement.EnumerateArray().Select(e => e.GetString()));

        // Subscribed before the first line was written: nothing published from now on is missed.
        Assert.Equal(1, server.Publish(BothWaysEvents.Ticked, new Tick(1, "first")));
        server.Publish(BothWaysEvents.Other, "two\nlines, \"quoted\"");
        server.Publish(BothWaysEvents.Ticked, new Tick(2, "second"));
        Item[] events = [await sse.EventAsync(), await sse.EventAsync(), await sse.EventAsync()];
        Assert.Equal(["bw.ticked", "bw.other", "bw.ticked"], events.Select(e => e.Event));
        Assert.Equal(1, JsonDocument.Parse(events[0].Data!).RootElement.GetProperty("number").GetInt32());
        Assert.Equal("two\nlines, \"quoted\"", JsonDocument.Parse(events[1].Data!).RootElement.GetString());
        Assert.Equal("second", JsonDocument.Parse(events[2].Data!).RootElement.GetProperty("note").GetString());

        // Nothing came twice: the next item is the keep-alive or a later event, not a copy.
        server.Publish(BothWaysEvents.Other, "last");
        Item last = await sse.EventAsync();
        Assert.Equal("\"last\"", last.Data);
    }

    [Fact]
    public async Task AQuietStreamSaysItIsAliveAndWithoutAPatternGetsEveryEvent()
    {
        await using IpyRpcServer server = EventServer();
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server, options: new IpyRpcHttpOptions { EventStreamKeepAlive = TimeSpan.FromMilliseconds(100) });
        using var http = new HttpClient { BaseAddress = host.Address };
        (HttpResponseMessage response, SseReader sse) = await OpenAsync(http, "");
        using HttpResponseMessage _ = response;
        using SseReader __ = sse;
        Assert.Equal("[\"bw.other\",\"bw.ticked\"]", (await sse.EventAsync()).Data);
        Item? quiet = await sse.NextAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(new Item(null, null, "keep-alive"), quiet);
    }

    [Theory]
    [InlineData("?pattern=nothing.*", HttpStatusCode.NotFound, "not_found", "No event matches 'nothing.*'. This server publishes: bw.other, bw.ticked.")]
    [InlineData("?pattern=%5Bunclosed", HttpStatusCode.BadRequest, "invalid_arguments", "\"[unclosed\" is not a valid event name or glob")]
    public async Task APatternThatMatchesNothingOrIsNoGlobIsRefusedWithAStatusAnEventSourceDoesNotRetry(string query, HttpStatusCode status, string code, string message)
    {
        await using IpyRpcServer server = EventServer();
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server);
        using var http = new HttpClient { BaseAddress = host.Address };
        using HttpResponseMessage response = await http.GetAsync("events" + query);
        Assert.Equal(status, response.StatusCode);
        JsonElement error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal(code, error.GetProperty("code").GetString());
        Assert.StartsWith(message, error.GetProperty("message").GetString());

        using HttpResponseMessage posted = await http.PostAsync("events", new StringContent(""));
        Assert.Equal(HttpStatusCode.MethodNotAllowed, posted.StatusCode);
        using HttpResponseMessage many = await http.GetAsync("events?" + string.Join("&", Enumerable.Range(0, 33).Select(i => "pattern=bw.*")));
        Assert.Equal(HttpStatusCode.BadRequest, many.StatusCode);
        Assert.Contains("at most 32 patterns", await many.Content.ReadAsStringAsync());

        // And the server goes on serving streams.
        (HttpResponseMessage ok, SseReader sse) = await OpenAsync(http, "?pattern=bw.other");
        using HttpResponseMessage _ = ok;
        using SseReader __ = sse;
        Assert.Equal("ipyrpc.subscribed", (await sse.EventAsync()).Event);
    }

    [Fact]
    public async Task AReaderThatFallsBehindLosesOnlyWhatTheBufferCannotHoldAndIsToldHowMany()
    {
        await using IpyRpcServer server = EventServer(new IpyRpcServerOptions { EventBufferSize = 4 });
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server);
        using var http = new HttpClient { BaseAddress = host.Address };
        (HttpResponseMessage response, SseReader sse) = await OpenAsync(http, "?pattern=bw.ticked");
        using HttpResponseMessage _ = response;
        using SseReader __ = sse;
        Assert.Equal("ipyrpc.subscribed", (await sse.EventAsync()).Event);

        // 3,000 events of 32 KB while the client reads nothing: far more than the sockets hold.
        string note = new('n', 32 * 1024);
        const int Published = 3000;
        for (int i = 1; i <= Published; i++) Assert.Equal(1, server.Publish(BothWaysEvents.Ticked, new Tick(i, note)));
        await Task.Delay(500);
        server.Publish(BothWaysEvents.Ticked, new Tick(Published + 1, "last")); // carries the count of any dropped just before it

        long dropped = 0;
        var numbers = new List<int>();
        while (numbers.Count == 0 || numbers[^1] != Published + 1)
        {
            Item item = await sse.EventAsync();
            if (item.Event == "ipyrpc.dropped") dropped += JsonDocument.Parse(item.Data!).RootElement.GetProperty("dropped").GetInt64();
            else numbers.Add(JsonDocument.Parse(item.Data!).RootElement.GetProperty("number").GetInt32());
        }

        Assert.True(dropped > 0, "the buffer of 4 never overflowed");
        Assert.Equal(Published + 1, numbers.Count + dropped); // every event either came or was counted
        Assert.Equal(numbers.Order(), numbers); // in order, none twice
        Assert.Equal(numbers.Count, numbers.Distinct().Count());
    }

    [Fact]
    public async Task AServerThatStopsTellsItsStreamsWhyAndEndsThem()
    {
        IpyRpcServer server = EventServer();
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server);
        using var http = new HttpClient { BaseAddress = host.Address };
        (HttpResponseMessage response, SseReader sse) = await OpenAsync(http, "");
        using HttpResponseMessage _ = response;
        using SseReader __ = sse;
        Assert.Equal("ipyrpc.subscribed", (await sse.EventAsync()).Event);

        await server.DisposeAsync();
        Item closed = await sse.EventAsync();
        Assert.Equal("ipyrpc.closed", closed.Event);
        Assert.Equal("server_stopping", JsonDocument.Parse(closed.Data!).RootElement.GetProperty("reason").GetString());
        Assert.Null(await sse.NextAsync(TimeSpan.FromSeconds(20))); // and the response ends

        using HttpResponseMessage refused = await http.GetAsync("events");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
    }

    [Fact]
    public async Task AnHttpHostThatStopsEndsItsStreamsAtOnceRatherThanWaitingForThem()
    {
        await using IpyRpcServer server = EventServer();
        IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server);
        using var http = new HttpClient { BaseAddress = host.Address };
        (HttpResponseMessage response, SseReader sse) = await OpenAsync(http, "");
        using HttpResponseMessage _ = response;
        using SseReader __ = sse;
        Assert.Equal("ipyrpc.subscribed", (await sse.EventAsync()).Event);

        Task stopping = host.DisposeAsync().AsTask();
        Item closed = await sse.EventAsync();
        Assert.Equal("ipyrpc.closed", closed.Event);
        Assert.Equal("server_stopping", JsonDocument.Parse(closed.Data!).RootElement.GetProperty("reason").GetString());
        await stopping.WaitAsync(TimeSpan.FromSeconds(4)); // not held up for Kestrel's shutdown timeout
    }

    [Fact]
    public async Task APageOfAnotherOriginIsRefusedUnlessListedAndAListedOneMayReadTheStream()
    {
        await using IpyRpcServer server = EventServer();
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server, options: new IpyRpcHttpOptions { AllowedOrigins = ["http://app.example"] });
        using var http = new HttpClient { BaseAddress = host.Address };
        using var foreign = new HttpRequestMessage(HttpMethod.Get, "events") { Headers = { { "Origin", "http://evil.example" } } };
        using HttpResponseMessage refused = await http.SendAsync(foreign);
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        JsonElement error = JsonDocument.Parse(await refused.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal("unauthorized", error.GetProperty("code").GetString());
        Assert.Contains("http://evil.example", error.GetProperty("message").GetString());

        using var listed = new HttpRequestMessage(HttpMethod.Get, "events?pattern=bw.other") { Headers = { { "Origin", "http://app.example" } } };
        using HttpResponseMessage allowed = await http.SendAsync(listed, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
        Assert.Equal("http://app.example", allowed.Headers.GetValues("Access-Control-Allow-Origin").Single());
        using var sse = new SseReader(await allowed.Content.ReadAsStreamAsync());
        Assert.Equal("ipyrpc.subscribed", (await sse.EventAsync()).Event);
    }
}
