using System.Diagnostics;
using System.Text;

namespace IpyRpc.Tests.Fuzz;

/// <summary>
/// Seeded mutations of valid messages: bit flips, truncations, insertions, byte values MessagePack
/// gives meaning to (lengths of four billion, the never-used 0xc1), dropped and repeated frames, and
/// for JSON, text that is deeply nested, not UTF-8, or numbers out of every range. The same seed gives
/// the same inputs, so a failure can be replayed.
/// </summary>
public sealed class Mutator(int seed)
{
    private static readonly byte[][] Interesting =
    [
        [0xc1], [0xc0], [0xdd, 0xff, 0xff, 0xff, 0xff], [0xdb, 0xff, 0xff, 0xff, 0xff], [0xc6, 0xff, 0xff, 0xff, 0xff],
        [0xdf, 0x7f, 0xff, 0xff, 0xff], [0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], [0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0],
        [0xc7, 0xff, 0x01], [0xd4, 0xff], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], [0x00, 0x00, 0x00, 0x00],
    ];

    private static readonly string[] JsonPieces =
    [
        "1e999999", "-1e999999", "9223372036854775808", "-0", "1.5", "NaN", "\"\\ud800\"", "\"\\u0000\"", "null", "true", "[]", "{}",
        "\"rpc.discover\"", "\"fuzz.add\"", "\"2.0\"", "[" + new string('[', 200), "{\"a\":" + new string('[', 100), "\"" + new string('x', 5000) + "\"",
    ];

    private readonly Random _random = new(seed);

    public int Seed { get; } = seed;

    public int Next(int max) => _random.Next(max);

    /// <summary>One to four mutations of <paramref name="input"/>.</summary>
    public byte[] Bytes(byte[] input)
    {
        var bytes = new List<byte>(input);
        int count = 1 + _random.Next(4);
        for (int i = 0; i < count; i++)
        {
            int at = bytes.Count == 0 ? 0 : _random.Next(bytes.Count);
            switch (_random.Next(9))
            {
                case 0 when bytes.Count > 0:
                    bytes[at] ^= (byte)(1 << _random.Next(8));
                    break;
                case 1 when bytes.Count > 0:
                    bytes[at] = (byte)_random.Next(256);
                    break;
                case 2 when bytes.Count > 0:
                    bytes.RemoveRange(at, Math.Min(bytes.Count - at, 1 + _random.Next(16)));
                    break;
                case 3:
                    bytes.InsertRange(at, Random(1 + _random.Next(16)));
                    break;
                case 4:
                    bytes.InsertRange(at, Interesting[_random.Next(Interesting.Length)]);
                    break;
                case 5 when bytes.Count > 0:
                    bytes.RemoveRange(at, bytes.Count - at); // truncate
                    break;
                case 6 when bytes.Count > 1:
                    int from = _random.Next(bytes.Count), length = Math.Min(bytes.Count - from, 1 + _random.Next(32));
                    bytes.InsertRange(at, bytes.GetRange(from, length)); // repeat a stretch
                    break;
                case 7:
                    bytes.AddRange(Random(1 + _random.Next(64))); // trailing garbage
                    break;
                default:
                    if (bytes.Count > 1)
                    {
                        int a = _random.Next(bytes.Count), b = _random.Next(bytes.Count);
                        (bytes[a], bytes[b]) = (bytes[b], bytes[a]);
                    }

                    break;
            }
        }

        return [.. bytes];
    }

    /// <summary>Random bytes.</summary>
    public byte[] Random(int length)
    {
        byte[] bytes = new byte[length];
        _random.NextBytes(bytes);
        return bytes;
    }

    /// <summary>A message's frames, mutated: some frames changed, dropped, repeated or added.</summary>
    public List<byte[]> Frames(IReadOnlyList<byte[]> frames)
    {
        var result = frames.Select(f => f).ToList();
        switch (_random.Next(6))
        {
            case 0 when result.Count > 0:
                result.RemoveAt(_random.Next(result.Count));
                break;
            case 1 when result.Count > 0:
                result.Insert(_random.Next(result.Count + 1), result[_random.Next(result.Count)]);
                break;
            case 2:
                result.Add(_random.Next(2) == 0 ? [] : Random(_random.Next(256)));
                break;
            default:
                if (result.Count > 0)
                {
                    int i = _random.Next(result.Count);
                    result[i] = Bytes(result[i]);
                }

                break;
        }

        return result;
    }

    /// <summary>A JSON-RPC body, mutated at the byte level or spliced with hostile pieces.</summary>
    public byte[] Json(string valid)
    {
        if (_random.Next(3) > 0) return Bytes(Encoding.UTF8.GetBytes(valid));
        int at = _random.Next(valid.Length + 1);
        return Encoding.UTF8.GetBytes(valid[..at] + JsonPieces[_random.Next(JsonPieces.Length)] + valid[at..]);
    }

    /// <summary>The count per surface: <c>IPYRPC_FUZZ_COUNT</c>, or a few thousand for an ordinary test run.</summary>
    public static int CountPerSurface => int.TryParse(Environment.GetEnvironmentVariable("IPYRPC_FUZZ_COUNT"), out int n) && n > 0 ? n : 3000;

    /// <summary>The seed: <c>IPYRPC_FUZZ_SEED</c> to replay a run, else a fresh one (printed by the tests).</summary>
    public static int NewSeed => int.TryParse(Environment.GetEnvironmentVariable("IPYRPC_FUZZ_SEED"), out int s) ? s : Environment.TickCount;
}

/// <summary>What a fuzz run checks between batches: this process's memory and threads stay bounded.</summary>
public sealed class ResourceWatch
{
    private readonly long _memory = Measure();
    private readonly int _threads = Threads();

    public long PeakMemory { get; private set; }

    public int PeakThreads { get; private set; }

    /// <summary>The process's peak resident set so far (all of it: runtime, native libraries, sockets), in MiB.</summary>
    public static long PeakRssMiB
    {
        get
        {
            using var self = Process.GetCurrentProcess();
            return self.PeakWorkingSet64 / 1048576;
        }
    }

    public void Check(string surface, int sent)
    {
        long memory = Measure();
        int threads = Threads();
        PeakMemory = Math.Max(PeakMemory, memory);
        PeakThreads = Math.Max(PeakThreads, threads);
        Assert.True(memory - _memory < 128L * 1024 * 1024, $"{surface}: the heap grew from {_memory / 1048576} MiB to {memory / 1048576} MiB after {sent} messages");
        Assert.True(threads - _threads < 40, $"{surface}: threads grew from {_threads} to {threads} after {sent} messages");
    }

    private static long Measure() => GC.GetTotalMemory(forceFullCollection: true);

    private static int Threads()
    {
        using var self = Process.GetCurrentProcess();
        return self.Threads.Count;
    }
}
