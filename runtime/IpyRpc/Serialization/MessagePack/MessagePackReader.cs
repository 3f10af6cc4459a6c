using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Text;

namespace IpyRpc.MessagePack;

/// <summary>
/// Reads MessagePack from a contiguous buffer. Every read checks that the bytes it needs are
/// there before it touches them, and every declared length is checked against what remains
/// before anything is allocated for it, so hostile input costs no more memory than its own size.
/// Malformed, truncated and wrongly typed input throws <see cref="MessagePackSerializationException"/>.
/// </summary>
public ref struct MessagePackReader
{
    /// <summary>The deepest nesting of arrays and maps that formatters accept by default.</summary>
    public const int DefaultMaxDepth = 64;

    private readonly ReadOnlySpan<byte> _buffer;
    private int _position;

    /// <summary>Creates a reader over <paramref name="buffer"/>.</summary>
    public MessagePackReader(ReadOnlySpan<byte> buffer)
    {
        _buffer = buffer;
        _position = 0;
        MaxDepth = DefaultMaxDepth;
        Depth = 0;
    }

    /// <summary>The offset of the next byte to read.</summary>
    public readonly int Position => _position;

    /// <summary>Whether every byte has been read.</summary>
    public readonly bool End => _position >= _buffer.Length;

    /// <summary>How many bytes are left.</summary>
    public readonly int Remaining => _buffer.Length - _position;

    /// <summary>The current nesting depth, maintained by formatters through <see cref="Enter"/> and <see cref="Exit"/>.</summary>
    public int Depth { get; private set; }

    /// <summary>The deepest nesting <see cref="Enter"/> allows.</summary>
    public int MaxDepth { get; set; }

    /// <summary>Notes entry into a nested container; throws past <see cref="MaxDepth"/>.</summary>
    public void Enter()
    {
        if (++Depth > MaxDepth)
        {
            throw Error($"Nesting deeper than {MaxDepth} levels");
        }
    }

    /// <summary>Notes leaving a nested container.</summary>
    public void Exit() => Depth--;

    /// <summary>The family of the next value, without consuming it.</summary>
    public readonly MessagePackType NextType
    {
        get
        {
            EnsureReadable(1);
            return MessagePackCode.TypeOf(_buffer[_position]);
        }
    }

    /// <summary>The first byte of the next value, without consuming it.</summary>
    public readonly byte NextCode
    {
        get
        {
            EnsureReadable(1);
            return _buffer[_position];
        }
    }

    /// <summary>Consumes a <c>nil</c> if one is next.</summary>
    public bool TryReadNil()
    {
        EnsureReadable(1);
        if (_buffer[_position] == MessagePackCode.Nil)
        {
            _position++;
            return true;
        }

        return false;
    }

    /// <summary>Reads a <c>nil</c>.</summary>
    public void ReadNil()
    {
        if (!TryReadNil())
        {
            throw Unexpected("nil");
        }
    }

    /// <summary>Reads a boolean.</summary>
    public bool ReadBoolean()
    {
        EnsureReadable(1);
        switch (_buffer[_position])
        {
            case MessagePackCode.True:
                _position++;
                return true;
            case MessagePackCode.False:
                _position++;
                return false;
            default:
                throw Unexpected("a boolean");
        }
    }

    /// <summary>Reads any integer that fits a signed 64-bit value.</summary>
    public long ReadInt64()
    {
        EnsureReadable(1);
        byte code = _buffer[_position];
        if (code <= MessagePackCode.MaxFixInt)
        {
            _position++;
            return code;
        }

        if (code >= MessagePackCode.MinNegativeFixInt)
        {
            _position++;
            return unchecked((sbyte)code);
        }

        switch (code)
        {
            case MessagePackCode.UInt8: return Take(2)[1];
            case MessagePackCode.UInt16: return BinaryPrimitives.ReadUInt16BigEndian(Take(3)[1..]);
            case MessagePackCode.UInt32: return BinaryPrimitives.ReadUInt32BigEndian(Take(5)[1..]);
            case MessagePackCode.UInt64:
                {
                    ulong v = BinaryPrimitives.ReadUInt64BigEndian(Peek(9)[1..]);
                    if (v > long.MaxValue)
                    {
                        throw Error($"Integer {v} does not fit a signed 64-bit value");
                    }

                    _position += 9;
                    return (long)v;
                }

            case MessagePackCode.Int8: return unchecked((sbyte)Take(2)[1]);
            case MessagePackCode.Int16: return BinaryPrimitives.ReadInt16BigEndian(Take(3)[1..]);
            case MessagePackCode.Int32: return BinaryPrimitives.ReadInt32BigEndian(Take(5)[1..]);
            case MessagePackCode.Int64: return BinaryPrimitives.ReadInt64BigEndian(Take(9)[1..]);
            default: throw Unexpected("an integer");
        }
    }

    /// <summary>Reads any non-negative integer that fits an unsigned 64-bit value.</summary>
    public ulong ReadUInt64()
    {
        EnsureReadable(1);
        if (_buffer[_position] == MessagePackCode.UInt64)
        {
            return BinaryPrimitives.ReadUInt64BigEndian(Take(9)[1..]);
        }

        int start = _position;
        long v = ReadInt64();
        if (v < 0)
        {
            _position = start;
            throw Error($"Integer {v} is negative where an unsigned value was expected");
        }

        return (ulong)v;
    }

    /// <summary>Reads an integer that fits a signed 32-bit value.</summary>
    public int ReadInt32() => (int)ReadRange(int.MinValue, int.MaxValue, "a 32-bit integer");

    /// <summary>Reads an integer that fits a signed 16-bit value.</summary>
    public short ReadInt16() => (short)ReadRange(short.MinValue, short.MaxValue, "a 16-bit integer");

    /// <summary>Reads an integer that fits a signed 8-bit value.</summary>
    public sbyte ReadSByte() => (sbyte)ReadRange(sbyte.MinValue, sbyte.MaxValue, "an 8-bit integer");

    /// <summary>Reads an integer that fits an unsigned 32-bit value.</summary>
    public uint ReadUInt32() => (uint)ReadRange(0, uint.MaxValue, "an unsigned 32-bit integer");

    /// <summary>Reads an integer that fits an unsigned 16-bit value.</summary>
    public ushort ReadUInt16() => (ushort)ReadRange(0, ushort.MaxValue, "an unsigned 16-bit integer");

    /// <summary>Reads an integer that fits an unsigned 8-bit value.</summary>
    public byte ReadByte() => (byte)ReadRange(0, byte.MaxValue, "an unsigned 8-bit integer");

    private long ReadRange(long min, long max, string what)
    {
        int start = _position;
        long v = ReadInt64();
        if (v < min || v > max)
        {
            _position = start;
            throw Error($"Integer {v} is out of range for {what}");
        }

        return v;
    }

    /// <summary>Reads a float64, float32 or integer as a <see cref="double"/>.</summary>
    public double ReadDouble()
    {
        EnsureReadable(1);
        switch (_buffer[_position])
        {
            case MessagePackCode.Float64: return BinaryPrimitives.ReadDoubleBigEndian(Take(9)[1..]);
            case MessagePackCode.Float32: return BinaryPrimitives.ReadSingleBigEndian(Take(5)[1..]);
            case MessagePackCode.UInt64: return ReadUInt64();
            default:
                if (NextType == MessagePackType.Integer)
                {
                    return ReadInt64();
                }

                throw Unexpected("a number");
        }
    }

    /// <summary>Reads a float32, float64 or integer as a <see cref="float"/>.</summary>
    public float ReadSingle()
    {
        EnsureReadable(1);
        return _buffer[_position] == MessagePackCode.Float32
            ? BinaryPrimitives.ReadSingleBigEndian(Take(5)[1..])
            : (float)ReadDouble();
    }

    /// <summary>Reads a string, or <see langword="null"/> for <c>nil</c>.</summary>
    public string? ReadString()
    {
        if (TryReadNil())
        {
            return null;
        }

        ReadOnlySpan<byte> utf8 = ReadStringSpan();
        try
        {
            return StrictUtf8.GetString(utf8);
        }
        catch (DecoderFallbackException)
        {
            throw Error("String is not valid UTF-8");
        }
    }

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Reads a string's UTF-8 bytes without decoding them.</summary>
    public ReadOnlySpan<byte> ReadStringSpan()
    {
        EnsureReadable(1);
        byte code = _buffer[_position];
        int headerSize;
        long length;
        if (code is >= MessagePackCode.MinFixStr and <= MessagePackCode.MaxFixStr)
        {
            headerSize = 1;
            length = code & 0x1f;
        }
        else
        {
            switch (code)
            {
                case MessagePackCode.Str8: headerSize = 2; length = Peek(2)[1]; break;
                case MessagePackCode.Str16: headerSize = 3; length = BinaryPrimitives.ReadUInt16BigEndian(Peek(3)[1..]); break;
                case MessagePackCode.Str32: headerSize = 5; length = BinaryPrimitives.ReadUInt32BigEndian(Peek(5)[1..]); break;
                default: throw Unexpected("a string");
            }
        }

        return TakeBody(headerSize, length, "string");
    }

    /// <summary>Reads a binary value (a string is accepted too, as its UTF-8 bytes).</summary>
    public ReadOnlySpan<byte> ReadBinary()
    {
        EnsureReadable(1);
        byte code = _buffer[_position];
        int headerSize;
        long length;
        switch (code)
        {
            case MessagePackCode.Bin8: headerSize = 2; length = Peek(2)[1]; break;
            case MessagePackCode.Bin16: headerSize = 3; length = BinaryPrimitives.ReadUInt16BigEndian(Peek(3)[1..]); break;
            case MessagePackCode.Bin32: headerSize = 5; length = BinaryPrimitives.ReadUInt32BigEndian(Peek(5)[1..]); break;
            default:
                if (MessagePackCode.TypeOf(code) == MessagePackType.String)
                {
                    return ReadStringSpan();
                }

                throw Unexpected("binary data");
        }

        return TakeBody(headerSize, length, "binary value");
    }

    /// <summary>Reads an array header. The count is checked against the bytes left (each element takes at least one).</summary>
    public int ReadArrayHeader()
    {
        EnsureReadable(1);
        byte code = _buffer[_position];
        long count;
        int headerSize;
        if (code is >= MessagePackCode.MinFixArray and <= MessagePackCode.MaxFixArray)
        {
            count = code & 0x0f;
            headerSize = 1;
        }
        else if (code == MessagePackCode.Array16)
        {
            count = BinaryPrimitives.ReadUInt16BigEndian(Peek(3)[1..]);
            headerSize = 3;
        }
        else if (code == MessagePackCode.Array32)
        {
            count = BinaryPrimitives.ReadUInt32BigEndian(Peek(5)[1..]);
            headerSize = 5;
        }
        else
        {
            throw Unexpected("an array");
        }

        if (count > Remaining - headerSize)
        {
            throw Error($"Array declares {count} elements but only {Remaining - headerSize} bytes remain");
        }

        _position += headerSize;
        return (int)count;
    }

    /// <summary>Reads a map header (the number of key/value pairs), checked against the bytes left.</summary>
    public int ReadMapHeader()
    {
        EnsureReadable(1);
        byte code = _buffer[_position];
        long count;
        int headerSize;
        if (code is >= MessagePackCode.MinFixMap and <= MessagePackCode.MaxFixMap)
        {
            count = code & 0x0f;
            headerSize = 1;
        }
        else if (code == MessagePackCode.Map16)
        {
            count = BinaryPrimitives.ReadUInt16BigEndian(Peek(3)[1..]);
            headerSize = 3;
        }
        else if (code == MessagePackCode.Map32)
        {
            count = BinaryPrimitives.ReadUInt32BigEndian(Peek(5)[1..]);
            headerSize = 5;
        }
        else
        {
            throw Unexpected("a map");
        }

        if (count * 2 > Remaining - headerSize)
        {
            throw Error($"Map declares {count} entries but only {Remaining - headerSize} bytes remain");
        }

        _position += headerSize;
        return (int)count;
    }

    /// <summary>Reads an extension header: its type and the length of its body, which must be present.</summary>
    public (sbyte Type, int Length) ReadExtensionHeader()
    {
        EnsureReadable(1);
        byte code = _buffer[_position];
        long length;
        int headerSize;
        switch (code)
        {
            case MessagePackCode.FixExt1: length = 1; headerSize = 1; break;
            case MessagePackCode.FixExt2: length = 2; headerSize = 1; break;
            case MessagePackCode.FixExt4: length = 4; headerSize = 1; break;
            case MessagePackCode.FixExt8: length = 8; headerSize = 1; break;
            case MessagePackCode.FixExt16: length = 16; headerSize = 1; break;
            case MessagePackCode.Ext8: length = Peek(2)[1]; headerSize = 2; break;
            case MessagePackCode.Ext16: length = BinaryPrimitives.ReadUInt16BigEndian(Peek(3)[1..]); headerSize = 3; break;
            case MessagePackCode.Ext32: length = BinaryPrimitives.ReadUInt32BigEndian(Peek(5)[1..]); headerSize = 5; break;
            default: throw Unexpected("an extension");
        }

        sbyte type = unchecked((sbyte)Peek(headerSize + 1)[headerSize]);
        if (length > Remaining - headerSize - 1)
        {
            throw Error($"Extension declares {length} bytes but only {Remaining - headerSize - 1} remain");
        }

        _position += headerSize + 1;
        return (type, (int)length);
    }

    /// <summary>Reads a whole extension value.</summary>
    public ReadOnlySpan<byte> ReadExtension(out sbyte type)
    {
        (type, int length) = ReadExtensionHeader();
        return Take(length);
    }

    /// <summary>Reads a timestamp extension (any of its three forms) as seconds and nanoseconds since the Unix epoch.</summary>
    public (long Seconds, uint Nanoseconds) ReadTimestamp()
    {
        int start = _position;
        ReadOnlySpan<byte> data = ReadExtension(out sbyte type);
        if (type != MessagePackCode.TimestampExtension)
        {
            _position = start;
            throw Error($"Extension type {type} is not a timestamp (-1)");
        }

        switch (data.Length)
        {
            case 4:
                return (BinaryPrimitives.ReadUInt32BigEndian(data), 0);
            case 8:
                {
                    ulong v = BinaryPrimitives.ReadUInt64BigEndian(data);
                    uint nanos = (uint)(v >> 34);
                    CheckNanos(nanos, start);
                    return ((long)(v & 0x3_ffff_ffffUL), nanos);
                }

            case 12:
                {
                    uint nanos = BinaryPrimitives.ReadUInt32BigEndian(data);
                    CheckNanos(nanos, start);
                    return (BinaryPrimitives.ReadInt64BigEndian(data[4..]), nanos);
                }

            default:
                _position = start;
                throw Error($"Timestamp extension has {data.Length} bytes; it must have 4, 8 or 12");
        }
    }

    private readonly void CheckNanos(uint nanos, int start)
    {
        if (nanos > 999_999_999)
        {
            throw new MessagePackSerializationException($"Timestamp nanoseconds {nanos} exceed one second", start);
        }
    }

    /// <summary>Reads a timestamp as a UTC <see cref="DateTime"/> (100 ns resolution).</summary>
    public DateTime ReadDateTime()
    {
        int start = _position;
        (long seconds, uint nanos) = ReadTimestamp();
        const long maxSeconds = 253_402_300_799; // 9999-12-31T23:59:59
        const long minSeconds = -62_135_596_800; // 0001-01-01
        if (seconds is > maxSeconds or < minSeconds)
        {
            throw new MessagePackSerializationException($"Timestamp {seconds}s is outside the range of DateTime", start);
        }

        return DateTime.UnixEpoch.AddTicks((seconds * TimeSpan.TicksPerSecond) + (nanos / 100));
    }

    /// <summary>Skips the next value, however deeply nested, without recursion.</summary>
    public void Skip()
    {
        long pending = 1;
        while (pending > 0)
        {
            pending--;
            EnsureReadable(1);
            switch (MessagePackCode.TypeOf(_buffer[_position]))
            {
                case MessagePackType.Nil:
                case MessagePackType.Boolean:
                    _position++;
                    break;
                case MessagePackType.Integer:
                    ReadIntegerRaw();
                    break;
                case MessagePackType.Float:
                    ReadDouble();
                    break;
                case MessagePackType.String:
                    ReadStringSpan();
                    break;
                case MessagePackType.Binary:
                    ReadBinary();
                    break;
                case MessagePackType.Array:
                    pending += ReadArrayHeader();
                    break;
                case MessagePackType.Map:
                    pending += 2L * ReadMapHeader();
                    break;
                case MessagePackType.Extension:
                    ReadExtension(out _);
                    break;
                default:
                    throw Error($"Byte 0x{_buffer[_position]:x2} does not start a MessagePack value");
            }
        }
    }

    private void ReadIntegerRaw()
    {
        if (_buffer[_position] == MessagePackCode.UInt64)
        {
            Take(9);
        }
        else
        {
            ReadInt64();
        }
    }

    /// <summary>Reads the next value's encoded bytes without decoding it.</summary>
    public ReadOnlySpan<byte> ReadRaw()
    {
        int start = _position;
        Skip();
        return _buffer[start.._position];
    }

    /// <summary>Reads the next value's extent (offset and length) without decoding it.</summary>
    public (int Offset, int Length) ReadRawRange()
    {
        int start = _position;
        Skip();
        return (start, _position - start);
    }

    /// <summary>Reads <paramref name="count"/> raw bytes (the body of something whose header the caller read).</summary>
    public ReadOnlySpan<byte> ReadRawBytes(int count) => Take(count);

    /// <summary>Makes an exception pointing at the current position.</summary>
    public readonly MessagePackSerializationException Error(string message) => new(message, _position);

    private readonly MessagePackSerializationException Unexpected(string expected)
    {
        byte code = _buffer[_position];
        MessagePackType found = MessagePackCode.TypeOf(code);
        string what = found == MessagePackType.Unknown ? $"byte 0x{code:x2}, which starts no value" : $"{Describe(found)} (0x{code:x2})";
        return Error($"Expected {expected} but found {what}");
    }

    /// <summary>A readable name for a MessagePack type family.</summary>
    public static string Describe(MessagePackType type) => type switch
    {
        MessagePackType.Nil => "nil",
        MessagePackType.Boolean => "a boolean",
        MessagePackType.Integer => "an integer",
        MessagePackType.Float => "a float",
        MessagePackType.String => "a string",
        MessagePackType.Binary => "binary data",
        MessagePackType.Array => "an array",
        MessagePackType.Map => "a map",
        MessagePackType.Extension => "an extension",
        _ => "an unknown value",
    };

    private ReadOnlySpan<byte> TakeBody(int headerSize, long length, string what)
    {
        if (length > Remaining - headerSize)
        {
            throw Error($"Truncated {what}: it declares {length} bytes but only {Math.Max(0, Remaining - headerSize)} remain");
        }

        ReadOnlySpan<byte> body = _buffer.Slice(_position + headerSize, (int)length);
        _position += headerSize + (int)length;
        return body;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private readonly void EnsureReadable(int count)
    {
        if (Remaining < count)
        {
            throw Error(Remaining == 0
                ? "Unexpected end of MessagePack input"
                : $"Truncated MessagePack input: needed {count} bytes but only {Remaining} remain");
        }
    }

    private readonly ReadOnlySpan<byte> Peek(int count)
    {
        EnsureReadable(count);
        return _buffer.Slice(_position, count);
    }

    private ReadOnlySpan<byte> Take(int count)
    {
        EnsureReadable(count);
        ReadOnlySpan<byte> s = _buffer.Slice(_position, count);
        _position += count;
        return s;
    }
}
