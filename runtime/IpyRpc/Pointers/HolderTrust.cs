using System.Security.Cryptography;
using System.Text;

namespace IpyRpc;

/// <summary>
/// A pointer's seal: an HMAC, under the key of the job queue its holder works beside, of the addresses it names (its
/// holder, path, main address and alternates). Whoever has the queue's key (every server and worker of the deployment)
/// can tell a pointer its holders made from one a caller wrote or changed; nobody else can make one.
/// </summary>
internal static class PointerSeal
{
    private const int Bytes = 16; // 128 bits of the HMAC-SHA256, as 32 hex digits

    /// <summary>The seal of a pointer with these addresses, under <paramref name="key"/>.</summary>
    public static string Compute(ReadOnlySpan<byte> key, string holder, string path, PointerEndpoint main, IReadOnlyList<PointerEndpoint> alternates)
        => Convert.ToHexStringLower(Mac(key, holder, path, main, alternates));

    /// <summary>Whether the pointer's seal is the one <paramref name="key"/> gives its addresses.</summary>
    public static bool Verify(ReadOnlySpan<byte> key, RemotePointer pointer)
    {
        if (key.IsEmpty || pointer.Seal is not { Length: Bytes * 2 } seal) return false;
        Span<byte> given = stackalloc byte[Bytes];
        if (Convert.FromHexString(seal, given, out _, out int written) != System.Buffers.OperationStatus.Done || written != Bytes) return false;
        return CryptographicOperations.FixedTimeEquals(given, Mac(key, pointer.Holder, pointer.Path, new PointerEndpoint(pointer.Protocol, pointer.Host, pointer.Port), pointer.Alternates));
    }

    private static byte[] Mac(ReadOnlySpan<byte> key, string holder, string path, PointerEndpoint main, IReadOnlyList<PointerEndpoint> alternates)
    {
        // Every field with its length before it, so no two sets of addresses write the same text.
        var text = new StringBuilder("ipyrpc-pointer-seal-1");
        void Field(string value) => text.Append('|').Append(value.Length).Append(':').Append(value);
        Field(holder);
        Field(path);
        Field(main.Protocol);
        Field(main.Host);
        Field(main.Port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        foreach (PointerEndpoint e in alternates)
        {
            Field(e.Protocol);
            Field(e.Host);
            Field(e.Port.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Field(e.BasePath);
        }

        return HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(text.ToString()))[..Bytes];
    }
}

/// <summary>
/// Which holders a server or worker connects to when it resolves a pointer for a caller (an argument, JSON-RPC's
/// <c>rpc.fetch</c>): a pointer sealed by its deployment (<see cref="PointerSeal"/>, under the key of one of its job
/// queues), or an address listed as trusted. Without this, a caller could write a pointer naming any host, port and
/// path and have the server connect there on its behalf.
/// </summary>
/// <param name="keys">The keys of the queues the process works beside.</param>
/// <param name="trusted">Globs over holder addresses (<c>zmq://10.0.0.*:5601</c>, <c>http://data.example.com:443/ipyrpc</c>, <c>*</c> for any).</param>
/// <param name="log">Where refusals are logged (as warnings: a caller tried to point the process somewhere, or a deployment is missing an entry).</param>
internal sealed class HolderTrust(Func<IEnumerable<ReadOnlyMemory<byte>>> keys, IReadOnlyList<string> trusted, Microsoft.Extensions.Logging.ILogger? log)
{
    /// <summary>Checks the patterns are well formed.</summary>
    /// <exception cref="ArgumentException">One is not, naming it and <paramref name="option"/>.</exception>
    public static IReadOnlyList<string> Validate(IReadOnlyList<string>? patterns, string option)
    {
        foreach (string pattern in patterns ?? [])
        {
            try
            {
                if (string.IsNullOrWhiteSpace(pattern)) throw new ArgumentException("it is empty");
                if (pattern != "*" && !pattern.Contains("://", StringComparison.Ordinal))
                {
                    throw new ArgumentException("it names no protocol (an address is protocol://host:port, with the base path for http)");
                }

                Glob.Validate(pattern);
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException($"{option} has the pattern \"{pattern}\", which is not a glob over holder addresses such as \"zmq://10.0.0.*:5601\": {e.Message}", option);
            }
        }

        return patterns ?? [];
    }

    /// <summary>Whether the pointer carries a seal of one of the process's queues.</summary>
    public bool IsSealed(RemotePointer pointer) => pointer.Seal is not null && keys().Any(k => PointerSeal.Verify(k.Span, pointer));

    /// <summary>Whether <paramref name="endpoint"/> is listed as trusted.</summary>
    public bool IsListed(PointerEndpoint endpoint)
    {
        string address = endpoint.ToString();
        return trusted.Any(p => Glob.IsMatch(p.ToLowerInvariant(), address.ToLowerInvariant()));
    }

    /// <summary>Why the process will not connect to <paramref name="endpoint"/> for this pointer.</summary>
    public string Refusal(RemotePointer pointer, PointerEndpoint endpoint)
        => $"{endpoint}: this process connects only to holders of its own deployment, and the pointer {WhyNot(pointer)}, "
            + $"nor is the address listed as trusted (IpyRpcServerOptions.TrustedHolders, or IpyRpcWorkerOptions.TrustedHolders on a worker{(trusted.Count == 0 ? ", empty" : "")})";

    /// <summary>Logs that a pointer's holder was not contacted.</summary>
    public void Refused(RemotePointer pointer)
    {
        if (log is null) return;
        Microsoft.Extensions.Logging.LoggerExtensions.LogWarning(log,
            "A pointer naming {Holder} was not resolved: it {Why}, and TrustedHolders lists none of its addresses. A pointer of another deployment's holder is resolved once its address is listed there.",
            pointer.Endpoint, WhyNot(pointer));
    }

    private static string WhyNot(RemotePointer pointer) => pointer.Seal is null
        ? "carries no seal"
        : "carries a seal that is not its deployment's (made beside another queue's store, or changed since)";
}
