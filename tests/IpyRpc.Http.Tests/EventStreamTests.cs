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
    /// <summary>One item of a stream: an event with its data (and its id, when it has one), or a comment (a keep-alive).</summary>
    private sealed record Item(string? Event, string? Data, string? Comment, string? Id = null);

    /// <summary>Reads a text/event-stream response item by item, as an EventSource parses it.</summary>
    private sealed class SseReader(Stream body) : IDisposable
    {
        private readonly StreamReader _reader = new(body, Encoding.UTF8);

        public async Task<Item?> NextAsync(TimeSpan within)
        {
            using var timeout = new CancellationTokenSource(within);
            string? name = null, comment = null, id = null;
            var data = new List<string>();
            while (true)
            {
                string? line = await _reader.ReadLineAsync(timeout.Token).AsTask().WaitAsync(timeout.Token); // (a chunked response's read does not always hear the token)
                if (line is null) return null;
                if (line.Length == 0)
                {
                    if (name is null && data.Count == 0 && comment is null) continue;
                    if (id is not null) LastEventId = id; // as an EventSource keeps it, for its reconnect
                    return new Item(name, data.Count > 0 ? string.Join("\n", data) : null, comment, id);
                }

                if (line.StartsWith(':')) comment = line[1..].Trim();
                else if (line.StartsWith("event: ", StringComparison.Ordinal)) name = line["event: ".Length..];
                else if (line.StartsWith("data: ", StringComparison.Ordinal)) data.Add(line["data: ".Length..]);
                else if (line.StartsWith("id: ", StringComparison.Ordinal)) id = line["id: ".Length..];
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

        /// <summary>The id of the last event read that had one.</summary>
        public string? LastEventId { get; private set; }

        public void Dispose() => _reader.Dispose();
    }

    private static async Task<(HttpResponseMessage Response, SseReader Reader)> OpenAsync(HttpClient http, string query, string? lastEventId = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "events" + query);
        if (lastEventId is not null) request.Headers.Add("Last-Event-ID", lastEventId);
        HttpResponseMessage response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        return (response, new SseReader(await response.Content.ReadAsStreamAsync()));
    }

    /// <summary>A stream of bw.ticked that hears tick 1 and goes: the id it would resume from.</summary>
    private static async Task<string> HeardTickOneAsync(IpyRpcServer server, HttpClient http)
    {
        (HttpResponseMessage response, SseReader sse) = await OpenAsync(http, "?pattern=bw.ticked");
        using HttpResponseMessage _ = response;
        using SseReader __ = sse;
        Assert.Equal("ipyrpc.subscribed", (await sse.EventAsync()).Event);
        server.Publish(BothWaysEvents.Ticked, new Tick(1, ""));
        Assert.Equal("bw.ticked", (await sse.EventAsync()).Event);
        return sse.LastEventId!;
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

    [Fact]
    public async Task AStreamThatReconnectsWithItsLastEventIdHearsWhatItMissedOnceAndInOrderWhilePublishersRaceIt()
    {
        // Buffers that hold every event: what this checks is the resume, not a slow reader's losses.
        await using IpyRpcServer server = EventServer(new IpyRpcServerOptions { EventBufferSize = 1_000_000 });
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server, options: new IpyRpcHttpOptions { EventStreamHistory = 1_000_000 });
        using var http = new HttpClient { BaseAddress = host.Address };
        (HttpResponseMessage first, SseReader a) = await OpenAsync(http, "?pattern=bw.*");
        Item subscribed = await a.EventAsync();
        Assert.Equal("ipyrpc.subscribed", subscribed.Event);
        Assert.NotNull(subscribed.Id); // a stream that drops before any event resumes from here

        // Two publishers race each other and the reconnect: ticks numbered on one thread, "other" strings on another.
        const int Each = 4000;
        using var go = new ManualResetEventSlim();
        Task ticks = Task.Run(() =>
        {
            go.Wait();
            for (int i = 1; i <= Each; i++) server.Publish(BothWaysEvents.Ticked, new Tick(i, ""));
        });
        Task others = Task.Run(() =>
        {
            go.Wait();
            for (int i = 1; i <= Each; i++) server.Publish(BothWaysEvents.Other, i.ToString(System.Globalization.CultureInfo.InvariantCulture));
        });
        go.Set();

        var heard = new List<Item>();
        for (int i = 0; i < 500; i++) heard.Add(Heard(await a.EventAsync()));
        string lastId = a.LastEventId!;
        first.Dispose(); // the connection drops mid-stream
        a.Dispose();

        (HttpResponseMessage second, SseReader b) = await OpenAsync(http, "?pattern=bw.*", lastId);
        using HttpResponseMessage _ = second;
        using SseReader __ = b;
        Item resumed = await b.EventAsync();
        Assert.Equal("ipyrpc.subscribed", resumed.Event);
        Assert.Equal(lastId, resumed.Id);
        await Task.WhenAll(ticks, others).WaitAsync(TimeSpan.FromSeconds(60));
        while (heard.Count < 2 * Each) heard.Add(Heard(await b.EventAsync()));
        long[] numbers = [.. heard.Select(e => long.Parse(e.Id!.Split('-')[1], System.Globalization.CultureInfo.InvariantCulture))];
        Assert.Equal(numbers.Order(), numbers); // one order for all, as published
        Assert.Equal(numbers.Length, numbers.Distinct().Count());
        Assert.Equal(Enumerable.Range(1, Each), heard.Where(e => e.Event == "bw.ticked").Select(e => JsonDocument.Parse(e.Data!).RootElement.GetProperty("number").GetInt32()));
        Assert.Equal(Enumerable.Range(1, Each), heard.Where(e => e.Event == "bw.other").Select(e => int.Parse(JsonDocument.Parse(e.Data!).RootElement.GetString()!, System.Globalization.CultureInfo.InvariantCulture)));

        static Item Heard(Item e)
        {
            Assert.False(e.Event!.StartsWith("ipyrpc.", StringComparison.Ordinal), $"{e.Event}: {e.Data}"); // nothing missed, nothing dropped
            return e;
        }
    }

    [Fact]
    public async Task AResumedStreamHearsOnlyItsPatternsAndIsToldWhenTheServerNoLongerHoldsWhatItMissed()
    {
        // The server keeps no history of its own for its clients' subscriptions: the stream's four are all it keeps.
        await using IpyRpcServer server = EventServer(new IpyRpcServerOptions { EventHistory = 0 });
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server, options: new IpyRpcHttpOptions { EventStreamHistory = 4 });
        using var http = new HttpClient { BaseAddress = host.Address };
        string afterOne = await HeardTickOneAsync(server, http);

        // Missed: a tick, an event of another name, a tick; all within the four kept.
        server.Publish(BothWaysEvents.Ticked, new Tick(2, ""));
        server.Publish(BothWaysEvents.Other, "not asked for");
        server.Publish(BothWaysEvents.Ticked, new Tick(3, ""));
        (HttpResponseMessage second, SseReader b) = await OpenAsync(http, "?pattern=bw.ticked", afterOne);
        using (second)
        using (b)
        {
            Assert.Equal("ipyrpc.subscribed", (await b.EventAsync()).Event);
            int[] missedTwo = [Number(await b.EventAsync()), Number(await b.EventAsync())];
            Assert.Equal([2, 3], missedTwo);
            server.Publish(BothWaysEvents.Ticked, new Tick(4, ""));
            Assert.Equal(4, Number(await b.EventAsync()));
        }

        // Six more while away: the four kept are the last four, and the stream is told the rest are gone.
        for (int i = 5; i <= 10; i++) server.Publish(BothWaysEvents.Ticked, new Tick(i, ""));
        (HttpResponseMessage third, SseReader c) = await OpenAsync(http, "?pattern=bw.ticked", afterOne);
        using (third)
        using (c)
        {
            Assert.Equal("ipyrpc.subscribed", (await c.EventAsync()).Event);
            Item missed = await c.EventAsync();
            Assert.Equal("ipyrpc.missed", missed.Event);
            Assert.Null(missed.Id);
            Assert.Equal("expired", JsonDocument.Parse(missed.Data!).RootElement.GetProperty("reason").GetString());
            Assert.Contains("keeps its last 4 events", JsonDocument.Parse(missed.Data!).RootElement.GetProperty("message").GetString());
            int[] kept = [Number(await c.EventAsync()), Number(await c.EventAsync()), Number(await c.EventAsync()), Number(await c.EventAsync())];
            Assert.Equal([7, 8, 9, 10], kept);
        }

        // The id in the query (a page that keeps it, for a new EventSource, which sets no headers) does the same; the
        // header, which an EventSource sends when it reconnects, is the later and wins.
        string afterTen = c.LastEventId!;
        server.Publish(BothWaysEvents.Ticked, new Tick(11, ""));
        foreach ((string query, string? header) in new[] { ("&lastEventId=" + afterTen, (string?)null), ("&lastEventId=" + afterOne, afterTen) })
        {
            (HttpResponseMessage response, SseReader fromQuery) = await OpenAsync(http, "?pattern=bw.ticked" + query, header);
            using (response)
            using (fromQuery)
            {
                Assert.Equal("ipyrpc.subscribed", (await fromQuery.EventAsync()).Event);
                Assert.Equal(11, Number(await fromQuery.EventAsync()));
            }
        }

        // An id this server never gave (another server's, or from before a restart): told so, and the stream starts now.
        foreach (string foreign in new[] { "0badc0de-3", afterOne.Split('-')[0] + "-999999", "not an id at all", new string('x', 300) })
        {
            (HttpResponseMessage response, SseReader d) = await OpenAsync(http, "?pattern=bw.ticked", foreign);
            using (response)
            using (d)
            {
                Assert.Equal("ipyrpc.subscribed", (await d.EventAsync()).Event);
                Item unknown = await d.EventAsync();
                Assert.Equal("ipyrpc.missed", unknown.Event);
                JsonElement data = JsonDocument.Parse(unknown.Data!).RootElement;
                Assert.Equal("unknown_id", data.GetProperty("reason").GetString());
                Assert.DoesNotContain("xxxxxxxxxx", data.GetProperty("message").GetString());
                server.Publish(BothWaysEvents.Ticked, new Tick(12, ""));
                Assert.Equal(12, Number(await d.EventAsync())); // not the history's 8..11
            }
        }

        static int Number(Item e)
        {
            Assert.Equal("bw.ticked", e.Event);
            return JsonDocument.Parse(e.Data!).RootElement.GetProperty("number").GetInt32();
        }
    }

    [Fact]
    public async Task WithoutAHistoryEventsGoWithoutIdsAndALastEventIdChangesNothing()
    {
        await using IpyRpcServer server = EventServer();
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server, options: new IpyRpcHttpOptions { EventStreamHistory = 0 });
        using var http = new HttpClient { BaseAddress = host.Address };
        server.Publish(BothWaysEvents.Ticked, new Tick(1, "before"));
        (HttpResponseMessage response, SseReader sse) = await OpenAsync(http, "?pattern=bw.ticked", "0badc0de-1");
        using HttpResponseMessage _ = response;
        using SseReader __ = sse;
        Item subscribed = await sse.EventAsync();
        Assert.Equal(("ipyrpc.subscribed", null), (subscribed.Event, subscribed.Id));
        server.Publish(BothWaysEvents.Ticked, new Tick(2, "after"));
        Item tick = await sse.EventAsync();
        Assert.Equal(("bw.ticked", null), (tick.Event, tick.Id));
        Assert.Equal(2, JsonDocument.Parse(tick.Data!).RootElement.GetProperty("number").GetInt32());

        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => IpyRpcHttpServer.StartAsync(server, options: new IpyRpcHttpOptions { EventStreamHistory = -1 }));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => IpyRpcHttpServer.StartAsync(server, options: new IpyRpcHttpOptions { EventStreamHistoryBytes = 0 }));
    }

    [Fact]
    public async Task LargeEventsTakeTheRoomOfManyInTheHistory()
    {
        await using IpyRpcServer server = EventServer(new IpyRpcServerOptions { EventHistory = 0 }); // JSON payloads alone, in the stream's 400 bytes
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server, options: new IpyRpcHttpOptions { EventStreamHistory = 100, EventStreamHistoryBytes = 400 });
        using var http = new HttpClient { BaseAddress = host.Address };
        string afterOne = await HeardTickOneAsync(server, http);

        // Three of 150 bytes and more, while away: 400 bytes hold two of them, so the first is gone.
        for (int i = 2; i <= 4; i++) server.Publish(BothWaysEvents.Ticked, new Tick(i, new string('n', 150)));
        (HttpResponseMessage second, SseReader b) = await OpenAsync(http, "?pattern=bw.ticked", afterOne);
        using HttpResponseMessage _ = second;
        using SseReader __ = b;
        Assert.Equal("ipyrpc.subscribed", (await b.EventAsync()).Event);
        Item missed = await b.EventAsync();
        Assert.Equal("ipyrpc.missed", missed.Event);
        Assert.Contains("keeps its last 100 events (400 bytes of payloads at most)", missed.Data);
        int[] kept = [Number(await b.EventAsync()), Number(await b.EventAsync())];
        Assert.Equal([3, 4], kept);

        static int Number(Item e) => JsonDocument.Parse(e.Data!).RootElement.GetProperty("number").GetInt32();
    }
}
