using System.Text.Json;
using IpyRpc.MessagePack;

namespace IpyRpc;

/// <summary>
/// Pointers inside an argument (an element of a list, a value of a map, a member of a record), found without decoding
/// the argument and replaced by their values' encodings before the function's formatters read it.
/// </summary>
internal static class NestedPointers
{
    private const int MaxDepth = 64;

    /// <summary>The pointers inside <paramref name="argument"/> (not the argument itself), in order; <see langword="null"/> for none.</summary>
    public static List<(int Offset, int Length, RemotePointer Pointer)>? Find(ReadOnlySpan<byte> argument, Serialization serialization)
    {
        // Only containers can hold one, and only text that names a pointer is walked: raw arrays, bytes and scalars cost nothing.
        if (argument.IsEmpty) return null;
        if (serialization == Serialization.Json)
        {
            ReadOnlySpan<byte> text = argument.TrimStart(" \t\r\n"u8);
            if (text.IsEmpty || text[0] is not ((byte)'[' or (byte)'{')) return null;
        }
        else if (new MessagePackReader(argument).NextType is not (MessagePackType.Array or MessagePackType.Map))
        {
            return null;
        }

        if (argument.IndexOf("ipyrpc_data_pointer"u8) < 0) return null;
        var found = new List<(int, int, RemotePointer)>();
        try
        {
            if (serialization == Serialization.Json)
            {
                FindJson(argument, found);
            }
            else
            {
                var reader = new MessagePackReader(argument);
                Walk(ref reader, argument, found, 0);
            }
        }
        catch (Exception e) when (e is MessagePackSerializationException or JsonException or Formatting.IpyRpcSerializationException)
        {
            return null; // malformed: the function's formatter says so when it reads the argument
        }

        return found.Count == 0 ? null : found;
    }

    private static void Walk(ref MessagePackReader reader, ReadOnlySpan<byte> argument, List<(int, int, RemotePointer)> found, int depth)
    {
        switch (reader.NextType)
        {
            case MessagePackType.Map when depth < MaxDepth:
                {
                    MessagePackReader probe = reader;
                    (int offset, int length) = probe.ReadRawRange();
                    if (depth > 0 && RemotePointer.TryRead(argument.Slice(offset, length), Serialization.MessagePack, out RemotePointer? pointer))
                    {
                        found.Add((offset, length, pointer!));
                        reader = probe;
                        return;
                    }

                    int n = reader.ReadMapHeader();
                    for (int i = 0; i < n; i++)
                    {
                        reader.Skip();
                        Walk(ref reader, argument, found, depth + 1);
                    }

                    return;
                }

            case MessagePackType.Array when depth < MaxDepth:
                {
                    int n = reader.ReadArrayHeader();
                    for (int i = 0; i < n; i++) Walk(ref reader, argument, found, depth + 1);
                    return;
                }

            default:
                reader.Skip();
                return;
        }
    }

    private static void FindJson(ReadOnlySpan<byte> argument, List<(int, int, RemotePointer)> found)
    {
        var reader = new Utf8JsonReader(argument, new JsonReaderOptions { MaxDepth = MaxDepth });
        while (reader.Read())
        {
            if (reader.TokenType != JsonTokenType.StartObject || reader.CurrentDepth == 0) continue;
            int start = (int)reader.TokenStartIndex;
            if (!RemotePointer.LooksLikePointer(argument[start..], Serialization.Json)) continue;
            Utf8JsonReader probe = reader;
            probe.Skip();
            int end = (int)probe.BytesConsumed;
            if (RemotePointer.TryRead(argument[start..end], Serialization.Json, out RemotePointer? pointer))
            {
                found.Add((start, end - start, pointer!));
                reader = probe;
            }
        }
    }

    /// <summary><paramref name="argument"/> with each pointer found in it replaced by its value's encoding.</summary>
    public static byte[] Splice(ReadOnlySpan<byte> argument, List<(int Offset, int Length, RemotePointer Pointer)> found, ReadOnlyMemory<byte>[] values)
    {
        int size = argument.Length;
        for (int i = 0; i < found.Count; i++) size += values[i].Length - found[i].Length;
        var output = new byte[size];
        int from = 0, to = 0;
        for (int i = 0; i < found.Count; i++)
        {
            argument[from..found[i].Offset].CopyTo(output.AsSpan(to));
            to += found[i].Offset - from;
            values[i].Span.CopyTo(output.AsSpan(to));
            to += values[i].Length;
            from = found[i].Offset + found[i].Length;
        }

        argument[from..].CopyTo(output.AsSpan(to));
        return output;
    }
}
