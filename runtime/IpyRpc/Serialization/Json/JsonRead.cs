using System.Text.Json;

namespace IpyRpc.Formatting.Json;

/// <summary>Helpers for formatters that read JSON: clear errors for tokens of the wrong kind.</summary>
public static class JsonRead
{
    /// <summary>An error saying what was expected and what token was found.</summary>
    public static IpyRpcSerializationException Unexpected(ref Utf8JsonReader reader, string expected)
        => new($"Expected {expected} but found {Describe(reader.TokenType)} (JSON position {reader.TokenStartIndex})");

    /// <summary>A readable name for a JSON token.</summary>
    public static string Describe(JsonTokenType token) => token switch
    {
        JsonTokenType.StartObject => "an object",
        JsonTokenType.StartArray => "an array",
        JsonTokenType.String => "a string",
        JsonTokenType.Number => "a number",
        JsonTokenType.True or JsonTokenType.False => "a boolean",
        JsonTokenType.Null => "null",
        JsonTokenType.None => "the end of the input",
        _ => token.ToString(),
    };

    /// <summary>Advances to the next token, failing clearly at the end of input.</summary>
    public static void Next(ref Utf8JsonReader reader)
    {
        if (!reader.Read())
        {
            throw new IpyRpcSerializationException("Unexpected end of JSON input");
        }
    }

    /// <summary>Checks the current token is the expected kind.</summary>
    public static void Expect(ref Utf8JsonReader reader, JsonTokenType token, string expected)
    {
        if (reader.TokenType != token)
        {
            throw Unexpected(ref reader, expected);
        }
    }

    /// <summary>
    /// Reads an integer, with a range check. A number written with a fraction or an exponent is
    /// accepted when its value is integral (Python's json writes <c>2.0</c>; JavaScript may write
    /// <c>1e2</c>); a fractional value is refused.
    /// </summary>
    public static long Int64(ref Utf8JsonReader reader, long min, long max, string what)
    {
        if (reader.TokenType != JsonTokenType.Number)
        {
            throw Unexpected(ref reader, what);
        }

        if (reader.TryGetInt64(out long v) || TryIntegral(ref reader, out v))
        {
            if (v >= min && v <= max) return v;
        }

        throw new IpyRpcSerializationException($"Number {System.Text.Encoding.UTF8.GetString(reader.ValueSpan)} is not {what}");
    }

    /// <summary>An unsigned integer, accepting integral values written with a fraction or an exponent.</summary>
    public static ulong UInt64(ref Utf8JsonReader reader, string what)
    {
        if (reader.TokenType != JsonTokenType.Number)
        {
            throw Unexpected(ref reader, what);
        }

        if (reader.TryGetUInt64(out ulong v)) return v;
        if (reader.TryGetDecimal(out decimal d) && d == decimal.Truncate(d) && d >= 0 && d <= ulong.MaxValue) return (ulong)d;
        throw new IpyRpcSerializationException($"Number {System.Text.Encoding.UTF8.GetString(reader.ValueSpan)} is not {what}");
    }

    private static bool TryIntegral(ref Utf8JsonReader reader, out long value)
    {
        // decimal holds every long exactly (and 28 digits), so 9007199254740993.0 stays exact; a double would round.
        if (reader.TryGetDecimal(out decimal d) && d == decimal.Truncate(d) && d >= long.MinValue && d <= long.MaxValue)
        {
            value = (long)d;
            return true;
        }

        value = 0;
        return false;
    }
}
