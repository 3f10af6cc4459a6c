using IpyRpc.Jobs;
using IpyRpc.Protocol;

namespace IpyRpc.Tests.Fuzz;

/// <summary>Valid messages of every kind, the seeds the mutator starts from.</summary>
public static class Corpus
{
    public static IReadOnlyList<IpyRpcMessage> Messages { get; } =
    [
        new() { Kind = MessageKind.Hello, Id = 1, Versions = [1], Nonce = new byte[32] },
        new() { Kind = MessageKind.Describe, Id = 2 },
        new() { Kind = MessageKind.Call, Id = 3, Function = "fuzz.add", Parts = [Pack(new object?[] { 2L, 3L })] },
        new() { Kind = MessageKind.Call, Id = 4, Function = "fuzz.add", TimeoutMs = 5000, Parts = [Pack(new Dictionary<string, object?> { ["a"] = 1L, ["b"] = 2L })] },
        new() { Kind = MessageKind.Call, Id = 5, Function = "fuzz.sum", Parts = [Pack(new object?[] { new double[] { 1, 2, 3 }, 2.0 })] },
        new() { Kind = MessageKind.Call, Id = 6, Function = "fuzz.echo", Serialization = Serialization.Json, Parts = ["[\"hi\"]"u8.ToArray()] },
        new() { Kind = MessageKind.Call, Id = 7, Function = "fuzz.fail", Parts = [Pack(new object?[] { "boom" })] },
        new() { Kind = MessageKind.Submit, Id = 8, Function = "fuzz.add", Parts = [Pack(new object?[] { 4L, 5L })] },
        new() { Kind = MessageKind.Call, Id = 17, Function = "fuzz.join", Parts = [Pack(new object?[] { "-", "a", "b", "c" })] },
        new() { Kind = MessageKind.Call, Id = 18, Function = "fuzz.join", Serialization = Serialization.Json, Parts = ["[\"-\",\"a\",[\"b\"]]"u8.ToArray()] },
        new() { Kind = MessageKind.Call, Id = 19, Function = "fuzz.stamp", Parts = [Pack(new object?[] { "2026-12-07", "10:30:00.5", "170141183460469231731687303715884105727", new Dictionary<string, object?> { ["a"] = new object?[] { 1L, 2.5, null } }, "https://example.com/x", new object?[] { 1L, 2L } })] },
        new() { Kind = MessageKind.Call, Id = 20, Function = "fuzz.stamp", Serialization = Serialization.Json, Parts = ["[\"2026-12-07\",\"10:30\",-5,{\"a\":[1,2.5,null]},\"x/y\",[3]]"u8.ToArray()] },
        new() { Kind = MessageKind.Attach, Id = 9, JobId = "0123456789-1", After = 0 },
        new() { Kind = MessageKind.Status, Id = 10, JobId = "0123456789-1" },
        new() { Kind = MessageKind.List, Id = 11, Parts = [Pack(new Dictionary<string, object?> { ["state"] = "running", ["limit"] = 5L })] },
        new() { Kind = MessageKind.Cancel, Id = 12, JobId = "0123456789-1" },
        new() { Kind = MessageKind.Cancel, Id = 3 },
        new() { Kind = MessageKind.Ping, Id = 13 },
        new() { Kind = MessageKind.Auth, Id = 14, Parts = [Pack(new Dictionary<string, object?> { ["scheme"] = "secret", ["proof"] = new byte[32] })] },
        new() { Kind = MessageKind.Output, Id = 15, Stream = OutputStream.Stderr, Parts = ["text"u8.ToArray()] },
        new() { Kind = MessageKind.Result, Id = 16, Parts = [new byte[] { 0xc0 }] },
        new() { Kind = MessageKind.Event, Id = 0, Function = "evt", Parts = [new byte[] { 0x01 }] },
        new() { Kind = MessageKind.Subscribe, Id = 21, Function = "bw.*" },
        new() { Kind = MessageKind.Subscribe, Id = 22, Function = "bw.ticked", Parts = [Pack(new Dictionary<string, object?> { ["resume"] = "0badc0de-1" })] },
        new() { Kind = MessageKind.Unsubscribe, Id = 23, Function = "bw.*" },
    ];

    /// <summary>The messages as ZeroMQ frames: the header, then each part.</summary>
    public static IReadOnlyList<byte[][]> Frames { get; } = [.. Messages.Select(m => (byte[][])[MessageCodec.EncodeHeader(m), .. m.Parts.Select(p => p.ToArray())])];

    /// <summary>The messages in the stream framing of HTTP bodies.</summary>
    public static IReadOnlyList<byte[]> Framed { get; } = [.. Messages.Select(MessageCodec.EncodeFramed)];

    /// <summary>JSON-RPC bodies: single requests, notifications and batches.</summary>
    public static IReadOnlyList<string> JsonRpc { get; } =
    [
        """{"jsonrpc":"2.0","method":"fuzz.add","params":[2,3],"id":1}""",
        """{"jsonrpc":"2.0","method":"fuzz.add","params":{"a":2,"b":3},"id":"x"}""",
        """{"jsonrpc":"2.0","method":"fuzz.sum","params":[[1.5,2.5],2],"id":null}""",
        """{"jsonrpc":"2.0","method":"fuzz.echo","params":["hello"]}""",
        """{"jsonrpc":"2.0","method":"fuzz.join","params":["+","x","y"],"id":4}""",
        """{"jsonrpc":"2.0","method":"fuzz.stamp","params":["2026-12-07","10:30",18446744073709551616,{"k":[true]},"https://example.com",[1,2]],"id":5}""",
        """{"jsonrpc":"2.0","method":"rpc.discover","id":2}""",
        """{"jsonrpc":"2.0","method":"rpc.submit","params":{"method":"fuzz.add","params":[1,2]},"id":6}""",
        """{"jsonrpc":"2.0","method":"rpc.status","params":{"job":"0123456789-1","output":true},"id":7}""",
        """{"jsonrpc":"2.0","method":"rpc.jobs","params":{"state":"succeeded","limit":3},"id":8}""",
        """{"jsonrpc":"2.0","method":"rpc.cancel","params":["0123456789-1"],"id":9}""",
        """{"jsonrpc":"2.0","method":"fuzz.fail","params":["boom"],"id":3}""",
        """[{"jsonrpc":"2.0","method":"fuzz.add","params":[1,1],"id":1},{"jsonrpc":"2.0","method":"fuzz.echo","params":["a"]},{"jsonrpc":"2.0","method":"nope","id":2}]""",
    ];

    /// <summary>Frames a header and parts in the stream framing, however malformed they are themselves.</summary>
    public static byte[] Frame(IReadOnlyList<byte[]> frames)
    {
        if (frames.Count == 0) return [];
        byte[] header = frames[0];
        long data = frames.Skip(1).Sum(p => 8L + p.Length);
        var bytes = new List<byte>(12 + header.Length + (int)data);
        bytes.AddRange(BitConverter.GetBytes((uint)header.Length));
        bytes.AddRange(BitConverter.GetBytes((ulong)data));
        bytes.AddRange(header);
        foreach (byte[] part in frames.Skip(1))
        {
            bytes.AddRange(BitConverter.GetBytes((ulong)part.Length));
            bytes.AddRange(part);
        }

        return [.. bytes];
    }

    /// <summary>A subscribe to every <c>bw.*</c> event that asks to resume after <paramref name="id"/>, as ZeroMQ frames.</summary>
    public static byte[][] Resume(ulong requestId, string id)
    {
        var message = new IpyRpcMessage { Kind = MessageKind.Subscribe, Id = requestId, Function = "bw.*", Parts = [Pack(new Dictionary<string, object?> { ["resume"] = id })] };
        return [MessageCodec.EncodeHeader(message), .. message.Parts.Select(p => p.ToArray())];
    }

    private static byte[] Pack(object? value) => JobCodec.Encode(value, Serialization.MessagePack);
}
