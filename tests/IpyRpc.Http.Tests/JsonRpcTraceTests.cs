using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using IpyRpc.Http;
using IpyRpc.Tests.BothWays;

namespace IpyRpc.Http.Tests;

public sealed class JsonRpcTraceTests
{
    [Fact]
    public async Task AJsonRpcCallersTraceparentHeaderParentsTheServerSpan()
    {
        var spans = new ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == IpyRpcTelemetry.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = spans.Enqueue,
        };
        ActivitySource.AddActivityListener(listener);
        await using var server = new IpyRpcServer();
        server.Register(typeof(ServerSide));
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server);
        using var http = new HttpClient { BaseAddress = host.Address };
        using var request = new HttpRequestMessage(HttpMethod.Post, "rpc") { Content = new StringContent("""{"jsonrpc":"2.0","method":"bw.work","params":[1],"id":1}""", Encoding.UTF8, "application/json") };
        request.Headers.TryAddWithoutValidation("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
        using HttpResponseMessage response = await http.SendAsync(request);
        Assert.Contains("\"result\":\"done\"", await response.Content.ReadAsStringAsync());

        DateTime until = DateTime.UtcNow.AddSeconds(5);
        // Other tests of this assembly may call bw.work meanwhile: this call's spans are those of the header's trace.
        bool Ours(Activity a) => a.Kind == ActivityKind.Server && a.DisplayName == "bw.work" && a.TraceId.ToHexString() == "0af7651916cd43dd8448eb211c80319c";
        while (!spans.Any(Ours) && DateTime.UtcNow < until) await Task.Delay(20);
        Activity serverSpan = Assert.Single(spans, Ours);
        Assert.Equal("b7ad6b7169203331", serverSpan.ParentSpanId.ToHexString());
    }
}
