// The generator targets netstandard2.0, which lacks the types records and init setters need.
namespace System.Runtime.CompilerServices
{
    internal static class IsExternalInit { }
}
