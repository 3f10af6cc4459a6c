using System.Buffers;
using System.Globalization;
using System.Text.Json;
using IpyRpc.Formatting;
using IpyRpc.Formatting.Json;
using IpyRpc.MessagePack;

namespace IpyRpc.Jobs;

/// <summary>
/// Jobs as plain maps: the job info that <c>submit</c>, <c>status</c> and <c>list</c> answer with
/// (field names in docs/PROTOCOL.md), and the request and outcome durable queues store. Maps go
/// through the dynamic formatter, so one shape serves MessagePack and JSON alike.
/// </summary>
public static class JobCodec
{
    /// <summary>The job info map the wire carries.</summary>
    public static Dictionary<string, object?> ToMap(JobInfo info)
    {
        var map = new Dictionary<string, object?>(16)
        {
            ["id"] = info.Id,
            ["function"] = info.Function,
            ["queue"] = info.Queue,
            ["state"] = info.State.WireName(),
            ["created_at"] = Time(info.CreatedAt),
            ["started_at"] = Time(info.StartedAt),
            ["completed_at"] = Time(info.CompletedAt),
            ["deadline"] = Time(info.Deadline),
            ["attempts"] = (long)info.Attempts,
            ["worker"] = info.Worker,
            ["detached"] = info.Detached,
            ["owner"] = info.Owner,
            ["last_seq"] = info.LastSequence,
            ["result_released"] = info.ResultReleased,
            ["retained_bytes"] = info.RetainedBytes,
        };
        if (info.Outcome?.Error is { } error) map["error"] = error.ToMap();
        if (info.Output.Count > 0)
        {
            map["output"] = info.Output.Select(o => (object?)new Dictionary<string, object?> { ["stream"] = o.Stream == OutputStream.Stderr ? "stderr" : "stdout", ["text"] = o.Text }).ToArray();
        }

        return map;
    }

    /// <summary>Reads a job info map; throws <see cref="IpyRpcSerializationException"/> when it is not one.</summary>
    public static JobInfo FromMap(object? value)
    {
        if (value is not Dictionary<string, object?> map || map.GetValueOrDefault("id") is not string id || map.GetValueOrDefault("function") is not string function)
        {
            throw new IpyRpcSerializationException("A job info must be a map with at least \"id\" and \"function\"");
        }

        JobState state = JobStates.Parse(map.GetValueOrDefault("state") as string) ?? throw new IpyRpcSerializationException($"Job {id} has an unknown state \"{map.GetValueOrDefault("state")}\"");
        RemoteError? error = RemoteError.FromMap(map.GetValueOrDefault("error"));
        return new JobInfo
        {
            Id = id,
            Function = function,
            Queue = map.GetValueOrDefault("queue") as string ?? "",
            State = state,
            CreatedAt = ParseTime(map.GetValueOrDefault("created_at")) ?? default,
            StartedAt = ParseTime(map.GetValueOrDefault("started_at")),
            CompletedAt = ParseTime(map.GetValueOrDefault("completed_at")),
            Deadline = ParseTime(map.GetValueOrDefault("deadline")),
            Attempts = (int)(map.GetValueOrDefault("attempts") as long? ?? 0),
            Worker = map.GetValueOrDefault("worker") as string,
            Detached = map.GetValueOrDefault("detached") as bool? ?? false,
            Owner = map.GetValueOrDefault("owner") as string,
            LastSequence = map.GetValueOrDefault("last_seq") as long? ?? 0,
            ResultReleased = map.GetValueOrDefault("result_released") as bool? ?? false,
            RetainedBytes = map.GetValueOrDefault("retained_bytes") as long? ?? 0,
            Outcome = state.IsFinished() ? new JobOutcome { State = state, Error = error } : null,
            Output = map.GetValueOrDefault("output") is object?[] chunks
                ? [.. chunks.OfType<Dictionary<string, object?>>().Select(c => new OutputChunk(c.GetValueOrDefault("stream") as string == "stderr" ? OutputStream.Stderr : OutputStream.Stdout, c.GetValueOrDefault("text") as string ?? ""))]
                : [],
        };
    }

    /// <summary>Encodes plain data (maps, arrays, strings, numbers) in <paramref name="serialization"/>.</summary>
    public static byte[] Encode(object? value, Serialization serialization)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        if (serialization == Serialization.Json)
        {
            using var w = new Utf8JsonWriter(buffer, global::IpyRpc.Formatting.Json.JsonWire.Options);
            Formatters.Object.Write(w, value);
        }
        else
        {
            var w = new MessagePackWriter(buffer);
            Formatters.Object.Write(ref w, value);
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Decodes plain data written by <see cref="Encode"/> (or any peer).</summary>
    public static object? Decode(ReadOnlySpan<byte> bytes, Serialization serialization)
    {
        if (bytes.IsEmpty) return null;
        if (serialization == Serialization.Json)
        {
            var reader = new Utf8JsonReader(bytes, new JsonReaderOptions { MaxDepth = 64 });
            JsonRead.Next(ref reader);
            return Formatters.Object.Read(ref reader);
        }

        var r = new MessagePackReader(bytes);
        return Formatters.Object.Read(ref r);
    }

    /// <summary>The stored form of a request's metadata (everything but the id and the arguments), as MessagePack.</summary>
    public static byte[] EncodeRequest(JobRequest request) => Encode(new Dictionary<string, object?>
    {
        ["function"] = request.Function,
        ["in"] = SerializationName(request.InputSerialization),
        ["out"] = SerializationName(request.OutputSerialization),
        ["trace"] = request.TraceParent,
        ["deadline"] = request.Deadline?.ToUnixTimeMilliseconds(),
        ["created"] = request.CreatedAt.ToUnixTimeMilliseconds(),
        ["detached"] = request.Detached,
        ["pointer"] = request.ReturnPointer,
        ["ttl_ms"] = request.PointerTimeToLive is { } ttl ? (long)ttl.TotalMilliseconds : null,
        ["caller"] = request.Caller is { } caller ? new Dictionary<string, object?>
        {
            ["conn"] = caller.ConnectionId,
            ["transport"] = caller.Transport,
            ["address"] = caller.RemoteAddress,
            ["auth"] = caller.Principal.Identity?.AuthenticationType,
            ["name"] = caller.Name,
            ["claims"] = caller.Principal.Claims.Select(c => (object?)new object?[] { c.Type, c.Value }).ToArray(),
        } : null,
    }, Serialization.MessagePack);

    /// <summary>Reads a request stored by <see cref="EncodeRequest"/>.</summary>
    public static JobRequest DecodeRequest(string id, ReadOnlySpan<byte> metadata, ReadOnlyMemory<byte> arguments)
    {
        var map = Decode(metadata, Serialization.MessagePack) as Dictionary<string, object?> ?? throw new IpyRpcSerializationException($"Job {id} has a malformed stored request");
        return new JobRequest
        {
            Id = id,
            Function = map.GetValueOrDefault("function") as string ?? throw new IpyRpcSerializationException($"Job {id} has no function"),
            InputSerialization = ParseSerialization(map.GetValueOrDefault("in")),
            OutputSerialization = ParseSerialization(map.GetValueOrDefault("out")),
            Deadline = map.GetValueOrDefault("deadline") is long d ? DateTimeOffset.FromUnixTimeMilliseconds(d) : null,
            CreatedAt = map.GetValueOrDefault("created") is long c ? DateTimeOffset.FromUnixTimeMilliseconds(c) : default,
            Detached = map.GetValueOrDefault("detached") as bool? ?? false,
            Caller = map.GetValueOrDefault("caller") is Dictionary<string, object?> caller ? DecodeCaller(caller) : null,
            TraceParent = map.GetValueOrDefault("trace") as string,
            ReturnPointer = map.GetValueOrDefault("pointer") as bool? ?? false,
            PointerTimeToLive = map.GetValueOrDefault("ttl_ms") is long ttl ? (ttl < 0 ? Timeout.InfiniteTimeSpan : TimeSpan.FromMilliseconds(ttl)) : null,
            Arguments = arguments,
        };
    }

    private static JobCaller DecodeCaller(Dictionary<string, object?> c)
    {
        var claims = new List<System.Security.Claims.Claim>();
        if (c.GetValueOrDefault("claims") is object?[] pairs)
        {
            foreach (object? pair in pairs)
            {
                if (pair is object?[] { Length: 2 } tv && tv[0] is string type && tv[1] is string value) claims.Add(new System.Security.Claims.Claim(type, value));
            }
        }

        // The claims are those the server recorded; a worker trusts them as it trusts the queue.
        var identity = new System.Security.Claims.ClaimsIdentity(claims, c.GetValueOrDefault("auth") as string);
        return new JobCaller(c.GetValueOrDefault("conn") as string ?? "", c.GetValueOrDefault("transport") as string ?? "", c.GetValueOrDefault("address") as string, new System.Security.Claims.ClaimsPrincipal(identity));
    }

    /// <summary>The stored form of an outcome, as MessagePack: state, result serialization, result bytes, error.</summary>
    public static byte[] EncodeOutcome(JobOutcome outcome) => Encode(new Dictionary<string, object?>
    {
        ["state"] = outcome.State.WireName(),
        ["ser"] = SerializationName(outcome.ResultSerialization),
        ["result"] = outcome.Error is null ? outcome.Result.ToArray() : null,
        ["error"] = outcome.Error?.ToMap(),
    }, Serialization.MessagePack);

    /// <summary>Reads an outcome stored by <see cref="EncodeOutcome"/>.</summary>
    public static JobOutcome DecodeOutcome(ReadOnlySpan<byte> bytes)
    {
        var map = Decode(bytes, Serialization.MessagePack) as Dictionary<string, object?> ?? throw new IpyRpcSerializationException("A stored outcome is malformed");
        return new JobOutcome
        {
            State = JobStates.Parse(map.GetValueOrDefault("state") as string) ?? JobState.Failed,
            ResultSerialization = ParseSerialization(map.GetValueOrDefault("ser")),
            Result = map.GetValueOrDefault("result") as byte[] ?? ReadOnlyMemory<byte>.Empty,
            Error = RemoteError.FromMap(map.GetValueOrDefault("error")),
        };
    }

    private static string SerializationName(Serialization s) => s == Serialization.Json ? "json" : "msgpack";

    private static Serialization ParseSerialization(object? name) => name as string == "json" ? Serialization.Json : Serialization.MessagePack;

    private static string? Time(DateTimeOffset? t) => t?.UtcDateTime.ToString("O", CultureInfo.InvariantCulture);

    private static DateTimeOffset? ParseTime(object? value) => value switch
    {
        string s when DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out DateTimeOffset t) => t,
        DateTime dt => new DateTimeOffset(DateTime.SpecifyKind(dt, DateTimeKind.Utc)),
        _ => null,
    };
}
