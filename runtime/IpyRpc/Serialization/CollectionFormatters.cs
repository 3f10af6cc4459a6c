using System.Runtime.CompilerServices;
using System.Text.Json;
using IpyRpc.Formatting.Json;
using IpyRpc.MessagePack;

namespace IpyRpc.Formatting;

/// <summary>
/// A sequence type (<c>T[]</c>, <c>List&lt;T&gt;</c>, <c>IReadOnlyList&lt;T&gt;</c>, …): an array
/// on the wire. It reads into a list and hands it to <c>create</c>, which turns it into the
/// declared type, so one formatter serves every sequence shape without reflection.
/// </summary>
public sealed class SequenceFormatter<TSequence, TElement>(IpyRpcFormatter<TElement> element, Func<List<TElement>, TSequence> create) : IpyRpcFormatter<TSequence?>
    where TSequence : IEnumerable<TElement>
{
    /// <inheritdoc/>
    public override void Write(ref MessagePackWriter writer, TSequence? value)
    {
        if (value is null or System.Collections.Immutable.ImmutableArray<TElement> { IsDefault: true })
        {
            writer.WriteNil();
            return;
        }

        if (value is IReadOnlyCollection<TElement> collection)
        {
            writer.WriteArrayHeader(collection.Count);
            foreach (TElement item in collection)
            {
                element.Write(ref writer, item);
            }

            return;
        }

        List<TElement> list = [.. value];
        writer.WriteArrayHeader(list.Count);
        foreach (TElement item in list)
        {
            element.Write(ref writer, item);
        }
    }

    /// <inheritdoc/>
    public override TSequence? Read(ref MessagePackReader reader)
    {
        if (reader.TryReadNil())
        {
            return default;
        }

        reader.Enter();
        int n = reader.ReadArrayHeader();
        var list = new List<TElement>(n);
        for (int i = 0; i < n; i++)
        {
            list.Add(element.Read(ref reader));
        }

        reader.Exit();
        return create(list);
    }

    /// <inheritdoc/>
    public override void Write(Utf8JsonWriter writer, TSequence? value)
    {
        if (value is null or System.Collections.Immutable.ImmutableArray<TElement> { IsDefault: true }) // default(ImmutableArray) cannot be enumerated
        {
            writer.WriteNullValue();
            return;
        }

        writer.WriteStartArray();
        foreach (TElement item in value)
        {
            element.Write(writer, item);
        }

        writer.WriteEndArray();
    }

    /// <inheritdoc/>
    public override TSequence? Read(ref Utf8JsonReader reader)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return default;
        }

        JsonRead.Expect(ref reader, JsonTokenType.StartArray, "an array");
        var list = new List<TElement>();
        while (true)
        {
            JsonRead.Next(ref reader);
            if (reader.TokenType == JsonTokenType.EndArray)
            {
                return create(list);
            }

            list.Add(element.Read(ref reader));
        }
    }
}

/// <summary>
/// A dictionary with string keys (<c>Dictionary&lt;string, T&gt;</c>, <c>IReadOnlyDictionary&lt;string, T&gt;</c>, …):
/// a map (MessagePack) or an object (JSON); <see cref="KeyedDictionaryFormatter{TDictionary, TKey, TValue}"/> with
/// <see cref="DictionaryKeys.String"/>.
/// </summary>
public sealed class DictionaryFormatter<TDictionary, TValue>(IpyRpcFormatter<TValue> value, Func<Dictionary<string, TValue>, TDictionary> create) : IpyRpcFormatter<TDictionary?>
    where TDictionary : IEnumerable<KeyValuePair<string, TValue>>
{
    private readonly KeyedDictionaryFormatter<TDictionary, string, TValue> _keyed = new(DictionaryKeys.String, value, create);

    /// <inheritdoc/>
    public override void Write(ref MessagePackWriter writer, TDictionary? dictionary) => _keyed.Write(ref writer, dictionary);

    /// <inheritdoc/>
    public override TDictionary? Read(ref MessagePackReader reader) => _keyed.Read(ref reader);

    /// <inheritdoc/>
    public override void Write(Utf8JsonWriter writer, TDictionary? dictionary) => _keyed.Write(writer, dictionary);

    /// <inheritdoc/>
    public override TDictionary? Read(ref Utf8JsonReader reader) => _keyed.Read(ref reader);
}

/// <summary><c>T?</c> for a value type: nil/null or the value.</summary>
public sealed class NullableFormatter<T>(IpyRpcFormatter<T> inner) : IpyRpcFormatter<T?>
    where T : struct
{
    /// <inheritdoc/>
    public override void Write(ref MessagePackWriter writer, T? value)
    {
        if (value is { } v) inner.Write(ref writer, v);
        else writer.WriteNil();
    }

    /// <inheritdoc/>
    public override T? Read(ref MessagePackReader reader) => reader.TryReadNil() ? null : inner.Read(ref reader);

    /// <inheritdoc/>
    public override void Write(Utf8JsonWriter writer, T? value)
    {
        if (value is { } v) inner.Write(writer, v);
        else writer.WriteNullValue();
    }

    /// <inheritdoc/>
    public override T? Read(ref Utf8JsonReader reader) => reader.TokenType == JsonTokenType.Null ? null : inner.Read(ref reader);
}

/// <summary>
/// An enum: its member name on the wire (a number for values that are not one member, such as a combination of a
/// <c>[Flags]</c> enum's members); a number, or a name in any case, is accepted on input when it is a value of the enum:
/// one of its members, or for a <c>[Flags]</c> enum any combination of its members' bits. Anything else is refused.
/// </summary>
public sealed class EnumFormatter<TEnum>(Func<TEnum, long> toNumber, Func<long, TEnum> fromNumber) : IpyRpcFormatter<TEnum>
    where TEnum : struct, Enum
{
    /// <inheritdoc/>
    public override void Write(ref MessagePackWriter writer, TEnum value)
    {
        if (Enum.IsDefined(value)) writer.Write(value.ToString());
        else writer.Write(toNumber(value));
    }

    /// <inheritdoc/>
    public override TEnum Read(ref MessagePackReader reader)
    {
        int start = reader.Position;
        if (reader.NextType == MessagePackType.Integer)
        {
            long number = reader.ReadInt64();
            return FromNumber(number) ?? throw new MessagePackSerializationException(NotAValue(number), start);
        }

        string? name = reader.ReadString();
        return Parse(name) ?? throw new MessagePackSerializationException(NotAMember(name), start);
    }

    /// <inheritdoc/>
    public override void Write(Utf8JsonWriter writer, TEnum value)
    {
        if (Enum.IsDefined(value)) writer.WriteStringValue(value.ToString());
        else writer.WriteNumberValue(toNumber(value));
    }

    /// <inheritdoc/>
    public override TEnum Read(ref Utf8JsonReader reader)
    {
        if (reader.TokenType == JsonTokenType.Number)
        {
            long number = JsonRead.Int64(ref reader, long.MinValue, long.MaxValue, "an enum value");
            return FromNumber(number) ?? throw new IpyRpcSerializationException(NotAValue(number));
        }

        JsonRead.Expect(ref reader, JsonTokenType.String, $"a {typeof(TEnum).Name} name");
        string? name = reader.GetString();
        return Parse(name) ?? throw new IpyRpcSerializationException(NotAMember(name));
    }

    // A number past the underlying type's range is not truncated into one of its values.
    private TEnum? FromNumber(long number)
        => fromNumber(number) is var value && toNumber(value) == number && EnumValues<TEnum>.IsValue(value) ? value : null;

    // Names only (a number in text is not a name); "A, B" only for a [Flags] enum.
    private static TEnum? Parse(string? name)
        => name is not null && !char.IsDigit(name.Length > 0 ? name[0] : '0') && (EnumValues<TEnum>.Flags || !name.Contains(','))
           && Enum.TryParse(name, ignoreCase: true, out TEnum v) && EnumValues<TEnum>.IsValue(v) ? v : null;

    private string NotAValue(long number)
        => $"{number} is not a value of {typeof(TEnum).Name} ({(EnumValues<TEnum>.Flags ? "a combination of " : "")}{string.Join(", ", Enum.GetValues<TEnum>().Select(v => $"{v}={toNumber(v)}"))})";

    private static string NotAMember(string? name)
        => $"\"{name}\" is not a member of {typeof(TEnum).Name} (members: {string.Join(", ", Enum.GetNames<TEnum>())}{(EnumValues<TEnum>.Flags ? "; a combination is written \"A, B\"" : "")})";
}

/// <summary>Which values of an enum are its values: a member, or for a <c>[Flags]</c> enum any union of its members' bits.</summary>
internal static class EnumValues<TEnum>
    where TEnum : struct, Enum
{
    public static readonly bool Flags = typeof(TEnum).IsDefined(typeof(FlagsAttribute), inherit: false);

    private static readonly ulong Mask = Enum.GetValues<TEnum>().Aggregate(0UL, static (mask, v) => mask | Bits(v));

    public static bool IsValue(TEnum value) => Enum.IsDefined(value) || (Flags && (Bits(value) & ~Mask) == 0);

    // The value's bits at the underlying type's width, whatever its sign.
    private static ulong Bits(TEnum v) => Unsafe.SizeOf<TEnum>() switch
    {
        1 => Unsafe.As<TEnum, byte>(ref v),
        2 => Unsafe.As<TEnum, ushort>(ref v),
        4 => Unsafe.As<TEnum, uint>(ref v),
        _ => Unsafe.As<TEnum, ulong>(ref v),
    };
}
