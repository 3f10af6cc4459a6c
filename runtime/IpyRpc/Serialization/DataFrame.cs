using System.Collections.Frozen;

namespace IpyRpc;

/// <summary>
/// A data frame: a row index and named columns of one type each, all the same length; what pandas calls
/// a DataFrame. Columns are plain .NET arrays (<c>double[]</c>, <c>string?[]</c>, <c>DateTime[]</c>…),
/// held without copying, so a data frame is as cheap to build from arrays you have as to read back into them.
/// On the wire it is the seeds' pandas shape (docs/POINTERS.md): each column one raw block in
/// MessagePack, a record array in JSON; the Python client turns it into a <c>pandas.DataFrame</c>.
/// </summary>
/// <example>
/// <code>
/// var prices = new DataFrame(
///     DataFrameColumn.Of("date", dates),          // the index
///     DataFrameColumn.Of("open", open), DataFrameColumn.Of("close", close), DataFrameColumn.Of("ticker", tickers));
/// double[] close = prices.Column&lt;double&gt;("close");
/// DataFrame firstWeek = prices.Slice(0, 5);
/// </code>
/// </example>
public sealed class DataFrame
{
    private readonly FrozenDictionary<string, DataFrameColumn> _byName;

    /// <summary>Creates a data frame from its index and columns, which must all have the same length and distinct names.</summary>
    /// <exception cref="ArgumentException">The lengths differ, a column has no name, or two share one.</exception>
    public DataFrame(DataFrameColumn index, params IEnumerable<DataFrameColumn> columns)
    {
        ArgumentNullException.ThrowIfNull(index);
        Index = index;
        Columns = [.. columns];
        var names = new Dictionary<string, DataFrameColumn>(StringComparer.Ordinal);
        foreach (DataFrameColumn c in Columns)
        {
            if (c.Length != index.Length)
            {
                throw new ArgumentException($"Column \"{c.Name}\" has {c.Length} rows but the index has {index.Length}: every column of a data frame has one value per row.", nameof(columns));
            }

            if (string.IsNullOrEmpty(c.Name)) throw new ArgumentException("Every column of a data frame needs a name (only the index may have none).", nameof(columns));
            if (!names.TryAdd(c.Name, c)) throw new ArgumentException($"Two columns are named \"{c.Name}\".", nameof(columns));
        }

        _byName = names.ToFrozenDictionary(StringComparer.Ordinal);
    }

    /// <summary>Creates a data frame whose index is the row numbers 0 … n-1 (pandas' default index).</summary>
    public static DataFrame WithRowNumbers(params DataFrameColumn[] columns)
    {
        int rows = columns.Length == 0 ? 0 : columns[0].Length;
        long[] numbers = new long[rows];
        for (int i = 0; i < rows; i++) numbers[i] = i;
        return new DataFrame(DataFrameColumn.Of(null, numbers), columns);
    }

    /// <summary>The row index (its values label the rows; pandas' <c>df.index</c>).</summary>
    public DataFrameColumn Index { get; }

    /// <summary>The columns, in order.</summary>
    public IReadOnlyList<DataFrameColumn> Columns { get; }

    /// <summary>How many rows.</summary>
    public int RowCount => Index.Length;

    /// <summary>The column named <paramref name="name"/>.</summary>
    /// <exception cref="KeyNotFoundException">There is none.</exception>
    public DataFrameColumn this[string name] => _byName.TryGetValue(name, out DataFrameColumn? c) ? c
        : throw new KeyNotFoundException($"The data frame has no column \"{name}\"; it has {string.Join(", ", Columns.Select(x => x.Name))}.");

    /// <summary>The values of the column named <paramref name="name"/>, as the array they are held in.</summary>
    /// <exception cref="InvalidCastException">The column holds another type.</exception>
    public T[] Column<T>(string name) => this[name] is DataFrameColumn<T> typed ? typed.Values
        : throw new InvalidCastException($"Column \"{name}\" holds {Formatting.TypeNames.Display(this[name].ElementType)}, not {Formatting.TypeNames.Display(typeof(T))}.");

    /// <summary>Rows <c>[start, stop)</c> as a new table (negative indices count from the end; indices past the end are clamped, as in Python).</summary>
    public DataFrame Slice(long start, long stop)
    {
        (long s, long e) = StoredValue.Clamp(RowCount, start, stop);
        return new DataFrame(Index.Slice((int)s, (int)e), Columns.Select(c => c.Slice((int)s, (int)e)));
    }

    /// <inheritdoc/>
    public override string ToString() => $"DataFrame {RowCount} rows × {Columns.Count} columns ({string.Join(", ", Columns.Select(c => $"{c.Name}: {Formatting.TypeNames.Display(c.ElementType)}"))})";
}

/// <summary>One column of a <see cref="DataFrame"/>: a name and a plain array of values.</summary>
public abstract class DataFrameColumn
{
    private protected DataFrameColumn(string? name) => Name = name;

    /// <summary>The column's name (the index's may be <see langword="null"/>).</summary>
    public string? Name { get; }

    /// <summary>How many values.</summary>
    public abstract int Length { get; }

    /// <summary>The values' type.</summary>
    public abstract Type ElementType { get; }

    /// <summary>The values, boxed one by one (for display and plain-data callers; typed code uses <see cref="DataFrameColumn{T}.Values"/>).</summary>
    public abstract object? this[int row] { get; }

    /// <summary>The numpy dtype it travels as: <c>&lt;f8</c>, <c>&lt;i8</c>, <c>|b1</c>, <c>&lt;M8[ns]</c> (dates), <c>|O</c> (text).</summary>
    public abstract string DType { get; }

    /// <summary>Values <c>[start, stop)</c> as a new column.</summary>
    public abstract DataFrameColumn Slice(int start, int stop);

    /// <summary>
    /// A column over <paramref name="values"/> (kept, not copied). Columns hold <see cref="double"/>,
    /// <see cref="float"/>, <see cref="long"/>, <see cref="int"/>, <see cref="short"/>, <see cref="sbyte"/>,
    /// <see cref="ulong"/>, <see cref="uint"/>, <see cref="ushort"/>, <see cref="byte"/>, <see cref="bool"/>,
    /// <see cref="DateTime"/> (UTC, to the 100 ns) or <see cref="string"/> values.
    /// </summary>
    /// <exception cref="ArgumentException">Values of another type.</exception>
    public static DataFrameColumn<T> Of<T>(string? name, T[] values) => new(name, values);
}

/// <summary>A <see cref="DataFrameColumn"/> of <typeparamref name="T"/> values.</summary>
public sealed class DataFrameColumn<T> : DataFrameColumn
{
    internal DataFrameColumn(string? name, T[] values)
        : base(name)
    {
        ArgumentNullException.ThrowIfNull(values);
        DType = DataFrameDTypes.Of(typeof(T)) ?? throw new ArgumentException(
            $"A data frame column cannot hold {Formatting.TypeNames.Display(typeof(T))}: columns hold numbers, bool, DateTime or string.", nameof(values));
        Values = values;
    }

    /// <summary>The values.</summary>
    public T[] Values { get; }

    /// <inheritdoc/>
    public override int Length => Values.Length;

    /// <inheritdoc/>
    public override Type ElementType => typeof(T);

    /// <inheritdoc/>
    public override object? this[int row] => Values[row];

    /// <inheritdoc/>
    public override string DType { get; }

    /// <inheritdoc/>
    public override DataFrameColumn Slice(int start, int stop) => new DataFrameColumn<T>(Name, Values[start..stop]);
}

/// <summary>The dtypes table columns travel as.</summary>
internal static class DataFrameDTypes
{
    public static string? Of(Type t) => Type.GetTypeCode(t) switch
    {
        TypeCode.Double => "<f8",
        TypeCode.Single => "<f4",
        TypeCode.Int64 => "<i8",
        TypeCode.Int32 => "<i4",
        TypeCode.Int16 => "<i2",
        TypeCode.SByte => "|i1",
        TypeCode.UInt64 => "<u8",
        TypeCode.UInt32 => "<u4",
        TypeCode.UInt16 => "<u2",
        TypeCode.Byte => "|u1",
        TypeCode.Boolean => "|b1",
        TypeCode.DateTime => "<M8[ns]",
        TypeCode.String => "|O",
        _ => null,
    };
}
