using System.CommandLine;
using System.Diagnostics;
using IpyRpc;
using IpyRpc.Cli;
using IpyRpc.Http;
using IpyRpc.Jobs;
using IpyRpc.Protocol;
using IpyRpc.ZeroMq;
using Spectre.Console;

// ipyrpc ls URL | help URL NAME | schema URL [-o FILE] | call URL NAME [ARGS...] | ping URL | jobs (submit|list|show|attach|cancel) URL ... | fetch|release URL POINTER | listen URL [PATTERN...]
// URL: http(s)://host:port (WebSocket) or tcp://host:port, ipc://path (ZeroMQ). Exit codes: see ExitCodes.
var url = new Argument<string>("url") { Description = "The server: http://host:port, tcp://host:port or ipc:///path." };
var name = new Argument<string>("name") { Description = "The function's exported name." };
var callArgs = new Argument<string[]>("args") { Description = "Arguments: JSON values (2, \"text\", [1,2]) by position, or name=value by name.", Arity = ArgumentArity.ZeroOrMore };
var json = new Option<bool>("--json") { Description = "Print JSON for scripts instead of text." };
var secret = new Option<string?>("--secret") { Description = "The server's shared secret (default: the IPYRPC_SECRET environment variable)." };
var timeout = new Option<double?>("--timeout") { Description = "Seconds the call may take." };
var state = new Option<string?>("--state") { Description = "Only jobs in this state (queued, running, succeeded, failed, cancelled, timed_out)." };
var jobId = new Argument<string>("job") { Description = "The job's id." };

var ls = new Command("ls", "List the server's functions with their signatures and summaries.") { url, json, secret };
ls.SetAction((r, ct) => Run(r, ct, async (client, console) =>
{
    if (r.GetValue(json))
    {
        console.Json(client.Functions.Select(f => (object?)Arguments.Map(("name", f.Name), ("signature", f.Signature), ("summary", f.Summary))).ToList());
        return ExitCodes.Ok;
    }

    var table = new Table().AddColumn("function").AddColumn("signature").AddColumn("summary");
    foreach (FunctionDescriptor f in client.Functions) table.AddRow(Markup.Escape(f.Name), Markup.Escape(f.Signature), Markup.Escape(f.Summary ?? ""));
    AnsiConsole.Write(table);
    if (client.Events.Count > 0)
    {
        // What `ipyrpc listen` hears.
        var events = new Table().AddColumn("event").AddColumn("payload").AddColumn("summary");
        foreach (EventDescriptor e in client.Events) events.AddRow(Markup.Escape(e.Name), Markup.Escape(e.PayloadType), Markup.Escape(e.Summary ?? ""));
        AnsiConsole.Write(events);
    }

    await Task.CompletedTask;
    return ExitCodes.Ok;
}));

var help = new Command("help", "Show a function's signature and docs.") { url, name, secret };
help.SetAction((r, ct) => Run(r, ct, async (client, console) =>
{
    string fn = r.GetValue(name)!;
    if (client.Functions.All(f => f.Name != fn))
    {
        console.Error($"The server has no function named '{fn}'. List them with: ipyrpc ls {r.GetValue(url)}");
        return ExitCodes.Usage;
    }

    Console.Write(client.Help(fn));
    await Task.CompletedTask;
    return ExitCodes.Ok;
}));

var output = new Option<string?>("--output", "-o") { Description = "The file to write (default: stdout). Name it NAME.ipyrpc.json: the generator makes NAMEClient from it." };
var title = new Option<string?>("--title") { Description = "The document's info.title (default: the server's agent)." };
var schema = new Command("schema", "Write the server's schema (an OpenRPC document with IpyRpc's annotations): add it to a project as an AdditionalFile to generate a typed client.") { url, output, title, secret };
schema.SetAction((r, ct) => Run(r, ct, async (client, console) =>
{
    byte[] document = OpenRpcDocument.Write(client.Functions, r.GetValue(title) ?? client.ServerAgent ?? "IpyRpc server", "1.0.0", indented: true, client.Events);
    if (r.GetValue(output) is { } path)
    {
        try
        {
            await File.WriteAllBytesAsync(path, [.. document, (byte)'\n'], ct);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            console.Error($"Could not write {path}: {e.Message}");
            return ExitCodes.Usage;
        }

        Console.Error.WriteLine($"Wrote {client.Functions.Count} functions{(client.Events.Count > 0 ? $" and {client.Events.Count} events" : "")} to {path}");
    }
    else
    {
        using Stream stdout = Console.OpenStandardOutput();
        await stdout.WriteAsync(document, ct);
        await stdout.WriteAsync("\n"u8.ToArray(), ct);
    }

    return ExitCodes.Ok;
}));

var asPointer = new Option<bool>("--pointer") { Description = "Keep the result where it is computed and print a pointer to it (for fetch, release, or another call)." };
var ttl = new Option<double?>("--ttl") { Description = "With --pointer: seconds the holder keeps the value (default: as the server is configured)." };
var call = new Command("call", "Call a function; its output prints as it is written.") { url, name, callArgs, json, timeout, asPointer, ttl, secret };
call.SetAction((r, ct) => Run(r, ct, async (client, console) =>
{
    string fn = r.GetValue(name)!;
    string[] given = r.GetValue(callArgs) ?? [];
    if (!TimeoutGiven(r, console, out TimeSpan? limit)) return ExitCodes.Usage;
    if (r.GetValue(ttl) is double keep && !(keep > 0))
    {
        console.Error($"--ttl is a number of seconds greater than zero, not {keep}.");
        return ExitCodes.Usage;
    }

    var options = new CallOptions
    {
        Timeout = limit,
        Output = (stream, text) => console.Output(stream, text),
        ReturnPointer = r.GetValue(asPointer) ? true : null,
        PointerTimeToLive = r.GetValue(ttl) is double seconds ? TimeSpan.FromSeconds(seconds) : null,
    };
    var watch = Stopwatch.StartNew();
    bool named = given.Any(a => Arguments.IsNamed(a));
    if (client.Functions.FirstOrDefault(f => f.Name == fn) is { IsStream: true })
    {
        // A stream's items print as they come, one JSON value a line (with --json, one document once it has ended).
        IAsyncEnumerable<object?> items = named
            ? client.StreamNamedAsync<object?>(fn, Arguments.Named(given), options, ct)
            : client.StreamAsync<object?>(fn, Arguments.Positional(given), options, ct);
        var collected = new List<object?>();
        await foreach (object? item in items)
        {
            if (r.GetValue(json)) collected.Add(item);
            else Console.WriteLine(Arguments.ToJson(item, indented: false));
        }

        if (r.GetValue(json)) console.Json(Arguments.Map(("items", collected), ("seconds", Math.Round(watch.Elapsed.TotalSeconds, 3))));
        return ExitCodes.Ok;
    }

    // Its progress reports (a function that takes an IProgress<T>) go to stderr as they come, one JSON value a line.
    IpyRpcArguments arguments = Arguments.For(given);
    arguments.Progress(new Reports(report => console.Output(OutputStream.Stderr, $"progress: {Arguments.ToJson(report, indented: false)}\n")), IpyRpc.Formatting.Formatters.Object);
    Task<object?> running = client.InvokeAsync(fn, arguments, IpyRpc.Formatting.Formatters.Object, options, ct);
    object? result = await console.WhileWaiting(running, watch, fn);
    if (r.GetValue(json)) console.Json(Arguments.Map(("result", result), ("seconds", Math.Round(watch.Elapsed.TotalSeconds, 3))));
    else Console.WriteLine(Arguments.ToJson(result));
    return ExitCodes.Ok;
}));

var ping = new Command("ping", "Check that the server answers, and how fast.") { url, json, secret };
ping.SetAction((r, ct) => Run(r, ct, async (client, console) =>
{
    TimeSpan rtt = await client.PingAsync(ct);
    if (r.GetValue(json)) console.Json(Arguments.Map(("server", client.ServerAgent), ("milliseconds", Math.Round(rtt.TotalMilliseconds, 3))));
    else Console.WriteLine($"{client.ServerAgent} answered in {rtt.TotalMilliseconds:0.###} ms");
    return ExitCodes.Ok;
}));

var pointerText = new Argument<string>("pointer") { Description = "The pointer a call returned, as JSON (\"-\" reads it from stdin)." };
var start = new Option<long?>("--start") { Description = "The first row (negative counts from the end)." };
var stop = new Option<long?>("--stop") { Description = "The row to stop before." };
var fetch = new Command("fetch", "Print the value a pointer points to, or some of its rows, fetched straight from its holder.") { url, pointerText, start, stop, secret };
fetch.SetAction((r, ct) => Run(r, ct, async (client, console) =>
{
    if (!ReadPointer(r.GetValue(pointerText)!, console, out RemotePointer? pointer)) return ExitCodes.Usage;
    object? value = await client.FetchAsync(pointer!, r.GetValue(start), r.GetValue(stop), IpyRpc.Formatting.Formatters.Object, ct);
    Console.WriteLine(Arguments.ToJson(value));
    return ExitCodes.Ok;
}));
var release = new Command("release", "Drop the value a pointer points to at its holder.") { url, pointerText, secret };
release.SetAction((r, ct) => Run(r, ct, async (client, console) =>
{
    if (!ReadPointer(r.GetValue(pointerText)!, console, out RemotePointer? pointer)) return ExitCodes.Usage;
    await client.ReleaseAsync(pointer!, ct);
    Console.WriteLine("released");
    return ExitCodes.Ok;
}));

var patterns = new Argument<string[]>("patterns") { Description = "Event names or globs (chat.said, chat.*); default: every event the server publishes.", Arity = ArgumentArity.ZeroOrMore };
var count = new Option<int?>("--count") { Description = "Stop after this many events." };
var after = new Option<string?>("--after") { Description = "Start after this event id (an \"id\" --json printed, or an event stream's id:): first the events published since that the server still keeps." };
var listen = new Command("listen", "Print the server's events as they come, one a line, until Ctrl+C (or --count of them, or --timeout seconds).") { url, patterns, count, after, json, timeout, secret };
listen.SetAction((r, ct) => Run(r, ct, async (client, console) =>
{
    if (!TimeoutGiven(r, console, out TimeSpan? limit)) return ExitCodes.Usage;
    int? wanted = r.GetValue(count);
    if (wanted is <= 0)
    {
        console.Error($"--count is a number of events greater than zero, not {wanted}.");
        return ExitCodes.Usage;
    }

    // Each event once, in the order they came, however many of the patterns it matches.
    var heard = System.Threading.Channels.Channel.CreateUnbounded<ReceivedEvent>(new() { SingleReader = true });
    var subscriptions = new List<IpyRpcSubscription>();
    bool leaving = false;
    // A connection that drops, or a server that restarts, is dialled again, and each subscription goes on after the last
    // event it heard (saying on stderr what the server could not replay); one the server ends for good ends the command.
    client.Disconnected += info =>
    {
        if (Volatile.Read(ref leaving)) return;
        if (info.Reason is DisconnectReason.ConnectionLost or DisconnectReason.HeartbeatLost or DisconnectReason.ServerStopping or DisconnectReason.Closed) Console.Error.WriteLine($"the connection ended ({info.Message}); connecting again");
        else heard.Writer.TryComplete(new IpyRpcConnectionException($"The connection ended while listening: {info.Message}"));
    };
    client.Reconnected += () => Console.Error.WriteLine("connected again; listening on");
    try
    {
        foreach (string pattern in r.GetValue(patterns) is { Length: > 0 } given ? given : ["*"])
        {
            IpyRpcSubscription[] earlier = [.. subscriptions];
            subscriptions.Add(await client.SubscribeAsync(pattern, e =>
            {
                if (!earlier.Any(s => s.Events.Contains(e.Name))) heard.Writer.TryWrite(e);
            }, new SubscribeOptions { ResumeAfter = r.GetValue(after), Gap = (_, gap) => Console.Error.WriteLine($"{pattern}: {gap.Message}") }, ct));
        }

        string[] names = [.. subscriptions.SelectMany(s => s.Events).Distinct().Order(StringComparer.Ordinal)];
        Console.Error.WriteLine($"listening for {string.Join(", ", names)}{(limit is { } l ? $" for {l.TotalSeconds:0.###} s" : "")}; Ctrl+C to stop");
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        if (limit is { } span) stop.CancelAfter(span);
        int seen = 0;
        try
        {
            while (seen != wanted)
            {
                if (!await heard.Reader.WaitToReadAsync(stop.Token)) await heard.Reader.Completion; // the connection ended: says why
                ReceivedEvent e = await heard.Reader.ReadAsync(stop.Token);
                seen++;
                Console.WriteLine(r.GetValue(json)
                    ? Arguments.ToJson(e.Id is null ? Arguments.Map(("event", e.Name), ("payload", e.Payload)) : Arguments.Map(("event", e.Name), ("payload", e.Payload), ("id", e.Id)), indented: false)
                    : $"{e.Name} {Arguments.ToJson(e.Payload, indented: false)}");
            }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            // --timeout ended the listening: only a --count that did not come is a failure.
            if (wanted is { } n)
            {
                console.Failure(ExitCodes.Timeout, "timeout", new TimeoutException($"{seen} of the {n} events asked for came within {limit!.Value.TotalSeconds:0.###} s."));
                return ExitCodes.Timeout;
            }
        }

        long dropped = client.EventsDroppedByServer + subscriptions.Sum(s => s.Dropped);
        if (dropped > 0) console.Error($"{dropped} events were dropped before they were printed (this command read more slowly than they came).");
        return ExitCodes.Ok;
    }
    finally
    {
        Volatile.Write(ref leaving, true);
        foreach (IpyRpcSubscription s in subscriptions) await s.DisposeAsync();
    }
}, reconnect: true));

var jobsSubmit = new Command("submit", "Queue a call as a job that runs on without this command: prints the job's id (follow it with jobs attach).") { url, name, callArgs, json, timeout, secret };
jobsSubmit.SetAction((r, ct) => Run(r, ct, async (client, console) =>
{
    string fn = r.GetValue(name)!;
    if (!TimeoutGiven(r, console, out TimeSpan? limit)) return ExitCodes.Usage;

    // The job's deadline is --timeout from now; its output is recorded, not printed here.
    IpyRpcJob<object?> job = await client.SubmitAsync(fn, Arguments.For(r.GetValue(callArgs) ?? []), IpyRpc.Formatting.Formatters.Object, new CallOptions { Timeout = limit, Output = (_, _) => { } }, ct);
    if (r.GetValue(json))
    {
        console.Json(Arguments.Map(("id", job.Id), ("function", fn)));
    }
    else
    {
        Console.WriteLine(job.Id);
        Console.Error.WriteLine($"queued {fn} as job {job.Id}; follow it with: ipyrpc jobs attach {r.GetValue(url)} {job.Id}");
    }

    return ExitCodes.Ok;
}));

var jobsList = new Command("list", "The jobs the server remembers, newest first.") { url, state, json, secret };
jobsList.SetAction((r, ct) => Run(r, ct, async (client, console) =>
{
    JobState? wanted = null;
    if (r.GetValue(state) is { } text && (wanted = JobStates.Parse(text)) is null)
    {
        console.Error($"--state is one of queued, running, succeeded, failed, cancelled, timed_out; not '{text}'.");
        return ExitCodes.Usage;
    }

    IReadOnlyList<JobInfo> jobs = await client.ListJobsAsync(new JobQuery { State = wanted }, ct);
    if (r.GetValue(json))
    {
        console.Json(jobs.Select(j => (object?)JobViews.Summary(j, withOutput: false)).ToList());
        return ExitCodes.Ok;
    }

    var table = new Table().AddColumn("job").AddColumn("function").AddColumn("state").AddColumn("created").AddColumn("took");
    foreach (JobInfo j in jobs) table.AddRow(Markup.Escape(j.Id), Markup.Escape(j.Function), j.State.WireName(), j.CreatedAt.ToString("u"), JobViews.Took(j) is { } took ? $"{took:0.###} s" : "");
    AnsiConsole.Write(table);
    return ExitCodes.Ok;
}));
var jobsShow = new Command("show", "One job's state, times, error and output so far.") { url, jobId, json, secret };
jobsShow.SetAction((r, ct) => Run(r, ct, async (client, console) =>
{
    JobInfo j = await client.GetJobAsync(r.GetValue(jobId)!, withOutput: true, ct);
    if (r.GetValue(json)) console.Json(JobViews.Summary(j, withOutput: true));
    else Console.Write(JobViews.Describe(j, r.GetValue(url)!));
    return ExitCodes.Ok;
}));
var jobsAttach = new Command("attach", "Follow a job: its output so far, then live, then its result (a stream's items, one a line).") { url, jobId, json, secret };
jobsAttach.SetAction((r, ct) => Run(r, ct, async (client, console) =>
{
    IpyRpcJob<object?> job = await client.AttachAsync<object?>(r.GetValue(jobId)!, new CallOptions { Output = (stream, text) => console.Output(stream, text) }, ct);
    if (client.Functions.FirstOrDefault(f => f.Name == job.Function) is { IsStream: true })
    {
        // Every item the job made so far, then the rest as it makes them, one JSON value a line (with --json, one document at its end).
        var collected = new List<object?>();
        await foreach (object? item in job.ReadItemsAsync<object?>(ct))
        {
            if (r.GetValue(json)) collected.Add(item);
            else Console.WriteLine(Arguments.ToJson(item, indented: false));
        }

        if (r.GetValue(json)) console.Json(Arguments.Map(("id", job.Id), ("items", collected)));
        return ExitCodes.Ok;
    }

    // Its progress reports (a function that takes an IProgress<T>) go to stderr, replayed then live, as a call's do.
    object? result = await job.WaitAsync(new Reports(report => console.Output(OutputStream.Stderr, $"progress: {Arguments.ToJson(report, indented: false)}\n")), ct);
    if (r.GetValue(json)) console.Json(Arguments.Map(("id", job.Id), ("result", result)));
    else Console.WriteLine(Arguments.ToJson(result));
    return ExitCodes.Ok;
}));
var jobsCancel = new Command("cancel", "Cancel a job.") { url, jobId, secret };
jobsCancel.SetAction((r, ct) => Run(r, ct, async (client, console) =>
{
    bool cancelled = await client.CancelJobAsync(r.GetValue(jobId)!, ct);
    Console.WriteLine(cancelled ? "cancelled" : "it had already finished");
    return cancelled ? ExitCodes.Ok : ExitCodes.RemoteError;
}));
var jobs = new Command("jobs", "Submit, list, show, follow and cancel jobs.") { jobsSubmit, jobsList, jobsShow, jobsAttach, jobsCancel };

var root = new RootCommand("ipyrpc: call IpyRpc servers from the command line.") { ls, help, schema, call, ping, jobs, fetch, release, listen };
return await root.Parse(args).InvokeAsync();

// A pointer as JSON text (the map a call printed), or "-" for stdin; {"result": pointer} as `call --json` prints it is taken too.
static bool ReadPointer(string text, CliConsole console, out RemotePointer? pointer)
{
    pointer = null;
    if (text == "-") text = Console.In.ReadToEnd();
    // What `ipyrpc call` printed may begin with the function's own output: the pointer is the object after it.
    if (!text.TrimStart().StartsWith('{') && text.IndexOf("\n{", StringComparison.Ordinal) is var at and >= 0) text = text[(at + 1)..];
    try
    {
        object? value = IpyRpc.Jobs.JobCodec.Decode(System.Text.Encoding.UTF8.GetBytes(text.Trim()), Serialization.Json);
        if (value is Dictionary<string, object?> map && map.TryGetValue("result", out object? inner) && inner is Dictionary<string, object?>) value = inner;
        pointer = RemotePointer.FromMap(value);
    }
    catch (Exception e) when (e is System.Text.Json.JsonException or IpyRpc.Formatting.IpyRpcSerializationException or InvalidCastException or OverflowException or FormatException)
    {
        console.Error($"That is not a pointer: {e.Message}");
        return false;
    }

    if (pointer is null) console.Error("That is not a pointer: give the JSON object a call printed, with \"type\": \"ipyrpc_data_pointer\".");
    return pointer is not null;
}

// --timeout: seconds greater than zero, or absent.
static bool TimeoutGiven(ParseResult r, CliConsole console, out TimeSpan? limit)
{
    limit = null;
    if (r.GetValue<double?>("--timeout") is not double seconds) return true;
    if (!(seconds > 0))
    {
        console.Error($"--timeout is a number of seconds greater than zero, not {seconds}.");
        return false;
    }

    limit = TimeSpan.FromSeconds(seconds);
    return true;
}

// `reconnect`: dial again when the connection drops (for `listen`, which goes on; other commands fail at once instead).
async Task<int> Run(ParseResult r, CancellationToken ct, Func<IpyRpcClient, CliConsole, Task<int>> action, bool reconnect = false)
{
    var console = new CliConsole(r.GetValue(json));
    string address = r.GetValue(url)!;
    try
    {
        var options = new IpyRpcClientOptions
        {
            SharedSecret = r.GetValue(secret) ?? Environment.GetEnvironmentVariable("IPYRPC_SECRET"),
            Reconnect = reconnect ? new ReconnectOptions() : null,
            ConnectTimeout = TimeSpan.FromSeconds(10),
            // Results print as JSON: asked for in JSON, they come in the documented JSON shapes (ndarrays, data frames)
            // made by their own formatters. A function that accepts only MessagePack is still called in it.
            Serialization = Serialization.Json,
        };
        await using IpyRpcClient client = address.StartsWith("tcp://", StringComparison.Ordinal) || address.StartsWith("ipc://", StringComparison.Ordinal)
            ? await IpyRpcZeroMqClient.ConnectAsync(address, options, cancellationToken: ct)
            : await IpyRpcHttpClient.ConnectAsync(new Uri(address.EndsWith('/') ? address : address + "/"), options, cancellationToken: ct);
        return await action(client, console);
    }
    catch (Exception e) when (ExitCodes.For(e) is var (code, what))
    {
        console.Failure(code, what, e);
        return code;
    }
}
