using System.ComponentModel;

namespace IpyRpc;

/// <summary>
/// What a client generated from a schema file recorded of a server's event: the payload's fingerprint, its type as the
/// schema shows it, and the file, for the check made when subscribing (<see cref="IpyRpcEvent{T}.Schema"/>). Generated
/// code makes it.
/// </summary>
/// <param name="Fingerprint">The payload's fingerprint, as the server reported it when the schema was written.</param>
/// <param name="Shown">The payload's type as the schema shows it, for the message.</param>
/// <param name="File">The schema file's name, for the message.</param>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed record SchemaStamp(string Fingerprint, string Shown, string File);
