using IpyRpc;
using IpyRpc.Protocol;

namespace IpyRpc.Tests;

public sealed class ConfigTests
{
    [Theory]
    [InlineData("*", "anything.at.all", true)]
    [InlineData("*_json", "compute_value_json", true)]
    [InlineData("*_json", "compute_value_binary", false)]
    [InlineData("math.*", "math.linear.solve", true)]
    [InlineData("ad?", "add", true)]
    [InlineData("ad?", "adds", false)]
    [InlineData("[abc]dd", "add", true)]
    [InlineData("[!abc]dd", "add", false)]
    [InlineData("[a-c]dd", "bdd", true)]
    [InlineData("*value*", "compute_value_json", true)]
    [InlineData("a*b*c", "axxbyyc", true)]
    [InlineData("a*b*c", "axxbyy", false)]
    public void GlobsMatchLikeAShell(string pattern, string name, bool matches) => Assert.Equal(matches, Glob.IsMatch(pattern, name));

    [Fact]
    public void AnUnclosedBracketIsAClearError()
    {
        string unclosed = "[abc"; // a literal here would be refused at compile time (IPYRPC0010)
        var e = Assert.Throws<ArgumentException>(() => new GlobConfig { [unclosed] = new() });
        Assert.Contains("no closing ']'", e.Message);
        Assert.Throws<ArgumentException>(() => Glob.IsMatch("[", "x"));
    }

    [Fact]
    public void TheMostSpecificPatternWinsPropertyByProperty()
    {
        var config = new GlobConfig
        {
            ["*"] = new() { Timeout = TimeSpan.FromMinutes(5), OutputSerialization = Serialization.MessagePack },
            ["*_json"] = new() { InputSerialization = Serialization.Json, OutputSerialization = Serialization.Json },
            ["compute_*"] = new() { Timeout = TimeSpan.FromSeconds(10) },
            ["compute_value_json"] = new() { ReturnPointer = true },
        };

        FunctionOptions json = config.Resolve("compute_value_json");
        Assert.Equal(Serialization.Json, json.InputSerialization);     // only *_json sets it
        Assert.Equal(Serialization.Json, json.OutputSerialization);    // *_json (5 literal chars) beats * (0)
        Assert.Equal(TimeSpan.FromSeconds(10), json.Timeout);          // compute_* (8) beats * (0)
        Assert.True(json.ReturnPointer);                               // the exact name

        FunctionOptions other = config.Resolve("other");
        Assert.Equal(TimeSpan.FromMinutes(5), other.Timeout);
        Assert.Equal(Serialization.MessagePack, other.OutputSerialization);
        Assert.Null(other.InputSerialization);
    }

    [Fact]
    public void OnATieThePatternAddedLastWins()
    {
        var config = new GlobConfig
        {
            ["a*"] = new() { Timeout = TimeSpan.FromSeconds(1) },
            ["*d"] = new() { Timeout = TimeSpan.FromSeconds(2) },
        };
        Assert.Equal(TimeSpan.FromSeconds(2), config.Resolve("add").Timeout);
    }

    [Fact]
    public async Task AFunctionThatAcceptsOneSerializationSaysSoAndClientsCallItInThatOneUnlessTheyInsist()
    {
        void Configure(IpyRpcServer s) => s.Config(new()
        {
            ["*_json"] = new() { InputSerialization = Serialization.Json, OutputSerialization = Serialization.Json },
            ["*_binary"] = new() { InputSerialization = Serialization.MessagePack, OutputSerialization = Serialization.MessagePack },
        });
        await using InProcess msgpack = await InProcess.StartAsync(Serialization.MessagePack, Configure);
        await using InProcess json = await InProcess.StartAsync(Serialization.Json, Configure);

        // Its descriptor says so, read from either serialization's describe, and its help.
        foreach (IpyRpcClient client in new[] { msgpack.Client, json.Client })
        {
            Assert.Equal(Serialization.Json, client.Describe("compute_value_json").InputSerialization);
            Assert.Equal(Serialization.MessagePack, client.Describe("compute_value_binary").InputSerialization);
            Assert.Null(client.Describe("add").InputSerialization); // no rule: either
        }

        Assert.Contains("JSON arguments only", msgpack.Client.Help("compute_value_json"));

        // A caller not told otherwise calls each in the one it accepts (a call, a job), whatever its own default.
        Assert.Equal(20, await msgpack.Client.CallAsync<int>("compute_value_json", 2));
        Assert.Equal(30, await (await msgpack.Client.SubmitAsync<int>("compute_value_json", 3)).WaitAsync());
        Assert.Equal(100, await json.Client.CallAsync<int>("compute_value_binary", 1));

        // One that insists on the other is refused, and a JSON-only output is still readable by a MessagePack caller.
        var e = await Assert.ThrowsAsync<IpyRpcProtocolException>(() => msgpack.Client.CallAsync<int>("compute_value_json", [1], new CallOptions { Serialization = Serialization.MessagePack }));
        Assert.Equal(ErrorCodes.UnsupportedSerialization, e.Code);
        Assert.Contains("accepts json arguments only", e.Message);
        var refused = await Assert.ThrowsAsync<IpyRpcProtocolException>(() => json.Client.CallAsync<int>("compute_value_binary", [1], new CallOptions { Serialization = Serialization.Json }));
        Assert.Contains("accepts msgpack arguments only", refused.Message);
    }

    [Fact]
    public async Task AClientThatConnectedBeforeARestrictingConfigLearnsItFromTheRefusalAndCallsAgain()
    {
        await using InProcess p = await InProcess.StartAsync(Serialization.MessagePack, s => s.Register(typeof(IpyRpc.Tests.BothWays.RestartFunctions)));
        Assert.Null(p.Client.Describe("compute_value_json").InputSerialization);

        // The server's config changes under a connected client: its call in MessagePack is refused unread, the client
        // fetches the function list again and makes the call in JSON.
        p.Server.Config(new() { ["compute_value_json"] = new() { InputSerialization = Serialization.Json } });
        Assert.Equal(40, await p.Client.CallAsync<int>("compute_value_json", 4));
        Assert.Equal(Serialization.Json, p.Client.Describe("compute_value_json").InputSerialization);
        Assert.Equal(1, Assert.Single(await p.Client.ListJobsAsync(new IpyRpc.Jobs.JobQuery { Function = "compute_value_json" })).Attempts); // ran once

        // A job request and a stream, the same (each configured after the last refetch).
        p.Server.Config(new() { ["compute_value_binary"] = new() { InputSerialization = Serialization.Json } });
        Assert.Equal(200, await (await p.Client.SubmitAsync<int>("compute_value_binary", 2)).WaitAsync());
        p.Server.Config(new() { ["restart.count"] = new() { InputSerialization = Serialization.Json } });
        string tag = Guid.NewGuid().ToString("N");
        var items = new List<int>();
        await foreach (int item in p.Client.StreamAsync<int>("restart.count", tag, 3)) items.Add(item);
        Assert.Equal([0, 1, 2], items);
        Assert.Equal(1, IpyRpc.Tests.BothWays.RestartFunctions.Runs(tag));

        // A caller that named the serialization is not second-guessed.
        await Assert.ThrowsAsync<IpyRpcProtocolException>(() => p.Client.CallAsync<int>("compute_value_json", [1], new CallOptions { Serialization = Serialization.MessagePack }));
    }

    [Fact]
    public async Task ThePatternsThatMatchNothingAreListed()
    {
        string typo = "*_jsno"; // as a literal, the generator warns at compile time (IPYRPC0008)
        await using InProcess p = await InProcess.StartAsync(configure: s => s.Config(new() { [typo] = new(), ["add"] = new() }));
        Assert.Equal(["*_jsno"], p.Server.UnmatchedPatterns);

        // A pattern that names events (its Auth decides who may subscribe) matches something.
        p.Server.Register(typeof(IpyRpc.Tests.BothWays.BothWaysEvents));
        p.Server.Config(new() { ["bw.*"] = new() { Auth = Authorize.Authenticated() } });
        Assert.Equal(["*_jsno"], p.Server.UnmatchedPatterns);
    }

    [Fact]
    public async Task AConfigNamingAnUnknownQueueIsRejected()
    {
        await using InProcess p = await InProcess.StartAsync();
        var e = Assert.Throws<ArgumentException>(() => p.Server.Config(new() { ["add"] = new() { Queue = "gpu" } }));
        Assert.Contains("no queue by that name", e.Message);
    }
}
