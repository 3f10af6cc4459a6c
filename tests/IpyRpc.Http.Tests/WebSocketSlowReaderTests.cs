using IpyRpc.Tests;

namespace IpyRpc.Http.Tests;

/// <summary>
/// Over the WebSocket carrier (packed, its sends queued), a client that stops reading slows a printing function to
/// its pace, through every buffer between them, and loses nothing once it reads again.
/// </summary>
public sealed class WebSocketSlowReaderTests
{
    [Fact]
    public async Task AFunctionPrintingToAClientThatStopsReadingIsSlowedToItsPaceAndLosesNothing()
    {
        // 30 MB of output: more than the server's queue for the connection (1 MiB), Kestrel's and the kernel's buffers
        // and the 256 KiB of output a call may have waiting can hold.
        const int lines = 30_000;
        Volatile.Write(ref Talkers.Flooded, 0);
        await using var server = new IpyRpcServer(new IpyRpcServerOptions { MaxBufferedOutputBytesPerCall = 256 * 1024 });
        server.Register(typeof(Talkers));
        int disconnects = 0;
        server.ClientDisconnected += (_, _) => Interlocked.Increment(ref disconnects);
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server);

        // The client's output handler runs on its receiving thread: held, the client reads nothing more.
        using var reading = new ManualResetEventSlim(false);
        int heard = 0;
        await using IpyRpcClient client = await IpyRpcHttpClient.ConnectAsync(host.Address, HttpCarrier.WebSocket, new IpyRpcClientOptions
        {
            Output = (_, _) =>
            {
                reading.Wait();
                Interlocked.Increment(ref heard);
            },
        });
        try
        {
            Task<int> call = client.CallAsync<int>("slow.flood", lines);

            // The function stalls: its count stops moving, short of the end.
            int now = Assert.IsType<int>(await Talkers.FloodStalledAsync());
            Assert.InRange(now, 1, lines / 2);
            Assert.False(call.IsCompleted);

            reading.Set();
            Assert.Equal(lines, await call.WaitAsync(TimeSpan.FromSeconds(60)));
            Assert.Equal(lines, Volatile.Read(ref heard)); // every line, once the client reads again
            Assert.Equal(0, Volatile.Read(ref disconnects));
            Assert.Equal(7, await client.CallAsync<int>("slow.flood", 7));
        }
        finally
        {
            reading.Set();
        }
    }
}
