namespace IpyRpc.Formatting;

/// <summary>A value could not be serialized or deserialized (wrong type, malformed input, out of range).</summary>
public class IpyRpcSerializationException : Exception
{
    /// <summary>Creates the exception.</summary>
    public IpyRpcSerializationException(string message, Exception? inner = null) : base(message, inner) { }
}
