namespace IpyRpc;

/// <summary>
/// Gives a type a wire format of your own: the source generator uses <see cref="FormatterType"/> (a class
/// deriving from <see cref="Formatting.IpyRpcFormatter{T}"/> with a public parameterless constructor) wherever
/// an exported function, an event or a member of a record takes or returns that type, in MessagePack and in JSON.
/// </summary>
/// <remarks>
/// <para>
/// On your own type, it names the formatter for that type:
/// <code>
/// [IpyRpcFormatter(typeof(MoneyFormatter))]
/// public readonly record struct Money(long Cents, string Currency);
/// </code>
/// For a type you cannot annotate (a framework or library type such as <see cref="Uri"/> or
/// <c>System.Numerics.BigInteger</c>), put it on the assembly; the type is the formatter's <c>T</c>:
/// <code>
/// [assembly: IpyRpcFormatter(typeof(UriFormatter))]   // UriFormatter : IpyRpcFormatter&lt;Uri&gt;
/// </code>
/// </para>
/// <para>
/// A generic type may name its formatter's open form (<c>typeof(PairFormatter&lt;,&gt;)</c>), made with the type's arguments.
/// The formatter is made once and shared: it must be safe to use from several threads. Given for a type IpyRpc
/// formats itself (<see cref="DateTime"/>, an enum, <c>int[]</c>…), it replaces that format in the functions of the
/// assembly that names it.
/// Descriptors show the type by name with <c>x-ipyrpc: custom</c> in its schema; clients that have only the
/// schema (a generated schema client, Python) see the value as the plain data the formatter writes.
/// </para>
/// </remarks>
/// <param name="formatterType">The formatter: a non-abstract class deriving from <see cref="Formatting.IpyRpcFormatter{T}"/>.</param>
[AttributeUsage(AttributeTargets.Class | AttributeTargets.Struct | AttributeTargets.Assembly, AllowMultiple = true, Inherited = false)]
public sealed class IpyRpcFormatterAttribute(Type formatterType) : Attribute
{
    /// <summary>The formatter's type.</summary>
    public Type FormatterType { get; } = formatterType;
}
