using IpyRpc;
using IpyRpc.Http;
using IpyRpc.ZeroMq;
using SchemaClient.Calculator;
using SchemaClient.Chat;
using SchemaClient.Quickstart;

// dotnet run --project samples/SchemaClient -- quickstart URL    every Quickstart function through QuickstartClient
// dotnet run --project samples/SchemaClient -- calc URL          the calculator's functions through CalcClient
// dotnet run --project samples/SchemaClient -- chat URL          the chat room (samples/Chat -- serve): its typed events (ChatEvents)
//                                                                and functions (ChatClient)
// URL: http://host:port or tcp://host:port. The clients were generated from schema files alone
// (Quickstart.ipyrpc.json, Calc.ipyrpc.json, Chat.ipyrpc.json); this project has no reference to any server.
if (args.Length != 2 || args[0] is not ("quickstart" or "calc" or "chat"))
{
    Console.Error.WriteLine("usage: SchemaClient (quickstart|calc|chat) URL");
    return 2;
}

string url = args[1];
// The room learns a member's nickname by calling it back, so the chat mode exports one.
var options = new IpyRpcClientOptions { Exports = args[0] == "chat" ? [new ChatMember()] : [] };
await using IpyRpcClient client = url.StartsWith("tcp://", StringComparison.Ordinal)
    ? await IpyRpcZeroMqClient.ConnectAsync(url, options)
    : await IpyRpcHttpClient.ConnectAsync(url, options); // a WebSocket, which events and calls back need
Console.WriteLine($"connected to {client.ServerAgent}");

if (args[0] == "quickstart")
{
    QuickstartClient demo = client.Proxy<QuickstartClient>();
    Console.WriteLine($"add(40, 2) = {await demo.Add(40, 2)}");
    Console.WriteLine($"echo = {await demo.Echo("from a schema")}");
    Console.WriteLine($"mean_binary = {await demo.MeanBinary([1.5, 2.5, 3.5, 4.5])}");
    Console.WriteLine($"mean_json = {await demo.MeanJson([1.0, 2.0, 6.0])}"); // in JSON, which the server says is all it accepts
    int printed = await demo.PrintLines(2, new CallOptions { Output = (stream, text) => Console.Write($"[remote {stream}] {text}") });
    Console.WriteLine($"print_lines = {printed}");
    try
    {
        await demo.Fail("schema clients see remote exceptions too");
    }
    catch (RemoteException e)
    {
        Console.WriteLine($"fail raised {e.RemoteType}: {e.RemoteMessage}");
    }

    IpyRpcJob<int> job = await client.SubmitAsync(() => demo.Add(1, 2));
    Console.WriteLine($"submitted add = {await job}");
}
else if (args[0] == "chat")
{
    // Typed events from the schema: ChatEvents.Chat.Said is an IpyRpcEvent<ChatLine>, as the server declared it.
    var heard = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
    await using IpyRpcSubscription said = await client.SubscribeAsync(ChatEvents.Chat.Said, line =>
    {
        Console.WriteLine($"heard {line.From}: {line.Text}");
        heard.TrySetResult();
    });
    ChatClient room = client.Proxy<ChatClient>();
    // The room asks a member its nickname as it connects: it is a member once it has (and its lines carry the name).
    for (int i = 0; i < 200 && !(await room.Chat.Members()).Contains("schema-client"); i++) await Task.Delay(25);
    int queued = await room.Chat.Say("hello from a schema client");
    Console.WriteLine($"chat.say queued the line for {queued} subscriber(s)");
    await heard.Task.WaitAsync(TimeSpan.FromSeconds(10));
    await foreach (ChatLine line in room.Chat.History()) Console.WriteLine($"history {line.From}: {line.Text}");
}
else
{
    CalcClient calc = client.Proxy<CalcClient>();
    Console.WriteLine($"calc.add(2, 3) = {await calc.Calc.Add(2, 3)}");
    Summary summary = await calc.Calc.Summarize([1, 2, 4], Rounding.Down, new CallOptions { Output = (_, text) => Console.Write($"[remote] {text}") });
    Console.WriteLine($"calc.summarize = {summary}");
    Summary nearest = await calc.Calc.Summarize([1, 2, 4]);
    Console.WriteLine($"calc.summarize default rounding: mean {nearest.Mean}");
    var counted = new List<int>();
    await foreach (int n in calc.Calc.Count(4)) counted.Add(n);
    Console.WriteLine($"calc.count = {string.Join(",", counted)}");
    Dictionary<string, Operation[]> operations = await calc.Calc.Operations();
    foreach ((string kind, Operation[] ops) in operations.OrderBy(p => p.Key))
    {
        Console.WriteLine($"operations[{kind}] = {string.Join(",", ops.Select(o => $"{o.Function}:{o.Kind}"))}");
    }

    try
    {
        await calc.Calc.Summarize([]);
    }
    catch (RemoteException e)
    {
        Console.WriteLine($"calc.summarize([]) raised {e.RemoteType}");
    }
}

return 0;

/// <summary>What the chat room calls back on this client when it joins.</summary>
internal sealed class ChatMember
{
    /// <summary>This member's nickname.</summary>
    [IpyRpcExport("member.nickname")]
    public string Nickname() => "schema-client";
}
