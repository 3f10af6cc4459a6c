namespace IpyRpc.Http.Tests;

internal static class FetchOverTheWire
{
    /// <summary>Holders in these tests live in the test's own process: fetch from them over the transport, as a caller elsewhere would.</summary>
    [System.Runtime.CompilerServices.ModuleInitializer]
    internal static void Init() => HolderConnections.UseLocalStores = false;
}
