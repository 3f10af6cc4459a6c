using System.Diagnostics;
using IpyRpc.TestWorker;
using IpyRpc.ZeroMq;

namespace IpyRpc.Integration.Tests;

/// <summary>samples/scripts/call.cs, the one-file C# script, run with `dotnet run call.cs` against a live server.</summary>
[Collection(SdkBuildsCollection.Name)]
public sealed class ScriptSampleTests
{
    [Fact]
    public async Task TheOneFileScriptShowsRemoteHelpAndCalls()
    {
        await using var server = new IpyRpcServer();
        server.Register(typeof(WorkFunctions));
        await using IpyRpcZeroMqServer host = IpyRpcZeroMqServer.Start(server, "tcp://127.0.0.1:*");

        string script = Path.Combine(Repository.Root, "samples", "scripts", "call.cs");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in new[] { "run", script, "--", host.Endpoint, "work.square", "7" }) start.ArgumentList.Add(a);
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        using Process process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(4));
        string output = await stdout + await stderr;
        Assert.True(process.ExitCode == 0, output);
        Assert.Contains("Squares a number.", output); // the remote help
        Assert.Contains("=> 49", output);
    }
}
