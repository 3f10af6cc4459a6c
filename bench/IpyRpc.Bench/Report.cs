using System.Text.Json.Serialization;

namespace IpyRpc.Bench;

/// <summary>One measured row.</summary>
internal sealed record BenchResult(string Scenario, string System, long PayloadBytes, int InFlight, double? P50Us, double? P99Us, double? CallsPerS, double? MbPerS)
{
    /// <summary>Which repeat of the run it comes from (1 unless <c>--repeat</c>).</summary>
    public int Run { get; init; } = 1;

    /// <summary>Serialization rows: bytes allocated per operation.</summary>
    public long? AllocatedBytes { get; init; }

    /// <summary>Pointer rows: bytes the client received (its connection and fetches from holders) per operation.</summary>
    public long? ClientBytes { get; init; }

    /// <summary>Why a row has no numbers (a peer that could not run).</summary>
    public string? Note { get; init; }
}

/// <summary>
/// A comparison against a baseline measured in the same run: <see cref="Value"/> (p50s, rates) and,
/// for latencies, <see cref="P99"/> too. With <c>--repeat N</c> they are the medians of the N runs'
/// ratios, each run's in <see cref="Runs"/>; <see cref="Met"/> judges the median. An empty <see cref="Target"/>: a ratio
/// shown for what it tells (the in-process call against its floor), with nothing to meet.
/// </summary>
internal sealed record Ratio(string Name, string Ours, string Baseline, double? Value, string Target, bool? Met)
{
    /// <summary>The same ratio of p99s, for latency ratios.</summary>
    public double? P99 { get; init; }

    /// <summary>Each run's value, with <c>--repeat</c>.</summary>
    public List<double?> Runs { get; init; } = [];
}

/// <summary>Where the numbers were taken.</summary>
internal sealed record MachineInfo(string Date, string Os, string Cpu, int Cores, string Dotnet, string Libzmq, string Mode);

/// <summary>The whole run, as written by <c>--json</c>.</summary>
internal sealed record BenchReport(MachineInfo Machine, List<BenchResult> Results, List<Ratio> Ratios);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(BenchReport))]
[JsonSerializable(typeof(Endpoints))]
[JsonSerializable(typeof(PeerResult))]
internal sealed partial class BenchReportJson : JsonSerializerContext
{
    /// <summary>The same contract on one line, for the server's READY signal.</summary>
    public static BenchReportJson SingleLine { get; } = new(new System.Text.Json.JsonSerializerOptions { PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.SnakeCaseLower });
}

/// <summary>What a Python peer prints.</summary>
internal sealed record PeerResult(double P50Us, double P99Us, double CallsPerS, string? Error);
