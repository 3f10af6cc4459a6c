using System.Text.RegularExpressions;

namespace IpyRpc.Integration.Tests;

/// <summary>
/// The Quickstart published trimmed and self-contained: no trim or AOT-analysis warning (IL2xxx,
/// IL3xxx) in the publish, and the trimmed binary runs its whole demo (server, client, generated
/// proxy, remote errors, live output). NativeAOT itself cannot be published here: its runtime pack
/// is not in the package source.
/// </summary>
[Collection(SdkBuildsCollection.Name)]
public sealed class TrimmedPublishTests
{
    [Fact]
    public async Task TheTrimmedQuickstartPublishesWithoutWarningsAndRunsItsDemo()
    {
        string root = Repository.Root;
        string output = Directory.CreateTempSubdirectory("ipyrpc-trimmed-").FullName;
        try
        {
            (int publishCode, string publishLog) = await Repository.RunAsync("dotnet", root, "publish", Path.Combine(root, "samples", "Quickstart", "Quickstart.csproj"),
                "-c", "Release", "-p:IpyRpcTrimmedPublish=true", "-o", output);
            Assert.True(publishCode == 0, publishLog);
            string[] trimWarnings = [.. Regex.Matches(publishLog, @"warning IL[23]\d{3}[^\n]*").Select(m => m.Value).Distinct()];
            Assert.True(trimWarnings.Length == 0, string.Join("\n", trimWarnings));

            (int runCode, string runLog) = await Repository.RunAsync(Path.Combine(output, "Quickstart"), output);
            Assert.True(runCode == 0, runLog);
            Assert.Contains("demo.Add(40, 2)       = 42", runLog);
            Assert.Contains("caught RemoteException from 'fail'", runLog);
            Assert.Contains("demo.PrintLines(3)    = 3", runLog);
        }
        finally
        {
            Directory.Delete(output, recursive: true);
        }
    }
}
