using System.Collections.Concurrent;

namespace IpyRpc.Tests;

/// <summary>Named signals that tests and exported functions share, so a test can hold a function mid-call.</summary>
public static class Gates
{
    private static readonly ConcurrentDictionary<string, TaskCompletionSource> All = new();

    public static TaskCompletionSource Get(string name) => All.GetOrAdd(name, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

    public static void Open(string name) => Get(name).TrySetResult();

    public static Task WaitAsync(string name, CancellationToken ct = default) => Get(name).Task.WaitAsync(TimeSpan.FromSeconds(30), ct);

    public static string NewName(string prefix) => prefix + "-" + Guid.NewGuid().ToString("N");
}
