using IpyRpc.Protocol;
using IpyRpc.Tests.Fuzz;
using Xunit.Abstractions;

namespace IpyRpc.ZeroMq.Tests;

/// <summary>
/// Mutated and random multipart messages against a ZeroMQ server: after every batch it must answer a
/// real call correctly, and its memory and thread count must stay bounded. <c>IPYRPC_FUZZ_COUNT</c>
/// sets the count (docs/SECURITY.md has the long run); <c>IPYRPC_FUZZ_SEED</c> replays one. Runs
/// alone: the heap it watches is the whole process's.
/// </summary>
[Collection(nameof(Serial))]
public sealed class FuzzTests(ITestOutputHelper output)
{
    [Fact]
    public async Task TheSeedCallsAreAnsweredWithResultsSoMutationsStartFromCallsThatReachTheirFunctions()
    {
        await using var server = new IpyRpcServer();
        server.Register(typeof(FuzzFunctions));
        await using IpyRpcZeroMqServer host = IpyRpcZeroMqServer.Start(server, "tcp://127.0.0.1:*");
        using var dealer = new RawDealer(host.Endpoint);
        dealer.Send([.. Corpus.Frames[0]]); // hello
        Assert.NotNull(dealer.Receive(TimeSpan.FromSeconds(10)));
        // Not fuzz.fail (it throws), nor call 18, which seeds the refusal of an array among gathered texts.
        foreach (IpyRpcMessage call in Corpus.Messages.Where(m => m.Kind == MessageKind.Call && m.Function != "fuzz.fail" && m.Id != 18))
        {
            dealer.Send([MessageCodec.EncodeHeader(call), .. call.Parts.Select(p => p.ToArray())]);
            IpyRpcMessage reply;
            do
            {
                var frames = dealer.Receive(TimeSpan.FromSeconds(10)) ?? throw new TimeoutException($"no reply to {call.Function} ({call.Id})");
                reply = MessageCodec.DecodeHeader(frames[0], [.. frames.Skip(1).Select(f => (ReadOnlyMemory<byte>)f)]);
            }
            while (reply.Id != call.Id || reply.Kind == MessageKind.Output);

            Assert.True(reply.Kind == MessageKind.Result, $"{call.Function} ({call.Id}) was answered {reply.Kind}: {System.Text.Encoding.UTF8.GetString(reply.Body.Span)}");
        }
    }

    [Fact]
    public async Task ZeroMqFramesFuzzedAndRandomLeaveTheServerServing()
    {
        var mutator = new Mutator(Mutator.NewSeed);
        int total = Mutator.CountPerSurface;
        output.WriteLine($"seed {mutator.Seed}, {total} messages");
        await using var server = new IpyRpcServer(new IpyRpcServerOptions { MaxCallsInFlightPerConnection = 100_000 });
        server.Register(typeof(FuzzFunctions)).Register(typeof(IpyRpc.Tests.BothWays.BothWaysEvents));
        await using IpyRpcZeroMqServer host = IpyRpcZeroMqServer.Start(server, "tcp://127.0.0.1:*", new ZeroMqOptions { MaxMessageBytes = 1 << 20 });
        await using IpyRpcClient probe = await IpyRpcZeroMqClient.ConnectAsync(host.Endpoint, new IpyRpcClientOptions { Output = (_, _) => { } });
        var watch = new ResourceWatch();
        int replies = 0;
        using var dealer = new RawDealer(host.Endpoint);
        string epoch = EventEpoch(host.Endpoint);
        for (int sent = 0; sent < total; sent++)
        {
            // Events are published all along (the server keeps the latest 256), and one message in twenty asks to resume
            // after one of them, by an id the server gave: replays, among the mutated subscribes with ids it did not.
            if (mutator.Next(4) == 0) server.Publish(IpyRpc.Tests.BothWays.BothWaysEvents.Ticked, new IpyRpc.Tests.BothWays.Tick(sent, "fuzz"));
            byte[][] frames = mutator.Next(10) == 0
                ? [.. Enumerable.Range(0, 1 + mutator.Next(4)).Select(_ => mutator.Random(mutator.Next(300)))]
                : mutator.Next(20) == 0 ? Corpus.Resume((ulong)sent + 1000, $"{epoch}-{mutator.Next(sent / 4 + 1)}")
                : [.. mutator.Frames(Corpus.Frames[mutator.Next(Corpus.Frames.Count)])];
            if (frames.Length == 0) frames = [[]];
            dealer.Send(frames);
            if ((sent + 1) % 500 == 0 || sent == total - 1)
            {
                while (dealer.Receive(TimeSpan.FromMilliseconds(200)) is { } reply)
                {
                    MessageCodec.DecodeHeader(reply[0], []); // every reply is a well-formed message
                    replies++;
                }

                Assert.Equal(sent + 42, await probe.CallAsync<int>("fuzz.add", sent, 42));
                watch.Check("zeromq", sent + 1);
            }
        }

        output.WriteLine($"{replies} replies; peak heap {watch.PeakMemory / 1048576} MiB, peak threads {watch.PeakThreads}, peak RSS {ResourceWatch.PeakRssMiB} MiB");
        Assert.True(replies > total / 10, $"only {replies} replies to {total} messages");
    }

    // The epoch of the server's event history, from the answer to a subscribe (part 1: {"start": "EPOCH-N"}).
    private static string EventEpoch(string endpoint)
    {
        using var dealer = new RawDealer(endpoint);
        dealer.Send([.. Corpus.Frames[0]]); // hello
        Assert.NotNull(dealer.Receive(TimeSpan.FromSeconds(10)));
        var subscribe = new IpyRpcMessage { Kind = MessageKind.Subscribe, Id = 2, Function = "bw.*" };
        dealer.Send([MessageCodec.EncodeHeader(subscribe)]);
        byte[][] reply = [.. dealer.Receive(TimeSpan.FromSeconds(10)) ?? throw new TimeoutException("no answer to subscribe")];
        Assert.Equal(3, reply.Length); // the header, the names, where it starts
        var start = (Dictionary<string, object?>)IpyRpc.Jobs.JobCodec.Decode(reply[2], Serialization.MessagePack)!;
        string id = (string)start["start"]!;
        return id[..id.LastIndexOf('-')];
    }
}
