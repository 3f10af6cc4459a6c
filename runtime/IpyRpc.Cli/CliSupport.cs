using System.Diagnostics;
using System.Text.Json;
using IpyRpc.Jobs;
using IpyRpc.Protocol;
using Spectre.Console;

namespace IpyRpc.Cli;

/// <summary>What the process's exit code says.</summary>
internal static class ExitCodes
{
    public const int Ok = 0;
    /// <summary>The remote function failed (or a job could not be cancelled).</summary>
    public const int RemoteError = 1;
    /// <summary>The command was wrong: an unknown function, arguments that do not fit.</summary>
    public const int Usage = 2;
    /// <summary>The server could not be reached or the connection was lost.</summary>
    public const int Connection = 3;
    /// <summary>The call timed out.</summary>
    public const int Timeout = 4;
    /// <summary>Credentials were missing or refused.</summary>
    public const int Unauthorized = 5;
    /// <summary>The server could not take the call now (its job store out of reach, or the connection's line of calls full): try again.</summary>
    public const int Unavailable = 6;
    /// <summary>Interrupted (Ctrl+C): the remote call was cancelled.</summary>
    public const int Cancelled = 130;

    public static (int Code, string What)? For(Exception e) => e switch
    {
        IpyRpcUnauthorizedException => (Unauthorized, "unauthorized"),
        IpyRpcConnectionException => (Connection, "connection"),
        RemoteException => (RemoteError, "remote error"),
        IpyRpcException { Code: ErrorCodes.Timeout } => (Timeout, "timeout"),
        IpyRpcException { Code: ErrorCodes.Cancelled } or OperationCanceledException => (Cancelled, "cancelled"),
        IpyRpcException { Code: ErrorCodes.UnknownFunction or ErrorCodes.InvalidArguments or ErrorCodes.NotFound } => (Usage, "usage"),
        IpyRpcUnavailableException or IpyRpcTooManyRequestsException => (Unavailable, "unavailable"),
        IpyRpcException => (RemoteError, "error"),
        UriFormatException or ArgumentException or FormatException => (Usage, "usage"),
        IOException => (Connection, "connection"),
        _ => null,
    };
}

/// <summary>Arguments from the command line: JSON values, or name=value pairs.</summary>
internal static class Arguments
{
    /// <summary>Plain data (what IpyRpc's dynamic formatter reads and writes) as indented JSON, with no reflection.</summary>
    public static string ToJson(object? value, bool indented = true)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        // For people and scripts, not for HTML: "é", "<" and "'" print as themselves, not as \u escapes.
        var options = new JsonWriterOptions { Indented = indented, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        using (var writer = new Utf8JsonWriter(buffer, options)) IpyRpc.Formatting.Formatters.Object.Write(writer, value);
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>A JSON object's members, in order.</summary>
    public static Dictionary<string, object?> Map(params (string Name, object? Value)[] members)
    {
        var map = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach ((string name, object? value) in members) map[name] = value;
        return map;
    }

    public static bool IsNamed(string text) => text.IndexOf('=') is > 0 and var i && text[..i].All(c => char.IsLetterOrDigit(c) || c == '_');

    public static object?[] Positional(string[] given) => [.. given.Select(Parse)];

    /// <summary>The command line's arguments for a call: all by name (name=value) or all by position.</summary>
    public static IpyRpcArguments For(string[] given)
    {
        var arguments = new IpyRpcArguments();
        if (given.Any(IsNamed))
        {
            foreach ((string key, object? value) in Named(given)) arguments.Add(key, value, IpyRpc.Formatting.Formatters.Object);
        }
        else
        {
            foreach (object? value in Positional(given)) arguments.Add(value, IpyRpc.Formatting.Formatters.Object);
        }

        return arguments;
    }

    public static Dictionary<string, object?> Named(string[] given)
    {
        var named = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (string g in given)
        {
            if (!IsNamed(g)) throw new ArgumentException($"'{g}' is not name=value: pass every argument by name, or every one by position.");
            int i = g.IndexOf('=');
            named[g[..i]] = Parse(g[(i + 1)..]);
        }

        return named;
    }

    /// <summary>A JSON value as plain data; text that is not JSON is a string.</summary>
    public static object? Parse(string text)
    {
        try
        {
            using JsonDocument document = JsonDocument.Parse(text);
            return Plain(document.RootElement);
        }
        catch (JsonException)
        {
            return text;
        }
    }

    private static object? Plain(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Number => e.TryGetInt64(out long l) ? (object)l : e.GetDouble(),
        JsonValueKind.String => e.GetString(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.Array => e.EnumerateArray().Select(Plain).ToList(),
        JsonValueKind.Object => e.EnumerateObject().ToDictionary(p => p.Name, p => Plain(p.Value)),
        _ => null,
    };
}

/// <summary>Where the command writes: remote output live, a spinner on a terminal, errors readable, JSON for scripts.</summary>
internal sealed class CliConsole(bool json)
{
    private readonly object _gate = new();
    private bool _printed;

    private static bool Interactive => !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;

    public void Output(OutputStream stream, string text)
    {
        lock (_gate)
        {
            _printed = true;
            // With --json the remote output goes to stderr, so stdout stays one JSON document.
            TextWriter target = json || stream == OutputStream.Stderr ? Console.Error : Console.Out;
            target.Write(text);
            target.Flush();
        }
    }

    public void Json(object? value) => Console.WriteLine(Arguments.ToJson(value));

    public void Error(string message) => Console.Error.WriteLine(message);

    public void Failure(int code, string what, Exception e)
    {
        if (json)
        {
            Console.WriteLine(Arguments.ToJson(Arguments.Map(("error", Arguments.Map(("exit", code), ("kind", what), ("code", (e as IpyRpcException)?.Code), ("message", e.Message), ("remoteType", (e as RemoteException)?.RemoteType))))));
            return;
        }

        Console.Error.WriteLine($"ipyrpc: {what}: {e.Message}");
        if (e is RemoteException remote && remote.Error.StackTrace is { } stack) Console.Error.WriteLine("remote stack:\n" + stack.TrimEnd());
    }

    /// <summary>Waits for the call; on a terminal, after a second with no output, shows a spinner with the elapsed time.</summary>
    public async Task<T> WhileWaiting<T>(Task<T> call, Stopwatch watch, string function)
    {
        if (!Interactive || json) return await call;
        if (await Task.WhenAny(call, Task.Delay(1000)) == call) return await call;
        bool printing;
        lock (_gate) printing = _printed;
        if (printing) return await call; // its own output shows it is alive: no spinner over it

        await AnsiConsole.Status().StartAsync($"{function} running", async ctx =>
        {
            while (!call.IsCompleted)
            {
                ctx.Status($"{function} running: {watch.Elapsed.TotalSeconds:0.0} s");
                await Task.WhenAny(call, Task.Delay(200));
            }
        });
        return await call;
    }
}

/// <summary>Progress reports handled as they arrive, in order (<see cref="Progress{T}"/> would post them to the thread pool).</summary>
internal sealed class Reports(Action<object?> report) : IProgress<object?>
{
    public void Report(object? value) => report(value);
}

/// <summary>How the command shows jobs.</summary>
internal static class JobViews
{
    /// <summary>Seconds from a job's first start to its end; <see langword="null"/> until it has both.</summary>
    public static double? Took(JobInfo j) => j is { StartedAt: { } started, CompletedAt: { } completed } ? Math.Round((completed - started).TotalSeconds, 3) : null;

    /// <summary>A job for scripts: its fields, with times as ISO 8601 and the error of a job that did not succeed.</summary>
    public static Dictionary<string, object?> Summary(JobInfo j, bool withOutput)
    {
        Dictionary<string, object?> map = Arguments.Map(
            ("id", j.Id), ("function", j.Function), ("queue", j.Queue), ("state", j.State.WireName()),
            ("created", j.CreatedAt.ToString("O")), ("started", j.StartedAt?.ToString("O")), ("completed", j.CompletedAt?.ToString("O")),
            ("seconds", Took(j)), ("attempts", (long)j.Attempts), ("worker", j.Worker), ("owner", j.Owner), ("detached", j.Detached));
        if (j.Outcome?.Error is { } error) map["error"] = Arguments.Map(("code", error.Code), ("message", error.Message), ("remoteType", error.Type));
        if (j.State == JobState.Succeeded) map["resultKept"] = !j.ResultReleased;
        if (withOutput) map["output"] = string.Concat(j.Output.Select(o => o.Text));
        return map;
    }

    /// <summary>A job for people: a line each for what is known, then its output so far.</summary>
    public static string Describe(JobInfo j, string url)
    {
        var text = new System.Text.StringBuilder();
        text.Append($"{j.Id} {j.Function} {j.State.WireName()}\n");
        text.Append($"  created    {j.CreatedAt:u}{(j.Queue is { Length: > 0 } queue ? $" on queue {queue}" : "")}\n");
        if (j.StartedAt is { } started) text.Append($"  started    {started:u}\n");
        if (j.Worker is { } worker) text.Append($"  worker     {worker}{(j.Attempts > 1 ? $" (attempt {j.Attempts}: delivered again after an earlier worker stopped answering)" : "")}\n");
        if (j.CompletedAt is { } completed) text.Append($"  completed  {completed:u}{(Took(j) is { } took ? $" after {took:0.###} s" : "")}\n");
        if (j.Deadline is { } deadline && !j.State.IsFinished()) text.Append($"  deadline   {deadline:u}\n");
        if (j.Owner is { } owner) text.Append($"  owner      {owner}\n");
        if (j.Outcome?.Error is { } error) text.Append($"  error      {error.Code}{(error.Type is { } type ? $" ({type})" : "")}: {error.Message}\n");
        if (j.State == JobState.Succeeded)
        {
            text.Append(j.ResultReleased
                ? "  result     delivered to its caller and released\n"
                : $"  result     kept: ipyrpc jobs attach {url} {j.Id}\n");
        }

        string output = string.Concat(j.Output.Select(o => o.Text));
        if (output.Length > 0)
        {
            text.Append("  output\n");
            text.Append(output);
            if (!output.EndsWith('\n')) text.Append('\n');
        }

        return text.ToString();
    }
}
