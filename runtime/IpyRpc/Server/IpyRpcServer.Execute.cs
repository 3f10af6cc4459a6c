using IpyRpc.Jobs;
using IpyRpc.Protocol;

namespace IpyRpc;

public sealed partial class IpyRpcServer
{
    /// <summary>Runs one job: finds the function, binds its arguments, captures its output, enforces its timeout.</summary>
    async ValueTask<JobOutcome> IJobExecutor.ExecuteAsync(JobRequest request, IJobOutput output, CancellationToken cancellationToken)
    {
        if (Find(request.Function) is not { } function)
        {
            return JobOutcome.Failure(JobState.Failed, UnknownFunction(request.Function));
        }

        LineBufferedSink? sink = Options.CaptureOutput ? new LineBufferedSink(output.Write) : null;
        OutputCapture.Scope scope = sink is null ? default : OutputCapture.Begin(sink);
        CancellationTokenSource? deadline = null;
        try
        {
            var arguments = CallArguments.Parse(request.Arguments, request.InputSerialization, function.Name);
            var invocation = new IpyRpcInvocation(function, arguments, request.OutputSerialization, cancellationToken);
            CancellationToken token = cancellationToken;
            if (request.Timeout is { } timeout)
            {
                deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                deadline.CancelAfter(timeout);
                token = deadline.Token;
                invocation.CancellationToken = token;
            }

            // A synchronous method with a deadline runs on a worker of its own so the deadline can
            // answer the caller even if the method never looks at its token.
            ValueTask invoked = function.IsSynchronous && deadline is not null
                ? new ValueTask(Task.Run(() => function.Invoker(invocation).AsTask(), CancellationToken.None))
                : function.Invoker(invocation);

            if (invoked.IsCompleted)
            {
                invoked.GetAwaiter().GetResult(); // the common case: no Task, no await
            }
            else
            {
                Task run = invoked.AsTask();
                if (token.CanBeCanceled)
                {
                    try
                    {
                        await run.WaitAsync(token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (token.IsCancellationRequested && !run.IsCompleted)
                    {
                        _ = run.ContinueWith(static t => _ = t.Exception, TaskScheduler.Default); // observe a late failure
                        return Stopped(function.Name, request.Timeout, cancellationToken);
                    }
                }

                await run.ConfigureAwait(false);
            }

            if (!invocation.HasResult)
            {
                return JobOutcome.Failure(JobState.Failed, new RemoteError { Code = ErrorCodes.Internal, Message = $"The invoker of {function.Name} returned without a result." });
            }

            return JobOutcome.Success(invocation.Result, request.OutputSerialization);
        }
        catch (ArgumentBindingException e)
        {
            return JobOutcome.Failure(JobState.Failed, e.Error);
        }
        catch (ResultSerializationException e)
        {
            return JobOutcome.Failure(JobState.Failed, new RemoteError { Code = ErrorCodes.Internal, Message = e.Message });
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested || deadline?.IsCancellationRequested == true)
        {
            return Stopped(function.Name, request.Timeout, cancellationToken);
        }
        catch (Exception e)
        {
            return JobOutcome.Failure(JobState.Failed, RemoteError.FromException(e));
        }
        finally
        {
            sink?.Close();
            scope.Dispose();
            deadline?.Dispose();
        }
    }

    private static JobOutcome Stopped(string function, TimeSpan? timeout, CancellationToken cancellation)
        => cancellation.IsCancellationRequested
            ? JobOutcome.Failure(JobState.Cancelled, new RemoteError { Code = ErrorCodes.Cancelled, Message = $"{function} was cancelled." })
            : JobOutcome.Failure(JobState.TimedOut, new RemoteError { Code = ErrorCodes.Timeout, Message = $"{function} did not finish within its timeout of {timeout}." });

    internal RemoteError UnknownFunction(string name)
    {
        string? hint = Suggest(name);
        return new RemoteError
        {
            Code = ErrorCodes.UnknownFunction,
            Message = hint is null
                ? $"No function is named '{name}'. The server has {_functions.Count} functions; list them with client.Functions."
                : $"No function is named '{name}'. Did you mean '{hint}'?",
        };
    }
}
