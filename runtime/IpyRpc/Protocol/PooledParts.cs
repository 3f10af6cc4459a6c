using System.Buffers;

namespace IpyRpc.Protocol;

/// <summary>
/// Pooled arrays that a message's large parts are slices of, and who still reads them. A fresh
/// array of a megabyte or more lives on the large-object heap, where each one costs a share of a
/// full collection; these are rented from <see cref="ArrayPool{T}.Shared"/> instead and returned
/// when the last reader lets go.
/// </summary>
/// <remarks>
/// <para>Readers are counted: whoever makes the parts holds the first reference, and each reader
/// that keeps them past that holder's life takes one with <see cref="TryAcquire"/> and gives it
/// back with <see cref="Release"/>. The arrays go back to the pool when the count reaches zero,
/// and never before: a part must not be read after its reader's <see cref="Release"/>.</para>
/// <para>Where it flows: a transport rents the arrays for a large frame it receives (or frames an
/// outgoing message into) and gives back what it sent once sent; a client releases a reply once it
/// has decoded the result; a server's in-memory queue holds a call's arguments until its job ends
/// (the executor holds them while the function runs) and its result until released, while each
/// message carrying the result holds its own reference. A holder that never releases loses nothing:
/// the arrays are then simply collected.</para>
/// </remarks>
public sealed class PooledParts
{
    /// <summary>Parts at least this large are worth pooling (below it, the small-object heap is cheap).</summary>
    public const int Threshold = 64 * 1024;

    /// <summary>
    /// Parts larger than this are allocated, not pooled: the shared pool keeps what it is given back (until
    /// memory runs short), and a server that once echoed 64 MB should not hold several such arrays for ever;
    /// at that size the copy and the transfer, not the allocation, are what a call costs.
    /// </summary>
    public const int MaxPooled = 4 * 1024 * 1024;

    private static long s_returned;
    private List<byte[]>? _arrays;
    private int _references = 1;

    /// <summary>Whether a part of <paramref name="length"/> bytes should be rented rather than allocated.</summary>
    public static bool ShouldPool(long length) => length is >= Threshold and <= MaxPooled;

    /// <summary>How many arrays have gone back to the pool in this process (for tests and diagnostics).</summary>
    public static long ReturnedArrays => Interlocked.Read(ref s_returned);

    /// <summary>Rents an array of at least <paramref name="length"/> bytes, to be returned with the others. Not thread-safe: the maker rents, then hands the parts on.</summary>
    public byte[] Rent(int length)
    {
        byte[] array = ArrayPool<byte>.Shared.Rent(length);
        (_arrays ??= new List<byte[]>(1)).Add(array);
        return array;
    }

    /// <summary>Takes a reference for a reader that may outlive the current holders; false once the arrays have gone back (the parts must not be read).</summary>
    public bool TryAcquire()
    {
        int seen = Volatile.Read(ref _references);
        while (seen > 0)
        {
            int was = Interlocked.CompareExchange(ref _references, seen + 1, seen);
            if (was == seen) return true;
            seen = was;
        }

        return false;
    }

    /// <summary>Gives back one reference; the last returns the arrays to the pool.</summary>
    public void Release()
    {
        int left = Interlocked.Decrement(ref _references);
        if (left > 0) return;
        if (left < 0)
        {
            Interlocked.Increment(ref _references); // released more often than acquired: ignore the extra release
            return;
        }

        if (Interlocked.Exchange(ref _arrays, null) is not { } arrays) return;
        foreach (byte[] array in arrays) ArrayPool<byte>.Shared.Return(array);
        Interlocked.Add(ref s_returned, arrays.Count);
    }
}
