using System.Collections.Concurrent;
using IpyRpc.Jobs;
using IpyRpc.MessagePack;
using IpyRpc.Protocol;
using IpyRpc.Tests.BothWays;

namespace IpyRpc.Tests;

/// <summary>
/// The server's side of subscriptions that resume (docs/PROTOCOL.md, "Events after a reconnect"), message by message: the
/// numbers on events, the start in a subscribe's answer, the replay before the answer, JSON made from what is kept.
/// </summary>
public sealed class EventResumeTests
{
    // A session whose transport records what it is sent, in order; until `open` completes, it is stuck on every event.
    private sealed class Recorded
    {
        private Recorded(IpyRpcServer server, Task? open)
        {
            Session = server.CreateSession(async (message, _) =>
            {
                if (message.Kind == MessageKind.Event && open is not null) await open;
                Sent.Enqueue(message);
            }, new IpyRpcConnection("test", null));
        }

        public ConcurrentQueue<IpyRpcMessage> Sent { get; } = new();

        public ServerSession Session { get; }

        public static async Task<Recorded> StartAsync(IpyRpcServer server, Task? open = null)
        {
            var recorded = new Recorded(server, open);
            await recorded.Session.HandleAsync(new IpyRpcMessage { Kind = MessageKind.Hello, Id = 1, Versions = [1] });
            return recorded;
        }

        public Task SubscribeAsync(ulong id, string pattern, string? resume = null, Serialization serialization = Serialization.MessagePack) => Session.HandleAsync(new IpyRpcMessage
        {
            Kind = MessageKind.Subscribe,
            Id = id,
            Function = pattern,
            Serialization = serialization,
            Parts = resume is null ? [] : [JobCodec.Encode(new Dictionary<string, object?> { ["resume"] = resume }, serialization)],
        }).AsTask();

        public IpyRpcMessage[] Events => [.. Sent.Where(m => m.Kind == MessageKind.Event)];

        public IpyRpcMessage Answer(ulong id) => Sent.Single(m => m.Id == id && m.Kind is MessageKind.Result or MessageKind.Error);

        /// <summary>Part 1 of a subscribe's answer.</summary>
        public Dictionary<string, object?> Resumed(ulong id)
        {
            IpyRpcMessage answer = Answer(id);
            Assert.Equal(MessageKind.Result, answer.Kind);
            Assert.Equal(2, answer.Parts.Count);
            return (Dictionary<string, object?>)JobCodec.Decode(answer.Parts[1].Span, answer.Serialization)!;
        }
    }

    // A connection subscribed to `pattern` from the start, and the id it starts from with its epoch.
    private static async Task<(Recorded Connection, string Start, string Epoch)> SubscribedAsync(IpyRpcServer server, string pattern = "bw.ticked")
    {
        Recorded connection = await Recorded.StartAsync(server);
        await connection.SubscribeAsync(2, pattern);
        string start = (string)connection.Resumed(2)["start"]!;
        return (connection, start, start[..start.LastIndexOf('-')]);
    }

    private static IpyRpcServer NewServer(IpyRpcServerOptions? options = null)
    {
        var server = new IpyRpcServer(options);
        server.Register(typeof(BothWaysEvents));
        return server;
    }

    private static int Number(IpyRpcMessage e)
    {
        if (e.Serialization == Serialization.Json) return System.Text.Json.JsonDocument.Parse(e.Body).RootElement.GetProperty("number").GetInt32();
        var reader = new MessagePackReader(e.Body.Span);
        return BothWaysEvents.Ticked.Formatter.Read(ref reader).Number;
    }

    private static void Publish(IpyRpcServer server, int from, int to)
    {
        for (int n = from; n < to; n++) server.Publish(BothWaysEvents.Ticked, new Tick(n, ""));
    }

    [Fact]
    public async Task EventsAreNumberedAndAResumedSubscribeHearsWhatItMissedAsItsAnswersBeforeTheAnswerThenLiveOnes()
    {
        await using IpyRpcServer server = NewServer();
        (Recorded first, string start, string epoch) = await SubscribedAsync(server, "bw.*");
        Assert.Matches("^[0-9a-f]{8}-0$", start); // nothing published yet
        Publish(server, 0, 5);
        Assert.Equal([1L, 2L, 3L, 4L, 5L], first.Events.Select(e => e.Sequence!.Value));
        Assert.All(first.Events, e => Assert.Equal(0UL, e.Id));

        // Another connection resumes after the second: the third to the fifth come, answering its subscribe, before the answer.
        Recorded second = await Recorded.StartAsync(server);
        await second.SubscribeAsync(7, "bw.ticked", $"{epoch}-2");
        IpyRpcMessage[] sent = [.. second.Sent.Where(m => m.Kind != MessageKind.Hello)];
        Assert.Equal([MessageKind.Event, MessageKind.Event, MessageKind.Event, MessageKind.Result], sent.Select(m => m.Kind));
        Assert.Equal([2, 3, 4], sent.Take(3).Select(Number));
        Assert.All(sent.Take(3), e => Assert.Equal(7UL, e.Id));
        Assert.Equal([3L, 4L, 5L], sent.Take(3).Select(e => e.Sequence!.Value));
        Dictionary<string, object?> resumed = second.Resumed(7);
        Assert.Equal($"{epoch}-5", resumed["start"]);
        Assert.False(resumed.ContainsKey("missed"));

        Publish(server, 5, 6);
        IpyRpcMessage live = second.Events[^1];
        Assert.Equal((0UL, 6L, 5), (live.Id, live.Sequence!.Value, Number(live)));
        await first.Session.DisposeAsync();
        await second.Session.DisposeAsync();
    }

    [Fact]
    public async Task TheAnswerWaitsUntilTheReplayIsSent()
    {
        await using IpyRpcServer server = NewServer();
        (Recorded publisherSide, string start, _) = await SubscribedAsync(server);
        Publish(server, 0, 3);

        var open = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Recorded stuck = await Recorded.StartAsync(server, open.Task);
        Task subscribing = stuck.SubscribeAsync(3, "bw.ticked", start);
        await Task.Delay(200);
        Assert.DoesNotContain(stuck.Sent, m => m.Kind == MessageKind.Result); // its transport has not taken the replay yet
        open.SetResult();
        await subscribing.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal([MessageKind.Event, MessageKind.Event, MessageKind.Event, MessageKind.Result], stuck.Sent.Where(m => m.Kind != MessageKind.Hello).Select(m => m.Kind));
        await publisherSide.Session.DisposeAsync();
        await stuck.Session.DisposeAsync();
    }

    [Fact]
    public async Task WhatTheServerNoLongerKeepsOrDidNotGiveIsToldAndNothingOlderIsReplayed()
    {
        await using IpyRpcServer server = NewServer(new IpyRpcServerOptions { EventHistory = 3 });
        (Recorded first, string start, string epoch) = await SubscribedAsync(server);
        Publish(server, 0, 10);

        Recorded late = await Recorded.StartAsync(server);
        await late.SubscribeAsync(3, "bw.ticked", start);
        Assert.Equal([7, 8, 9], late.Events.Select(Number)); // the three kept
        var missed = (Dictionary<string, object?>)late.Resumed(3)["missed"]!;
        Assert.Equal("expired", missed["reason"]);
        Assert.Contains("keeps its last 3 events", (string)missed["message"]!);

        // An id from another server (or an earlier run), a number past the last, anything else: starts now, and says so.
        foreach ((ulong id, string resume) in new[] { (4UL, "0badc0de-3"), (5UL, $"{epoch}-99"), (6UL, "not an id") })
        {
            Recorded foreign = await Recorded.StartAsync(server);
            await foreign.SubscribeAsync(id, "bw.ticked", resume);
            Assert.Empty(foreign.Events);
            Dictionary<string, object?> resumed = foreign.Resumed(id);
            Assert.Equal($"{epoch}-10", resumed["start"]);
            Assert.Equal("unknown_id", ((Dictionary<string, object?>)resumed["missed"]!)["reason"]);
            await foreign.Session.DisposeAsync();
        }

        // A part 0 that is not the resume map (a number for the id, an id longer than 64 characters, an array) is refused,
        // saying what it should be.
        Recorded wrong = await Recorded.StartAsync(server);
        object?[] bodies = [new Dictionary<string, object?> { ["resume"] = 5L }, new Dictionary<string, object?> { ["resume"] = new string('a', 65) }, new object?[] { "x" }];
        for (int i = 0; i < bodies.Length; i++)
        {
            ulong id = 9 + (ulong)i;
            await wrong.Session.HandleAsync(new IpyRpcMessage { Kind = MessageKind.Subscribe, Id = id, Function = "bw.ticked", Parts = [JobCodec.Encode(bodies[i], Serialization.MessagePack)] });
            IpyRpcMessage refused = wrong.Answer(id);
            Assert.Equal(MessageKind.Error, refused.Kind);
            RemoteError error = RemoteError.Decode(refused.Body.Span, refused.Serialization);
            Assert.Equal((ErrorCodes.BadMessage, true), (error.Code, error.Message.Contains("resume", StringComparison.Ordinal)));
        }

        await first.Session.DisposeAsync();
        await late.Session.DisposeAsync();
        await wrong.Session.DisposeAsync();
    }

    [Fact]
    public async Task AJsonSubscriberIsReplayedTheSameJsonALiveOneHeard()
    {
        // The history keeps MessagePack; a JSON subscriber's replay is made from it through the event's formatter, and must
        // be what publishing sent in JSON to a subscriber that was there.
        await using IpyRpcServer server = NewServer();
        (Recorded binary, string start, string epoch) = await SubscribedAsync(server);
        Recorded live = await Recorded.StartAsync(server);
        await live.SubscribeAsync(3, "bw.ticked", serialization: Serialization.Json);
        server.Publish(BothWaysEvents.Ticked, new Tick(0, "zero"));
        server.Publish(BothWaysEvents.Ticked, new Tick(1, "ünïcödé \"quoted\"\nline"));
        server.Publish(BothWaysEvents.Ticked, new Tick(2, ""));

        Recorded json = await Recorded.StartAsync(server);
        await json.SubscribeAsync(4, "bw.ticked", start, Serialization.Json);
        Assert.Equal([0, 1, 2], json.Events.Select(Number));
        Assert.All(json.Events, e => Assert.Equal(Serialization.Json, e.Serialization));
        Assert.Equal(live.Events.Select(e => Convert.ToHexString(e.Body.Span)), json.Events.Select(e => Convert.ToHexString(e.Body.Span)));
        Assert.False(json.Resumed(4).ContainsKey("missed"));

        // Published by name with plain data, too.
        server.Publish("bw.other", new Dictionary<string, object?> { ["a"] = new object?[] { 1L, 2.5, "x", null } });
        Recorded other = await Recorded.StartAsync(server);
        await other.SubscribeAsync(5, "bw.other", $"{epoch}-3", Serialization.Json);
        Assert.Equal("{\"a\":[1,2.5,\"x\",null]}", System.Text.Encoding.UTF8.GetString(Assert.Single(other.Events).Body.Span));
        foreach (Recorded r in new[] { binary, live, json, other }) await r.Session.DisposeAsync();
    }

    [Fact]
    public async Task AServerWithoutAHistoryNumbersNothingAndIgnoresResume()
    {
        await using IpyRpcServer server = NewServer(new IpyRpcServerOptions { EventHistory = 0 });
        Recorded first = await Recorded.StartAsync(server);
        await first.SubscribeAsync(2, "bw.ticked", "0badc0de-1");
        Assert.Single(first.Answer(2).Parts); // the names alone
        Publish(server, 0, 2);
        Assert.All(first.Events, e => Assert.Null(e.Sequence));
        await first.Session.DisposeAsync();
    }

    [Fact]
    public void HistoryOptionsOutOfRangeAreRefused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new IpyRpcServer(new IpyRpcServerOptions { EventHistory = -1 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new IpyRpcServer(new IpyRpcServerOptions { EventHistoryBytes = 0 }));
    }
}

/// <summary>The .NET client's side, in process (where nothing reconnects): subscriptions that share a pattern.</summary>
public sealed class SharedPatternSubscriptionTests
{
    [Theory]
    [InlineData(256)]
    [InlineData(0)]
    public async Task ASecondSubscriptionToAPatternLeavesTheFirstAsItWas(int history)
    {
        // Buffers that hold everything: nothing is dropped for falling behind.
        await using var server = new IpyRpcServer(new IpyRpcServerOptions { EventHistory = history, EventBufferSize = 10_000 });
        server.Register(typeof(BothWaysEvents));
        await using IpyRpcClient client = await IpyRpcClient.ConnectInProcessAsync(server, new IpyRpcClientOptions { EventBufferSize = 10_000 });
        var first = new ConcurrentQueue<int>();
        var second = new ConcurrentQueue<int>();
        await using IpyRpcSubscription a = await client.SubscribeAsync(BothWaysEvents.Ticked, t => first.Enqueue(t.Number));
        for (int n = 0; n < 50; n++) server.Publish(BothWaysEvents.Ticked, new Tick(n, ""));
        Task publishing = Task.Run(() =>
        {
            for (int n = 50; n < 2000; n++) server.Publish(BothWaysEvents.Ticked, new Tick(n, ""));
        });
        await using IpyRpcSubscription b = await client.SubscribeAsync(BothWaysEvents.Ticked, t => second.Enqueue(t.Number)); // while events come
        await publishing;
        for (int n = 2000; n < 2100; n++) server.Publish(BothWaysEvents.Ticked, new Tick(n, ""));
        DateTime until = DateTime.UtcNow.AddSeconds(20);
        while ((first.Count < 2100 || !second.Contains(2099)) && DateTime.UtcNow < until) await Task.Delay(10);

        Assert.Equal(Enumerable.Range(0, 2100), first); // every one, once, in order: the second subscription did not disturb it
        Assert.Equal((0L, 0L, 0L), (a.Gaps, a.Replayed, a.Dropped));
        int from = second.First();
        Assert.Equal(Enumerable.Range(from, 2100 - from), second); // the second hears from when it subscribed on, in order
        Assert.Equal(0L, b.Gaps);
    }
}

/// <summary>A client that starts later goes on from the id an earlier one kept (<see cref="SubscribeOptions.ResumeAfter"/>).</summary>
public sealed class ResumeAfterTests
{
    private static IpyRpcServer NewServer(int history = 256)
    {
        var server = new IpyRpcServer(new IpyRpcServerOptions { EventHistory = history });
        server.Register(typeof(BothWaysEvents));
        return server;
    }

    private static void Publish(IpyRpcServer server, int from, int to)
    {
        for (int n = from; n < to; n++) server.Publish(BothWaysEvents.Ticked, new Tick(n, ""));
    }

    private static async Task EventuallyAsync(Func<bool> condition, string what)
    {
        DateTime until = DateTime.UtcNow.AddSeconds(20);
        while (!condition())
        {
            if (DateTime.UtcNow > until) Assert.Fail("Waited 20 s for " + what);
            await Task.Delay(10);
        }
    }

    // A first client hears `count` events (0, 1, ...) and leaves, keeping where its subscription was.
    private static async Task<string> KeptByAFirstClientAsync(IpyRpcServer server, int count)
    {
        await using IpyRpcClient first = await IpyRpcClient.ConnectInProcessAsync(server);
        var heard = new ConcurrentQueue<int>();
        await using IpyRpcSubscription subscription = await first.SubscribeAsync(BothWaysEvents.Ticked, t => heard.Enqueue(t.Number));
        Assert.Matches("^[0-9a-f]{8}-0$", subscription.LastEventId); // where it starts, before any event
        Publish(server, 0, count);
        await EventuallyAsync(() => heard.Count == count && subscription.LastEventId!.EndsWith($"-{count}", StringComparison.Ordinal), $"{count} events handled");
        return subscription.LastEventId!;
    }

    [Fact]
    public async Task AClientStartedLaterGoesOnFromTheIdAnEarlierOneKept()
    {
        await using IpyRpcServer server = NewServer();
        string kept = await KeptByAFirstClientAsync(server, 5);
        Publish(server, 5, 10); // while nobody listens

        await using IpyRpcClient second = await IpyRpcClient.ConnectInProcessAsync(server);
        var heard = new ConcurrentQueue<int>();
        var gaps = new ConcurrentQueue<EventGap>();
        await using IpyRpcSubscription subscription = await second.SubscribeAsync(BothWaysEvents.Ticked, t => heard.Enqueue(t.Number), new SubscribeOptions { ResumeAfter = kept, Gap = (_, gap) => gaps.Enqueue(gap) });
        Publish(server, 10, 11);
        await EventuallyAsync(() => heard.Count == 6, $"the five missed and a live one (heard {string.Join(",", heard)})");
        Assert.Equal([5, 6, 7, 8, 9, 10], heard);
        Assert.Empty(gaps);
        Assert.Equal(5, subscription.Replayed);
        await EventuallyAsync(() => subscription.LastEventId == kept[..kept.LastIndexOf('-')] + "-11", "the position after the live one");
    }

    [Fact]
    public async Task AGapIsToldBeforeAnyEventWhenTheServerNoLongerKeepsWhatCameAfterTheId()
    {
        await using IpyRpcServer server = NewServer(history: 3);
        string kept = await KeptByAFirstClientAsync(server, 2);
        Publish(server, 2, 10);

        await using IpyRpcClient second = await IpyRpcClient.ConnectInProcessAsync(server);
        var heard = new ConcurrentQueue<int>();
        var gaps = new ConcurrentQueue<(EventGap Gap, int HeardBefore)>();
        await using IpyRpcSubscription subscription = await second.SubscribeAsync(BothWaysEvents.Ticked, t => heard.Enqueue(t.Number), new SubscribeOptions { ResumeAfter = kept, Gap = (_, gap) => gaps.Enqueue((gap, heard.Count)) });
        await EventuallyAsync(() => heard.Count == 3, "the three kept");
        Assert.Equal([7, 8, 9], heard);
        (EventGap told, int heardBefore) = Assert.Single(gaps);
        Assert.Equal(("expired", 0), (told.Reason, heardBefore));
        Assert.Equal(told, subscription.LastGap);
    }

    [Fact]
    public async Task AnIdThisServerDidNotGiveStartsNowAndSaysSoAndOneThatIsNoIdIsRefused()
    {
        await using IpyRpcServer server = NewServer();
        await using IpyRpcClient client = await IpyRpcClient.ConnectInProcessAsync(server);
        var heard = new ConcurrentQueue<int>();
        Publish(server, 0, 3);
        await using IpyRpcSubscription subscription = await client.SubscribeAsync(BothWaysEvents.Ticked, t => heard.Enqueue(t.Number), new SubscribeOptions { ResumeAfter = "0badc0de-1" });
        Assert.Equal("unknown_id", subscription.LastGap?.Reason);
        Publish(server, 3, 4);
        await EventuallyAsync(() => heard.Count == 1, "the live one");
        Assert.Equal([3], heard);

        var refused = await Assert.ThrowsAsync<ArgumentException>(() => client.SubscribeAsync(BothWaysEvents.Ticked, _ => { }, new SubscribeOptions { ResumeAfter = "yesterday" }));
        Assert.Contains("is not an event id", refused.Message);

        await using IpyRpcServer plain = NewServer(history: 0);
        await using IpyRpcClient plainClient = await IpyRpcClient.ConnectInProcessAsync(plain);
        await using IpyRpcSubscription without = await plainClient.SubscribeAsync(BothWaysEvents.Ticked, _ => { }, new SubscribeOptions { ResumeAfter = "0badc0de-1" });
        Assert.Equal("not_kept", without.LastGap?.Reason);
        Assert.Null(without.LastEventId);
    }

    [Fact]
    public async Task TheUntypedFormsGiveEachEventsIdAndTheEnumeratorGoesOnFromOne()
    {
        await using IpyRpcServer server = NewServer();
        await using IpyRpcClient client = await IpyRpcClient.ConnectInProcessAsync(server);
        var heard = new ConcurrentQueue<ReceivedEvent>();
        await using IpyRpcSubscription subscription = await client.SubscribeAsync("bw.*", heard.Enqueue);
        string epoch = subscription.LastEventId![..subscription.LastEventId!.LastIndexOf('-')];
        Publish(server, 0, 3);
        await EventuallyAsync(() => heard.Count == 3 && subscription.LastEventId == $"{epoch}-3", "three events handled");
        Assert.Equal([$"{epoch}-1", $"{epoch}-2", $"{epoch}-3"], heard.Select(e => e.Id));
        Publish(server, 3, 5);

        // An enumeration that goes on after the second: the third (tick 2), then the two published since.
        var again = new List<(int Number, string? Id)>();
        await foreach (ReceivedEvent e in client.EventsAsync("bw.*", new SubscribeOptions { ResumeAfter = heard.ElementAt(1).Id }))
        {
            again.Add((Convert.ToInt32(((Dictionary<string, object?>)e.Payload!)["number"]), e.Id));
            if (again.Count == 3) break;
        }

        Assert.Equal([(2, $"{epoch}-3"), (3, $"{epoch}-4"), (4, $"{epoch}-5")], again);
    }
}
