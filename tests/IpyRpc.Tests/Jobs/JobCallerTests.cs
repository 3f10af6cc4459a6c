using System.Security.Claims;
using IpyRpc.Jobs;

namespace IpyRpc.Tests.Jobs;

public sealed class JobCallerTests
{
    /// <summary>A principal that counts how often its identity is looked up (the runtime's goes through its identities each time).</summary>
    private sealed class CountingPrincipal(string name) : ClaimsPrincipal(new ClaimsIdentity([new Claim(ClaimTypes.Name, name)], "test"))
    {
        public int Lookups;

        public override System.Security.Principal.IIdentity? Identity
        {
            get
            {
                Interlocked.Increment(ref Lookups);
                return base.Identity;
            }
        }
    }

    [Fact]
    public void ACallersNameIsReadOnceAndFollowsAPrincipalGivenWithWith()
    {
        var ada = new CountingPrincipal("ada");
        var caller = new JobCaller("c1", "zmq", "127.0.0.1:5000", ada);
        int made = ada.Lookups;
        for (int i = 0; i < 5; i++) Assert.Equal("ada", caller.Name);
        Assert.Equal(made, ada.Lookups); // the queue reads it for every job it files: not a lookup each time

        var grace = new CountingPrincipal("grace");
        JobCaller other = caller with { Principal = grace };
        Assert.Equal("grace", other.Name);
        Assert.Same(grace, other.Principal);
        Assert.Equal("ada", caller.Name);

        Assert.Null(new JobCaller("c2", "http", null, new ClaimsPrincipal(new ClaimsIdentity())).Name);
        Assert.Equal(caller, new JobCaller("c1", "zmq", "127.0.0.1:5000", ada));
    }
}
