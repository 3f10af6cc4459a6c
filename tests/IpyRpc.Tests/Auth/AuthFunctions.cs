namespace IpyRpc.Tests.Auth;

/// <summary>Functions for the authentication and authorization tests.</summary>
public static class AuthFunctions
{
    /// <summary>Who the caller is, as its connection says.</summary>
    [IpyRpcExport("auth.whoami")]
    public static string WhoAmI(IpyRpcConnection connection) => $"{connection.Principal.Identity?.Name ?? "anonymous"} over {connection.Transport}";

    /// <summary>Moves money (an authorizer looks at the arguments).</summary>
    [IpyRpcExport("auth.transfer")]
    public static string Transfer(string account, long amount) => $"{amount} from {account}";

    /// <summary>For administrators.</summary>
    [IpyRpcExport("auth.admin")]
    public static string Admin() => "admin stuff";

    /// <summary>Waits for a gate.</summary>
    [IpyRpcExport("auth.wait")]
    public static async Task<string> Wait(string gate, CancellationToken ct)
    {
        Gates.Open(gate + ".started");
        await Gates.WaitAsync(gate, ct);
        return gate;
    }

    /// <summary>Takes a big argument.</summary>
    [IpyRpcExport("auth.size")]
    public static int Size(byte[] data) => data.Length;

    /// <summary>Fails with an exception that has properties of its own.</summary>
    [IpyRpcExport("auth.fail_custom")]
    public static void FailCustom(int code) => throw new CustomFailure(code, "it failed");
}

/// <summary>An exception with properties a caller can act on.</summary>
public sealed class CustomFailure(int statusCode, string message) : Exception(message)
{
    /// <summary>A status.</summary>
    public int StatusCode { get; } = statusCode;

    /// <summary>Advice.</summary>
    public string Hint => "retry later";
}
