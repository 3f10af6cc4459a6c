using System.Globalization;
using System.Text.Json;
using IpyRpc.Formatting.Json;
using IpyRpc.MessagePack;

namespace IpyRpc.Formatting;

/// <summary>
/// How a dictionary key that is not a string travels: as itself in MessagePack (an integer key is an integer, an
/// enum key its member name, a <see cref="System.Guid"/> its text), and as its text in JSON, whose object keys are
/// strings. A MessagePack key given as text is read from the text too.
/// </summary>
/// <typeparam name="TKey">A string, an integer type, <see cref="System.Guid"/> or an enum.</typeparam>
public sealed class DictionaryKey<TKey>
    where TKey : notnull
{
    private readonly IpyRpcFormatter<TKey> _formatter;
    private readonly Func<TKey, string> _text;
    private readonly TryParse _parse;

    /// <summary>The key from its text; false when the text is not one.</summary>
    public delegate bool TryParse(string text, out TKey key);

    /// <summary>Creates a key from its formatter and its text form.</summary>
    /// <param name="formatter">Reads and writes the key in MessagePack.</param>
    /// <param name="text">The key as text (JSON object keys).</param>
    /// <param name="parse">The key from its text.</param>
    /// <param name="what">What a key is, for errors ("a 32-bit integer").</param>
    public DictionaryKey(IpyRpcFormatter<TKey> formatter, Func<TKey, string> text, TryParse parse, string what)
    {
        _formatter = formatter;
        _text = text;
        _parse = parse;
        What = what;
    }

    /// <summary>What a key is, as errors say it.</summary>
    public string What { get; }

    /// <summary>The key as text.</summary>
    public string Text(TKey key) => _text(key);

    /// <summary>The key from its text.</summary>
    /// <exception cref="IpyRpcSerializationException">The text is not a key.</exception>
    public TKey Parse(string text) => _parse(text, out TKey key) ? key : throw new IpyRpcSerializationException($"The key \"{text}\" is not {What}");

    /// <summary>Writes the key in MessagePack.</summary>
    public void Write(ref MessagePackWriter writer, TKey key) => _formatter.Write(ref writer, key);

    /// <summary>Reads a key in MessagePack: the key itself, or its text.</summary>
    public TKey Read(ref MessagePackReader reader)
    {
        int start = reader.Position;
        if (reader.NextType == MessagePackType.Nil) throw new MessagePackSerializationException($"A map key must be {What}, not nil", start);
        if (reader.NextType != MessagePackType.String) return _formatter.Read(ref reader) ?? throw new MessagePackSerializationException($"A map key must be {What}", start);
        string text = reader.ReadString()!;
        return _parse(text, out TKey key) ? key : throw new MessagePackSerializationException($"The key \"{text}\" is not {What}", start);
    }
}

/// <summary>The keys dictionaries may have: strings, integers, <see cref="System.Guid"/>s, enums, <see cref="System.DateOnly"/>s and <see cref="System.DateTime"/>s.</summary>
public static class DictionaryKeys
{
    /// <summary>String keys, as themselves.</summary>
    public static readonly DictionaryKey<string> String = new(Formatters.String!, static s => s, static (string s, out string v) => { v = s; return true; }, "a string");

    /// <summary><see cref="sbyte"/> keys.</summary>
    public static readonly DictionaryKey<sbyte> SByte = Integer(Formatters.SByte, "an 8-bit integer", static (string s, out sbyte v) => sbyte.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out v));

    /// <summary><see cref="byte"/> keys.</summary>
    public static readonly DictionaryKey<byte> Byte = Integer(Formatters.Byte, "an unsigned 8-bit integer", static (string s, out byte v) => byte.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out v));

    /// <summary><see cref="short"/> keys.</summary>
    public static readonly DictionaryKey<short> Int16 = Integer(Formatters.Int16, "a 16-bit integer", static (string s, out short v) => short.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out v));

    /// <summary><see cref="ushort"/> keys.</summary>
    public static readonly DictionaryKey<ushort> UInt16 = Integer(Formatters.UInt16, "an unsigned 16-bit integer", static (string s, out ushort v) => ushort.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out v));

    /// <summary><see cref="int"/> keys.</summary>
    public static readonly DictionaryKey<int> Int32 = Integer(Formatters.Int32, "a 32-bit integer", static (string s, out int v) => int.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out v));

    /// <summary><see cref="uint"/> keys.</summary>
    public static readonly DictionaryKey<uint> UInt32 = Integer(Formatters.UInt32, "an unsigned 32-bit integer", static (string s, out uint v) => uint.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out v));

    /// <summary><see cref="long"/> keys.</summary>
    public static readonly DictionaryKey<long> Int64 = Integer(Formatters.Int64, "a 64-bit integer", static (string s, out long v) => long.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out v));

    /// <summary><see cref="ulong"/> keys.</summary>
    public static readonly DictionaryKey<ulong> UInt64 = Integer(Formatters.UInt64, "an unsigned 64-bit integer", static (string s, out ulong v) => ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out v));

    /// <summary><see cref="System.DateOnly"/> keys, as their text (<c>yyyy-MM-dd</c>) in both serializations.</summary>
    public static readonly DictionaryKey<DateOnly> DateOnly = new(Formatters.DateOnly, Formatters.DateText, Formatters.TryParseDate, "a date (yyyy-MM-dd)");

    /// <summary>
    /// <see cref="System.DateTime"/> keys: the timestamp extension in MessagePack (as the value is), ISO 8601 text in JSON
    /// (round-trip form, <c>2026-12-07T10:30:00.0000000Z</c>); text is read in both.
    /// </summary>
    public static readonly DictionaryKey<DateTime> DateTime = new(
        Formatters.DateTime, static d => d.ToString("O", CultureInfo.InvariantCulture),
        static (string s, out DateTime d) => System.DateTime.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out d), "an ISO 8601 date and time");

    /// <summary><see cref="System.Guid"/> keys, as their text ("d2f4…-…").</summary>
    public static readonly DictionaryKey<Guid> Guid = new(Formatters.Guid, static g => g.ToString("D"), static (string s, out Guid g) => System.Guid.TryParse(s, out g), "a GUID");

    /// <summary>Keys of an enum: its member names (a number for a value that is no single member); names in any case and numbers are read.</summary>
    public static DictionaryKey<TEnum> Enum<TEnum>()
        where TEnum : struct, System.Enum
        => EnumKeys<TEnum>.Key;

    private static DictionaryKey<T> Integer<T>(IpyRpcFormatter<T> formatter, string what, DictionaryKey<T>.TryParse parse)
        where T : struct, IFormattable
        => new(formatter, static v => v.ToString(null, CultureInfo.InvariantCulture), parse, what);

    private static class EnumKeys<TEnum>
        where TEnum : struct, System.Enum
    {
        public static readonly DictionaryKey<TEnum> Key = new(
            new EnumFormatter<TEnum>(static v => Convert.ToInt64(v, CultureInfo.InvariantCulture), static n => (TEnum)System.Enum.ToObject(typeof(TEnum), n)),
            static v => System.Enum.IsDefined(v) ? v.ToString() : Convert.ToInt64(v, CultureInfo.InvariantCulture).ToString(CultureInfo.InvariantCulture),
            static (string s, out TEnum v) => System.Enum.TryParse(s, ignoreCase: true, out v) && s.Length > 0 && EnumValues<TEnum>.IsValue(v),
            $"a member of {typeof(TEnum).Name} ({string.Join(", ", System.Enum.GetNames<TEnum>())})");
    }
}

/// <summary>
/// A dictionary (<c>Dictionary&lt;string, T&gt;</c>, <c>Dictionary&lt;int, T&gt;</c>, <c>IReadOnlyDictionary&lt;Color, T&gt;</c>, …):
/// a map with its keys as themselves (MessagePack), or an object whose keys are their text (JSON).
/// </summary>
public sealed class KeyedDictionaryFormatter<TDictionary, TKey, TValue>(DictionaryKey<TKey> key, IpyRpcFormatter<TValue> value, Func<Dictionary<TKey, TValue>, TDictionary> create)
    : IpyRpcFormatter<TDictionary?>
    where TDictionary : IEnumerable<KeyValuePair<TKey, TValue>>
    where TKey : notnull
{
    /// <inheritdoc/>
    public override void Write(ref MessagePackWriter writer, TDictionary? dictionary)
    {
        if (dictionary is null)
        {
            writer.WriteNil();
            return;
        }

        IReadOnlyCollection<KeyValuePair<TKey, TValue>> pairs = dictionary as IReadOnlyCollection<KeyValuePair<TKey, TValue>> ?? [.. dictionary];
        writer.WriteMapHeader(pairs.Count);
        foreach (KeyValuePair<TKey, TValue> pair in pairs)
        {
            key.Write(ref writer, pair.Key);
            value.Write(ref writer, pair.Value);
        }
    }

    /// <inheritdoc/>
    public override TDictionary? Read(ref MessagePackReader reader)
    {
        if (reader.TryReadNil())
        {
            return default;
        }

        reader.Enter();
        int n = reader.ReadMapHeader();
        var result = new Dictionary<TKey, TValue>(Math.Min(n, 4096));
        for (int i = 0; i < n; i++)
        {
            int start = reader.Position;
            TKey k = key.Read(ref reader);
            if (!result.TryAdd(k, value.Read(ref reader)))
            {
                throw new MessagePackSerializationException($"Duplicate map key \"{key.Text(k)}\"", start);
            }
        }

        reader.Exit();
        return create(result);
    }

    /// <inheritdoc/>
    public override void Write(Utf8JsonWriter writer, TDictionary? dictionary)
    {
        if (dictionary is null)
        {
            writer.WriteNullValue();
            return;
        }

        writer.WriteStartObject();
        foreach (KeyValuePair<TKey, TValue> pair in dictionary)
        {
            writer.WritePropertyName(key.Text(pair.Key));
            value.Write(writer, pair.Value);
        }

        writer.WriteEndObject();
    }

    /// <inheritdoc/>
    public override TDictionary? Read(ref Utf8JsonReader reader)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return default;
        }

        JsonRead.Expect(ref reader, JsonTokenType.StartObject, "an object");
        var result = new Dictionary<TKey, TValue>();
        while (true)
        {
            JsonRead.Next(ref reader);
            if (reader.TokenType == JsonTokenType.EndObject)
            {
                return create(result);
            }

            TKey k = key.Parse(reader.GetString()!);
            JsonRead.Next(ref reader);
            if (!result.TryAdd(k, value.Read(ref reader)))
            {
                throw new IpyRpcSerializationException($"Duplicate object key \"{key.Text(k)}\"");
            }
        }
    }
}
