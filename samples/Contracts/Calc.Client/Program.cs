using Calc.Contracts;
using IpyRpc;
using IpyRpc.Http;
using IpyRpc.ZeroMq;

// dotnet run --project samples/Contracts/Calc.Client -- ADDRESS
// ADDRESS is the server's http://... address or its tcp://... ZeroMQ endpoint.
if (args.Length != 1)
{
    Console.Error.WriteLine("usage: Calc.Client http://HOST:PORT/ | tcp://HOST:PORT");
    return 2;
}

string address = args[0];
var options = new IpyRpcClientOptions { Output = (stream, text) => Console.Write($"[server {stream}] {text}") };
await using IpyRpcClient client = address.StartsWith("tcp://", StringComparison.Ordinal)
    ? await IpyRpcZeroMqClient.ConnectAsync(address, options)
    : await IpyRpcHttpClient.ConnectAsync(address, options);
Console.WriteLine($"connected over {(address.StartsWith("tcp://", StringComparison.Ordinal) ? "ZeroMQ" : "HTTP")}");

// The proxy generated from the contract: IntelliSense shows ICalculator's docs on every method.
CalculatorClient calc = client.Proxy<CalculatorClient>();
Console.WriteLine($"add: {await calc.Calc.Add(20, 22)}");

Summary summary = await calc.Calc.SummarizeAsync([1.5, 2.25, 9.125], Rounding.Down);
Console.WriteLine($"summary: {summary}");

var counted = new List<int>();
await foreach (int n in calc.Calc.CountAsync(5)) counted.Add(n);
Console.WriteLine($"count: {string.Join(" ", counted)}");

foreach ((string kind, Operation[] operations) in (await calc.Calc.Operations()).OrderBy(p => p.Key, StringComparer.Ordinal))
{
    Console.WriteLine($"{kind}: {string.Join(", ", operations.Select(o => $"{o.Function} ({o.Kind})"))}");
}

// A remote failure arrives as a RemoteException naming the type the server threw.
try
{
    await calc.Calc.SummarizeAsync([]);
}
catch (RemoteException e)
{
    Console.WriteLine($"empty series: {e.RemoteType}: {e.RemoteMessage}");
}

// The records have formatters in the contracts too, so untyped calls read them as well.
Summary untyped = await client.CallAsync<Summary>("calc.summarize", new double[] { 4, 6 });
Console.WriteLine($"untyped: {untyped.Mean}");
return 0;
