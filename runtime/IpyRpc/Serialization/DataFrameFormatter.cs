using System.Runtime.InteropServices;
using System.Text.Json;
using IpyRpc.Formatting.Json;
using IpyRpc.MessagePack;

namespace IpyRpc.Formatting;

/// <summary>
/// A <see cref="DataFrame"/> as the seeds' pandas shape: <c>{"type": "pandas", "data": {"row_index", "columns", "data"}}</c>.
/// In MessagePack each column (and the index) is <c>{"dtype", "data"}</c> with its values as one raw
/// little-endian block (text: an array of strings); in JSON <c>data</c> is a record array, one array per
/// row, with the dtypes beside the column names.
/// </summary>
public sealed class DataFrameFormatter : IpyRpcFormatter<DataFrame?>
{
    private static readonly long UnixTicks = DateTime.UnixEpoch.Ticks;

    /// <inheritdoc/>
    public override void Write(ref MessagePackWriter writer, DataFrame? value)
    {
        if (value is null)
        {
            writer.WriteNil();
            return;
        }

        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("DataFrame columns are written as little-endian blocks; big-endian hosts are not supported.");
        writer.WriteMapHeader(2);
        writer.WriteString("type"u8);
        writer.WriteString("pandas"u8);
        writer.WriteString("data"u8);
        writer.WriteMapHeader(3);
        writer.WriteString("row_index"u8);
        WriteColumn(ref writer, value.Index, withName: true);
        writer.WriteString("columns"u8);
        writer.WriteArrayHeader(value.Columns.Count);
        foreach (DataFrameColumn c in value.Columns) writer.Write(c.Name);
        writer.WriteString("data"u8);
        writer.WriteArrayHeader(value.Columns.Count);
        foreach (DataFrameColumn c in value.Columns) WriteColumn(ref writer, c, withName: false);
    }

    private static void WriteColumn(ref MessagePackWriter writer, DataFrameColumn column, bool withName)
    {
        writer.WriteMapHeader(withName ? 3 : 2);
        if (withName)
        {
            writer.WriteString("name"u8);
            writer.Write(column.Name);
        }

        writer.WriteString("dtype"u8);
        writer.Write(column.DType);
        writer.WriteString("data"u8);
        switch (column)
        {
            case DataFrameColumn<string?> text:
                writer.WriteArrayHeader(text.Length);
                foreach (string? s in text.Values) writer.Write(s);
                break;
            case DataFrameColumn<DateTime> dates:
                long[] ns = new long[dates.Length];
                for (int i = 0; i < ns.Length; i++) ns[i] = (dates.Values[i].ToUniversalTime().Ticks - UnixTicks) * 100;
                writer.WriteBinary(MemoryMarshal.AsBytes(ns.AsSpan()));
                break;
            case DataFrameColumn<bool> flags:
                writer.WriteBinary(MemoryMarshal.AsBytes(flags.Values.AsSpan()));
                break;
            default:
                writer.WriteBinary(RawBytes(column));
                break;
        }
    }

    private static ReadOnlySpan<byte> RawBytes(DataFrameColumn column) => column switch
    {
        DataFrameColumn<double> c => MemoryMarshal.AsBytes(c.Values.AsSpan()),
        DataFrameColumn<float> c => MemoryMarshal.AsBytes(c.Values.AsSpan()),
        DataFrameColumn<long> c => MemoryMarshal.AsBytes(c.Values.AsSpan()),
        DataFrameColumn<int> c => MemoryMarshal.AsBytes(c.Values.AsSpan()),
        DataFrameColumn<short> c => MemoryMarshal.AsBytes(c.Values.AsSpan()),
        DataFrameColumn<sbyte> c => MemoryMarshal.AsBytes(c.Values.AsSpan()),
        DataFrameColumn<ulong> c => MemoryMarshal.AsBytes(c.Values.AsSpan()),
        DataFrameColumn<uint> c => MemoryMarshal.AsBytes(c.Values.AsSpan()),
        DataFrameColumn<ushort> c => MemoryMarshal.AsBytes(c.Values.AsSpan()),
        DataFrameColumn<byte> c => c.Values,
        _ => throw new IpyRpcSerializationException($"A column of {TypeNames.Display(column.ElementType)} has no raw block."),
    };

    /// <inheritdoc/>
    public override DataFrame? Read(ref MessagePackReader reader)
    {
        if (reader.TryReadNil()) return null;
        int at = reader.Position;
        try
        {
            DataFrameColumn? index = null;
            List<string?>? names = null;
            List<DataFrameColumn>? columns = null;
            int outer = reader.ReadMapHeader();
            bool pandas = false;
            for (int i = 0; i < outer; i++)
            {
                string? key = reader.ReadString();
                if (key == "type")
                {
                    pandas = reader.ReadString() == "pandas";
                    continue;
                }

                if (key != "data")
                {
                    reader.Skip();
                    continue;
                }

                int inner = reader.ReadMapHeader();
                for (int j = 0; j < inner; j++)
                {
                    switch (reader.ReadString())
                    {
                        case "row_index":
                            index = ReadColumn(ref reader, null);
                            break;
                        case "columns":
                            int n = reader.ReadArrayHeader();
                            names = new List<string?>(Math.Min(n, 4096));
                            for (int k = 0; k < n; k++) names.Add(reader.ReadString());
                            break;
                        case "data":
                            int m = reader.ReadArrayHeader();
                            columns = new List<DataFrameColumn>(Math.Min(m, 4096));
                            for (int k = 0; k < m; k++) columns.Add(ReadColumn(ref reader, names is { } known && k < known.Count ? known[k] : null));
                            break;
                        default:
                            reader.Skip();
                            break;
                    }
                }
            }

            if (!pandas) throw new IpyRpcSerializationException("A data frame is a map with \"type\": \"pandas\".");
            return Assemble(index, names, columns);
        }
        catch (IpyRpcSerializationException e) when (e is not MessagePackSerializationException)
        {
            throw new MessagePackSerializationException(e.Message, at);
        }
    }

    private static DataFrameColumn ReadColumn(ref MessagePackReader reader, string? name)
    {
        int n = reader.ReadMapHeader();
        string? dtype = null;
        int dataAt = -1;
        MessagePackReader data = default;
        for (int i = 0; i < n; i++)
        {
            switch (reader.ReadString())
            {
                case "name":
                    name = reader.TryReadNil() ? null : reader.ReadString();
                    break;
                case "dtype":
                    dtype = reader.ReadString();
                    break;
                case "data":
                    data = reader; // read once the dtype is known (it may come after)
                    dataAt = reader.Position;
                    reader.Skip();
                    break;
                default:
                    reader.Skip();
                    break;
            }
        }

        if (dtype is null || dataAt < 0) throw new IpyRpcSerializationException($"DataFrame column \"{name}\" needs a \"dtype\" and \"data\".");
        if (dtype == "|O")
        {
            int count = data.ReadArrayHeader();
            string?[] text = new string?[count];
            for (int i = 0; i < count; i++) text[i] = data.ReadString();
            return DataFrameColumn.Of(name, text);
        }

        ReadOnlySpan<byte> raw = data.ReadBinary();
        return dtype switch
        {
            "<f8" => DataFrameColumn.Of(name, Block<double>(raw, dtype)),
            "<f4" => DataFrameColumn.Of(name, Block<float>(raw, dtype)),
            "<i8" => DataFrameColumn.Of(name, Block<long>(raw, dtype)),
            "<i4" => DataFrameColumn.Of(name, Block<int>(raw, dtype)),
            "<i2" => DataFrameColumn.Of(name, Block<short>(raw, dtype)),
            "|i1" => DataFrameColumn.Of(name, Block<sbyte>(raw, dtype)),
            "<u8" => DataFrameColumn.Of(name, Block<ulong>(raw, dtype)),
            "<u4" => DataFrameColumn.Of(name, Block<uint>(raw, dtype)),
            "<u2" => DataFrameColumn.Of(name, Block<ushort>(raw, dtype)),
            "|u1" => DataFrameColumn.Of(name, raw.ToArray()),
            "|b1" => DataFrameColumn.Of(name, Bools(raw)),
            "<M8[ns]" => DataFrameColumn.Of(name, Block<long>(raw, dtype).Select(ns => new DateTime(UnixTicks + (ns / 100), DateTimeKind.Utc)).ToArray()),
            _ => throw new IpyRpcSerializationException($"DataFrame column \"{name}\" has dtype {dtype}, which has no .NET column type (use <f8, <f4, <i8, <i4, <i2, |i1, <u8, <u4, <u2, |u1, |b1, <M8[ns] or |O)."),
        };
    }

    private static T[] Block<T>(ReadOnlySpan<byte> raw, string dtype) where T : unmanaged
    {
        int size = System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        if (raw.Length % size != 0) throw new IpyRpcSerializationException($"A {dtype} column's block of {raw.Length} bytes is not a whole number of {size}-byte values.");
        return MemoryMarshal.Cast<byte, T>(raw).ToArray();
    }

    private static bool[] Bools(ReadOnlySpan<byte> raw)
    {
        bool[] flags = new bool[raw.Length];
        for (int i = 0; i < raw.Length; i++) flags[i] = raw[i] != 0;
        return flags;
    }

    private static DataFrame Assemble(DataFrameColumn? index, List<string?>? names, List<DataFrameColumn>? columns)
    {
        columns ??= [];
        names ??= [];
        if (names.Count != columns.Count) throw new IpyRpcSerializationException($"The data frame names {names.Count} columns but has data for {columns.Count}.");
        try
        {
            return index is null ? DataFrame.WithRowNumbers([.. columns]) : new DataFrame(index, columns);
        }
        catch (ArgumentException e)
        {
            throw new IpyRpcSerializationException(e.Message);
        }
    }

    /// <inheritdoc/>
    public override void Write(Utf8JsonWriter writer, DataFrame? value)
    {
        if (value is null)
        {
            writer.WriteNullValue();
            return;
        }

        writer.WriteStartObject();
        writer.WriteString("type"u8, "pandas"u8);
        writer.WriteStartObject("data"u8);
        writer.WriteStartObject("row_index"u8);
        writer.WriteString("name"u8, value.Index.Name);
        writer.WriteString("dtype"u8, value.Index.DType);
        writer.WriteStartArray("data"u8);
        for (int i = 0; i < value.RowCount; i++) WriteCell(writer, value.Index, i);
        writer.WriteEndArray();
        writer.WriteEndObject();
        writer.WriteStartArray("columns"u8);
        foreach (DataFrameColumn c in value.Columns) writer.WriteStringValue(c.Name);
        writer.WriteEndArray();
        writer.WriteStartArray("dtypes"u8);
        foreach (DataFrameColumn c in value.Columns) writer.WriteStringValue(c.DType);
        writer.WriteEndArray();
        writer.WriteStartArray("data"u8);
        for (int row = 0; row < value.RowCount; row++)
        {
            writer.WriteStartArray();
            foreach (DataFrameColumn c in value.Columns) WriteCell(writer, c, row);
            writer.WriteEndArray();
        }

        writer.WriteEndArray();
        writer.WriteEndObject();
        writer.WriteEndObject();
    }

    private static void WriteCell(Utf8JsonWriter writer, DataFrameColumn column, int row)
    {
        switch (column)
        {
            case DataFrameColumn<double> c: writer.WriteNumberValue(c.Values[row]); break;
            case DataFrameColumn<float> c: writer.WriteNumberValue(c.Values[row]); break;
            case DataFrameColumn<long> c: writer.WriteNumberValue(c.Values[row]); break;
            case DataFrameColumn<int> c: writer.WriteNumberValue(c.Values[row]); break;
            case DataFrameColumn<short> c: writer.WriteNumberValue(c.Values[row]); break;
            case DataFrameColumn<sbyte> c: writer.WriteNumberValue(c.Values[row]); break;
            case DataFrameColumn<ulong> c: writer.WriteNumberValue(c.Values[row]); break;
            case DataFrameColumn<uint> c: writer.WriteNumberValue(c.Values[row]); break;
            case DataFrameColumn<ushort> c: writer.WriteNumberValue(c.Values[row]); break;
            case DataFrameColumn<byte> c: writer.WriteNumberValue(c.Values[row]); break;
            case DataFrameColumn<bool> c: writer.WriteBooleanValue(c.Values[row]); break;
            case DataFrameColumn<DateTime> c: Formatters.DateTime.Write(writer, c.Values[row]); break;
            case DataFrameColumn<string?> c: writer.WriteStringValue(c.Values[row]); break;
            default: throw new IpyRpcSerializationException($"A column of {TypeNames.Display(column.ElementType)} cannot be written.");
        }
    }

    /// <inheritdoc/>
    public override DataFrame? Read(ref Utf8JsonReader reader)
    {
        if (reader.TokenType == JsonTokenType.Null) return null;
        JsonRead.Expect(ref reader, JsonTokenType.StartObject, "a data frame (the pandas shape)");
        bool pandas = false;
        DataFrameColumn? index = null;
        List<string?>? names = null, dtypes = null;
        List<List<JsonElement>>? rows = null;
        for (JsonRead.Next(ref reader); reader.TokenType != JsonTokenType.EndObject; JsonRead.Next(ref reader))
        {
            string? key = reader.GetString();
            JsonRead.Next(ref reader);
            if (key == "type")
            {
                pandas = reader.GetString() == "pandas";
                continue;
            }

            if (key != "data")
            {
                reader.Skip();
                continue;
            }

            JsonRead.Expect(ref reader, JsonTokenType.StartObject, "the data frame's data");
            for (JsonRead.Next(ref reader); reader.TokenType != JsonTokenType.EndObject; JsonRead.Next(ref reader))
            {
                string? inner = reader.GetString();
                JsonRead.Next(ref reader);
                switch (inner)
                {
                    case "row_index":
                        using (JsonDocument doc = JsonDocument.ParseValue(ref reader))
                        {
                            JsonElement e = doc.RootElement;
                            string dtype = e.TryGetProperty("dtype", out JsonElement d) ? d.GetString() ?? "|O" : "|O";
                            string? name = e.TryGetProperty("name", out JsonElement n) && n.ValueKind == JsonValueKind.String ? n.GetString() : null;
                            index = FromCells(name, dtype, [.. e.GetProperty("data").EnumerateArray()]);
                        }

                        break;
                    case "columns":
                        names = ReadStrings(ref reader);
                        break;
                    case "dtypes":
                        dtypes = ReadStrings(ref reader);
                        break;
                    case "data":
                        using (JsonDocument doc = JsonDocument.ParseValue(ref reader))
                        {
                            rows = [.. doc.RootElement.EnumerateArray().Select(r => r.EnumerateArray().Select(c => c.Clone()).ToList())];
                        }

                        break;
                    default:
                        reader.Skip();
                        break;
                }
            }
        }

        if (!pandas) throw new IpyRpcSerializationException("A data frame is an object with \"type\": \"pandas\".");
        names ??= [];
        rows ??= [];
        if (dtypes is null || dtypes.Count != names.Count) throw new IpyRpcSerializationException("A data frame in JSON needs \"dtypes\", one per column.");
        var columns = new List<DataFrameColumn>(names.Count);
        for (int c = 0; c < names.Count; c++)
        {
            int column = c;
            columns.Add(FromCells(names[c], dtypes[c] ?? "|O", [.. rows.Select(r => column < r.Count ? r[column] : throw new IpyRpcSerializationException($"A row of the data frame has {r.Count} values but there are {names.Count} columns."))]));
        }

        return Assemble(index, names, columns);
    }

    private static List<string?> ReadStrings(ref Utf8JsonReader reader)
    {
        JsonRead.Expect(ref reader, JsonTokenType.StartArray, "a list of strings");
        var list = new List<string?>();
        for (JsonRead.Next(ref reader); reader.TokenType != JsonTokenType.EndArray; JsonRead.Next(ref reader)) list.Add(reader.GetString());
        return list;
    }

    private static DataFrameColumn FromCells(string? name, string dtype, List<JsonElement> cells) => dtype switch
    {
        "<f8" => DataFrameColumn.Of(name, cells.Select(e => e.GetDouble()).ToArray()),
        "<f4" => DataFrameColumn.Of(name, cells.Select(e => e.GetSingle()).ToArray()),
        "<i8" => DataFrameColumn.Of(name, cells.Select(e => e.GetInt64()).ToArray()),
        "<i4" => DataFrameColumn.Of(name, cells.Select(e => e.GetInt32()).ToArray()),
        "<i2" => DataFrameColumn.Of(name, cells.Select(e => e.GetInt16()).ToArray()),
        "|i1" => DataFrameColumn.Of(name, cells.Select(e => e.GetSByte()).ToArray()),
        "<u8" => DataFrameColumn.Of(name, cells.Select(e => e.GetUInt64()).ToArray()),
        "<u4" => DataFrameColumn.Of(name, cells.Select(e => e.GetUInt32()).ToArray()),
        "<u2" => DataFrameColumn.Of(name, cells.Select(e => e.GetUInt16()).ToArray()),
        "|u1" => DataFrameColumn.Of(name, cells.Select(e => e.GetByte()).ToArray()),
        "|b1" => DataFrameColumn.Of(name, cells.Select(e => e.GetBoolean()).ToArray()),
        "<M8[ns]" => DataFrameColumn.Of(name, cells.Select(e => e.GetDateTime().ToUniversalTime()).ToArray()),
        "|O" => DataFrameColumn.Of(name, cells.Select(e => e.ValueKind == JsonValueKind.Null ? null : e.ToString()).ToArray()),
        _ => throw new IpyRpcSerializationException($"DataFrame column \"{name}\" has dtype {dtype}, which has no .NET column type."),
    };
}
