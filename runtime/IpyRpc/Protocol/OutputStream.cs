namespace IpyRpc;

/// <summary>Which of the callee's console streams a piece of output came from.</summary>
public enum OutputStream
{
    /// <summary>Standard output (<see cref="Console.Out"/>).</summary>
    Stdout,
    /// <summary>Standard error (<see cref="Console.Error"/>).</summary>
    Stderr,
}
