namespace IpyRpc;

/// <summary>
/// Exports a method as a remote function. The source generator turns every exported method into
/// a dispatch entry, a descriptor carrying its XML documentation, serializers for its parameter
/// and return types, and a method on a typed client proxy.
/// </summary>
/// <remarks>
/// Works on static methods and on instance methods of service classes (register an instance with
/// <c>server.Register(instance)</c>). The name may be dotted (<c>math.linear.solve</c>) to group
/// functions; by default it is the method's own name.
/// </remarks>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false, Inherited = false)]
public sealed class IpyRpcExportAttribute : Attribute
{
    /// <summary>Exports the method under its own name.</summary>
    public IpyRpcExportAttribute() { }

    /// <summary>Exports the method under <paramref name="name"/>.</summary>
    public IpyRpcExportAttribute(string name) => Name = name;

    /// <summary>The external name, or <see langword="null"/> for the method's own name.</summary>
    public string? Name { get; }
}
