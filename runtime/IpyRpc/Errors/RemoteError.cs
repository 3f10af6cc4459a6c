using System.Buffers;
using System.Text.Json;
using IpyRpc.Formatting;
using IpyRpc.Formatting.Json;
using IpyRpc.MessagePack;
using IpyRpc.Protocol;

namespace IpyRpc;

/// <summary>
/// A failure as it travels: a code, a message, and for exceptions the remote type name, stack
/// trace and inner chain. Plain data: no exception type is ever created from a name on the wire.
/// </summary>
public sealed record RemoteError
{
    /// <summary>One of <see cref="ErrorCodes"/>.</summary>
    public required string Code { get; init; }

    /// <summary>What went wrong, for a person.</summary>
    public required string Message { get; init; }

    /// <summary>The full name of the remote exception type, when an exception caused this.</summary>
    public string? Type { get; init; }

    /// <summary>The remote stack trace.</summary>
    public string? StackTrace { get; init; }

    /// <summary>The remote inner exception, if any.</summary>
    public RemoteError? Inner { get; init; }

    /// <summary>The parameter an argument error is about.</summary>
    public string? Parameter { get; init; }

    /// <summary>For <see cref="ErrorCodes.Unavailable"/>: the id of the job the call may have been queued as before the queue's store went out of reach.</summary>
    public string? Job { get; init; }

    /// <summary>Public properties of the remote exception's own type (not <see cref="Exception"/>'s), as plain data: what a caller can act on.</summary>
    public IReadOnlyDictionary<string, object?>? Data { get; init; }

    /// <summary>Builds the error for an exception a function threw, with its inner chain, keeping as much as <paramref name="detail"/> allows.</summary>
    public static RemoteError FromException(Exception e, string code = ErrorCodes.RemoteException, ErrorDetail detail = ErrorDetail.StackWithoutPaths, int depth = 0)
    {
        if (e is AggregateException { InnerExceptions.Count: 1 } agg)
        {
            e = agg.InnerExceptions[0];
        }

        return new RemoteError
        {
            Code = code,
            Message = e.Message,
            Type = e.GetType().FullName,
            StackTrace = detail switch
            {
                ErrorDetail.Full => EndingAtTheFunction(e.StackTrace),
                ErrorDetail.StackWithoutPaths => WithoutPaths(EndingAtTheFunction(e.StackTrace)),
                _ => null,
            },
            Data = ExceptionData.Of(e),
            Inner = e.InnerException is { } inner && depth < 16 ? FromException(inner, code, detail, depth + 1) : null,
        };
    }

    /// <summary>
    /// A function's stack trace without the frames that called it: the generated dispatch (<c>*_IpyRpcDispatch</c>),
    /// IpyRpc's invocation and job runner, and the thread pool under them, which are the same for every call and say
    /// nothing of the failure. A stack that starts in them (the arguments did not bind) is kept whole.
    /// </summary>
    public static string? EndingAtTheFunction(string? stack)
    {
        if (stack is null) return null;
        int caller = -1;
        foreach (string frame in CallerFrames)
        {
            int at = stack.IndexOf(frame, StringComparison.Ordinal);
            if (at >= 0 && (caller < 0 || at < caller)) caller = at;
        }

        if (caller < 0) return stack;
        int line = stack.LastIndexOf('\n', caller);
        if (line < 0) return stack; // the first frame is the dispatch's own
        string kept = stack[..line].TrimEnd();
        const string Seam = "--- End of stack trace from previous location ---";
        while (kept.EndsWith(Seam, StringComparison.Ordinal)) kept = kept[..^Seam.Length].TrimEnd();
        return kept.Length > 0 ? kept : stack;
    }

    // What runs every function: the generated dispatch, and the runtime's types that call it (an async function's
    // stack shows the frames that awaited it, which are these, not the dispatch).
    private static readonly string[] CallerFrames = ["_IpyRpcDispatch.", " at IpyRpc.IpyRpcInvocation.", " at IpyRpc.FunctionRegistry."];

    /// <summary>A stack trace without the " in /path/File.cs:line 12" each frame carries when the build recorded sources.</summary>
    public static string? WithoutPaths(string? stack)
    {
        if (stack is null) return null;
        var lines = stack.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            int at = lines[i].LastIndexOf(" in ", StringComparison.Ordinal);
            if (at > 0 && lines[i].IndexOf(":line ", at, StringComparison.Ordinal) > at) lines[i] = lines[i][..at].TrimEnd('\r') + (lines[i].EndsWith('\r') ? "\r" : "");
        }

        return string.Join('\n', lines);
    }

    /// <summary>Encodes the error in <paramref name="serialization"/>.</summary>
    public byte[] Encode(Serialization serialization)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        if (serialization == Serialization.Json)
        {
            using var writer = new Utf8JsonWriter(buffer, global::IpyRpc.Formatting.Json.JsonWire.Options);
            WriteJson(writer);
        }
        else
        {
            var writer = new MessagePackWriter(buffer);
            Formatters.Object.Write(ref writer, ToMap());
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Writes the error as a JSON object.</summary>
    public void WriteJson(Utf8JsonWriter w) => Formatters.Object.Write(w, ToMap());

    /// <summary>The error as the map the wire carries (<c>code</c>, <c>message</c>, <c>type</c>, <c>stack</c>, <c>parameter</c>, <c>job</c>, <c>inner</c>).</summary>
    public Dictionary<string, object?> ToMap()
    {
        var map = new Dictionary<string, object?>(6) { ["code"] = Code, ["message"] = Message };
        if (Type is not null) map["type"] = Type;
        if (StackTrace is not null) map["stack"] = StackTrace;
        if (Parameter is not null) map["parameter"] = Parameter;
        if (Job is not null) map["job"] = Job;
        if (Inner is not null) map["inner"] = Inner.ToMap();
        if (Data is { Count: > 0 }) map["properties"] = Data;
        return map;
    }

    /// <summary>Reads an error from a decoded map; <see langword="null"/> when <paramref name="value"/> is not one.</summary>
    public static RemoteError? FromMap(object? value, int depth = 0)
    {
        if (value is not Dictionary<string, object?> map || depth > 32) return null;
        return new RemoteError
        {
            Code = map.GetValueOrDefault("code") as string ?? ErrorCodes.Internal,
            Message = map.GetValueOrDefault("message") as string ?? "",
            Type = map.GetValueOrDefault("type") as string,
            StackTrace = map.GetValueOrDefault("stack") as string,
            Parameter = map.GetValueOrDefault("parameter") as string,
            Job = map.GetValueOrDefault("job") as string,
            Data = map.GetValueOrDefault("properties") as Dictionary<string, object?>,
            Inner = FromMap(map.GetValueOrDefault("inner"), depth + 1),
        };
    }

    /// <summary>Decodes an error part. A part that is not a valid error becomes a <see cref="ErrorCodes.BadMessage"/> error describing that.</summary>
    public static RemoteError Decode(ReadOnlySpan<byte> bytes, Serialization serialization)
    {
        try
        {
            object? value;
            if (serialization == Serialization.Json)
            {
                var reader = new Utf8JsonReader(bytes, new JsonReaderOptions { MaxDepth = 40 });
                JsonRead.Next(ref reader);
                value = Formatters.Object.Read(ref reader);
            }
            else
            {
                var r = new MessagePackReader(bytes) { MaxDepth = 40 };
                value = Formatters.Object.Read(ref r);
            }

            return FromMap(value) ?? throw new IpyRpcSerializationException("An error must be a map with a code and a message");
        }
        catch (Exception e) when (e is IpyRpcSerializationException or JsonException)
        {
            return new RemoteError { Code = ErrorCodes.BadMessage, Message = "The peer sent an error that could not be decoded: " + e.Message };
        }
    }
}
