using System.Diagnostics;
using System.Text.Json;
using System.Xml.Linq;

namespace IpyRpc.Integration.Tests;

/// <summary>
/// samples/Contracts: three projects. The contracts declare [IpyRpcContract] ICalculator; the server
/// implements it; the client references only the contracts and calls through the proxy generated there.
/// </summary>
public sealed class ContractsSampleTests
{
    [Fact]
    public async Task AClientThatReferencesOnlyTheContractsCallsTheServerOverHttpAndZeroMq()
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Calc.Server.dll"));
        using Process server = Process.Start(start)!;
        try
        {
            var lines = new List<string>();
            while (!lines.Any(l => l.StartsWith("zmq: ", StringComparison.Ordinal)))
            {
                string? line = await server.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
                if (line is null) Assert.Fail("the server ended early: " + string.Join("\n", lines) + await server.StandardError.ReadToEndAsync());
                lines.Add(line);
            }

            string serving = lines.Single(l => l.StartsWith("serving ", StringComparison.Ordinal));
            int pid = int.Parse(serving[(serving.LastIndexOf(' ') + 1)..]);
            Assert.StartsWith("serving calc.add, calc.count, calc.operations, calc.summarize", serving);
            string http = lines.Single(l => l.StartsWith("http: ", StringComparison.Ordinal))[6..];
            string zmq = lines.Single(l => l.StartsWith("zmq: ", StringComparison.Ordinal))[5..];

            foreach ((string address, string transport) in new[] { (http, "HTTP"), (zmq, "ZeroMQ") })
            {
                string output = await SampleProcess.RunAsync("Calc.Client.dll", address);
                Assert.Contains($"connected over {transport}", output);
                Assert.Contains("add: 42", output);
                // The record came back whole, with the enum argument honoured (Down: 4.29 becomes 4).
                Assert.Contains("summary: Summary { Count = 3, Mean = 4, Min = 1.5, Max = 9.125 }", output);
                // The server's print reached the caller live.
                Assert.Contains($"[server Stdout] summarized 3 values in process {pid}", output);
                Assert.Contains("count: 1 2 3 4 5", output);
                Assert.Contains("arithmetic: calc.add (Arithmetic)", output);
                Assert.Contains("statistics: calc.summarize (Statistics), calc.count (Statistics)", output);
                Assert.Contains("empty series: System.ArgumentException: The series is empty. (Parameter 'values')", output);
                Assert.Contains("untyped: 5", output);
            }
        }
        finally
        {
            server.StandardInput.Close();
            if (!server.WaitForExit(TimeSpan.FromSeconds(30))) server.Kill(entireProcessTree: true);
        }

        Assert.Equal(0, server.ExitCode);
    }

    [Fact]
    public void TheClientDependsOnTheContractsAndNeverOnTheServer()
    {
        using JsonDocument deps = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Calc.Client.deps.json")));
        string[] libraries = [.. deps.RootElement.GetProperty("libraries").EnumerateObject().Select(p => p.Name.Split('/')[0])];
        Assert.Contains("Calc.Contracts", libraries);
        Assert.DoesNotContain("Calc.Server", libraries);
    }

    [Fact]
    public void TheContractsXmlDocFileCarriesTheInterfaceDocsOnTheGeneratedProxy()
    {
        XElement members = XDocument.Load(Path.Combine(AppContext.BaseDirectory, "Calc.Contracts.xml")).Root!.Element("members")!;
        XElement Member(string prefix) => members.Elements("member").Single(m => ((string)m.Attribute("name")!).StartsWith(prefix, StringComparison.Ordinal));

        XElement summarize = Member("M:Calc.Contracts.CalculatorClient.CalcNamespace.SummarizeAsync(System.Double[],Calc.Contracts.Rounding,IpyRpc.CallOptions,");
        Assert.Equal("Summarizes a series of measurements: how many, their mean and their range.", summarize.Element("summary")!.Value);
        Assert.Equal("The measurements, in any order.", summarize.Elements("param").Single(p => (string)p.Attribute("name")! == "values").Value);
        Assert.Equal("The summary, with the mean rounded as asked.", summarize.Element("returns")!.Value);
        Assert.Contains("the caller sees it live", summarize.Element("remarks")!.Value);
        XElement thrown = summarize.Element("exception")!;
        Assert.Equal("T:IpyRpc.RemoteException", (string)thrown.Attribute("cref")!);
        Assert.Contains("ArgumentException", thrown.Value);
        Assert.Contains("The series is empty.", thrown.Value);
        // The call's own parameters are documented too, and not the token the server fills.
        Assert.Single(summarize.Elements("param"), p => (string)p.Attribute("name")! == "cancellationToken");

        XElement add = Member("M:Calc.Contracts.CalculatorClient.CalcNamespace.Add(System.Int32,System.Int32,");
        Assert.Equal("Adds two integers.", add.Element("summary")!.Value);
        XElement proxy = members.Elements("member").Single(m => (string)m.Attribute("name")! == "T:Calc.Contracts.CalculatorClient");
        Assert.Contains("contract", proxy.Element("summary")!.Value);
    }
}
