using System.Buffers;
using System.Text;
using System.Text.Json;
using IpyRpc.Formatting;
using IpyRpc.MessagePack;

namespace IpyRpc.Tests;

/// <summary>JSON encoding reuses the thread's writer: each write still gets exactly its own bytes.</summary>
public sealed class JsonWriterReuseTests
{
    [Fact]
    public void WritesOneAfterAnotherNestedAndAfterAFailureEachGetTheirOwnBytes()
    {
        var first = new ArrayBufferWriter<byte>();
        Formatters.String.Write(first, "one", Serialization.Json);
        var second = new ArrayBufferWriter<byte>();
        Formatters.Int32.Write(second, 42, Serialization.Json);
        Assert.Equal("\"one\"", Encoding.UTF8.GetString(first.WrittenSpan));
        Assert.Equal("42", Encoding.UTF8.GetString(second.WrittenSpan));

        // A formatter that encodes a part on its own while the outer write holds the thread's writer.
        var outer = new ArrayBufferWriter<byte>();
        new Nesting().Write(outer, "x", Serialization.Json);
        Assert.Equal("{\"inner\":\"\\\"x\\\"\",\"after\":true}", Encoding.UTF8.GetString(outer.WrittenSpan));

        // Text as itself: only what JSON requires is escaped.
        var text = new ArrayBufferWriter<byte>();
        Formatters.String.Write(text, "<f8> h\u00e9llo 'it'", Serialization.Json);
        Assert.Equal("\"<f8> h\u00e9llo 'it'\"", Encoding.UTF8.GetString(text.WrittenSpan));

        // A write that fails half way leaves nothing behind for the next one.
        Assert.Throws<InvalidOperationException>(() => new Failing().Write(new ArrayBufferWriter<byte>(), 1, Serialization.Json));
        var third = new ArrayBufferWriter<byte>();
        Formatters.Int32.Write(third, 7, Serialization.Json);
        Assert.Equal("7", Encoding.UTF8.GetString(third.WrittenSpan));
    }

    private sealed class Nesting : IpyRpcFormatter<string>
    {
        public override void Write(Utf8JsonWriter writer, string value)
        {
            writer.WriteStartObject();
            var part = new ArrayBufferWriter<byte>();
            Formatters.String.Write(part, value, Serialization.Json);
            writer.WriteString("inner", Encoding.UTF8.GetString(part.WrittenSpan));
            writer.WriteBoolean("after", true);
            writer.WriteEndObject();
        }

        public override void Write(ref MessagePackWriter writer, string value) => throw new NotSupportedException();

        public override string Read(ref MessagePackReader reader) => throw new NotSupportedException();

        public override string Read(ref Utf8JsonReader reader) => throw new NotSupportedException();
    }

    private sealed class Failing : IpyRpcFormatter<int>
    {
        public override void Write(Utf8JsonWriter writer, int value)
        {
            writer.WriteStartArray();
            writer.WriteNumberValue(value);
            throw new InvalidOperationException("half way");
        }

        public override void Write(ref MessagePackWriter writer, int value) => throw new NotSupportedException();

        public override int Read(ref MessagePackReader reader) => throw new NotSupportedException();

        public override int Read(ref Utf8JsonReader reader) => throw new NotSupportedException();
    }
}
