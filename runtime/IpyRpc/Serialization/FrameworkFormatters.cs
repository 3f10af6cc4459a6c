using System.Globalization;
using System.Numerics;
using System.Text.Json;
using IpyRpc.Formatting.Json;
using IpyRpc.MessagePack;

namespace IpyRpc.Formatting;

// Framework types with a natural wire form: dates and times of day as ISO 8601 text, wide integers as numbers (text
// past 64 bits), addresses and versions as their text, byte memory as bytes, JSON values as themselves.
public static partial class Formatters
{
    /// <summary><see cref="System.DateOnly"/>: ISO 8601 text, <c>yyyy-MM-dd</c>.</summary>
    public static readonly IpyRpcFormatter<DateOnly> DateOnly = new TextFormatter<DateOnly>("a date (yyyy-MM-dd)", DateText, TryParseDate);

    /// <summary>A date as its wire text, <c>yyyy-MM-dd</c> (values and dictionary keys alike).</summary>
    internal static string DateText(DateOnly date) => date.ToString("O", CultureInfo.InvariantCulture);

    /// <summary>A date from its wire text, <c>yyyy-MM-dd</c>.</summary>
    internal static bool TryParseDate(string text, out DateOnly date) => System.DateOnly.TryParseExact(text, "O", CultureInfo.InvariantCulture, DateTimeStyles.None, out date);

    /// <summary><see cref="System.TimeOnly"/>: ISO 8601 text, <c>HH:mm:ss[.fffffff]</c> (<c>HH:mm</c> is read too).</summary>
    public static readonly IpyRpcFormatter<TimeOnly> TimeOnly = new TextFormatter<TimeOnly>(
        "a time of day (HH:mm:ss[.fffffff])",
        static t => t.ToString("HH:mm:ss.FFFFFFF", CultureInfo.InvariantCulture),
        static (string s, out TimeOnly t) => System.TimeOnly.TryParseExact(s, TimeOfDayFormats, CultureInfo.InvariantCulture, DateTimeStyles.None, out t));

    /// <summary><see cref="System.Half"/>: a float32 in MessagePack, a number in JSON.</summary>
    public static readonly IpyRpcFormatter<Half> Half = new HalfFormatter();

    /// <summary><see cref="System.Int128"/>: an integer while it fits 64 bits, else its decimal text (MessagePack); a number in JSON.</summary>
    public static readonly IpyRpcFormatter<Int128> Int128 = new WideIntegerFormatter<Int128>("a 128-bit integer");

    /// <summary><see cref="System.UInt128"/>: as <see cref="Int128"/>.</summary>
    public static readonly IpyRpcFormatter<UInt128> UInt128 = new WideIntegerFormatter<UInt128>("an unsigned 128-bit integer");

    /// <summary><see cref="System.Numerics.BigInteger"/>: as <see cref="Int128"/>, of any size.</summary>
    public static readonly IpyRpcFormatter<BigInteger> BigInteger = new WideIntegerFormatter<BigInteger>("an integer");

    /// <summary><see cref="System.Uri"/>: its text as given (absolute or relative).</summary>
    public static readonly IpyRpcFormatter<Uri?> Uri = new ReferenceTextFormatter<Uri>(
        "a URI", static u => u.OriginalString, static (string s, out Uri u) => System.Uri.TryCreate(s, UriKind.RelativeOrAbsolute, out u!));

    /// <summary><see cref="System.Version"/>: its text, <c>major.minor[.build[.revision]]</c>.</summary>
    public static readonly IpyRpcFormatter<Version?> Version = new ReferenceTextFormatter<Version>(
        "a version (major.minor[.build[.revision]])", static v => v.ToString(), static (string s, out Version v) => System.Version.TryParse(s, out v!));

    /// <summary><see cref="ReadOnlyMemory{T}"/> of bytes: as <c>byte[]</c> (MessagePack bin, JSON base64).</summary>
    public static readonly IpyRpcFormatter<ReadOnlyMemory<byte>> ReadOnlyByteMemory = new ByteMemoryFormatter<ReadOnlyMemory<byte>>(static m => m.Span, static a => a);

    /// <summary><see cref="Memory{T}"/> of bytes: as <c>byte[]</c> (MessagePack bin, JSON base64).</summary>
    public static readonly IpyRpcFormatter<Memory<byte>> ByteMemory = new ByteMemoryFormatter<Memory<byte>>(static m => m.Span, static a => a);

    /// <summary>
    /// <see cref="System.Text.Json.JsonElement"/>: any JSON value, as itself in JSON and as the same plain data in MessagePack
    /// (objects are maps, arrays are arrays). An undefined element (<c>default</c>) is nil.
    /// </summary>
    public static readonly IpyRpcFormatter<JsonElement> JsonElement = new JsonElementFormatter();

    private static readonly string[] TimeOfDayFormats = ["HH:mm:ss.FFFFFFF", "HH:mm:ss", "HH:mm"];

    private delegate bool TryParseText<T>(string text, out T value);

    /// <summary>A value type that travels as text.</summary>
    private sealed class TextFormatter<T>(string what, Func<T, string> format, TryParseText<T> parse) : IpyRpcFormatter<T>
    {
        public override void Write(ref MessagePackWriter writer, T value) => writer.Write(format(value));

        public override T Read(ref MessagePackReader reader)
        {
            int start = reader.Position;
            if (reader.NextType != MessagePackType.String)
            {
                throw reader.Error($"Expected {what} but found {MessagePackReader.Describe(reader.NextType)}");
            }

            string s = reader.ReadString()!;
            return parse(s, out T value) ? value : throw new MessagePackSerializationException($"\"{s}\" is not {what}", start);
        }

        public override void Write(Utf8JsonWriter writer, T value) => writer.WriteStringValue(format(value));

        public override T Read(ref Utf8JsonReader reader)
        {
            JsonRead.Expect(ref reader, JsonTokenType.String, what);
            string s = reader.GetString()!;
            return parse(s, out T value) ? value : throw new IpyRpcSerializationException($"\"{s}\" is not {what}");
        }
    }

    /// <summary>A reference type that travels as text; null is nil/null, anything else as <see cref="TextFormatter{T}"/> reads and writes it.</summary>
    private sealed class ReferenceTextFormatter<T>(string what, Func<T, string> format, TryParseText<T> parse) : IpyRpcFormatter<T?>
        where T : class
    {
        private readonly TextFormatter<T> _text = new(what, format, parse);

        public override void Write(ref MessagePackWriter writer, T? value)
        {
            if (value is null) writer.WriteNil();
            else _text.Write(ref writer, value);
        }

        public override T? Read(ref MessagePackReader reader) => reader.TryReadNil() ? null : _text.Read(ref reader);

        public override void Write(Utf8JsonWriter writer, T? value)
        {
            if (value is null) writer.WriteNullValue();
            else _text.Write(writer, value);
        }

        public override T? Read(ref Utf8JsonReader reader) => reader.TokenType == JsonTokenType.Null ? null : _text.Read(ref reader);
    }

    private sealed class HalfFormatter : IpyRpcFormatter<Half>
    {
        public override void Write(ref MessagePackWriter writer, Half value) => writer.Write((float)value);

        public override Half Read(ref MessagePackReader reader) => (Half)reader.ReadDouble();

        public override void Write(Utf8JsonWriter writer, Half value) => Single.Write(writer, (float)value);

        public override Half Read(ref Utf8JsonReader reader) => (Half)ReadJsonDouble(ref reader);
    }

    /// <summary>
    /// An integer of more than 64 bits: a MessagePack integer while it fits one (so every peer reads the common case),
    /// its decimal text past that; a JSON number with every digit. Text is read in both.
    /// </summary>
    private sealed class WideIntegerFormatter<T>(string what) : IpyRpcFormatter<T>
        where T : IBinaryInteger<T>
    {
        public override void Write(ref MessagePackWriter writer, T value)
        {
            var wide = System.Numerics.BigInteger.CreateTruncating(value);
            if (wide >= long.MinValue && wide <= long.MaxValue) writer.Write((long)wide);
            else if (wide.Sign > 0 && wide <= ulong.MaxValue) writer.Write((ulong)wide);
            else writer.Write(wide.ToString(CultureInfo.InvariantCulture));
        }

        public override T Read(ref MessagePackReader reader)
        {
            int start = reader.Position;
            switch (reader.NextType)
            {
                case MessagePackType.Integer:
                    return reader.NextCode == MessagePackCode.UInt64 ? FromNumber(reader.ReadUInt64(), start) : FromNumber(reader.ReadInt64(), start);
                case MessagePackType.String:
                    string s = reader.ReadString()!;
                    return TryParse(s, out T value) ? value : throw new MessagePackSerializationException($"\"{s}\" is not {what}", start);
                default:
                    throw reader.Error($"Expected {what} (a whole number, or its decimal text) but found {MessagePackReader.Describe(reader.NextType)}");
            }
        }

        public override void Write(Utf8JsonWriter writer, T value) => writer.WriteRawValue(value.ToString(null, CultureInfo.InvariantCulture), skipInputValidation: true);

        public override T Read(ref Utf8JsonReader reader)
        {
            if (reader.TokenType is not (JsonTokenType.Number or JsonTokenType.String)) throw JsonRead.Unexpected(ref reader, what);
            string s = reader.TokenType == JsonTokenType.String ? reader.GetString()! : System.Text.Encoding.UTF8.GetString(reader.ValueSpan);
            return TryParse(s, out T value) ? value
                : throw new IpyRpcSerializationException(reader.TokenType == JsonTokenType.String ? $"\"{s}\" is not {what}" : $"{s} is not {what}");
        }

        private T FromNumber<TNumber>(TNumber number, int start)
            where TNumber : IBinaryInteger<TNumber>
        {
            try
            {
                return T.CreateChecked(number);
            }
            catch (OverflowException)
            {
                throw new MessagePackSerializationException($"{number} is out of range for {what}", start);
            }
        }

        private static bool TryParse(string s, out T value)
        {
            value = T.Zero;
            if (!T.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out T? parsed) || parsed is null) return false;
            value = parsed;
            return true;
        }
    }

    private sealed class ByteMemoryFormatter<TMemory>(Func<TMemory, ReadOnlySpan<byte>> span, Func<byte[], TMemory> wrap) : IpyRpcFormatter<TMemory>
    {
        public override void Write(ref MessagePackWriter writer, TMemory value) => writer.WriteBinary(span(value));

        // A copy: the message's buffer is returned to its pool once the call has read it.
        public override TMemory Read(ref MessagePackReader reader) => wrap(ByteArray.Read(ref reader) ?? []);

        public override void Write(Utf8JsonWriter writer, TMemory value) => writer.WriteBase64StringValue(span(value));

        public override TMemory Read(ref Utf8JsonReader reader) => wrap(ByteArray.Read(ref reader) ?? []);
    }

    private sealed class JsonElementFormatter : IpyRpcFormatter<JsonElement>
    {
        public override void Write(ref MessagePackWriter writer, JsonElement value)
        {
            if (value.ValueKind == JsonValueKind.Undefined)
            {
                writer.WriteNil();
                return;
            }

            WritePlain(ref writer, value, 0);
        }

        // Its plain data: objects as maps, arrays as arrays, whole numbers as integers (to 64 bits, unsigned too), others as
        // doubles, text as text.
        private static void WritePlain(ref MessagePackWriter writer, JsonElement value, int depth)
        {
            if (depth > 256) throw new IpyRpcSerializationException("A JSON value nests more than 256 levels deep");
            switch (value.ValueKind)
            {
                case JsonValueKind.Object:
                    int count = 0;
                    foreach (JsonProperty _ in value.EnumerateObject()) count++;
                    writer.WriteMapHeader(count);
                    foreach (JsonProperty property in value.EnumerateObject())
                    {
                        writer.Write(property.Name);
                        WritePlain(ref writer, property.Value, depth + 1);
                    }

                    break;
                case JsonValueKind.Array:
                    writer.WriteArrayHeader(value.GetArrayLength());
                    foreach (JsonElement item in value.EnumerateArray()) WritePlain(ref writer, item, depth + 1);
                    break;
                case JsonValueKind.String:
                    writer.Write(value.GetString());
                    break;
                case JsonValueKind.Number:
                    if (value.TryGetInt64(out long l)) writer.Write(l);
                    else if (value.TryGetUInt64(out ulong u)) writer.Write(u);
                    else writer.Write(value.GetDouble());
                    break;
                case JsonValueKind.True:
                case JsonValueKind.False:
                    writer.Write(value.ValueKind == JsonValueKind.True);
                    break;
                default:
                    writer.WriteNil();
                    break;
            }
        }

        public override JsonElement Read(ref MessagePackReader reader)
        {
            object? plain = Object.Read(ref reader);
            var buffer = new System.Buffers.ArrayBufferWriter<byte>();
            using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JsonWire.Options.Encoder, SkipValidation = true }))
            {
                Object.Write(json, plain);
            }

            using JsonDocument document = JsonDocument.Parse(buffer.WrittenMemory);
            return document.RootElement.Clone();
        }

        public override void Write(Utf8JsonWriter writer, JsonElement value)
        {
            if (value.ValueKind == JsonValueKind.Undefined) writer.WriteNullValue();
            else value.WriteTo(writer);
        }

        public override JsonElement Read(ref Utf8JsonReader reader) => System.Text.Json.JsonElement.ParseValue(ref reader);
    }
}
