using IpyRpc;

namespace Chat;

/// <summary>
/// A member of the room: the client half. Its methods are exported by the client, so the server
/// can call them back over the member's own connection.
/// </summary>
public sealed class Member(string nickname, Func<string, bool> opinion)
{
    /// <summary>This member's nickname.</summary>
    [IpyRpcExport("member.nickname")]
    public string Nickname() => nickname;

    /// <summary>Answers a yes/no question; what it prints goes back to the server as it is written.</summary>
    /// <param name="question">The question.</param>
    [IpyRpcExport("member.vote")]
    public bool Vote(string question)
    {
        bool yes = opinion(question);
        Console.WriteLine($"{nickname} thinks about '{question}': {(yes ? "yes" : "no")}");
        return yes;
    }
}
