using System.Diagnostics;
using IpyRpc.ZeroMq;

namespace IpyRpc.Bench;

/// <summary>
/// Results kept where they were computed, against moving them, in one run over ZeroMQ to the bench
/// server process (the holder): the first 10 rows of a 10,000,000 × 8 <c>double</c> array by pointer
/// slice beside a small call and beside fetching the whole array; and a compute → slice → reduce chain
/// by pointer beside the same chain with each value going through the client.
/// </summary>
internal static class PointerBench
{
    private const int Cols = 8;

    public static async Task RunAsync(Endpoints endpoints, Settings settings, List<BenchResult> results)
    {
        bool smoke = settings.Mode == "smoke";
        int rows = smoke ? 100_000 : 10_000_000;
        int chainRows = smoke ? 100_000 : 1_000_000;
        await using IpyRpcClient client = await IpyRpcZeroMqClient.ConnectAsync(endpoints.ZmqTcp, new IpyRpcClientOptions { MaxMessageBytes = 1L << 30, Output = (_, _) => { } }, new ZeroMqOptions { MaxMessageBytes = 1L << 30 });
        long Received() => client.BytesReceived + client.PointerBytesFetched;

        Progress($"pointer: computing {rows:N0} × {Cols} doubles on the server and keeping them");
        RemotePointer<double[,]> pointer = await client.CallPointerAsync<double[,]>("matrix", rows, Cols);

        // The slice beside a small call, interleaved in rounds.
        Task SmallCall() => client.CallAsync<int>("add", 1, 2);
        Task Slice() => client.FetchAsync(pointer, 0, 10);
        for (int i = 0; i < settings.Warmup; i++)
        {
            await SmallCall();
            await Slice();
        }

        var small = new List<long>();
        var slice = new List<long>();
        int rounds = smoke ? 1 : 5, perRound = Math.Max(10, settings.LatencyCalls / 4 / rounds);
        for (int round = 0; round < rounds; round++)
        {
            Progress($"pointer: 10-row slice vs small call, round {round + 1} of {rounds}");
            small.AddRange(await Measure.SamplesAsync(SmallCall, perRound));
            slice.AddRange(await Measure.SamplesAsync(Slice, perRound));
        }

        (double smallP50, double smallP99) = Measure.Percentiles([.. small]);
        (double sliceP50, double sliceP99) = Measure.Percentiles([.. slice]);
        results.Add(new BenchResult("pointer-slice", "ipyrpc-zmq-small-call", 0, 1, smallP50, smallP99, 1_000_000 / smallP50, null));
        long oneSlice = await BytesOf(Slice);
        results.Add(new BenchResult("pointer-slice", "ipyrpc-zmq-fetch-10-rows", 10 * Cols * 8, 1, sliceP50, sliceP99, 1_000_000 / sliceP50, null) { ClientBytes = oneSlice });

        // The whole array, fetched from the holder.
        int wholeCount = smoke ? 1 : 3;
        var whole = new List<long>();
        long wholeBytes = 0;
        for (int i = 0; i < wholeCount; i++)
        {
            Progress($"pointer: fetching the whole {pointer.Bytes / (1 << 20)} MB array, {i + 1} of {wholeCount}");
            long start = Stopwatch.GetTimestamp(), bytes = Received();
            double[,] all = await client.FetchAsync(pointer);
            whole.Add(Stopwatch.GetTimestamp() - start);
            wholeBytes = Received() - bytes;
            if (all.GetLength(0) != rows) throw new InvalidOperationException("The whole fetch came back short.");
        }

        (double wholeP50, double wholeP99) = Measure.Percentiles([.. whole]);
        results.Add(new BenchResult("pointer-slice", "ipyrpc-zmq-fetch-whole", pointer.Bytes, 1, wholeP50, wholeP99, 1_000_000 / wholeP50, pointer.Bytes / wholeP50) { ClientBytes = wholeBytes });
        await client.ReleaseAsync(pointer);

        // compute → slice → reduce: by pointer (the array stays on the server) and by value (it comes to the client and goes back).
        async Task ByPointer()
        {
            RemotePointer<double[,]> made = await client.CallPointerAsync<double[,]>("matrix", chainRows, Cols);
            RemotePointer<double[,]> head = await client.CallPointerAsync<double[,]>("matrix_head", made, chainRows / 2);
            await client.CallAsync<double>("matrix_sum", head);
            await client.ReleaseAsync(made);
            await client.ReleaseAsync(head);
        }

        async Task ByValue()
        {
            double[,] made = await client.CallAsync<double[,]>("matrix", chainRows, Cols);
            double[,] head = await client.CallAsync<double[,]>("matrix_head", made, chainRows / 2);
            await client.CallAsync<double>("matrix_sum", head);
        }

        int chains = smoke ? 1 : 5;
        var byPointer = new List<long>();
        var byValue = new List<long>();
        long pointerBytes = 0, valueBytes = 0;
        for (int i = 0; i < chains; i++)
        {
            Progress($"pointer: compute → slice → reduce on {chainRows:N0} × {Cols}, by pointer and by value, {i + 1} of {chains}");
            long t = Stopwatch.GetTimestamp(), b = Received();
            await ByPointer();
            byPointer.Add(Stopwatch.GetTimestamp() - t);
            pointerBytes = Received() - b;
            t = Stopwatch.GetTimestamp();
            b = Received();
            await ByValue();
            byValue.Add(Stopwatch.GetTimestamp() - t);
            valueBytes = Received() - b;
        }

        long arrayBytes = (long)chainRows * Cols * 8;
        (double pointerP50, double pointerP99) = Measure.Percentiles([.. byPointer]);
        (double valueP50, double valueP99) = Measure.Percentiles([.. byValue]);
        results.Add(new BenchResult("pointer-chain", "by-pointer", arrayBytes, 1, pointerP50, pointerP99, 1_000_000 / pointerP50, null) { ClientBytes = pointerBytes, Note = $"{pointerBytes:N0} bytes to the client per chain" });
        results.Add(new BenchResult("pointer-chain", "by-value", arrayBytes, 1, valueP50, valueP99, 1_000_000 / valueP50, null) { ClientBytes = valueBytes, Note = $"{valueBytes:N0} bytes to the client per chain" });

        async Task<long> BytesOf(Func<Task> operation)
        {
            long b = Received();
            await operation();
            return Received() - b;
        }
    }

    private static void Progress(string what) => Console.Error.WriteLine($"[{DateTime.Now:HH:mm:ss}] {what}");
}
