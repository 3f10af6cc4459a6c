using IpyRpc.Jobs;

namespace IpyRpc;

/// <summary>
/// What a running call reaches of its job and its caller, in one object a call: the console output it writes
/// (buffered a line at a time, the buffer made when it first prints), its stream items and progress reports, the
/// slowing down a slow reader asks for, and the connection it was called from.
/// </summary>
internal sealed class CallHost(IJobOutput output, CancellationToken cancellationToken, JobCaller? caller, Func<string, IpyRpcConnection?>? liveConnections) : IOutputSink
{
    private readonly IOutputBackpressure? _pressure = output as IOutputBackpressure;
    private LineBufferedSink? _sink;
    private bool _closed;

    /// <summary>Console output: buffered to whole lines, then into the job's record.</summary>
    public void Write(OutputStream stream, string text) => Sink()?.Write(stream, text);

    /// <summary>Hands on buffered console output now.</summary>
    public void Flush() => Volatile.Read(ref _sink)?.Flush();

    /// <summary>Flushes and takes no more console output: a call left running past its job's end adds nothing to it.</summary>
    public void Close()
    {
        LineBufferedSink? sink;
        lock (this)
        {
            _closed = true;
            sink = _sink;
        }

        sink?.Close();
    }

    /// <summary>An item batch or progress report, after any console output written before it.</summary>
    public void Data(OutputStream stream, string text)
    {
        Flush();
        output.Write(stream, text);
        if (stream == JobData.Progress) WaitForRoom(); // stream items have their caller's credit window instead
    }

    /// <summary>The caller's connection: the live one when it is connected to this process, else (a worker elsewhere) its recorded identity.</summary>
    public IpyRpcConnection? Connection() => caller is null ? null
        : liveConnections?.Invoke(caller.ConnectionId) ?? new IpyRpcConnection(caller.ConnectionId, caller.Transport, caller.RemoteAddress, caller.Principal);

    // A caller that reads slowly slows the function's printing and progress reports, rather than its backlog growing without bound.
    private void WaitForRoom() => _pressure?.WaitForRoom(cancellationToken);

    private LineBufferedSink? Sink()
    {
        LineBufferedSink? sink = Volatile.Read(ref _sink);
        if (sink is not null) return sink;
        lock (this)
        {
            // Most calls print nothing: the buffer (and its two delegates) exist only for one that does.
            return _closed ? null : _sink ??= new LineBufferedSink(output.Write, _pressure is null ? null : WaitForRoom);
        }
    }
}
