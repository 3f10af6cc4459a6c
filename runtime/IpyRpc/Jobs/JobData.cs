namespace IpyRpc.Jobs;

/// <summary>
/// Stream items and progress reports ride in a job's record as output of two streams of their own,
/// so every queue (in-memory, SQLite, Redis) keeps them in order with the console output and replays
/// them to a caller that attaches later, with no change to the queues' storage. The text is the
/// encoded bytes in base64 behind one letter naming their serialization (<c>m</c> MessagePack,
/// <c>j</c> JSON). They never reach a caller as <c>output</c> and are left out of <see cref="JobInfo.Output"/>.
/// </summary>
public static class JobData
{
    /// <summary>The stream code of a batch of stream items (an array of items, encoded).</summary>
    public const OutputStream Items = (OutputStream)2;

    /// <summary>The stream code of one progress report (the reported value, encoded).</summary>
    public const OutputStream Progress = (OutputStream)3;

    /// <summary>Whether a piece of recorded output is console text (not items or progress).</summary>
    public static bool IsConsole(OutputStream stream) => stream is OutputStream.Stdout or OutputStream.Stderr;

    /// <summary>The record text of encoded data.</summary>
    public static string Encode(Serialization serialization, ReadOnlySpan<byte> data)
        => (serialization == Serialization.Json ? "j" : "m") + Convert.ToBase64String(data);

    /// <summary>Reads data back from its record text.</summary>
    /// <exception cref="FormatException">The text is not data this class wrote.</exception>
    public static (Serialization Serialization, byte[] Bytes) Decode(string text)
    {
        if (text.Length == 0 || text[0] is not ('j' or 'm')) throw new FormatException("Recorded job data must start with 'j' or 'm'.");
        return (text[0] == 'j' ? Serialization.Json : Serialization.MessagePack, Convert.FromBase64String(text.AsSpan(1).ToString()));
    }
}
