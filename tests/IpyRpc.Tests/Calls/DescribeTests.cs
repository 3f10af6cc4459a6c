using IpyRpc;

namespace IpyRpc.Tests.Calls;

public sealed class DescribeTests
{
    [Theory]
    [InlineData(Serialization.MessagePack)]
    [InlineData(Serialization.Json)]
    public async Task ConnectingListsEveryFunctionWithItsDocs(Serialization serialization)
    {
        await using InProcess p = await InProcess.StartAsync(serialization);
        Assert.Equal(p.Server.Functions.Select(f => f.Name), p.Client.Functions.Select(f => f.Name));
        FunctionDescriptor add = p.Client.Describe("add");
        Assert.Equal("Adds two integers.", add.Summary);
        Assert.Equal("The sum.", add.Returns);
        Assert.Equal("int", add.ReturnType);
        Assert.Equal(["a", "b"], add.Parameters.Select(x => x.Name));
        Assert.Equal("The first addend.", add.Parameters[0].Doc);
        Assert.Contains("\"integer\"", add.Parameters[0].Schema);

        FunctionDescriptor scale = p.Client.Describe("scale");
        Assert.True(scale.Parameters[1].IsOptional);
        Assert.Equal("2D", scale.Parameters[1].DefaultValue);

        FunctionDescriptor fail = p.Client.Describe("fail");
        Assert.Equal("InvalidOperationException", Assert.Single(fail.Exceptions).Type);

        // A CancellationToken is filled by the call, so it is not a parameter.
        Assert.Equal(["gate"], p.Client.Describe("wait_for_cancel").Parameters.Select(x => x.Name));
    }

    [Fact]
    public async Task HelpReadsLikePythonsHelp()
    {
        await using InProcess p = await InProcess.StartAsync();
        string help = p.Client.Help("add");
        Assert.StartsWith("add(a: int, b: int) -> int", help);
        Assert.Contains("Adds two integers.", help);
        Assert.Contains("a (int): The first addend.", help);
        Assert.Contains("int: The sum.", help);
        Assert.Contains("scale(value: double, factor: double = 2D) -> double", p.Client.Help());
    }

    [Fact]
    public async Task DottedNamesAreExported()
    {
        await using InProcess p = await InProcess.StartAsync();
        Assert.Contains(p.Client.Functions, f => f.Name == "tree.count");
        Assert.Contains(p.Client.Functions, f => f.Name == "counter.next");
    }
}
