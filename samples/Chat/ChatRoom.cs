using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using IpyRpc;

namespace Chat;

/// <summary>A line said in the room.</summary>
/// <param name="From">Who said it.</param>
/// <param name="Text">What they said.</param>
/// <param name="At">When the server heard it.</param>
public sealed record ChatLine(string From, string Text, DateTimeOffset At);

/// <summary>How a vote stands.</summary>
/// <param name="Question">What was asked.</param>
/// <param name="Yes">Members who said yes.</param>
/// <param name="No">Members who said no.</param>
/// <param name="Silent">Members who did not answer in time.</param>
public sealed record VoteTally(string Question, List<string> Yes, List<string> No, List<string> Silent);

/// <summary>What the room pushes to everyone who subscribed.</summary>
public static class ChatEvents
{
    /// <summary>Someone said something.</summary>
    [IpyRpcEvent] public static readonly IpyRpcEvent<ChatLine> Said = new("chat.said");

    /// <summary>Someone joined; the payload is their nickname.</summary>
    [IpyRpcEvent] public static readonly IpyRpcEvent<string> Joined = new("chat.joined");

    /// <summary>Someone left; the payload says who and why (closed, connection_lost, heartbeat_lost, ...).</summary>
    [IpyRpcEvent] public static readonly IpyRpcEvent<string> Left = new("chat.left");
}

/// <summary>
/// The chat room: the server half. It learns each member's nickname by calling the member back as
/// it connects, broadcasts what is said as events, and runs votes by calling every member.
/// </summary>
public sealed class ChatRoom
{
    private readonly ConcurrentDictionary<string, (IpyRpcConnection Connection, string Nickname)> _members = new();
    private readonly ConcurrentQueue<ChatLine> _history = new();
    private IpyRpcServer? _server;

    /// <summary>Joins the room to a server: members are greeted as they connect and announced as they leave.</summary>
    public void Attach(IpyRpcServer server)
    {
        _server = server;
        server.ClientConnected += connection => _ = GreetAsync(connection);
        server.ClientDisconnected += (connection, why) =>
        {
            if (_members.TryRemove(connection.Id, out var member))
            {
                server.Publish(ChatEvents.Left, $"{member.Nickname} ({why.Reason.ToString().ToLowerInvariant()})");
            }
        };
    }

    // The server calls the new member back to learn its name, then tells everyone.
    private async Task GreetAsync(IpyRpcConnection connection)
    {
        try
        {
            string nickname = await connection.Proxy<MemberClient>().Member.Nickname(new CallOptions { Timeout = TimeSpan.FromSeconds(5) });
            _members[connection.Id] = (connection, nickname);
            _server!.Publish(ChatEvents.Joined, nickname);
        }
        catch (IpyRpcException e)
        {
            Console.Error.WriteLine($"[room] {connection} did not say its name: {e.Message}");
        }
    }

    /// <summary>Says something to the room.</summary>
    /// <param name="text">What to say.</param>
    /// <param name="from">The speaker's connection (filled by the call).</param>
    /// <returns>How many subscribers the line was queued for.</returns>
    [IpyRpcExport("chat.say")]
    public int Say(string text, IpyRpcConnection from)
    {
        string nickname = _members.TryGetValue(from.Id, out var member) ? member.Nickname : "someone";
        var line = new ChatLine(nickname, text, DateTimeOffset.UtcNow);
        _history.Enqueue(line);
        return _server!.Publish(ChatEvents.Said, line);
    }

    /// <summary>The room itself says something (from the server's own code: no member calls this).</summary>
    public void Announce(string text)
    {
        var line = new ChatLine("room", text, DateTimeOffset.UtcNow);
        _history.Enqueue(line);
        _server!.Publish(ChatEvents.Said, line);
    }

    /// <summary>Who is in the room.</summary>
    [IpyRpcExport("chat.members")]
    public List<string> Members() => [.. _members.Values.Select(m => m.Nickname).Order()];

    /// <summary>Everything said so far, oldest first, as a stream.</summary>
    /// <param name="cancellationToken">Stops the stream.</param>
    [IpyRpcExport("chat.history")]
    public async IAsyncEnumerable<ChatLine> History([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        foreach (ChatLine line in _history)
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return line;
            await Task.Yield();
        }
    }

    /// <summary>Asks every member a yes/no question by calling each of them back; reports the tally as answers come in.</summary>
    /// <param name="question">The question.</param>
    /// <param name="progress">The tally so far, after each answer.</param>
    /// <param name="cancellationToken">Stops waiting for answers.</param>
    /// <returns>The final tally: members who do not answer within two seconds count as silent.</returns>
    [IpyRpcExport("chat.vote")]
    public async Task<VoteTally> Vote(string question, IProgress<VoteTally> progress, CancellationToken cancellationToken)
    {
        var tally = new VoteTally(question, [], [], []);
        var asks = _members.Values.Select(async member =>
        {
            bool? answer;
            try
            {
                answer = await member.Connection.Proxy<MemberClient>().Member.Vote(question, new CallOptions { Timeout = TimeSpan.FromSeconds(2) }, cancellationToken);
            }
            catch (IpyRpcException)
            {
                answer = null;
            }

            lock (tally)
            {
                (answer switch { true => tally.Yes, false => tally.No, null => tally.Silent }).Add(member.Nickname);
                progress.Report(tally with { Yes = [.. tally.Yes], No = [.. tally.No], Silent = [.. tally.Silent] });
            }
        });
        await Task.WhenAll(asks);
        return tally;
    }
}
