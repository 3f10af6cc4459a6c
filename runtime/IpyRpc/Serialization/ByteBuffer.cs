using System.Buffers;
using IpyRpc.Protocol;

namespace IpyRpc;

/// <summary>
/// A growable byte buffer for encoding, like <see cref="ArrayBufferWriter{T}"/> but without zeroing: its
/// arrays are allocated uninitialized (every byte handed out is written before it is read), which saves a
/// pass over memory for each megabyte-sized argument or result.
/// </summary>
/// <remarks>Told to pool, it rents its large arrays instead, in <see cref="Pooled"/> (they go back when its holders release it).</remarks>
internal sealed class ByteBuffer : IBufferWriter<byte>
{
    private readonly bool _pooling;
    private byte[] _buffer;
    private int _written;

    public ByteBuffer(int initialCapacity = 256, bool pooling = false)
    {
        _pooling = pooling;
        _buffer = Allocate(Math.Max(initialCapacity, 16));
    }

    /// <summary>The pooled arrays rented as it grew (<see cref="WrittenMemory"/> is a slice of the last one rented, unless it then outgrew the pool), or <see langword="null"/> when none were.</summary>
    public PooledParts? Pooled { get; private set; }

    /// <summary>What was written.</summary>
    public ReadOnlyMemory<byte> WrittenMemory => _buffer.AsMemory(0, _written);

    /// <inheritdoc/>
    public void Advance(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (count > _buffer.Length - _written) throw new InvalidOperationException("Advanced past the end of the buffer.");
        _written += count;
    }

    /// <inheritdoc/>
    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsMemory(_written);
    }

    /// <inheritdoc/>
    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsSpan(_written);
    }

    private void Ensure(int sizeHint)
    {
        int needed = Math.Max(sizeHint, 1);
        if (_buffer.Length - _written >= needed) return;
        long grown = Math.Max((long)_buffer.Length * 2, (long)_written + needed);
        if (grown > Array.MaxLength) grown = Math.Max(Array.MaxLength, (long)_written + needed);
        if (grown > Array.MaxLength) throw new OutOfMemoryException($"An encoded value cannot exceed {Array.MaxLength} bytes.");
        byte[] larger = Allocate((int)grown);
        _buffer.AsSpan(0, _written).CopyTo(larger);
        _buffer = larger;
    }

    private byte[] Allocate(int length) => _pooling && PooledParts.ShouldPool(length) ? (Pooled ??= new PooledParts()).Rent(length) : GC.AllocateUninitializedArray<byte>(length);
}
