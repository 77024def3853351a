using System.Collections.Concurrent;
using Microsoft.ML.Tokenizers;
using Pgkd.Core.Teacher;

namespace Pgkd.TeacherTokens;

/// <summary>
/// Counts tokens as the teacher model does: tiktoken's BPE for OpenAI's models (o200k_base for gpt-4o, gpt-4.1, o-series
/// and later; cl100k_base for gpt-4 and gpt-3.5), from Microsoft.ML.Tokenizers and its data packages, offline.
/// A deployment name the library does not know (an Azure deployment named by its owner, the emulator's
/// <c>pgkd-teacher</c>, a non-OpenAI model) is counted with o200k_base and <see cref="Assumed"/> says so: a deployment's
/// name need not be its model's. DESIGN.md notes that this library drops some symbols and joins words across tabs and
/// newlines (dotnet/machinelearning#7724, #7725) for BERT WordPiece; its tiktoken encodings match OpenAI's counts.
/// </summary>
public sealed class TeacherTokenizer
{
    public const string DefaultEncoding = "o200k_base";

    private static readonly ConcurrentDictionary<string, TeacherTokenizer> ByModel = new(StringComparer.OrdinalIgnoreCase);

    private readonly Tokenizer _tokenizer;

    private TeacherTokenizer(string model, Tokenizer tokenizer, bool assumed)
    {
        Model = model;
        _tokenizer = tokenizer;
        Assumed = assumed;
        // The library does not name a model's encoding; the id of "Hello" tells the two apart.
        Encoding = tokenizer.EncodeToIds("Hello") is [var id] ? id switch { 13225 => "o200k_base", 9906 => "cl100k_base", _ => "tiktoken" } : "tiktoken";
    }

    /// <summary>The deployment or model name it was chosen for.</summary>
    public string Model { get; }

    /// <summary>The tiktoken encoding, e.g. <c>o200k_base</c>.</summary>
    public string Encoding { get; }

    /// <summary>True when the name was not one the library knows and <see cref="DefaultEncoding"/> was taken.</summary>
    public bool Assumed { get; }

    /// <summary>What forecasts and reports print: <c>o200k_base</c>, or <c>o200k_base (assumed for pgkd-teacher)</c>.</summary>
    public string Description => Assumed ? $"{Encoding} (assumed for {Model})" : Encoding;

    public int CountTokens(string text) => string.IsNullOrEmpty(text) ? 0 : _tokenizer.CountTokens(text);

    public TokenCounter Counter => CountTokens;

    /// <summary>The tokenizer of a deployment or model name; loading an encoding reads a few MB of ranks, so once per name.</summary>
    public static TeacherTokenizer ForModel(string? model) =>
        ByModel.GetOrAdd(string.IsNullOrWhiteSpace(model) ? "" : model.Trim(), name =>
        {
            try
            {
                // The library's own table maps model names and their prefixes (gpt-4o-*, gpt-4-*, o1-*, ...) to encodings.
                if (name.Length > 0) return new TeacherTokenizer(name, TiktokenTokenizer.CreateForModel(name), assumed: false);
            }
            catch (Exception e) when (e is NotSupportedException or ArgumentException or InvalidOperationException) { }
            return new TeacherTokenizer(name, TiktokenTokenizer.CreateForEncoding(DefaultEncoding), assumed: true);
        });
}
