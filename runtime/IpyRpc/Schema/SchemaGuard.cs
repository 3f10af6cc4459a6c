using System.ComponentModel;
using IpyRpc.Protocol;

namespace IpyRpc;

/// <summary>
/// What a client generated from a schema file checks before each call: that the server still has the
/// function with the signature the schema recorded (its <see cref="FunctionDescriptor.Fingerprint"/>).
/// Generated code calls it; the check is a dictionary lookup and a string comparison.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static class SchemaGuard
{
    /// <summary>
    /// Throws <see cref="SchemaMismatchException"/> when <paramref name="peer"/> is a client whose server lists no
    /// <paramref name="function"/>, or lists it with another fingerprint. Nothing is checked where the peer has no
    /// function list (a server calling its client back) or the server's function has no fingerprint (registered
    /// without the generator): the call goes ahead and the server checks its arguments as for any call.
    /// </summary>
    /// <param name="peer">The connection the call goes through.</param>
    /// <param name="function">The exported name.</param>
    /// <param name="fingerprint">The fingerprint the schema recorded.</param>
    /// <param name="signature">The signature the schema recorded, for the message.</param>
    /// <param name="schemaFile">The schema file's name, for the message.</param>
    /// <returns><paramref name="peer"/>, to call through.</returns>
    public static IpyRpcPeer Checked(IpyRpcPeer peer, string function, string? fingerprint, string signature, string schemaFile)
    {
        if (peer is not IpyRpcClient client || fingerprint is null || client.Functions.Count == 0) return peer;
        FunctionDescriptor? now = client.Find(function);
        if (now is null)
        {
            throw Mismatch(function, $"The server no longer has '{function}' ({schemaFile} lists it as `{signature}`). "
                + "Write the schema again from the server (ipyrpc schema URL) and rebuild.");
        }

        if (now.Fingerprint is not null && now.Fingerprint != fingerprint)
        {
            throw Mismatch(function, $"'{function}' changed on the server since {schemaFile} was written: the schema has `{signature}`, "
                + $"the server now has `{now.Signature}`. Write the schema again from the server (ipyrpc schema URL) and rebuild.");
        }

        return peer;
    }

    /// <summary>
    /// The <see cref="SchemaMismatchException"/> for a typed event from a schema file (<paramref name="stamp"/>) that
    /// <paramref name="client"/>'s server no longer publishes, or publishes with another payload; otherwise null. Nothing
    /// is checked for an event without a stamp (declared in code the client shares) or one the server gave no fingerprint.
    /// </summary>
    internal static SchemaMismatchException? EventMismatch(IpyRpcClient client, string name, SchemaStamp? stamp)
    {
        if (stamp is null) return null;
        EventDescriptor? now = null;
        foreach (EventDescriptor e in client.Events)
        {
            if (e.Name == name) now = e;
        }

        if (now is null)
        {
            return Mismatch(name, $"The server no longer publishes the event '{name}' ({stamp.File} lists it with a payload of `{stamp.Shown}`). "
                + "Write the schema again from the server (ipyrpc schema URL) and rebuild.");
        }

        if (now.Fingerprint is not null && now.Fingerprint != stamp.Fingerprint)
        {
            return Mismatch(name, $"The event '{name}' changed on the server since {stamp.File} was written: the schema has its payload as `{stamp.Shown}`, "
                + $"the server now publishes `{now.PayloadType}`. Write the schema again from the server (ipyrpc schema URL) and rebuild.");
        }

        return null;
    }

    private static SchemaMismatchException Mismatch(string function, string message)
        => new(new RemoteError { Code = ErrorCodes.SchemaMismatch, Message = message }, function);
}
