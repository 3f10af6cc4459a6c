using System.Diagnostics.CodeAnalysis;
using System.Reflection;

namespace IpyRpc;

/// <summary>
/// The public properties a custom exception adds to <see cref="Exception"/> (a status code, the
/// offending value), read as plain data so they can travel with the error. Values that are not
/// plain data (numbers, strings, booleans, dates, enums, GUIDs, lists of those) travel as their text.
/// </summary>
internal static class ExceptionData
{
    // Exception's own public properties: the error carries these already, or they mean nothing remotely.
    private static readonly HashSet<string> Inherited = ["Message", "Data", "InnerException", "TargetSite", "StackTrace", "HelpLink", "Source", "HResult"];

    // Only on failures, never on the call path. Under trimming, properties nothing else uses may be gone: they are simply not sent.
    [UnconditionalSuppressMessage("Trimming", "IL2075", Justification = "Best effort: an exception's extra properties are reported when they survive trimming, and skipped otherwise.")]
    public static IReadOnlyDictionary<string, object?>? Of(Exception e)
    {
        if (e.GetType().Namespace is "System" or "System.IO" or "System.Threading.Tasks" or "System.Collections.Generic") return null;
        Dictionary<string, object?>? data = null;
        foreach (PropertyInfo p in e.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (Inherited.Contains(p.Name) || p.GetIndexParameters().Length > 0 || !p.CanRead) continue;
            object? value;
            try
            {
                value = p.GetValue(e);
            }
            catch (Exception)
            {
                continue; // a getter that throws is skipped, not the whole error
            }

            (data ??= new Dictionary<string, object?>(StringComparer.Ordinal))[char.ToLowerInvariant(p.Name[0]) + p.Name[1..]] = Plain(value, 0);
        }

        return data;
    }

    private static object? Plain(object? value, int depth) => value switch
    {
        null or string or bool or long or int or short or byte or double or float => value,
        decimal d => d.ToString(System.Globalization.CultureInfo.InvariantCulture),
        DateTime or DateTimeOffset or Guid or TimeSpan => Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture),
        Enum en => en.ToString(),
        System.Collections.IEnumerable items when depth < 2 => items.Cast<object?>().Take(100).Select(i => Plain(i, depth + 1)).ToArray(),
        _ => value.ToString(),
    };
}
