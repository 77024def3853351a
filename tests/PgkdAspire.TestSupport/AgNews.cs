using Pgkd.Core.Data;
using Xunit;

namespace PgkdAspire.TestSupport;

/// <summary>AG News, the tests' running example: its four classes, eight hand-written texts, and the real data where present.</summary>
public static class AgNews
{
    public static readonly LabelSet Labels = new("World", "Sports", "Business", "Sci/Tech");

    /// <summary>Two short texts per class: enough for fast training and serving tests, small enough to read.</summary>
    public static readonly LabeledExample[] Tiny =
    [
        new("Leaders meet in Geneva to discuss the ceasefire in the region.", "World"),
        new("The striker scored twice as the home team won the cup final.", "Sports"),
        new("Shares fell after the bank reported lower quarterly profits.", "Business"),
        new("A new chip doubles battery life of laptops, the company said.", "Sci/Tech"),
        new("Elections were held peacefully across the country on Sunday.", "World"),
        new("The tennis champion retired after a long injury.", "Sports"),
        new("Oil prices rose as investors worried about supply.", "Business"),
        new("Scientists released open source software for genome analysis.", "Sci/Tech"),
    ];

    /// <summary>Where the real data belongs: <c>../shared/data/agnews</c> next to the repository root.</summary>
    public static string ExpectedFolder => Repository.SharedDataFolder("agnews");

    /// <summary>The real data's folder, or null where it (its seed_train.jsonl) is absent.</summary>
    public static string? Folder => File.Exists(Path.Combine(ExpectedFolder, "seed_train.jsonl")) ? ExpectedFolder : null;
}

/// <summary>A fact that needs the real AG News data and is reported as skipped, with the reason, where it is absent.</summary>
public sealed class AgNewsFactAttribute : FactAttribute
{
    public AgNewsFactAttribute()
    {
        if (AgNews.Folder is null)
            Skip = $"AG News data not found at {AgNews.ExpectedFolder} " +
                   "(expected ../shared/data/agnews next to the repository; the data is never copied into the repo).";
    }
}
