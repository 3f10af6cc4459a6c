using IpyRpc;
using IpyRpc.Jobs;
using IpyRpc.Protocol;

namespace IpyRpc.Tests.Pointers;

/// <summary>
/// What pointers must do over every transport (in-process, ZeroMQ, HTTP): results kept where they
/// were computed, fetched whole or by rows from their holder, passed back as arguments, and gone
/// for a stated reason (expired, released, evicted, wrong key, holder unreachable).
/// </summary>
public abstract class PointersContract : IAsyncLifetime
{
    private const int Rows = 1000, Cols = 8; // 64,000 bytes of doubles

    protected IpyRpcServer Server { get; private set; } = null!;

    private IAsyncDisposable? _host;

    /// <summary>Starts serving a server on the transport.</summary>
    protected abstract Task<IAsyncDisposable?> ServeAsync(IpyRpcServer server);

    /// <summary>Connects a client to a server served by <see cref="ServeAsync"/>.</summary>
    protected abstract Task<IpyRpcClient> ConnectAsync(IpyRpcServer server, IAsyncDisposable? host, IpyRpcClientOptions options);

    /// <summary>The protocol pointers made by a server on this transport carry.</summary>
    protected abstract string Protocol { get; }

    /// <summary>What <see cref="Server"/> logs.</summary>
    protected ListLogger ServerLog { get; } = new();

    public async Task InitializeAsync()
    {
        Server = NewServer(log: ServerLog);
        _host = await ServeAsync(Server);
    }

    public async Task DisposeAsync()
    {
        if (_host is not null) await _host.DisposeAsync();
        await Server.DisposeAsync();
        Server.Data.Dispose(); // given to the server, so not the server's to dispose
    }

    private static IpyRpcServer NewServer(IReadOnlyList<string>? trustedHolders = null, ListLogger? log = null)
    {
        var server = new IpyRpcServer(new IpyRpcServerOptions { DataStore = new IpyRpcDataStore(new DataStoreOptions { MaxBytes = 4_000_000 }), TrustedHolders = trustedHolders ?? [], LoggerFactory = log });
        server.Config(new() { ["ptr.head"] = new() { ReturnPointer = true } });
        server.Register(typeof(PointerFunctions));
        return server;
    }

    private Task<IpyRpcClient> ConnectAsync(Serialization serialization = Serialization.MessagePack)
        => ConnectAsync(Server, _host, new IpyRpcClientOptions { Serialization = serialization, Output = (_, _) => { } });

    private static double[,] Expected(int rows, int cols, int from = 0)
    {
        var m = new double[rows, cols];
        for (int i = 0; i < rows; i++)
        {
            for (int j = 0; j < cols; j++) m[i, j] = ((i + from) * cols) + j;
        }

        return m;
    }

    [Theory]
    [InlineData(Serialization.MessagePack)]
    [InlineData(Serialization.Json)]
    public async Task APointerDescribesItsValueAndFetchesWholeOrByRows(Serialization serialization)
    {
        await using IpyRpcClient client = await ConnectAsync(serialization);
        RemotePointer<double[,]> pointer = await client.CallPointerAsync<double[,]>("ptr.matrix", Rows, Cols);

        Assert.Equal(Protocol, pointer.Protocol);
        Assert.Equal(Server.Data.Id, pointer.Holder);
        Assert.Equal("double[,]", pointer.ValueType);
        Assert.Equal([Rows, Cols], pointer.Shape);
        Assert.Equal(Rows * Cols * 8, pointer.Bytes);
        Assert.Equal(32, pointer.SecretKey.Length);
        Assert.InRange(pointer.ExpiresAt!.Value, DateTimeOffset.UtcNow.AddMinutes(59), DateTimeOffset.UtcNow.AddMinutes(61));
        Assert.DoesNotContain(pointer.SecretKey, pointer.ToString());

        Assert.Equal(Expected(3, Cols, from: 2), await client.FetchAsync(pointer, 2, 5));
        Assert.InRange(client.PointerBytesFetched, 0, 1000); // three rows, not the matrix
        Assert.Equal(Expected(2, Cols, from: Rows - 2), await client.FetchAsync(pointer, -2, Rows + 50));
        Assert.Equal(Expected(Rows, Cols), await client.FetchAsync(pointer));
    }

    [Fact]
    public async Task ListsAndByteArraysSliceByItemAndValuesWithoutRowsSaySo()
    {
        await using IpyRpcClient client = await ConnectAsync();
        RemotePointer<List<int>> list = await client.CallPointerAsync<List<int>>("ptr.range", 100);
        Assert.Equal([100], list.Shape);
        Assert.Equal([10, 11, 12, 13, 14], await client.FetchAsync(list, 10, 15));
        Assert.Equal([97, 98, 99], await client.FetchAsync(list, -3, 100));

        RemotePointer<byte[]> bytes = await client.CallPointerAsync<byte[]>("ptr.bytes", 1000);
        Assert.Equal(1000, bytes.Bytes);
        Assert.Equal(Enumerable.Range(300, 5).Select(i => (byte)(i % 251)), await client.FetchAsync(bytes, 300, 305));

        RemotePointer<string> text = await client.CallPointerAsync<string>("ptr.text");
        Assert.Equal("no rows here", await client.FetchAsync(text));
        var e = await Assert.ThrowsAsync<IpyRpcProtocolException>(() => client.FetchAsync(text, 0, 1));
        Assert.Contains("has no rows", e.Message);
    }

    [Theory]
    [InlineData(Serialization.MessagePack)]
    [InlineData(Serialization.Json)]
    public async Task ADataFrameTravelsInThePandasShapeAndSlicesByRow(Serialization serialization)
    {
        await using IpyRpcClient client = await ConnectAsync(serialization);
        DataFrame expected = PointerFunctions.Frame(20);
        DataFrame whole = await client.CallAsync<DataFrame>("ptr.frame", 20);
        AssertSame(expected, whole);

        RemotePointer<DataFrame> pointer = await client.CallPointerAsync<DataFrame>("ptr.frame", 20);
        Assert.Equal([20, 4], pointer.Shape);
        DataFrame rows = await client.FetchAsync(pointer, 3, 6);
        AssertSame(expected.Slice(3, 6), rows);
        Assert.Equal(3, rows.RowCount);
        Assert.Null(rows.Column<string?>("ticker")[0]); // row 3: a missing value stays missing
        Assert.Equal(new DateTime(2026, 1, 4, 0, 0, 0, DateTimeKind.Utc), ((DataFrameColumn<DateTime>)rows.Index).Values[0]);
        Assert.Equal("20 rows, price total 2095", await client.CallAsync<string>("ptr.frame_total", pointer));
    }

    [Theory]
    [InlineData(Serialization.MessagePack)]
    [InlineData(Serialization.Json)]
    public async Task ATensorTravelsAsAnNdarrayAndSlicesByRow(Serialization serialization)
    {
        await using IpyRpcClient client = await ConnectAsync(serialization);
        System.Numerics.Tensors.Tensor<double> whole = await client.CallAsync<System.Numerics.Tensors.Tensor<double>>("ptr.tensor", 5);
        Assert.Equal([5, 2, 3], whole.Lengths.ToArray().Select(n => (long)n));
        Assert.Equal(29.0, whole[4, 1, 2]);

        RemotePointer<System.Numerics.Tensors.Tensor<double>> pointer = await client.CallPointerAsync<System.Numerics.Tensors.Tensor<double>>("ptr.tensor", 5);
        Assert.Equal([5, 2, 3], pointer.Shape);
        Assert.Equal(5 * 6 * 8, pointer.Bytes);
        System.Numerics.Tensors.Tensor<double> rows = await client.FetchAsync(pointer, 1, 3);
        Assert.Equal([2, 2, 3], rows.Lengths.ToArray().Select(n => (long)n));
        Assert.Equal(6.0, rows[0, 0, 0]);
        Assert.Equal(17.0, rows[1, 1, 2]);
        Assert.Equal("5x2x3 sum 435", await client.CallAsync<string>("ptr.tensor_sum", pointer));
        Assert.Equal("2x2x3 sum 138", await client.CallAsync<string>("ptr.tensor_sum", rows));
    }

    private static void AssertSame(DataFrame expected, DataFrame actual)
    {
        Assert.Equal((expected.Index.Name, expected.Index.DType), (actual.Index.Name, actual.Index.DType));
        Assert.Equal(expected.Columns.Select(c => (c.Name, c.DType)), actual.Columns.Select(c => (c.Name, c.DType)));
        for (int row = 0; row < expected.RowCount; row++)
        {
            Assert.Equal(expected.Index[row], actual.Index[row]);
            foreach (DataFrameColumn c in expected.Columns) Assert.Equal(c[row], actual[c.Name!][row]);
        }
    }

    [Fact]
    public async Task AFunctionConfiguredToReturnAPointerGivesTypedCallersTheValueAndDynamicCallersThePointer()
    {
        await using IpyRpcClient client = await ConnectAsync();
        RemotePointer<double[,]> made = await client.CallPointerAsync<double[,]>("ptr.matrix", Rows, Cols);

        // ptr.head is configured ReturnPointer: a typed call gets the value, fetched from the holder.
        Assert.Equal(Expected(10, Cols), await client.CallAsync<double[,]>("ptr.head", made, 10));
        object? plain = await client.CallAsync("ptr.head", made, 10);
        var pointer = Assert.IsAssignableFrom<RemotePointer>(plain);
        Assert.Equal([10, Cols], pointer.Shape);
        // ... and a caller may ask for the value instead.
        long fetched = client.PointerBytesFetched;
        Assert.IsNotAssignableFrom<RemotePointer>(await client.CallAsync<object?>("ptr.head", [made, 2], new CallOptions { ReturnPointer = false }));
        Assert.Equal(Expected(2, Cols), await client.CallAsync<double[,]>("ptr.head", [made, 2], new CallOptions { ReturnPointer = false }));
        Assert.Equal(fetched, client.PointerBytesFetched);
    }

    [Fact]
    public async Task AChainRunsByPointerAndTheArrayNeverReachesTheCaller()
    {
        await using IpyRpcClient client = await ConnectAsync();
        long before = client.BytesReceived;
        RemotePointer<double[,]> made = await client.CallPointerAsync<double[,]>("ptr.matrix", Rows, Cols);
        RemotePointer<double[,]> head = await client.CallPointerAsync<double[,]>("ptr.head", made, 10);
        double sum = await client.CallAsync<double>("ptr.sum", head);

        Assert.Equal(Enumerable.Range(0, 10 * Cols).Sum(), sum);
        Assert.Equal(0, client.PointerBytesFetched);
        Assert.InRange(client.BytesReceived - before, 1, 4000); // three small replies; the matrix is 64,000 bytes

        // On its holder a pointer resolves to the very object kept: nothing was copied.
        Assert.Equal($"True {Environment.ProcessId}", await client.CallAsync<string>("ptr.is_last_made", made));
        Assert.Equal(Rows, await client.CallAsync<int>("ptr.count", await client.CallPointerAsync<List<int>>("ptr.range", Rows)));
    }

    [Fact]
    public async Task TheTypedProxyAsksForPointersAndPassesThem()
    {
        await using IpyRpcClient client = await ConnectAsync();
        PointerFunctionsClient.PtrNamespace ptr = client.Proxy<PointerFunctionsClient>().Ptr;
        long before = client.BytesReceived;
        RemotePointer<double[,]> made = await client.AsPointerAsync(() => ptr.Matrix(Rows, Cols, new CallOptions { PointerTimeToLive = TimeSpan.FromMinutes(5) }));
        Assert.InRange(made.ExpiresAt!.Value, DateTimeOffset.UtcNow.AddMinutes(4), DateTimeOffset.UtcNow.AddMinutes(6));
        RemotePointer<double[,]> head = await client.AsPointerAsync(() => ptr.Head(made, 10));
        Assert.Equal(Enumerable.Range(0, 10 * Cols).Sum(), await ptr.Sum(head));
        Assert.Equal(Expected(3, Cols), await ptr.Head(made, 3));
        Assert.InRange(client.BytesReceived - before, 1, 4000);
        Assert.Equal(Expected(2, Cols, from: 5), await client.FetchAsync(head, 5, 7));
    }

    [Fact]
    public async Task APointerExpiresAfterItsTimeToLiveAndTheErrorSaysSo()
    {
        await using IpyRpcClient client = await ConnectAsync();
        RemotePointer<List<int>> pointer = await client.CallPointerAsync<List<int>>("ptr.range", [10], new CallOptions { PointerTimeToLive = TimeSpan.FromMilliseconds(300) });
        Assert.InRange(pointer.ExpiresAt!.Value, DateTimeOffset.UtcNow.AddSeconds(-1), DateTimeOffset.UtcNow.AddSeconds(1));
        await Task.Delay(400);
        var e = await Assert.ThrowsAsync<IpyRpcPointerException>(() => client.FetchAsync(pointer));
        Assert.Equal(ErrorCodes.PointerExpired, e.Code);
        Assert.Contains("expired", e.Message);

        var asArgument = await Assert.ThrowsAsync<IpyRpcPointerException>(() => client.CallAsync<int>("ptr.count", pointer));
        Assert.Equal(ErrorCodes.PointerExpired, asArgument.Code);
        Assert.Contains("Argument 'items' of ptr.count", asArgument.Message);
    }

    [Fact]
    public async Task AReleasedPointerIsGoneAndReleasingTwiceIsNoError()
    {
        await using IpyRpcClient client = await ConnectAsync();
        RemotePointer<List<int>> pointer = await client.CallPointerAsync<List<int>>("ptr.range", 10);
        int held = Server.Data.Count;
        await client.ReleaseAsync(pointer);
        await client.ReleaseAsync(pointer);
        Assert.Equal(held - 1, Server.Data.Count);
        var e = await Assert.ThrowsAsync<IpyRpcPointerException>(() => client.FetchAsync(pointer));
        Assert.Equal(ErrorCodes.PointerReleased, e.Code);
    }

    [Fact]
    public async Task TheLeastRecentlyUsedValueIsEvictedWhenTheBudgetIsReached()
    {
        await using IpyRpcClient client = await ConnectAsync();
        RemotePointer<byte[]> first = await client.CallPointerAsync<byte[]>("ptr.bytes", 1_500_000);
        RemotePointer<byte[]> second = await client.CallPointerAsync<byte[]>("ptr.bytes", 1_500_000);
        await client.FetchAsync(first, 0, 1); // first is now used more recently than second
        RemotePointer<byte[]> third = await client.CallPointerAsync<byte[]>("ptr.bytes", 1_500_000);

        var e = await Assert.ThrowsAsync<IpyRpcPointerException>(() => client.FetchAsync(second, 0, 1));
        Assert.Equal(ErrorCodes.PointerEvicted, e.Code);
        Assert.Contains("4000000 bytes", e.Message);
        Assert.Single(await client.FetchAsync(first, 0, 1));
        Assert.Single(await client.FetchAsync(third, 0, 1));
        Assert.InRange(Server.Data.Bytes, 0, 4_000_000);

        var tooLarge = await Assert.ThrowsAsync<IpyRpcProtocolException>(() => client.CallPointerAsync<byte[]>("ptr.bytes", 4_100_000));
        Assert.Equal(ErrorCodes.TooLarge, tooLarge.Code);
    }

    [Fact]
    public async Task AWrongSecretKeyGetsNothingAndIsToldSo()
    {
        await using IpyRpcClient client = await ConnectAsync();
        RemotePointer<double[,]> pointer = await client.CallPointerAsync<double[,]>("ptr.matrix", 4, 4);
        char flipped = pointer.SecretKey[0] == 'a' ? 'b' : 'a';
        RemotePointer<double[,]> forged = RemotePointer.FromMap(new Dictionary<string, object?>(pointer.ToMap()) { ["secret_key"] = flipped + pointer.SecretKey[1..] })!.As<double[,]>();

        var fetch = await Assert.ThrowsAsync<IpyRpcPointerException>(() => client.FetchAsync(forged));
        Assert.Equal(ErrorCodes.PointerDenied, fetch.Code);
        Assert.Contains("secret key does not match", fetch.Message);
        var argument = await Assert.ThrowsAsync<IpyRpcPointerException>(() => client.CallAsync<double>("ptr.sum", forged));
        Assert.Equal(ErrorCodes.PointerDenied, argument.Code);
        var release = await Assert.ThrowsAsync<IpyRpcPointerException>(() => client.ReleaseAsync(forged));
        Assert.Equal(ErrorCodes.PointerDenied, release.Code);

        Assert.Equal(Enumerable.Range(0, 16).Sum(), await client.CallAsync<double>("ptr.sum", pointer)); // the value is still there
    }

    [Theory]
    [InlineData(Serialization.MessagePack)]
    [InlineData(Serialization.Json)]
    public async Task APointerWhoseValueIsOfAnotherTypeIsRefusedNamingWhatItHolds(Serialization serialization)
    {
        await using IpyRpcClient client = await ConnectAsync(serialization);
        RemotePointer<double[,]> matrix = await client.CallPointerAsync<double[,]>("ptr.matrix", 4, 3);

        var e = await Assert.ThrowsAsync<InvalidArgumentsException>(() => client.CallAsync<int>("ptr.count", matrix));
        Assert.Equal(ErrorCodes.InvalidArguments, e.Code);
        Assert.Equal("items", e.Error.Parameter);
        Assert.Contains("Argument 'items' of ptr.count must be List<int>, and was given a pointer to a double[,] of shape [4, 3]", e.Message);

        // A map that says it is a pointer but lacks its key: named as such, not described as "a map".
        Dictionary<string, object?> broken = new(matrix.ToMap()) { ["secret_key"] = 5L };
        var malformed = await Assert.ThrowsAsync<InvalidArgumentsException>(() => client.CallAsync<double>("ptr.sum", broken));
        Assert.Contains("was given a data pointer that is not well formed", malformed.Message);
        Assert.Contains("secret_key", malformed.Message);

        Assert.Equal(Enumerable.Range(0, 12).Sum(), await client.CallAsync<double>("ptr.sum", matrix)); // the value is untouched
    }

    [Theory]
    [InlineData(Serialization.MessagePack)]
    [InlineData(Serialization.Json)]
    public async Task PointersInsideListsMapsAndRecordsAreResolvedWhereTheFunctionRuns(Serialization serialization)
    {
        await using IpyRpcClient client = await ConnectAsync(serialization);
        RemotePointer<double[,]> small = await client.CallPointerAsync<double[,]>("ptr.matrix", 2, 2); // 0+1+2+3 = 6
        RemotePointer<double[,]> large = await client.CallPointerAsync<double[,]>("ptr.matrix", 3, 3); // 0..8 = 36
        double[,] inline = { { 10, 20 } };

        // In a list, beside a value sent inline, and in a map of lists.
        var named = new Dictionary<string, object?> { ["both"] = new object?[] { small, inline, large }, ["one"] = new object?[] { large } };
        Dictionary<string, double> sums = await client.CallAsync<Dictionary<string, double>>("ptr.sums", named);
        Assert.Equal(6 + 30 + 36, sums["both"]);
        Assert.Equal(36, sums["one"]);

        // A function that takes a list of pointers gets the pointers, not their values.
        Assert.Equal("double[,],double[,]", await client.CallAsync<string>("ptr.types", new object?[] { new object?[] { small, large } }));

        // As a record's member.
        Assert.Equal("big 36", await client.CallAsync<string>("ptr.labelled", new Dictionary<string, object?> { ["label"] = "big", ["matrix"] = large }));

        // A pointer inside that is gone says so, naming the parameter.
        await client.ReleaseAsync(small);
        var gone = await Assert.ThrowsAsync<IpyRpcPointerException>(() => client.CallAsync<Dictionary<string, double>>("ptr.sums", named));
        Assert.Equal(ErrorCodes.PointerReleased, gone.Code);
        Assert.Contains("Argument 'named' of ptr.sums holds a pointer", gone.Message);
        Assert.Equal("big 36", await client.CallAsync<string>("ptr.labelled", new Dictionary<string, object?> { ["label"] = "big", ["matrix"] = large }));
    }

    [Theory]
    [InlineData(Serialization.MessagePack)]
    [InlineData(Serialization.Json)]
    public async Task APointerMapWithItsKeysInAnotherOrderIsStillAPointer(Serialization serialization)
    {
        // Holders write "type" first; a client that sorts keys (or builds the map by hand) puts it last.
        await using IpyRpcClient client = await ConnectAsync(serialization);
        RemotePointer<double[,]> matrix = await client.CallPointerAsync<double[,]>("ptr.matrix", 3, 3); // 0..8 = 36
        Dictionary<string, object?> sorted = matrix.ToMap().OrderBy(static kv => kv.Key, StringComparer.Ordinal).ToDictionary();
        Assert.NotEqual("type", sorted.Keys.First());

        Assert.Equal(36, await client.CallAsync<double>("ptr.sum", sorted));
        Assert.Equal("big 36", await client.CallAsync<string>("ptr.labelled", new Dictionary<string, object?> { ["label"] = "big", ["matrix"] = sorted }));
        Dictionary<string, double> sums = await client.CallAsync<Dictionary<string, double>>("ptr.sums", new Dictionary<string, object?> { ["one"] = new object?[] { sorted } });
        Assert.Equal(36, sums["one"]);

        // Sorted and broken: still named a pointer that is not well formed.
        sorted["holder"] = 5L;
        var malformed = await Assert.ThrowsAsync<InvalidArgumentsException>(() => client.CallAsync<double>("ptr.sum", sorted));
        Assert.Contains("was given a data pointer that is not well formed", malformed.Message);
        Assert.Contains("holder", malformed.Message);

        // A map whose own "type" is something else is not a pointer, even with a pointer's name among its values.
        var impostor = new Dictionary<string, object?> { ["kind"] = "ipyrpc_data_pointer", ["type"] = "table" };
        var refused = await Assert.ThrowsAsync<InvalidArgumentsException>(() => client.CallAsync<double>("ptr.sum", impostor));
        Assert.DoesNotContain("pointer", refused.Message);
    }

    [Fact]
    public async Task ATimeToLiveThatIsNotPositiveIsRefusedBeforeAnythingRuns()
    {
        await using IpyRpcClient client = await ConnectAsync();
        int made = Server.Data.Count;
        foreach (TimeSpan ttl in new[] { TimeSpan.Zero, TimeSpan.FromSeconds(-5) })
        {
            var e = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => client.CallPointerAsync<List<int>>("ptr.range", [3], new CallOptions { PointerTimeToLive = ttl }));
            Assert.Contains("PointerTimeToLive must be positive", e.Message);
        }

        Assert.Equal(made, Server.Data.Count);
        RemotePointer<List<int>> forever = await client.CallPointerAsync<List<int>>("ptr.range", [3], new CallOptions { PointerTimeToLive = Timeout.InfiniteTimeSpan });
        Assert.Null(forever.ExpiresAt);
        Assert.Equal([0, 1, 2], await client.FetchAsync(forever));
    }

    [Fact]
    public async Task AGoneHolderIsReportedUnreachable()
    {
        IpyRpcServer holder = NewServer();
        IAsyncDisposable? host = await ServeAsync(holder);
        RemotePointer<double[,]> pointer;
        await using (IpyRpcClient direct = await ConnectAsync(holder, host, new IpyRpcClientOptions { Output = (_, _) => { } }))
        {
            pointer = await direct.CallPointerAsync<double[,]>("ptr.matrix", 4, 4);
        }

        if (host is not null) await host.DisposeAsync();
        await holder.DisposeAsync();
        holder.Data.Dispose(); // the holder's process is gone: its store with it

        await using IpyRpcClient client = await ConnectAsync();
        var e = await Assert.ThrowsAsync<IpyRpcPointerException>(() => client.FetchAsync(pointer));
        Assert.Equal(ErrorCodes.HolderUnreachable, e.Code);
        Assert.Contains("could not be reached", e.Message);

        // A server resolves it for a caller only when the holder is its deployment's, or listed as trusted.
        // (An in-process holder's pointer names no address to connect to: it is just gone.)
        var argument = await Assert.ThrowsAsync<IpyRpcPointerException>(() => client.CallAsync<double>("ptr.sum", pointer));
        Assert.Equal(Protocol == PointerEndpoint.InProcess ? ErrorCodes.HolderUnreachable : ErrorCodes.PointerDenied, argument.Code);
        await using IpyRpcServer trusting = NewServer([$"{pointer.Protocol}://{pointer.Host}:*"]);
        IAsyncDisposable? trustingHost = await ServeAsync(trusting);
        try
        {
            await using IpyRpcClient caller = await ConnectAsync(trusting, trustingHost, new IpyRpcClientOptions { Output = (_, _) => { } });
            argument = await Assert.ThrowsAsync<IpyRpcPointerException>(() => caller.CallAsync<double>("ptr.sum", pointer));
            Assert.Equal(ErrorCodes.HolderUnreachable, argument.Code);
        }
        finally
        {
            if (trustingHost is not null) await trustingHost.DisposeAsync();
            trusting.Data.Dispose();
        }
    }

    [Fact]
    public async Task AFunctionFetchesOnlyTheRowsItNeedsAndKeepsWhatItMakes()
    {
        await using IpyRpcClient client = await ConnectAsync();
        FunctionDescriptor rowsum = client.Functions.Single(f => f.Name == "ptr.rowsum");
        Assert.Equal(["m", "start", "stop"], rowsum.Parameters.Select(p => p.Name)); // IpyRpcPointers is filled by the call

        // Rows of a pointer, fetched by the function itself: a sum of rows 2..4 of a 1000-row matrix.
        RemotePointer<double[,]> pointer = await client.CallPointerAsync<double[,]>("ptr.matrix", Rows, Cols);
        double expected = PointerFunctions.Sum(Expected(3, Cols, from: 2));
        Assert.Equal(expected, await client.CallAsync<double>("ptr.rowsum", pointer, 2, 5));
        expected = PointerFunctions.Sum(Expected(2, Cols, from: Rows - 2));
        Assert.Equal(expected, await client.CallAsync<double>("ptr.rowsum", pointer, -2, long.MaxValue)); // from the end, as in Python

        // Two values kept by one call: pointers, sealed by the deployment, usable as arguments.
        List<RemotePointer<double[,]>> parts = await client.CallAsync<List<RemotePointer<double[,]>>>("ptr.split", Expected(10, Cols), 4);
        Assert.Equal(2, parts.Count);
        Assert.All(parts, p => Assert.Equal(Server.Data.Id, p.Holder));
        Assert.All(parts, p => Assert.True(PointerSeal.Verify(Server.Queue.PointerKey.Span, p)));
        Assert.Equal([4L, Cols], parts[0].Shape);
        Assert.Equal(Expected(6, Cols, from: 4), await client.FetchAsync(parts[1]));
        Assert.InRange(parts[1].ExpiresAt!.Value - DateTimeOffset.UtcNow, TimeSpan.FromMinutes(4.9), TimeSpan.FromMinutes(5));
        Assert.InRange(parts[0].ExpiresAt!.Value - DateTimeOffset.UtcNow, TimeSpan.FromMinutes(59), TimeSpan.FromMinutes(60)); // the store's default
        expected = PointerFunctions.Sum(Expected(4, Cols));
        Assert.Equal(expected, await client.CallAsync<double>("ptr.sum", parts[0]));

        // A pointer the function may not fetch: the caller hears why.
        var written = parts[0].ToMap();
        written["holder"] = "0123456789abcdef0123456789abcdef";
        written["seal"] = null;
        var e = await Assert.ThrowsAnyAsync<IpyRpcException>(() => client.CallAsync<double>("ptr.rowsum", written, 0, 1));
        Assert.Contains(Protocol == PointerEndpoint.InProcess ? "could not be reached" : "not one this process trusts", e.Message);
    }

    /// <summary>
    /// The pointer as a holder of the same deployment in another process would have made it: another holder id (so it
    /// is not read from a store of this process) and the seal that deployment's key gives it.
    /// </summary>
    private static Dictionary<string, object?> HeldElsewhere(RemotePointer pointer, IJobQueue deployment)
    {
        const string elsewhere = "0123456789abcdef0123456789abcdef";
        Dictionary<string, object?> map = pointer.ToMap();
        map["holder"] = elsewhere;
        map["seal"] = PointerSeal.Compute(deployment.PointerKey.Span, elsewhere, pointer.Path, pointer.Endpoint, pointer.Alternates);
        return map;
    }

    [Fact]
    public async Task APointerIsResolvedFromAHolderOfItsOwnDeploymentOrATrustedOne()
    {
        // The holder: a server with a queue (and so a pointer key) of its own, another deployment.
        await using IpyRpcServer holder = NewServer();
        IAsyncDisposable? holderHost = await ServeAsync(holder);
        try
        {
            RemotePointer<double[,]> pointer;
            await using (IpyRpcClient direct = await ConnectAsync(holder, holderHost, new IpyRpcClientOptions { Output = (_, _) => { } }))
            {
                pointer = await direct.CallPointerAsync<double[,]>("ptr.matrix", 4, 4);
            }

            Assert.Matches("^[0-9a-f]{32}$", pointer.Seal);
            double expected = PointerFunctions.Sum(Expected(4, 4));

            await using IpyRpcClient client = await ConnectAsync();
            if (Protocol == PointerEndpoint.InProcess)
            {
                // A store in the server's own process is read where it is: no connection, nothing to trust.
                Assert.Equal(expected, await client.CallAsync<double>("ptr.sum", pointer));
                return;
            }

            // Sealed by the holder's deployment, the server (which has its own key) does not connect to it...
            var e = await Assert.ThrowsAsync<IpyRpcPointerException>(() => client.CallAsync<double>("ptr.sum", HeldElsewhere(pointer, holder.Queue)));
            Assert.Equal(ErrorCodes.PointerDenied, e.Code);
            Assert.Contains("not one this process trusts", e.Message);
            Assert.Contains("TrustedHolders", e.Message);
            Assert.Equal(4, (await client.FetchAsync(pointer)).GetLength(0)); // the client itself fetches from whoever it is given

            // ...but resolves it sealed by its own deployment, over the network from the holder,
            Assert.Equal(expected, await client.CallAsync<double>("ptr.sum", HeldElsewhere(pointer, Server.Queue)));

            // and a server that lists the holder's address resolves it as the holder made it.
            await using IpyRpcServer trusting = NewServer([$"{pointer.Protocol}://{pointer.Host}:{pointer.Port}*"]);
            IAsyncDisposable? trustingHost = await ServeAsync(trusting);
            try
            {
                await using IpyRpcClient caller = await ConnectAsync(trusting, trustingHost, new IpyRpcClientOptions { Output = (_, _) => { } });
                Assert.Equal(expected, await caller.CallAsync<double>("ptr.sum", HeldElsewhere(pointer, holder.Queue)));
            }
            finally
            {
                if (trustingHost is not null) await trustingHost.DisposeAsync();
                trusting.Data.Dispose();
            }
        }
        finally
        {
            if (holderHost is not null) await holderHost.DisposeAsync();
            holder.Data.Dispose();
        }
    }

    [Fact]
    public async Task AWrittenOrChangedPointerMakesTheServerConnectNowhere()
    {
        // A port that listens but is no holder: a caller would like the server to connect there for it.
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            int port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
            string protocol = Protocol == PointerEndpoint.InProcess ? "http" : Protocol;
            await using IpyRpcClient client = await ConnectAsync();
            RemotePointer<double[,]> real = await client.CallPointerAsync<double[,]>("ptr.matrix", 4, 4);

            var written = new Dictionary<string, object?>
            {
                ["type"] = RemotePointer.TypeName, ["protocol"] = protocol, ["host"] = "127.0.0.1", ["port"] = (long)port,
                ["path"] = "/admin/data/" + real.Id, ["secret_key"] = real.SecretKey, ["holder"] = "0123456789abcdef0123456789abcdef",
            };
            var changed = real.ToMap();
            changed["protocol"] = protocol;
            changed["host"] = "127.0.0.1";
            changed["port"] = (long)port;
            changed["holder"] = "0123456789abcdef0123456789abcdef"; // not this process's store, so it must be reached over the network
            var withAlternate = real.ToMap();
            withAlternate["holder"] = "0123456789abcdef0123456789abcdef";
            withAlternate["alternates"] = new object?[] { new Dictionary<string, object?> { ["protocol"] = protocol, ["host"] = "127.0.0.1", ["port"] = (long)port, ["path"] = "" } };

            foreach ((Dictionary<string, object?> pointer, string why) in new[] { (written, "carries no seal"), (changed, "not its deployment's"), (withAlternate, "not its deployment's") })
            {
                var e = await Assert.ThrowsAsync<IpyRpcPointerException>(() => client.CallAsync<double>("ptr.sum", pointer));
                Assert.Equal(ErrorCodes.PointerDenied, e.Code);
                Assert.Contains(why, e.Message);
            }

            // A pointer naming more addresses than any holder serves is refused as malformed, not tried one by one.
            var many = real.ToMap();
            many["holder"] = "0123456789abcdef0123456789abcdef";
            many["alternates"] = Enumerable.Range(1, 1000).Select(i => (object?)new Dictionary<string, object?> { ["protocol"] = protocol, ["host"] = "127.0.0.1", ["port"] = (long)i, ["path"] = "" }).ToArray();
            var tooMany = await Assert.ThrowsAsync<InvalidArgumentsException>(() => client.CallAsync<double>("ptr.sum", many));
            Assert.Contains("at most 16 alternates", tooMany.Message);

            // Inside an argument too.
            var nested = await Assert.ThrowsAsync<IpyRpcPointerException>(() => client.CallAsync<Dictionary<string, double>>(
                "ptr.sums", new Dictionary<string, object?> { ["a"] = new object?[] { real, written } }));
            Assert.Equal(ErrorCodes.PointerDenied, nested.Code);

            lock (ServerLog.Entries)
            {
                Assert.Contains(ServerLog.Entries, e => e.Level == Microsoft.Extensions.Logging.LogLevel.Warning && e.Message.Contains($"127.0.0.1:{port}") && e.Message.Contains("was not resolved"));
            }

            // Nothing connected to the port (a connection would be waiting to be accepted).
            using var none = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await listener.AcceptSocketAsync(none.Token));

            // The server keeps serving, and its own pointer still resolves.
            double expected = PointerFunctions.Sum(Expected(4, 4));
            Assert.Equal(expected, await client.CallAsync<double>("ptr.sum", real));
        }
        finally
        {
            listener.Stop();
        }
    }
}
