using System.Runtime.CompilerServices;
using System.Text;
using IpyRpc.Formatting;
using IpyRpc.Jobs;
using IpyRpc.Protocol;

namespace IpyRpc;

/// <summary>
/// A job on the server, as a client holds it: its id and last known state, the output received so
/// far, and ways to wait for its result, cancel it, or ask for its state. The job does not belong
/// to the connection: disconnect, reconnect (even to a restarted server, with a durable queue) and
/// <see cref="IpyRpcPeer.AttachAsync{T}"/> by <see cref="Id"/> to pick it up again. It is also the
/// handle of an asynchronous call: hold it, ask its <see cref="State"/>, wait with a timeout, or give it a callback.
/// </summary>
/// <typeparam name="T">The function's result type.</typeparam>
public sealed class IpyRpcJob<T>
{
    private readonly IpyRpcPeer _client;
    private readonly IpyRpcFormatter<T> _formatter;
    private readonly Action<OutputStream, string> _output;
    private readonly List<OutputChunk> _received = [];
    private readonly object _gate = new();
    private long _lastSequence;
    private Task<T>? _following;

    internal IpyRpcJob(IpyRpcPeer client, JobInfo info, IpyRpcFormatter<T> formatter, CallOptions? options)
    {
        _client = client;
        _formatter = formatter;
        _output = client.OutputFor(options);
        Info = info;
    }

    /// <summary>The job's id: attach to it by this from any client.</summary>
    public string Id => Info.Id;

    /// <summary>The function it runs.</summary>
    public string Function => Info.Function;

    /// <summary>What the server last said of the job (see <see cref="RefreshAsync"/>).</summary>
    public JobInfo Info { get; private set; }

    /// <summary>Its state as last known.</summary>
    public JobState State => Info.State;

    /// <summary>The output this handle has received so far, in order.</summary>
    public IReadOnlyList<OutputChunk> Output
    {
        get
        {
            lock (_gate) return [.. _received];
        }
    }

    /// <summary>Asks the server for the job's state now.</summary>
    public async Task<JobInfo> RefreshAsync(CancellationToken cancellationToken = default)
    {
        JobInfo info = await _client.GetJobAsync(Id, false, cancellationToken).ConfigureAwait(false);
        Info = info;
        return info;
    }

    /// <summary>
    /// Waits for the job's result. The output recorded so far is replayed, then the rest arrives
    /// live (to <see cref="CallOptions.Output"/>, or the client's handler, or the console), then the
    /// outcome: the result, or the job's failure as the matching <see cref="IpyRpcException"/>.
    /// Cancelling <paramref name="cancellationToken"/> stops this wait only; the job goes on.
    /// </summary>
    public Task<T> WaitAsync(CancellationToken cancellationToken = default)
    {
        Task<T> following;
        lock (_gate)
        {
            // One follow per handle, shared by every waiter; a follow cut off by a lost connection is started again by the next wait.
            if (_following is null || (_following.IsFaulted && _following.Exception?.InnerException is IpyRpcConnectionException))
            {
                _following = FollowAsync();
            }

            following = _following;
        }

        return cancellationToken.CanBeCanceled ? following.WaitAsync(cancellationToken) : following;
    }

    /// <summary>Waits for the result for at most <paramref name="timeout"/>; a <see cref="TimeoutException"/> then, and the job goes on.</summary>
    public Task<T> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken = default) => WaitAsync(cancellationToken).WaitAsync(timeout, cancellationToken);

    /// <summary>Lets <c>await job</c> wait for the result.</summary>
    public TaskAwaiter<T> GetAwaiter() => WaitAsync().GetAwaiter();

    /// <summary>Runs <paramref name="callback"/> once the job has ended (with this handle, whose <see cref="WaitAsync(CancellationToken)"/> then completes at once).</summary>
    public void OnCompleted(Action<IpyRpcJob<T>> callback)
        => WaitAsync().ContinueWith(_ => callback(this), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

    /// <summary>Cancels the job on the server: a queued job never runs; a running one has its token cancelled.</summary>
    /// <returns>False when it had already finished.</returns>
    public Task<bool> CancelAsync(CancellationToken cancellationToken = default) => _client.CancelJobAsync(Id, cancellationToken);

    private async Task<T> FollowAsync()
    {
        long after;
        lock (_gate) after = _lastSequence;
        IpyRpcMessage reply;
        try
        {
            reply = await _client.FollowAsync(Id, Function, after, OnOutput, CancellationToken.None).ConfigureAwait(false);
        }
        catch (IpyRpcException e) when (e is not IpyRpcConnectionException)
        {
            Info = Info with { State = e switch
            {
                IpyRpcCancelledException => JobState.Cancelled,
                IpyRpcTimeoutException => JobState.TimedOut,
                _ => Info.State.IsFinished() ? Info.State : JobState.Failed,
            } };
            throw;
        }

        Info = Info with { State = JobState.Succeeded };
        return await _client.ResultAsync(reply, _formatter, Function, CancellationToken.None).ConfigureAwait(false);
    }

    private void OnOutput(IpyRpcMessage message)
    {
        string text = Encoding.UTF8.GetString(message.Body.Span);
        lock (_gate)
        {
            // A replay after a reconnect may repeat what this handle already has: skip it.
            if (message.Sequence is long seq)
            {
                if (seq <= _lastSequence) return;
                _lastSequence = seq;
            }

            _received.Add(new OutputChunk(message.Stream, text));
        }

        _output(message.Stream, text);
    }
}
