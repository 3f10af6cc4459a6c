using System.Buffers;
using IpyRpc.Formatting;
using IpyRpc.MessagePack;

namespace IpyRpc.Tests.MessagePack;

public sealed class MalformedInputTests
{
    [Theory]
    [InlineData("cd-00", "Truncated")]                 // uint16 missing a byte
    [InlineData("cf-00-00-00", "Truncated")]           // uint64 missing bytes
    [InlineData("", "end of MessagePack input")]
    [InlineData("c1", "starts no value")]              // the never-used byte
    public void TruncatedOrInvalidIntegersThrowASpecificError(string hex, string expected)
    {
        var e = Assert.Throws<MessagePackSerializationException>(() =>
        {
            var r = new MessagePackReader(MessagePackSuiteTests.Hex(hex));
            r.ReadInt64();
        });
        Assert.Contains(expected, e.Message);
    }

    [Theory]
    [InlineData("db-ff-ff-ff-ff-61")]   // str32 declaring 4 GiB
    [InlineData("c6-7f-ff-ff-ff-00")]   // bin32 declaring 2 GiB
    [InlineData("dd-ff-ff-ff-ff-01")]   // array32 declaring 4 billion elements
    [InlineData("df-ff-ff-ff-ff-01")]   // map32 declaring 4 billion entries
    [InlineData("c9-7f-ff-ff-ff-01-02")] // ext32 declaring 2 GiB
    public void HugeDeclaredLengthsFailBeforeAllocating(string hex)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<MessagePackSerializationException>(() =>
        {
            var r = new MessagePackReader(MessagePackSuiteTests.Hex(hex));
            r.Skip();
        });
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Contains("remain", e.Message);
        Assert.True(allocated < 64 * 1024, $"allocated {allocated} bytes for a {hex.Length / 3 + 1}-byte input");
    }

    [Fact]
    public void HugeDeclaredArraysFailInFormattersToo()
    {
        byte[] input = MessagePackSuiteTests.Hex("dd-7f-ff-ff-ff-01");
        Assert.Throws<MessagePackSerializationException>(() =>
        {
            var r = new MessagePackReader(input);
            Formatters.Object.Read(ref r);
        });
        Assert.Throws<MessagePackSerializationException>(() =>
        {
            var r = new MessagePackReader(input);
            new SequenceFormatter<List<int>, int>(Formatters.Int32, l => l).Read(ref r);
        });
    }

    [Fact]
    public void WrongTypesNameWhatWasExpectedAndFound()
    {
        var e = Assert.Throws<MessagePackSerializationException>(() =>
        {
            var r = new MessagePackReader(MessagePackSuiteTests.Hex("a3-61-62-63"));
            r.ReadInt32();
        });
        Assert.Contains("Expected an integer but found a string", e.Message);
    }

    [Theory]
    [InlineData("92-a1-78-01")]        // a data frame given ["x", 1]: the frame reads a map
    [InlineData("92-92-01-02-92-03-a1-78")] // a matrix given [[1, 2], [3, "x"]]: nested arrays, one cell a string
    public void AnErrorInsideANestedReadSaysWhereOnce(string hex)
    {
        byte[] input = MessagePackSuiteTests.Hex(hex);
        var e = Assert.Throws<MessagePackSerializationException>(() =>
        {
            var r = new MessagePackReader(input);
            if (input[1] == 0xa1) Formatters.DataFrame.Read(ref r);
            else Formatters.DoubleArray2D.Read(ref r);
        });
        Assert.Single(System.Text.RegularExpressions.Regex.Matches(e.Message, "at byte"));
    }

    [Fact]
    public void OutOfRangeIntegersAreRejected()
    {
        var e = Assert.Throws<MessagePackSerializationException>(() =>
        {
            var r = new MessagePackReader(MessagePackSuiteTests.Hex("ce-ff-ff-ff-ff"));
            r.ReadInt32();
        });
        Assert.Contains("out of range", e.Message);
        Assert.Throws<MessagePackSerializationException>(() =>
        {
            var r = new MessagePackReader(MessagePackSuiteTests.Hex("cf-ff-ff-ff-ff-ff-ff-ff-ff"));
            r.ReadInt64();
        });
    }

    [Fact]
    public void InvalidUtf8IsRejected()
    {
        var e = Assert.Throws<MessagePackSerializationException>(() =>
        {
            var r = new MessagePackReader(MessagePackSuiteTests.Hex("a2-c3-28"));
            r.ReadString();
        });
        Assert.Contains("UTF-8", e.Message);
    }

    [Fact]
    public void DeepNestingIsLimitedWithoutStackOverflow()
    {
        byte[] deep = [.. Enumerable.Repeat((byte)0x91, 100_000), 0xc0];
        // Skipping is iterative: any depth is fine.
        var skip = new MessagePackReader(deep);
        skip.Skip();
        Assert.True(skip.End);

        var e = Assert.Throws<MessagePackSerializationException>(() =>
        {
            var r = new MessagePackReader(deep);
            Formatters.Object.Read(ref r);
        });
        Assert.Contains("Nesting deeper", e.Message);
    }

    [Fact]
    public void EveryTruncationOfAValidDocumentFailsCleanly()
    {
        var buffer = new ArrayBufferWriter<byte>();
        var w = new MessagePackWriter(buffer);
        w.WriteMapHeader(3);
        w.Write("numbers");
        Formatters.DoubleArray.Write(ref w, [1.5, 2.5, 3.5]);
        w.Write("text");
        w.Write(new string('x', 300));
        w.Write("when");
        w.WriteTimestamp(1_700_000_000, 5);
        byte[] whole = buffer.WrittenSpan.ToArray();
        for (int cut = 0; cut < whole.Length; cut++)
        {
            byte[] part = whole[..cut];
            Assert.Throws<MessagePackSerializationException>(() =>
            {
                var r = new MessagePackReader(part);
                Formatters.Object.Read(ref r);
            });
        }
    }
}
