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

    [Theory]
    [InlineData(Serialization.MessagePack)]
    [InlineData(Serialization.Json)]
    public async Task ArgumentsBindToTheParametersWhateverTheirCountAgainstTheExpectedOne(Serialization serialization)
    {
        await using var server = new IpyRpcServer();
        server.Register(typeof(ShapeFunctions));
        FunctionDescriptor scale = server.Find("scale")!.Descriptor; // (value, factor = 2.0)
        ReadOnlyMemory<byte> Encode(params double[] values)
        {
            var args = new IpyRpcArguments();
            foreach (double v in values) args.Add(v, Formatting.Formatters.Double);
            return args.Encode(serialization);
        }

        double Read(CallArguments args, (int Offset, int Length) slot) => args.Decode(slot, Formatting.Formatters.Double);

        foreach (int expected in new[] { 0, 1, 2, 3 })
        {
            // Both given, in order: every slot is its argument.
            CallArguments both = CallArguments.Parse(Encode(3, 5), serialization, "scale", expected);
            (int Offset, int Length)[] shared = both.BindShared(scale);
            Assert.Equal([3.0, 5.0], shared.Select(slot => Read(both, slot)));

            // The public binding is the caller's own array: writing to it changes no later binding.
            (int Offset, int Length)[] own = both.Bind(scale);
            Assert.NotSame(shared, own);
            own[0] = (-1, 0);
            Assert.Equal([3.0, 5.0], both.Bind(scale).Select(slot => Read(both, slot)));
            Assert.Equal([3.0, 5.0], both.BindShared(scale).Select(slot => Read(both, slot)));

            // One given: the other slot says it was not.
            CallArguments one = CallArguments.Parse(Encode(7), serialization, "scale", expected);
            (int Offset, int Length)[] slots = one.BindShared(scale);
            Assert.Equal(2, slots.Length);
            Assert.Equal(7.0, Read(one, slots[0]));
            Assert.Equal((-1, 0), slots[1]);

            // Three given to two parameters: refused, counted.
            CallArguments three = CallArguments.Parse(Encode(1, 2, 3), serialization, "scale", expected);
            var e = Assert.Throws<ArgumentBindingException>(() => three.BindShared(scale));
            Assert.Contains("takes 2 arguments but 3 were given", e.Error.Message);
        }
    }
}
