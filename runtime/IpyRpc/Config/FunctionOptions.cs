namespace IpyRpc;

/// <summary>
/// Per-function options, set by glob pattern through <see cref="IpyRpcServer.Config"/>. Every
/// property is optional: a property left unset takes its value from the next matching pattern,
/// then the default.
/// </summary>
public sealed record FunctionOptions
{
    /// <summary>
    /// The serialization calls must use; a call in the other is refused <c>unsupported_serialization</c>.
    /// <see cref="Serialization.Auto"/> (the default) accepts both. The function's descriptor says so
    /// (<see cref="FunctionDescriptor.InputSerialization"/>), and clients call it in this one unless told otherwise.
    /// A .NET client that fetched the function list before this was configured has its call (or stream, or job request)
    /// refused unread; it fetches the list again and makes it once more in the serialization now asked for.
    /// </summary>
    public Serialization? InputSerialization { get; init; }

    /// <summary>The serialization results are sent in. <see cref="Serialization.Auto"/> (the default) answers in the call's own.</summary>
    public Serialization? OutputSerialization { get; init; }

    /// <summary>
    /// Whether the result stays with the process that computed it (the server, or the worker that ran
    /// the job), in its data store, and the caller gets a pointer to it instead (docs/POINTERS.md).
    /// A caller can ask otherwise per call. Functions without a value (<see langword="void"/>) and
    /// streams return what they always do. Unset: the value.
    /// </summary>
    public bool? ReturnPointer { get; init; }

    /// <summary>
    /// How long the holder keeps a pointer's value (unless the caller asks for another time): positive, or
    /// <see cref="System.Threading.Timeout.InfiniteTimeSpan"/> for until released or evicted. Unset: the data store's
    /// default (<see cref="DataStoreOptions.DefaultTimeToLive"/>).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Zero or negative (other than <see cref="System.Threading.Timeout.InfiniteTimeSpan"/>).</exception>
    public TimeSpan? PointerTimeToLive { get; init => field = PositiveOrInfinite(value, nameof(PointerTimeToLive)); }

    /// <summary>
    /// How long a call may run before it fails with a timeout error, counted from its arrival (time spent queued
    /// counts): positive, or <see cref="System.Threading.Timeout.InfiniteTimeSpan"/> for no limit (which lifts a
    /// limit a broader pattern sets). A caller's own shorter timeout still applies. Unset: no limit.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Zero or negative (other than <see cref="System.Threading.Timeout.InfiniteTimeSpan"/>).</exception>
    public TimeSpan? Timeout { get; init => field = PositiveOrInfinite(value, nameof(Timeout)); }

    /// <summary>The job queue to run on, by name. Unset: the server's default queue.</summary>
    public string? Queue { get; init; }

    /// <summary>The largest argument payload accepted, in bytes (positive). Unset: the server's message limit.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Zero or negative.</exception>
    public long? MaxArgumentBytes
    {
        get;
        init => field = value is <= 0 ? throw new ArgumentOutOfRangeException(nameof(MaxArgumentBytes), value, "MaxArgumentBytes must be a positive number of bytes.") : value;
    }

    /// <summary>
    /// Whether a dropped connection cancels its calls. Unset (the default): plain calls are
    /// cancelled, jobs submitted with <c>SubmitAsync</c> run on. <see langword="true"/>: both are
    /// cancelled. <see langword="false"/>: both run on, and a plain call's result waits for the
    /// caller to attach by job id (the id is in every output and result message).
    /// </summary>
    public bool? CancelOnDisconnect { get; init; }

    /// <summary>
    /// Who may call the function: asked with the caller's principal, the function's name and the
    /// call's decoded arguments before the job is queued (and, without arguments, for listings and
    /// job access). See <see cref="Authorize"/> for ready-made rules. Unset: anyone the server lets in.
    /// </summary>
    public IpyRpcAuthorizer? Auth { get; init; }

    /// <summary>
    /// Whether the function's jobs can be looked at, attached to and cancelled by every caller its
    /// <see cref="Auth"/> allows. Unset: only by the principal that submitted them (anonymous callers,
    /// on a server without authentication, all count as one).
    /// </summary>
    public bool? SharedJobs { get; init; }

    /// <summary>How much of an exception a caller learns. Unset: <see cref="ErrorDetail.StackWithoutPaths"/>.</summary>
    public ErrorDetail? ErrorDetail { get; init; }

    /// <summary>
    /// Whether a call runs on the thread that received it instead of being handed to one of the queue's
    /// workers, for short synchronous functions: a call then wakes no worker thread. It applies to plain calls
    /// (not <c>SubmitAsync</c>) without a timeout, of a function that is synchronous (its method returns
    /// neither a task nor a stream: the generator tells) and runs on an in-memory queue; every other call runs
    /// on a worker as always, and the server logs a warning for a function this names that cannot run inline.
    /// The call is still a job, recorded, listed, cancellable and retained like any other. While it runs, its
    /// connection receives nothing else, and over ZeroMQ no connection of that server does: use it for
    /// functions that return in microseconds, never for ones that wait or compute for long. Unset: <see langword="false"/>.
    /// </summary>
    public bool? Inline { get; init; }

    private static TimeSpan? PositiveOrInfinite(TimeSpan? value, string name)
        => value is { } t && t <= TimeSpan.Zero && t != System.Threading.Timeout.InfiniteTimeSpan
            ? throw new ArgumentOutOfRangeException(name, t, $"{name} must be positive, or Timeout.InfiniteTimeSpan for none.")
            : value;
}

/// <summary>How much of a function's exception travels to the caller.</summary>
public enum ErrorDetail
{
    /// <summary>Type, message, inner exceptions and the stack trace, with the source file paths and line numbers the build recorded.</summary>
    Full,
    /// <summary>Type, message, inner exceptions and the stack trace, without file paths (which reveal the build machine's layout).</summary>
    StackWithoutPaths,
    /// <summary>Type and message (and those of inner exceptions) only.</summary>
    TypeAndMessage,
}

/// <summary>
/// Glob patterns mapped to options, in the spirit of the seed's <c>server.config({...})</c>:
/// <code>
/// server.Config(new()
/// {
///     ["*_json"] = new() { InputSerialization = Serialization.Json, OutputSerialization = Serialization.Json },
///     ["*"]      = new() { Timeout = TimeSpan.FromMinutes(5) },
/// });
/// </code>
/// Options merge property by property. When several patterns set the same property for a
/// function, the most specific pattern wins: an exact name beats any glob, and among globs the
/// one with more literal characters wins (<c>compute_*</c> beats <c>*_json</c> beats <c>*</c>);
/// on a tie the pattern added last wins.
/// </summary>
public sealed class GlobConfig
{
    private readonly List<KeyValuePair<string, FunctionOptions>> _rules = [];

    /// <summary>The options for <paramref name="pattern"/>; setting them again replaces them in place.</summary>
    public FunctionOptions this[string pattern]
    {
        get => _rules.First(r => r.Key == pattern).Value;
        set
        {
            Glob.Validate(pattern);
            int i = _rules.FindIndex(r => r.Key == pattern);
            if (i >= 0) _rules[i] = new(pattern, value);
            else _rules.Add(new(pattern, value));
        }
    }

    /// <summary>The patterns and their options, in the order they were added.</summary>
    public IReadOnlyList<KeyValuePair<string, FunctionOptions>> Rules => _rules;

    /// <summary>Adds every rule of <paramref name="other"/> after this one's.</summary>
    public void Add(GlobConfig other)
    {
        foreach (KeyValuePair<string, FunctionOptions> rule in other.Rules) this[rule.Key] = rule.Value;
    }

    /// <summary>The options that apply to <paramref name="function"/>, merged by the precedence rule above.</summary>
    public FunctionOptions Resolve(string function)
    {
        // Least specific first, so more specific patterns overwrite as they are applied.
        IEnumerable<FunctionOptions> ordered = _rules
            .Select((rule, index) => (rule, index))
            .Where(x => Glob.IsMatch(x.rule.Key, function))
            .OrderBy(x => Glob.Specificity(x.rule.Key))
            .ThenBy(x => x.index)
            .Select(x => x.rule.Value);

        var merged = new FunctionOptions();
        foreach (FunctionOptions o in ordered)
        {
            merged = new FunctionOptions
            {
                InputSerialization = o.InputSerialization ?? merged.InputSerialization,
                OutputSerialization = o.OutputSerialization ?? merged.OutputSerialization,
                ReturnPointer = o.ReturnPointer ?? merged.ReturnPointer,
                PointerTimeToLive = o.PointerTimeToLive ?? merged.PointerTimeToLive,
                Timeout = o.Timeout ?? merged.Timeout,
                Queue = o.Queue ?? merged.Queue,
                MaxArgumentBytes = o.MaxArgumentBytes ?? merged.MaxArgumentBytes,
                CancelOnDisconnect = o.CancelOnDisconnect ?? merged.CancelOnDisconnect,
                Auth = o.Auth ?? merged.Auth,
                SharedJobs = o.SharedJobs ?? merged.SharedJobs,
                ErrorDetail = o.ErrorDetail ?? merged.ErrorDetail,
                Inline = o.Inline ?? merged.Inline,
            };
        }

        return merged;
    }

    /// <summary>The patterns that match none of <paramref name="functions"/>.</summary>
    public IReadOnlyList<string> Unmatched(IEnumerable<string> functions)
    {
        string[] names = [.. functions];
        return [.. _rules.Select(r => r.Key).Where(p => !names.Any(n => Glob.IsMatch(p, n)))];
    }
}
