using System.Security.Cryptography;
using System.Text;

namespace IpyRpc;

/// <summary>
/// The shared-secret challenge-response: each side sends a random nonce in its hello and proves it
/// knows the secret with an HMAC-SHA256 over both nonces, labelled by direction so one proof can never
/// be replayed as the other. The secret itself never travels.
/// </summary>
internal static class SharedSecretProof
{
    public const string Scheme = "secret";
    public const int NonceBytes = 32;

    public static byte[] NewNonce() => RandomNumberGenerator.GetBytes(NonceBytes);

    /// <summary>The client's proof: HMAC(secret, "ipyrpc-client" | server nonce | client nonce).</summary>
    public static byte[] Client(byte[] secret, ReadOnlySpan<byte> serverNonce, ReadOnlySpan<byte> clientNonce) => Mac(secret, "ipyrpc-client"u8, serverNonce, clientNonce);

    /// <summary>The server's proof: HMAC(secret, "ipyrpc-server" | client nonce | server nonce).</summary>
    public static byte[] Server(byte[] secret, ReadOnlySpan<byte> clientNonce, ReadOnlySpan<byte> serverNonce) => Mac(secret, "ipyrpc-server"u8, clientNonce, serverNonce);

    /// <summary>Compares proofs in constant time.</summary>
    public static bool Matches(ReadOnlySpan<byte> expected, ReadOnlySpan<byte> actual) => CryptographicOperations.FixedTimeEquals(expected, actual);

    public static byte[] Key(string secret) => Encoding.UTF8.GetBytes(secret);

    private static byte[] Mac(byte[] secret, ReadOnlySpan<byte> label, ReadOnlySpan<byte> first, ReadOnlySpan<byte> second)
    {
        byte[] data = new byte[label.Length + first.Length + second.Length];
        label.CopyTo(data);
        first.CopyTo(data.AsSpan(label.Length));
        second.CopyTo(data.AsSpan(label.Length + first.Length));
        return HMACSHA256.HashData(secret, data);
    }
}
