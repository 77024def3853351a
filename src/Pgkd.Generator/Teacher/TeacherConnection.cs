using System.Data.Common;

namespace Pgkd.Generator.Teacher;

/// <summary>Which protocol flavour the teacher speaks.</summary>
public enum TeacherKind
{
    /// <summary>Azure OpenAI: <c>/openai/deployments/{Deployment}/chat/completions</c>; API key or Entra ID.</summary>
    AzureOpenAI,

    /// <summary>Any OpenAI-compatible endpoint (OpenAI, Ollama, vLLM, the emulator): <c>{Endpoint}/chat/completions</c>, model in the body.</summary>
    OpenAI,
}

/// <summary>
/// The teacher connection, read from <c>ConnectionStrings:teacher</c>:
/// <code>Endpoint=https://my-resource.openai.azure.com/;Deployment=gpt-4o-mini;Key=...;Kind=AzureOpenAI</code>
/// <list type="bullet">
/// <item><c>Endpoint</c> (required): for Azure the resource URL; for OpenAI-compatible servers the base
/// URL that <c>/chat/completions</c> is appended to, e.g. <c>https://api.openai.com/v1</c>,
/// <c>http://localhost:11434/v1</c> (Ollama), <c>http://host:8000/v1</c> (vLLM).</item>
/// <item><c>Deployment</c> (required; <c>Model</c> is a synonym): the Azure deployment name or the model name.</item>
/// <item><c>Key</c>: the API key. For Azure, leave it out (or empty) to sign in with Entra ID
/// (<c>DefaultAzureCredential</c>: managed identity, Azure CLI, environment). For OpenAI it is required;
/// servers without keys (Ollama) accept any value.</item>
/// <item><c>Kind</c>: <c>AzureOpenAI</c> or <c>OpenAI</c>. Default: AzureOpenAI when the host ends in
/// <c>.openai.azure.com</c> or <c>.cognitiveservices.azure.com</c>, otherwise OpenAI.</item>
/// </list>
/// Keys are case-insensitive. Parsing fails fast with a <see cref="TeacherConfigurationException"/>
/// that names the setting to fix.
/// </summary>
public sealed record TeacherConnection(TeacherKind Kind, Uri Endpoint, string Deployment, string? Key)
{
    public const string ConnectionName = "teacher";
    public const string Setting = "ConnectionStrings:" + ConnectionName;

    public bool UsesEntraId => Kind == TeacherKind.AzureOpenAI && string.IsNullOrEmpty(Key);

    public static TeacherConnection Parse(string? connectionString)
    {
        if (string.IsNullOrWhiteSpace(connectionString))
            throw new TeacherConfigurationException(Setting,
                $"{Setting} is not set. Set it to \"Endpoint=https://<resource>.openai.azure.com/;Deployment=<name>;Key=<key>\" " +
                "(Azure OpenAI) or \"Endpoint=https://api.openai.com/v1;Deployment=<model>;Key=<key>;Kind=OpenAI\"; " +
                "./build.sh run wires it to the teacher emulator.");
        var builder = new DbConnectionStringBuilder();
        try
        {
            builder.ConnectionString = connectionString;
        }
        catch (ArgumentException)
        {
            throw new TeacherConfigurationException(Setting, $"{Setting} is not a valid connection string (Key=value pairs separated by ';').");
        }
        string? Get(params string[] names) =>
            names.Select(n => builder.TryGetValue(n, out var v) ? Convert.ToString(v, System.Globalization.CultureInfo.InvariantCulture)?.Trim() : null)
                 .FirstOrDefault(v => !string.IsNullOrEmpty(v));

        var known = new HashSet<string>(["endpoint", "deployment", "model", "key", "kind"], StringComparer.OrdinalIgnoreCase);
        var unknown = builder.Keys.Cast<string>().Where(k => !known.Contains(k)).ToList();
        if (unknown.Count > 0)
            throw new TeacherConfigurationException(Setting,
                $"{Setting} has unknown setting(s) {string.Join(", ", unknown)}; allowed: Endpoint, Deployment (or Model), Key, Kind.");

        var endpointText = Get("Endpoint")
            ?? throw new TeacherConfigurationException(Setting, $"{Setting} has no Endpoint. Add Endpoint=https://<resource>.openai.azure.com/ or an OpenAI-compatible base URL such as http://localhost:11434/v1.");
        if (!Uri.TryCreate(endpointText, UriKind.Absolute, out var endpoint) || endpoint.Scheme is not ("http" or "https"))
            throw new TeacherConfigurationException(Setting, $"Endpoint in {Setting} must be an absolute http(s) URL, was '{endpointText}'.");
        var deployment = Get("Deployment", "Model")
            ?? throw new TeacherConfigurationException(Setting, $"{Setting} has no Deployment. Add Deployment=<Azure deployment name or model name>.");

        TeacherKind kind;
        var kindText = Get("Kind");
        if (kindText is null)
            kind = endpoint.Host.EndsWith(".openai.azure.com", StringComparison.OrdinalIgnoreCase)
                || endpoint.Host.EndsWith(".cognitiveservices.azure.com", StringComparison.OrdinalIgnoreCase)
                ? TeacherKind.AzureOpenAI : TeacherKind.OpenAI;
        else if (!Enum.TryParse(kindText, ignoreCase: true, out kind) || !Enum.IsDefined(kind))
            throw new TeacherConfigurationException(Setting, $"Kind in {Setting} must be AzureOpenAI or OpenAI, was '{kindText}'.");

        var key = Get("Key");
        if (kind == TeacherKind.OpenAI && key is null)
            throw new TeacherConfigurationException(Setting,
                $"{Setting} has no Key, which Kind=OpenAI needs. Add Key=<api key> (servers without keys, such as Ollama, accept any value).");
        return new TeacherConnection(kind, endpoint, deployment, key);
    }

    /// <summary>For logs: everything but the key.</summary>
    public override string ToString() =>
        $"Kind={Kind};Endpoint={Endpoint};Deployment={Deployment};Auth={(UsesEntraId ? "EntraId" : "Key")}";
}
