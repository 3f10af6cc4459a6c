using System.Security.Claims;
using IpyRpc;
using IpyRpc.Jobs;

namespace IpyRpc.Tests.Calls;

/// <summary>What a running call reaches of its job and caller: console output, items and progress, its connection.</summary>
public sealed class CallHostTests
{
    private sealed class Recorded : IJobOutput
    {
        public List<(OutputStream Stream, string Text)> Writes { get; } = [];

        public void Write(OutputStream stream, string text)
        {
            lock (Writes) Writes.Add((stream, text));
        }
    }

    [Fact]
    public void ConsoleOutputGoesOnByWholeLinesAndAnItemComesAfterTheTextPrintedBeforeIt()
    {
        var output = new Recorded();
        var host = new CallHost(output, CancellationToken.None, null, null);
        host.Flush(); // nothing printed yet: nothing to send, and nothing made
        host.Write(OutputStream.Stdout, "half a ");
        Assert.Empty(output.Writes);
        host.Write(OutputStream.Stdout, "line\nand more");
        Assert.Equal([(OutputStream.Stdout, "half a line\n")], output.Writes);

        host.Data(JobData.Items, "item");
        Assert.Equal([(OutputStream.Stdout, "half a line\n"), (OutputStream.Stdout, "and more"), (JobData.Items, "item")], output.Writes);
    }

    [Fact]
    public void AfterCloseTheRestIsSentAndLaterPrintingIsDropped()
    {
        var printed = new Recorded();
        var host = new CallHost(printed, CancellationToken.None, null, null);
        host.Write(OutputStream.Stderr, "unfinished");
        host.Close();
        host.Write(OutputStream.Stderr, "too late\n");
        host.Flush();
        Assert.Equal([(OutputStream.Stderr, "unfinished")], printed.Writes);

        // A call that printed nothing before its job ended cannot start printing after it either.
        var silent = new Recorded();
        var quiet = new CallHost(silent, CancellationToken.None, null, null);
        quiet.Close();
        quiet.Write(OutputStream.Stdout, "too late\n");
        Assert.Empty(silent.Writes);
    }

    [Fact]
    public void TheCallersConnectionIsTheLiveOneWhenThereIsOneAndItsRecordedIdentityOtherwise()
    {
        var principal = new ClaimsPrincipal(new ClaimsIdentity([new Claim(ClaimTypes.Name, "ada")], "test"));
        var live = new IpyRpcConnection("zeromq", "127.0.0.1:5000", principal);
        JobCaller caller = JobCaller.Of(live);

        Assert.Same(live, new CallHost(new Recorded(), default, caller, id => id == live.Id ? live : null).Connection());

        IpyRpcConnection elsewhere = new CallHost(new Recorded(), default, caller, _ => null).Connection()!;
        Assert.NotSame(live, elsewhere);
        Assert.Equal((live.Id, "zeromq", "127.0.0.1:5000", "ada"), (elsewhere.Id, elsewhere.Transport, elsewhere.RemoteAddress, elsewhere.Principal.Identity?.Name));
        Assert.True(elsewhere.IsAuthenticated);

        Assert.Null(new CallHost(new Recorded(), default, null, _ => live).Connection()); // no caller recorded
    }

    [Fact]
    public void AConnectionIsAuthenticatedExactlyWhileItsPrincipalIs()
    {
        var connection = new IpyRpcConnection("http", "127.0.0.1:1");
        Assert.False(connection.IsAuthenticated);
        var ada = new ClaimsPrincipal(new ClaimsIdentity([new Claim(ClaimTypes.Name, "ada")], "test"));
        connection.Authenticate(ada);
        Assert.True(connection.IsAuthenticated);
        Assert.Same(ada, connection.Principal);
        connection.Authenticate(new ClaimsPrincipal(new ClaimsIdentity()));
        Assert.False(connection.IsAuthenticated);
        Assert.True(new IpyRpcConnection("http", null, ada).IsAuthenticated);
    }
}
