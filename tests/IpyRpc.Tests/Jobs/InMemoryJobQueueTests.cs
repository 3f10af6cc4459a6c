using System.Security.Claims;
using IpyRpc.Jobs;
using IpyRpc.Protocol;

namespace IpyRpc.Tests.Jobs;

public sealed class InMemoryJobQueueTests : JobQueueContract
{
    protected override Task<IJobQueue> CreateAsync(JobRetention retention)
        => Task.FromResult<IJobQueue>(new InMemoryJobQueue(new InMemoryJobQueueOptions { Retention = retention }));

    // What the queue counts for a record against its budget: whole, and folded.
    private const int Whole = InMemoryJobQueue.RecordOverheadBytes, Folded = InMemoryJobQueue.FoldedOverheadBytes;

    private static JobCaller Ada { get; } = new("c1", "in-process", null, new ClaimsPrincipal(new ClaimsIdentity([new Claim(ClaimTypes.Name, "ada")], "test")));

    private static async Task<string> DeliverAsync(InMemoryJobQueue queue, string function = "calc.add", Action<JobLease>? run = null, JobOutcome? outcome = null)
    {
        JobTicket ticket = await queue.SubmitAsync(new JobRequest { Function = function, Arguments = new byte[] { 0x92, 2, 3 }, Caller = Ada });
        JobLease lease = await TakeAsync(queue);
        run?.Invoke(lease);
        Assert.True(await lease.CompleteAsync(outcome ?? Ok([5])));
        await queue.ReleaseAsync(ticket.JobId); // what the server does once the result has reached the caller
        return ticket.JobId;
    }

    [Fact]
    public async Task JobIdsAreTheQueuesPrefixAndASequenceNumberAcrossEveryDigitCount()
    {
        var queue = (InMemoryJobQueue)await OpenAsync();
        var ids = new List<string>();
        for (int i = 0; i < 1001; i++) ids.Add(await DeliverAsync(queue));
        string prefix = ids[0][..(ids[0].IndexOf('-') + 1)];
        Assert.Matches("^[0-9a-f]{10}-$", prefix);
        Assert.Equal(Enumerable.Range(1, 1001).Select(n => prefix + n.ToString(System.Globalization.CultureInfo.InvariantCulture)), ids);
        // Each one still finds its folded record (found by the number in its id).
        foreach (string id in new[] { ids[0], ids[8], ids[9], ids[98], ids[99], ids[999], ids[1000] }) Assert.Equal(id, (await queue.GetAsync(id))!.Id);
    }

    [Fact]
    public async Task ADeliveredCallsRecordIsFoldedAndStillAnswersStatusListingAndAttach()
    {
        var queue = (InMemoryJobQueue)await OpenAsync();
        string id = await DeliverAsync(queue);
        Assert.Equal(1, queue.FoldedCount);

        JobInfo info = (await queue.GetAsync(id, withOutput: true))!;
        Assert.Equal(id, info.Id);
        Assert.Equal("calc.add", info.Function);
        Assert.Equal(JobState.Succeeded, info.State);
        Assert.True(info.ResultReleased);
        Assert.Equal("ada", info.Owner);
        Assert.Equal("w1", info.Worker);
        Assert.Equal(1, info.Attempts);
        Assert.NotNull(info.StartedAt);
        Assert.True(info.CompletedAt >= info.StartedAt);
        Assert.Equal(0, info.RetainedBytes);
        Assert.Empty(info.Output);
        Assert.Equal(JobState.Succeeded, info.Outcome!.State);
        Assert.True(info.Outcome.Result.IsEmpty);

        Assert.Equal([id], (await queue.ListAsync(new JobQuery { Function = "calc.*", State = JobState.Succeeded })).Select(j => j.Id));
        Assert.Empty(await queue.ListAsync(new JobQuery { State = JobState.Failed }));

        var late = new Recorder();
        Assert.NotNull(await queue.WatchAsync(id, 0, late));
        JobEvent outcome = await late.Completed.Task.WaitAsync(Patience);
        Assert.Equal(ErrorCodes.NotFound, outcome.Outcome!.Error!.Code);
        Assert.Contains(id, outcome.Outcome.Error.Message);
        Assert.Contains("released", outcome.Outcome.Error.Message);

        Assert.False(await queue.CancelAsync(id)); // finished: nothing to cancel
        await queue.ReleaseAsync(id); // again: nothing happens
        Assert.Equal(1, queue.FoldedCount);
        Assert.Null(await queue.GetAsync(id + "0")); // another number of the same queue
        Assert.Null(await queue.GetAsync("not-a-job"));
    }

    [Fact]
    public async Task AFailureOrAResultNobodyTookIsKeptWholeAndADeliveredCallThatPrintedFoldsWithItsOutput()
    {
        var queue = (InMemoryJobQueue)await OpenAsync();
        string failed = await DeliverAsync(queue, outcome: JobOutcome.Failure(JobState.Failed, new RemoteError { Code = ErrorCodes.Internal, Message = "boom" }));
        JobTicket kept = await queue.SubmitAsync(new JobRequest { Function = "calc.add", Detached = true });
        Assert.True(await (await TakeAsync(queue)).CompleteAsync(Ok([7])));
        Assert.Equal(0, queue.FoldedCount);
        Assert.Equal("boom", (await queue.GetAsync(failed))!.Outcome!.Error!.Message);
        Assert.Equal(new byte[] { 7 }, (await queue.GetAsync(kept.JobId))!.Outcome!.Result.ToArray());

        string printed = await DeliverAsync(queue, run: lease => lease.Write(OutputStream.Stdout, "hello\n"));
        Assert.Equal(1, queue.FoldedCount);
        Assert.Equal("hello\n", Assert.Single((await queue.GetAsync(printed, withOutput: true))!.Output).Text);

        // One that printed more than folding copies stays whole, its output whole with it.
        string lines = string.Concat(Enumerable.Repeat("0123456789abcde\n", InMemoryJobQueue.FoldedOutputLimit / 16 + 1));
        string loud = await DeliverAsync(queue, run: lease => lease.Write(OutputStream.Stdout, lines));
        Assert.Equal(1, queue.FoldedCount);
        Assert.Equal(lines, Assert.Single((await queue.GetAsync(loud, withOutput: true))!.Output).Text);
    }

    [Fact]
    public async Task AFoldedRecordReplaysWhatItPrintedToStatusAndAttachAsItsWholeRecordDid()
    {
        // Stdout and stderr in their order, text in any script, and the items and progress a call streams (recorded as
        // output of their own streams: replayed on attach, never shown as console output), each with its sequence number.
        var queue = (InMemoryJobQueue)await OpenAsync();
        string[] texts = ["one\n", "dva ✓ два\n", "", new string('x', 300) + "\n", "🙂 done"];
        string printed = await DeliverAsync(queue, run: lease =>
        {
            lease.Write(OutputStream.Stdout, texts[0]);
            lease.Write(OutputStream.Stderr, texts[1]);
            lease.Write(JobData.Items, JobData.Encode(Serialization.MessagePack, [0x92, 1, 2]));
            lease.Write(OutputStream.Stdout, texts[2]);
            lease.Write(JobData.Progress, "j{\"done\":1}");
            lease.Write(OutputStream.Stdout, texts[3]);
            lease.Write(OutputStream.Stderr, texts[4]);
        });
        Assert.Equal(1, queue.FoldedCount);

        JobInfo info = (await queue.GetAsync(printed, withOutput: true))!;
        Assert.Equal(
            [(OutputStream.Stdout, texts[0]), (OutputStream.Stderr, texts[1]), (OutputStream.Stdout, texts[2]), (OutputStream.Stdout, texts[3]), (OutputStream.Stderr, texts[4])],
            info.Output.Select(c => (c.Stream, c.Text)));
        Assert.Equal(8, info.LastSequence); // seven pieces and the outcome
        Assert.True(info.RetainedBytes > texts.Sum(t => t.Length)); // the output is counted (UTF-8, and the items)
        Assert.Empty((await queue.GetAsync(printed))!.Output);

        var attach = new Recorder();
        Assert.NotNull(await queue.WatchAsync(printed, 0, attach));
        JobEvent outcome = await attach.Completed.Task.WaitAsync(Patience);
        Assert.Equal(ErrorCodes.NotFound, outcome.Outcome!.Error!.Code); // released, as for a whole record
        Assert.Equal(8, outcome.Sequence);
        Assert.Equal(Enumerable.Range(1, 7).Select(n => (long)n), attach.Snapshot().Where(e => e.Kind == JobEventKind.Output).Select(e => e.Sequence));
        Assert.Equal(JobData.Encode(Serialization.MessagePack, [0x92, 1, 2]), attach.Snapshot().Single(e => e.Stream == JobData.Items).Text);
        Assert.Equal("j{\"done\":1}", attach.Snapshot().Single(e => e.Stream == JobData.Progress).Text);
        Assert.Equal(texts[4], attach.Snapshot().Last(e => e.Kind == JobEventKind.Output).Text);

        var later = new Recorder();
        Assert.NotNull(await queue.WatchAsync(printed, 5, later)); // after the fifth piece: the last two
        await later.Completed.Task.WaitAsync(Patience);
        Assert.Equal([6L, 7L], later.Snapshot().Where(e => e.Kind == JobEventKind.Output).Select(e => e.Sequence));
    }

    [Fact]
    public async Task ARecordKeptWholeCountsItsOutputAsTheHeapHoldsIt()
    {
        // A submitted job's record stays whole (its result is kept). Its output is counted as the heap holds it: two
        // bytes a character, and each piece's event and string; counted a byte a character, twice as many would fit.
        const int PieceBytes = 2 * 100 + 64;
        var queue = (InMemoryJobQueue)await OpenAsync(new JobRetention { MaxBytes = 10 * (Whole + 1 + 10 * PieceBytes) });
        var ids = new List<string>();
        for (int i = 0; i < 30; i++)
        {
            JobTicket ticket = await queue.SubmitAsync(new JobRequest { Function = "calc.report", Detached = true });
            JobLease lease = await TakeAsync(queue);
            for (int piece = 0; piece < 10; piece++) lease.Write(OutputStream.Stdout, new string((char)('a' + piece), 99) + "\n");
            Assert.True(await lease.CompleteAsync(Ok([7])));
            ids.Add(ticket.JobId);
        }

        Assert.Equal(0, queue.FoldedCount);
        Assert.InRange((await queue.ListAsync(new JobQuery { Limit = 100 })).Count, 9, 10);
        JobInfo last = (await queue.GetAsync(ids[^1], withOutput: true))!;
        Assert.Equal(10, last.Output.Count);
        Assert.Equal(1_000 + 1, last.RetainedBytes); // status still reports its output in characters, and its result
    }

    [Fact]
    public async Task AFoldedRecordsOutputCountsAgainstTheBudget()
    {
        // Room for ten folded records that printed 1,000 bytes each, or for about 90 that printed nothing.
        var queue = (InMemoryJobQueue)await OpenAsync(new JobRetention { MaxBytes = Whole + 10 * (Folded + 1_000 + 8 + 24) });
        var ids = new List<string>();
        for (int i = 0; i < 30; i++) ids.Add(await DeliverAsync(queue, run: lease => lease.Write(OutputStream.Stdout, new string('p', 1_000))));
        Assert.InRange(queue.FoldedCount, 9, 10);
        Assert.Equal(new string('p', 1_000), Assert.Single((await queue.GetAsync(ids[^1], withOutput: true))!.Output).Text);
        Assert.Null(await queue.GetAsync(ids[^12]));

        for (int i = 0; i < 100; i++) ids.Add(await DeliverAsync(queue));
        Assert.InRange(queue.FoldedCount, 80, 90); // the printing records went, each freeing its output's room
        Assert.All(ids[..30], id => Assert.Null(queue.GetAsync(id).AsTask().Result));
    }

    [Fact]
    public async Task ManyCallsFoldWhileStatusQueriesListingAndRetentionRunAtTheSameTime()
    {
        // A budget of 64 KiB holds about 300 folded records: the ring wraps, grows and trims while calls finish,
        // fold, and are looked up from another task.
        var queue = new InMemoryJobQueue(new InMemoryJobQueueOptions { Retention = new JobRetention { MaxAge = TimeSpan.FromHours(1), MaxBytes = 64 * 1024 } });
        await using var server = new IpyRpcServer(new IpyRpcServerOptions { Queue = queue, MaxCallsInFlightPerConnection = 256 });
        server.Register(typeof(ShapeFunctions));
        await using IpyRpcClient client = await IpyRpcClient.ConnectInProcessAsync(server);
        using var stop = new CancellationTokenSource();
        int looked = 0;
        Task watching = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                foreach (JobInfo listed in await client.ListJobsAsync(new JobQuery { Function = "add", Limit = 20 }))
                {
                    try
                    {
                        JobInfo again = await client.GetJobAsync(listed.Id);
                        Assert.Equal("add", again.Function);
                        Interlocked.Increment(ref looked);
                    }
                    catch (IpyRpcNotFoundException)
                    {
                        // forgotten between the listing and the look
                    }
                }
            }
        });

        await Task.WhenAll(Enumerable.Range(0, 16).Select(async lane =>
        {
            for (int i = 0; i < 300; i++) Assert.Equal(lane + i, await client.CallAsync<int>("add", lane, i));
        }));
        await stop.CancelAsync();
        await watching;

        Assert.True(looked > 0);
        Assert.InRange(queue.FoldedCount, 200, 64 * 1024 / Folded);
        JobInfo newest = (await client.ListJobsAsync(new JobQuery { Function = "add", Limit = 1 })).Single();
        Assert.Equal(JobState.Succeeded, newest.State);
        Assert.True(newest.ResultReleased);
    }

    [Fact]
    public async Task AResultDeliveredAsItsJobCompletesIsNotCountedTwiceAgainstTheBudget()
    {
        // In process the result is sent, and released, on the thread completing the job, before the queue has
        // counted the record. Giving its bytes back then (when they were never counted) drove the budget below
        // zero, 50 KB a call, and retention stopped forgetting anything until the records were an hour old.
        var queue = new InMemoryJobQueue(new InMemoryJobQueueOptions { Retention = new JobRetention { MaxAge = TimeSpan.FromHours(1), MaxBytes = 5_000 } });
        await using var server = new IpyRpcServer(new IpyRpcServerOptions { Queue = queue });
        server.Register(typeof(JobFunctions));
        await using IpyRpcClient client = await IpyRpcClient.ConnectInProcessAsync(server);
        // A result released only after its record was counted (a busy machine: the sending thread ran late) is counted
        // until then, 50 KB over the budget, and the oldest records go to make room; the calls after it fill the room
        // again. So calls go on until 20 records are kept, or 200 calls; counted twice, the budget never holds 20.
        for (int i = 0; i < 200 && (i < 40 || queue.FoldedCount < 20); i++)
        {
            Assert.Equal(50_000, (await client.CallAsync<byte[]>("job.echo_bytes", new byte[50_000])).Length);
        }

        Assert.InRange(queue.FoldedCount, 20, 5_000 / Folded);
        // The caller has its last result before the queue counts that call's record (and trims for it): one more may be listed.
        Assert.InRange((await client.ListJobsAsync()).Count, 20, 5_000 / Folded + 1);
    }

    [Fact]
    public async Task FoldedAndWholeRecordsAreForgottenTogetherOldestFirst()
    {
        // A record costs 640 bytes (and its result) whole, 136 folded. A call's record is whole while its result is
        // on its way, so a budget of a whole record and three and a half folded ones keeps four folded records:
        // three, and the one being delivered.
        var queue = (InMemoryJobQueue)await OpenAsync(new JobRetention { MaxBytes = Whole + 3 * Folded + Folded / 2 });
        var ids = new List<string>();
        for (int i = 0; i < 10; i++) ids.Add(await DeliverAsync(queue));
        Assert.Equal(4, queue.FoldedCount);
        Assert.All(ids[..6], id => Assert.Null(queue.GetAsync(id).AsTask().Result));
        Assert.All(ids[6..], id => Assert.NotNull(queue.GetAsync(id).AsTask().Result));

        // A whole record (its result kept) takes the room of several folded ones, and goes in finishing order too.
        JobTicket kept = await queue.SubmitAsync(new JobRequest { Function = "calc.add", Detached = true });
        Assert.True(await (await TakeAsync(queue)).CompleteAsync(Ok([7])));
        Assert.NotNull(await queue.GetAsync(kept.JobId));
        Assert.Equal(3, queue.FoldedCount); // whole with its 1-byte result, and three folded: within the budget; and four: over
        Assert.Equal([kept.JobId, .. Enumerable.Reverse(ids[^3..])], (await queue.ListAsync()).Select(j => j.Id));

        for (int i = 0; i < 8; i++) ids.Add(await DeliverAsync(queue));
        Assert.Null(await queue.GetAsync(kept.JobId));
        Assert.Equal(4, queue.FoldedCount);
        Assert.Equal(ids[^4..], (await queue.ListAsync()).Select(j => j.Id).Reverse());
    }

    [Fact]
    public async Task ThousandsOfRecordsAcrossManySegmentsAreFoundInOrderAndForgottenOldestFirst()
    {
        // 2,000 folded records fit the budget: they span several of the ring's segments, so the ring's directory
        // grows, and 6,000 deliveries make its head pass and hand back segments many times over.
        var queue = (InMemoryJobQueue)await OpenAsync(new JobRetention { MaxBytes = 2_000 * Folded + Whole });
        var ids = new List<string>();
        for (int i = 0; i < 6_000; i++)
        {
            ids.Add(await DeliverAsync(queue));
            if (i % 997 == 0) Assert.Equal(Math.Min(i + 1, 2_000), queue.FoldedCount);
        }

        Assert.Equal(2_000, queue.FoldedCount);
        Assert.All(ids[..4_000].Where((_, i) => i % 50 == 0), id => Assert.Null(queue.GetAsync(id).AsTask().Result));
        foreach (string id in ids[4_000..])
        {
            JobInfo found = Assert.IsType<JobInfo>(await queue.GetAsync(id));
            Assert.Equal(id, found.Id);
            Assert.Equal(JobState.Succeeded, found.State);
        }

        Assert.Equal(ids[^2_000..], (await queue.ListAsync(new JobQuery { Limit = 5_000 })).Select(j => j.Id).Reverse());
    }

    [Fact]
    public async Task TheIndexOfFoldedRecordsKeepsBlocksOnlyForNumbersStillKept()
    {
        // The index keeps folded records in blocks of 64 consecutive job numbers. A budget of 100 folded records: the
        // index holds the blocks of the last 100 numbers, whatever came before, and a call that finished long after
        // its neighbours (its block long given up) is found in a block of its own, given up again once it is forgotten.
        var queue = (InMemoryJobQueue)await OpenAsync(new JobRetention { MaxBytes = 100 * Folded + Whole });
        JobTicket straggler = await queue.SubmitAsync(new JobRequest { Function = "calc.slow", Arguments = new byte[] { 0x90 }, Caller = Ada });
        JobLease running = await TakeAsync(queue);
        var ids = new List<string>();
        for (int i = 0; i < 1_000; i++) ids.Add(await DeliverAsync(queue));
        Assert.Equal(100, queue.FoldedCount);
        long Number(string id) => long.Parse(id[(id.IndexOf('-') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        int Blocks(IEnumerable<string> kept) => kept.Select(id => Number(id) / 64).Distinct().Count();
        Assert.Equal(Blocks(ids[^100..]), queue.FoldedIndexBlocks);

        Assert.True(await running.CompleteAsync(Ok([1])));
        await queue.ReleaseAsync(straggler.JobId);
        Assert.Equal(JobState.Succeeded, (await queue.GetAsync(straggler.JobId))!.State);
        Assert.Equal(Blocks([straggler.JobId, .. ids[^99..]]), queue.FoldedIndexBlocks); // the oldest went to make room
        Assert.Null(await queue.GetAsync(ids[^100]));

        for (int i = 0; i < 100; i++) ids.Add(await DeliverAsync(queue));
        Assert.Null(await queue.GetAsync(straggler.JobId));
        Assert.Equal(Blocks(ids[^100..]), queue.FoldedIndexBlocks);
        Assert.All(ids[^100..], id => Assert.Equal(id, queue.GetAsync(id).AsTask().Result!.Id));
    }

    [Fact]
    public async Task AFoldedRecordsNamesAreSharedAndForgottenWithTheLastRecordThatHoldsThem()
    {
        // A folded record keeps its function, worker and owner as numbers in a table of names it shares with the
        // others: each name once, whatever the number of records, and gone when the last record holding it is.
        var queue = (InMemoryJobQueue)await OpenAsync(new JobRetention { MaxBytes = 50 * Folded + Whole });
        var ids = new List<string>();
        for (int i = 0; i < 40; i++) ids.Add(await DeliverAsync(queue, function: "calc.f" + (i % 4)));
        Assert.Equal(4 + 2, queue.FoldedNames); // four functions, worker w1 and owner ada
        JobInfo first = (await queue.GetAsync(ids[0]))!;
        Assert.Equal(("calc.f0", "w1", "ada"), (first.Function, first.Worker, first.Owner));
        Assert.Equal(10, (await queue.ListAsync(new JobQuery { Function = "calc.f3" })).Count);

        for (int i = 0; i < 60; i++) ids.Add(await DeliverAsync(queue, function: "calc.other"));
        Assert.Equal(1 + 2, queue.FoldedNames); // the f0 to f3 records are forgotten, and their names with them
        Assert.Empty(await queue.ListAsync(new JobQuery { Function = "calc.f*" }));
        JobInfo last = (await queue.GetAsync(ids[^1]))!;
        Assert.Equal(("calc.other", "w1", "ada"), (last.Function, last.Worker, last.Owner));

        // A name given up and then used again gets a number again; the records that use it read it back.
        for (int i = 0; i < 10; i++) ids.Add(await DeliverAsync(queue, function: "calc.f" + (i % 2)));
        Assert.Equal(3 + 2, queue.FoldedNames);
        Assert.Equal(["calc.f1", "calc.f0"], (await queue.ListAsync(new JobQuery { Function = "calc.f*", Limit = 2 })).Select(j => j.Function));
        Assert.Equal("calc.other", (await queue.GetAsync(ids[^11]))!.Function);
    }

    [Fact]
    public async Task ARequestAServerHandsOverGetsItsIdInPlaceAndAnyOtherIsCopied()
    {
        var queue = (InMemoryJobQueue)await OpenAsync();

        // Anyone's request may be submitted again: each submit is a job of its own, and the request is left as it was.
        var mine = new JobRequest { Function = "calc.add", Arguments = new byte[] { 0x92, 2, 3 } };
        JobTicket first = await queue.SubmitAsync(mine), second = await queue.SubmitAsync(mine);
        Assert.NotEqual(first.JobId, second.JobId);
        Assert.Equal("", mine.Id);
        JobLease a = await TakeAsync(queue), b = await TakeAsync(queue);
        Assert.Equal([first.JobId, second.JobId], new[] { a.Request.Id, b.Request.Id }.Order());
        Assert.NotSame(mine, a.Request);
        Assert.NotSame(a.Request, b.Request);

        // A server's own request (made for this one submit) becomes the job's, id and all; one that has an id is copied.
        var handed = new JobRequest { Function = "calc.add", HandedOver = true };
        JobTicket third = await queue.SubmitAsync(handed);
        Assert.Equal(third.JobId, handed.Id);
        Assert.Same(handed, (await TakeAsync(queue)).Request);
        JobTicket fourth = await queue.SubmitAsync(handed);
        JobLease d = await TakeAsync(queue);
        Assert.Equal(fourth.JobId, d.Request.Id);
        Assert.NotSame(handed, d.Request);
        Assert.Equal(third.JobId, handed.Id);
    }

    [Fact]
    public async Task AFinishedRecordKeepsNoneOfItsArgumentsWhetherFoldedOrKeptWhole()
    {
        var queue = (InMemoryJobQueue)await OpenAsync();
        (string kept, WeakReference keptArguments) = await FinishAsync(queue, release: false);
        (string folded, WeakReference foldedArguments) = await FinishAsync(queue, release: true);
        Assert.Equal(1, queue.FoldedCount);

        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        Assert.False(keptArguments.IsAlive, "a record kept whole (its result not yet released) still holds its arguments");
        Assert.False(foldedArguments.IsAlive, "a folded record still holds its arguments");
        Assert.Equal(JobState.Succeeded, (await queue.GetAsync(kept))!.State);
        Assert.Equal(JobState.Succeeded, (await queue.GetAsync(folded))!.State);

        // Made and let go of in a frame of its own, so that only the queue can keep the arguments alive.
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
        static async Task<(string Id, WeakReference Arguments)> FinishAsync(InMemoryJobQueue queue, bool release)
        {
            byte[] arguments = [0x91, 0xc4, 0x10, .. new byte[16]];
            JobTicket ticket = await queue.SubmitAsync(new JobRequest { Function = "calc.echo", Arguments = arguments, HandedOver = true });
            JobLease lease = await TakeAsync(queue);
            Assert.True(await lease.CompleteAsync(Ok([5])));
            if (release) await queue.ReleaseAsync(ticket.JobId);
            return (ticket.JobId, new WeakReference(arguments));
        }
    }
}
