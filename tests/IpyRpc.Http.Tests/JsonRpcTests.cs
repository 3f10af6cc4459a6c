using System.Net;
using System.Text;
using System.Text.Json;

namespace IpyRpc.Http.Tests;

/// <summary>The JSON-RPC endpoint, driven with raw JSON over a plain HttpClient: no IpyRpc client code.</summary>
public sealed class JsonRpcTests(HttpFixture fixture) : IClassFixture<HttpFixture>
{
    private async Task<(HttpStatusCode Status, string Body)> PostAsync(string body, string contentType = "application/json", params (string, string)[] headers)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "rpc") { Content = new StringContent(body, Encoding.UTF8) };
        request.Content.Headers.ContentType = new(contentType);
        foreach ((string name, string value) in headers) request.Headers.TryAddWithoutValidation(name, value);
        using HttpResponseMessage response = await fixture.Http.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    private async Task<JsonElement> CallAsync(string body, params (string, string)[] headers)
    {
        (HttpStatusCode status, string text) = await PostAsync(body, headers: headers);
        Assert.Equal(HttpStatusCode.OK, status);
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    private static void AssertError(JsonElement response, int code, string? messagePart = null)
    {
        Assert.Equal("2.0", response.GetProperty("jsonrpc").GetString());
        Assert.False(response.TryGetProperty("result", out _));
        JsonElement error = response.GetProperty("error");
        Assert.Equal(code, error.GetProperty("code").GetInt32());
        if (messagePart is not null) Assert.Contains(messagePart, error.GetProperty("message").GetString());
    }

    private async Task AssertStillServingAsync()
    {
        JsonElement ok = await CallAsync("""{"jsonrpc":"2.0","method":"add","params":[40,2],"id":"alive"}""");
        Assert.Equal(42, ok.GetProperty("result").GetInt32());
    }

    [Fact]
    public async Task AStreamJobWhoseRecordLostItsFirstItemsIsAnErrorNotAShortList()
    {
        // A record of 2,000 bytes keeps only the last batches of 2,000 numbers.
        var queue = new IpyRpc.Jobs.InMemoryJobQueue(new IpyRpc.Jobs.InMemoryJobQueueOptions { Retention = new IpyRpc.Jobs.JobRetention { MaxOutputBytesPerJob = 2000 } });
        await using var server = new IpyRpcServer(new IpyRpcServerOptions { Queue = queue });
        server.Register(typeof(HttpFunctions));
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server);
        using var http = new HttpClient { BaseAddress = host.Address };
        async Task<JsonElement> Post(string body)
        {
            using HttpResponseMessage response = await http.PostAsync("rpc", new StringContent(body, Encoding.UTF8, "application/json"));
            return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();
        }

        string job = (await Post("""{"jsonrpc":"2.0","method":"rpc.submit","params":["count_to",[2000]],"id":1}""")).GetProperty("result").GetProperty("id").GetString()!;
        for (DateTime until = DateTime.UtcNow.AddSeconds(20); DateTime.UtcNow < until; await Task.Delay(20))
        {
            // Attached once it has ended: from its record alone (one attached while it ran would get every item live).
            if ((await Post($$"""{"jsonrpc":"2.0","method":"rpc.status","params":["{{job}}"],"id":5}""")).GetProperty("result").GetProperty("state").GetString() == "succeeded") break;
        }

        JsonElement attached = await Post($$"""{"jsonrpc":"2.0","method":"rpc.attach","params":["{{job}}"],"id":2}""");
        AssertError(attached, -32008, $"Job {job} made 2000 items, of which the first");
        Assert.Contains("MaxOutputBytesPerJob", attached.GetProperty("error").GetProperty("message").GetString());
        // A stream short enough for the record is answered whole.
        string small = (await Post("""{"jsonrpc":"2.0","method":"rpc.submit","params":["count_to",[5]],"id":3}""")).GetProperty("result").GetProperty("id").GetString()!;
        Assert.Equal([0, 1, 2, 3, 4], (await Post($$"""{"jsonrpc":"2.0","method":"rpc.attach","params":["{{small}}"],"id":4}""")).GetProperty("result").EnumerateArray().Select(i => i.GetInt32()));
    }

    [Fact]
    public async Task JobsAreSubmittedWatchedAttachedToListedAndCancelledOverJsonRpc()
    {
        // Submitted: answered at once with the job's info, while the function waits at its gate.
        string gate = Gates.NewName("jsonrpc-job");
        JsonElement submitted = await CallAsync($$"""{"jsonrpc":"2.0","method":"rpc.submit","params":{"method":"print_wait_print","params":["{{gate}}","j"]},"id":1}""");
        JsonElement info = submitted.GetProperty("result");
        string job = info.GetProperty("id").GetString()!;
        Assert.Equal("print_wait_print", info.GetProperty("function").GetString());
        Assert.Contains(info.GetProperty("state").GetString(), new[] { "queued", "running" });

        // Its status, with the output recorded so far, from another request.
        JsonElement status = default;
        for (DateTime until = DateTime.UtcNow.AddSeconds(20); DateTime.UtcNow < until; await Task.Delay(20))
        {
            status = (await CallAsync($$"""{"jsonrpc":"2.0","method":"rpc.status","params":{"job":"{{job}}","output":true},"id":2}""")).GetProperty("result");
            if (status.GetProperty("output").GetArrayLength() > 0) break;
        }

        Assert.Equal("running", status.GetProperty("state").GetString());
        Assert.Equal("j first\n", status.GetProperty("output")[0].GetProperty("text").GetString());

        // An attach whose request is aborted leaves the job running.
        using (var abort = new CancellationTokenSource(TimeSpan.FromMilliseconds(300)))
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "rpc")
            {
                Content = new StringContent($$"""{"jsonrpc":"2.0","method":"rpc.attach","params":["{{job}}"],"id":20}""", Encoding.UTF8, "application/json"),
            };
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => fixture.Http.SendAsync(request, abort.Token));
        }

        await Task.Delay(200);
        Assert.Equal("running", (await CallAsync($$"""{"jsonrpc":"2.0","method":"rpc.status","params":["{{job}}"],"id":21}""")).GetProperty("result").GetProperty("state").GetString());

        // Attached: the request waits for the job's end and answers with its result, its output replayed and live.
        Task<JsonElement> attach = CallAsync($$"""{"jsonrpc":"2.0","method":"rpc.attach","params":["{{job}}"],"id":3}""", ("IpyRpc-Output", "include"));
        await CallAsync($$"""{"jsonrpc":"2.0","method":"open_gate","params":["{{gate}}"],"id":4}""");
        JsonElement attached = await attach;
        Assert.Equal("j", attached.GetProperty("result").GetString());
        Assert.Equal(["j first\n", "j second\n"], attached.GetProperty("output").EnumerateArray().Select(o => o.GetProperty("text").GetString()));

        JsonElement listed = await CallAsync("""{"jsonrpc":"2.0","method":"rpc.jobs","params":{"function":"print_wait_print","state":"succeeded","limit":50},"id":5}""");
        Assert.Contains(job, listed.GetProperty("result").EnumerateArray().Select(j => j.GetProperty("id").GetString()));
        Assert.False((await CallAsync($$"""{"jsonrpc":"2.0","method":"rpc.cancel","params":["{{job}}"],"id":6}""")).GetProperty("result").GetBoolean()); // done already

        // A job cancelled while it waits: true, and attaching tells how it ended.
        string stuck = (await CallAsync($$"""{"jsonrpc":"2.0","method":"rpc.submit","params":["print_wait_print",["{{Gates.NewName("never")}}","k"]],"id":7}"""))
            .GetProperty("result").GetProperty("id").GetString()!;
        Assert.True((await CallAsync($$"""{"jsonrpc":"2.0","method":"rpc.cancel","params":{"job":"{{stuck}}"},"id":8}""")).GetProperty("result").GetBoolean());
        AssertError(await CallAsync($$"""{"jsonrpc":"2.0","method":"rpc.attach","params":["{{stuck}}"],"id":9}"""), -32002);

        // A job's deadline: timeout_ms counts from its submit, as a call's does.
        string late = (await CallAsync($$"""{"jsonrpc":"2.0","method":"rpc.submit","params":{"method":"print_wait_print","params":["{{Gates.NewName("late")}}","t"],"timeout_ms":200},"id":22}"""))
            .GetProperty("result").GetProperty("id").GetString()!;
        JsonElement timedOut = await CallAsync($$"""{"jsonrpc":"2.0","method":"rpc.attach","params":["{{late}}"],"id":23}""");
        Assert.Equal("timeout", timedOut.GetProperty("error").GetProperty("data").GetProperty("code").GetString());
        AssertError(await CallAsync("""{"jsonrpc":"2.0","method":"rpc.submit","params":{"method":"add","params":[1,2],"timeout_ms":-5},"id":24}"""), -32602, "\"timeout_ms\" is a whole number");

        // A streaming function's job is answered with its items, as its call is.
        string counting = (await CallAsync("""{"jsonrpc":"2.0","method":"rpc.submit","params":["count_to",[3]],"id":17}""")).GetProperty("result").GetProperty("id").GetString()!;
        Assert.Equal([0, 1, 2], (await CallAsync($$"""{"jsonrpc":"2.0","method":"rpc.attach","params":["{{counting}}"],"id":18}""")).GetProperty("result").EnumerateArray().Select(i => i.GetInt32()));
        Assert.Equal([0, 1, 2], (await CallAsync("""{"jsonrpc":"2.0","method":"count_to","params":[3],"id":19}""")).GetProperty("result").EnumerateArray().Select(i => i.GetInt32()));

        // Refusals say what was wrong, and queue nothing.
        AssertError(await CallAsync("""{"jsonrpc":"2.0","method":"rpc.submit","params":["add","x"],"id":10}"""), -32602, "\"params\" are the function's params");
        AssertError(await CallAsync("""{"jsonrpc":"2.0","method":"rpc.submit","params":{"method":"add","params":["two",3]},"id":11}"""), -32602, "Argument 'a' of add must be int");
        AssertError(await CallAsync("""{"jsonrpc":"2.0","method":"rpc.submit","params":{"method":"nope"},"id":12}"""), -32601, "No function is named 'nope'");
        AssertError(await CallAsync("""{"jsonrpc":"2.0","method":"rpc.submit","params":{"function":"add"},"id":13}"""), -32602, "it has no param named 'function'");
        AssertError(await CallAsync("""{"jsonrpc":"2.0","method":"rpc.status","params":["no-such-job"],"id":14}"""), -32008, "no-such-job");
        AssertError(await CallAsync("""{"jsonrpc":"2.0","method":"rpc.status","params":[7],"id":15}"""), -32602, "it needs \"job\"");
        AssertError(await CallAsync("""{"jsonrpc":"2.0","method":"rpc.jobs","params":{"state":"asleep"},"id":16}"""), -32602, "\"asleep\" is not a job state");
        await AssertStillServingAsync();
    }

    [Fact]
    public async Task TheIpyRpcPointerHeaderKeepsResultsAtTheServerAndRpcFetchReadsThem()
    {
        // A result kept where it was computed, for a function not configured so: the answer is its pointer.
        JsonElement kept = await CallAsync("""{"jsonrpc":"2.0","method":"scale","params":[21],"id":1}""", ("IpyRpc-Pointer", "true"), ("IpyRpc-Pointer-Ttl-Ms", "60000"));
        JsonElement pointer = kept.GetProperty("result");
        Assert.Equal("ipyrpc_data_pointer", pointer.GetProperty("type").GetString());
        Assert.Equal("double", pointer.GetProperty("value_type").GetString());
        Assert.InRange(pointer.GetProperty("expires_at").GetInt64(), DateTimeOffset.UtcNow.AddSeconds(30).ToUnixTimeMilliseconds(), DateTimeOffset.UtcNow.AddSeconds(61).ToUnixTimeMilliseconds());
        JsonElement fetched = await CallAsync($$"""{"jsonrpc":"2.0","method":"rpc.fetch","params":[{{pointer.GetRawText()}}],"id":2}""");
        Assert.Equal(42.0, fetched.GetProperty("result").GetDouble());

        // A submitted job's result too.
        string job = (await CallAsync("""{"jsonrpc":"2.0","method":"rpc.submit","params":["scale",[5]],"id":3}""", ("IpyRpc-Pointer", "true")))
            .GetProperty("result").GetProperty("id").GetString()!;
        JsonElement attached = await CallAsync($$"""{"jsonrpc":"2.0","method":"rpc.attach","params":["{{job}}"],"id":4}""");
        Assert.Equal("ipyrpc_data_pointer", attached.GetProperty("result").GetProperty("type").GetString());

        // Without the header, the value; a malformed header is an invalid request that says which.
        Assert.Equal(42.0, (await CallAsync("""{"jsonrpc":"2.0","method":"scale","params":[21],"id":5}""")).GetProperty("result").GetDouble());
        AssertError(await CallAsync("""{"jsonrpc":"2.0","method":"scale","params":[21],"id":6}""", ("IpyRpc-Pointer", "yes")), -32600, "IpyRpc-Pointer is true or false");
        AssertError(await CallAsync("""{"jsonrpc":"2.0","method":"scale","params":[21],"id":7}""", ("IpyRpc-Pointer-Ttl-Ms", "0")), -32600, "IpyRpc-Pointer-Ttl-Ms is a positive number");
    }

    [Fact]
    public async Task RpcFetchOfAPointerThisDeploymentDidNotMakeConnectsNowhere()
    {
        // A caller may call, but may not have the server connect to an address of its choosing.
        using var bait = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        bait.Start();
        int port = ((IPEndPoint)bait.LocalEndpoint).Port;
        JsonElement kept = (await CallAsync("""{"jsonrpc":"2.0","method":"scale","params":[21],"id":1}""", ("IpyRpc-Pointer", "true"))).GetProperty("result");
        string written = $$"""{"type":"ipyrpc_data_pointer","protocol":"http","host":"127.0.0.1","port":{{port}},"path":"/latest/data/{{new string('a', 32)}}","secret_key":"{{new string('b', 32)}}","holder":"{{new string('c', 32)}}"}""";
        string changed = kept.GetRawText().Replace($"\"holder\":\"{kept.GetProperty("holder").GetString()}\"", $"\"holder\":\"{new string('c', 32)}\"", StringComparison.Ordinal);
        Assert.NotEqual(kept.GetRawText(), changed);
        foreach (string pointer in new[] { written, changed })
        {
            foreach (string method in new[] { "rpc.fetch", "rpc.release" })
            {
                AssertError(await CallAsync($$"""{"jsonrpc":"2.0","method":"{{method}}","params":[{{pointer}}],"id":2}"""), -32013, "not one this process trusts");
            }
        }

        await Task.Delay(200);
        Assert.False(bait.Pending()); // nothing connected to the pointer's address
        Assert.Equal(42.0, (await CallAsync($$"""{"jsonrpc":"2.0","method":"rpc.fetch","params":[{{kept.GetRawText()}}],"id":3}""")).GetProperty("result").GetDouble());
        await AssertStillServingAsync();
    }

    [Fact]
    public async Task PositionalAndNamedParamsWorkAndDefaultsAreHonoured()
    {
        JsonElement positional = await CallAsync("""{"jsonrpc":"2.0","method":"add","params":[2,3],"id":1}""");
        Assert.Equal(5, positional.GetProperty("result").GetInt32());
        Assert.Equal(1, positional.GetProperty("id").GetInt32());

        JsonElement named = await CallAsync("""{"jsonrpc":"2.0","method":"add","params":{"b":3,"a":10},"id":2}""");
        Assert.Equal(13, named.GetProperty("result").GetInt32());

        JsonElement defaulted = await CallAsync("""{"jsonrpc":"2.0","method":"scale","params":{"value":4},"id":3}""");
        Assert.Equal(8.0, defaulted.GetProperty("result").GetDouble());
    }

    [Theory]
    [InlineData("\"abc\"")]
    [InlineData("7")]
    [InlineData("-12")]
    [InlineData("1.5")]
    [InlineData("12345678901234567890")]
    [InlineData("null")]
    [InlineData("\"a\\\"b\\u00e9\"")] // a string with escapes: echoed as sent, not re-encoded
    public async Task IdsOfEveryAllowedTypeAreEchoedExactly(string id)
    {
        (_, string body) = await PostAsync($$"""{"jsonrpc":"2.0","method":"add","params":[1,1],"id":{{id}}}""");
        Assert.EndsWith($"\"id\":{id}}}", body);
        Assert.Contains("\"result\":2", body);
    }

    // A lone call is read in one pass; whatever that pass does not take (an unknown or repeated member) goes through
    // the whole document. Both must answer alike.
    [Theory]
    [InlineData("""{"id":"x","params":[2,3],"method":"add","jsonrpc":"2.0"}""")] // members in any order
    [InlineData("""{"jsonrpc":"2.0","met\u0068od":"add","params":[2,3],"id":"x"}""")] // an escaped member name
    [InlineData("""{"jsonrpc":"2\u002e0","method":"\u0061dd","params":[2,3],"id":"x"}""")] // escaped values
    [InlineData("""{"jsonrpc":"2.0","method":"add","params":[2,3],"id":"x","extra":{"a":[1]}}""")] // an unknown member
    [InlineData("""{"jsonrpc":"2.0","method":"nope","method":"add","params":[2,3],"id":"x"}""")] // repeated: the last one counts
    [InlineData(" \r\n{ \"jsonrpc\" : \"2.0\" , \"method\" : \"add\" , \"params\" : [ 2 , 3 ] , \"id\" : \"x\" } \n")]
    public async Task ALoneCallIsAnsweredAlikeHoweverItIsSpelled(string body)
    {
        JsonElement response = await CallAsync(body);
        Assert.Equal(5, response.GetProperty("result").GetInt32());
        Assert.Equal("x", response.GetProperty("id").GetString());
    }

    [Fact]
    public async Task ANotificationGetsNoBodyButRuns()
    {
        string gate = Gates.NewName("notify");
        (HttpStatusCode status, string body) = await PostAsync($$"""{"jsonrpc":"2.0","method":"open_gate","params":["{{gate}}"]}""");
        Assert.Equal(HttpStatusCode.NoContent, status);
        Assert.Equal("", body);
        await Gates.WaitAsync(gate);
    }

    [Fact]
    public async Task ABatchAnswersEachRequestInOrderAndSkipsNotifications()
    {
        string gate = Gates.NewName("batch");
        (HttpStatusCode status, string body) = await PostAsync($$"""
            [
              {"jsonrpc":"2.0","method":"add","params":[1,2],"id":"a"},
              {"jsonrpc":"2.0","method":"open_gate","params":["{{gate}}"]},
              {"jsonrpc":"2.0","method":"nope","id":"b"},
              1,
              {"jsonrpc":"2.0","method":"add","params":{"a":5,"b":5},"id":"c"}
            ]
            """);
        Assert.Equal(HttpStatusCode.OK, status);
        JsonElement[] replies = [.. JsonDocument.Parse(body).RootElement.EnumerateArray()];
        Assert.Equal(4, replies.Length);
        Assert.Equal(3, replies[0].GetProperty("result").GetInt32());
        AssertError(replies[1], -32601);
        Assert.Equal("b", replies[1].GetProperty("id").GetString());
        AssertError(replies[2], -32600);
        Assert.Equal(JsonValueKind.Null, replies[2].GetProperty("id").ValueKind);
        Assert.Equal(10, replies[3].GetProperty("result").GetInt32());
        await Gates.WaitAsync(gate);

        (HttpStatusCode onlyNotifications, string empty) = await PostAsync("""[{"jsonrpc":"2.0","method":"add","params":[1,2]}]""");
        Assert.Equal(HttpStatusCode.NoContent, onlyNotifications);
        Assert.Equal("", empty);
    }

    [Theory]
    [InlineData("{\"jsonrpc\":\"2.0\",\"method\":\"add\",\"params\":[1,2],\"id\":1", "Parse error")]   // truncated
    [InlineData("this is not json", "Parse error")]
    [InlineData("{\"jsonrpc\":\"2.0\",}", "Parse error")]
    public async Task UnparsableBodiesGetMinus32700(string body, string message)
    {
        AssertError(await CallAsync(body), -32700, message);
        await AssertStillServingAsync();
    }

    [Fact]
    public async Task DeeplyNestedJsonIsAParseErrorThatSaysSo()
    {
        string deep = $$"""{"jsonrpc":"2.0","method":"add","params":{{new string('[', 500)}}{{new string(']', 500)}},"id":1}""";
        AssertError(await CallAsync(deep), -32700, "nested deeper than 64 levels");
        await AssertStillServingAsync();
    }

    [Theory]
    [InlineData("[]", "empty batch")]
    [InlineData("{\"method\":\"add\",\"params\":[1,2],\"id\":1}", "\"jsonrpc\" must be exactly \"2.0\"")]
    [InlineData("{\"jsonrpc\":\"1.0\",\"method\":\"add\",\"id\":1}", "\"jsonrpc\" must be exactly \"2.0\"")]
    [InlineData("{\"jsonrpc\":\"2.0\",\"method\":5,\"id\":1}", "\"method\" must be a string")]
    [InlineData("{\"jsonrpc\":\"2.0\",\"method\":\"add\",\"params\":5,\"id\":1}", "\"params\" must be an array or an object")]
    [InlineData("{\"jsonrpc\":\"2.0\",\"method\":\"add\",\"id\":{}}", "\"id\" must be a string, a number or null")]
    [InlineData("42", "must be an object")]
    public async Task InvalidRequestsGetMinus32600(string body, string message)
    {
        AssertError(await CallAsync(body), -32600, message);
        await AssertStillServingAsync();
    }

    [Fact]
    public async Task AnUnknownMethodGetsMinus32601()
    {
        JsonElement reply = await CallAsync("""{"jsonrpc":"2.0","method":"ad","params":[1,2],"id":1}""");
        AssertError(reply, -32601, "Did you mean 'add'?");
    }

    [Theory]
    [InlineData("[\"x\",2]", "Argument 'a' of add must be int", "a")]
    [InlineData("[1]", "missing the required argument 'b'", "b")]
    [InlineData("[1,2,3]", "takes 2 arguments but 3 were given", null)]
    [InlineData("{\"a\":1,\"b\":2,\"c\":3}", "no parameter named 'c'", "c")]
    public async Task BadParamsGetMinus32602(string parameters, string message, string? parameter)
    {
        JsonElement reply = await CallAsync($$"""{"jsonrpc":"2.0","method":"add","params":{{parameters}},"id":1}""");
        AssertError(reply, -32602, message);
        if (parameter is not null)
        {
            Assert.Equal(parameter, reply.GetProperty("error").GetProperty("data").GetProperty("parameter").GetString());
        }
    }

    [Fact]
    public async Task AResultThatCannotBeSerializedGetsMinus32603()
    {
        JsonElement reply = await CallAsync("""{"jsonrpc":"2.0","method":"bad_result","id":1}""");
        AssertError(reply, -32603, "could not be serialized");
        await AssertStillServingAsync();
    }

    [Fact]
    public async Task AFunctionsExceptionCarriesTypeMessageStackInnerAndOutput()
    {
        JsonElement reply = await CallAsync("""{"jsonrpc":"2.0","method":"fail","params":["boom"],"id":7}""");
        AssertError(reply, -32000, "boom");
        JsonElement data = reply.GetProperty("error").GetProperty("data");
        Assert.Equal("System.InvalidOperationException", data.GetProperty("type").GetString());
        Assert.Contains("HttpFunctions.Fail", data.GetProperty("stack").GetString());
        Assert.Equal("System.FormatException", data.GetProperty("inner").GetProperty("type").GetString());
        Assert.Equal("the inner one", data.GetProperty("inner").GetProperty("message").GetString());
        JsonElement output = Assert.Single(data.GetProperty("output").EnumerateArray());
        Assert.Equal("about to fail" + Environment.NewLine, output.GetProperty("text").GetString());
        Assert.Equal(7, reply.GetProperty("id").GetInt32());
    }

    [Fact]
    public async Task OutputIsIncludedOnRequestAndAbsentOtherwise()
    {
        string gate = Gates.NewName("include");
        Gates.Open(gate);
        string request = $$"""{"jsonrpc":"2.0","method":"print_wait_print","params":["{{gate}}","T"],"id":1}""";
        JsonElement plain = await CallAsync(request);
        Assert.Equal(["jsonrpc", "result", "id"], plain.EnumerateObject().Select(p => p.Name));

        JsonElement with = await CallAsync(request, ("IpyRpc-Output", "include"));
        string nl = Environment.NewLine;
        Assert.Equal([$"T first{nl}", $"T second{nl}"], with.GetProperty("output").EnumerateArray().Select(o => o.GetProperty("text").GetString()));
    }

    [Fact]
    public async Task TheNdjsonVariantStreamsOutputWhileTheCallRuns()
    {
        string gate = Gates.NewName("ndjson");
        using var request = new HttpRequestMessage(HttpMethod.Post, "rpc")
        {
            Content = new StringContent($$"""{"jsonrpc":"2.0","method":"print_wait_print","params":["{{gate}}","S"],"id":"s"}""", Encoding.UTF8, "application/json"),
        };
        request.Headers.Accept.ParseAdd("application/x-ndjson");
        using HttpResponseMessage response = await fixture.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());

        // The first line arrives while the function is still waiting on its gate.
        string first = (await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(10)))!;
        JsonElement notification = JsonDocument.Parse(first).RootElement;
        Assert.Equal("ipyrpc.output", notification.GetProperty("method").GetString());
        Assert.Equal("S first" + Environment.NewLine, notification.GetProperty("params").GetProperty("text").GetString());

        Gates.Open(gate);
        string second = (await reader.ReadLineAsync())!;
        Assert.Contains("S second", second);
        JsonElement final = JsonDocument.Parse((await reader.ReadLineAsync())!).RootElement;
        Assert.Equal("S", final.GetProperty("result").GetString());
        Assert.Equal("s", final.GetProperty("id").GetString());
    }

    [Fact]
    public async Task TheNdjsonVariantStreamsItemsAndProgressAsTheyComeAndEndsWithTheirCount()
    {
        async Task<List<JsonElement>> LinesAsync(string body)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "rpc") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            request.Headers.Accept.ParseAdd("application/x-ndjson");
            using HttpResponseMessage response = await fixture.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            var lines = new List<JsonElement>();
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            while (await reader.ReadLineAsync() is { } line) lines.Add(JsonDocument.Parse(line).RootElement.Clone());
            return lines;
        }

        // A stream of 2,000 items: batches of them as notifications, then the response, whose result is how many there were.
        List<JsonElement> counted = await LinesAsync("""{"jsonrpc":"2.0","method":"count_to","params":[2000],"id":1}""");
        List<JsonElement> batches = counted.Where(l => l.TryGetProperty("method", out JsonElement m) && m.GetString() == "ipyrpc.items").ToList();
        Assert.True(batches.Count > 1, $"{batches.Count} batch(es)"); // as the function made them, not one at the end
        Assert.Equal(Enumerable.Range(0, 2000), batches.SelectMany(b => b.GetProperty("params").GetProperty("items").EnumerateArray()).Select(i => i.GetInt32()));
        Assert.Equal(2000, counted[^1].GetProperty("result").GetInt32());
        Assert.Equal(1, counted[^1].GetProperty("id").GetInt32());

        // Progress reports, each a notification before the response.
        List<JsonElement> worked = await LinesAsync("""{"jsonrpc":"2.0","method":"work_with_progress","params":[3],"id":2}""");
        Assert.Equal([1, 2, 3], worked.Where(l => l.TryGetProperty("method", out JsonElement m) && m.GetString() == "ipyrpc.progress").Select(l => l.GetProperty("params").GetProperty("value").GetInt32()));
        Assert.Equal("worked 3", worked[^1].GetProperty("result").GetString());

        // A stream's job, attached: its items replayed the same way.
        string job = (await CallAsync("""{"jsonrpc":"2.0","method":"rpc.submit","params":["count_to",[5]],"id":3}""")).GetProperty("result").GetProperty("id").GetString()!;
        List<JsonElement> attached = await LinesAsync($$"""{"jsonrpc":"2.0","method":"rpc.attach","params":["{{job}}"],"id":4}""");
        Assert.Equal([0, 1, 2, 3, 4], attached.Where(l => l.TryGetProperty("method", out JsonElement m) && m.GetString() == "ipyrpc.items").SelectMany(b => b.GetProperty("params").GetProperty("items").EnumerateArray()).Select(i => i.GetInt32()));
        Assert.Equal(5, attached[^1].GetProperty("result").GetInt32());
    }

    [Fact]
    public async Task RpcDiscoverReturnsAnOpenRpcDocument()
    {
        JsonElement reply = await CallAsync("""{"jsonrpc":"2.0","method":"rpc.discover","id":1}""");
        JsonElement doc = reply.GetProperty("result");
        Assert.StartsWith("1.", doc.GetProperty("openrpc").GetString());
        Assert.Equal("IpyRpc server", doc.GetProperty("info").GetProperty("title").GetString());
        JsonElement add = doc.GetProperty("methods").EnumerateArray().Single(m => m.GetProperty("name").GetString() == "add");
        Assert.Equal("Adds two integers.", add.GetProperty("summary").GetString());
        JsonElement a = add.GetProperty("params")[0];
        Assert.Equal("a", a.GetProperty("name").GetString());
        Assert.Equal("The first addend.", a.GetProperty("description").GetString());
        Assert.True(a.GetProperty("required").GetBoolean());
        Assert.Equal("integer", a.GetProperty("schema").GetProperty("type").GetString());
        Assert.Equal("The sum.", add.GetProperty("result").GetProperty("description").GetString());
        JsonElement scale = doc.GetProperty("methods").EnumerateArray().Single(m => m.GetProperty("name").GetString() == "scale");
        Assert.False(scale.GetProperty("params")[1].GetProperty("required").GetBoolean());
    }

    [Fact]
    public async Task RpcDiscoverListsTheEventsTheServerPublishesWithTheirPayloadSchemas()
    {
        await using var server = new IpyRpcServer();
        server.Register(typeof(HttpFunctions)).Register(typeof(IpyRpc.Tests.BothWays.BothWaysEvents));
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server);
        using var http = new HttpClient { BaseAddress = host.Address };
        using HttpResponseMessage response = await http.PostAsync("rpc", new StringContent("""{"jsonrpc":"2.0","method":"rpc.discover","id":1}""", Encoding.UTF8, "application/json"));
        JsonElement doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("result");
        JsonElement[] events = [.. doc.GetProperty("x-ipyrpc-events").EnumerateArray()];
        Assert.Equal(["bw.other", "bw.ticked"], events.Select(e => e.GetProperty("name").GetString()));
        Assert.Equal("A numbered tick.", events[1].GetProperty("summary").GetString());
        Assert.Matches("^[0-9a-f]{16}$", events[1].GetProperty("x-ipyrpc-fingerprint").GetString());
        Assert.NotEqual(events[0].GetProperty("x-ipyrpc-fingerprint").GetString(), events[1].GetProperty("x-ipyrpc-fingerprint").GetString());
        JsonElement payload = events[1].GetProperty("schema");
        Assert.Equal("object", payload.GetProperty("x-ipyrpc").GetString());
        Assert.Equal("IpyRpc.Tests.BothWays.Tick", payload.GetProperty("x-csharp-full-name").GetString());
        Assert.Equal(["note", "number"], payload.GetProperty("properties").EnumerateObject().Select(p => p.Name).Order());
        Assert.Equal("String", events[0].GetProperty("schema").GetProperty("x-ipyrpc").GetString());

        // A server without events lists none (the key is absent).
        JsonElement plain = (await CallAsync("""{"jsonrpc":"2.0","method":"rpc.discover","id":2}""")).GetProperty("result");
        Assert.False(plain.TryGetProperty("x-ipyrpc-events", out _));
    }

    [Fact]
    public async Task AWrongContentTypeIsRefusedWith415()
    {
        (HttpStatusCode status, string body) = await PostAsync("""{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1}""", "text/plain");
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, status);
        AssertError(JsonDocument.Parse(body).RootElement, -32600, "Content-Type must be application/json, not text/plain");
        await AssertStillServingAsync();
    }

    [Fact]
    public async Task GetIsRefusedWith405()
    {
        using HttpResponseMessage response = await fixture.Http.GetAsync("rpc");
        Assert.Equal(HttpStatusCode.MethodNotAllowed, response.StatusCode);
        Assert.Contains("POST", response.Content.Headers.Allow);
    }

    [Fact]
    public async Task AnOversizedRequestIsRefusedWith413AndTheServerKeepsServing()
    {
        string big = $$"""{"jsonrpc":"2.0","method":"echo_bytes","params":["{{Convert.ToBase64String(new byte[100_000])}}"],"id":1}""";
        (HttpStatusCode status, string body) = await PostAsync(big);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, status);
        AssertError(JsonDocument.Parse(body).RootElement, -32003, "larger than the limit of 65536 bytes");

        // Chunked (no Content-Length): refused by counting.
        using var request = new HttpRequestMessage(HttpMethod.Post, "rpc") { Content = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(big))) };
        request.Content.Headers.ContentType = new("application/json");
        request.Headers.TransferEncodingChunked = true;
        using HttpResponseMessage chunked = await fixture.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, chunked.StatusCode);
        await AssertStillServingAsync();
    }

    [Fact]
    public async Task ABodyThatArrivesInPiecesIsReadWholeBeforeTheCallIsMade()
    {
        // A raw HTTP/1.1 request whose declared body comes in three writes with pauses between them: the endpoint must
        // wait for every byte it was promised, not decode the part that came with the headers.
        byte[] body = Encoding.UTF8.GetBytes("""{"jsonrpc":"2.0","method":"add","params":[40,2],"id":"pieces"}""");
        Uri address = fixture.Host.Address;
        using var tcp = new System.Net.Sockets.TcpClient();
        await tcp.ConnectAsync(address.Host, address.Port);
        System.Net.Sockets.NetworkStream stream = tcp.GetStream();
        byte[] head = Encoding.ASCII.GetBytes($"POST /rpc HTTP/1.1\r\nHost: {address.Authority}\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n");
        await stream.WriteAsync(head.Concat(body[..10]).ToArray());
        await Task.Delay(150);
        await stream.WriteAsync(body.AsMemory(10, 20));
        await Task.Delay(150);
        await stream.WriteAsync(body.AsMemory(30));

        using var reader = new StreamReader(stream, Encoding.UTF8);
        string response = await reader.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.StartsWith("HTTP/1.1 200", response);
        JsonElement reply = JsonDocument.Parse(response[(response.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)..]).RootElement;
        Assert.Equal(42, reply.GetProperty("result").GetInt32());
        Assert.Equal("pieces", reply.GetProperty("id").GetString());
    }
}

/// <summary>A batch larger than the calls one connection may have in flight, on a server of its own that allows four.</summary>
public sealed class JsonRpcBatchTests
{
    [Fact]
    public async Task ABatchLargerThanTheConnectionsLimitRunsWholeNoMoreThanTheLimitAtOnce()
    {
        await using var server = new IpyRpcServer(new IpyRpcServerOptions { MaxCallsInFlightPerConnection = 4 });
        server.Register(typeof(HttpFunctions));
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server, "http://127.0.0.1:0");
        using var http = new HttpClient { BaseAddress = host.Address };
        string key = Gates.NewName("batch-width");

        // 40 calls and 5 notifications: every one runs (a notification refused would be lost without a word).
        string calls = string.Join(",", Enumerable.Range(0, 40).Select(i => $$"""{"jsonrpc":"2.0","method":"overlap","params":["{{key}}"],"id":{{i}}}"""));
        string notifications = string.Join(",", Enumerable.Range(0, 5).Select(_ => $$"""{"jsonrpc":"2.0","method":"overlap","params":["{{key}}"]}"""));
        using HttpResponseMessage response = await http.PostAsync("rpc", new StringContent($"[{calls},{notifications}]", Encoding.UTF8, "application/json"));
        JsonElement[] replies = [.. JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.EnumerateArray()];

        Assert.Equal(Enumerable.Range(0, 40), replies.Select(r => r.GetProperty("id").GetInt32()));
        Assert.All(replies, r => Assert.InRange(r.GetProperty("result").GetInt32(), 1, 4));
        (int most, int ran) = HttpFunctions.MostAtOnce(key);
        Assert.Equal(45, ran);
        Assert.InRange(most, 1, 4);
    }

    [Fact]
    public async Task ACallWhoseRequestIsAbortedWhileItsAuthorizerDecidesNeverRuns()
    {
        string cancelled = Guid.NewGuid().ToString("N"), after = Guid.NewGuid().ToString("N");
        var deciding = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var decide = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = new IpyRpcServer();
        server.Register(typeof(IpyRpc.Tests.Calls.StartFunctions));
        server.Config(new GlobConfig
        {
            ["start.run"] = new FunctionOptions
            {
                Auth = async context =>
                {
                    if (context.Purpose == AuthorizationPurpose.Call && (string)context.Arguments!["tag"]! == cancelled)
                    {
                        deciding.TrySetResult();
                        await decide.Task; // a rule that looks something up, slowly
                    }

                    return AuthorizationResult.Allow();
                },
            },
        });
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server, "http://127.0.0.1:0");
        using var http = new HttpClient { BaseAddress = host.Address };
        try
        {
            using var abort = new CancellationTokenSource();
            Task<HttpResponseMessage> request = http.PostAsync("rpc", new StringContent($$"""{"jsonrpc":"2.0","method":"start.run","params":["{{cancelled}}"],"id":1}""", Encoding.UTF8, "application/json"), abort.Token);
            await deciding.Task.WaitAsync(TimeSpan.FromSeconds(20));
            abort.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => request);
            await Task.Delay(500); // the abort reaches the server while the rule decides
        }
        finally
        {
            decide.TrySetResult();
        }

        using HttpResponseMessage next = await http.PostAsync("rpc", new StringContent($$"""{"jsonrpc":"2.0","method":"start.run","params":["{{after}}"],"id":2}""", Encoding.UTF8, "application/json"));
        Assert.Contains("\"result\":1", await next.Content.ReadAsStringAsync());
        await Task.Delay(100);
        Assert.Equal(0, IpyRpc.Tests.Calls.StartFunctions.Runs(cancelled));
    }
}
