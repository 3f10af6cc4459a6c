namespace IpyRpc.Protocol;

/// <summary>
/// One protocol message: a header (kind, id, function, serialization and a few optional fields)
/// plus zero or more binary parts. Every transport carries exactly this; see docs/PROTOCOL.md.
/// </summary>
public sealed record IpyRpcMessage
{
    /// <summary>What the message is.</summary>
    public required MessageKind Kind { get; init; }

    /// <summary>The call id: chosen by the caller, echoed by every message about that call. Zero for messages about no call.</summary>
    public ulong Id { get; init; }

    /// <summary>The function called (calls and events).</summary>
    public string? Function { get; init; }

    /// <summary>How the parts are encoded.</summary>
    public Serialization Serialization { get; init; } = Serialization.MessagePack;

    /// <summary>The caller's deadline for a call, in milliseconds.</summary>
    public long? TimeoutMs { get; init; }

    /// <summary>The console stream of an output message.</summary>
    public OutputStream Stream { get; init; }

    /// <summary>The id of the job a call became (results, errors, output), or the job a submit, attach, status or cancel is about.</summary>
    public string? JobId { get; init; }

    /// <summary>For output, items and progress: its sequence number in the job's record (a later attach can continue after it). For an event: its number in the server's event history (a subscription that reconnects resumes after it).</summary>
    public long? Sequence { get; init; }

    /// <summary>For attach: replay the job's recorded events after this sequence number (0 or absent: all of them).</summary>
    public long? After
    {
        get => _rare?.After;
        init => Rare(_rare is { } r ? r with { After = value } : value is null ? null : new RareFields { After = value });
    }

    /// <summary>Protocol versions offered (client hello) or the one chosen (server hello: one element).</summary>
    public IReadOnlyList<int>? Versions
    {
        get => _rare?.Versions;
        init => Rare(_rare is { } r ? r with { Versions = value } : value is null ? null : new RareFields { Versions = value });
    }

    /// <summary>Who sent a hello (for example <c>ipyrpc-dotnet/1.0</c>).</summary>
    public string? Agent
    {
        get => _rare?.Agent;
        init => Rare(_rare is { } r ? r with { Agent = value } : value is null ? null : new RareFields { Agent = value });
    }

    /// <summary>In a hello: a random challenge (16 bytes or more) for the other side to answer with a proof.</summary>
    public ReadOnlyMemory<byte>? Nonce
    {
        get => _rare?.Nonce;
        init => Rare(_rare is { } r ? r with { Nonce = value } : value is null ? null : new RareFields { Nonce = value });
    }

    /// <summary>In the server's hello: its proof that it knows the shared secret (an HMAC over both nonces).</summary>
    public ReadOnlyMemory<byte>? Proof
    {
        get => _rare?.Proof;
        init => Rare(_rare is { } r ? r with { Proof = value } : value is null ? null : new RareFields { Proof = value });
    }

    /// <summary>In the server's hello: the authentication schemes the client must complete before anything else (<c>secret</c>).</summary>
    public IReadOnlyList<string>? Auth
    {
        get => _rare?.Auth;
        init => Rare(_rare is { } r ? r with { Auth = value } : value is null ? null : new RareFields { Auth = value });
    }

    /// <summary>For a streaming call or submit: how many items the caller can take before it sends <see cref="MessageKind.Credit"/> (absent: no limit).</summary>
    public long? Window
    {
        get => _rare?.Window;
        init => Rare(_rare is { } r ? r with { Window = value } : value is null ? null : new RareFields { Window = value });
    }

    /// <summary>For credit: how many more items the callee may send.</summary>
    public long? Credit
    {
        get => _rare?.Credit;
        init => Rare(_rare is { } r ? r with { Credit = value } : value is null ? null : new RareFields { Credit = value });
    }

    /// <summary>For an event: how many events for this connection were dropped since the last one delivered (its buffer was full).</summary>
    public long? Dropped
    {
        get => _rare?.Dropped;
        init => Rare(_rare is { } r ? r with { Dropped = value } : value is null ? null : new RareFields { Dropped = value });
    }

    /// <summary>For a call or submit: the caller's W3C trace context (<c>traceparent</c>), so the callee's spans join the caller's trace.</summary>
    public string? Trace { get; init; }

    /// <summary>For a call or submit: return a pointer to the result rather than the result (<see langword="true"/>), or the result even where the function's config says pointer (<see langword="false"/>); absent: as configured.</summary>
    public bool? ReturnPointer
    {
        get => _rare?.ReturnPointer;
        init => Rare(_rare is { } r ? r with { ReturnPointer = value } : value is null ? null : new RareFields { ReturnPointer = value });
    }

    /// <summary>For a call or submit that returns a pointer: how long the holder keeps the value, in milliseconds (absent: as configured).</summary>
    public long? PointerTtlMs
    {
        get => _rare?.PointerTtlMs;
        init => Rare(_rare is { } r ? r with { PointerTtlMs = value } : value is null ? null : new RareFields { PointerTtlMs = value });
    }

    /// <summary>
    /// On an error a transport made for one of its requests (never read from or written to the wire): the request
    /// certainly did not reach the peer's functions (it could not be sent, or the peer refused it unread), so making it
    /// again cannot run it twice. The caller's exception says so (<see cref="IpyRpcConnectionException.NotDelivered"/>).
    /// </summary>
    public bool NotDelivered
    {
        get => _rare?.NotDelivered ?? false;
        init => Rare(_rare is { } r ? r with { NotDelivered = value } : !value ? null : new RareFields { NotDelivered = value });
    }

    /// <summary>The binary parts.</summary>
    public IReadOnlyList<ReadOnlyMemory<byte>> Parts { get; init; } = [];

    /// <summary>
    /// The pooled arrays the parts are slices of, when a transport rented them (large parts only);
    /// otherwise <see langword="null"/>. The last reader releases them (see <see cref="PooledParts"/>);
    /// a copy made with <c>with</c> shares them.
    /// </summary>
    public PooledParts? Pooled { get; init; }

    /// <summary>The first part, or empty.</summary>
    public ReadOnlyMemory<byte> Body => Parts.Count > 0 ? Parts[0] : ReadOnlyMemory<byte>.Empty;

    /// <summary>The bytes of all the parts together.</summary>
    public long PartBytes
    {
        get
        {
            IReadOnlyList<ReadOnlyMemory<byte>> parts = Parts;
            long bytes = 0;
            for (int i = 0; i < parts.Count; i++) bytes += parts[i].Length; // indexed: a foreach over the interface allocates
            return bytes;
        }
    }

    // The fields only handshakes, attaches, flow control, events and pointer calls carry live apart, so the
    // messages of every call (a few per call, each side) stay small. A copy made with `with` shares them until
    // one is set, which makes new ones: a message never changes another's.
    private RareFields? _rare;

    private void Rare(RareFields? rare) => _rare = rare == RareFields.None ? null : rare;

    private sealed record RareFields
    {
        public static readonly RareFields None = new();

        public long? After { get; init; }

        public IReadOnlyList<int>? Versions { get; init; }

        public string? Agent { get; init; }

        public ReadOnlyMemory<byte>? Nonce { get; init; }

        public ReadOnlyMemory<byte>? Proof { get; init; }

        public IReadOnlyList<string>? Auth { get; init; }

        public long? Window { get; init; }

        public long? Credit { get; init; }

        public long? Dropped { get; init; }

        public bool? ReturnPointer { get; init; }

        public long? PointerTtlMs { get; init; }

        public bool NotDelivered { get; init; }
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Kind} #{Id}{(Function is null ? "" : " " + Function)} ({Parts.Count} parts)";
}
