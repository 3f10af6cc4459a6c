using System.Globalization;
using System.Text.Json;
using IpyRpc.Formatting;
using IpyRpc.Jobs;
using IpyRpc.MessagePack;

namespace IpyRpc;

/// <summary>Where a holder serves its data: one transport's address.</summary>
/// <param name="Protocol"><c>zmq</c>, <c>http</c> or <c>inproc</c> (the holder's own process only).</param>
/// <param name="Host">The host name or address to connect to.</param>
/// <param name="Port">The TCP port (0 for <c>inproc</c>).</param>
/// <param name="BasePath">For <c>http</c>: the path of the binary endpoint (<c>/ipyrpc</c> by default); otherwise empty.</param>
public sealed record PointerEndpoint(string Protocol, string Host, int Port, string BasePath = "")
{
    /// <summary>The protocol name of the in-process endpoint every holder has.</summary>
    public const string InProcess = "inproc";

    /// <inheritdoc/>
    public override string ToString() => Protocol == InProcess ? "inproc" : $"{Protocol}://{Host}:{Port}{BasePath}";
}

/// <summary>
/// A result that stayed where it was computed: the address of its holder (the server or worker
/// process that ran the function), its path there, and the secret key that lets whoever has the
/// pointer read it. Fetch it whole or in part with <see cref="IpyRpcPeer.FetchAsync{T}(RemotePointer{T}, CancellationToken)"/>,
/// pass it as an argument where a function takes the value (it is resolved where that function
/// runs), or release it. On the wire it is the map of docs/POINTERS.md (<c>type: ipyrpc_data_pointer</c>).
/// </summary>
/// <remarks>
/// The secret key is a bearer capability, like a pre-signed URL: anyone who has the pointer can
/// read and release the value until it expires. <see cref="ToString"/> leaves the key out.
/// </remarks>
[IpyRpcFormatter(typeof(RemotePointerMapFormatter))] // a function may take pointers themselves: as their wire map
public class RemotePointer
{
    /// <summary>The <c>type</c> field that marks a map as a pointer.</summary>
    public const string TypeName = "ipyrpc_data_pointer";

    /// <summary>The protocol to fetch it with: <c>zmq</c>, <c>http</c> or <c>inproc</c>.</summary>
    public required string Protocol { get; init; }

    /// <summary>The holder's host.</summary>
    public required string Host { get; init; }

    /// <summary>The holder's port.</summary>
    public int Port { get; init; }

    /// <summary>The value's path at the holder: <c>{base}/data/{id}</c>.</summary>
    public required string Path { get; init; }

    /// <summary>The key that must accompany every fetch, resolve and release (32 hex digits: 128 random bits).</summary>
    public required string SecretKey { get; init; }

    /// <summary>The holder's data store id (32 hex digits): a process that holds it resolves the pointer without moving a byte.</summary>
    public required string Holder { get; init; }

    /// <summary>The value's .NET type as descriptors show it (<c>double[,]</c>, <c>List&lt;int&gt;</c>).</summary>
    public string? ValueType { get; init; }

    /// <summary>The value's shape: the lengths of an array's dimensions, or a list's or byte array's length; <see langword="null"/> for other values.</summary>
    public IReadOnlyList<long>? Shape { get; init; }

    /// <summary>The value's size in bytes (raw data for numeric arrays, the MessagePack encoding otherwise).</summary>
    public long Bytes { get; init; }

    /// <summary>When the holder drops it; <see langword="null"/>: it stays until released or evicted.</summary>
    public DateTimeOffset? ExpiresAt { get; init; }

    /// <summary>Other addresses the holder serves it at (another transport of the same process).</summary>
    public IReadOnlyList<PointerEndpoint> Alternates { get; init; } = [];

    /// <summary>
    /// The holder's seal over the pointer's addresses (32 hex digits), under the key of the job queue it works beside: the
    /// servers and workers of the same deployment connect to the holder it names only when it is right (docs/SECURITY.md).
    /// <see langword="null"/> for a pointer made by a holder without a queue (a client's exports).
    /// </summary>
    public string? Seal { get; init; }

    /// <summary>The value's id at its holder (the last segment of <see cref="Path"/>).</summary>
    public string Id => Path[(Path.LastIndexOf('/') + 1)..];

    /// <summary>The number of rows (or items) a partial fetch can select from, when the value has a shape.</summary>
    public long? Length => Shape is { Count: > 0 } s ? s[0] : null;

    /// <summary>The address in the pointer's main fields.</summary>
    public PointerEndpoint Endpoint => new(Protocol, Host, Port, BasePath);

    internal string BasePath
    {
        get
        {
            int at = Path.LastIndexOf("/data/", StringComparison.Ordinal);
            return at <= 0 ? "" : Path[..at];
        }
    }

    /// <summary>The same pointer, typed as pointing to a <typeparamref name="T"/>.</summary>
    public RemotePointer<T> As<T>() => this as RemotePointer<T> ?? new RemotePointer<T>
    {
        Protocol = Protocol, Host = Host, Port = Port, Path = Path, SecretKey = SecretKey, Holder = Holder,
        ValueType = ValueType, Shape = Shape, Bytes = Bytes, ExpiresAt = ExpiresAt, Alternates = Alternates, Seal = Seal,
    };

    /// <inheritdoc/>
    public override string ToString()
    {
        string shape = Shape is null ? "" : "[" + string.Join(", ", Shape) + "]";
        return Protocol == PointerEndpoint.InProcess
            ? $"{ValueType ?? "value"}{shape} ({Bytes} bytes) at inproc:{Path}"
            : $"{ValueType ?? "value"}{shape} ({Bytes} bytes) at {Protocol}://{Host}:{Port}{Path}";
    }

    /// <summary>The wire map.</summary>
    public Dictionary<string, object?> ToMap()
    {
        var map = new Dictionary<string, object?>(14)
        {
            ["type"] = TypeName,
            ["host"] = Host,
            ["protocol"] = Protocol,
            ["path"] = Path,
            ["port"] = (long)Port,
            ["secret_key"] = SecretKey,
            ["holder"] = Holder,
            ["value_type"] = ValueType,
            ["shape"] = Shape?.Select(static s => (object?)s).ToArray(),
            ["bytes"] = Bytes,
            ["expires_at"] = ExpiresAt?.ToUnixTimeMilliseconds(),
        };
        if (Alternates.Count > 0)
        {
            map["alternates"] = Alternates.Select(static e => (object?)new Dictionary<string, object?>
            {
                ["protocol"] = e.Protocol,
                ["host"] = e.Host,
                ["port"] = (long)e.Port,
                ["path"] = e.BasePath,
            }).ToArray();
        }

        if (Seal is not null) map["seal"] = Seal;
        return map;
    }

    // More addresses than any holder serves: a pointer naming more is refused, rather than tried address by address.
    private const int MaxAlternates = 16;

    /// <summary>Reads the wire map (as plain data); <see langword="null"/> when it is not a pointer.</summary>
    /// <exception cref="IpyRpcSerializationException">It says it is a pointer but a field is missing or of the wrong type.</exception>
    public static RemotePointer? FromMap(object? plain)
    {
        if (plain is not Dictionary<string, object?> map || map.GetValueOrDefault("type") as string != TypeName) return null;
        string Text(string field) => map.GetValueOrDefault(field) as string is { Length: > 0 } s ? s
            : throw new IpyRpcSerializationException($"A data pointer needs the text field \"{field}\".");
        long Number(string field) => map.GetValueOrDefault(field) switch
        {
            long l => l,
            ulong u when u <= long.MaxValue => (long)u,
            double d when d == Math.Floor(d) => (long)d,
            null => 0,
            var other => throw new IpyRpcSerializationException($"The field \"{field}\" of a data pointer must be a whole number, not {other.GetType().Name}."),
        };

        string protocol = Text("protocol");
        if (map.GetValueOrDefault("alternates") is object?[] { Length: > MaxAlternates } many)
        {
            throw new IpyRpcSerializationException($"A data pointer names at most {MaxAlternates} alternates (a holder serves a few transports), not {many.Length}.");
        }

        return new RemotePointer
        {
            Protocol = protocol,
            Host = protocol == PointerEndpoint.InProcess ? map.GetValueOrDefault("host") as string ?? "" : Text("host"),
            Port = checked((int)Number("port")),
            Path = Text("path"),
            SecretKey = Text("secret_key"),
            Holder = Text("holder"),
            ValueType = map.GetValueOrDefault("value_type") as string,
            Shape = map.GetValueOrDefault("shape") is object?[] shape ? [.. shape.Select(s => s is long l ? l : Convert.ToInt64(s, CultureInfo.InvariantCulture))] : null,
            Bytes = Number("bytes"),
            ExpiresAt = map.GetValueOrDefault("expires_at") is long ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : null,
            Alternates = map.GetValueOrDefault("alternates") is object?[] alternates
                ? [.. alternates.OfType<Dictionary<string, object?>>().Select(a => new PointerEndpoint(
                    a.GetValueOrDefault("protocol") as string ?? "", a.GetValueOrDefault("host") as string ?? "",
                    a.GetValueOrDefault("port") is long p ? (int)p : 0, a.GetValueOrDefault("path") as string ?? ""))]
                : [],
            Seal = map.GetValueOrDefault("seal") as string,
        };
    }

    /// <summary>
    /// Whether encoded bytes are a pointer map: a cheap look for its <c>type</c> key (every IpyRpc holder writes it
    /// first; other writers may put it anywhere), then a full read.
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> bytes, Serialization serialization, out RemotePointer? pointer)
    {
        pointer = null;
        if (!LooksLikePointer(bytes, serialization)) return false;
        try
        {
            pointer = FromMap(JobCodec.Decode(bytes, serialization));
        }
        catch (Exception e) when (e is IpyRpcSerializationException or JsonException or MessagePackSerializationException or OverflowException or InvalidCastException or FormatException)
        {
            return false;
        }

        return pointer is not null;
    }

    /// <summary>What is wrong with a map that says it is a data pointer but cannot be read as one; <see langword="null"/> for anything else.</summary>
    internal static string? ProblemWith(ReadOnlySpan<byte> bytes, Serialization serialization)
    {
        if (!LooksLikePointer(bytes, serialization)) return null;
        try
        {
            _ = FromMap(JobCodec.Decode(bytes, serialization));
            return null;
        }
        catch (Exception e) when (e is IpyRpcSerializationException or JsonException or MessagePackSerializationException or OverflowException or InvalidCastException or FormatException)
        {
            return e.Message;
        }
    }

    // How far into a value its "type": "ipyrpc_data_pointer" pair is looked for. Holders write it first; other writers
    // (a client that sorts keys, a hand-made map) may put it last, after at most a few hundred bytes of other fields.
    private const int PointerWindow = 4096;

    /// <summary>
    /// Whether the bytes are a map with the key <c>type</c> naming a data pointer at its top level, in any position:
    /// a search for the name in the first few kilobytes (vectorized, so a map that names no pointer costs little), then a
    /// walk over the top-level keys within them. A holder writes <c>type</c> first, which the walk finds at once.
    /// </summary>
    internal static bool LooksLikePointer(ReadOnlySpan<byte> bytes, Serialization serialization)
    {
        if (bytes.Length < 8) return false;
        if (serialization == Serialization.Json) return LooksLikeJsonPointer(bytes);
        if (bytes[0] is not ((>= 0x80 and <= 0x8f) or 0xde or 0xdf)) return false;
        ReadOnlySpan<byte> window = bytes[..Math.Min(bytes.Length, PointerWindow)];
        if (window.IndexOf("ipyrpc_data_pointer"u8) < 0) return false;
        try
        {
            var reader = new MessagePackReader(window); // no further than the window, however large the map
            int count = reader.ReadMapHeader();
            for (int i = 0; i < count; i++)
            {
                bool isType = false;
                if (reader.NextType == MessagePackType.String) isType = reader.ReadStringSpan().SequenceEqual("type"u8);
                else reader.Skip();
                if (isType) return reader.NextType == MessagePackType.String && reader.ReadStringSpan().SequenceEqual("ipyrpc_data_pointer"u8);
                reader.Skip(); // the value of a key that is not "type"
            }
        }
        catch (MessagePackSerializationException)
        {
        }

        return false;
    }

    private static bool LooksLikeJsonPointer(ReadOnlySpan<byte> bytes)
    {
        ReadOnlySpan<byte> trimmed = bytes.TrimStart(" \t\r\n"u8);
        if (trimmed.IsEmpty || trimmed[0] != (byte)'{') return false;
        ReadOnlySpan<byte> window = trimmed[..Math.Min(trimmed.Length, PointerWindow)];
        if (window.IndexOf("\"ipyrpc_data_pointer\""u8) < 0) return false;
        try
        {
            // No further than the window, however large the object: a value that runs past it ends the look.
            var reader = new Utf8JsonReader(window, isFinalBlock: window.Length == trimmed.Length, state: default);
            reader.Read(); // {
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("type"u8))
                {
                    return reader.Read() && reader.TokenType == JsonTokenType.String && reader.ValueTextEquals(TypeName);
                }

                if (!reader.Read() || !reader.TrySkip()) return false;
            }
        }
        catch (JsonException)
        {
        }

        return false;
    }
}

/// <summary>A <see cref="RemotePointer"/> to a value of type <typeparamref name="T"/>.</summary>
/// <typeparam name="T">What fetching it gives.</typeparam>
[IpyRpcFormatter(typeof(RemotePointerFormatter<>))]
public sealed class RemotePointer<T> : RemotePointer
{
    /// <summary>Passes the pointer where a typed proxy takes the value (a data parameter): the function gets the value it points to.</summary>
    /// <param name="pointer">The pointer.</param>
    public static implicit operator ValueOrPointer<T>(RemotePointer<T> pointer) => ValueOrPointer<T>.Of(pointer);
}

/// <summary>Reads and writes pointers of any value type as their wire map.</summary>
public sealed class RemotePointerMapFormatter : IpyRpcFormatter<RemotePointer>
{
    /// <inheritdoc/>
    public override void Write(ref MessagePackWriter writer, RemotePointer value) => Formatters.Object.Write(ref writer, value.ToMap());

    /// <inheritdoc/>
    public override RemotePointer Read(ref MessagePackReader reader) => Convert(Formatters.Object.Read(ref reader));

    /// <inheritdoc/>
    public override void Write(Utf8JsonWriter writer, RemotePointer value) => Formatters.Object.Write(writer, value.ToMap());

    /// <inheritdoc/>
    public override RemotePointer Read(ref Utf8JsonReader reader) => Convert(Formatters.Object.Read(ref reader));

    private static RemotePointer Convert(object? plain) => FromPlain(plain, null);

    /// <summary>A pointer from its wire map read as plain data; <paramref name="advice"/> ends the error for anything else.</summary>
    internal static RemotePointer FromPlain(object? plain, string? advice) => RemotePointer.FromMap(plain)
        ?? throw new IpyRpcSerializationException($"Expected a data pointer (a map with type \"{RemotePointer.TypeName}\"), got {(plain is null ? "nil" : plain.GetType().Name)}.{(advice is null ? "" : " " + advice)}");
}

/// <summary>Reads and writes pointers as their wire map.</summary>
public sealed class RemotePointerFormatter<T> : IpyRpcFormatter<RemotePointer<T>>
{
    /// <summary>The one instance.</summary>
    public static readonly RemotePointerFormatter<T> Instance = new();

    /// <inheritdoc/>
    public override void Write(ref MessagePackWriter writer, RemotePointer<T> value) => Formatters.Object.Write(ref writer, value.ToMap());

    /// <inheritdoc/>
    public override RemotePointer<T> Read(ref MessagePackReader reader) => Convert(Formatters.Object.Read(ref reader));

    /// <inheritdoc/>
    public override void Write(Utf8JsonWriter writer, RemotePointer<T> value) => Formatters.Object.Write(writer, value.ToMap());

    /// <inheritdoc/>
    public override RemotePointer<T> Read(ref Utf8JsonReader reader) => Convert(Formatters.Object.Read(ref reader));

    private static RemotePointer<T> Convert(object? plain) => RemotePointerMapFormatter.FromPlain(plain,
        "Did the function return its value instead? Ask for a pointer with CallOptions.ReturnPointer, or configure ReturnPointer for it on the server.").As<T>();
}
