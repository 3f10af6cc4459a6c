using System.Buffers;
using System.Text.Json;
using IpyRpc.Formatting;
using IpyRpc.MessagePack;
using IpyRpc.Protocol;

namespace IpyRpc;

/// <summary>
/// The arguments of an outgoing call, each with its formatter: all positional (sent as an array)
/// or all named (sent as a map). Generated proxies build these; dynamic calls too.
/// </summary>
public sealed class IpyRpcArguments
{
    private readonly List<Entry> _entries = [];

    /// <summary>How many arguments there are.</summary>
    public int Count => _entries.Count;

    /// <summary>Adds a positional argument.</summary>
    public IpyRpcArguments Add<T>(T value, IpyRpcFormatter<T> formatter)
    {
        if (_entries.Count > 0 && _entries[^1].Name is not null)
        {
            throw new InvalidOperationException("Positional arguments cannot follow named ones.");
        }

        _entries.Add(new Entry<T>(null, value, formatter));
        return this;
    }

    /// <summary>Adds a positional argument that is a value or a pointer to one (resolved where the function runs).</summary>
    public IpyRpcArguments Add<T>(ValueOrPointer<T> value, IpyRpcFormatter<T> formatter)
        => value.Pointer is { } pointer ? Add(pointer, RemotePointerFormatter<T>.Instance) : Add(value.Value, formatter);

    /// <summary>Adds a named argument.</summary>
    public IpyRpcArguments Add<T>(string name, T value, IpyRpcFormatter<T> formatter)
    {
        if (_entries.Count > 0 && _entries[0].Name is null)
        {
            throw new InvalidOperationException("A call's arguments are either all positional or all named.");
        }

        _entries.Add(new Entry<T>(name, value, formatter));
        return this;
    }

    /// <summary>
    /// Sends the call's progress reports to <paramref name="progress"/>: the function's
    /// <see cref="IProgress{T}"/> parameter reports there, live, before the call returns. Generated
    /// proxies call this for a function that takes an <see cref="IProgress{T}"/>.
    /// </summary>
    public IpyRpcArguments Progress<T>(IProgress<T>? progress, IpyRpcFormatter<T> formatter)
    {
        ProgressHandler = progress is null ? null : message => progress.Report(IpyRpcPeer.Decode(message, formatter, "progress"));
        return this;
    }

    /// <summary>What a progress message of this call turns into, when the caller wants its progress.</summary>
    internal Action<IpyRpcMessage>? ProgressHandler { get; private set; }

    /// <summary>Encodes the arguments in <paramref name="serialization"/>.</summary>
    public ReadOnlyMemory<byte> Encode(Serialization serialization) => Encode(serialization, pooling: false, out _);

    /// <summary>Encodes the arguments; large ones, when <paramref name="pooling"/>, into pooled arrays, in <paramref name="pooled"/> (see <see cref="PooledParts"/>).</summary>
    internal ReadOnlyMemory<byte> Encode(Serialization serialization, bool pooling, out PooledParts? pooled)
    {
        bool named = _entries.Count > 0 && _entries[0].Name is not null;
        int hint = 16;
        foreach (Entry e in _entries) hint += e.SizeHint;
        var buffer = new ByteBuffer(hint, pooling, compact: true);
        if (serialization == Serialization.Json)
        {
            using var w = new Utf8JsonWriter(buffer, global::IpyRpc.Formatting.Json.JsonWire.Options);
            if (named) w.WriteStartObject(); else w.WriteStartArray();
            foreach (Entry e in _entries)
            {
                if (named) w.WritePropertyName(e.Name!);
                e.Write(w);
            }

            if (named) w.WriteEndObject(); else w.WriteEndArray();
        }
        else
        {
            var w = new MessagePackWriter(buffer);
            if (named) w.WriteMapHeader(_entries.Count); else w.WriteArrayHeader(_entries.Count);
            foreach (Entry e in _entries)
            {
                if (named) w.Write(e.Name);
                e.Write(ref w);
            }
        }

        pooled = buffer.Pooled;
        return buffer.Detach();
    }

    private abstract class Entry(string? name)
    {
        public string? Name { get; } = name;

        public abstract int SizeHint { get; }

        public abstract void Write(ref MessagePackWriter writer);

        public abstract void Write(Utf8JsonWriter writer);
    }

    private sealed class Entry<T>(string? name, T value, IpyRpcFormatter<T> formatter) : Entry(name)
    {
        public override int SizeHint => Formatting.SizeHint.Of(value);

        public override void Write(ref MessagePackWriter writer) => formatter.Write(ref writer, value);

        public override void Write(Utf8JsonWriter writer) => formatter.Write(writer, value);
    }
}
