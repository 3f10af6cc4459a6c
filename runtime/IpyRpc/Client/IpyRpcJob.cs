using System.Runtime.CompilerServices;
using System.Text;
using System.Threading.Channels;
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

    /// <summary>
    /// Waits for the job's result, as <see cref="WaitAsync(CancellationToken)"/> does, and gives its progress reports (a
    /// function with an <see cref="IProgress{T}"/> parameter) to <paramref name="progress"/>: every report made so far, then
    /// the rest as they come, in order. The output is replayed once per handle, as ever. A connection lost meanwhile is
    /// made again and the following goes on after the last report. Cancelling <paramref name="cancellationToken"/> stops
    /// this wait only.
    /// </summary>
    /// <typeparam name="TProgress">The type the function reports.</typeparam>
    public async Task<T> WaitAsync<TProgress>(IProgress<TProgress> progress, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(progress);
        IpyRpcFormatter<TProgress> formatter = FormatterRegistry.Get<TProgress>();
        long after = 0; // events handled so far: a follow made again goes on after them
        bool Fresh(IpyRpcMessage m)
        {
            if (m.Sequence is not long seq) return true;
            if (seq <= Volatile.Read(ref after)) return false;
            Volatile.Write(ref after, seq); // the handlers run one at a time, in order, on the receiving side
            return true;
        }

        for (int lost = 0; ; )
        {
            long from = Volatile.Read(ref after);
            try
            {
                IpyRpcMessage reply = await _client.FollowAsync(Id, Function, from, m =>
                {
                    if (Fresh(m)) OnOutput(m);
                }, cancellationToken, progress: m =>
                {
                    if (Fresh(m)) progress.Report(IpyRpcPeer.Decode(m, formatter, Function));
                }).ConfigureAwait(false);
                Info = Info with { State = JobState.Succeeded };
                return await _client.ResultAsync(reply, _formatter, Function, CancellationToken.None).ConfigureAwait(false);
            }
            catch (IpyRpcConnectionException) when ((lost = Volatile.Read(ref after) > from ? 1 : lost + 1) <= 3 && !cancellationToken.IsCancellationRequested)
            {
                // Lost with the connection: follow again after what was handled (the client reconnects).
            }
            catch (IpyRpcException e) when (e is not IpyRpcConnectionException)
            {
                Info = Info with { State = Failed(e) };
                throw;
            }
        }
    }

    /// <summary>Waits for the result for at most <paramref name="timeout"/>; a <see cref="TimeoutException"/> then, and the job goes on.</summary>
    public Task<T> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken = default) => WaitAsync(cancellationToken).WaitAsync(timeout, cancellationToken);

    /// <summary>Lets <c>await job</c> wait for the result.</summary>
    public TaskAwaiter<T> GetAwaiter() => WaitAsync().GetAwaiter();

    /// <summary>Runs <paramref name="callback"/> once the job has ended (with this handle, whose <see cref="WaitAsync(CancellationToken)"/> then completes at once).</summary>
    public void OnCompleted(Action<IpyRpcJob<T>> callback)
        => WaitAsync().ContinueWith(_ => callback(this), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

    /// <summary>
    /// The items of a streaming function's job (one that returns <c>IAsyncEnumerable&lt;T&gt;</c>, submitted with
    /// <see cref="IpyRpcPeer.SubmitStreamAsync{TItem}"/> or by name, its item count the result): every item recorded
    /// so far, then the rest as the job makes them, in order, ending when the job ends. The job's output is replayed to
    /// <see cref="CallOptions.Output"/> as <see cref="WaitAsync(CancellationToken)"/> would. A job that fails, times out or
    /// is cancelled throws from the enumeration after the items it made. Each enumeration reads from the first item; a
    /// connection lost meanwhile is made again and the reading goes on after the last item read. Stopping early (break,
    /// dispose, <paramref name="cancellationToken"/>) stops the reading only: the job goes on.
    /// </summary>
    /// <typeparam name="TItem">The stream's item type.</typeparam>
    /// <exception cref="InvalidOperationException">The server describes <see cref="Function"/> as a function that does not stream.</exception>
    public async IAsyncEnumerable<TItem> ReadItemsAsync<TItem>([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        if (_client.IsStream(Function) == false)
        {
            throw new InvalidOperationException($"{Function} does not stream items: wait for the job's result with WaitAsync (or await the job).");
        }

        IpyRpcFormatter<TItem> formatter = FormatterRegistry.Get<TItem>();
        long after = 0; // events read so far, items or output: a follow made again goes on after them
        long read = 0;
        for (int lost = 0; ; )
        {
            var batches = Channel.CreateUnbounded<IpyRpcMessage>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            long from = after;
            Task<IpyRpcMessage> done = _client.FollowAsync(Id, Function, from, m =>
            {
                // Output and items are one sequence: output is written in its place between the batches.
                batches.Writer.TryWrite(m);
            }, stop.Token, m => batches.Writer.TryWrite(m));
            _ = done.ContinueWith(static (_, w) => ((ChannelWriter<IpyRpcMessage>)w!).TryComplete(), batches.Writer, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            IpyRpcConnectionException? cut = null;
            try
            {
                while (await batches.Reader.WaitToReadAsync(CancellationToken.None).ConfigureAwait(false))
                {
                    while (batches.Reader.TryRead(out IpyRpcMessage? message))
                    {
                        if (message.Sequence is long seq)
                        {
                            if (seq <= after) continue;
                            after = seq;
                        }

                        if (message.Kind != MessageKind.Items)
                        {
                            OnOutput(message);
                            continue;
                        }

                        foreach (TItem item in IpyRpcPeer.DecodeItems(message, formatter, Function))
                        {
                            read++;
                            yield return item;
                        }
                    }
                }

                cut = await Ended(done, read).ConfigureAwait(false);
            }
            finally
            {
                await IpyRpcPeer.StopEarlyAsync(done, stop).ConfigureAwait(false); // ends the following, not the job
            }

            if (cut is null) yield break;
            // Lost with the connection: follow again after what was read (the client reconnects), unless nothing came of the last tries.
            lost = after > from ? 1 : lost + 1;
            if (lost > 3) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(cut);
        }
    }

    // The follow's end: null when the job succeeded (its state noted), the lost connection to follow again, or the job's
    // failure thrown. A success whose item count says the record no longer had every item is a failure too.
    private async Task<IpyRpcConnectionException?> Ended(Task<IpyRpcMessage> done, long read)
    {
        IpyRpcMessage result;
        try
        {
            result = await done.ConfigureAwait(false);
            Info = Info with { State = JobState.Succeeded };
        }
        catch (IpyRpcConnectionException e)
        {
            return e;
        }
        catch (IpyRpcException e)
        {
            Info = Info with { State = Failed(e) };
            throw;
        }

        long made;
        try
        {
            made = IpyRpcPeer.Decode(result, Formatters.Int64, Function);
        }
        finally
        {
            result.Pooled?.Release();
        }

        if (read < made)
        {
            throw new IpyRpcNotFoundException(new RemoteError
            {
                Code = ErrorCodes.NotFound,
                Message = $"Job {Id} made {made} items, of which the first {made - read} are no longer recorded: a job's record keeps at most "
                    + "JobRetention.MaxOutputBytesPerJob (8 MiB unless the server sets it) of output and items together, the oldest going first. "
                    + "Raise it for stream jobs whose items are read back, or call the function to read its items as it makes them.",
            }, Function);
        }

        return null;
    }

    private JobState Failed(IpyRpcException e) => e switch
    {
        { Code: ErrorCodes.DeliveredAgain } => Info.State, // the reading ended; the job runs on
        IpyRpcCancelledException => JobState.Cancelled,
        IpyRpcTimeoutException => JobState.TimedOut,
        _ => Info.State.IsFinished() ? Info.State : JobState.Failed,
    };

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
            Info = Info with { State = Failed(e) };
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
