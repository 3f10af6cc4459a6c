using System.Collections.Concurrent;
using System.ComponentModel;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace IpyRpc;

/// <summary>
/// Where generated code registers the functions of each type with exported methods, so that
/// <c>server.Register(typeof(Compute))</c> finds them with a dictionary lookup and no reflection.
/// Generated module initializers call <see cref="Add"/>; users do not.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static class GeneratedServices
{
    private static readonly ConcurrentDictionary<Type, GeneratedService> Services = new();

    /// <summary>Records the functions of <see cref="GeneratedService.Type"/>.</summary>
    public static void Add(GeneratedService service) => Services[service.Type] = service;

    /// <summary>The generated functions of <paramref name="type"/> or its nearest base type that has some.</summary>
    public static GeneratedService? Find(Type type)
    {
        for (Type? t = type; t is not null; t = t.BaseType)
        {
            // A type in another assembly may not have run that assembly's module initializer yet.
            RuntimeHelpers.RunModuleConstructor(t.Module.ModuleHandle);
            if (Services.TryGetValue(t, out GeneratedService? s)) return s;
        }

        return null;
    }

    /// <summary>
    /// The generated functions of the contracts (<see cref="IpyRpcContractAttribute"/> interfaces)
    /// that <paramref name="type"/> implements (for an interface: those it extends), in the order of their names.
    /// </summary>
    [UnconditionalSuppressMessage("Trimming", "IL2070", Justification = "Only interfaces with generated dispatch matter; that dispatch references the interface, so the trimmer keeps it and its implementations on registered types.")]
    public static IReadOnlyList<GeneratedService> FindContracts(Type type)
    {
        var found = new List<GeneratedService>();
        foreach (Type contract in type.GetInterfaces())
        {
            RuntimeHelpers.RunModuleConstructor(contract.Module.ModuleHandle);
            if (Services.TryGetValue(contract, out GeneratedService? s)) found.Add(s);
        }

        found.Sort(static (a, b) => string.CompareOrdinal(a.Type.FullName, b.Type.FullName));
        return found;
    }

    /// <summary>Every type with generated functions.</summary>
    public static IReadOnlyCollection<GeneratedService> All => [.. Services.Values];
}

/// <summary>The generated functions of one type.</summary>
/// <param name="Type">The type that declares the exported methods.</param>
/// <param name="HasInstanceMethods">Whether any of them is an instance method (the type needs an instance).</param>
/// <param name="CreateInstance">Creates an instance with the public parameterless constructor, when there is one.</param>
/// <param name="CreateFunctions">Makes the functions, bound to an instance (or <see langword="null"/> for static-only types).</param>
/// <param name="Events">The events the type declares (<see cref="IpyRpcEventAttribute"/>), with their docs.</param>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed record GeneratedService(Type Type, bool HasInstanceMethods, Func<object>? CreateInstance, Func<object?, IReadOnlyList<IpyRpcFunction>> CreateFunctions, IReadOnlyList<EventDescriptor>? Events = null);
