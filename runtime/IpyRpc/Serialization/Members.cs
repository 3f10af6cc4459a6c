using System.ComponentModel;
using System.Text.Json;

namespace IpyRpc.Formatting;

/// <summary>What generated formatters of records and classes share: matching a member's key, and the error for a missing one.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static class Members
{
    /// <summary>Whether a MessagePack map key names the member: its wire name or its C# name.</summary>
    public static bool Is(ReadOnlySpan<byte> key, ReadOnlySpan<byte> wireName, ReadOnlySpan<byte> name) => key.SequenceEqual(wireName) || key.SequenceEqual(name);

    /// <summary>Whether a MessagePack map key is the member's wire name (the same as its C# name).</summary>
    public static bool Is(ReadOnlySpan<byte> key, ReadOnlySpan<byte> wireName) => key.SequenceEqual(wireName);

    /// <summary>Whether the JSON reader is at the member's property (its wire name or its C# name); if so, moves on to its value.</summary>
    public static bool At(ref Utf8JsonReader reader, ReadOnlySpan<byte> wireName, ReadOnlySpan<byte> name)
    {
        if (!reader.ValueTextEquals(wireName) && !reader.ValueTextEquals(name)) return false;
        Json.JsonRead.Next(ref reader);
        return true;
    }

    /// <summary>Whether the JSON reader is at the member's property (its wire name, the same as its C# name); if so, moves on to its value.</summary>
    public static bool At(ref Utf8JsonReader reader, ReadOnlySpan<byte> wireName)
    {
        if (!reader.ValueTextEquals(wireName)) return false;
        Json.JsonRead.Next(ref reader);
        return true;
    }

    /// <summary>Skips a property no member has: its value, whole.</summary>
    public static void Skip(ref Utf8JsonReader reader)
    {
        Json.JsonRead.Next(ref reader);
        reader.Skip();
    }

    /// <summary>The error for a value that lacks a member with no default.</summary>
    public static IpyRpcSerializationException Missing(string type, string member, string memberType)
        => new($"{type} is missing its member '{member}' ({memberType}), which has no default");
}
