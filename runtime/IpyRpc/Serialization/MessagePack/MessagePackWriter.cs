using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace IpyRpc.MessagePack;

/// <summary>
/// Writes MessagePack into an <see cref="IBufferWriter{T}"/>. Every integer is written in its
/// shortest form, as the spec recommends; strings, binaries, arrays, maps and extensions pick the
/// smallest header that holds their length.
/// </summary>
public ref struct MessagePackWriter
{
    private readonly IBufferWriter<byte> _output;

    /// <summary>Creates a writer that appends to <paramref name="output"/>.</summary>
    public MessagePackWriter(IBufferWriter<byte> output) => _output = output;

    /// <summary>The buffer this writer appends to.</summary>
    public readonly IBufferWriter<byte> Output => _output;

    /// <summary>Writes <c>nil</c>.</summary>
    public void WriteNil() => WriteByte(MessagePackCode.Nil);

    /// <summary>Writes <c>true</c> or <c>false</c>.</summary>
    public void Write(bool value) => WriteByte(value ? MessagePackCode.True : MessagePackCode.False);

    /// <summary>Writes a signed integer in its shortest form.</summary>
    public void Write(long value)
    {
        if (value >= 0)
        {
            Write((ulong)value);
            return;
        }

        Span<byte> span = _output.GetSpan(9);
        int n;
        if (value >= -32)
        {
            span[0] = unchecked((byte)value);
            n = 1;
        }
        else if (value >= sbyte.MinValue)
        {
            span[0] = MessagePackCode.Int8;
            span[1] = unchecked((byte)value);
            n = 2;
        }
        else if (value >= short.MinValue)
        {
            span[0] = MessagePackCode.Int16;
            BinaryPrimitives.WriteInt16BigEndian(span[1..], (short)value);
            n = 3;
        }
        else if (value >= int.MinValue)
        {
            span[0] = MessagePackCode.Int32;
            BinaryPrimitives.WriteInt32BigEndian(span[1..], (int)value);
            n = 5;
        }
        else
        {
            span[0] = MessagePackCode.Int64;
            BinaryPrimitives.WriteInt64BigEndian(span[1..], value);
            n = 9;
        }

        _output.Advance(n);
    }

    /// <summary>Writes an unsigned integer in its shortest form.</summary>
    public void Write(ulong value)
    {
        Span<byte> span = _output.GetSpan(9);
        int n;
        if (value <= MessagePackCode.MaxFixInt)
        {
            span[0] = (byte)value;
            n = 1;
        }
        else if (value <= byte.MaxValue)
        {
            span[0] = MessagePackCode.UInt8;
            span[1] = (byte)value;
            n = 2;
        }
        else if (value <= ushort.MaxValue)
        {
            span[0] = MessagePackCode.UInt16;
            BinaryPrimitives.WriteUInt16BigEndian(span[1..], (ushort)value);
            n = 3;
        }
        else if (value <= uint.MaxValue)
        {
            span[0] = MessagePackCode.UInt32;
            BinaryPrimitives.WriteUInt32BigEndian(span[1..], (uint)value);
            n = 5;
        }
        else
        {
            span[0] = MessagePackCode.UInt64;
            BinaryPrimitives.WriteUInt64BigEndian(span[1..], value);
            n = 9;
        }

        _output.Advance(n);
    }

    /// <summary>Writes a signed integer in its shortest form.</summary>
    public void Write(int value) => Write((long)value);

    /// <summary>Writes a float32.</summary>
    public void Write(float value)
    {
        Span<byte> span = _output.GetSpan(5);
        span[0] = MessagePackCode.Float32;
        BinaryPrimitives.WriteSingleBigEndian(span[1..], value);
        _output.Advance(5);
    }

    /// <summary>Writes a float64.</summary>
    public void Write(double value)
    {
        Span<byte> span = _output.GetSpan(9);
        span[0] = MessagePackCode.Float64;
        BinaryPrimitives.WriteDoubleBigEndian(span[1..], value);
        _output.Advance(9);
    }

    /// <summary>Writes a string as UTF-8, or <c>nil</c> for <see langword="null"/>.</summary>
    public void Write(string? value)
    {
        if (value is null)
        {
            WriteNil();
            return;
        }

        int max = Encoding.UTF8.GetMaxByteCount(value.Length);
        if (max <= 512)
        {
            // Small strings: encode once into the header's worst-case slot, then fix the header up.
            Span<byte> span = _output.GetSpan(max + 5);
            int headerSize = max <= 31 ? 1 : max <= byte.MaxValue ? 2 : 3;
            int written = Encoding.UTF8.GetBytes(value, span[headerSize..]);
            int actualHeader = StringHeaderSize(written);
            if (actualHeader != headerSize)
            {
                span.Slice(headerSize, written).CopyTo(span[actualHeader..]);
            }

            WriteStringHeaderInto(span, written);
            _output.Advance(actualHeader + written);
            return;
        }

        int length = Encoding.UTF8.GetByteCount(value);
        WriteStringHeader((uint)length);
        Span<byte> body = _output.GetSpan(length);
        Encoding.UTF8.GetBytes(value, body);
        _output.Advance(length);
    }

    /// <summary>Writes a string given as UTF-8 bytes.</summary>
    public void WriteString(scoped ReadOnlySpan<byte> utf8)
    {
        WriteStringHeader((uint)utf8.Length);
        WriteRaw(utf8);
    }

    /// <summary>Writes the header of a string of <paramref name="byteCount"/> UTF-8 bytes.</summary>
    public void WriteStringHeader(uint byteCount)
    {
        Span<byte> span = _output.GetSpan(5);
        int n = WriteStringHeaderInto(span, (int)byteCount);
        _output.Advance(n);
    }

    private static int StringHeaderSize(int length) => length <= 31 ? 1 : length <= byte.MaxValue ? 2 : length <= ushort.MaxValue ? 3 : 5;

    private static int WriteStringHeaderInto(Span<byte> span, int length)
    {
        if (length <= 31)
        {
            span[0] = (byte)(MessagePackCode.MinFixStr | length);
            return 1;
        }

        if (length <= byte.MaxValue)
        {
            span[0] = MessagePackCode.Str8;
            span[1] = (byte)length;
            return 2;
        }

        if (length <= ushort.MaxValue)
        {
            span[0] = MessagePackCode.Str16;
            BinaryPrimitives.WriteUInt16BigEndian(span[1..], (ushort)length);
            return 3;
        }

        span[0] = MessagePackCode.Str32;
        BinaryPrimitives.WriteUInt32BigEndian(span[1..], (uint)length);
        return 5;
    }

    /// <summary>Writes a binary value.</summary>
    public void WriteBinary(scoped ReadOnlySpan<byte> value)
    {
        WriteBinaryHeader((uint)value.Length);
        WriteRaw(value);
    }

    /// <summary>Writes the header of a binary value of <paramref name="length"/> bytes; the caller writes the bytes.</summary>
    public void WriteBinaryHeader(uint length)
    {
        Span<byte> span = _output.GetSpan(5);
        if (length <= byte.MaxValue)
        {
            span[0] = MessagePackCode.Bin8;
            span[1] = (byte)length;
            _output.Advance(2);
        }
        else if (length <= ushort.MaxValue)
        {
            span[0] = MessagePackCode.Bin16;
            BinaryPrimitives.WriteUInt16BigEndian(span[1..], (ushort)length);
            _output.Advance(3);
        }
        else
        {
            span[0] = MessagePackCode.Bin32;
            BinaryPrimitives.WriteUInt32BigEndian(span[1..], length);
            _output.Advance(5);
        }
    }

    /// <summary>Writes the header of an array of <paramref name="count"/> elements.</summary>
    public void WriteArrayHeader(int count) => WriteCollectionHeader((uint)count, MessagePackCode.MinFixArray, MessagePackCode.Array16, MessagePackCode.Array32);

    /// <summary>Writes the header of a map of <paramref name="count"/> key/value pairs.</summary>
    public void WriteMapHeader(int count) => WriteCollectionHeader((uint)count, MessagePackCode.MinFixMap, MessagePackCode.Map16, MessagePackCode.Map32);

    private void WriteCollectionHeader(uint count, byte fix, byte code16, byte code32)
    {
        Span<byte> span = _output.GetSpan(5);
        if (count <= 15)
        {
            span[0] = (byte)(fix | count);
            _output.Advance(1);
        }
        else if (count <= ushort.MaxValue)
        {
            span[0] = code16;
            BinaryPrimitives.WriteUInt16BigEndian(span[1..], (ushort)count);
            _output.Advance(3);
        }
        else
        {
            span[0] = code32;
            BinaryPrimitives.WriteUInt32BigEndian(span[1..], count);
            _output.Advance(5);
        }
    }

    /// <summary>Writes the header of an extension value; the caller writes <paramref name="length"/> bytes after it.</summary>
    public void WriteExtensionHeader(sbyte type, uint length)
    {
        Span<byte> span = _output.GetSpan(6);
        int n;
        switch (length)
        {
            case 1: span[0] = MessagePackCode.FixExt1; n = 1; break;
            case 2: span[0] = MessagePackCode.FixExt2; n = 1; break;
            case 4: span[0] = MessagePackCode.FixExt4; n = 1; break;
            case 8: span[0] = MessagePackCode.FixExt8; n = 1; break;
            case 16: span[0] = MessagePackCode.FixExt16; n = 1; break;
            default:
                if (length <= byte.MaxValue)
                {
                    span[0] = MessagePackCode.Ext8;
                    span[1] = (byte)length;
                    n = 2;
                }
                else if (length <= ushort.MaxValue)
                {
                    span[0] = MessagePackCode.Ext16;
                    BinaryPrimitives.WriteUInt16BigEndian(span[1..], (ushort)length);
                    n = 3;
                }
                else
                {
                    span[0] = MessagePackCode.Ext32;
                    BinaryPrimitives.WriteUInt32BigEndian(span[1..], length);
                    n = 5;
                }

                break;
        }

        span[n] = unchecked((byte)type);
        _output.Advance(n + 1);
    }

    /// <summary>Writes a whole extension value.</summary>
    public void WriteExtension(sbyte type, scoped ReadOnlySpan<byte> data)
    {
        WriteExtensionHeader(type, (uint)data.Length);
        WriteRaw(data);
    }

    /// <summary>
    /// Writes the timestamp extension (type -1) in its shortest form: timestamp 32 when the
    /// nanoseconds are zero and the seconds fit 32 unsigned bits, timestamp 64 when the seconds
    /// fit 34 bits, timestamp 96 otherwise.
    /// </summary>
    public void WriteTimestamp(long seconds, uint nanoseconds)
    {
        if (nanoseconds > 999_999_999)
        {
            throw new ArgumentOutOfRangeException(nameof(nanoseconds), "A timestamp's nanoseconds must be below one second.");
        }

        if ((seconds >> 34) == 0)
        {
            ulong data64 = ((ulong)nanoseconds << 34) | (ulong)seconds;
            if ((data64 & 0xffffffff00000000UL) == 0)
            {
                WriteExtensionHeader(MessagePackCode.TimestampExtension, 4);
                Span<byte> s4 = _output.GetSpan(4);
                BinaryPrimitives.WriteUInt32BigEndian(s4, (uint)data64);
                _output.Advance(4);
            }
            else
            {
                WriteExtensionHeader(MessagePackCode.TimestampExtension, 8);
                Span<byte> s8 = _output.GetSpan(8);
                BinaryPrimitives.WriteUInt64BigEndian(s8, data64);
                _output.Advance(8);
            }

            return;
        }

        WriteExtensionHeader(MessagePackCode.TimestampExtension, 12);
        Span<byte> s12 = _output.GetSpan(12);
        BinaryPrimitives.WriteUInt32BigEndian(s12, nanoseconds);
        BinaryPrimitives.WriteInt64BigEndian(s12[4..], seconds);
        _output.Advance(12);
    }

    /// <summary>Writes a <see cref="DateTime"/> as a timestamp (converted to UTC; local and unspecified kinds are taken as UTC after <see cref="DateTime.ToUniversalTime"/>).</summary>
    public void Write(DateTime value)
    {
        DateTime utc = value.Kind == DateTimeKind.Local ? value.ToUniversalTime() : value;
        long ticks = utc.Ticks - DateTime.UnixEpoch.Ticks;
        long seconds = Math.DivRem(ticks, TimeSpan.TicksPerSecond, out long rem);
        if (rem < 0)
        {
            seconds--;
            rem += TimeSpan.TicksPerSecond;
        }

        WriteTimestamp(seconds, (uint)(rem * 100));
    }

    /// <summary>Copies already-encoded MessagePack (or the body of a str/bin/ext) to the output.</summary>
    public void WriteRaw(scoped ReadOnlySpan<byte> bytes)
    {
        if (bytes.IsEmpty)
        {
            return;
        }

        // Large bodies go in chunks so a segmented buffer never has to find one huge span.
        while (bytes.Length > 0)
        {
            Span<byte> span = _output.GetSpan(Math.Min(bytes.Length, 1 << 20));
            int n = Math.Min(span.Length, bytes.Length);
            bytes[..n].CopyTo(span);
            _output.Advance(n);
            bytes = bytes[n..];
        }
    }

    private void WriteByte(byte b)
    {
        _output.GetSpan(1)[0] = b;
        _output.Advance(1);
    }
}
