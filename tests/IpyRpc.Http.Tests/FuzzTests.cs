using System.Collections.Concurrent;
using System.Net;
using System.Net.WebSockets;
using System.Text.Unicode;
using System.Text.Json;
using IpyRpc.Jobs;
using IpyRpc.Protocol;
using IpyRpc.Tests.Fuzz;
using Xunit.Abstractions;

namespace IpyRpc.Http.Tests;

[CollectionDefinition(nameof(Serial), DisableParallelization = true)]
public sealed class Serial;

/// <summary>
/// Mutated and random bodies against the binary endpoint and JSON-RPC: no answer may be an HTTP 500
/// or an empty body (a 204 for notifications aside), every answer must be well formed, and after every
/// batch the server answers a real call and stays bounded. Mutated and random WebSocket messages likewise, under both
/// subprotocols: every message the server sends must be well formed, and the fuzzed connection itself must still
/// answer a real call after every batch. <c>IPYRPC_FUZZ_COUNT</c>, <c>IPYRPC_FUZZ_SEED</c>.
/// Runs alone: the heap it watches is the whole process's.
/// </summary>
[Collection(nameof(Serial))]
public sealed class FuzzTests(ITestOutputHelper output) : IAsyncLifetime
{
    private IpyRpcServer _server = null!;
    private IpyRpcHttpServer _host = null!;
    private HttpClient _http = null!;

    public async Task InitializeAsync()
    {
        _server = new IpyRpcServer(new IpyRpcServerOptions { MaxCallsInFlightPerConnection = 100_000, MaxMessageBytes = 1 << 20 });
        _server.Register(typeof(FuzzFunctions)).Register(typeof(IpyRpc.Tests.BothWays.BothWaysEvents));
        _host = await IpyRpcHttpServer.StartAsync(_server, "http://127.0.0.1:0", new IpyRpcHttpOptions { MaxJsonRequestBytes = 1 << 20 });
        _http = new HttpClient { BaseAddress = _host.Address, Timeout = TimeSpan.FromSeconds(30) };
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _host.DisposeAsync();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task TheBinaryEndpointAnswersFuzzedBodiesWithWellFormedMessagesAndNever500()
    {
        var mutator = new Mutator(Mutator.NewSeed);
        int total = Mutator.CountPerSurface;
        output.WriteLine($"seed {mutator.Seed}, {total} bodies");
        await using IpyRpcClient probe = await IpyRpcHttpClient.ConnectAsync(_host.Address, new IpyRpcClientOptions { Output = (_, _) => { } });
        var watch = new ResourceWatch();
        var statuses = new Dictionary<HttpStatusCode, int>();
        for (int sent = 0; sent < total; sent++)
        {
            byte[] body = FuzzedFramed(mutator);
            using var content = new ByteArrayContent(body);
            content.Headers.ContentType = new("application/x-ipyrpc");
            using HttpResponseMessage response = await _http.PostAsync("ipyrpc", content);
            byte[] reply = await response.Content.ReadAsByteArrayAsync();
            statuses[response.StatusCode] = statuses.GetValueOrDefault(response.StatusCode) + 1;
            Assert.True(response.StatusCode != HttpStatusCode.InternalServerError, $"HTTP 500 for body #{sent} (seed {mutator.Seed})");
            if (response.StatusCode != HttpStatusCode.NoContent)
            {
                Assert.True(reply.Length > 0, $"HTTP {(int)response.StatusCode} with an empty body for #{sent} (seed {mutator.Seed})");
                for (ReadOnlyMemory<byte> rest = reply; !rest.IsEmpty;)
                {
                    Assert.True(MessageCodec.TryReadFramed(rest, 1 << 24, out _, out int consumed), $"a truncated reply to #{sent} (seed {mutator.Seed})");
                    rest = rest[consumed..];
                }
            }

            if ((sent + 1) % 500 == 0 || sent == total - 1)
            {
                Assert.Equal(sent + 1, await probe.CallAsync<int>("fuzz.add", sent, 1));
                watch.Check("http binary", sent + 1);
            }
        }

        output.WriteLine(string.Join(", ", statuses.OrderBy(s => s.Key).Select(s => $"{(int)s.Key}: {s.Value}")) + $"; peak heap {watch.PeakMemory / 1048576} MiB, peak threads {watch.PeakThreads}, peak RSS {ResourceWatch.PeakRssMiB} MiB");
    }

    /// <summary>Mostly well-framed messages with mutated insides (to reach the decoders), some with mutated framing, some noise.</summary>
    private static byte[] FuzzedFramed(Mutator mutator) => mutator.Next(10) switch
    {
        0 => mutator.Random(mutator.Next(400)),
        < 4 => mutator.Bytes(Corpus.Framed[mutator.Next(Corpus.Framed.Count)]),
        _ => Corpus.Frame(mutator.Frames(Corpus.Frames[mutator.Next(Corpus.Frames.Count)])),
    };

    [Theory]
    [InlineData(WebSocketMessageChannel.SubProtocol)]
    [InlineData(WebSocketMessageChannel.PackedSubProtocol)]
    public async Task TheWebSocketAnswersFuzzedMessagesWithWellFormedOnesAndTheFuzzedConnectionKeepsServing(string subProtocol)
    {
        var mutator = new Mutator(Mutator.NewSeed);
        int total = Mutator.CountPerSurface;
        bool packed = subProtocol == WebSocketMessageChannel.PackedSubProtocol;
        output.WriteLine($"seed {mutator.Seed}, {total} WebSocket messages, {subProtocol}");
        await using IpyRpcClient probe = await IpyRpcHttpClient.ConnectAsync(_host.Address, HttpCarrier.WebSocket, new IpyRpcClientOptions { Output = (_, _) => { } });
        var watch = new ResourceWatch();
        FuzzedWebSocket link = await FuzzedWebSocket.OpenAsync(_host.Address, subProtocol);
        var closes = new Dictionary<string, int>();
        int probes = 0, retried = 0;
        try
        {
            for (int sent = 0; sent < total; sent++)
            {
                if (link.Closed)
                {
                    link = await ReopenAsync(link);
                }

                // Packed: one to four bodies one after another (a broken one spoils the rest of its pack, as it would).
                byte[] message = packed
                    ? [.. Enumerable.Range(0, 1 + mutator.Next(4)).SelectMany(_ => FuzzedFramed(mutator))]
                    : FuzzedFramed(mutator);
                bool oversized = mutator.Next(500) == 0;
                if (oversized)
                {
                    // Far past the server's limit: it closes the WebSocket (1009) before reading the rest. Sent on a
                    // connection known to be open (a text message before may have closed it, with 1007).
                    message = mutator.Random(2 << 20);
                    if (link.Closed || await link.AddAsync(0, 0, TimeSpan.FromSeconds(15)) is null) link = await ReopenAsync(link);
                }

                bool text = !oversized && mutator.Next(250) == 0;
                // (The oversized ones in 64 KiB frames: sent whole, this client's WebSocket would rent a 4 MiB send buffer for
                // each, which the shared array pool then keeps, per thread, in this process whose heap is watched.)
                await link.SendAsync(message, text, pieces: oversized ? message.Length / (64 * 1024) : mutator.Next(8) == 0 ? 2 + mutator.Next(3) : 1);
                if (oversized)
                {
                    Assert.True(await link.WaitClosedAsync(TimeSpan.FromSeconds(10)), $"an oversized message #{sent} did not close the WebSocket (seed {mutator.Seed})");
                    Assert.Equal(WebSocketCloseStatus.MessageTooBig, link.CloseStatus);
                }
                else if (text && !Utf8.IsValid(message))
                {
                    // A text message that is not UTF-8 closes the WebSocket (1007). Nothing more is sent on it: .NET's WebSocket
                    // closes the connection right after its close, and bytes it had not read would reset it, losing the close.
                    Assert.True(await link.WaitClosedAsync(TimeSpan.FromSeconds(10)), $"a text message not UTF-8, #{sent}, did not close the WebSocket (seed {mutator.Seed})");
                    link = await ReopenAsync(link);
                }
                else if (text && await link.AddAsync(0, 0, TimeSpan.FromSeconds(15)) is null)
                {
                    link = await ReopenAsync(link); // a text message that is UTF-8 is read as any other; closed meanwhile, go on on a new connection
                }

                if ((sent + 1) % 500 == 0 || sent == total - 1)
                {
                    link.ThrowIfBroken(mutator.Seed);
                    // The fuzzed connection still answers a real call, after all it was sent. The server may have
                    // closed it meanwhile (a close status, never silence): then a new connection must.
                    int? sum = link.Closed ? null : await link.AddAsync(sent, 1, TimeSpan.FromSeconds(15));
                    if (sum is null)
                    {
                        Assert.True(link.Closed, $"the fuzzed WebSocket neither answered a call nor was closed after #{sent} (seed {mutator.Seed})");
                        retried++;
                        link = await ReopenAsync(link);
                        sum = await link.AddAsync(sent, 1, TimeSpan.FromSeconds(15));
                    }

                    Assert.Equal(sent + 1, sum);
                    probes++;
                    Assert.Equal(sent + 1, await probe.CallAsync<int>("fuzz.add", sent, 1));
                    watch.Check("websocket " + subProtocol, sent + 1);
                }
            }

            link.ThrowIfBroken(mutator.Seed);
        }
        finally
        {
            await link.DisposeAsync();
        }

        output.WriteLine($"{link.Counts(closes)}; {probes} calls on the fuzzed connection answered ({retried} after it was closed); peak heap {watch.PeakMemory / 1048576} MiB, peak threads {watch.PeakThreads}, peak RSS {ResourceWatch.PeakRssMiB} MiB");

        async Task<FuzzedWebSocket> ReopenAsync(FuzzedWebSocket closed)
        {
            closed.ThrowIfBroken(mutator.Seed);
            // A message it cannot read is answered, not a reason to close: the server closes only for what no reply can
            // follow (a message too large to read, a text message that is not UTF-8), and always with a status.
            Assert.True(closed.CloseStatus is WebSocketCloseStatus.MessageTooBig or WebSocketCloseStatus.InvalidPayloadData,
                $"the server closed the fuzzed WebSocket with {closed.CloseStatus?.ToString() ?? "no close status"} (seed {mutator.Seed})");
            string why = closed.CloseStatus.ToString()!;
            closes[why] = closes.GetValueOrDefault(why) + 1;
            await closed.DisposeAsync();
            return await FuzzedWebSocket.OpenAsync(_host.Address, subProtocol, closed);
        }
    }

    /// <summary>
    /// A raw WebSocket sending whatever it is given, and reading everything the server sends: each WebSocket message
    /// must be binary and hold whole, well-formed IpyRpc messages (one, or under the packed subprotocol one or more).
    /// </summary>
    private sealed class FuzzedWebSocket : IAsyncDisposable
    {
        private const ulong FirstCallId = 1UL << 62; // beyond the ids the mutated messages use
        private readonly ClientWebSocket _socket;
        private readonly bool _packed;
        private readonly Task _reader;
        private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly ConcurrentDictionary<ulong, TaskCompletionSource<IpyRpcMessage>> _calls = new();
        private readonly ConcurrentDictionary<MessageKind, int> _kinds;
        private ulong _nextId;
        private volatile string? _broken;

        private FuzzedWebSocket(ClientWebSocket socket, ulong nextId, ConcurrentDictionary<MessageKind, int> kinds)
        {
            _socket = socket;
            _packed = socket.SubProtocol == WebSocketMessageChannel.PackedSubProtocol;
            _nextId = nextId;
            _kinds = kinds;
            _reader = Task.Run(ReadAsync);
        }

        public bool Closed => _closed.Task.IsCompleted;

        public WebSocketCloseStatus? CloseStatus { get; private set; }

        public static async Task<FuzzedWebSocket> OpenAsync(Uri address, string subProtocol, FuzzedWebSocket? before = null)
        {
            var socket = new ClientWebSocket();
            socket.Options.AddSubProtocol(subProtocol);
            await socket.ConnectAsync(IpyRpcHttpClient.WebSocketAddress(address), CancellationToken.None);
            Assert.Equal(subProtocol, socket.SubProtocol);
            return new FuzzedWebSocket(socket, before?._nextId ?? FirstCallId, before?._kinds ?? new());
        }

        public async Task SendAsync(byte[] message, bool text, int pieces)
        {
            try
            {
                WebSocketMessageType type = text ? WebSocketMessageType.Text : WebSocketMessageType.Binary;
                for (int i = 0, at = 0; i < pieces; i++)
                {
                    int end = i == pieces - 1 ? message.Length : message.Length * (i + 1) / pieces;
                    await _socket.SendAsync(message.AsMemory(at, end - at), type, endOfMessage: i == pieces - 1, CancellationToken.None);
                    at = end;
                }
            }
            catch (WebSocketException) when (Closed || _socket.State != WebSocketState.Open)
            {
                // The server closed the connection (what it sent before is being read): the caller opens another.
                await WaitClosedAsync(TimeSpan.FromSeconds(10));
            }
        }

        /// <summary>Calls <c>fuzz.add</c> on this connection; null when the connection closed before the answer came.</summary>
        public async Task<int?> AddAsync(int a, int b, TimeSpan timeout)
        {
            ulong id = Interlocked.Increment(ref _nextId);
            var answer = new TaskCompletionSource<IpyRpcMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
            _calls[id] = answer;
            var call = new IpyRpcMessage { Kind = MessageKind.Call, Id = id, Function = "fuzz.add", Parts = [JobCodec.Encode(new object?[] { (long)a, (long)b }, Serialization.MessagePack)] };
            await SendAsync(MessageCodec.EncodeFramed(call), text: false, pieces: 1);
            Task done = await Task.WhenAny(answer.Task, _closed.Task, Task.Delay(timeout));
            if (!answer.Task.IsCompleted)
            {
                Assert.True(done == _closed.Task, $"no answer to a call on the fuzzed WebSocket within {timeout.TotalSeconds} s, and it is still open");
                return null;
            }

            IpyRpcMessage reply = answer.Task.Result;
            Assert.True(reply.Kind == MessageKind.Result, $"a call on the fuzzed WebSocket got {reply.Kind}: {(reply.Kind == MessageKind.Error ? RemoteError.Decode(reply.Body.Span, reply.Serialization).Message : "")}");
            return Convert.ToInt32(JobCodec.Decode(reply.Body.Span, reply.Serialization), System.Globalization.CultureInfo.InvariantCulture);
        }

        public async Task<bool> WaitClosedAsync(TimeSpan timeout) => await Task.WhenAny(_closed.Task, Task.Delay(timeout)) == _closed.Task;

        public void ThrowIfBroken(int seed)
        {
            if (_broken is { } why) Assert.Fail($"{why} (seed {seed})");
        }

        public string Counts(Dictionary<string, int> closes) =>
            "server's messages: " + string.Join(", ", _kinds.OrderBy(k => k.Key.ToString()).Select(k => $"{k.Key}: {k.Value}"))
            + "; connections the server closed: " + (closes.Count == 0 ? "none" : string.Join(", ", closes.Select(c => $"{c.Key}: {c.Value}")));

        private async Task ReadAsync()
        {
            var buffer = new byte[256 * 1024];
            try
            {
                while (true)
                {
                    int filled = 0;
                    ValueWebSocketReceiveResult result;
                    do
                    {
                        if (filled == buffer.Length) Array.Resize(ref buffer, buffer.Length * 2);
                        result = await _socket.ReceiveAsync(buffer.AsMemory(filled), CancellationToken.None);
                        filled += result.Count;
                    }
                    while (!result.EndOfMessage && result.MessageType != WebSocketMessageType.Close);

                    if (result.MessageType == WebSocketMessageType.Close)
                    {
                        CloseStatus = _socket.CloseStatus;
                        return;
                    }

                    if (result.MessageType != WebSocketMessageType.Binary)
                    {
                        _broken = "the server sent a text WebSocket message";
                        return;
                    }

                    ReadOnlyMemory<byte> rest = buffer.AsMemory(0, filled).ToArray();
                    int count = 0;
                    while (!rest.IsEmpty)
                    {
                        if (!MessageCodec.TryReadFramed(rest, 1 << 24, out IpyRpcMessage? message, out int consumed))
                        {
                            _broken = $"the server sent a WebSocket message that is not whole IpyRpc messages ({filled} bytes, {count} read)";
                            return;
                        }

                        count++;
                        _kinds.AddOrUpdate(message!.Kind, 1, (_, n) => n + 1);
                        if (message.Kind is MessageKind.Result or MessageKind.Error && _calls.TryRemove(message.Id, out TaskCompletionSource<IpyRpcMessage>? waiting))
                        {
                            waiting.TrySetResult(message);
                        }

                        rest = rest[consumed..];
                    }

                    if (!_packed && count != 1)
                    {
                        _broken = $"the server sent {count} messages in one WebSocket message under {WebSocketMessageChannel.SubProtocol}";
                        return;
                    }
                }
            }
            catch (Exception e) when (e is WebSocketException or ObjectDisposedException or OperationCanceledException)
            {
                // Aborted: counted as closed without a status.
            }
            finally
            {
                _closed.TrySetResult();
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (_socket.State == WebSocketState.Open)
            {
                try
                {
                    using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                    await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "done", grace.Token);
                }
                catch (Exception e) when (e is WebSocketException or OperationCanceledException)
                {
                }
            }

            await Task.WhenAny(_reader, Task.Delay(TimeSpan.FromSeconds(5)));
            _socket.Abort();
            _socket.Dispose();
        }
    }

    [Fact]
    public async Task JsonRpcAnswersFuzzedBodiesWithJsonAndNever500()
    {
        var mutator = new Mutator(Mutator.NewSeed);
        int total = Mutator.CountPerSurface;
        output.WriteLine($"seed {mutator.Seed}, {total} bodies");
        var watch = new ResourceWatch();
        var statuses = new Dictionary<HttpStatusCode, int>();
        for (int sent = 0; sent < total; sent++)
        {
            byte[] body = mutator.Next(10) == 0 ? mutator.Random(mutator.Next(400)) : mutator.Json(Corpus.JsonRpc[mutator.Next(Corpus.JsonRpc.Count)]);
            using var content = new ByteArrayContent(body);
            content.Headers.ContentType = new("application/json");
            using HttpResponseMessage response = await _http.PostAsync("rpc", content);
            string reply = await response.Content.ReadAsStringAsync();
            statuses[response.StatusCode] = statuses.GetValueOrDefault(response.StatusCode) + 1;
            Assert.True(response.StatusCode != HttpStatusCode.InternalServerError, $"HTTP 500 for body #{sent} (seed {mutator.Seed}): {reply}");
            if (response.StatusCode != HttpStatusCode.NoContent)
            {
                Assert.False(string.IsNullOrEmpty(reply), $"HTTP {(int)response.StatusCode} with an empty body for #{sent} (seed {mutator.Seed})");
                using JsonDocument parsed = JsonDocument.Parse(reply); // every answer is JSON
            }

            if ((sent + 1) % 500 == 0 || sent == total - 1)
            {
                using var probe = new ByteArrayContent("""{"jsonrpc":"2.0","method":"fuzz.add","params":[40,2],"id":"probe"}"""u8.ToArray());
                probe.Headers.ContentType = new("application/json");
                using HttpResponseMessage ok = await _http.PostAsync("rpc", probe);
                Assert.Equal(42, JsonDocument.Parse(await ok.Content.ReadAsStringAsync()).RootElement.GetProperty("result").GetInt32());
                watch.Check("json-rpc", sent + 1);
            }
        }

        output.WriteLine(string.Join(", ", statuses.OrderBy(s => s.Key).Select(s => $"{(int)s.Key}: {s.Value}")) + $"; peak heap {watch.PeakMemory / 1048576} MiB, peak threads {watch.PeakThreads}, peak RSS {ResourceWatch.PeakRssMiB} MiB");
    }

    [Fact]
    public async Task TheEventStreamAnswersFuzzedQueriesWithAStreamOrAJsonRefusalAndNever500()
    {
        var mutator = new Mutator(Mutator.NewSeed);
        int total = Mutator.CountPerSurface;
        output.WriteLine($"seed {mutator.Seed}, {total} requests");
        string[] corpus = ["bw.*", "bw.ticked", "*", "bw.[ot]*", "[!x]w.other", "fuzz.add", "b?.other", "bw.**", "[", "a..b", "\u00e9v\u00e9nement", new string('x', 300)];
        var watch = new ResourceWatch();
        var statuses = new Dictionary<HttpStatusCode, int>();
        var ids = new List<string>();
        for (int sent = 0; sent < total; sent++)
        {
            var query = new List<string>();
            for (int i = mutator.Next(10) == 0 ? 30 + mutator.Next(10) : mutator.Next(4); i > 0; i--)
            {
                byte[] pattern = mutator.Bytes(System.Text.Encoding.UTF8.GetBytes(corpus[mutator.Next(corpus.Length)]));
                query.Add((mutator.Next(8) == 0 ? "patter" : "pattern") + "=" + (mutator.Next(12) == 0 ? "%" + (char)('A' + mutator.Next(30)) : Uri.EscapeDataString(System.Text.Encoding.Latin1.GetString(pattern))));
            }

            using var request = new HttpRequestMessage(mutator.Next(10) == 0 ? HttpMethod.Post : HttpMethod.Get, "events" + (query.Count > 0 ? "?" + string.Join("&", query) : ""));
            if (mutator.Next(3) == 0)
            {
                // Resuming: after an id a stream gave (the events kept since are replayed), or after a mutated one.
                string id = ids.Count > 0 && mutator.Next(2) == 0 ? ids[mutator.Next(ids.Count)] : new string([.. mutator.Bytes(System.Text.Encoding.UTF8.GetBytes(ids.Count > 0 ? ids[^1] : "0badc0de-1")).Select(b => b is >= 0x20 and < 0x7f ? (char)b : (char)(0x20 + (b % 95)))]); // (a header is ASCII)
                request.Headers.TryAddWithoutValidation("Last-Event-ID", id);
            }

            if (mutator.Next(4) == 0) _server.Publish(IpyRpc.Tests.BothWays.BothWaysEvents.Other, "fuzz " + sent);
            using HttpResponseMessage response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            statuses[response.StatusCode] = statuses.GetValueOrDefault(response.StatusCode) + 1;
            if (response.StatusCode == HttpStatusCode.OK)
            {
                // A stream: its first event (with the id it starts from) names what it subscribed to; leaving it ends its session.
                using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
                string first = (await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(20)))!;
                Assert.StartsWith("id: ", first);
                if (ids.Count < 64) ids.Add(first[4..]);
                Assert.Equal("event: ipyrpc.subscribed", await reader.ReadLineAsync());
                Assert.StartsWith("data: [", await reader.ReadLineAsync());
                continue;
            }

            string reply = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode != HttpStatusCode.InternalServerError, $"HTTP 500 for request #{sent} {request.RequestUri} (seed {mutator.Seed}): {reply}");
            if (response.StatusCode != HttpStatusCode.BadRequest || reply.Length > 0)
            {
                // Every refusal of the endpoint's own is JSON (Kestrel's own 400 for a malformed request line has no body).
                using JsonDocument parsed = JsonDocument.Parse(reply);
                Assert.False(string.IsNullOrEmpty(parsed.RootElement.GetProperty("error").GetProperty("message").GetString()));
            }

            if ((sent + 1) % 500 == 0 || sent == total - 1)
            {
                using HttpResponseMessage ok = await _http.GetAsync("events?pattern=bw.other", HttpCompletionOption.ResponseHeadersRead);
                Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
                watch.Check("event stream", sent + 1);
            }
        }

        output.WriteLine(string.Join(", ", statuses.OrderBy(s => s.Key).Select(s => $"{(int)s.Key}: {s.Value}")) + $"; peak heap {watch.PeakMemory / 1048576} MiB, peak threads {watch.PeakThreads}, peak RSS {ResourceWatch.PeakRssMiB} MiB");
    }
}
