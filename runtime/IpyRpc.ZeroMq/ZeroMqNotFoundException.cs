namespace IpyRpc.ZeroMq;

/// <summary>libzmq could not be loaded. The message says what to install.</summary>
public sealed class ZeroMqNotFoundException : Exception
{
    internal ZeroMqNotFoundException(Exception? inner)
        : base("The ZeroMQ transport needs the native libzmq 4.3 library, which was not found. Install it: Debian/Ubuntu `apt-get install libzmq5`, Fedora `dnf install zeromq`, macOS `brew install zeromq`, Windows: put libzmq.dll beside the application.", inner)
    {
    }

    internal ZeroMqNotFoundException(string message) : base(message) { }
}
