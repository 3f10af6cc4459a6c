using System.Text.Json;
using IpyRpc.Http;
using IpyRpc.TestWorker;
using IpyRpc.ZeroMq;

namespace IpyRpc.Integration.Tests;

/// <summary>The ipyrpc command (runtime/IpyRpc.Cli) against a live server, as a process, over ZeroMQ and HTTP.</summary>
public sealed class CliTests : IAsyncLifetime
{
    private readonly IpyRpcServer _server = new();
    private IpyRpcZeroMqServer _zmq = null!;
    private IpyRpcHttpServer _http = null!;

    public async Task InitializeAsync()
    {
        _server.Register(typeof(WorkFunctions)).Register(typeof(IpyRpc.Tests.Pointers.PointerFunctions));
        _server.Config(new() { ["work.slow"] = new() { InputSerialization = Serialization.Json } });
        _server.RegisterFallback("boom.*", (_, _) => throw new InvalidOperationException("kaboom"));
        _zmq = IpyRpcZeroMqServer.Start(_server, "tcp://127.0.0.1:*");
        _http = await IpyRpcHttpServer.StartAsync(_server);
    }

    public async Task DisposeAsync()
    {
        await _zmq.DisposeAsync();
        await _http.DisposeAsync();
        await _server.DisposeAsync();
    }

    private static Task<(int Code, string Output)> Cli(params string[] args)
        => Repository.RunAsync("dotnet", AppContext.BaseDirectory, [Path.Combine(AppContext.BaseDirectory, "IpyRpc.Cli.dll"), .. args]);

    [Fact]
    public async Task LsAndHelpShowTheFunctionsAndTheirDocs()
    {
        (int code, string text) = await Cli("ls", _zmq.Endpoint);
        Assert.True(code == 0, text);
        Assert.Contains("work.square", text);
        Assert.Contains("Squares a number.", text);

        (code, string json) = await Cli("ls", _http.Address.ToString(), "--json");
        Assert.True(code == 0, json);
        JsonElement square = JsonDocument.Parse(json).RootElement.EnumerateArray().Single(f => f.GetProperty("name").GetString() == "work.square");
        Assert.Equal("work.square(x: long) -> long", square.GetProperty("signature").GetString());

        (code, text) = await Cli("help", _zmq.Endpoint, "work.slow");
        Assert.True(code == 0, text);
        Assert.Contains("work.slow(tag: string, steps: int, pauseMs: int) -> string", text);
        Assert.Contains("Prints a line per step", text);

        (code, text) = await Cli("help", _zmq.Endpoint, "work.nope");
        Assert.Equal(2, code);
        Assert.Contains("no function named 'work.nope'", text);
    }

    [Fact]
    public async Task ListenGoesOnAcrossADroppedConnectionAndPrintsWhatWasPublishedMeanwhile()
    {
        await using var server = new IpyRpcServer();
        server.Register(typeof(Chat.ChatEvents));
        string endpoint = $"tcp://127.0.0.1:{IpyRpc.Tests.LoopbackPorts.Free()}";
        IpyRpcZeroMqServer zmq = IpyRpcZeroMqServer.Start(server, endpoint);
        try
        {
            Chat.ChatLine Line(string text) => new("ann", text, DateTimeOffset.UnixEpoch);
            Task<(int Code, string Stdout, string Stderr)> listening = Repository.RunWithStreamsAsync("dotnet", AppContext.BaseDirectory,
                Path.Combine(AppContext.BaseDirectory, "IpyRpc.Cli.dll"), "listen", endpoint, "chat.said", "--count", "3", "--timeout", "120");
            while (server.Publish(Chat.ChatEvents.Said, Line("first")) == 0)
            {
                Assert.False(listening.IsCompleted, listening.IsCompleted ? (await listening).Stdout + (await listening).Stderr : "");
                await Task.Delay(50);
            }

            await zmq.DisposeAsync(); // the command is told the server is stopping, and dials again
            server.Publish(Chat.ChatEvents.Said, Line("while away"));
            zmq = IpyRpcZeroMqServer.Start(server, endpoint);
            for (int n = 1; !listening.IsCompleted && n < 600; n++)
            {
                server.Publish(Chat.ChatEvents.Said, Line($"after {n}")); // kept while nobody hears them: the first are replayed
                await Task.Delay(50);
            }

            (int exit, string stdout, string stderr) = await listening;
            Assert.True(exit == 0, stdout + stderr);
            string[] lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(["first", "while away", "after 1"], lines.Select(l => JsonDocument.Parse(l["chat.said ".Length..]).RootElement.GetProperty("text").GetString()));
            Assert.Contains("the connection ended (", stderr);
            Assert.Contains("connected again; listening on", stderr);
        }
        finally
        {
            await zmq.DisposeAsync();
        }
    }

    [Fact]
    public async Task ListenAfterAnIdPrintsWhatCameSinceWithEachEventsId()
    {
        await using var server = new IpyRpcServer();
        server.Register(typeof(Chat.ChatEvents));
        await using IpyRpcZeroMqServer zmq = IpyRpcZeroMqServer.Start(server, "tcp://127.0.0.1:*");
        string epoch;
        await using (IpyRpcClient probe = await IpyRpcClient.ConnectInProcessAsync(server))
        await using (IpyRpcSubscription where = await probe.SubscribeAsync(Chat.ChatEvents.Said, _ => { }))
        {
            epoch = where.LastEventId![..where.LastEventId!.LastIndexOf('-')];
        }

        for (int n = 1; n <= 5; n++) server.Publish(Chat.ChatEvents.Said, new Chat.ChatLine("ann", $"line {n}", DateTimeOffset.UnixEpoch));
        (int code, string text) = await Cli("listen", zmq.Endpoint, "chat.said", "--after", $"{epoch}-2", "--count", "3", "--json", "--timeout", "60");
        Assert.True(code == 0, text);
        JsonElement[] lines = [.. text.Split('\n').Where(l => l.StartsWith('{')).Select(l => JsonDocument.Parse(l).RootElement.Clone())];
        Assert.Equal(["line 3", "line 4", "line 5"], lines.Select(l => l.GetProperty("payload").GetProperty("text").GetString()));
        Assert.Equal([$"{epoch}-3", $"{epoch}-4", $"{epoch}-5"], lines.Select(l => l.GetProperty("id").GetString()));

        (code, text) = await Cli("listen", zmq.Endpoint, "--after", "yesterday", "--timeout", "1");
        Assert.Equal(2, code);
        Assert.Contains("is not an event id", text);
    }

    [Fact]
    public async Task ListenPrintsEachEventOnceAsItComesAndLsListsTheEvents()
    {
        await using var server = new IpyRpcServer();
        server.Register(typeof(Chat.ChatEvents));
        await using IpyRpcZeroMqServer zmq = IpyRpcZeroMqServer.Start(server, "tcp://127.0.0.1:*");
        await using IpyRpcHttpServer http = await IpyRpcHttpServer.StartAsync(server);

        (int code, string text) = await Cli("ls", zmq.Endpoint);
        Assert.True(code == 0, text);
        Assert.Contains("chat.said", text);
        Assert.Contains("ChatLine", text);
        Assert.Contains("Someone said something.", text);

        int said = 0;
        Chat.ChatLine Line() => new("ann", $"line {++said}", new DateTimeOffset(2026, 12, 7, 20, 0, said, TimeSpan.Zero));
        foreach (string address in new[] { zmq.Endpoint, http.Address.ToString() })
        {
            // Two patterns that both match chat.said: each event still prints once.
            Task<(int Code, string Stdout, string Stderr)> listening = Repository.RunWithStreamsAsync("dotnet", AppContext.BaseDirectory,
                Path.Combine(AppContext.BaseDirectory, "IpyRpc.Cli.dll"), "listen", address, "chat.*", "chat.said", "--count", "3", "--json", "--timeout", "120");
            // Events published before the command subscribed reach nobody (Publish says for how many it was queued).
            while (server.Publish(Chat.ChatEvents.Said, Line()) == 0)
            {
                Assert.False(listening.IsCompleted, listening.IsCompleted ? (await listening).Stdout + (await listening).Stderr : "");
                await Task.Delay(50);
            }

            int first = said;
            server.Publish(Chat.ChatEvents.Left, "bob (closed)");
            server.Publish(Chat.ChatEvents.Said, Line());
            (int exit, string stdout, string stderr) = await listening;
            Assert.True(exit == 0, stdout + stderr);
            Assert.Contains("listening for chat.joined, chat.left, chat.said", stderr);
            JsonElement[] lines = [.. stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone())];
            Assert.Equal(["chat.said", "chat.left", "chat.said"], lines.Select(l => l.GetProperty("event").GetString()));
            Assert.Equal($"line {first}", lines[0].GetProperty("payload").GetProperty("text").GetString());
            Assert.Equal("bob (closed)", lines[1].GetProperty("payload").GetString());
            Assert.Equal($"line {first + 1}", lines[2].GetProperty("payload").GetProperty("text").GetString());
        }

        (code, text) = await Cli("listen", zmq.Endpoint, "nothing.*");
        Assert.Equal(2, code);
        Assert.Contains("No event matches 'nothing.*'. This server publishes: chat.joined, chat.left, chat.said.", text);

        (code, text) = await Cli("listen", http.Address.ToString(), "chat.said", "--count", "1", "--timeout", "0.5");
        Assert.Equal(4, code);
        Assert.Contains("0 of the 1 events asked for came within 0.5 s.", text);

        // Without --count, --timeout only ends the listening.
        (code, text) = await Cli("listen", zmq.Endpoint, "--timeout", "0.5");
        Assert.True(code == 0, text);
    }

    [Fact]
    public async Task SchemaWritesTheOpenRpcDocumentAClientIsGeneratedFrom()
    {
        (int code, string text) = await Cli("schema", _zmq.Endpoint);
        Assert.True(code == 0, text);
        using JsonDocument document = JsonDocument.Parse(text);
        JsonElement root = document.RootElement;
        Assert.Equal("1.3.2", root.GetProperty("openrpc").GetString());
        Assert.Equal(1, root.GetProperty("x-ipyrpc-schema").GetInt32());
        JsonElement square = root.GetProperty("methods").EnumerateArray().Single(m => m.GetProperty("name").GetString() == "work.square");
        Assert.Equal("Squares a number.", square.GetProperty("summary").GetString());
        Assert.Equal("work.square(x: long) -> long", square.GetProperty("x-ipyrpc-signature").GetString());
        Assert.Matches("^[0-9a-f]{16}$", square.GetProperty("x-ipyrpc-fingerprint").GetString());
        Assert.Equal("Int64", square.GetProperty("params")[0].GetProperty("schema").GetProperty("x-ipyrpc").GetString());

        // A file that cannot be written is a usage error that says why.
        (code, text) = await Cli("schema", _zmq.Endpoint, "-o", Path.Combine(Path.GetTempPath(), "no-such-folder-" + Guid.NewGuid().ToString("N"), "x.ipyrpc.json"));
        Assert.Equal(2, code);
        Assert.Contains("Could not write", text);
    }

    [Fact]
    public async Task CallPrintsLiveOutputThenTheResultAndTakesArgumentsByPositionOrName()
    {
        (int code, string text) = await Cli("call", _zmq.Endpoint, "work.square", "7");
        Assert.True(code == 0, text);
        Assert.Equal("49", text.Trim());

        (code, text) = await Cli("call", _http.Address.ToString(), "work.square", "x=8", "--json");
        Assert.True(code == 0, text);
        Assert.Equal(64, JsonDocument.Parse(text).RootElement.GetProperty("result").GetInt64());

        (code, text) = await Cli("call", _zmq.Endpoint, "work.slow", "cli", "3", "10");
        Assert.True(code == 0, text);
        int step = text.IndexOf("cli step 3 on", StringComparison.Ordinal);
        Assert.True(step >= 0 && step < text.IndexOf("\"cli done by", StringComparison.Ordinal), text); // output before the result
    }

    [Fact]
    public async Task AStreamsItemsPrintOneALineOrAsOneDocumentWithJson()
    {
        (int code, string text) = await Cli("call", _zmq.Endpoint, "work.stream", "3");
        Assert.True(code == 0, text);
        Assert.Equal(["1", "2", "3"], text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

        (code, text) = await Cli("call", _http.Address.ToString(), "work.stream", "to=2", "--json");
        Assert.True(code == 0, text);
        Assert.Equal([1, 2], JsonDocument.Parse(text).RootElement.GetProperty("items").EnumerateArray().Select(e => e.GetInt32()));
    }

    [Fact]
    public async Task ProgressReportsGoToStderrAsTheyComeAndTheResultToStdout()
    {
        (int code, string text) = await Cli("call", _zmq.Endpoint, "work.steps", "3");
        Assert.True(code == 0, text);
        int first = text.IndexOf("progress: 1", StringComparison.Ordinal), second = text.IndexOf("progress: 2", StringComparison.Ordinal), third = text.IndexOf("progress: 3", StringComparison.Ordinal);
        Assert.True(first >= 0 && first < second && second < third, text);

        (code, text) = await Cli("call", _http.Address.ToString(), "work.steps", "count=2", "--json");
        Assert.True(code == 0, text);
        Assert.Contains("progress: 2", text);
        string json = text[text.IndexOf('{')..(text.LastIndexOf('}') + 1)]; // stdout's document, before stderr's lines
        Assert.Equal(2, JsonDocument.Parse(json).RootElement.GetProperty("result").GetInt32());

        // A job's reports, replayed to whoever attaches.
        (code, text) = await Cli("jobs", "submit", _zmq.Endpoint, "work.steps", "3", "--json");
        Assert.True(code == 0, text);
        string job = JsonDocument.Parse(text).RootElement.GetProperty("id").GetString()!;
        (code, text) = await Cli("jobs", "attach", _zmq.Endpoint, job);
        Assert.True(code == 0, text);
        first = text.IndexOf("progress: 1", StringComparison.Ordinal);
        second = text.IndexOf("progress: 2", StringComparison.Ordinal);
        third = text.IndexOf("progress: 3", StringComparison.Ordinal);
        Assert.True(first >= 0 && first < second && second < third, text);
        Assert.EndsWith("3", text.TrimEnd());
    }

    [Fact]
    public async Task AJsonOnlyFunctionIsCalledInJsonAndTextPrintsAsItselfNotEscaped()
    {
        // work.slow accepts JSON only (the config above): the command, which sends MessagePack otherwise, was refused.
        string tag = "h\u00e9llo <b> & 'it' \"\u65e5\u672c\"";
        foreach (string server in new[] { _zmq.Endpoint, _http.Address.ToString() })
        {
            (int code, string text) = await Cli("call", server, "work.slow", tag, "0", "0");
            Assert.True(code == 0, text);
            Assert.StartsWith("\"h\u00e9llo <b> & 'it' \\\"\u65e5\u672c\\\" done by ", text.Trim()); // JSON, with only what JSON must escape escaped

            (code, text) = await Cli("call", server, "work.slow", $"tag={tag}", "steps=0", "pauseMs=0", "--json");
            Assert.True(code == 0, text);
            Assert.StartsWith(tag + " done by", JsonDocument.Parse(text).RootElement.GetProperty("result").GetString());
            Assert.Contains("\u00e9", text);
        }

        (int helpCode, string help) = await Cli("help", _zmq.Endpoint, "work.slow");
        Assert.True(helpCode == 0, help);
        Assert.Contains("JSON arguments only", help);
    }

    [Fact]
    public async Task FailuresAreReadableAndTheExitCodeSaysWhichKind()
    {
        (int code, string text) = await Cli("call", _zmq.Endpoint, "boom.now");
        Assert.Equal(1, code);
        Assert.Contains("remote error", text);
        Assert.Contains("kaboom", text);

        (code, text) = await Cli("call", _zmq.Endpoint, "work.nope");
        Assert.Equal(2, code);

        (code, text) = await Cli("call", _zmq.Endpoint, "work.square", "\"seven\"");
        Assert.Equal(2, code);
        Assert.Contains("must be long", text);

        (code, text) = await Cli("call", _zmq.Endpoint, "work.wait_for_cancel", "--timeout", "0.3");
        Assert.Equal(4, code);

        (code, text) = await Cli("call", _zmq.Endpoint, "work.square", "2", "--timeout", "-1");
        Assert.Equal(2, code);
        Assert.Contains("--timeout is a number of seconds greater than zero, not -1", text);

        (code, text) = await Cli("ping", "http://127.0.0.1:1/");
        Assert.Equal(3, code);

        (code, text) = await Cli("call", _zmq.Endpoint, "boom.now", "--json");
        Assert.Equal(1, code);
        Assert.Equal("remote_exception", JsonDocument.Parse(text).RootElement.GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task PingAndJobsListShowAttachAndCancel()
    {
        (int code, string text) = await Cli("ping", _zmq.Endpoint);
        Assert.True(code == 0, text);
        Assert.Contains("answered in", text);

        await using IpyRpcClient client = await IpyRpcZeroMqClient.ConnectAsync(_zmq.Endpoint, new IpyRpcClientOptions { Output = (_, _) => { } });
        IpyRpcJob<string> done = await client.SubmitAsync<string>("work.slow", "job", 2, 10);
        await done.WaitAsync(TimeSpan.FromSeconds(10));
        IpyRpcJob<string> waiting = await client.SubmitAsync<string>("work.wait_for_cancel");

        (code, text) = await Cli("jobs", "list", _zmq.Endpoint, "--json");
        Assert.True(code == 0, text);
        string[] ids = [.. JsonDocument.Parse(text).RootElement.EnumerateArray().Select(j => j.GetProperty("id").GetString()!)];
        Assert.Contains(done.Id, ids);
        Assert.Contains(waiting.Id, ids);

        (code, text) = await Cli("jobs", "show", _zmq.Endpoint, done.Id);
        Assert.True(code == 0, text);
        Assert.Contains("succeeded", text);
        Assert.Contains("job step 2 on", text);

        (code, text) = await Cli("jobs", "attach", _zmq.Endpoint, done.Id);
        Assert.True(code == 0, text);
        Assert.Contains("job step 1 on", text); // replayed
        Assert.Contains("\"job done by", text);

        (code, text) = await Cli("jobs", "cancel", _zmq.Endpoint, waiting.Id);
        Assert.True(code == 0, text);
        Assert.Contains("cancelled", text);
    }

    [Fact]
    public async Task ArraysPrintAsNdarraysAndAPointerGoesFromCallToFetchToAnotherCallToRelease()
    {
        // A matrix prints as the seeds' ndarray object, not as an opaque extension.
        (int code, string text) = await Cli("call", _zmq.Endpoint, "ptr.matrix", "2", "3", "--json");
        Assert.True(code == 0, text);
        JsonElement matrix = JsonDocument.Parse(text).RootElement.GetProperty("result");
        Assert.Equal("ndarray", matrix.GetProperty("type").GetString());
        Assert.Equal(5.0, matrix.GetProperty("data")[1][2].GetDouble());

        // A data frame prints in the JSON shape of PROTOCOL.md: a record array, not raw column blocks.
        (code, text) = await Cli("call", _zmq.Endpoint, "ptr.frame", "3", "--json");
        Assert.True(code == 0, text);
        JsonElement frame = JsonDocument.Parse(text).RootElement.GetProperty("result");
        Assert.Equal("pandas", frame.GetProperty("type").GetString());
        Assert.Equal(3, frame.GetProperty("data").GetProperty("data").GetArrayLength());
        Assert.Equal(JsonValueKind.Array, frame.GetProperty("data").GetProperty("data")[0].ValueKind);

        (code, text) = await Cli("call", _zmq.Endpoint, "ptr.matrix", "4", "3", "--pointer", "--ttl", "600", "--json");
        Assert.True(code == 0, text);
        JsonElement pointer = JsonDocument.Parse(text).RootElement.GetProperty("result");
        Assert.Equal("ipyrpc_data_pointer", pointer.GetProperty("type").GetString());
        Assert.InRange(DateTimeOffset.FromUnixTimeMilliseconds(pointer.GetProperty("expires_at").GetInt64()), DateTimeOffset.UtcNow.AddMinutes(9), DateTimeOffset.UtcNow.AddMinutes(11));
        string given = pointer.GetRawText();

        (code, text) = await Cli("fetch", _zmq.Endpoint, given, "--start", "1", "--stop", "2");
        Assert.True(code == 0, text);
        JsonElement row = JsonDocument.Parse(text).RootElement;
        Assert.Equal([1, 3], row.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal([3.0, 4.0, 5.0], row.GetProperty("data")[0].EnumerateArray().Select(e => e.GetDouble()));

        (code, text) = await Cli("call", _zmq.Endpoint, "ptr.sum", given); // the pointer as an argument, resolved where it is held
        Assert.True(code == 0, text);
        Assert.Equal(Enumerable.Range(0, 12).Sum(), double.Parse(text.Trim(), System.Globalization.CultureInfo.InvariantCulture));

        (code, text) = await Cli("release", _http.Address.ToString(), given);
        Assert.True(code == 0, text);
        (code, text) = await Cli("fetch", _zmq.Endpoint, given);
        Assert.Equal(1, code);
        Assert.Contains("was released", text);

        (code, text) = await Cli("fetch", _zmq.Endpoint, "{\"a\": 1}");
        Assert.Equal(2, code);
        Assert.Contains("That is not a pointer", text);
        (code, text) = await Cli("call", _zmq.Endpoint, "ptr.matrix", "2", "2", "--pointer", "--ttl", "-1");
        Assert.Equal(2, code);
        Assert.Contains("--ttl is a number of seconds greater than zero", text);
    }

    [Fact]
    public async Task JobsSubmitQueuesACallThatRunsOnAndShowSaysHowItEnded()
    {
        // submit prints the id alone on stdout, for $(...); the hint goes to stderr.
        (int code, string stdout, string stderr) = await Repository.RunWithStreamsAsync("dotnet", AppContext.BaseDirectory,
            [Path.Combine(AppContext.BaseDirectory, "IpyRpc.Cli.dll"), "jobs", "submit", _zmq.Endpoint, "work.slow", "tag=cli", "steps=2", "pauseMs=10"]);
        Assert.True(code == 0, stdout + stderr);
        string id = stdout.Trim();
        Assert.Contains($"jobs attach {_zmq.Endpoint} {id}", stderr);

        await using IpyRpcClient client = await IpyRpcZeroMqClient.ConnectAsync(_zmq.Endpoint, new IpyRpcClientOptions { Output = (_, _) => { } });
        IpyRpcJob<string> job = await client.AttachAsync<string>(id);
        Assert.StartsWith("cli done by", await job.WaitAsync(TimeSpan.FromSeconds(10))); // it ran, with the arguments given by name

        (code, string text) = await Cli("jobs", "show", _zmq.Endpoint, id);
        Assert.True(code == 0, text);
        Assert.Contains($"{id} work.slow succeeded", text);
        Assert.Contains("completed", text);
        Assert.Contains("cli step 2 on", text);

        // A job that fails: show names its error; --json carries it for scripts.
        (code, text) = await Cli("jobs", "submit", _zmq.Endpoint, "boom.now", "--json");
        Assert.True(code == 0, text);
        string failing = JsonDocument.Parse(text).RootElement.GetProperty("id").GetString()!;
        await Assert.ThrowsAsync<RemoteException>(async () => await (await client.AttachAsync<object?>(failing)).WaitAsync(TimeSpan.FromSeconds(10)));
        (code, text) = await Cli("jobs", "show", _zmq.Endpoint, failing);
        Assert.True(code == 0, text);
        Assert.Contains("failed", text);
        Assert.Contains("kaboom", text);
        (code, text) = await Cli("jobs", "show", _zmq.Endpoint, failing, "--json");
        Assert.True(code == 0, text);
        JsonElement error = JsonDocument.Parse(text).RootElement.GetProperty("error");
        Assert.Equal("remote_exception", error.GetProperty("code").GetString());
        Assert.Contains("kaboom", error.GetProperty("message").GetString());

        // A stream's job: attach prints its items, one JSON value a line, or all at its end with --json.
        (code, text) = await Cli("jobs", "submit", _zmq.Endpoint, "work.stream", "3", "--json");
        Assert.True(code == 0, text);
        string streamJob = JsonDocument.Parse(text).RootElement.GetProperty("id").GetString()!;
        (code, text) = await Cli("jobs", "attach", _zmq.Endpoint, streamJob);
        Assert.True(code == 0, text);
        Assert.Equal(["1", "2", "3"], text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        (code, text) = await Cli("jobs", "attach", _zmq.Endpoint, streamJob, "--json");
        Assert.True(code == 0, text);
        Assert.Equal([1, 2, 3], JsonDocument.Parse(text).RootElement.GetProperty("items").EnumerateArray().Select(i => i.GetInt32()));

        // A misspelt state is named.
        (code, text) = await Cli("jobs", "list", _zmq.Endpoint, "--state", "done");
        Assert.Equal(2, code);
        Assert.Contains("not 'done'", text);
    }
}
