using IpyRpc.Protocol;
using IpyRpc.Tests.Pointers;

namespace IpyRpc.ZeroMq.Tests;

public sealed class ZeroMqPointersTests : PointersContract
{
    protected override string Protocol => "zmq";

    protected override Task<IAsyncDisposable?> ServeAsync(IpyRpcServer server) => Task.FromResult<IAsyncDisposable?>(IpyRpcZeroMqServer.Start(server, "tcp://127.0.0.1:*"));

    protected override Task<IpyRpcClient> ConnectAsync(IpyRpcServer server, IAsyncDisposable? host, IpyRpcClientOptions options)
        => IpyRpcZeroMqClient.ConnectAsync(((IpyRpcZeroMqServer)host!).Endpoint, options);

    [Fact]
    public async Task AWorkerResolvesAnotherDeploymentsPointerOnlyWhenItListsTheHolder()
    {
        // The holder: another deployment (a queue, and so a key, of its own), served over ZeroMQ.
        await using var holder = new IpyRpcServer();
        await using IpyRpcZeroMqServer holderHost = IpyRpcZeroMqServer.Start(holder, "tcp://127.0.0.1:*");
        RemotePointer<double[,]> made = holder.Data.Put(new double[,] { { 1, 2 }, { 3, 4 } }, IpyRpc.Formatting.FormatterRegistry.Get<double[,]>());
        // As a holder process of that deployment would have made it: not a store of this process, sealed under its key.
        const string elsewhere = "0123456789abcdef0123456789abcdef";
        Dictionary<string, object?> pointer = made.ToMap();
        pointer["holder"] = elsewhere;
        pointer["seal"] = PointerSeal.Compute(holder.Queue.PointerKey.Span, elsewhere, made.Path, made.Endpoint, made.Alternates);

        string folder = Directory.CreateTempSubdirectory("ipyrpc-worker-trust-").FullName;
        try
        {
            foreach (string[] trusted in new[] { Array.Empty<string>(), [$"zmq://127.0.0.1:{made.Port}"] })
            {
                // A server that only queues, and a worker of the same file that runs ptr.sum.
                string file = Path.Combine(folder, $"jobs-{trusted.Length}.db");
                await using var queue = new IpyRpc.Jobs.SqliteJobQueue(file);
                await using var server = new IpyRpcServer(new IpyRpcServerOptions { Queue = queue, Concurrency = 0 });
                server.Register(typeof(PointerFunctions));
                await using var workerQueue = new IpyRpc.Jobs.SqliteJobQueue(file);
                await using var worker = new IpyRpcWorker(workerQueue, new IpyRpcWorkerOptions { TrustedHolders = trusted });
                worker.Register(typeof(PointerFunctions)).Start();
                await using IpyRpcClient client = await IpyRpcClient.ConnectInProcessAsync(server, new IpyRpcClientOptions { Output = (_, _) => { } });

                if (trusted.Length == 0)
                {
                    var e = await Assert.ThrowsAsync<IpyRpcPointerException>(() => client.CallAsync<double>("ptr.sum", pointer));
                    Assert.Equal(ErrorCodes.PointerDenied, e.Code);
                    Assert.Contains("IpyRpcWorkerOptions.TrustedHolders on a worker, empty", e.Message);
                }
                else
                {
                    Assert.Equal(10.0, await client.CallAsync<double>("ptr.sum", pointer)); // fetched by the worker from the listed holder
                }
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
