using System.Globalization;
using System.Text.Json;
using IpyRpc.Formatting.Json;
using IpyRpc.MessagePack;

namespace IpyRpc.Formatting;

/// <summary>The built-in formatters, one instance each. Generated code composes them.</summary>
public static partial class Formatters
{
    /// <summary><see cref="bool"/>.</summary>
    public static readonly IpyRpcFormatter<bool> Boolean = new BooleanFormatter();
    /// <summary><see cref="byte"/>.</summary>
    public static readonly IpyRpcFormatter<byte> Byte = new IntegerFormatter<byte>(byte.MinValue, byte.MaxValue, "an unsigned 8-bit integer", static v => v, static v => (byte)v);
    /// <summary><see cref="sbyte"/>.</summary>
    public static readonly IpyRpcFormatter<sbyte> SByte = new IntegerFormatter<sbyte>(sbyte.MinValue, sbyte.MaxValue, "an 8-bit integer", static v => v, static v => (sbyte)v);
    /// <summary><see cref="short"/>.</summary>
    public static readonly IpyRpcFormatter<short> Int16 = new IntegerFormatter<short>(short.MinValue, short.MaxValue, "a 16-bit integer", static v => v, static v => (short)v);
    /// <summary><see cref="ushort"/>.</summary>
    public static readonly IpyRpcFormatter<ushort> UInt16 = new IntegerFormatter<ushort>(ushort.MinValue, ushort.MaxValue, "an unsigned 16-bit integer", static v => v, static v => (ushort)v);
    /// <summary><see cref="int"/>.</summary>
    public static readonly IpyRpcFormatter<int> Int32 = new Int32Formatter();
    /// <summary><see cref="uint"/>.</summary>
    public static readonly IpyRpcFormatter<uint> UInt32 = new IntegerFormatter<uint>(uint.MinValue, uint.MaxValue, "an unsigned 32-bit integer", static v => v, static v => (uint)v);
    /// <summary><see cref="long"/>.</summary>
    public static readonly IpyRpcFormatter<long> Int64 = new IntegerFormatter<long>(long.MinValue, long.MaxValue, "a 64-bit integer", static v => v, static v => v);
    /// <summary><see cref="ulong"/>.</summary>
    public static readonly IpyRpcFormatter<ulong> UInt64 = new UInt64Formatter();
    /// <summary><see cref="float"/>.</summary>
    public static readonly IpyRpcFormatter<float> Single = new SingleFormatter();
    /// <summary><see cref="double"/>.</summary>
    public static readonly IpyRpcFormatter<double> Double = new DoubleFormatter();
    /// <summary><see cref="decimal"/>: an invariant string in MessagePack, a number in JSON.</summary>
    public static readonly IpyRpcFormatter<decimal> Decimal = new DecimalFormatter();
    /// <summary><see cref="char"/>: a one-character string.</summary>
    public static readonly IpyRpcFormatter<char> Char = new CharFormatter();
    /// <summary><see cref="string"/> (null is nil/null).</summary>
    public static readonly IpyRpcFormatter<string?> String = new StringFormatter();
    /// <summary><see cref="byte"/> arrays: MessagePack bin; JSON base64.</summary>
    public static readonly IpyRpcFormatter<byte[]?> ByteArray = new ByteArrayFormatter();
    /// <summary><see cref="System.Guid"/>: its 36-character string.</summary>
    public static readonly IpyRpcFormatter<Guid> Guid = new GuidFormatter();
    /// <summary><see cref="System.DateTime"/>: the MessagePack timestamp extension; an ISO 8601 string in JSON.</summary>
    public static readonly IpyRpcFormatter<DateTime> DateTime = new DateTimeFormatter();
    /// <summary><see cref="System.DateTimeOffset"/>: an ISO 8601 string with offset.</summary>
    public static readonly IpyRpcFormatter<DateTimeOffset> DateTimeOffset = new DateTimeOffsetFormatter();
    /// <summary><see cref="System.TimeSpan"/>: the invariant "c" string (<c>[-][d.]hh:mm:ss[.fffffff]</c>); a number of seconds is accepted on input.</summary>
    public static readonly IpyRpcFormatter<TimeSpan> TimeSpan = new TimeSpanFormatter();
    /// <summary><see cref="object"/>: any value, written by its runtime type, read as plain data.</summary>
    public static readonly IpyRpcFormatter<object?> Object = new DynamicFormatter();

    /// <summary><see cref="double"/> arrays: raw little-endian float64 in MessagePack.</summary>
    public static readonly IpyRpcFormatter<double[]?> DoubleArray = new NumericArrayFormatter<double>("<f8", Double);
    /// <summary><see cref="float"/> arrays: raw little-endian float32 in MessagePack.</summary>
    public static readonly IpyRpcFormatter<float[]?> SingleArray = new NumericArrayFormatter<float>("<f4", Single);
    /// <summary><see cref="int"/> arrays: raw little-endian int32 in MessagePack.</summary>
    public static readonly IpyRpcFormatter<int[]?> Int32Array = new NumericArrayFormatter<int>("<i4", Int32);
    /// <summary><see cref="long"/> arrays: raw little-endian int64 in MessagePack.</summary>
    public static readonly IpyRpcFormatter<long[]?> Int64Array = new NumericArrayFormatter<long>("<i8", Int64);
    /// <summary><see cref="short"/> arrays: raw little-endian int16 in MessagePack.</summary>
    public static readonly IpyRpcFormatter<short[]?> Int16Array = new NumericArrayFormatter<short>("<i2", Int16);
    /// <summary><see cref="ushort"/> arrays: raw little-endian uint16 in MessagePack.</summary>
    public static readonly IpyRpcFormatter<ushort[]?> UInt16Array = new NumericArrayFormatter<ushort>("<u2", UInt16);
    /// <summary><see cref="uint"/> arrays: raw little-endian uint32 in MessagePack.</summary>
    public static readonly IpyRpcFormatter<uint[]?> UInt32Array = new NumericArrayFormatter<uint>("<u4", UInt32);
    /// <summary><see cref="ulong"/> arrays: raw little-endian uint64 in MessagePack.</summary>
    public static readonly IpyRpcFormatter<ulong[]?> UInt64Array = new NumericArrayFormatter<ulong>("<u8", UInt64);
    /// <summary><see cref="sbyte"/> arrays: raw int8 in MessagePack.</summary>
    public static readonly IpyRpcFormatter<sbyte[]?> SByteArray = new NumericArrayFormatter<sbyte>("|i1", SByte);

    /// <summary><see cref="System.Numerics.Tensors.Tensor{T}"/> of <see cref="double"/>: an ndarray of dtype &lt;f8.</summary>
    public static readonly IpyRpcFormatter<System.Numerics.Tensors.Tensor<double>?> DoubleTensor = new TensorFormatter<double>("<f8", Double);
    /// <summary>Tensors of <see cref="float"/> (&lt;f4).</summary>
    public static readonly IpyRpcFormatter<System.Numerics.Tensors.Tensor<float>?> SingleTensor = new TensorFormatter<float>("<f4", Single);
    /// <summary>Tensors of <see cref="long"/> (&lt;i8).</summary>
    public static readonly IpyRpcFormatter<System.Numerics.Tensors.Tensor<long>?> Int64Tensor = new TensorFormatter<long>("<i8", Int64);
    /// <summary>Tensors of <see cref="int"/> (&lt;i4).</summary>
    public static readonly IpyRpcFormatter<System.Numerics.Tensors.Tensor<int>?> Int32Tensor = new TensorFormatter<int>("<i4", Int32);
    /// <summary>Tensors of <see cref="short"/> (&lt;i2).</summary>
    public static readonly IpyRpcFormatter<System.Numerics.Tensors.Tensor<short>?> Int16Tensor = new TensorFormatter<short>("<i2", Int16);
    /// <summary>Tensors of <see cref="sbyte"/> (|i1).</summary>
    public static readonly IpyRpcFormatter<System.Numerics.Tensors.Tensor<sbyte>?> SByteTensor = new TensorFormatter<sbyte>("|i1", SByte);
    /// <summary>Tensors of <see cref="ulong"/> (&lt;u8).</summary>
    public static readonly IpyRpcFormatter<System.Numerics.Tensors.Tensor<ulong>?> UInt64Tensor = new TensorFormatter<ulong>("<u8", UInt64);
    /// <summary>Tensors of <see cref="uint"/> (&lt;u4).</summary>
    public static readonly IpyRpcFormatter<System.Numerics.Tensors.Tensor<uint>?> UInt32Tensor = new TensorFormatter<uint>("<u4", UInt32);
    /// <summary>Tensors of <see cref="ushort"/> (&lt;u2).</summary>
    public static readonly IpyRpcFormatter<System.Numerics.Tensors.Tensor<ushort>?> UInt16Tensor = new TensorFormatter<ushort>("<u2", UInt16);
    /// <summary>Tensors of <see cref="byte"/> (|u1).</summary>
    public static readonly IpyRpcFormatter<System.Numerics.Tensors.Tensor<byte>?> ByteTensor = new TensorFormatter<byte>("|u1", Byte);

    /// <summary>A <see cref="IpyRpc.DataFrame"/> as the seeds' pandas shape.</summary>
    public static readonly IpyRpcFormatter<DataFrame?> DataFrame = new DataFrameFormatter();

    /// <summary>double[,]: an ndarray of dtype &lt;f8 (2 dimensions).</summary>
    public static readonly IpyRpcFormatter<double[,]?> DoubleArray2D = new NdArrayFormatter<double[,], double>("<f8", 2, Double, static s => new double[s[0], s[1]]);

    /// <summary>double[,,]: an ndarray of dtype &lt;f8 (3 dimensions).</summary>
    public static readonly IpyRpcFormatter<double[,,]?> DoubleArray3D = new NdArrayFormatter<double[,,], double>("<f8", 3, Double, static s => new double[s[0], s[1], s[2]]);

    /// <summary>float[,]: an ndarray of dtype &lt;f4 (2 dimensions).</summary>
    public static readonly IpyRpcFormatter<float[,]?> SingleArray2D = new NdArrayFormatter<float[,], float>("<f4", 2, Single, static s => new float[s[0], s[1]]);

    /// <summary>float[,,]: an ndarray of dtype &lt;f4 (3 dimensions).</summary>
    public static readonly IpyRpcFormatter<float[,,]?> SingleArray3D = new NdArrayFormatter<float[,,], float>("<f4", 3, Single, static s => new float[s[0], s[1], s[2]]);

    /// <summary>int[,]: an ndarray of dtype &lt;i4 (2 dimensions).</summary>
    public static readonly IpyRpcFormatter<int[,]?> Int32Array2D = new NdArrayFormatter<int[,], int>("<i4", 2, Int32, static s => new int[s[0], s[1]]);

    /// <summary>int[,,]: an ndarray of dtype &lt;i4 (3 dimensions).</summary>
    public static readonly IpyRpcFormatter<int[,,]?> Int32Array3D = new NdArrayFormatter<int[,,], int>("<i4", 3, Int32, static s => new int[s[0], s[1], s[2]]);

    /// <summary>long[,]: an ndarray of dtype &lt;i8 (2 dimensions).</summary>
    public static readonly IpyRpcFormatter<long[,]?> Int64Array2D = new NdArrayFormatter<long[,], long>("<i8", 2, Int64, static s => new long[s[0], s[1]]);

    /// <summary>long[,,]: an ndarray of dtype &lt;i8 (3 dimensions).</summary>
    public static readonly IpyRpcFormatter<long[,,]?> Int64Array3D = new NdArrayFormatter<long[,,], long>("<i8", 3, Int64, static s => new long[s[0], s[1], s[2]]);

    /// <summary>short[,]: an ndarray of dtype &lt;i2 (2 dimensions).</summary>
    public static readonly IpyRpcFormatter<short[,]?> Int16Array2D = new NdArrayFormatter<short[,], short>("<i2", 2, Int16, static s => new short[s[0], s[1]]);

    /// <summary>short[,,]: an ndarray of dtype &lt;i2 (3 dimensions).</summary>
    public static readonly IpyRpcFormatter<short[,,]?> Int16Array3D = new NdArrayFormatter<short[,,], short>("<i2", 3, Int16, static s => new short[s[0], s[1], s[2]]);

    /// <summary>ushort[,]: an ndarray of dtype &lt;u2 (2 dimensions).</summary>
    public static readonly IpyRpcFormatter<ushort[,]?> UInt16Array2D = new NdArrayFormatter<ushort[,], ushort>("<u2", 2, UInt16, static s => new ushort[s[0], s[1]]);

    /// <summary>ushort[,,]: an ndarray of dtype &lt;u2 (3 dimensions).</summary>
    public static readonly IpyRpcFormatter<ushort[,,]?> UInt16Array3D = new NdArrayFormatter<ushort[,,], ushort>("<u2", 3, UInt16, static s => new ushort[s[0], s[1], s[2]]);

    /// <summary>uint[,]: an ndarray of dtype &lt;u4 (2 dimensions).</summary>
    public static readonly IpyRpcFormatter<uint[,]?> UInt32Array2D = new NdArrayFormatter<uint[,], uint>("<u4", 2, UInt32, static s => new uint[s[0], s[1]]);

    /// <summary>uint[,,]: an ndarray of dtype &lt;u4 (3 dimensions).</summary>
    public static readonly IpyRpcFormatter<uint[,,]?> UInt32Array3D = new NdArrayFormatter<uint[,,], uint>("<u4", 3, UInt32, static s => new uint[s[0], s[1], s[2]]);

    /// <summary>ulong[,]: an ndarray of dtype &lt;u8 (2 dimensions).</summary>
    public static readonly IpyRpcFormatter<ulong[,]?> UInt64Array2D = new NdArrayFormatter<ulong[,], ulong>("<u8", 2, UInt64, static s => new ulong[s[0], s[1]]);

    /// <summary>ulong[,,]: an ndarray of dtype &lt;u8 (3 dimensions).</summary>
    public static readonly IpyRpcFormatter<ulong[,,]?> UInt64Array3D = new NdArrayFormatter<ulong[,,], ulong>("<u8", 3, UInt64, static s => new ulong[s[0], s[1], s[2]]);

    /// <summary>sbyte[,]: an ndarray of dtype |i1 (2 dimensions).</summary>
    public static readonly IpyRpcFormatter<sbyte[,]?> SByteArray2D = new NdArrayFormatter<sbyte[,], sbyte>("|i1", 2, SByte, static s => new sbyte[s[0], s[1]]);

    /// <summary>sbyte[,,]: an ndarray of dtype |i1 (3 dimensions).</summary>
    public static readonly IpyRpcFormatter<sbyte[,,]?> SByteArray3D = new NdArrayFormatter<sbyte[,,], sbyte>("|i1", 3, SByte, static s => new sbyte[s[0], s[1], s[2]]);

    /// <summary>byte[,]: an ndarray of dtype |u1 (2 dimensions).</summary>
    public static readonly IpyRpcFormatter<byte[,]?> ByteArray2D = new NdArrayFormatter<byte[,], byte>("|u1", 2, Byte, static s => new byte[s[0], s[1]]);

    /// <summary>byte[,,]: an ndarray of dtype |u1 (3 dimensions).</summary>
    public static readonly IpyRpcFormatter<byte[,,]?> ByteArray3D = new NdArrayFormatter<byte[,,], byte>("|u1", 3, Byte, static s => new byte[s[0], s[1], s[2]]);

    private sealed class BooleanFormatter : IpyRpcFormatter<bool>
    {
        public override void Write(ref MessagePackWriter writer, bool value) => writer.Write(value);
        public override bool Read(ref MessagePackReader reader) => reader.ReadBoolean();
        public override void Write(Utf8JsonWriter writer, bool value) => writer.WriteBooleanValue(value);
        public override bool Read(ref Utf8JsonReader reader) => reader.TokenType switch
        {
            JsonTokenType.True => true,
            JsonTokenType.False => false,
            _ => throw JsonRead.Unexpected(ref reader, "a boolean"),
        };
    }

    private sealed class Int32Formatter : IpyRpcFormatter<int>
    {
        public override void Write(ref MessagePackWriter writer, int value) => writer.Write((long)value);
        public override int Read(ref MessagePackReader reader) => reader.ReadInt32();
        public override void Write(Utf8JsonWriter writer, int value) => writer.WriteNumberValue(value);
        public override int Read(ref Utf8JsonReader reader)
        {
            if (reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out int v))
            {
                return v;
            }

            return (int)JsonRead.Int64(ref reader, int.MinValue, int.MaxValue, "a 32-bit integer");
        }
    }

    private sealed class IntegerFormatter<T>(long min, long max, string what, Func<T, long> widen, Func<long, T> narrow) : IpyRpcFormatter<T>
    {
        public override void Write(ref MessagePackWriter writer, T value) => writer.Write(widen(value));

        public override T Read(ref MessagePackReader reader)
        {
            int start = reader.Position;
            long v = reader.ReadInt64();
            if (v < min || v > max)
            {
                throw new MessagePackSerializationException($"Integer {v} is out of range for {what}", start);
            }

            return narrow(v);
        }

        public override void Write(Utf8JsonWriter writer, T value) => writer.WriteNumberValue(widen(value));
        public override T Read(ref Utf8JsonReader reader) => narrow(JsonRead.Int64(ref reader, min, max, what));
    }

    private sealed class UInt64Formatter : IpyRpcFormatter<ulong>
    {
        public override void Write(ref MessagePackWriter writer, ulong value) => writer.Write(value);
        public override ulong Read(ref MessagePackReader reader) => reader.ReadUInt64();
        public override void Write(Utf8JsonWriter writer, ulong value) => writer.WriteNumberValue(value);

        public override ulong Read(ref Utf8JsonReader reader)
        {
            return JsonRead.UInt64(ref reader, "an unsigned 64-bit integer");
        }
    }

    private sealed class DoubleFormatter : IpyRpcFormatter<double>
    {
        public override void Write(ref MessagePackWriter writer, double value) => writer.Write(value);
        public override double Read(ref MessagePackReader reader) => reader.ReadDouble();
        public override void Write(Utf8JsonWriter writer, double value) => WriteJsonDouble(writer, value);
        public override double Read(ref Utf8JsonReader reader) => ReadJsonDouble(ref reader);
    }

    private sealed class SingleFormatter : IpyRpcFormatter<float>
    {
        public override void Write(ref MessagePackWriter writer, float value) => writer.Write(value);
        public override float Read(ref MessagePackReader reader) => reader.ReadSingle();

        public override void Write(Utf8JsonWriter writer, float value)
        {
            if (float.IsFinite(value))
            {
                writer.WriteNumberValue(value);
            }
            else
            {
                WriteJsonDouble(writer, value);
            }
        }

        public override float Read(ref Utf8JsonReader reader) => (float)ReadJsonDouble(ref reader);
    }

    /// <summary>Writes a double; NaN and the infinities become the strings "NaN", "Infinity", "-Infinity", as JSON has no literal for them.</summary>
    internal static void WriteJsonDouble(Utf8JsonWriter writer, double value)
    {
        if (double.IsFinite(value))
        {
            writer.WriteNumberValue(value);
        }
        else
        {
            writer.WriteStringValue(double.IsNaN(value) ? "NaN" : value > 0 ? "Infinity" : "-Infinity");
        }
    }

    internal static double ReadJsonDouble(ref Utf8JsonReader reader)
    {
        if (reader.TokenType == JsonTokenType.Number)
        {
            return reader.GetDouble();
        }

        if (reader.TokenType == JsonTokenType.String)
        {
            if (reader.ValueTextEquals("NaN"u8)) return double.NaN;
            if (reader.ValueTextEquals("Infinity"u8)) return double.PositiveInfinity;
            if (reader.ValueTextEquals("-Infinity"u8)) return double.NegativeInfinity;
        }

        throw JsonRead.Unexpected(ref reader, "a number");
    }

    private sealed class DecimalFormatter : IpyRpcFormatter<decimal>
    {
        public override void Write(ref MessagePackWriter writer, decimal value) => writer.Write(value.ToString(CultureInfo.InvariantCulture));

        public override decimal Read(ref MessagePackReader reader)
        {
            switch (reader.NextType)
            {
                case MessagePackType.String:
                    int start = reader.Position;
                    string s = reader.ReadString()!;
                    return decimal.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out decimal d) ? d
                        : throw new MessagePackSerializationException($"\"{s}\" is not a decimal number", start);
                case MessagePackType.Integer:
                    return reader.NextCode == 0xcf ? reader.ReadUInt64() : reader.ReadInt64();
                case MessagePackType.Float:
                    return (decimal)reader.ReadDouble();
                default:
                    throw reader.Error($"Expected a decimal (string or number) but found {MessagePackReader.Describe(reader.NextType)}");
            }
        }

        public override void Write(Utf8JsonWriter writer, decimal value) => writer.WriteNumberValue(value);

        public override decimal Read(ref Utf8JsonReader reader)
        {
            if (reader.TokenType == JsonTokenType.Number && reader.TryGetDecimal(out decimal d))
            {
                return d;
            }

            if (reader.TokenType == JsonTokenType.String && decimal.TryParse(reader.GetString(), NumberStyles.Float, CultureInfo.InvariantCulture, out d))
            {
                return d;
            }

            throw JsonRead.Unexpected(ref reader, "a decimal number");
        }
    }

    private sealed class CharFormatter : IpyRpcFormatter<char>
    {
        public override void Write(ref MessagePackWriter writer, char value) => writer.Write(value.ToString());

        public override char Read(ref MessagePackReader reader)
        {
            int start = reader.Position;
            string? s = reader.ReadString();
            return s is { Length: 1 } ? s[0] : throw new MessagePackSerializationException("Expected a one-character string", start);
        }

        public override void Write(Utf8JsonWriter writer, char value) => writer.WriteStringValue(value.ToString());

        public override char Read(ref Utf8JsonReader reader)
        {
            JsonRead.Expect(ref reader, JsonTokenType.String, "a one-character string");
            string s = reader.GetString()!;
            return s.Length == 1 ? s[0] : throw new IpyRpcSerializationException("Expected a one-character string");
        }
    }

    private sealed class StringFormatter : IpyRpcFormatter<string?>
    {
        public override void Write(ref MessagePackWriter writer, string? value) => writer.Write(value);
        public override string? Read(ref MessagePackReader reader) => reader.ReadString();

        public override void Write(Utf8JsonWriter writer, string? value)
        {
            if (value is null) writer.WriteNullValue();
            else writer.WriteStringValue(value);
        }

        public override string? Read(ref Utf8JsonReader reader) => reader.TokenType switch
        {
            JsonTokenType.String => reader.GetString(),
            JsonTokenType.Null => null,
            _ => throw JsonRead.Unexpected(ref reader, "a string"),
        };
    }

    /// <summary>
    /// A new array holding <paramref name="bytes"/>: allocated without clearing first, since the copy fills it (a large
    /// array cleared and then overwritten costs its size in memory traffic twice).
    /// </summary>
    internal static byte[] CopyOf(ReadOnlySpan<byte> bytes)
    {
        byte[] copy = GC.AllocateUninitializedArray<byte>(bytes.Length);
        bytes.CopyTo(copy);
        return copy;
    }

    private sealed class ByteArrayFormatter : IpyRpcFormatter<byte[]?>
    {
        public override void Write(ref MessagePackWriter writer, byte[]? value)
        {
            if (value is null) writer.WriteNil();
            else writer.WriteBinary(value);
        }

        public override byte[]? Read(ref MessagePackReader reader)
        {
            if (reader.TryReadNil())
            {
                return null;
            }

            if (reader.NextType == MessagePackType.Array)
            {
                int n = reader.ReadArrayHeader();
                byte[] a = new byte[n];
                for (int i = 0; i < n; i++) a[i] = reader.ReadByte();
                return a;
            }

            return CopyOf(reader.ReadBinary());
        }

        public override void Write(Utf8JsonWriter writer, byte[]? value)
        {
            if (value is null) writer.WriteNullValue();
            else writer.WriteBase64StringValue(value);
        }

        public override byte[]? Read(ref Utf8JsonReader reader)
        {
            switch (reader.TokenType)
            {
                case JsonTokenType.Null:
                    return null;
                case JsonTokenType.String:
                    return reader.TryGetBytesFromBase64(out byte[]? bytes) ? bytes
                        : throw new IpyRpcSerializationException("Expected base64-encoded bytes but the string is not valid base64");
                case JsonTokenType.StartArray:
                    var list = new List<byte>();
                    while (true)
                    {
                        JsonRead.Next(ref reader);
                        if (reader.TokenType == JsonTokenType.EndArray) return list.ToArray();
                        list.Add((byte)JsonRead.Int64(ref reader, 0, 255, "a byte"));
                    }

                default:
                    throw JsonRead.Unexpected(ref reader, "base64 bytes");
            }
        }
    }

    private sealed class GuidFormatter : IpyRpcFormatter<Guid>
    {
        public override void Write(ref MessagePackWriter writer, Guid value)
        {
            Span<byte> utf8 = stackalloc byte[36];
            value.TryFormat(utf8, out _, "D");
            writer.WriteString(utf8);
        }

        public override Guid Read(ref MessagePackReader reader)
        {
            int start = reader.Position;
            if (reader.NextType == MessagePackType.Binary)
            {
                ReadOnlySpan<byte> b = reader.ReadBinary();
                return b.Length == 16 ? new Guid(b) : throw new MessagePackSerializationException("A binary GUID must have 16 bytes", start);
            }

            return System.Guid.TryParse(reader.ReadStringSpan(), out Guid g) ? g
                : throw new MessagePackSerializationException("String is not a GUID", start);
        }

        public override void Write(Utf8JsonWriter writer, Guid value) => writer.WriteStringValue(value);

        public override Guid Read(ref Utf8JsonReader reader)
        {
            JsonRead.Expect(ref reader, JsonTokenType.String, "a GUID string");
            return reader.TryGetGuid(out Guid g) ? g : throw new IpyRpcSerializationException("String is not a GUID");
        }
    }

    private sealed class DateTimeFormatter : IpyRpcFormatter<DateTime>
    {
        public override void Write(ref MessagePackWriter writer, DateTime value) => writer.Write(value);

        public override DateTime Read(ref MessagePackReader reader)
        {
            if (reader.NextType == MessagePackType.String)
            {
                int start = reader.Position;
                string s = reader.ReadString()!;
                return System.DateTime.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out DateTime d) ? d
                    : throw new MessagePackSerializationException($"\"{s}\" is not an ISO 8601 date and time", start);
            }

            return reader.ReadDateTime();
        }

        public override void Write(Utf8JsonWriter writer, DateTime value) => writer.WriteStringValue(value);

        public override DateTime Read(ref Utf8JsonReader reader)
        {
            JsonRead.Expect(ref reader, JsonTokenType.String, "an ISO 8601 date-time string");
            return reader.TryGetDateTime(out DateTime d) ? d : throw new IpyRpcSerializationException("String is not an ISO 8601 date and time");
        }
    }

    private sealed class DateTimeOffsetFormatter : IpyRpcFormatter<DateTimeOffset>
    {
        public override void Write(ref MessagePackWriter writer, DateTimeOffset value) => writer.Write(value.ToString("O", CultureInfo.InvariantCulture));

        public override DateTimeOffset Read(ref MessagePackReader reader)
        {
            int start = reader.Position;
            if (reader.NextType == MessagePackType.Extension)
            {
                return new DateTimeOffset(reader.ReadDateTime(), System.TimeSpan.Zero);
            }

            string? s = reader.ReadString();
            return System.DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out DateTimeOffset d) ? d
                : throw new MessagePackSerializationException($"\"{s}\" is not an ISO 8601 date and time with offset", start);
        }

        public override void Write(Utf8JsonWriter writer, DateTimeOffset value) => writer.WriteStringValue(value);

        public override DateTimeOffset Read(ref Utf8JsonReader reader)
        {
            JsonRead.Expect(ref reader, JsonTokenType.String, "an ISO 8601 date-time string");
            return reader.TryGetDateTimeOffset(out DateTimeOffset d) ? d : throw new IpyRpcSerializationException("String is not an ISO 8601 date and time with offset");
        }
    }

    private sealed class TimeSpanFormatter : IpyRpcFormatter<TimeSpan>
    {
        public override void Write(ref MessagePackWriter writer, TimeSpan value) => writer.Write(value.ToString("c", CultureInfo.InvariantCulture));

        public override TimeSpan Read(ref MessagePackReader reader)
        {
            int start = reader.Position;
            if (reader.NextType is MessagePackType.Integer or MessagePackType.Float)
            {
                return System.TimeSpan.FromSeconds(reader.ReadDouble());
            }

            string? s = reader.ReadString();
            return System.TimeSpan.TryParse(s, CultureInfo.InvariantCulture, out TimeSpan t) ? t
                : throw new MessagePackSerializationException($"\"{s}\" is not a time span ([-][d.]hh:mm:ss[.fffffff])", start);
        }

        public override void Write(Utf8JsonWriter writer, TimeSpan value) => writer.WriteStringValue(value.ToString("c", CultureInfo.InvariantCulture));

        public override TimeSpan Read(ref Utf8JsonReader reader)
        {
            if (reader.TokenType == JsonTokenType.Number)
            {
                return System.TimeSpan.FromSeconds(reader.GetDouble());
            }

            JsonRead.Expect(ref reader, JsonTokenType.String, "a time span string");
            return System.TimeSpan.TryParse(reader.GetString(), CultureInfo.InvariantCulture, out TimeSpan t) ? t
                : throw new IpyRpcSerializationException("String is not a time span ([-][d.]hh:mm:ss[.fffffff])");
        }
    }
}
