using System.Globalization;

namespace IpyRpc.Bench;

/// <summary>
/// What a process has spent so far, from Linux's <c>/proc</c>: its CPU time, and the context switches of its
/// live threads (a thread that has ended takes its count with it). Loop mode reads it before and after the timed calls, for itself and for a server process, to show
/// how many thread wake-ups a call costs on each side, and how its CPU time splits between the process's own code
/// (user) and the kernel's (system), and how many page faults (first touches of fresh memory, mostly) a call takes.
/// </summary>
internal readonly record struct ProcessCost(double UserSeconds, double SystemSeconds, long VoluntarySwitches, long InvoluntarySwitches, long PageFaults)
{
    public static ProcessCost? Read(int pid)
    {
        string tasks = $"/proc/{pid}/task";
        if (!Directory.Exists(tasks)) return null;
        // stat: the fields after the command's closing parenthesis; minflt is the 8th of them, utime and stime the 12th and 13th
        string stat = File.ReadAllText($"/proc/{pid}/stat");
        string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        double user = double.Parse(fields[11], CultureInfo.InvariantCulture), system = double.Parse(fields[12], CultureInfo.InvariantCulture);
        long faults = long.Parse(fields[7], CultureInfo.InvariantCulture);
        long voluntary = 0, involuntary = 0;
        foreach (string task in Directory.EnumerateDirectories(tasks))
        {
            try
            {
                foreach (string line in File.ReadLines(Path.Combine(task, "status")))
                {
                    if (line.StartsWith("voluntary_ctxt_switches:", StringComparison.Ordinal)) voluntary += long.Parse(line.AsSpan(24).Trim(), CultureInfo.InvariantCulture);
                    else if (line.StartsWith("nonvoluntary_ctxt_switches:", StringComparison.Ordinal)) involuntary += long.Parse(line.AsSpan(27).Trim(), CultureInfo.InvariantCulture);
                }
            }
            catch (IOException)
            {
                // the thread ended while we read it
            }
        }

        return new ProcessCost(user / 100.0, system / 100.0, voluntary, involuntary, faults); // USER_HZ is 100 on Linux
    }

    /// <summary>"… µs CPU (user …, system …) and … context switches and … page faults a call" for what was spent between <paramref name="before"/> and <paramref name="after"/>.</summary>
    public static string PerCall(ProcessCost? before, ProcessCost? after, int calls) => before is { } b && after is { } a
        ? $"{Us(a.UserSeconds + a.SystemSeconds - b.UserSeconds - b.SystemSeconds, calls)} µs CPU (user {Us(a.UserSeconds - b.UserSeconds, calls)}, system {Us(a.SystemSeconds - b.SystemSeconds, calls)}) and {(a.VoluntarySwitches - b.VoluntarySwitches) / (double)calls:0.00} + {(a.InvoluntarySwitches - b.InvoluntarySwitches) / (double)calls:0.00} (voluntary + not) context switches and {(a.PageFaults - b.PageFaults) / (double)calls:0.0} page faults a call"
        : "(no /proc here)";

    private static string Us(double seconds, int calls) => (seconds * 1e6 / calls).ToString("0.0", CultureInfo.InvariantCulture);
}
