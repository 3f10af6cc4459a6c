using System.Diagnostics;

namespace IpyRpc.Integration.Tests;

/// <summary>Runs a sample as a newcomer runs it (<c>dotnet Sample.dll</c>, built beside the tests) and returns what it printed once it succeeded.</summary>
internal static class SampleProcess
{
    public static async Task<string> RunAsync(string dll, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, dll));
        foreach (string a in args) start.ArgumentList.Add(a);
        using Process process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
        string output = await stdout;
        Assert.True(process.ExitCode == 0, output + await stderr);
        return output;
    }
}
