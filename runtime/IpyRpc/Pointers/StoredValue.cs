using System.Buffers;
using System.Collections;
using System.Text.Json;
using IpyRpc.Formatting;
using IpyRpc.MessagePack;
using IpyRpc.Protocol;

namespace IpyRpc;

/// <summary>A value kept in a data store, with what it takes to encode it whole or by rows.</summary>
internal abstract class StoredValue
{
    /// <summary>The value itself.</summary>
    public abstract object? Boxed { get; }

    /// <summary>Its .NET type as descriptors show it.</summary>
    public abstract string ValueType { get; }

    /// <summary>Its shape (array dimensions, a collection's count), if it has one.</summary>
    public abstract IReadOnlyList<long>? Shape { get; }

    /// <summary>What it costs the store: raw bytes for arrays of numbers, the MessagePack encoding otherwise.</summary>
    public abstract long Bytes { get; }

    /// <summary>Encodes the value, or rows <c>[start, stop)</c> of it (negative indices count from the end, as in Python).</summary>
    public abstract byte[] Encode(Serialization serialization, long? start, long? stop);

    /// <summary>The value as a <typeparamref name="TArg"/>: itself when it is one (nothing is copied), otherwise converted through its encoding.</summary>
    public abstract TArg As<TArg>(IpyRpcFormatter<TArg> formatter);

    internal static (long Start, long Stop) Clamp(long length, long? start, long? stop)
    {
        long s = start ?? 0, e = stop ?? length;
        if (s < 0) s += length;
        if (e < 0) e += length;
        s = Math.Clamp(s, 0, length);
        e = Math.Clamp(e, s, length);
        return (s, e);
    }
}

internal sealed class StoredValue<T>(T value, IpyRpcFormatter<T> formatter) : StoredValue
{
    private long _bytes = -1;

    public override object? Boxed => value;

    public override string ValueType => value is null ? TypeNames.Display(typeof(T)) : TypeNames.Display(value.GetType());

    public override IReadOnlyList<long>? Shape => formatter is IRowSlicer<T> slicer ? slicer.Shape(value) : value switch
    {
        DataFrame t => [t.RowCount, t.Columns.Count],
        Array a => [.. Enumerable.Range(0, a.Rank).Select(d => (long)a.GetLength(d))],
        ICollection c => [c.Count],
        _ => null,
    };

    public override long Bytes
    {
        get
        {
            if (_bytes >= 0) return _bytes;
            _bytes = value is Array a && a.GetType().GetElementType() is { IsPrimitive: true } ? Buffer.ByteLength(a)
                : formatter is IRowSlicer<T> slicer ? slicer.Bytes(value)
                : Encode(Serialization.MessagePack, null, null).LongLength;
            return _bytes;
        }
    }

    public override TArg As<TArg>(IpyRpcFormatter<TArg> target)
    {
        if (value is TArg same) return same;
        byte[] encoded = Encode(Serialization.MessagePack, null, null);
        var reader = new MessagePackReader(encoded) { MaxDepth = 128 };
        return target.Read(ref reader);
    }

    public override byte[] Encode(Serialization serialization, long? start, long? stop)
    {
        if (start is null && stop is null) return EncodeValue(value, serialization);
        if (formatter is IRowSlicer<T> slicer)
        {
            (long s, long e) = Clamp(slicer.Shape(value) is { Count: > 0 } shape ? shape[0] : 0, start, stop);
            return EncodeValue(slicer.Slice(value, s, e), serialization);
        }

        switch (value)
        {
            case Array { Rank: >= 1 } array:
                return EncodeValue((T)(object)SliceRows(array, start, stop), serialization);
            case DataFrame table:
                return EncodeValue((T)(object)table.Slice(start ?? 0, stop ?? table.RowCount), serialization);
            case ICollection:
                return SliceEncoded(EncodeValue(value, serialization), serialization, start, stop);
            default:
                throw new PointerFault(new RemoteError
                {
                    Code = ErrorCodes.BadMessage,
                    Message = $"The value ({ValueType}) has no rows: fetch it whole (no start or stop).",
                });
        }
    }

    private byte[] EncodeValue(T v, Serialization serialization)
    {
        var buffer = new ArrayBufferWriter<byte>(SizeHint.Of(v));
        formatter.Write(buffer, v, serialization);
        return buffer.WrittenSpan.ToArray();
    }

    // Rows of the first dimension, every other dimension whole: the same array type, fewer rows.
    private static Array SliceRows(Array array, long? start, long? stop)
    {
        long rows = array.GetLength(0);
        (long s, long e) = Clamp(rows, start, stop);
        int[] lengths = [.. Enumerable.Range(0, array.Rank).Select(array.GetLength)];
        lengths[0] = (int)(e - s);
        Array slice = Array.CreateInstanceFromArrayType(array.GetType(), lengths);
        long perRow = rows == 0 ? 0 : array.LongLength / rows;
        if (slice.LongLength > 0) Array.Copy(array, s * perRow, slice, 0, slice.LongLength);
        return slice;
    }

    // A collection's items, sliced in its encoding (an array of items) so any element type works without knowing it.
    private byte[] SliceEncoded(byte[] encoded, Serialization serialization, long? start, long? stop)
    {
        if (serialization == Serialization.Json)
        {
            var reader = new Utf8JsonReader(encoded, new JsonReaderOptions { MaxDepth = 256 });
            reader.Read();
            if (reader.TokenType != JsonTokenType.StartArray) throw NotRows();
            var items = new List<(long From, long To)>();
            while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
            {
                long from = reader.TokenStartIndex;
                reader.Skip();
                items.Add((from, reader.BytesConsumed));
            }

            (long s, long e) = Clamp(items.Count, start, stop);
            var json = new ArrayBufferWriter<byte>();
            json.Write("["u8);
            for (long i = s; i < e; i++)
            {
                if (i > s) json.Write(","u8);
                json.Write(encoded.AsSpan((int)items[(int)i].From, (int)(items[(int)i].To - items[(int)i].From)));
            }

            json.Write("]"u8);
            return json.WrittenSpan.ToArray();
        }

        var r = new MessagePackReader(encoded) { MaxDepth = 256 };
        if (r.NextType != MessagePackType.Array) throw NotRows();
        int count = r.ReadArrayHeader();
        (long first, long end) = Clamp(count, start, stop);
        for (long i = 0; i < first; i++) r.Skip();
        int from2 = r.Position;
        for (long i = first; i < end; i++) r.Skip();
        var output = new ArrayBufferWriter<byte>(r.Position - from2 + 5);
        var w = new MessagePackWriter(output);
        w.WriteArrayHeader((int)(end - first));
        w.WriteRaw(encoded.AsSpan(from2, r.Position - from2));
        return output.WrittenSpan.ToArray();
    }

    private PointerFault NotRows() => new(new RemoteError
    {
        Code = ErrorCodes.BadMessage,
        Message = $"The value ({ValueType}) is not a list of rows: fetch it whole (no start or stop).",
    });
}

/// <summary>A pointer could not be served or resolved; the error says why.</summary>
internal sealed class PointerFault(RemoteError error) : Exception(error.Message)
{
    public RemoteError Error { get; } = error;
}
