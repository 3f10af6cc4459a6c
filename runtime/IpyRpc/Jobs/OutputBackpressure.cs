namespace IpyRpc.Jobs;

/// <summary>
/// Something output flows through that can tell a producer to wait: a caller's relay whose reader is slow,
/// or a lease whose job has such a caller. <see cref="WaitForRoom"/> returns at once when there is room.
/// </summary>
internal interface IOutputBackpressure
{
    /// <summary>
    /// Blocks while too much of the output waits for its reader; returns when there is room, the reader is gone, or
    /// <paramref name="cancellationToken"/> fires. It is called for every line, so it returns at once, holding
    /// nothing, when there is room; when it must block it lets go of the console writers' locks first.
    /// </summary>
    void WaitForRoom(CancellationToken cancellationToken);
}
