namespace IpyRpc.Tests;

/// <summary>Slicing a call's arguments: a count in a header is the sender's word, not a size to allocate.</summary>
public sealed class CallArgumentsTests
{
    [Theory]
    [InlineData(new byte[] { 0xdd, 0x7f, 0xff, 0xff, 0xff })] // an array of 2 billion arguments, in five bytes
    [InlineData(new byte[] { 0xdf, 0x7f, 0xff, 0xff, 0xff })] // a map of as many
    public void AHeaderCountingMoreArgumentsThanTheBytesHoldIsMalformedNotAnAllocation(byte[] arguments)
    {
        var e = Assert.Throws<ArgumentBindingException>(() => CallArguments.Parse(arguments, Serialization.MessagePack, "f"));
        Assert.Equal(Protocol.ErrorCodes.InvalidArguments, e.Error.Code);
        Assert.Contains("The arguments of f are malformed", e.Error.Message);
    }

    [Fact]
    public void ManyPositionalOrNamedArgumentsAreAllSliced()
    {
        var positional = new IpyRpcArguments();
        for (int i = 0; i < 100; i++) positional.Add(i, Formatting.Formatters.Int32);
        Assert.Equal(100, CallArguments.Parse(positional.Encode(Serialization.MessagePack), Serialization.MessagePack, "f").PositionalCount);
        Assert.Equal(100, CallArguments.Parse(positional.Encode(Serialization.Json), Serialization.Json, "f").PositionalCount);

        var named = new IpyRpcArguments();
        for (int i = 0; i < 70; i++) named.Add($"a{i}", i, Formatting.Formatters.Int32);
        CallArguments parsed = CallArguments.Parse(named.Encode(Serialization.MessagePack), Serialization.MessagePack, "f");
        Assert.Equal(Enumerable.Range(0, 70).Select(i => $"a{i}"), parsed.Names);
        Assert.Equal(0, parsed.PositionalCount);
        Assert.Empty(CallArguments.Parse(positional.Encode(Serialization.MessagePack), Serialization.MessagePack, "f").Names);
    }
}
