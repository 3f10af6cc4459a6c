namespace IpyRpc;

/// <summary>
/// Marks an interface as a contract: every method it declares is a remote function. The source
/// generator, running in the project that declares the interface (a contracts library), emits
/// the typed client proxy with the interface's XML docs, the dispatch that calls an implementation
/// through the interface, and the formatters of the records and enums the methods use. A server
/// references the contracts, implements the interface and registers an instance
/// (<c>server.Register(new Calculator())</c>); a client references only the contracts and calls
/// through the proxy (<c>client.Proxy&lt;CalculatorClient&gt;()</c>).
/// </summary>
/// <remarks>
/// A method is exported under its own name, or under the name given by an
/// <see cref="IpyRpcExportAttribute"/> on it (<c>[IpyRpcExport("calc.add")]</c>). The methods of
/// inherited interfaces are not exported by this one; mark those interfaces too. The proxy is named
/// after the interface without its leading <c>I</c>: <c>ICalculator</c> gets <c>CalculatorClient</c>.
/// </remarks>
[AttributeUsage(AttributeTargets.Interface, AllowMultiple = false, Inherited = false)]
public sealed class IpyRpcContractAttribute : Attribute
{
}
