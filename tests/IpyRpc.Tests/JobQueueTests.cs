using IpyRpc;
using IpyRpc.Jobs;
using IpyRpc.Protocol;

namespace IpyRpc.Tests;

public sealed class JobQueueTests
{
    [Fact]
    public async Task WithOneWorkerCallsRunStrictlyOneAtATime()
    {
        await using InProcess p = await InProcess.StartAsync(options: new IpyRpcServerOptions { Concurrency = 1 });
        string first = Gates.NewName("first"), second = Gates.NewName("second");
        Task<string> a = p.Client.CallAsync<string>("print_wait_print", first, "A");
        await Gates.WaitAsync(first + ".printed");
        Task<string> b = p.Client.CallAsync<string>("print_wait_print", second, "B");

        // B is queued behind A: it cannot print until A finishes.
        await Task.Delay(200);
        Assert.False(Gates.Get(second + ".printed").Task.IsCompleted);
        Gates.Open(first);
        Assert.Equal("A", await a);
        await Gates.WaitAsync(second + ".printed");
        Gates.Open(second);
        Assert.Equal("B", await b);
    }

    [Fact]
    public async Task WithManyWorkersCallsOverlap()
    {
        await using InProcess p = await InProcess.StartAsync(options: new IpyRpcServerOptions { Concurrency = 8 });
        string[] gates = [.. Enumerable.Range(0, 8).Select(i => Gates.NewName("many" + i))];
        Task<string>[] calls = [.. gates.Select((g, i) => p.Client.CallAsync<string>("print_wait_print", g, "T" + i))];
        foreach (string g in gates) await Gates.WaitAsync(g + ".printed"); // all eight are running at once
        foreach (string g in gates) Gates.Open(g);
        Assert.Equal(gates.Select((_, i) => "T" + i), await Task.WhenAll(calls));
    }

    [Fact]
    public async Task EveryCallIsAJobThatCanBeLookedUpAfterwards()
    {
        await using var queue = new InMemoryJobQueue();
        await using var server = new IpyRpcServer(new IpyRpcServerOptions { Queue = queue });
        server.Register(typeof(BehaviourFunctions));
        await using IpyRpcClient client = await IpyRpcClient.ConnectInProcessAsync(server, new IpyRpcClientOptions { Output = (_, _) => { } });
        Assert.Equal(1, await client.CallAsync<int>("print_from_child", "J"));

        // The job id is not exposed through CallAsync; find it through the queue's id scheme.
        string id = queue.NewId();
        string previous = id[..(id.LastIndexOf('-') + 1)] + (long.Parse(id[(id.LastIndexOf('-') + 1)..]) - 1);
        JobSnapshot? job = await queue.GetAsync(previous);
        Assert.NotNull(job);
        Assert.Equal("print_from_child", job.Function);
        Assert.Equal(JobState.Succeeded, job.State);
        Assert.NotNull(job.StartedAt);
        Assert.NotNull(job.CompletedAt);
        Assert.Equal($"J from child{Environment.NewLine}J partial", string.Concat(job.Output.Select(o => o.Text)));
    }

    [Fact]
    public async Task AJobCancelledWhileQueuedNeverRunsAndItsCallerIsTold()
    {
        var queue = new InMemoryJobQueue(new InMemoryJobQueueOptions { Concurrency = 1 });
        var executor = new GateExecutor();
        queue.Start(executor);
        JobTicket running = await queue.EnqueueAsync(new JobRequest { Id = "running", Function = "f" });
        JobTicket queued = await queue.EnqueueAsync(new JobRequest { Id = "queued", Function = "f" });
        await executor.Started.Task;

        Assert.True(await queue.CancelAsync("queued"));
        JobEvent last = await LastEventAsync(queued);
        Assert.Equal(JobState.Cancelled, last.Outcome!.State);
        Assert.Equal(ErrorCodes.Cancelled, last.Outcome.Error!.Code);

        executor.Release.SetResult();
        Assert.Equal(JobState.Succeeded, (await LastEventAsync(running)).Outcome!.State);
        Assert.Equal(1, executor.Runs);
        Assert.False(await queue.CancelAsync("running")); // already finished
        Assert.False(await queue.CancelAsync("no-such-job"));
        await queue.DisposeAsync();
    }

    [Fact]
    public async Task DisposingTheQueueCancelsRunningJobs()
    {
        var queue = new InMemoryJobQueue();
        var executor = new GateExecutor();
        queue.Start(executor);
        JobTicket ticket = await queue.EnqueueAsync(new JobRequest { Id = "x", Function = "f" });
        await executor.Started.Task;
        await queue.DisposeAsync();
        Assert.Equal(JobState.Cancelled, (await LastEventAsync(ticket)).Outcome!.State);
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await queue.EnqueueAsync(new JobRequest { Id = "y", Function = "f" }));
    }

    private static async Task<JobEvent> LastEventAsync(JobTicket ticket)
    {
        JobEvent last = default;
        await foreach (JobEvent e in ticket.Events!.ReadAllAsync().WithCancellation(new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token))
        {
            last = e;
        }

        return last;
    }

    private sealed class GateExecutor : IJobExecutor
    {
        public TaskCompletionSource Started { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int Runs;

        public async ValueTask<JobOutcome> ExecuteAsync(JobRequest request, IJobOutput output, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref Runs);
            Started.TrySetResult();
            try
            {
                await Release.Task.WaitAsync(cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return JobOutcome.Failure(JobState.Cancelled, new RemoteError { Code = ErrorCodes.Cancelled, Message = "cancelled" });
            }

            return JobOutcome.Success(new byte[] { 0xc0 }, Serialization.MessagePack);
        }
    }
}
