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

    /// <summary>Builds the error for an exception a function threw, with its inner chain.</summary>
    public static RemoteError FromException(Exception e, string code = ErrorCodes.RemoteException, int depth = 0)
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
            StackTrace = e.StackTrace,
            Inner = e.InnerException is { } inner && depth < 16 ? FromException(inner, code, depth + 1) : null,
        };
    }

    /// <summary>Encodes the error in <paramref name="serialization"/>.</summary>
    public byte[] Encode(Serialization serialization)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        if (serialization == Serialization.Json)
        {
            using var writer = new Utf8JsonWriter(buffer);
            WriteJson(writer);
        }
        else
        {
            var writer = new MessagePackWriter(buffer);
            WriteMessagePack(ref writer);
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Writes the error as a MessagePack map.</summary>
    public void WriteMessagePack(ref MessagePackWriter w)
    {
        int n = 2 + (Type is null ? 0 : 1) + (StackTrace is null ? 0 : 1) + (Inner is null ? 0 : 1) + (Parameter is null ? 0 : 1);
        w.WriteMapHeader(n);
        w.WriteString("code"u8); w.Write(Code);
        w.WriteString("message"u8); w.Write(Message);
        if (Type is not null) { w.WriteString("type"u8); w.Write(Type); }
        if (StackTrace is not null) { w.WriteString("stack"u8); w.Write(StackTrace); }
        if (Parameter is not null) { w.WriteString("parameter"u8); w.Write(Parameter); }
        if (Inner is not null) { w.WriteString("inner"u8); Inner.WriteMessagePack(ref w); }
    }

    /// <summary>Writes the error as a JSON object.</summary>
    public void WriteJson(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteString("code", Code);
        w.WriteString("message", Message);
        if (Type is not null) w.WriteString("type", Type);
        if (StackTrace is not null) w.WriteString("stack", StackTrace);
        if (Parameter is not null) w.WriteString("parameter", Parameter);
        if (Inner is not null)
        {
            w.WritePropertyName("inner");
            Inner.WriteJson(w);
        }

        w.WriteEndObject();
    }

    /// <summary>Decodes an error part. A part that is not a valid error becomes a <see cref="ErrorCodes.BadMessage"/> error describing that.</summary>
    public static RemoteError Decode(ReadOnlySpan<byte> bytes, Serialization serialization)
    {
        try
        {
            if (serialization == Serialization.Json)
            {
                var reader = new Utf8JsonReader(bytes, new JsonReaderOptions { MaxDepth = 40 });
                JsonRead.Next(ref reader);
                return ReadJson(ref reader);
            }

            var r = new MessagePackReader(bytes);
            return ReadMessagePack(ref r, 0);
        }
        catch (Exception e) when (e is IpyRpcSerializationException or JsonException)
        {
            return new RemoteError { Code = ErrorCodes.BadMessage, Message = "The peer sent an error that could not be decoded: " + e.Message };
        }
    }

    private static RemoteError ReadMessagePack(ref MessagePackReader r, int depth)
    {
        if (depth > 32) throw r.Error("Error chain nested too deeply");
        int n = r.ReadMapHeader();
        string code = ErrorCodes.Internal, message = "";
        string? type = null, stack = null, parameter = null;
        RemoteError? inner = null;
        for (int i = 0; i < n; i++)
        {
            string? key = r.ReadString();
            switch (key)
            {
                case "code": code = r.ReadString() ?? code; break;
                case "message": message = r.ReadString() ?? ""; break;
                case "type": type = r.ReadString(); break;
                case "stack": stack = r.ReadString(); break;
                case "parameter": parameter = r.ReadString(); break;
                case "inner": inner = r.TryReadNil() ? null : ReadMessagePack(ref r, depth + 1); break;
                default: r.Skip(); break;
            }
        }

        return new RemoteError { Code = code, Message = message, Type = type, StackTrace = stack, Parameter = parameter, Inner = inner };
    }

    private static RemoteError ReadJson(ref Utf8JsonReader r)
    {
        JsonRead.Expect(ref r, JsonTokenType.StartObject, "an error object");
        string code = ErrorCodes.Internal, message = "";
        string? type = null, stack = null, parameter = null;
        RemoteError? inner = null;
        while (true)
        {
            JsonRead.Next(ref r);
            if (r.TokenType == JsonTokenType.EndObject) break;
            string key = r.GetString()!;
            JsonRead.Next(ref r);
            switch (key)
            {
                case "code": code = r.GetString() ?? code; break;
                case "message": message = r.GetString() ?? ""; break;
                case "type": type = r.GetString(); break;
                case "stack": stack = r.GetString(); break;
                case "parameter": parameter = r.GetString(); break;
                case "inner": inner = r.TokenType == JsonTokenType.Null ? null : ReadJson(ref r); break;
                default: r.Skip(); break;
            }
        }

        return new RemoteError { Code = code, Message = message, Type = type, StackTrace = stack, Parameter = parameter, Inner = inner };
    }
}
