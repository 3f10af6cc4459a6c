using System.Runtime.CompilerServices;

namespace IpyRpc.Generators.Tests;

/// <summary>
/// Committed snapshots of generated source: <c>Snapshots/{test}.{hint}.verified.cs</c>. On a
/// mismatch the new text is written beside it as <c>.received.cs</c> and the test fails; set
/// <c>IPYRPC_UPDATE_SNAPSHOTS=1</c> to accept the received text as the new snapshot.
/// </summary>
internal static class Snapshot
{
    public static void Verify(string name, string actual, [CallerFilePath] string callerFile = "")
    {
        string directory = Path.Combine(Path.GetDirectoryName(callerFile)!, "Snapshots");
        string verified = Path.Combine(directory, name + ".verified.cs");
        string received = Path.Combine(directory, name + ".received.cs");
        actual = actual.Replace("\r\n", "\n");
        if (Environment.GetEnvironmentVariable("IPYRPC_UPDATE_SNAPSHOTS") == "1")
        {
            Directory.CreateDirectory(directory);
            File.WriteAllText(verified, actual);
            File.Delete(received);
            return;
        }

        string? expected = File.Exists(verified) ? File.ReadAllText(verified).Replace("\r\n", "\n") : null;
        if (expected == actual)
        {
            File.Delete(received);
            return;
        }

        File.WriteAllText(received, actual);
        Assert.Fail(expected is null
            ? $"No snapshot {verified} yet. Review {received} and rerun with IPYRPC_UPDATE_SNAPSHOTS=1 to accept it."
            : $"Generated source differs from {verified}. See {received}; rerun with IPYRPC_UPDATE_SNAPSHOTS=1 to accept the change.");
    }
}
