using Microsoft.Extensions.Logging;

namespace IpyRpc.Tests;

/// <summary>A logger factory that keeps what it is told, for tests that check what gets logged.</summary>
public sealed class ListLogger : ILoggerFactory, ILoggerProvider, ILogger
{
    public List<(LogLevel Level, string Message, Exception? Exception)> Entries { get; } = [];

    public ILogger CreateLogger(string categoryName) => this;

    public void AddProvider(ILoggerProvider provider)
    {
    }

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        lock (Entries) Entries.Add((logLevel, formatter(state, exception), exception));
    }

    public void Dispose()
    {
    }
}
