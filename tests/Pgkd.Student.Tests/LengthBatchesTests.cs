using Xunit;

namespace Pgkd.Student.Tests;

/// <summary>How uneven texts are cut into ONNX Runtime runs: every text once, each run within its bounds.</summary>
public sealed class LengthBatchesTests
{
    [Fact]
    public void A_long_text_does_not_pad_short_ones_to_its_length()
    {
        Assert.Equal(new[] { new[] { 0, 2 }, [1] }, LengthBatches.Plan([3, 128, 3], maxTexts: 64, maxTokens: 8192, maxPaddingShare: 0.25));
        // Without a padding bound, one run in length order (ties in input order).
        Assert.Equal(new[] { new[] { 0, 2, 1 } }, LengthBatches.Plan([3, 128, 3], maxTexts: 64, maxTokens: 8192, maxPaddingShare: 1));
        Assert.Empty(LengthBatches.Plan([], 64, 8192, 0.25));
    }

    [Fact]
    public void A_text_longer_than_the_token_budget_runs_alone()
    {
        Assert.Equal(new[] { new[] { 1 }, [0] }, LengthBatches.Plan([300, 5], maxTexts: 64, maxTokens: 256, maxPaddingShare: 1));
    }

    [Theory]
    [InlineData(0.0, 64, 8192)]
    [InlineData(0.1, 64, 8192)]
    [InlineData(0.25, 64, 8192)]
    [InlineData(0.25, 7, 1024)]
    [InlineData(1.0, 16, 100_000)]
    public void Every_text_appears_once_and_every_run_keeps_its_bounds(double share, int maxTexts, int maxTokens)
    {
        var random = new Random(7);
        for (var trial = 0; trial < 200; trial++)
        {
            var lengths = Enumerable.Range(0, random.Next(0, 130)).Select(_ => random.Next(1, 129)).ToArray();
            var runs = LengthBatches.Plan(lengths, maxTexts, maxTokens, share);
            Assert.Equal(Enumerable.Range(0, lengths.Length), runs.SelectMany(r => r).Order());
            var previousLongest = 0;
            foreach (var run in runs)
            {
                Assert.NotEmpty(run);
                var longest = run.Max(i => lengths[i]);
                long padded = (long)run.Length * longest, real = run.Sum(i => lengths[i]);
                Assert.InRange(run.Length, 1, maxTexts);
                if (run.Length > 1)
                {
                    Assert.True(padded <= maxTokens, $"{padded} padded tokens > {maxTokens}");
                    Assert.True(padded - real <= share * padded, $"padding {padded - real} of {padded} > {share}");
                }
                // Length-sorted: no run starts shorter than the previous run's longest text.
                Assert.True(run.Min(i => lengths[i]) >= previousLongest);
                previousLongest = longest;
            }
        }
    }
}
