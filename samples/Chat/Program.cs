using Chat;
using IpyRpc;
using IpyRpc.Http;
using IpyRpc.ZeroMq;
using System.Runtime.InteropServices;

// A chat room where the server calls back into its clients and broadcasts events.
//   dotnet run --project samples/Chat            # over WebSocket (Kestrel on loopback)
//   dotnet run --project samples/Chat -- --zmq   # over ZeroMQ
//   dotnet run --project samples/Chat -- serve [URL]   # only the room, over WebSocket at URL (http://127.0.0.1:7780), until Ctrl+C
// Three members join; the server learns each name by calling the member back, everyone hears what
// is said, a vote asks every member by calling them back, the listener restarts while the room stays
// up (members reconnect and hear what was said meanwhile), and one member leaves.
bool zmq = args.Contains("--zmq");
var room = new ChatRoom();
await using var server = new IpyRpcServer();
server.Register(room).Register(typeof(ChatEvents));
room.Attach(server);

if (args.FirstOrDefault() == "serve")
{
    // For clients of their own: samples/SchemaClient's chat mode, or `ipyrpc schema URL` to write the room's schema.
    await using IpyRpcHttpServer served = await IpyRpcHttpServer.StartAsync(server, args.Length > 1 ? args[1] : "http://127.0.0.1:7780");
    Console.WriteLine($"room open at {served.Address}; press Ctrl+C to close it");
    Console.Out.Flush();
    // Ctrl+C and SIGTERM close the room cleanly: members are told the server is stopping.
    var closed = new TaskCompletionSource();
    using PosixSignalRegistration sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Close);
    using PosixSignalRegistration sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Close);
    await closed.Task;
    return 0;

    void Close(PosixSignalContext context)
    {
        context.Cancel = true;
        closed.TrySetResult();
    }
}

IAsyncDisposable host;
Func<Member, Task<IpyRpcClient>> join;
Func<Task<IAsyncDisposable>> listenAgain; // at the same address
if (zmq)
{
    IpyRpcZeroMqServer zmqHost = IpyRpcZeroMqServer.Start(server, "tcp://127.0.0.1:*");
    host = zmqHost;
    join = member => IpyRpcZeroMqClient.ConnectAsync(zmqHost.Endpoint, Options(member));
    listenAgain = () => Task.FromResult<IAsyncDisposable>(IpyRpcZeroMqServer.Start(server, zmqHost.Endpoint));
}
else
{
    IpyRpcHttpServer httpHost = await IpyRpcHttpServer.StartAsync(server);
    host = httpHost;
    join = member => IpyRpcHttpClient.ConnectAsync(httpHost.Address, HttpCarrier.WebSocket, Options(member));
    listenAgain = async () => await IpyRpcHttpServer.StartAsync(server, httpHost.Address.ToString().TrimEnd('/'));
}

Console.WriteLine($"room open over {(zmq ? "ZeroMQ" : "WebSocket")}");
try
{
    var members = new List<IpyRpcClient>();
    foreach ((string name, Func<string, bool> opinion) in new (string, Func<string, bool>)[]
    {
        ("ann", q => q.Contains("pizza")),
        ("bob", q => true),
        ("cy", q => false),
    })
    {
        IpyRpcClient client = await join(new Member(name, opinion));
        // Typed handlers for the room's events; each member prints what it hears.
        await client.SubscribeAsync(ChatEvents.Said, line => Console.WriteLine($"  {name} hears {line.From}: {line.Text}"));
        await client.SubscribeAsync(ChatEvents.Left, who => Console.WriteLine($"  {name} sees {who} leave"));
        members.Add(client);
    }

    var room1 = members[0].Proxy<ChatRoomClient>().Chat;
    await WaitUntil(async () => (await room1.Members()).Count == 3);
    Console.WriteLine("members: " + string.Join(", ", await room1.Members()));

    await room1.Say("hello, room");
    await members[1].Proxy<ChatRoomClient>().Chat.Say("hi ann");
    await Task.Delay(300); // let the events arrive

    // The server calls every member back; the tally comes back as progress while they answer.
    VoteTally tally = await members[2].Proxy<ChatRoomClient>().Chat.Vote("pizza tonight?", new Reports<VoteTally>(t => Console.WriteLine($"  vote so far: {t.Yes.Count} yes, {t.No.Count} no")));
    Console.WriteLine($"vote on '{tally.Question}': yes {string.Join(", ", tally.Yes.Order())}; no {string.Join(", ", tally.No.Order())}");

    Console.WriteLine("history, as a stream:");
    await foreach (ChatLine line in members[0].Proxy<ChatRoomClient>().Chat.History())
    {
        Console.WriteLine($"  {line.From}: {line.Text}");
    }

    // The listener restarts (a deploy, a network blip) while the server and its room stay up. Members reconnect by
    // themselves and subscribe again; the server keeps its latest events (IpyRpcServerOptions.EventHistory), so each
    // first hears what was said while it was away. A subscription's Gap says when that cannot be everything.
    Task[] back = [.. members.Select(m =>
    {
        var reconnected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        m.Reconnected += () => reconnected.TrySetResult();
        return reconnected.Task;
    })];
    Console.WriteLine("the listener restarts");
    await host.DisposeAsync();
    room.Announce("said while you were away");
    host = await listenAgain();
    await Task.WhenAll(back).WaitAsync(TimeSpan.FromSeconds(30));
    await Task.Delay(300); // let the events arrive

    await members[2].DisposeAsync(); // cy leaves; the others are told why
    await Task.Delay(500);
    foreach (IpyRpcClient m in members.Take(2)) await m.DisposeAsync();
}
finally
{
    await host.DisposeAsync();
}

Console.WriteLine("room closed");
return 0;

static IpyRpcClientOptions Options(Member member) => new()
{
    Exports = [member],
    // Output of the functions this member calls: the vote's includes what each member printed when the server asked it.
    Output = (_, text) => Console.Write("  [output] " + text),
};

static async Task WaitUntil(Func<Task<bool>> condition)
{
    for (int i = 0; i < 200 && !await condition(); i++) await Task.Delay(25);
}

/// <summary>Reports handled as they arrive, in order (<see cref="Progress{T}"/> would post them to the thread pool).</summary>
internal sealed class Reports<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
