using System.Net;
using System.Text.Json;
using IpyRpc.Protocol;
using IpyRpc.Tests.Fuzz;
using Xunit.Abstractions;

namespace IpyRpc.Http.Tests;

[CollectionDefinition(nameof(Serial), DisableParallelization = true)]
public sealed class Serial;

/// <summary>
/// Mutated and random bodies against the binary endpoint and JSON-RPC: no answer may be an HTTP 500
/// or an empty body (a 204 for notifications aside), every answer must be well formed, and after every
/// batch the server answers a real call and stays bounded. <c>IPYRPC_FUZZ_COUNT</c>, <c>IPYRPC_FUZZ_SEED</c>.
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
        _server.Register(typeof(FuzzFunctions));
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
            // Mostly well-framed messages with mutated insides (to reach the decoders), some with mutated framing, some noise.
            byte[] body = mutator.Next(10) switch
            {
                0 => mutator.Random(mutator.Next(400)),
                < 4 => mutator.Bytes(Corpus.Framed[mutator.Next(Corpus.Framed.Count)]),
                _ => Corpus.Frame(mutator.Frames(Corpus.Frames[mutator.Next(Corpus.Frames.Count)])),
            };
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
}
