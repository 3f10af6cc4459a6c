namespace IpyRpc;

/// <summary>
/// One callable function: its descriptor and a generated invoker that reads the arguments,
/// calls the method without reflection and writes the result.
/// </summary>
public sealed class IpyRpcFunction
{
    /// <summary>Creates a function.</summary>
    /// <param name="descriptor">Name, signature and docs.</param>
    /// <param name="invoker">Reads arguments from the invocation, calls the method, and completes the invocation.</param>
    /// <param name="isSynchronous">Whether the method returns without awaiting (it then runs on a worker of its own when a timeout must be able to cut it short).</param>
    /// <param name="target">The service instance for instance methods.</param>
    public IpyRpcFunction(FunctionDescriptor descriptor, Func<IpyRpcInvocation, ValueTask> invoker, bool isSynchronous, object? target = null)
    {
        Descriptor = descriptor;
        Invoker = invoker;
        IsSynchronous = isSynchronous;
        Target = target;
    }

    /// <summary>The descriptor.</summary>
    public FunctionDescriptor Descriptor { get; }

    /// <summary>The exported name.</summary>
    public string Name => Descriptor.Name;

    /// <summary>The generated invoker.</summary>
    public Func<IpyRpcInvocation, ValueTask> Invoker { get; }

    /// <summary>Whether the method is synchronous.</summary>
    public bool IsSynchronous { get; }

    /// <summary>The service instance for instance methods; <see langword="null"/> for static ones.</summary>
    public object? Target { get; }

    /// <summary>
    /// The formatter of each parameter in <see cref="FunctionDescriptor.Parameters"/>, in order (generated dispatch sets
    /// them): a job's arguments are read with them when it is submitted, so a wrong type is refused then rather than
    /// found where the job runs. <see langword="null"/>: arguments are checked where the function runs only.
    /// </summary>
    public IReadOnlyList<Formatting.IpyRpcFormatter>? ArgumentFormatters { get; init; }

    /// <summary>The same function under another exported name (the seed's <c>server.register(name, fn)</c>).</summary>
    public IpyRpcFunction WithName(string name) => new(Descriptor with { Name = name }, Invoker, IsSynchronous, Target) { ArgumentFormatters = ArgumentFormatters };
}
