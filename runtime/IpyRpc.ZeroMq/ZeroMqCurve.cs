using System.Runtime.InteropServices;
using IpyRpc.ZeroMq.Native;

namespace IpyRpc.ZeroMq;

/// <summary>
/// ZeroMQ CURVE security (libzmq's elliptic-curve handshake): the connection is encrypted, the
/// client checks it reached the server whose public key it holds, and the server admits only the
/// client keys on its allow-list (through a ZAP handler), each as a named principal. Keys are the
/// 40-character Z85 text libzmq uses; make pairs with <see cref="GenerateKeyPair"/>.
/// </summary>
public sealed record ZeroMqCurve
{
    /// <summary>On a server: its public key. On a client: the public key of the server it must reach.</summary>
    public required string ServerPublicKey { get; init; }

    /// <summary>On a server: its secret key. Unset on clients.</summary>
    public string? ServerSecretKey { get; init; }

    /// <summary>
    /// On a server: the clients it admits, public key to name (the name becomes the connection's
    /// principal). <see langword="null"/> admits any client key (encryption without an allow-list;
    /// the principal is the key itself).
    /// </summary>
    public IReadOnlyDictionary<string, string>? AuthorizedClients { get; init; }

    /// <summary>On a client: its public key.</summary>
    public string? ClientPublicKey { get; init; }

    /// <summary>On a client: its secret key.</summary>
    public string? ClientSecretKey { get; init; }

    /// <summary>Whether this is a server's configuration.</summary>
    public bool IsServer => ServerSecretKey is not null;

    /// <summary>A server's CURVE configuration: its key pair and the clients it admits.</summary>
    public static ZeroMqCurve ForServer(string publicKey, string secretKey, IReadOnlyDictionary<string, string>? authorizedClients)
        => new() { ServerPublicKey = publicKey, ServerSecretKey = secretKey, AuthorizedClients = authorizedClients };

    /// <summary>A client's CURVE configuration: the server's public key, and its own key pair.</summary>
    public static ZeroMqCurve ForClient(string serverPublicKey, string clientPublicKey, string clientSecretKey)
        => new() { ServerPublicKey = serverPublicKey, ClientPublicKey = clientPublicKey, ClientSecretKey = clientSecretKey };

    /// <summary>A new key pair, as Z85 text (libzmq's <c>zmq_curve_keypair</c>).</summary>
    /// <exception cref="NotSupportedException">This libzmq was built without CURVE.</exception>
    public static unsafe (string PublicKey, string SecretKey) GenerateKeyPair()
    {
        LibZmq.EnsureLoaded();
        EnsureAvailable();
        byte* publicKey = stackalloc byte[41];
        byte* secretKey = stackalloc byte[41];
        if (LibZmq.zmq_curve_keypair(publicKey, secretKey) != 0)
        {
            throw new NotSupportedException("libzmq could not make a CURVE key pair: " + LibZmq.Error(LibZmq.zmq_errno()));
        }

        return (Marshal.PtrToStringAnsi((nint)publicKey)!, Marshal.PtrToStringAnsi((nint)secretKey)!);
    }

    /// <summary>Encodes a 32-byte key as Z85 text.</summary>
    public static string Z85(ReadOnlySpan<byte> key)
    {
        const string Alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
        if (key.Length % 4 != 0) throw new ArgumentException("Z85 encodes whole groups of 4 bytes.", nameof(key));
        var text = new char[key.Length / 4 * 5];
        for (int i = 0, j = 0; i < key.Length; i += 4)
        {
            uint value = (uint)(key[i] << 24 | key[i + 1] << 16 | key[i + 2] << 8 | key[i + 3]);
            for (int k = 4; k >= 0; k--)
            {
                text[j + k] = Alphabet[(int)(value % 85)];
                value /= 85;
            }

            j += 5;
        }

        return new string(text);
    }

    internal static void EnsureAvailable()
    {
        if (LibZmq.zmq_has("curve") == 0)
        {
            throw new NotSupportedException("This libzmq was built without CURVE (libsodium); install one with it (Debian's libzmq5 has it).");
        }
    }

    internal unsafe void ApplyToServer(ZmqSocketHandle socket)
    {
        EnsureAvailable();
        SocketLoop.SetInt(socket, LibZmq.CURVE_SERVER, 1);
        SetKey(socket, LibZmq.CURVE_SECRETKEY, ServerSecretKey!);
        SetText(socket, LibZmq.ZAP_DOMAIN, "ipyrpc");
    }

    internal void ApplyToClient(ZmqSocketHandle socket)
    {
        EnsureAvailable();
        if (ClientPublicKey is null || ClientSecretKey is null)
        {
            throw new ArgumentException("A CURVE client needs its own key pair (ClientPublicKey, ClientSecretKey) besides the server's public key.");
        }

        SetKey(socket, LibZmq.CURVE_SERVERKEY, ServerPublicKey);
        SetKey(socket, LibZmq.CURVE_PUBLICKEY, ClientPublicKey);
        SetKey(socket, LibZmq.CURVE_SECRETKEY, ClientSecretKey);
    }

    /// <summary>The ZAP decision for a client's public key.</summary>
    internal ZapReply Admit(ZapRequest request)
    {
        if (request.Mechanism != "CURVE" || request.Credentials.Length != 32)
        {
            return new ZapReply(false, "only CURVE clients are admitted", "");
        }

        string key = Z85(request.Credentials);
        if (AuthorizedClients is null) return new ZapReply(true, "OK", key);
        return AuthorizedClients.TryGetValue(key, out string? name)
            ? new ZapReply(true, "OK", name)
            : new ZapReply(false, "this client's key is not on the server's list", "");
    }

    private static void SetKey(ZmqSocketHandle socket, int option, string key)
    {
        if (key.Length != 40) throw new ArgumentException($"A CURVE key is 40 characters of Z85 text; this one has {key.Length}.");
        SetText(socket, option, key);
    }

    private static unsafe void SetText(ZmqSocketHandle socket, int option, string text)
    {
        byte[] bytes = System.Text.Encoding.ASCII.GetBytes(text);
        fixed (byte* data = bytes)
        {
            if (LibZmq.zmq_setsockopt(socket, option, data, (nuint)bytes.Length) < 0)
            {
                throw new ArgumentException($"libzmq refused CURVE option {option}: {LibZmq.Error(LibZmq.zmq_errno())}");
            }
        }
    }
}
