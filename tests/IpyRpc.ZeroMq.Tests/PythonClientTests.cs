using System.Text.RegularExpressions;
using IpyRpc;

namespace IpyRpc.ZeroMq.Tests;

/// <summary>samples/python/ipyrpc_client.py, written from docs/PROTOCOL.md with pyzmq and msgpack, against the C# server.</summary>
public sealed class PythonClientTests
{
    [Fact]
    public async Task ThePythonClientListsCallsPrintsLiveOutputAndRaisesRemoteErrors()
    {
        await using IpyRpcServer server = Quickstart.Demo.CreateServer();
        await using IpyRpcZeroMqServer host = IpyRpcZeroMqServer.Start(server, "tcp://127.0.0.1:*");

        (int code, string stdout, string stderr) = await PythonPeer.RunAsync("ipyrpc_client.py", host.Endpoint);
        Assert.True(code == 0, stdout + stderr);

        Assert.Contains("connected to ipyrpc-dotnet/1", stdout);
        Assert.Contains("add(a: int, b: int) -> int", stdout);
        Assert.Contains("Adds two integers.", stdout);
        Assert.Contains("a (int): The first addend.", stdout);
        Assert.Contains("add(2, 3) = 5", stdout);
        Assert.Contains("add(a=40, b=2) = 42", stdout);
        Assert.Contains("accepts JSON arguments only", stdout); // mean_json's help: its descriptor says so
        Assert.Contains("mean_json([1, 2, 6]) = 3", stdout); // and the client sent it JSON, which it alone accepts
        Assert.Contains("mean_json(numpy) = 3", stdout);
        Assert.Contains("print_lines returned 3", stdout);
        Assert.Contains("caught RemoteError: type=System.InvalidOperationException message=raised on the server", stdout);

        // Live: the lines were stamped as they arrived, about 300 ms apart, not all at the end.
        int[] stamps = [.. Regex.Matches(stdout, @"\[stdout \+(\d+) ms\] line (\d)").Select(m => int.Parse(m.Groups[1].Value))];
        Assert.Equal(3, stamps.Length);
        Assert.True(stamps[2] - stamps[0] >= 400, $"lines arrived at {string.Join(", ", stamps)} ms");
    }

    [Fact]
    public async Task ThePythonClientCarriesOnAcrossAServerRestartProvingItsSecretAgain()
    {
        string endpoint = $"tcp://127.0.0.1:{LoopbackPorts.Free()}";
        string tag = Guid.NewGuid().ToString("N");
        async Task<(IpyRpcServer, IpyRpcZeroMqServer)> StartAsync()
        {
            var server = new IpyRpcServer(new IpyRpcServerOptions { SharedSecret = "restart" });
            server.Register(typeof(IpyRpc.Tests.BothWays.RestartFunctions));
            return (server, IpyRpcZeroMqServer.Start(server, endpoint));
        }

        (IpyRpcServer first, IpyRpcZeroMqServer firstHost) = await StartAsync();
        Task<(int Code, string Stdout, string Stderr)> run = PythonPeer.RunAsync("restart_client.py", endpoint, "restart", tag);
        DateTime until = DateTime.UtcNow.AddSeconds(30);
        while (IpyRpc.Tests.BothWays.RestartFunctions.Runs(tag) == 0 && !run.IsCompleted && DateTime.UtcNow < until) await Task.Delay(20);
        await firstHost.DisposeAsync(); // tells the client: server_stopping
        await first.DisposeAsync();
        (IpyRpcServer second, IpyRpcZeroMqServer secondHost) = await StartAsync();
        try
        {
            (int code, string stdout, string stderr) = await run;
            Assert.True(code == 0, stdout + stderr);
            Assert.Contains("before: 2", stdout);
            Assert.Contains("closed: server_stopping", stdout);
            Assert.Contains("after: 11", stdout);
            Assert.Equal(2, IpyRpc.Tests.BothWays.RestartFunctions.Runs(tag)); // the second server requires the secret: proven again
        }
        finally
        {
            await secondHost.DisposeAsync();
            await second.DisposeAsync();
        }
    }

    [Fact]
    public async Task ThePythonClientHearsWhatWasPublishedWhileItsConnectionWasDownAndIsToldWhatWasNotKept()
    {
        // One server, kept up with its history (256 events); its listener stops and starts, and events are published
        // while the client is away. The client's calls tell the test where it is.
        string endpoint = $"tcp://127.0.0.1:{LoopbackPorts.Free()}";
        string tag = Guid.NewGuid().ToString("N");
        await using var server = new IpyRpcServer(new IpyRpcServerOptions { SharedSecret = "resume-secret" });
        server.Register(typeof(IpyRpc.Tests.BothWays.RestartFunctions)).Register(typeof(IpyRpc.Tests.BothWays.RestartEvents));
        IpyRpcZeroMqServer host = IpyRpcZeroMqServer.Start(server, endpoint);
        Task<(int Code, string Stdout, string Stderr)> run = PythonPeer.RunAsync("events_resume.py", endpoint, "resume-secret", tag);
        async Task StepAsync(int n)
        {
            DateTime until = DateTime.UtcNow.AddSeconds(30);
            while (IpyRpc.Tests.BothWays.RestartFunctions.Runs(tag) < n && !run.IsCompleted && DateTime.UtcNow < until) await Task.Delay(10);
            Assert.True(IpyRpc.Tests.BothWays.RestartFunctions.Runs(tag) >= n, $"the Python client did not reach step {n}: " + (run.IsCompleted ? (await run).Stdout + (await run).Stderr : "(running)"));
        }

        void Publish(int from, int to)
        {
            for (int i = from; i < to; i++) server.Publish(IpyRpc.Tests.BothWays.RestartEvents.Ticked, i);
        }

        try
        {
            await StepAsync(1);
            Publish(0, 5);
            await host.DisposeAsync(); // the client is told: server_stopping
            Publish(5, 15);
            host = IpyRpcZeroMqServer.Start(server, endpoint);
            await StepAsync(2);
            Publish(15, 20);

            await StepAsync(3);
            await host.DisposeAsync();
            Publish(20, 320);
            host = IpyRpcZeroMqServer.Start(server, endpoint);
            await StepAsync(4);
            await StepAsync(5);
            Publish(320, 325); // before or after a later client subscribes with the id the first kept: it hears them

            (int code, string stdout, string stderr) = await run;
            Assert.True(code == 0, stdout + stderr);
            Assert.Contains("matched: ['restart.ticked']", stdout);
            Assert.Contains("closed: server_stopping", stdout);
            Assert.Contains("events: " + string.Join(" ", Enumerable.Range(0, 20)), stdout);
            Assert.Contains("missed: [] 0", stdout);
            Assert.Contains("after the gap: 256 64 319", stdout); // the latest 256 of the 300
            Assert.Contains("gap: ['expired'] | restart.*: The server keeps its last 256 events", stdout);
            Assert.Contains("bad resume: bad_message", stdout);
            Assert.Contains("foreign id: unknown_id", stdout);
            Assert.Contains("later: [320, 321, 322, 323, 324] 0", stdout);
        }
        finally
        {
            await host.DisposeAsync();
        }
    }

    [Fact]
    public async Task ThePythonClientMakesACallTheServerNeverReadAgainAndSaysWhenOneMayHaveRun()
    {
        (int code, string stdout, string stderr) = await PythonPeer.RunAsync("closing_server.py");
        Assert.True(code == 0, stdout + stderr);
        Assert.Contains("made again: 42", stdout);
        Assert.Contains("second: ConnectionClosed not_delivered=False reason=server_stopping", stdout);
        Assert.Contains("after: 100", stdout);
        Assert.Contains("stream made again: [0, 1, 2]", stdout); // a stream the server never read, as a call
        Assert.Contains("stream cut after [0]: ConnectionClosed not_delivered=False", stdout);
        Assert.Contains("count calls seen: 3", stdout);
        Assert.Contains("hellos: 5", stdout);      // at first, and after each close
        Assert.Contains("inc calls seen: 4", stdout); // the unread one twice
    }

    [Fact]
    public async Task ThePythonClientSubmitsLeavesAttachesFromAnotherConnectionAndCancels()
    {
        await using IpyRpcServer server = Quickstart.Demo.CreateServer();
        await using IpyRpcZeroMqServer host = IpyRpcZeroMqServer.Start(server, "tcp://127.0.0.1:*");

        (int code, string stdout, string stderr) = await PythonPeer.RunAsync("ipyrpc_client.py", host.Endpoint, "--jobs");
        Assert.True(code == 0, stdout + stderr);

        string id = Regex.Match(stdout, @"submitted print_lines as job (\S+): (queued|running)").Groups[1].Value;
        Assert.NotEmpty(id);
        Assert.Contains("listed: True", stdout);
        Assert.Matches($@"attached to {Regex.Escape(id)} from a new connection: (queued|running|succeeded)", stdout);
        Assert.Contains("result: 3", stdout);
        Assert.Contains("output received: line 1 | line 2 | line 3 |", stdout); // replayed and live, once each
        Assert.Contains("state now: succeeded", stdout);
        Assert.Contains("cancelled: True", stdout);
        Assert.Contains("waiting raised RemoteError: code=cancelled", stdout);
        Assert.Contains("final state: cancelled", stdout);
        Assert.Contains("unknown job: code=not_found", stdout);
    }

    [Fact]
    public async Task ThePythonClientProvesTheSharedSecretAndAWrongOneFailsLoudly()
    {
        await using var server = new IpyRpcServer(new IpyRpcServerOptions { SharedSecret = "python and dotnet" });
        server.Register(typeof(ZmqWho));
        await using IpyRpcZeroMqServer host = IpyRpcZeroMqServer.Start(server, "tcp://127.0.0.1:*");

        (int code, string stdout, string stderr) = await PythonPeer.RunAsync("ipyrpc_client.py", host.Endpoint, "--secret-check", "python and dotnet");
        Assert.True(code == 0, stdout + stderr);
        Assert.Contains("who: python over zeromq from loopback", stdout);
        Assert.Contains("wrong secret: unauthorized The server's proof does not match this shared secret", stdout); // caught before it proves anything
        Assert.Contains("no secret: unauthorized The server requires a shared secret", stdout);
    }

    [Fact]
    public async Task ThePythonClientAnswersCallsBackReceivesEventsConsumesStreamsAndHearsProgress()
    {
        // A job's record of 16 KiB holds a stream job of 300 items, not one of 20,000.
        var queue = new IpyRpc.Jobs.InMemoryJobQueue(new IpyRpc.Jobs.InMemoryJobQueueOptions { Retention = new IpyRpc.Jobs.JobRetention { MaxOutputBytesPerJob = 16 * 1024 } });
        await using var server = new IpyRpcServer(new IpyRpcServerOptions { Queue = queue });
        server.Register(typeof(IpyRpc.Tests.BothWays.ServerSide)).Register(typeof(IpyRpc.Tests.BothWays.BothWaysEvents));
        await using IpyRpcZeroMqServer host = IpyRpcZeroMqServer.Start(server, "tcp://127.0.0.1:*");

        Task<(int Code, string Stdout, string Stderr)> run = PythonPeer.RunAsync("ipyrpc_client.py", host.Endpoint, "--both-ways");
        // Tick 0 until the Python client has subscribed (Publish counts the subscribers it reached), then 1..9.
        DateTime until = DateTime.UtcNow.AddSeconds(30);
        while (server.Publish(IpyRpc.Tests.BothWays.BothWaysEvents.Ticked, new IpyRpc.Tests.BothWays.Tick(0, "first")) == 0 && !run.IsCompleted && DateTime.UtcNow < until)
        {
            await Task.Delay(20);
        }

        for (int n = 1; n <= 9; n++) server.Publish(IpyRpc.Tests.BothWays.BothWaysEvents.Ticked, new IpyRpc.Tests.BothWays.Tick(n, "next"));
        (int code, string stdout, string stderr) = await run;
        Assert.True(code == 0, stdout + stderr);
        Assert.Contains("asked back: python says hi to the server | printed: pondering the server", stdout);
        Assert.Contains("matched: ['bw.ticked']", stdout);
        Assert.Contains("events: 0 1 2 3 4 5 6 7 8 9", stdout);
        Assert.Contains("stream: 5000 items, in order: True", stdout);
        Assert.Contains("stream as a function: generator [0, 1, 2]", stdout);
        Assert.Contains("stream job: True then 300", stdout);
        Assert.Contains("stream job from another connection: True", stdout);
        Assert.Contains("failed stream job: [0, 1, 2, 3] System.InvalidOperationException failed after 4 items", stdout);
        Assert.Matches(@"long stream job: not_found 20000 items were made, of which the first \d+ are no longer recorded", stdout);
        Assert.Contains("progress: 1 2 3 then done", stdout);
        Assert.Contains("job progress: done [1, 2, 3]", stdout);
        Assert.Contains("stopped early; still serving: done", stdout);
        // One connection, requests that overlap: a stream's items are kept for it while calls are made between them,
        // and threads sharing the client each get their own answers (before, both hung until the timeout).
        Assert.Contains("calls inside a stream: 600 True True", stdout);
        Assert.Contains("threads: all answered | streams whole: [True, True]", stdout);
        // Exports run outside the socket's lock: while one waits, another thread's call is answered (before, it waited
        // for the export, which gave up after 10 s "and alone").
        Assert.Contains("a slow export: slow, and not alone | printed: waiting for the others ['done']", stdout);
    }

    [Fact]
    public async Task ThePythonClientSendsNestedListsAndReadsNdArrays()
    {
        await using var server = new IpyRpcServer();
        server.Register(typeof(IpyRpc.Tests.MatrixFunctions));
        await using IpyRpcZeroMqServer host = IpyRpcZeroMqServer.Start(server, "tcp://127.0.0.1:*");
        (int code, string stdout, string stderr) = await PythonPeer.RunAsync("ipyrpc_client.py", host.Endpoint, "--ndarray");
        Assert.True(code == 0, stdout + stderr);
        Assert.Contains("transpose: [[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]]", stdout);
        Assert.Contains("describe: 2x2x2 sum 36", stdout);
        Assert.Contains("ragged: invalid_arguments", stdout);
        Assert.Contains("histogram: {15: 4, 9: 2}", stdout); // integer keys as integers, both ways
        Assert.Contains("wide: True -10", stdout); // 2**100 goes as its text and comes back an int
        Assert.Contains("days: [datetime.date(2026, 12, 30), datetime.date(2026, 12, 31), datetime.date(2027, 1, 1)]", stdout); // a stream's items too
        // Results in Python's types where the function's schema names them: a DateTime is a datetime in UTC.
        Assert.Contains("when: ['2026-12-31 23:45:00.500 2026-12-07T18:30:05+01:00 90 6f9619ff 12.50', datetime.date(2027, 1, 1), datetime.time(0, 15, 0, 500000), "
            + "datetime.datetime(2026, 12, 7, 17, 30, 5, tzinfo=datetime.timezone.utc), Decimal('25.00'), datetime.timedelta(days=1, seconds=5400), "
            + "{datetime.date(2026, 12, 31): Decimal('12.50')}]", stdout);
        Assert.Contains("sum_all: (*values: 'double[]') -> 'double' 6.5 0.0", stdout);
    }

    [Fact]
    public async Task APeerThatSendsMoreCallsThanItsShareHasThemWaitAndItsTimeoutAnsweredWhileTheyDo()
    {
        // A raw peer written from PROTOCOL.md (python/crowd.py): one place on its connection, 52 calls sent at once.
        await using var server = new IpyRpcServer(new IpyRpcServerOptions { MaxCallsInFlightPerConnection = 1 });
        server.Register(typeof(ZmqFunctions));
        await using IpyRpcZeroMqServer host = IpyRpcZeroMqServer.Start(server, "tcp://127.0.0.1:*");
        string gate = Gates.NewName("crowd");
        (int code, string stdout, string stderr) = await PythonPeer.RunAsync("crowd.py", host.Endpoint, gate);
        Assert.True(code == 0, stdout + stderr);

        // The call with a timeout is answered when it passes, while the place is still held; it never ran.
        Assert.Matches(@"first 3 error timeout \d+ ms \| add did not start within its timeout of 300 ms", stdout);
        Assert.False(Gates.Get(gate).Task.IsCompleted);
        Assert.Contains("held error cancelled", stdout);
        Assert.Contains("all answered True", stdout); // started in order (SharedSecretTests); replies may overtake each other
        Assert.Contains("right True", stdout);
    }

    [Fact]
    public async Task ThePythonClientEchoesLargePayloadsFromSeveralConnectionsIntact()
    {
        // An independent peer: its frames come from pyzmq, and the server's pooled arrays must still hold each call's bytes alone.
        await using ZmqServer s = ZmqServer.Start();
        (int code, string stdout, string stderr) = await PythonPeer.RunAsync("ipyrpc_client.py", s.Endpoint, "--large");
        Assert.True(code == 0, stdout + stderr);
        Assert.Contains("large echoes: all intact", stdout);
    }

    [Fact]
    public async Task ThePythonClientInstallsWithPipOfflineAndShowsRemoteDocsCompletionLiveOutputAndTracebacks()
    {
        await using IpyRpcServer server = Quickstart.Demo.CreateServer();
        await using IpyRpcZeroMqServer host = IpyRpcZeroMqServer.Start(server, "tcp://127.0.0.1:*");
        string work = Directory.CreateTempSubdirectory("ipyrpc-pip-").FullName;
        try
        {
            // pip builds from a copy (it writes build files beside the sources), offline, into a folder of its own.
            string source = Path.Combine(work, "src");
            Directory.CreateDirectory(source);
            foreach (string f in new[] { "ipyrpc_client.py", "pyproject.toml" }) File.Copy(Path.Combine(AppContext.BaseDirectory, "python", f), Path.Combine(source, f));
            string target = Path.Combine(work, "site");
            (int pipCode, string pipOut) = await RunPythonAsync(null, "-m", "pip", "install", "--no-index", "--no-build-isolation", "--no-deps", "--target", target, source);
            Assert.True(pipCode == 0, pipOut);

            (int code, string output) = await RunPythonAsync(target, "-m", "ipyrpc_client", host.Endpoint, "--interactive-check");
            Assert.True(code == 0, output);
            Assert.Contains("signature: (a: 'int', b: 'int') -> 'int'", output);
            Assert.Contains("dir has add: True | has call: True", output);
            Assert.Contains("doc: Adds two integers.", output);
            Assert.Contains("a : int", output);                     // help() shows the parameters' docs
            Assert.Contains("The first addend.", output);
            Assert.Contains("[live stdout] line 1", output);        // remote output printed as it came
            Assert.Contains("print_lines returned 2", output);
            Assert.Contains("RemoteError: fail: [System.InvalidOperationException] from python", output);
            Assert.Contains("Remote traceback (System.InvalidOperationException):", output);
            Assert.Contains("at Quickstart.Demo.Fail", output);      // the remote stack, under the local one
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private static async Task<(int Code, string Output)> RunPythonAsync(string? pythonPath, params string[] args)
    {
        var start = new System.Diagnostics.ProcessStartInfo(PythonPeer.Interpreter) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in args) start.ArgumentList.Add(a);
        if (pythonPath is not null) start.Environment["PYTHONPATH"] = pythonPath;
        start.Environment["PIP_DISABLE_PIP_VERSION_CHECK"] = "1";
        using System.Diagnostics.Process process = System.Diagnostics.Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(120));
        return (process.ExitCode, await stdout + await stderr);
    }
}
