namespace IpyRpc.Tests;

/// <summary>The encoding buffer that skips zeroing: what is written comes back whole and in order, however it grows.</summary>
public sealed class ByteBufferTests
{
    [Fact]
    public void WritesOfEverySizeSurviveGrowthFromATinyStart()
    {
        var buffer = new ByteBuffer(1);
        var expected = new List<byte>();
        var random = new Random(7);
        foreach (int size in new[] { 0, 1, 15, 16, 17, 100, 4096, 70_000, 1 << 20, 3 })
        {
            byte[] chunk = new byte[size];
            random.NextBytes(chunk);
            Span<byte> span = buffer.GetSpan(size);
            Assert.True(span.Length >= Math.Max(size, 1));
            chunk.CopyTo(span);
            buffer.Advance(size);
            expected.AddRange(chunk);
        }

        Assert.Equal(expected.ToArray(), buffer.WrittenMemory.ToArray());
        Assert.Throws<InvalidOperationException>(() => buffer.Advance(buffer.GetSpan().Length + 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => buffer.Advance(-1));
    }

    [Fact]
    public void ACompactBufferHandsOutItsValueAtItsExactSizeAndNeverInTheScratchArray()
    {
        var first = new ByteBuffer(256, compact: true);
        "hello"u8.CopyTo(first.GetSpan(5));
        first.Advance(5);
        ReadOnlyMemory<byte> a = first.Detach();
        Assert.True(System.Runtime.InteropServices.MemoryMarshal.TryGetArray(a, out ArraySegment<byte> own));
        Assert.Equal(5, own.Array!.Length); // exact: not the 4 KB scratch array, nor the 256 guessed

        // The next compact buffer on this thread reuses the scratch array: what the first handed out must not change.
        var second = new ByteBuffer(256, compact: true);
        "world!"u8.CopyTo(second.GetSpan(6));
        second.Advance(6);
        Assert.Equal("world!"u8.ToArray(), second.Detach().ToArray());
        Assert.Equal("hello"u8.ToArray(), a.ToArray());
    }

    [Fact]
    public void CompactBuffersNestedOnOneThreadAndOnesThatOutgrowTheScratchKeepTheirBytes()
    {
        var outer = new ByteBuffer(16, compact: true);
        outer.GetSpan(3)[..3].Fill(1);
        outer.Advance(3);

        // One made while the outer holds the thread's scratch array (a formatter encoding a part on its own).
        var inner = new ByteBuffer(16, compact: true);
        inner.GetSpan(2)[..2].Fill(2);
        inner.Advance(2);
        Assert.Equal(new byte[] { 2, 2 }, inner.Detach().ToArray());

        // The outer grows past the scratch array's size.
        byte[] big = new byte[3 * ByteBuffer.ScratchBytes];
        new Random(3).NextBytes(big);
        big.CopyTo(outer.GetSpan(big.Length));
        outer.Advance(big.Length);
        Assert.Equal([1, 1, 1, .. big], outer.Detach().ToArray());

        // A hint too large for the scratch array allocates its own, as a plain buffer does.
        var large = new ByteBuffer(ByteBuffer.ScratchBytes + 1, compact: true);
        Assert.True(large.GetSpan().Length >= ByteBuffer.ScratchBytes + 1);
        large.Advance(1);
        Assert.Equal(1, large.Detach().Length);
    }
}
