using IpyRpc.Formatting;

namespace IpyRpc;

/// <summary>
/// Marks a static field or property of type <see cref="IpyRpcEvent{T}"/> as an event the server
/// publishes. The generator gives the payload type its formatters and the event a descriptor with the
/// member's XML docs, which <c>server.Register(typeof(DeclaringType))</c> makes known to clients.
/// </summary>
/// <example>
/// <code>
/// public static class ChatEvents
/// {
///     /// &lt;summary&gt;Someone said something in the room.&lt;/summary&gt;
///     [IpyRpcEvent] public static readonly IpyRpcEvent&lt;ChatLine&gt; Said = new("chat.said");
/// }
/// </code>
/// </example>
[AttributeUsage(AttributeTargets.Field | AttributeTargets.Property, Inherited = false)]
public sealed class IpyRpcEventAttribute : Attribute
{
}

/// <summary>A typed event: its name on the wire and its payload type. Servers publish it; clients subscribe to it.</summary>
/// <typeparam name="T">The payload type.</typeparam>
public sealed class IpyRpcEvent<T>
{
    /// <summary>Declares the event <paramref name="name"/> (letters, digits, <c>_</c>, <c>-</c>; dots make namespaces: <c>chat.said</c>).</summary>
    /// <exception cref="ArgumentException">The name is empty or has characters that are not allowed.</exception>
    public IpyRpcEvent(string name)
    {
        if (string.IsNullOrWhiteSpace(name) || name.StartsWith('.') || name.EndsWith('.') || name.Contains("..", StringComparison.Ordinal)
            || name.Any(c => !(char.IsLetterOrDigit(c) || c is '_' or '-' or '.')))
        {
            throw new ArgumentException($"'{name}' is not an event name: use letters, digits, '_', '-', and dots between non-empty segments.", nameof(name));
        }

        Name = name;
    }

    /// <summary>The name on the wire.</summary>
    public string Name { get; }

    /// <summary>The payload's formatter (generated for the payload type).</summary>
    public IpyRpcFormatter<T> Formatter => FormatterRegistry.Get<T>();

    /// <summary>
    /// Set by a client generated from a schema file: the payload as the schema recorded it. Subscribing checks it
    /// against the server's event (<see cref="SchemaMismatchException"/> when the server changed it or no longer publishes it).
    /// </summary>
    [System.ComponentModel.EditorBrowsable(System.ComponentModel.EditorBrowsableState.Never)]
    public SchemaStamp? Schema { get; init; }

    /// <inheritdoc/>
    public override string ToString() => Name;
}

/// <summary>What a client sees of an event a server publishes: its name, payload type and docs.</summary>
public sealed record EventDescriptor
{
    /// <summary>The event's name.</summary>
    public required string Name { get; init; }

    /// <summary>The payload's C# type as shown to people.</summary>
    public string PayloadType { get; init; } = "object";

    /// <summary>A JSON Schema of the payload, as JSON text.</summary>
    public string? PayloadSchema { get; init; }

    /// <summary>The <c>&lt;summary&gt;</c> of the declaration's doc comment.</summary>
    public string? Summary { get; init; }

    /// <summary>The <c>&lt;remarks&gt;</c>.</summary>
    public string? Remarks { get; init; }

    /// <summary>
    /// 16 hex digits hashing the payload's shape as it travels (as a function's fingerprint does its signature); a client
    /// generated from a schema file compares it when it subscribes. Null when the server sent none, and then nothing is checked.
    /// </summary>
    public string? Fingerprint { get; init; }

    /// <inheritdoc/>
    public override string ToString() => $"{Name}: {PayloadType}";
}
