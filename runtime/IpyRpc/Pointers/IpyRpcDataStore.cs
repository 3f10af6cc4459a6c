using System.Collections.Concurrent;
using System.Security.Cryptography;
using IpyRpc.Formatting;
using IpyRpc.Protocol;

namespace IpyRpc;

/// <summary>Options of an <see cref="IpyRpcDataStore"/>.</summary>
public sealed record DataStoreOptions
{
    /// <summary>
    /// The most bytes the store holds (see <see cref="RemotePointer.Bytes"/> for how a value is
    /// counted). A value that would go over evicts the least recently used values first (a fetch or
    /// a resolve counts as a use); a value larger than the whole budget is refused. Default 1 GiB.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Zero or negative.</exception>
    public long MaxBytes
    {
        get;
        init => field = value > 0 ? value : throw new ArgumentOutOfRangeException(nameof(MaxBytes), value, "MaxBytes must be a positive number of bytes.");
    } = 1L << 30;

    /// <summary>How long a value is kept when neither its function's config nor its caller says: default one hour. <see cref="Timeout.InfiniteTimeSpan"/>: until released or evicted.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Zero or negative (other than <see cref="Timeout.InfiniteTimeSpan"/>).</exception>
    public TimeSpan DefaultTimeToLive
    {
        get;
        init => field = value > TimeSpan.Zero || value == Timeout.InfiniteTimeSpan ? value
            : throw new ArgumentOutOfRangeException(nameof(DefaultTimeToLive), value, "DefaultTimeToLive must be positive, or Timeout.InfiniteTimeSpan for none.");
    } = TimeSpan.FromHours(1);

    /// <summary>
    /// The host name pointers give for transports bound to every interface (<c>tcp://0.0.0.0:…</c>,
    /// <c>http://+:…</c>). Default: this machine's host name.
    /// </summary>
    public string? AdvertisedHost { get; init; }

    /// <summary>How many gone values the store remembers, so a late fetch learns why (expired, released, evicted) rather than "unknown".</summary>
    public int RememberGone { get; init; } = 100_000;
}

/// <summary>
/// The values a process holds for pointers: results of functions configured (or called) to return
/// a pointer. Every server and worker has one; its transports serve it (a <c>fetch</c> goes straight
/// to the holder), and a pointer passed as an argument to a function running in the holder's own
/// process resolves to the value itself, without a byte moving. Values expire after their time to
/// live, can be released, and are evicted least recently used first when the byte budget is reached.
/// </summary>
public sealed class IpyRpcDataStore : IDisposable
{
    private static readonly ConcurrentDictionary<string, IpyRpcDataStore> Live = new(StringComparer.Ordinal);
    private readonly object _gate = new();
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Gone> _gone = new(StringComparer.Ordinal);
    private readonly Queue<string> _goneOrder = new();
    private readonly Timer _sweeper;
    private volatile PointerEndpoint[] _endpoints = [];
    private long _bytes;
    private long _clock;
    private int _disposed;

    /// <summary>Creates a store.</summary>
    public IpyRpcDataStore(DataStoreOptions? options = null)
    {
        Options = options ?? new DataStoreOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(Options.MaxBytes, 1, nameof(options));
        Id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        Live[Id] = this;
        _sweeper = new Timer(static s => ((IpyRpcDataStore)s!).Sweep(), this, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
    }

    /// <summary>The options.</summary>
    public DataStoreOptions Options { get; }

    /// <summary>The store's id: pointers name it as their <see cref="RemotePointer.Holder"/>.</summary>
    public string Id { get; }

    /// <summary>How many values it holds.</summary>
    public int Count
    {
        get
        {
            lock (_gate) return _entries.Count;
        }
    }

    /// <summary>How many bytes its values take (as counted against <see cref="DataStoreOptions.MaxBytes"/>).</summary>
    public long Bytes => Interlocked.Read(ref _bytes);

    /// <summary>Where it is served: the transports that serve its server advertise themselves here.</summary>
    public IReadOnlyList<PointerEndpoint> Endpoints => _endpoints;

    /// <summary>The store with that id, when it lives in this process.</summary>
    public static IpyRpcDataStore? Find(string holder) => Live.GetValueOrDefault(holder);

    /// <summary>Adds an address the store is served at (transports do this when they start).</summary>
    public void Advertise(PointerEndpoint endpoint)
    {
        lock (_gate)
        {
            if (!_endpoints.Contains(endpoint)) _endpoints = [.. _endpoints, endpoint];
        }
    }

    /// <summary>Removes an address (transports do this when they stop).</summary>
    public void Withdraw(PointerEndpoint endpoint)
    {
        lock (_gate) _endpoints = [.. _endpoints.Where(e => e != endpoint)];
    }

    /// <summary>The host a transport bound to <paramref name="host"/> advertises: itself, or for every interface (<c>0.0.0.0</c>), <see cref="DataStoreOptions.AdvertisedHost"/> or the machine name.</summary>
    public string HostToAdvertise(string host)
        => host is "0.0.0.0" or "*" or "+" or "[::]" or "::" or "" ? Options.AdvertisedHost ?? System.Net.Dns.GetHostName() : host;

    /// <summary>
    /// Keeps <paramref name="value"/> and returns a pointer to it.
    /// </summary>
    /// <param name="value">The value.</param>
    /// <param name="formatter">How to encode it when fetched.</param>
    /// <param name="timeToLive">How long to keep it (default <see cref="DataStoreOptions.DefaultTimeToLive"/>; <see cref="Timeout.InfiniteTimeSpan"/> for no limit).</param>
    /// <param name="preferProtocol">The protocol the pointer's main address should use when the store is served over several (the caller's own, usually).</param>
    /// <exception cref="IpyRpcException"><c>too_large</c>: the value alone is larger than the store's budget.</exception>
    public RemotePointer<T> Put<T>(T value, IpyRpcFormatter<T> formatter, TimeSpan? timeToLive = null, string? preferProtocol = null)
    {
        try
        {
            return Hold(value, formatter, timeToLive, preferProtocol);
        }
        catch (PointerFault fault)
        {
            throw IpyRpcException.FromRemote(fault.Error, null);
        }
    }

    internal RemotePointer<T> Hold<T>(T value, IpyRpcFormatter<T> formatter, TimeSpan? timeToLive, string? preferProtocol)
    {
        ObjectDisposedException.ThrowIf(_disposed == 1, this);
        var stored = new StoredValue<T>(value, formatter);
        long bytes = stored.Bytes;
        if (bytes > Options.MaxBytes)
        {
            throw new PointerFault(new RemoteError
            {
                Code = ErrorCodes.TooLarge,
                Message = $"The value ({stored.ValueType}, {bytes} bytes) is larger than this data store's whole budget of {Options.MaxBytes} bytes (DataStoreOptions.MaxBytes), so it cannot be kept for a pointer.",
            });
        }

        TimeSpan ttl = timeToLive ?? Options.DefaultTimeToLive;
        if (ttl <= TimeSpan.Zero && ttl != Timeout.InfiniteTimeSpan)
        {
            throw new PointerFault(new RemoteError { Code = ErrorCodes.BadMessage, Message = $"A pointer's time to live must be positive (or infinite), not {ttl}." });
        }

        DateTimeOffset now = DateTimeOffset.UtcNow;
        DateTimeOffset? expires = ttl == Timeout.InfiniteTimeSpan ? null : now + ttl;
        string id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        byte[] key = RandomNumberGenerator.GetBytes(16);
        var entry = new Entry(stored, key, bytes, expires, ttl);
        lock (_gate)
        {
            SweepLocked(now);
            while (_bytes + bytes > Options.MaxBytes && _entries.Count > 0)
            {
                KeyValuePair<string, Entry> oldest = _entries.MinBy(e => e.Value.LastUsed);
                RemoveLocked(oldest.Key, oldest.Value, ErrorCodes.PointerEvicted, now);
            }

            entry.LastUsed = ++_clock;
            _entries[id] = entry;
            _bytes += bytes;
        }

        PointerEndpoint[] endpoints = _endpoints;
        PointerEndpoint main = endpoints.FirstOrDefault(e => e.Protocol == preferProtocol)
            ?? endpoints.FirstOrDefault()
            ?? new PointerEndpoint(PointerEndpoint.InProcess, "", 0);
        string path = $"{main.BasePath}/data/{id}";
        PointerEndpoint[] alternates = [.. endpoints.Where(e => e != main)];
        byte[]? sealKey = Volatile.Read(ref _sealKey);
        return new RemotePointer<T>
        {
            Protocol = main.Protocol,
            Host = main.Host,
            Port = main.Port,
            Path = path,
            SecretKey = Convert.ToHexStringLower(key),
            Holder = Id,
            ValueType = stored.ValueType,
            Shape = stored.Shape,
            Bytes = bytes,
            ExpiresAt = expires,
            Alternates = alternates,
            Seal = sealKey is null ? null : PointerSeal.Compute(sealKey, Id, path, main, alternates),
        };
    }

    private byte[]? _sealKey;

    /// <summary>
    /// Seals the pointers the store makes from now on with <paramref name="key"/> (its job queue's
    /// <see cref="Jobs.IJobQueue.PointerKey"/>), unless it seals with another already: the first owner to give one (the
    /// worker or server it was made for) decides.
    /// </summary>
    internal void SealWith(ReadOnlyMemory<byte> key)
    {
        if (!key.IsEmpty) Interlocked.CompareExchange(ref _sealKey, key.ToArray(), null);
    }

    /// <summary>
    /// The value at <paramref name="path"/> (or its id), or rows <c>[start, stop)</c> of it, encoded in
    /// <paramref name="serialization"/>, after checking the key: what a <c>fetch</c> answers, for
    /// transports that serve values in a form of their own (HTTP <c>GET</c>).
    /// </summary>
    /// <exception cref="IpyRpcException">The key is wrong, the value is gone (the code says why), or it has no rows.</exception>
    public byte[] Read(string path, string? secretKey, long? start, long? stop, Serialization serialization)
    {
        try
        {
            return Fetch(path, secretKey, start, stop, serialization);
        }
        catch (PointerFault fault)
        {
            throw IpyRpcException.FromRemote(fault.Error, null);
        }
    }

    /// <summary>Encodes the value at <paramref name="path"/>, or rows <c>[start, stop)</c> of it, after checking the key.</summary>
    internal byte[] Fetch(string path, string? key, long? start, long? stop, Serialization serialization)
        => Held(path, key).Value.Encode(serialization, start, stop);

    /// <summary>The value a pointer held here points to, as the type a function takes.</summary>
    internal T Resolve<T>(RemotePointer pointer, IpyRpcFormatter<T> formatter) => Held(pointer.Path, pointer.SecretKey).Value.As(formatter);

    /// <summary>Drops the value at <paramref name="path"/>; a later fetch hears it was released. Releasing twice is not an error.</summary>
    internal void Release(string path, string? key)
    {
        string id = IdOf(path);
        lock (_gate)
        {
            if (_gone.TryGetValue(id, out Gone gone) && gone.Code == ErrorCodes.PointerReleased && KeyMatches(gone.Key, key)) return;
        }

        Entry entry = Held(path, key);
        lock (_gate)
        {
            if (_entries.TryGetValue(id, out Entry? current) && ReferenceEquals(current, entry)) RemoveLocked(id, entry, ErrorCodes.PointerReleased, DateTimeOffset.UtcNow);
        }
    }

    /// <summary>Drops a value by pointer (the holder's own process: for instance a function that is done with its input).</summary>
    public void Release(RemotePointer pointer)
    {
        try
        {
            Release(pointer.Path, pointer.SecretKey);
        }
        catch (PointerFault fault)
        {
            throw IpyRpcException.FromRemote(fault.Error, null);
        }
    }

    private static string IdOf(string path) => path[(path.LastIndexOf('/') + 1)..];

    // The entry at path, after the key is checked; a fault saying why when there is none to give.
    private Entry Held(string path, string? key)
    {
        string id = IdOf(path);
        DateTimeOffset now = DateTimeOffset.UtcNow;
        lock (_gate)
        {
            if (_entries.TryGetValue(id, out Entry? entry))
            {
                if (!KeyMatches(entry.Key, key)) throw Denied(id);
                if (entry.ExpiresAt is { } at && at <= now)
                {
                    RemoveLocked(id, entry, ErrorCodes.PointerExpired, now);
                }
                else
                {
                    entry.LastUsed = ++_clock;
                    return entry;
                }
            }

            if (_gone.TryGetValue(id, out Gone gone))
            {
                if (!KeyMatches(gone.Key, key)) throw Denied(id);
                string what = $"The value at {path} ({gone.ValueType}) ";
                throw new PointerFault(new RemoteError
                {
                    Code = gone.Code,
                    Message = gone.Code switch
                    {
                        ErrorCodes.PointerExpired => what + $"expired at {gone.At:u}: its time to live was {gone.TimeToLive}. Ask for a longer one (CallOptions.PointerTimeToLive, or PointerTimeToLive in the function's config).",
                        ErrorCodes.PointerReleased => what + $"was released at {gone.At:u}.",
                        _ => what + $"was evicted at {gone.At:u} to make room for newer values: the holder keeps at most {Options.MaxBytes} bytes (DataStoreOptions.MaxBytes), least recently used out first.",
                    },
                });
            }
        }

        throw new PointerFault(new RemoteError
        {
            Code = ErrorCodes.NotFound,
            Message = $"No value is held at {path} by data store {Id}: it never was, or the holder restarted since (a restarted holder forgets its values).",
        });
    }

    private static PointerFault Denied(string id) => new(new RemoteError
    {
        Code = ErrorCodes.PointerDenied,
        Message = $"The secret key does not match the one of value {id}: nothing is served, resolved or released without the pointer's own secret_key.",
    });

    private static bool KeyMatches(byte[] expected, string? given)
    {
        if (given is not { Length: 32 }) return false;
        Span<byte> bytes = stackalloc byte[16];
        if (Convert.FromHexString(given, bytes, out _, out int written) != System.Buffers.OperationStatus.Done || written != 16) return false;
        return CryptographicOperations.FixedTimeEquals(expected, bytes);
    }

    private void Sweep()
    {
        lock (_gate) SweepLocked(DateTimeOffset.UtcNow);
    }

    private void SweepLocked(DateTimeOffset now)
    {
        if (_entries.Count == 0) return;
        List<KeyValuePair<string, Entry>>? expired = null;
        foreach (KeyValuePair<string, Entry> e in _entries)
        {
            if (e.Value.ExpiresAt is { } at && at <= now) (expired ??= []).Add(e);
        }

        if (expired is null) return;
        foreach (KeyValuePair<string, Entry> e in expired) RemoveLocked(e.Key, e.Value, ErrorCodes.PointerExpired, now);
    }

    private void RemoveLocked(string id, Entry entry, string code, DateTimeOffset now)
    {
        _entries.Remove(id);
        _bytes -= entry.Bytes;
        _gone[id] = new Gone(code, entry.Key, now, entry.Value.ValueType, entry.TimeToLive);
        _goneOrder.Enqueue(id);
        while (_goneOrder.Count > Math.Max(0, Options.RememberGone) && _goneOrder.TryDequeue(out string? old)) _gone.Remove(old);
    }

    /// <summary>Drops every value and leaves the process's registry.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        Live.TryRemove(Id, out _);
        _sweeper.Dispose();
        lock (_gate)
        {
            _entries.Clear();
            _bytes = 0;
        }
    }

    private sealed class Entry(StoredValue value, byte[] key, long bytes, DateTimeOffset? expiresAt, TimeSpan timeToLive)
    {
        public StoredValue Value { get; } = value;
        public byte[] Key { get; } = key;
        public long Bytes { get; } = bytes;
        public DateTimeOffset? ExpiresAt { get; } = expiresAt;
        public TimeSpan TimeToLive { get; } = timeToLive;
        public long LastUsed { get; set; }
    }

    private readonly record struct Gone(string Code, byte[] Key, DateTimeOffset At, string ValueType, TimeSpan TimeToLive);
}
