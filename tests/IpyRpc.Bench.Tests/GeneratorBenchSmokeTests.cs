using System.Diagnostics;
using System.Text.RegularExpressions;
using Xunit;

namespace IpyRpc.Bench.Tests;

/// <summary>The generator benchmark runs end to end on a small generated project and reports every measure. No time is asserted.</summary>
public sealed class GeneratorBenchSmokeTests
{
    [Fact]
    public async Task TheGeneratorBenchmarkCompilesItsProjectBothWaysAndReportsSizeAndTime()
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "IpyRpc.GeneratorBench.dll"));
        start.ArgumentList.Add("--smoke");
        using Process process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromMinutes(5)).Token);
        string output = await stdout;
        Assert.True(process.ExitCode == 0, output + await stderr);

        Assert.Contains("20 exported methods in 4 classes", output);
        Assert.Matches(@"\| generated / hand-written \(bytes\) \| [\d.]+× \| <= 4× \|", output);
        Assert.Matches(@"\| generator time, warm \(median of 2\) \| [\d.]+ s \| <= 0\.3 s \|", output);
        Assert.Matches(@"\| compile without the generator \(parse, bind, emit\) \| [\d.]+ s \|", output);
        Assert.Contains("| compiler errors in the generated project | 0 | 0 | yes |", output);
        Assert.True(Regex.Match(output, @"generated code \| ([\d,]+) lines").Success, output);
    }
}
