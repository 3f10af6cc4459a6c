using System.Buffers;

namespace IpyRpc.Protocol;

/// <summary>
/// Pooled arrays that a message's large parts are slices of, and who still reads them. A fresh
/// array of a megabyte or more lives on the large-object heap, where each one costs a share of a
/// full collection; these are rented instead (from <see cref="ArrayPool{T}.Shared"/> up to <see cref="MaxPooled"/>,
/// beyond it from a store that holds them only briefly) and returned when the last reader lets go.
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
    /// Parts up to this size come from <see cref="ArrayPool{T}.Shared"/>, which keeps what it is given back (until
    /// memory runs short). Larger ones are held only briefly once given back (<see cref="LargeArrays"/>): a server that
    /// once echoed 64 MB must not hold such arrays for ever, but one echoing them call after call should not take fresh
    /// pages from the system for every one (a fresh 64 MB array costs 16,000 page faults as it is first written).
    /// </summary>
    public const int MaxPooled = 4 * 1024 * 1024;

    private static long s_returned;
    private readonly LargeArrays _large;
    private List<byte[]>? _arrays;
    private int _references = 1;

    /// <summary>Parts whose arrays above <see cref="MaxPooled"/> come from the process's store of large arrays.</summary>
    public PooledParts()
        : this(LargeArrays.Shared)
    {
    }

    /// <summary>Parts whose arrays above <see cref="MaxPooled"/> come from <paramref name="large"/> (a test's own store, apart from other calls').</summary>
    internal PooledParts(LargeArrays large) => _large = large;

    /// <summary>Whether a part of <paramref name="length"/> bytes should be rented rather than allocated.</summary>
    public static bool ShouldPool(long length) => length >= Threshold && length <= Array.MaxLength;

    /// <summary>How many bytes of large arrays given back are held for reuse now (for tests and diagnostics).</summary>
    public static long LargeBytesHeld => LargeArrays.Shared.HeldBytes;

    /// <summary>How many arrays have gone back to the pool in this process (for tests and diagnostics).</summary>
    public static long ReturnedArrays => Interlocked.Read(ref s_returned);

    /// <summary>Rents an array of at least <paramref name="length"/> bytes, to be returned with the others. Not thread-safe: the maker rents, then hands the parts on.</summary>
    public byte[] Rent(int length)
    {
        byte[] array = length <= MaxPooled ? ArrayPool<byte>.Shared.Rent(length) : _large.Rent(length);
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
        foreach (byte[] array in arrays)
        {
            // The shared pool's arrays are never longer than MaxPooled for a request within it; the large store's are.
            if (array.Length <= MaxPooled) ArrayPool<byte>.Shared.Return(array);
            else _large.Return(array);
        }

        Interlocked.Add(ref s_returned, arrays.Count);
    }

    /// <summary>
    /// Arrays larger than <see cref="MaxPooled"/>, held for reuse for <see cref="HeldFor"/> after they are given back
    /// and then let go, at most <see cref="MaxHeldBytes"/> of them at a time: calls with large parts in a row reuse
    /// the same memory, and a process that made one such call holds nothing a second later.
    /// </summary>
    internal sealed class LargeArrays
    {
        public const long MaxHeldBytes = 256L * 1024 * 1024;
        public static readonly TimeSpan HeldFor = TimeSpan.FromSeconds(1);

        /// <summary>The process's store, which every <see cref="PooledParts"/> made with the public constructor uses.</summary>
        public static readonly LargeArrays Shared = new();

        private readonly Lock _gate = new();
        private readonly List<(byte[] Array, long ReturnedAt)> _held = []; // oldest first; under _gate
        private long _heldBytes;
        private Timer? _letGo; // armed while anything is held; under _gate

        public long HeldBytes
        {
            get
            {
                lock (_gate) return _heldBytes;
            }
        }

        /// <summary>A held array of at least <paramref name="length"/> bytes and at most twice that, else a new one.</summary>
        public byte[] Rent(int length)
        {
            lock (_gate)
            {
                int best = -1;
                for (int i = 0; i < _held.Count; i++)
                {
                    int size = _held[i].Array.Length;
                    if (size >= length && size <= 2L * length && (best < 0 || size < _held[best].Array.Length)) best = i;
                }

                if (best >= 0)
                {
                    byte[] array = _held[best].Array;
                    _held.RemoveAt(best);
                    _heldBytes -= array.Length;
                    return array;
                }
            }

            return GC.AllocateUninitializedArray<byte>(length);
        }

        public void Return(byte[] array)
        {
            if (array.Length > MaxHeldBytes) return;
            lock (_gate)
            {
                while (_heldBytes + array.Length > MaxHeldBytes)
                {
                    _heldBytes -= _held[0].Array.Length; // the oldest makes room
                    _held.RemoveAt(0);
                }

                _held.Add((array, Environment.TickCount64));
                _heldBytes += array.Length;
                if (_held.Count == 1) (_letGo ??= new Timer(static store => ((LargeArrays)store!).LetGoOfOld(), this, Timeout.Infinite, Timeout.Infinite)).Change(HeldFor, Timeout.InfiniteTimeSpan);
            }
        }

        private void LetGoOfOld()
        {
            lock (_gate)
            {
                long now = Environment.TickCount64;
                while (_held.Count > 0 && now - _held[0].ReturnedAt >= (long)HeldFor.TotalMilliseconds)
                {
                    _heldBytes -= _held[0].Array.Length;
                    _held.RemoveAt(0);
                }

                if (_held.Count > 0) _letGo!.Change(TimeSpan.FromMilliseconds(Math.Max(1, _held[0].ReturnedAt + (long)HeldFor.TotalMilliseconds - now)), Timeout.InfiniteTimeSpan);
            }
        }
    }
}
