using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace IpyRpc.Jobs;

/// <summary>
/// One SQL statement prepared once and run many times, bound by parameter index. The queue's
/// statements are few and fixed, and ADO.NET's per-execution binding by name (a UTF-8 conversion and
/// a lookup per parameter, every time) cost more than SQLite itself; this is the same SQLite engine,
/// through the raw API Microsoft.Data.Sqlite is built on.
/// </summary>
internal sealed class SqliteStatement : IDisposable
{
    private readonly sqlite3 _db;
    private readonly sqlite3_stmt _statement;
    private readonly Dictionary<string, int> _indexes = new(StringComparer.Ordinal);

    public SqliteStatement(sqlite3 db, string sql)
    {
        _db = db;
        Check(db, raw.sqlite3_prepare_v2(db, sql, out _statement));
    }

    /// <summary>Runs the statement to its end; the number of rows it changed.</summary>
    public int Execute((string Name, object? Value)[] parameters)
    {
        Bind(parameters);
        try
        {
            while (Step())
            {
            }

            return raw.sqlite3_changes(_db);
        }
        finally
        {
            raw.sqlite3_reset(_statement);
        }
    }

    /// <summary>Binds and returns the rows; dispose them to reset the statement for its next use.</summary>
    public SqliteRows Query((string Name, object? Value)[] parameters)
    {
        Bind(parameters);
        return new SqliteRows(this);
    }

    internal sqlite3_stmt Handle => _statement;

    internal bool Step()
    {
        int rc = raw.sqlite3_step(_statement);
        if (rc == raw.SQLITE_ROW) return true;
        if (rc == raw.SQLITE_DONE) return false;
        raw.sqlite3_reset(_statement);
        throw Failure(_db, rc);
    }

    internal void Reset() => raw.sqlite3_reset(_statement);

    private void Bind((string Name, object? Value)[] parameters)
    {
        raw.sqlite3_reset(_statement);
        raw.sqlite3_clear_bindings(_statement);
        foreach ((string name, object? value) in parameters)
        {
            if (!_indexes.TryGetValue(name, out int index))
            {
                index = raw.sqlite3_bind_parameter_index(_statement, name);
                if (index == 0) throw new ArgumentException($"The statement has no parameter {name}.", nameof(parameters));
                _indexes[name] = index;
            }

            int rc = value switch
            {
                null => raw.sqlite3_bind_null(_statement, index),
                long l => raw.sqlite3_bind_int64(_statement, index, l),
                int i => raw.sqlite3_bind_int64(_statement, index, i),
                bool b => raw.sqlite3_bind_int64(_statement, index, b ? 1 : 0),
                string s => raw.sqlite3_bind_text(_statement, index, s),
                byte[] bytes => raw.sqlite3_bind_blob(_statement, index, bytes),
                double d => raw.sqlite3_bind_double(_statement, index, d),
                _ => throw new ArgumentException($"Cannot bind a {value.GetType().Name} to {name}.", nameof(parameters)),
            };
            Check(_db, rc);
        }
    }

    public void Dispose() => _statement.Dispose();

    /// <summary>Runs SQL text (one or more statements, no parameters).</summary>
    public static void Exec(sqlite3 db, string sql) => Check(db, raw.sqlite3_exec(db, sql));

    private static void Check(sqlite3 db, int rc)
    {
        if (rc != raw.SQLITE_OK) throw Failure(db, rc);
    }

    private static SqliteException Failure(sqlite3 db, int rc) => new($"SQLite error {rc}: {raw.sqlite3_errmsg(db).utf8_to_string()}", rc);
}

/// <summary>The rows of a running <see cref="SqliteStatement"/>, read in the manner of a data reader.</summary>
internal sealed class SqliteRows(SqliteStatement statement) : IDisposable
{
    private bool _done;

    public bool Read()
    {
        if (_done) return false;
        if (statement.Step()) return true;
        _done = true;
        return false;
    }

    public bool IsDBNull(int column) => raw.sqlite3_column_type(statement.Handle, column) == raw.SQLITE_NULL;

    public long GetInt64(int column) => raw.sqlite3_column_int64(statement.Handle, column);

    public int GetInt32(int column) => (int)raw.sqlite3_column_int64(statement.Handle, column);

    public string GetString(int column) => raw.sqlite3_column_text(statement.Handle, column).utf8_to_string();

    public byte[] GetBytes(int column) => raw.sqlite3_column_blob(statement.Handle, column).ToArray();

    public void Close() => Dispose();

    public void Dispose()
    {
        _done = true;
        statement.Reset();
    }
}
