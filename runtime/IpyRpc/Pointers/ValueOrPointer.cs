namespace IpyRpc;

/// <summary>
/// An argument that is either a value sent with the call or a <see cref="RemotePointer{T}"/> to one
/// held elsewhere, resolved where the function runs (by the holder itself without a byte moving).
/// Typed proxies take their record, matrix, tensor and data-frame parameters this way: pass the value,
/// or pass a pointer; each converts implicitly. (Collection parameters keep their own type, so a collection
/// expression such as <c>[1.0, 2.0]</c> can be passed, and the proxy has an overload taking a pointer for them.)
/// </summary>
/// <typeparam name="T">The parameter's type.</typeparam>
public readonly struct ValueOrPointer<T>
{
    private ValueOrPointer(T value, RemotePointer<T>? pointer)
    {
        Value = value;
        Pointer = pointer;
    }

    /// <summary>The value, when this is not a pointer.</summary>
    public T Value { get; }

    /// <summary>The pointer, when this is one; <see langword="null"/> for a value.</summary>
    public RemotePointer<T>? Pointer { get; }

    /// <summary>Whether this is a pointer.</summary>
    public bool IsPointer => Pointer is not null;

    /// <summary>The value itself.</summary>
    public static implicit operator ValueOrPointer<T>(T value) => new(value, null);

    /// <summary>A pointer to the value (declared here for languages without implicit conversions; C# converts a <see cref="RemotePointer{T}"/> implicitly).</summary>
    /// <param name="pointer">The pointer.</param>
    /// <returns>The argument.</returns>
    public static ValueOrPointer<T> Of(RemotePointer<T> pointer) => new(default!, pointer ?? throw new ArgumentNullException(nameof(pointer)));

    /// <inheritdoc/>
    public override string ToString() => Pointer?.ToString() ?? Value?.ToString() ?? "null";
}
