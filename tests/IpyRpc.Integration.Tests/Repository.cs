using System.Diagnostics;

namespace IpyRpc.Integration.Tests;

/// <summary>The repository these tests run from, and running its tools as a newcomer would.</summary>
internal static class Repository
{
    /// <summary>The folder that holds IpyRpc.Generators.sln.</summary>
    public static string Root { get; } = FindRoot();

    private static string FindRoot()
    {
        for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "IpyRpc.Generators.sln"))) return d.FullName;
        }

        throw new InvalidOperationException("The repository root (with IpyRpc.Generators.sln) is not above " + AppContext.BaseDirectory);
    }

    /// <summary>Runs <paramref name="file"/> in <paramref name="directory"/> with no input; returns its exit code and everything it wrote.</summary>
    public static async Task<(int Code, string Output)> RunAsync(string file, string directory, params string[] args)
    {
        (int code, string stdout, string stderr) = await RunWithStreamsAsync(file, directory, args);
        return (code, stdout + stderr);
    }

    /// <summary>Runs <paramref name="file"/> as <see cref="RunAsync"/> does; returns its exit code, its stdout and its stderr apart.</summary>
    public static async Task<(int Code, string Stdout, string Stderr)> RunWithStreamsAsync(string file, string directory, params string[] args)
    {
        var start = new ProcessStartInfo(file) { WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (string a in args) start.ArgumentList.Add(a);
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["MSBUILDDISABLENODEREUSE"] = "1";
        using Process process = Process.Start(start)!;
        process.StandardInput.Close();
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(6));
        return (process.ExitCode, await stdout, await stderr);
    }
}

/// <summary>Tests that build, pack or publish with the SDK: run alone, after the others, so they neither slow the timing-sensitive tests nor race each other's builds.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SdkBuildsCollection
{
    public const string Name = "SDK builds";
}
