using System.Buffers;
using IpyRpc.Protocol;

namespace IpyRpc;

/// <summary>
/// A growable byte buffer for encoding, like <see cref="ArrayBufferWriter{T}"/> but without zeroing: its
/// arrays are allocated uninitialized (every byte handed out is written before it is read), which saves a
/// pass over memory for each megabyte-sized argument or result.
/// </summary>
/// <remarks>
/// Told to pool, it rents its large arrays instead, in <see cref="Pooled"/> (they go back when its holders release it).
/// Told to be compact, a value expected to be small (up to <see cref="ScratchBytes"/>) is written into the thread's
/// scratch array and <see cref="Detach"/> copies it out at its exact size: a small call's arguments or result cost
/// one array of their own length, not one of the guessed size.
/// </remarks>
internal sealed class ByteBuffer : IBufferWriter<byte>
{
    /// <summary>The largest size hint a compact buffer starts in the thread's scratch array for.</summary>
    public const int ScratchBytes = 4096;

    // The scratch array of this thread while no compact buffer writes into it (a compact buffer made while another
    // one holds it, say by a formatter that encodes a part on its own, gets a scratch array of its own).
    [ThreadStatic] private static byte[]? t_scratch;

    private readonly bool _pooling;
    private byte[] _buffer;
    private byte[]? _scratch;
    private int _written;

    public ByteBuffer(int initialCapacity = 256, bool pooling = false, bool compact = false)
    {
        _pooling = pooling;
        if (compact && initialCapacity <= ScratchBytes)
        {
            _scratch = t_scratch ?? new byte[ScratchBytes];
            t_scratch = null;
            _buffer = _scratch;
            return;
        }

        _buffer = Allocate(Math.Max(initialCapacity, 16));
    }

    /// <summary>
    /// What was written, in an array this buffer no longer writes to: a compact buffer's value that stayed in the
    /// scratch array is copied out at its exact size, and the scratch array goes back to the thread. Call once, last.
    /// </summary>
    public ReadOnlyMemory<byte> Detach()
    {
        if (_scratch is null) return WrittenMemory;
        if (ReferenceEquals(_buffer, _scratch)) _buffer = _buffer.AsSpan(0, _written).ToArray();
        t_scratch = _scratch;
        _scratch = null;
        return WrittenMemory;
    }

    /// <summary>The pooled arrays rented as it grew (<see cref="WrittenMemory"/> is a slice of the last one rented), or <see langword="null"/> when none were.</summary>
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
