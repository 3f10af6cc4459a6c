using System.Text.Json;
using System.Xml.Linq;
using IpyRpc.Http;
using IpyRpc.ZeroMq;

namespace IpyRpc.Integration.Tests;

/// <summary>
/// samples/SchemaClient: a project with three schema files and no reference to any server. Its generated
/// clients call the Quickstart server, the calculator and the chat room over HTTP and ZeroMQ, and hear the
/// room's events through the typed declarations its schema gave; the committed schema files are what
/// `ipyrpc schema` writes from those servers today.
/// </summary>
public sealed class SchemaClientSampleTests : IAsyncLifetime
{
    private readonly IpyRpcServer _quickstart = Quickstart.Demo.CreateServer();
    private readonly IpyRpcServer _calc = new();
    private readonly IpyRpcServer _chat = new();
    private readonly List<IAsyncDisposable> _hosts = [];
    private string _quickstartHttp = "", _quickstartZmq = "", _calcHttp = "", _calcZmq = "", _chatHttp = "", _chatZmq = "";

    public async Task InitializeAsync()
    {
        _calc.Register(new Calc.Server.Calculator());
        IpyRpcHttpServer qh = await IpyRpcHttpServer.StartAsync(_quickstart);
        IpyRpcZeroMqServer qz = IpyRpcZeroMqServer.Start(_quickstart, "tcp://127.0.0.1:*");
        IpyRpcHttpServer ch = await IpyRpcHttpServer.StartAsync(_calc);
        IpyRpcZeroMqServer cz = IpyRpcZeroMqServer.Start(_calc, "tcp://127.0.0.1:*");
        var room = new Chat.ChatRoom();
        _chat.Register(room).Register(typeof(Chat.ChatEvents));
        room.Attach(_chat);
        IpyRpcHttpServer rh = await IpyRpcHttpServer.StartAsync(_chat);
        IpyRpcZeroMqServer rz = IpyRpcZeroMqServer.Start(_chat, "tcp://127.0.0.1:*");
        _hosts.AddRange([qh, qz, ch, cz, rh, rz]);
        (_quickstartHttp, _quickstartZmq, _calcHttp, _calcZmq) = (qh.Address.ToString(), qz.Endpoint, ch.Address.ToString(), cz.Endpoint);
        (_chatHttp, _chatZmq) = (rh.Address.ToString(), rz.Endpoint);
    }

    public async Task DisposeAsync()
    {
        foreach (IAsyncDisposable host in _hosts) await host.DisposeAsync();
        await _quickstart.DisposeAsync();
        await _calc.DisposeAsync();
        await _chat.DisposeAsync();
    }

    [Fact]
    public async Task TheClientGeneratedFromTheQuickstartSchemaCallsEverySampleFunctionOverHttpAndZeroMq()
    {
        Assert.Equal(["add", "echo", "fail", "mean_binary", "mean_json", "print_lines"], _quickstart.Functions.Select(f => f.Name).Order());
        foreach (string address in new[] { _quickstartHttp, _quickstartZmq })
        {
            string output = await SampleProcess.RunAsync("SchemaClient.dll", "quickstart", address);
            Assert.Contains("add(40, 2) = 42", output);
            Assert.Contains("echo = from a schema", output);
            Assert.Contains("mean_binary = 3", output);
            Assert.Contains("mean_json = 3", output);
            // The remote prints arrived before the result, through the call's Output.
            Assert.Contains("[remote Stdout] line 1\n[remote Stdout] line 2\nprint_lines = 2", output.Replace("\r", ""));
            Assert.Contains("fail raised System.InvalidOperationException: schema clients see remote exceptions too", output);
            Assert.Contains("submitted add = 3", output);
        }
    }

    [Fact]
    public async Task TheClientGeneratedFromTheCalculatorSchemaRoundTripsRecordsEnumsMapsAndStreams()
    {
        foreach (string address in new[] { _calcHttp, _calcZmq })
        {
            string output = await SampleProcess.RunAsync("SchemaClient.dll", "calc", address);
            Assert.Contains("calc.add(2, 3) = 5", output);
            // The enum argument travelled by name (Down: 2.33 becomes 2) and the record came back whole.
            Assert.Contains("calc.summarize = Summary { Count = 3, Mean = 2, Min = 1, Max = 4 }", output);
            Assert.Contains($"[remote] summarized 3 values in process {Environment.ProcessId}", output);
            // Left out, the rounding took the server's default, which the schema recorded (Nearest).
            Assert.Contains("calc.summarize default rounding: mean 2.33", output);
            Assert.Contains("calc.count = 1,2,3,4", output);
            Assert.Contains("operations[arithmetic] = calc.add:Arithmetic", output);
            Assert.Contains("operations[statistics] = calc.summarize:Statistics,calc.count:Statistics", output);
            Assert.Contains("calc.summarize([]) raised System.ArgumentException", output);
        }
    }

    [Fact]
    public async Task TheClientGeneratedFromTheChatSchemaHearsTheRoomsEventsThroughItsTypedDeclarations()
    {
        foreach (string address in new[] { _chatHttp, _chatZmq })
        {
            string output = await SampleProcess.RunAsync("SchemaClient.dll", "chat", address);
            // The room called the client back for its nickname (an export of the sample's own), then published the line
            // as chat.said; the client's handler, subscribed with ChatEvents.Chat.Said, printed the ChatLine it decoded.
            Assert.Contains("chat.say queued the line for 1 subscriber(s)", output);
            Assert.Contains("heard schema-client: hello from a schema client", output);
            Assert.Contains("history schema-client: hello from a schema client", output);
        }
    }

    [Fact]
    public void TheClientReferencesNoServerAndItsXmlDocFileHasTheServersDocs()
    {
        using JsonDocument deps = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "SchemaClient.deps.json")));
        string[] libraries = [.. deps.RootElement.GetProperty("libraries").EnumerateObject().Select(p => p.Name.Split('/')[0])];
        Assert.DoesNotContain("Quickstart", libraries);
        Assert.DoesNotContain("Calc.Server", libraries);
        Assert.DoesNotContain("Calc.Contracts", libraries);
        Assert.DoesNotContain("Chat", libraries);

        XElement members = XDocument.Load(Path.Combine(AppContext.BaseDirectory, "SchemaClient.xml")).Root!.Element("members")!;
        XElement Member(string prefix) => members.Elements("member").Single(m => ((string)m.Attribute("name")!).StartsWith(prefix, StringComparison.Ordinal));

        XElement add = Member("M:SchemaClient.Quickstart.QuickstartClient.Add(System.Int32,System.Int32,");
        Assert.Equal("Adds two integers.", add.Element("summary")!.Value);
        Assert.Equal("The first addend.", add.Elements("param").Single(p => (string)p.Attribute("name")! == "a").Value);
        Assert.Equal("The sum of a and b.", add.Element("returns")!.Value);
        XElement fail = Member("M:SchemaClient.Quickstart.QuickstartClient.Fail(System.String,");
        Assert.Contains("InvalidOperationException", fail.Element("exception")!.Value);
        Assert.Equal("T:IpyRpc.RemoteException", (string)fail.Element("exception")!.Attribute("cref")!);

        XElement summarize = Member("M:SchemaClient.Calculator.CalcClient.CalcNamespace.Summarize(System.Double[],SchemaClient.Calculator.Rounding,");
        Assert.Contains("the caller sees it live", summarize.Element("remarks")!.Value);
        Assert.Equal("What SummarizeAsync found.", Member("T:SchemaClient.Calculator.Summary").Element("summary")!.Value);
        Assert.Equal("How many values there were.", Member("T:SchemaClient.Calculator.Summary").Elements("param").Single(p => (string)p.Attribute("name")! == "Count").Value);
        Assert.Equal("To the nearest hundredth.", Member("F:SchemaClient.Calculator.Rounding.Nearest").Element("summary")!.Value);
        Assert.Equal("Someone said something.", Member("F:SchemaClient.Chat.ChatEvents.Chat.Said").Element("summary")!.Value);
    }

    [Theory]
    [InlineData("Quickstart")]
    [InlineData("Calc")]
    [InlineData("Chat")]
    public async Task TheCommittedSchemaFilesAreWhatTheSchemaCommandWritesFromTheServers(string name)
    {
        string address = name switch { "Quickstart" => _quickstartZmq, "Calc" => _calcHttp, _ => _chatHttp };
        string written = Path.Combine(Path.GetTempPath(), $"ipyrpc-{Guid.NewGuid():N}.ipyrpc.json");
        try
        {
            (int code, string output) = await Repository.RunAsync("dotnet", AppContext.BaseDirectory,
                Path.Combine(AppContext.BaseDirectory, "IpyRpc.Cli.dll"), "schema", address, "--title", name, "-o", written);
            Assert.True(code == 0, output);
            Assert.Contains(name == "Chat" ? $"functions and 3 events to {written}" : $"functions to {written}", output);
            string committed = File.ReadAllText(Path.Combine(Repository.Root, "samples", "SchemaClient", name + ".ipyrpc.json"));
            Assert.True(committed.Replace("\r", "") == File.ReadAllText(written).Replace("\r", ""),
                $"samples/SchemaClient/{name}.ipyrpc.json is not what the server describes now; write it again with: ipyrpc schema URL --title {name} -o samples/SchemaClient/{name}.ipyrpc.json");
        }
        finally
        {
            File.Delete(written);
        }
    }
}
