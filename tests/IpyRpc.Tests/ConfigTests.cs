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
    public async Task AJsonOnlyFunctionRefusesMessagePackCallsAndAnswersInJson()
    {
        await using InProcess msgpack = await InProcess.StartAsync(Serialization.MessagePack, s => s.Config(new()
        {
            ["*_json"] = new() { InputSerialization = Serialization.Json, OutputSerialization = Serialization.Json },
            ["*_binary"] = new() { InputSerialization = Serialization.MessagePack, OutputSerialization = Serialization.MessagePack },
        }));
        var e = await Assert.ThrowsAsync<IpyRpcProtocolException>(() => msgpack.Client.CallAsync<int>("compute_value_json", 1));
        Assert.Equal(ErrorCodes.UnsupportedSerialization, e.Code);
        Assert.Contains("accepts json arguments only", e.Message);
        Assert.Equal(100, await msgpack.Client.CallAsync<int>("compute_value_binary", 1));

        // A JSON call to it works, and a JSON-only output to a MessagePack caller is still readable.
        Assert.Equal(20, await msgpack.Client.CallAsync<int>("compute_value_json", [2], new CallOptions { Serialization = Serialization.Json }));
    }

    [Fact]
    public async Task ThePatternsThatMatchNothingAreListed()
    {
        string typo = "*_jsno"; // as a literal, the generator warns at compile time (IPYRPC0008)
        await using InProcess p = await InProcess.StartAsync(configure: s => s.Config(new() { [typo] = new(), ["add"] = new() }));
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
