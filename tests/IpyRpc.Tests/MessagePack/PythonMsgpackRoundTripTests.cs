using System.Buffers;
using IpyRpc.MessagePack;

namespace IpyRpc.Tests.MessagePack;

/// <summary>Our reader and writer against an implementation no one here wrote: Debian's python3-msgpack.</summary>
public sealed class PythonMsgpackRoundTripTests
{
    private static readonly object[] Ints = [0L, 1L, 127L, 128L, 255L, 256L, 65535L, 65536L, 4294967295L, 4294967296L, long.MaxValue, ulong.MaxValue,
        -1L, -32L, -33L, -128L, -129L, -32768L, -32769L, -2147483648L, -2147483649L, long.MinValue];

    private static readonly string[] Strings = ["", "a", new('x', 31), new('x', 32), new('y', 255), new('z', 256), new('w', 65535), new('v', 65536), "Кириллица ❤ 😀"];
    private static readonly double[] Floats = [0.5, -1.25, 1e300, double.PositiveInfinity];

    private static byte[][] Bins() => [[], [0x00, 0xff], [.. Enumerable.Range(0, 256).Select(i => (byte)i)], new byte[256 * 257]];

    private static (sbyte, byte[])[] Exts() => [(5, "abc"u8.ToArray()), (7, [.. Enumerable.Repeat((byte)'x', 16)]), (9, [.. Enumerable.Repeat((byte)'y', 300)])];

    private static (long, uint)[] Stamps() => [(0, 0), (1514862245, 678901234), (17179869184, 1), (-1, 999999999)];

    private static readonly int[] ArraySizes = [0, 15, 16, 70000];

    [Fact]
    public async Task PythonEncodedDocumentDecodesInCSharp()
    {
        (int code, string stdout, string stderr) = await PythonPeer.RunAsync("msgpack_peer.py", "encode");
        Assert.True(code == 0, stderr);
        byte[] bytes = Convert.FromHexString(stdout.Trim());
        var r = new MessagePackReader(bytes);
        Verify(ref r);
        Assert.True(r.End);
    }

    [Fact]
    public async Task CSharpEncodedDocumentDecodesInPython()
    {
        var buffer = new ArrayBufferWriter<byte>();
        var w = new MessagePackWriter(buffer);
        Write(ref w);
        string file = Path.Combine(Path.GetTempPath(), $"ipyrpc-msgpack-{Guid.NewGuid():N}.bin");
        await File.WriteAllBytesAsync(file, buffer.WrittenSpan.ToArray());
        try
        {
            (int code, string stdout, string stderr) = await PythonPeer.RunAsync("msgpack_peer.py", "check", file);
            Assert.True(code == 0, stdout + stderr);
            Assert.Equal("equal", stdout.Trim());
        }
        finally
        {
            File.Delete(file);
        }
    }

    private static void Write(ref MessagePackWriter w)
    {
        w.WriteMapHeader(9);
        w.Write("ints");
        w.WriteArrayHeader(Ints.Length);
        foreach (object i in Ints)
        {
            if (i is ulong u) w.Write(u);
            else w.Write((long)i);
        }

        w.Write("strings");
        w.WriteArrayHeader(Strings.Length);
        foreach (string s in Strings) w.Write(s);
        w.Write("bins");
        w.WriteArrayHeader(Bins().Length);
        foreach (byte[] b in Bins()) w.WriteBinary(b);
        w.Write("arrays");
        w.WriteArrayHeader(ArraySizes.Length);
        foreach (int n in ArraySizes)
        {
            w.WriteArrayHeader(n);
            for (int i = 0; i < n; i++) w.Write(i);
        }

        w.Write("maps");
        w.WriteArrayHeader(ArraySizes.Length);
        foreach (int n in ArraySizes)
        {
            w.WriteMapHeader(n);
            for (int i = 0; i < n; i++)
            {
                w.Write("k" + i);
                w.Write(i);
            }
        }

        w.Write("floats");
        w.WriteArrayHeader(Floats.Length);
        foreach (double f in Floats) w.Write(f);
        w.Write("exts");
        w.WriteArrayHeader(Exts().Length);
        foreach ((sbyte type, byte[] data) in Exts()) w.WriteExtension(type, data);
        w.Write("stamps");
        w.WriteArrayHeader(Stamps().Length);
        foreach ((long s, uint ns) in Stamps()) w.WriteTimestamp(s, ns);
        w.Write("nested");
        w.WriteArrayHeader(1);
        w.WriteArrayHeader(1);
        w.WriteArrayHeader(1);
        w.WriteMapHeader(1);
        w.Write("a");
        w.WriteArrayHeader(3);
        w.WriteNil();
        w.Write(true);
        w.Write(false);
    }

    private static void Verify(ref MessagePackReader r)
    {
        Assert.Equal(9, r.ReadMapHeader());
        Assert.Equal("ints", r.ReadString());
        Assert.Equal(Ints.Length, r.ReadArrayHeader());
        foreach (object i in Ints)
        {
            if (i is ulong u) Assert.Equal(u, r.ReadUInt64());
            else Assert.Equal((long)i, r.ReadInt64());
        }

        Assert.Equal("strings", r.ReadString());
        Assert.Equal(Strings.Length, r.ReadArrayHeader());
        foreach (string s in Strings) Assert.Equal(s, r.ReadString());
        Assert.Equal("bins", r.ReadString());
        Assert.Equal(Bins().Length, r.ReadArrayHeader());
        foreach (byte[] b in Bins()) Assert.Equal(b, r.ReadBinary().ToArray());
        Assert.Equal("arrays", r.ReadString());
        Assert.Equal(ArraySizes.Length, r.ReadArrayHeader());
        foreach (int n in ArraySizes)
        {
            Assert.Equal(n, r.ReadArrayHeader());
            for (int i = 0; i < n; i++) Assert.Equal(i, r.ReadInt32());
        }

        Assert.Equal("maps", r.ReadString());
        Assert.Equal(ArraySizes.Length, r.ReadArrayHeader());
        foreach (int n in ArraySizes)
        {
            Assert.Equal(n, r.ReadMapHeader());
            for (int i = 0; i < n; i++)
            {
                Assert.Equal("k" + i, r.ReadString());
                Assert.Equal(i, r.ReadInt32());
            }
        }

        Assert.Equal("floats", r.ReadString());
        Assert.Equal(Floats.Length, r.ReadArrayHeader());
        foreach (double f in Floats) Assert.Equal(f, r.ReadDouble());
        Assert.Equal("exts", r.ReadString());
        Assert.Equal(Exts().Length, r.ReadArrayHeader());
        foreach ((sbyte type, byte[] data) in Exts())
        {
            Assert.Equal(data, r.ReadExtension(out sbyte t).ToArray());
            Assert.Equal(type, t);
        }

        Assert.Equal("stamps", r.ReadString());
        Assert.Equal(Stamps().Length, r.ReadArrayHeader());
        foreach ((long s, uint ns) in Stamps()) Assert.Equal((s, ns), r.ReadTimestamp());
        Assert.Equal("nested", r.ReadString());
        Assert.Equal(1, r.ReadArrayHeader());
        Assert.Equal(1, r.ReadArrayHeader());
        Assert.Equal(1, r.ReadArrayHeader());
        Assert.Equal(1, r.ReadMapHeader());
        Assert.Equal("a", r.ReadString());
        Assert.Equal(3, r.ReadArrayHeader());
        r.ReadNil();
        Assert.True(r.ReadBoolean());
        Assert.False(r.ReadBoolean());
    }
}
