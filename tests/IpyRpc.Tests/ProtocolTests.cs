using System.Buffers.Binary;
using IpyRpc;
using IpyRpc.Formatting;
using IpyRpc.Protocol;
using IpyRpc.Transports;

namespace IpyRpc.Tests;

public sealed class ProtocolTests
{
    [Fact]
    public void AFramedMessageRoundTripsWithAllItsFields()
    {
        var message = new IpyRpcMessage
        {
            Kind = MessageKind.Call,
            Id = 1UL << 40,
            Function = "math.linear.solve",
            Serialization = Serialization.Json,
            TimeoutMs = 1500,
            JobId = "job-1",
            Parts = [new byte[] { 1, 2, 3 }, Array.Empty<byte>(), new byte[300]],
        };
        byte[] bytes = MessageCodec.EncodeFramed(message);
        Assert.Equal((uint)(bytes.Length - 12 - (3 + 8 * 3 + 300)), BinaryPrimitives.ReadUInt32LittleEndian(bytes));
        Assert.Equal((ulong)(3 + 8 * 3 + 300), BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(4)));

        IpyRpcMessage back = MessageCodec.DecodeFramed(bytes);
        Assert.Equal(MessageKind.Call, back.Kind);
        Assert.Equal(message.Id, back.Id);
        Assert.Equal("math.linear.solve", back.Function);
        Assert.Equal(Serialization.Json, back.Serialization);
        Assert.Equal(1500, back.TimeoutMs);
        Assert.Equal("job-1", back.JobId);
        Assert.Equal(3, back.Parts.Count);
        Assert.Equal(new byte[] { 1, 2, 3 }, back.Parts[0].ToArray());
        Assert.Equal(300, back.Parts[2].Length);
    }

    [Fact]
    public void TheRarelySetFieldsRoundTripAbsentStaysAbsentAndACopyNeverChangesItsOriginal()
    {
        var hello = new IpyRpcMessage
        {
            Kind = MessageKind.Hello,
            Versions = [1, 2],
            Agent = "test/1",
            Nonce = new byte[] { 9, 8, 7 },
            Auth = ["secret"],
            Window = 16,
            ReturnPointer = false,
            PointerTtlMs = 5000,
        };
        IpyRpcMessage back = MessageCodec.DecodeFramed(MessageCodec.EncodeFramed(hello));
        Assert.Equal([1, 2], back.Versions!);
        Assert.Equal("test/1", back.Agent);
        Assert.Equal(new byte[] { 9, 8, 7 }, back.Nonce!.Value.ToArray());
        Assert.Null(back.Proof); // not sent: absent, not an empty value (a decoded hello used to say it carried an empty proof)
        Assert.Equal(16, back.Window);
        Assert.False(back.ReturnPointer);
        Assert.Equal(5000, back.PointerTtlMs);

        IpyRpcMessage plain = MessageCodec.DecodeFramed(MessageCodec.EncodeFramed(new IpyRpcMessage { Kind = MessageKind.Call, Function = "f" }));
        Assert.Null(plain.Nonce);
        Assert.Null(plain.Proof);
        Assert.Null(plain.Window);

        // Those fields live apart from the message; a copy that sets one gets its own, and equality still compares them.
        IpyRpcMessage copy = hello with { Window = 32, Agent = null };
        Assert.Equal(16, hello.Window);
        Assert.Equal("test/1", hello.Agent);
        Assert.Equal(32, copy.Window);
        Assert.Null(copy.Agent);
        Assert.Equal([1, 2], copy.Versions!);
        Assert.NotEqual(hello, copy);
        Assert.Equal(hello, hello with { });
        Assert.Equal(new IpyRpcMessage { Kind = MessageKind.Ping, Window = null }, new IpyRpcMessage { Kind = MessageKind.Ping });
        Assert.NotEqual(new IpyRpcMessage { Kind = MessageKind.Ping, Window = 1 }, new IpyRpcMessage { Kind = MessageKind.Ping });
    }

    [Fact]
    public void AFrameOfManyPartsKeepsThemInOrderAndABadPartSizeIsRefused()
    {
        ReadOnlyMemory<byte>[] parts = [.. Enumerable.Range(0, 5).Select(i => (ReadOnlyMemory<byte>)Enumerable.Repeat((byte)i, i * 3).ToArray())];
        IpyRpcMessage back = MessageCodec.DecodeFramed(MessageCodec.EncodeFramed(new IpyRpcMessage { Kind = MessageKind.Result, Id = 3, Parts = parts }));
        Assert.Equal(5, back.Parts.Count);
        for (int i = 0; i < 5; i++) Assert.Equal(parts[i].ToArray(), back.Parts[i].ToArray());

        byte[] bytes = MessageCodec.EncodeFramed(new IpyRpcMessage { Kind = MessageKind.Result, Id = 3, Parts = [new byte[4]] });
        int firstPart = bytes.Length - 4 - 8;
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(firstPart), 5); // one more byte than remains
        ProtocolException refused = Assert.Throws<ProtocolException>(() => MessageCodec.DecodeFramed(bytes));
        Assert.Contains("declares 5 bytes but only 4 remain", refused.Message);
    }

    [Fact]
    public void APartialFrameWaitsForMoreBytesAndOversizedFramesAreRefusedUpFront()
    {
        byte[] bytes = MessageCodec.EncodeFramed(new IpyRpcMessage { Kind = MessageKind.Ping, Id = 7 });
        for (int cut = 0; cut < bytes.Length; cut++)
        {
            Assert.False(MessageCodec.TryReadFramed(bytes.AsMemory(0, cut), 1 << 20, out _, out int consumed));
            Assert.Equal(0, consumed);
        }

        byte[] huge = new byte[12];
        BinaryPrimitives.WriteUInt32LittleEndian(huge, 10);
        BinaryPrimitives.WriteUInt64LittleEndian(huge.AsSpan(4), ulong.MaxValue / 2);
        var e = Assert.Throws<ProtocolException>(() => MessageCodec.TryReadFramed(huge, 1 << 20, out _, out _));
        Assert.Equal(ErrorCodes.TooLarge, e.Code);
    }

    public static TheoryData<string, byte[], string> BadInputs()
    {
        byte[] good = MessageCodec.EncodeFramed(new IpyRpcMessage { Kind = MessageKind.Call, Id = 5, Function = "add", Parts = [new byte[] { 0x92, 1, 2 }] });
        byte[] header = MessageCodec.EncodeHeader(new IpyRpcMessage { Kind = MessageKind.Call, Id = 9, Function = "add" });
        byte[] declaresHugePart = Frame(header, [.. BitConverter.GetBytes(ulong.MaxValue / 4), 1, 2, 3]);
        byte[] unknownKind = Frame([0x83, 0xa1, (byte)'v', 1, 0xa4, (byte)'k', (byte)'i', (byte)'n', (byte)'d', 0xa3, (byte)'z', (byte)'a', (byte)'p', 0xa2, (byte)'i', (byte)'d', 3], []);
        byte[] callWithoutFunction = Frame([0x82, 0xa1, (byte)'v', 1, 0xa4, (byte)'k', (byte)'i', (byte)'n', (byte)'d', 0xa4, (byte)'c', (byte)'a', (byte)'l', (byte)'l'], []);
        return new()
        {
            { "garbage (read as a frame, it declares a 1.9 GB header)", [.. "this is not a message at all, just text"u8], ErrorCodes.TooLarge },
            { "short garbage", [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xc1], ErrorCodes.BadMessage },
            { "truncated frame", good[..^3], ErrorCodes.BadMessage },
            { "header not a map", Frame([0x93, 1, 2, 3], []), ErrorCodes.BadMessage },
            { "truncated header", Frame(header[..^2], []), ErrorCodes.BadMessage },
            { "part larger than the message", declaresHugePart, ErrorCodes.BadMessage },
            { "unknown kind", unknownKind, ErrorCodes.BadMessage },
            { "trailing bytes", [.. good, 1, 2, 3], ErrorCodes.BadMessage },
            { "call without a function", callWithoutFunction, ErrorCodes.BadMessage },
        };
    }

    private static byte[] Frame(byte[] header, byte[] data)
    {
        byte[] frame = new byte[12 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(frame, (uint)header.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(frame.AsSpan(4), (ulong)data.Length);
        header.CopyTo(frame, 12);
        data.CopyTo(frame, 12 + header.Length);
        return frame;
    }

    [Theory]
    [MemberData(nameof(BadInputs))]
    public async Task BadInputGetsAnErrorReplyAndTheServerKeepsServing(string what, byte[] input, string code)
    {
        await using var server = new IpyRpcServer();
        server.Register(typeof(ShapeFunctions));
        (IMessageChannel client, IMessageChannel serverEnd) = InProcessTransport.CreatePair();
        using var stop = new CancellationTokenSource();
        Task serving = server.ServeAsync(serverEnd, stop.Token);
        var raw = (InProcessTransport.End)client;

        await raw.SendRawAsync(input);
        IpyRpcMessage reply = (await client.ReceiveAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10)))!;
        Assert.Equal(MessageKind.Error, reply.Kind);
        RemoteError error = RemoteError.Decode(reply.Body.Span, reply.Serialization);
        Assert.True(code == error.Code, $"{what}: {error.Code}: {error.Message}");
        Assert.False(string.IsNullOrWhiteSpace(error.Message));

        // A good call on the same connection still works.
        await client.SendAsync(new IpyRpcMessage { Kind = MessageKind.Call, Id = 77, Function = "add", Parts = [new IpyRpcArguments().Add(20, Formatters.Int32).Add(22, Formatters.Int32).Encode(Serialization.MessagePack)] });
        IpyRpcMessage result = (await client.ReceiveAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10)))!;
        Assert.Equal(MessageKind.Result, result.Kind);
        Assert.Equal(77UL, result.Id);
        Assert.Equal(42L, ReadObject(result.Body));

        await client.DisposeAsync();
        stop.Cancel();
        await serving;
    }

    private static object? ReadObject(ReadOnlyMemory<byte> body)
    {
        var reader = new IpyRpc.MessagePack.MessagePackReader(body.Span);
        return Formatters.Object.Read(ref reader);
    }

    [Fact]
    public async Task MalformedArgumentsOfAKnownFunctionAreAnArgumentError()
    {
        await using var server = new IpyRpcServer();
        server.Register(typeof(ShapeFunctions));
        (IMessageChannel client, IMessageChannel serverEnd) = InProcessTransport.CreatePair();
        Task serving = server.ServeAsync(serverEnd);
        await client.SendAsync(new IpyRpcMessage { Kind = MessageKind.Call, Id = 1, Function = "add", Parts = [new byte[] { 0x92, 0x01 }] });
        IpyRpcMessage reply = (await client.ReceiveAsync())!;
        RemoteError error = RemoteError.Decode(reply.Body.Span, reply.Serialization);
        Assert.Equal(ErrorCodes.InvalidArguments, error.Code);
        Assert.Contains("malformed", error.Message);

        await client.SendAsync(new IpyRpcMessage { Kind = MessageKind.Call, Id = 2, Function = "add", Serialization = Serialization.Json, Parts = ["[1, 2"u8.ToArray()] });
        reply = (await client.ReceiveAsync())!;
        Assert.Equal(ErrorCodes.InvalidArguments, RemoteError.Decode(reply.Body.Span, reply.Serialization).Code);
        await client.DisposeAsync();
        await serving;
    }

    [Fact]
    public async Task AClientOfferingNoCommonVersionIsToldSo()
    {
        await using var server = new IpyRpcServer();
        (IMessageChannel client, IMessageChannel serverEnd) = InProcessTransport.CreatePair();
        Task serving = server.ServeAsync(serverEnd);
        await client.SendAsync(new IpyRpcMessage { Kind = MessageKind.Hello, Id = 1, Versions = [99, 100] });
        IpyRpcMessage reply = (await client.ReceiveAsync())!;
        RemoteError error = RemoteError.Decode(reply.Body.Span, reply.Serialization);
        Assert.Equal(ErrorCodes.UnsupportedVersion, error.Code);
        Assert.Contains("99, 100", error.Message);

        await client.SendAsync(new IpyRpcMessage { Kind = MessageKind.Hello, Id = 2, Versions = [2, 1] });
        reply = (await client.ReceiveAsync())!;
        Assert.Equal(MessageKind.Hello, reply.Kind);
        Assert.Equal([1], reply.Versions);
        await client.DisposeAsync();
        await serving;
    }

    [Fact]
    public async Task AMessageOverTheSizeLimitIsRefused()
    {
        await using var server = new IpyRpcServer(new IpyRpcServerOptions { MaxMessageBytes = 1024 });
        server.Register(typeof(ShapeFunctions));
        await using IpyRpcClient client = await IpyRpcClient.ConnectInProcessAsync(server);
        var e = await Assert.ThrowsAsync<IpyRpcProtocolException>(() => client.CallAsync<byte[]>("reverse_bytes", new byte[4096]));
        Assert.Equal(ErrorCodes.TooLarge, e.Code);
        Assert.Equal(new byte[] { 2, 1 }, await client.CallAsync<byte[]>("reverse_bytes", new byte[] { 1, 2 }));
    }
}
