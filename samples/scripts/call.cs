#!/usr/bin/env -S dotnet run
#:project ../../runtime/IpyRpc.Http/IpyRpc.Http.csproj
#:project ../../runtime/IpyRpc.ZeroMq/IpyRpc.ZeroMq.csproj
#:property PublishAot=false

// A one-file C# script (.NET 10 file-based app) that connects, shows a function's remote help, and calls it:
//   dotnet run samples/scripts/call.cs -- http://127.0.0.1:7777 add 2 3
//   dotnet run samples/scripts/call.cs -- tcp://127.0.0.1:5555 print_lines 3
// Arguments are JSON values (2, 2.5, true, "text", [1,2]); anything that is not JSON is a string.
using System.Text.Json;
using IpyRpc;
using IpyRpc.Http;
using IpyRpc.ZeroMq;

if (args.Length < 2)
{
    Console.Error.WriteLine("usage: dotnet run call.cs -- ADDRESS FUNCTION [ARGS...]");
    return 2;
}

string address = args[0], function = args[1];
await using IpyRpcClient client = address.StartsWith("tcp://") || address.StartsWith("ipc://")
    ? await IpyRpcZeroMqClient.ConnectAsync(address)
    : await IpyRpcHttpClient.ConnectAsync(address);

Console.WriteLine(client.Help(function));
object?[] arguments = [.. args.Skip(2).Select(Parse)];
try
{
    object? result = await client.CallAsync<object?>(function, arguments);   // remote output prints here as it comes
    Console.WriteLine("=> " + JsonSerializer.Serialize(result));
    return 0;
}
catch (IpyRpcException e)
{
    Console.Error.WriteLine(e.Message);
    return 1;
}

static object? Parse(string text)
{
    try
    {
        return Plain(JsonDocument.Parse(text).RootElement);
    }
    catch (JsonException)
    {
        return text;
    }
}

// JSON as the plain values IpyRpc sends dynamically: numbers, strings, booleans, null, lists, maps.
static object? Plain(JsonElement e) => e.ValueKind switch
{
    JsonValueKind.Number => e.TryGetInt64(out long l) ? (object)l : e.GetDouble(),
    JsonValueKind.String => e.GetString(),
    JsonValueKind.True => true,
    JsonValueKind.False => false,
    JsonValueKind.Array => e.EnumerateArray().Select(Plain).ToList(),
    JsonValueKind.Object => e.EnumerateObject().ToDictionary(p => p.Name, p => Plain(p.Value)),
    _ => null,
};
