using System.Text.RegularExpressions;

namespace IpyRpc.Integration.Tests;

/// <summary>samples/Chat, run as a newcomer runs it, over each duplex transport.</summary>
public sealed class ChatSampleTests
{
    [Theory]
    [InlineData("WebSocket")]
    [InlineData("ZeroMQ")]
    public async Task TheChatServerCallsItsMembersBackAndBroadcastsEvents(string transport)
    {
        string output = await SampleProcess.RunAsync("Chat.dll", transport == "ZeroMQ" ? ["--zmq"] : []);

        Assert.Contains($"room open over {transport}", output);
        Assert.Contains("members: ann, bob, cy", output); // names learned by calling each member back
        foreach (string who in new[] { "ann", "bob", "cy" })
        {
            Assert.Contains($"  {who} hears ann: hello, room", output); // an event to every subscriber
            Assert.Contains($"  {who} hears bob: hi ann", output);
            Assert.Contains($"  [output] {who} thinks about 'pizza tonight?'", output); // a member's output, relayed through the server
        }

        Assert.Equal(3, Regex.Matches(output, @"vote so far: \d yes, \d no").Count); // progress, one report per answer
        Assert.Contains("vote on 'pizza tonight?': yes ann, bob; no cy", output);
        int history = output.IndexOf("history, as a stream:", StringComparison.Ordinal);
        Assert.True(history >= 0, output);
        int first = output.IndexOf("\n  ann: hello, room", history, StringComparison.Ordinal);
        Assert.True(first > history && output.IndexOf("\n  bob: hi ann", first, StringComparison.Ordinal) > first, output); // in the order said
        // The listener restarted while the room stayed up: every member reconnected and heard what was said meanwhile.
        int restart = output.IndexOf("the listener restarts", StringComparison.Ordinal);
        Assert.True(restart > history, output);
        foreach (string who in new[] { "ann", "bob", "cy" })
        {
            Assert.True(output.IndexOf($"  {who} hears room: said while you were away", restart, StringComparison.Ordinal) > restart, output);
        }

        Assert.Contains("  ann sees cy (closed) leave", output);
        Assert.Contains("  bob sees cy (closed) leave", output);
        Assert.EndsWith("room closed", output.TrimEnd());
    }
}
