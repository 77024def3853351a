namespace Pgkd.Cli;

/// <summary>
/// The command line split into a command, positional arguments, <c>--name value</c> (or <c>--name=value</c>) options
/// and <c>--flag</c> switches. Hand-rolled: five commands with a few options each do not need a framework, and the
/// errors can say exactly which argument is wrong.
/// </summary>
public sealed class CliArguments
{
    /// <summary>Options that take no value.</summary>
    public static readonly IReadOnlySet<string> Flags = new HashSet<string>(StringComparer.Ordinal) { "watch", "help", "batch", "dry-run" };

    private readonly Dictionary<string, string> _options = new(StringComparer.Ordinal);
    private readonly HashSet<string> _flags = new(StringComparer.Ordinal);

    public string? Command { get; private set; }
    public List<string> Positionals { get; } = [];
    public IReadOnlyDictionary<string, string> Options => _options;

    public static CliArguments Parse(IReadOnlyList<string> args)
    {
        var parsed = new CliArguments();
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (arg is "-h") arg = "--help";
            if (arg == "--")
            {
                parsed.Positionals.AddRange(args.Skip(i + 1));
                break;
            }
            if (arg.StartsWith("--", StringComparison.Ordinal) && arg.Length > 2)
            {
                var name = arg[2..];
                string? value = null;
                if (name.IndexOf('=') is var eq and > 0) (name, value) = (name[..eq], name[(eq + 1)..]);
                if (Flags.Contains(name))
                {
                    if (value is not null) throw new CliException(ExitCodes.Usage, $"--{name} takes no value");
                    parsed._flags.Add(name);
                    continue;
                }
                if (value is null)
                {
                    if (i + 1 >= args.Count) throw new CliException(ExitCodes.Usage, $"--{name} needs a value");
                    value = args[++i];
                }
                if (!parsed._options.TryAdd(name, value)) throw new CliException(ExitCodes.Usage, $"--{name} is given twice");
                continue;
            }
            if (parsed.Command is null) parsed.Command = arg;
            else parsed.Positionals.Add(arg);
        }
        return parsed;
    }

    public bool Has(string flag) => _flags.Contains(flag);

    public string? Option(string name) => _options.GetValueOrDefault(name);

    public string Required(string name, string what) =>
        Option(name) ?? throw new CliException(ExitCodes.Usage, $"missing --{name} ({what})");

    public int? IntOption(string name, int min, int max)
    {
        if (Option(name) is not { } text) return null;
        if (!int.TryParse(text, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var value))
            throw new CliException(ExitCodes.Usage, $"--{name} must be a whole number, was \"{text}\"");
        if (value < min || value > max) throw new CliException(ExitCodes.Usage, $"--{name} must be between {min} and {max}, was {value}");
        return value;
    }

    /// <summary>Refuses options the command does not know (a typo would otherwise silently keep a default).</summary>
    public void Allow(params string[] names)
    {
        var known = new HashSet<string>(names.Concat(["gateway", "api-key", "help"]), StringComparer.Ordinal);
        foreach (var name in _options.Keys.Concat(_flags))
            if (!known.Contains(name))
                throw new CliException(ExitCodes.Usage, $"pgkd {Command} does not know --{name}; it takes: "
                    + string.Join(", ", known.Order(StringComparer.Ordinal).Select(k => "--" + k)));
    }

    public void AtMostPositionals(int count, string usage)
    {
        if (Positionals.Count > count)
            throw new CliException(ExitCodes.Usage, $"unexpected argument \"{Positionals[count]}\"; usage: {usage}");
    }
}
