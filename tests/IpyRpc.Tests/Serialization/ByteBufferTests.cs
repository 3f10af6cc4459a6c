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
}
