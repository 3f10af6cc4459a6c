using System.Text.Json.Serialization;
using Microsoft.AspNetCore.SignalR;

namespace IpyRpc.Bench;

/// <summary>The SignalR hub a user would write instead.</summary>
public sealed class AddHub : Hub
{
    /// <summary>Adds two integers.</summary>
    public int Add(int a, int b) => a + b;
}

/// <summary>The do-it-yourself REST request.</summary>
public sealed record AddRequest(int A, int B);

/// <summary>The do-it-yourself REST response.</summary>
public sealed record AddResponse(int Sum);

/// <summary>System.Text.Json source generation for the REST baseline and the serialization benchmarks.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(AddRequest))]
[JsonSerializable(typeof(AddResponse))]
[JsonSerializable(typeof(Nine))]
[JsonSerializable(typeof(double[]))]
public sealed partial class BenchJsonContext : JsonSerializerContext;
