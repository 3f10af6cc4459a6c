using System.Buffers;
using System.Buffers.Binary;
using IpyRpc.MessagePack;

namespace IpyRpc.Protocol;

/// <summary>
/// Encodes and decodes messages. A message is a MessagePack-map header followed by its parts.
/// Frame transports (ZeroMQ) carry the header and each part as frames of their own; stream
/// transports (HTTP bodies, in-process pipes) use the seed's block format:
/// <c>u32 header_size, u64 data_size, header, data</c>, where data is each part as
/// <c>u64 part_size, part</c>; every integer little-endian.
/// </summary>
public static class MessageCodec
{
    /// <summary>The bytes before a framed message's header: <c>u32 header_size</c> and <c>u64 data_size</c>.</summary>
    public const int FramePrefixBytes = 12;

    private static readonly string[] KindNames = ["hello", "describe", "call", "result", "error", "output", "cancel", "event", "ping", "pong", "submit", "attach", "status", "list", "auth", "close", "subscribe", "unsubscribe", "items", "progress", "credit", "fetch", "release"];
    private static readonly byte[][] KindBytes = [.. KindNames.Select(System.Text.Encoding.ASCII.GetBytes)];

    /// <summary>The wire name of a kind.</summary>
    public static string KindName(MessageKind kind) => KindNames[(int)kind];

    /// <summary>The wire name of a serialization.</summary>
    public static string SerializationName(Serialization s) => s == Serialization.Json ? "json" : "msgpack";

    /// <summary>Writes the header of <paramref name="message"/> as a MessagePack map.</summary>
    public static void WriteHeader(IBufferWriter<byte> output, IpyRpcMessage message)
    {
        var w = new MessagePackWriter(output);
        int count = 4 + (message.Function is null ? 0 : 1) + (message.TimeoutMs is null ? 0 : 1)
            + (message.Kind == MessageKind.Output ? 1 : 0) + (message.JobId is null ? 0 : 1)
            + (message.Versions is null ? 0 : 1) + (message.Agent is null ? 0 : 1)
            + (message.Sequence is null ? 0 : 1) + (message.After is null ? 0 : 1)
            + (message.Nonce is null ? 0 : 1) + (message.Proof is null ? 0 : 1) + (message.Auth is null ? 0 : 1)
            + (message.Window is null ? 0 : 1) + (message.Credit is null ? 0 : 1) + (message.Dropped is null ? 0 : 1)
            + (message.Trace is null ? 0 : 1) + (message.ReturnPointer is null ? 0 : 1) + (message.PointerTtlMs is null ? 0 : 1);
        w.WriteMapHeader(count);
        w.WriteString("v"u8);
        w.Write(ProtocolVersion.Current);
        w.WriteString("kind"u8);
        w.Write(KindName(message.Kind));
        w.WriteString("id"u8);
        w.Write(message.Id);
        w.WriteString("ser"u8);
        w.WriteString(message.Serialization == Serialization.Json ? "json"u8 : "msgpack"u8);
        if (message.Function is not null)
        {
            w.WriteString("fn"u8);
            w.Write(message.Function);
        }

        if (message.TimeoutMs is long timeout)
        {
            w.WriteString("timeout_ms"u8);
            w.Write(timeout);
        }

        if (message.Kind == MessageKind.Output)
        {
            w.WriteString("stream"u8);
            w.WriteString(message.Stream == OutputStream.Stderr ? "stderr"u8 : "stdout"u8);
        }

        if (message.JobId is not null)
        {
            w.WriteString("job"u8);
            w.Write(message.JobId);
        }

        if (message.Sequence is long seq)
        {
            w.WriteString("seq"u8);
            w.Write(seq);
        }

        if (message.After is long after)
        {
            w.WriteString("from"u8);
            w.Write(after);
        }

        if (message.Versions is not null)
        {
            w.WriteString("versions"u8);
            w.WriteArrayHeader(message.Versions.Count);
            foreach (int v in message.Versions) w.Write(v);
        }

        if (message.Agent is not null)
        {
            w.WriteString("agent"u8);
            w.Write(message.Agent);
        }

        if (message.Nonce is { } nonce)
        {
            w.WriteString("nonce"u8);
            w.WriteBinary(nonce.Span);
        }

        if (message.Proof is { } proof)
        {
            w.WriteString("proof"u8);
            w.WriteBinary(proof.Span);
        }

        if (message.Auth is { } auth)
        {
            w.WriteString("auth"u8);
            w.WriteArrayHeader(auth.Count);
            foreach (string scheme in auth) w.Write(scheme);
        }

        if (message.Window is long window)
        {
            w.WriteString("window"u8);
            w.Write(window);
        }

        if (message.Credit is long credit)
        {
            w.WriteString("credit"u8);
            w.Write(credit);
        }

        if (message.Dropped is long dropped)
        {
            w.WriteString("dropped"u8);
            w.Write(dropped);
        }

        if (message.Trace is { } trace)
        {
            w.WriteString("trace"u8);
            w.Write(trace);
        }

        if (message.ReturnPointer is bool pointer)
        {
            w.WriteString("pointer"u8);
            w.Write(pointer);
        }

        if (message.PointerTtlMs is long ttl)
        {
            w.WriteString("ttl_ms"u8);
            w.Write(ttl);
        }
    }

    [ThreadStatic] private static ArrayBufferWriter<byte>? t_header;

    // The header written into this thread's scratch buffer, valid until the thread writes another: framing copies
    // it straight into the frame, so a message costs no header array of its own.
    private static ReadOnlySpan<byte> HeaderScratch(IpyRpcMessage message)
    {
        ArrayBufferWriter<byte> buffer = t_header ??= new ArrayBufferWriter<byte>(256);
        buffer.ResetWrittenCount();
        WriteHeader(buffer, message);
        return buffer.WrittenSpan;
    }

    /// <summary>Encodes the header on its own (for frame transports).</summary>
    public static byte[] EncodeHeader(IpyRpcMessage message) => HeaderScratch(message).ToArray();

    /// <summary>Decodes a header and attaches <paramref name="parts"/>.</summary>
    /// <exception cref="ProtocolException">The header is malformed.</exception>
    public static IpyRpcMessage DecodeHeader(ReadOnlySpan<byte> header, IReadOnlyList<ReadOnlyMemory<byte>> parts) => DecodeHeader(header, parts, null);

    /// <summary>Decodes a header and attaches <paramref name="parts"/>, slices of the <paramref name="pooled"/> arrays (see <see cref="IpyRpcMessage.Pooled"/>).</summary>
    /// <exception cref="ProtocolException">The header is malformed.</exception>
    public static IpyRpcMessage DecodeHeader(ReadOnlySpan<byte> header, IReadOnlyList<ReadOnlyMemory<byte>> parts, PooledParts? pooled)
    {
        if (header.Length > ProtocolVersion.MaxHeaderBytes)
        {
            throw new ProtocolException(ErrorCodes.TooLarge, $"Header of {header.Length} bytes exceeds the limit of {ProtocolVersion.MaxHeaderBytes}");
        }

        if (parts.Count > ProtocolVersion.MaxParts)
        {
            throw new ProtocolException(ErrorCodes.BadMessage, $"A message may have at most {ProtocolVersion.MaxParts} parts; this one has {parts.Count}");
        }

        ulong id = 0;
        try
        {
            var r = new MessagePackReader(header);
            if (r.End || r.NextType != MessagePackType.Map)
            {
                throw new ProtocolException(ErrorCodes.BadMessage, "A message header must be a MessagePack map");
            }

            int n = r.ReadMapHeader();
            int? version = null;
            MessageKind? kind = null;
            ReadOnlySpan<byte> kindName = default;
            bool hasKind = false;
            string? fn = null, job = null, agent = null, trace = null;
            long? timeout = null, seq = null, after = null, window = null, credit = null, dropped = null, ttl = null;
            bool? pointer = null;
            var stream = OutputStream.Stdout;
            var ser = Serialization.MessagePack;
            List<int>? versions = null;
            List<string>? auth = null;
            byte[]? nonce = null, proof = null;
            for (int i = 0; i < n; i++)
            {
                if (r.NextType != MessagePackType.String)
                {
                    r.Skip();
                    r.Skip();
                    continue;
                }

                ReadOnlySpan<byte> key = r.ReadStringSpan();
                if (key.SequenceEqual("v"u8)) version = r.ReadInt32();
                else if (key.SequenceEqual("kind"u8))
                {
                    kindName = r.ReadStringSpan(); // named after the loop, once the id is known for the reply
                    hasKind = true;
                }
                else if (key.SequenceEqual("id"u8)) id = r.ReadUInt64();
                else if (key.SequenceEqual("ser"u8)) ser = ParseSerialization(r.ReadStringSpan());
                else if (key.SequenceEqual("fn"u8)) fn = r.ReadString();
                else if (key.SequenceEqual("timeout_ms"u8)) timeout = r.TryReadNil() ? null : r.ReadInt64();
                else if (key.SequenceEqual("stream"u8)) stream = r.ReadStringSpan().SequenceEqual("stderr"u8) ? OutputStream.Stderr : OutputStream.Stdout;
                else if (key.SequenceEqual("job"u8)) job = r.ReadString();
                else if (key.SequenceEqual("agent"u8)) agent = r.ReadString();
                else if (key.SequenceEqual("trace"u8)) trace = r.TryReadNil() ? null : r.ReadString();
                else if (key.SequenceEqual("seq"u8)) seq = r.TryReadNil() ? null : r.ReadInt64();
                else if (key.SequenceEqual("from"u8)) after = r.TryReadNil() ? null : r.ReadInt64();
                else if (key.SequenceEqual("window"u8)) window = r.TryReadNil() ? null : r.ReadInt64();
                else if (key.SequenceEqual("credit"u8)) credit = r.TryReadNil() ? null : r.ReadInt64();
                else if (key.SequenceEqual("dropped"u8)) dropped = r.TryReadNil() ? null : r.ReadInt64();
                else if (key.SequenceEqual("pointer"u8)) pointer = r.TryReadNil() ? null : r.ReadBoolean();
                else if (key.SequenceEqual("ttl_ms"u8)) ttl = r.TryReadNil() ? null : r.ReadInt64();
                else if (key.SequenceEqual("nonce"u8)) nonce = r.ReadBinary().ToArray();
                else if (key.SequenceEqual("proof"u8)) proof = r.ReadBinary().ToArray();
                else if (key.SequenceEqual("auth"u8))
                {
                    int count = r.ReadArrayHeader();
                    auth = new List<string>(Math.Min(count, 8));
                    for (int j = 0; j < count; j++) auth.Add(r.ReadString() ?? "");
                }
                else if (key.SequenceEqual("versions"u8))
                {
                    int count = r.ReadArrayHeader();
                    versions = new List<int>(Math.Min(count, 16));
                    for (int j = 0; j < count; j++) versions.Add(r.ReadInt32());
                }
                else r.Skip(); // unknown keys are ignored, so newer peers can add fields
            }

            if (!r.End)
            {
                throw new ProtocolException(ErrorCodes.BadMessage, $"{r.Remaining} unexpected bytes after the header map", id);
            }

            if (!hasKind)
            {
                throw new ProtocolException(ErrorCodes.BadMessage, "The header has no \"kind\"", id);
            }

            kind = ParseKind(kindName, id);

            if (version is null)
            {
                throw new ProtocolException(ErrorCodes.BadMessage, "The header has no protocol version \"v\"", id);
            }

            if (kind is MessageKind.Call or MessageKind.Submit && string.IsNullOrEmpty(fn))
            {
                throw new ProtocolException(ErrorCodes.BadMessage, $"A {KindName(kind.Value)} needs the function name in \"fn\"", id);
            }

            if (kind is MessageKind.Event or MessageKind.Subscribe or MessageKind.Unsubscribe && string.IsNullOrEmpty(fn))
            {
                throw new ProtocolException(ErrorCodes.BadMessage, $"A \"{KindName(kind.Value)}\" message needs the event's name (or, to subscribe, a glob) in \"fn\"", id);
            }

            if (window is < 0 || credit is < 0)
            {
                throw new ProtocolException(ErrorCodes.BadMessage, "\"window\" and \"credit\" count items: they cannot be negative", id);
            }

            if (ttl is <= 0)
            {
                throw new ProtocolException(ErrorCodes.BadMessage, $"\"ttl_ms\" is a pointer's time to live in milliseconds: it must be positive, not {ttl}", id);
            }

            if (kind is MessageKind.Attach or MessageKind.Status && string.IsNullOrEmpty(job))
            {
                throw new ProtocolException(ErrorCodes.BadMessage, $"A \"{KindName(kind.Value)}\" message needs the job's id in \"job\"", id);
            }

            return new IpyRpcMessage
            {
                Kind = kind.Value,
                Id = id,
                Function = fn,
                Serialization = ser,
                TimeoutMs = timeout,
                Stream = stream,
                JobId = job,
                Versions = versions,
                Agent = agent,
                Trace = trace is { Length: > 0 and <= 256 } ? trace : null, // a malformed one is ignored, never trusted
                Sequence = seq,
                After = after,
                // Absent stays absent: a null array would otherwise convert to an empty, present value.
                Nonce = nonce is null ? default(ReadOnlyMemory<byte>?) : nonce,
                Proof = proof is null ? default(ReadOnlyMemory<byte>?) : proof,
                Auth = auth,
                Window = window,
                Credit = credit,
                Dropped = dropped,
                ReturnPointer = pointer,
                PointerTtlMs = ttl,
                Parts = parts,
                Pooled = pooled,
            };
        }
        catch (MessagePackSerializationException e)
        {
            throw new ProtocolException(ErrorCodes.BadMessage, "Malformed message header: " + e.Message, id, e);
        }
    }

    private static MessageKind ParseKind(ReadOnlySpan<byte> name, ulong id)
    {
        for (int i = 0; i < KindBytes.Length; i++)
        {
            if (name.SequenceEqual(KindBytes[i]))
            {
                return (MessageKind)i;
            }
        }

        throw new ProtocolException(ErrorCodes.BadMessage, $"Unknown message kind \"{System.Text.Encoding.UTF8.GetString(name)}\"", id);
    }

    private static Serialization ParseSerialization(ReadOnlySpan<byte> name)
    {
        if (name.SequenceEqual("msgpack"u8)) return Serialization.MessagePack;
        if (name.SequenceEqual("json"u8)) return Serialization.Json;
        throw new ProtocolException(ErrorCodes.UnsupportedSerialization, $"Unknown serialization \"{System.Text.Encoding.UTF8.GetString(name)}\"; use \"msgpack\" or \"json\"");
    }

    /// <summary>Writes a whole message in the stream block format.</summary>
    public static void WriteFramed(IBufferWriter<byte> output, IpyRpcMessage message)
    {
        ReadOnlySpan<byte> header = HeaderScratch(message);
        IReadOnlyList<ReadOnlyMemory<byte>> parts = message.Parts; // indexed: a foreach over the interface would allocate its enumerator
        long data = 0;
        for (int i = 0; i < parts.Count; i++) data += 8 + parts[i].Length;
        Span<byte> prefix = output.GetSpan(FramePrefixBytes);
        BinaryPrimitives.WriteUInt32LittleEndian(prefix, (uint)header.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(prefix[4..], (ulong)data);
        output.Advance(FramePrefixBytes);
        var w = new MessagePackWriter(output);
        w.WriteRaw(header);
        for (int i = 0; i < parts.Count; i++)
        {
            ReadOnlyMemory<byte> p = parts[i];
            BinaryPrimitives.WriteUInt64LittleEndian(output.GetSpan(8), (ulong)p.Length);
            output.Advance(8);
            w.WriteRaw(p.Span);
        }
    }

    /// <summary>Encodes a whole message in the stream block format, into an array of exactly its size (each part copied once).</summary>
    public static byte[] EncodeFramed(IpyRpcMessage message) => Frame(message, pooling: false, out _, out _);

    /// <summary>
    /// Encodes a whole message in the stream block format: a large one, when <paramref name="pooling"/>, into a
    /// pooled array (the returned memory is a slice of it, <paramref name="pooled"/> holds it), otherwise into an
    /// array of exactly its size.
    /// </summary>
    public static ReadOnlyMemory<byte> EncodeFramed(IpyRpcMessage message, bool pooling, out PooledParts? pooled)
        => Frame(message, pooling, out pooled, out int size).AsMemory(0, size);

    // The frame's bytes are the first size of the array returned (all of it unless it was rented).
    private static byte[] Frame(IpyRpcMessage message, bool pooling, out PooledParts? pooled, out int size)
    {
        ReadOnlySpan<byte> header = HeaderScratch(message);
        IReadOnlyList<ReadOnlyMemory<byte>> parts = message.Parts; // indexed: a foreach over the interface would allocate its enumerator
        long data = 0;
        for (int i = 0; i < parts.Count; i++) data += 8 + parts[i].Length;
        long total = FramePrefixBytes + header.Length + data;
        if (total > Array.MaxLength) throw new ProtocolException(ErrorCodes.TooLarge, $"A message of {total} bytes cannot be framed in one block.", message.Id);
        size = (int)total;
        pooled = pooling && PooledParts.ShouldPool(size) ? new PooledParts() : null;
        byte[] frame = pooled is not null ? pooled.Rent(size) : GC.AllocateUninitializedArray<byte>(size);
        Span<byte> rest = frame.AsSpan(0, size);
        BinaryPrimitives.WriteUInt32LittleEndian(rest, (uint)header.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(rest[4..], (ulong)data);
        header.CopyTo(rest[FramePrefixBytes..]);
        rest = rest[(FramePrefixBytes + header.Length)..];
        for (int i = 0; i < parts.Count; i++)
        {
            ReadOnlyMemory<byte> p = parts[i];
            BinaryPrimitives.WriteUInt64LittleEndian(rest, (ulong)p.Length);
            p.Span.CopyTo(rest[8..]);
            rest = rest[(8 + p.Length)..];
        }

        return frame;
    }

    /// <summary>
    /// A message in the stream block format as the pieces a writer sends one after another, its parts not copied: for
    /// a large message, which <see cref="EncodeFramed(IpyRpcMessage)"/> would copy into one more array of its size.
    /// </summary>
    /// <exception cref="ProtocolException">The message is too large to be read as one block.</exception>
    public static FramedPieces FramePieces(IpyRpcMessage message)
    {
        ReadOnlySpan<byte> header = HeaderScratch(message);
        IReadOnlyList<ReadOnlyMemory<byte>> parts = message.Parts;
        long data = 0;
        byte[] sizes = new byte[8 * parts.Count];
        for (int i = 0; i < parts.Count; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(sizes.AsSpan(8 * i), (ulong)parts[i].Length);
            data += 8 + parts[i].Length;
        }

        long total = FramePrefixBytes + header.Length + data;
        if (total > Array.MaxLength) throw new ProtocolException(ErrorCodes.TooLarge, $"A message of {total} bytes cannot be framed in one block.", message.Id);
        byte[] head = new byte[FramePrefixBytes + header.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(head, (uint)header.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(head.AsSpan(4), (ulong)data);
        header.CopyTo(head.AsSpan(FramePrefixBytes));
        return new FramedPieces(head, sizes, parts, total);
    }

    /// <summary>
    /// Reads one framed message from the start of <paramref name="buffer"/> if it is all there.
    /// Sizes are checked against <paramref name="maxMessageBytes"/> before anything waits for or
    /// allocates the bytes they declare. Parts are slices of <paramref name="buffer"/>'s memory.
    /// </summary>
    /// <returns>False when more bytes are needed; <paramref name="consumed"/> is then 0.</returns>
    /// <exception cref="ProtocolException">The frame is malformed or too large.</exception>
    public static bool TryReadFramed(ReadOnlyMemory<byte> buffer, long maxMessageBytes, out IpyRpcMessage? message, out int consumed)
        => TryReadFramed(buffer, maxMessageBytes, null, out message, out consumed);

    /// <summary>Reads one framed message, as <see cref="TryReadFramed(ReadOnlyMemory{byte}, long, out IpyRpcMessage?, out int)"/>, whose parts are slices of the <paramref name="pooled"/> arrays.</summary>
    public static bool TryReadFramed(ReadOnlyMemory<byte> buffer, long maxMessageBytes, PooledParts? pooled, out IpyRpcMessage? message, out int consumed)
    {
        message = null;
        consumed = 0;
        ReadOnlySpan<byte> span = buffer.Span;
        if (span.Length < FramePrefixBytes)
        {
            return false;
        }

        uint headerSize = BinaryPrimitives.ReadUInt32LittleEndian(span);
        ulong dataSize = BinaryPrimitives.ReadUInt64LittleEndian(span[4..]);
        if (headerSize == 0)
        {
            throw new ProtocolException(ErrorCodes.BadMessage, "A framed message declares an empty header");
        }

        if (headerSize > ProtocolVersion.MaxHeaderBytes)
        {
            throw new ProtocolException(ErrorCodes.TooLarge, $"A framed message declares a {headerSize}-byte header; the limit is {ProtocolVersion.MaxHeaderBytes}");
        }

        if (dataSize > (ulong)maxMessageBytes || headerSize + dataSize > (ulong)maxMessageBytes)
        {
            // Read the header if it is here, so the refusal can name the call it refuses.
            ulong id = 0;
            if (span.Length >= FramePrefixBytes + headerSize)
            {
                try
                {
                    id = DecodeHeader(span.Slice(FramePrefixBytes, (int)headerSize), []).Id;
                }
                catch (ProtocolException e)
                {
                    id = e.Id;
                }
            }

            throw new ProtocolException(ErrorCodes.TooLarge, $"A framed message declares {headerSize + dataSize} bytes; the limit is {maxMessageBytes}", id);
        }

        long total = FramePrefixBytes + headerSize + (long)dataSize;
        if (span.Length < total)
        {
            return false;
        }

        ReadOnlyMemory<byte> header = buffer.Slice(FramePrefixBytes, (int)headerSize);
        ReadOnlyMemory<byte> data = buffer.Slice(FramePrefixBytes + (int)headerSize, (int)dataSize);
        // Parts are counted and checked first, so they land in an array of their number (most messages have one).
        int count = 0;
        for (ReadOnlySpan<byte> rest = data.Span; !rest.IsEmpty; count++)
        {
            if (rest.Length < 8)
            {
                throw new ProtocolException(ErrorCodes.BadMessage, "A framed message's data ends inside a part's size");
            }

            ulong partSize = BinaryPrimitives.ReadUInt64LittleEndian(rest);
            if (partSize > (ulong)(rest.Length - 8))
            {
                throw new ProtocolException(ErrorCodes.BadMessage, $"A part declares {partSize} bytes but only {rest.Length - 8} remain in the message");
            }

            if (count == ProtocolVersion.MaxParts)
            {
                throw new ProtocolException(ErrorCodes.BadMessage, $"A message may have at most {ProtocolVersion.MaxParts} parts");
            }

            rest = rest[(8 + (int)partSize)..];
        }

        ReadOnlyMemory<byte>[] parts = count == 0 ? [] : new ReadOnlyMemory<byte>[count];
        for (int i = 0; i < count; i++)
        {
            int partSize = (int)BinaryPrimitives.ReadUInt64LittleEndian(data.Span);
            parts[i] = data.Slice(8, partSize);
            data = data[(8 + partSize)..];
        }

        message = DecodeHeader(header.Span, parts, pooled);
        consumed = (int)total;
        return true;
    }

    /// <summary>
    /// The whole length a framed message at the start of <paramref name="bytes"/> declares (its 12-byte prefix and
    /// the header and data it announces), or -1 when fewer than 12 bytes are there. Nothing else is checked.
    /// </summary>
    public static long DeclaredFrameLength(ReadOnlySpan<byte> bytes) => bytes.Length < FramePrefixBytes
        ? -1
        : FramePrefixBytes + (long)BinaryPrimitives.ReadUInt32LittleEndian(bytes) + (long)Math.Min(BinaryPrimitives.ReadUInt64LittleEndian(bytes[4..]), long.MaxValue / 2);

    /// <summary>Decodes exactly one framed message; trailing bytes are an error.</summary>
    public static IpyRpcMessage DecodeFramed(ReadOnlyMemory<byte> bytes, long maxMessageBytes = ProtocolVersion.DefaultMaxMessageBytes) => DecodeFramed(bytes, maxMessageBytes, null);

    /// <summary>Decodes exactly one framed message whose parts are slices of the <paramref name="pooled"/> arrays.</summary>
    /// <exception cref="ProtocolException">The bytes are not exactly one valid message.</exception>
    public static IpyRpcMessage DecodeFramed(ReadOnlyMemory<byte> bytes, long maxMessageBytes, PooledParts? pooled)
    {
        if (!TryReadFramed(bytes, maxMessageBytes, pooled, out IpyRpcMessage? message, out int consumed))
        {
            throw new ProtocolException(ErrorCodes.BadMessage, $"Truncated message: {bytes.Length} bytes do not hold the frame they declare");
        }

        if (consumed != bytes.Length)
        {
            throw new ProtocolException(ErrorCodes.BadMessage, $"{bytes.Length - consumed} unexpected bytes after the message");
        }

        return message!;
    }
}
