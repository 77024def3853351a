using System.Diagnostics.Metrics;
using Microsoft.Extensions.Time.Testing;
using Pgkd.Student.Serving;
using Pgkd.Student;

namespace Pgkd.Gateway.Tests;

/// <summary>A small trained student (head mode, a few seconds) served by the tests below.</summary>
public sealed class ServedStudentFixture : IDisposable
{
    public ServedStudentFixture()
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("pgkd-gateway-engine-").FullName;
        new StudentTrainer().Train(
            new StudentTrainingOptions { Mode = StudentTrainingMode.Head, Epochs = 10, BatchSize = 4, LearningRate = 1e-2, MaxLength = 128, Threads = 2, Seed = 5 },
            AgNews.Tiny, AgNews.Labels, Directory);
        Tokenizer = StudentTokenizer.ForPretrained(PretrainedMiniLM.Ensure());
    }

    public string Directory { get; }

    public StudentTokenizer Tokenizer { get; }

    public OnnxStudent Load() => OnnxStudent.Load(Directory, new OnnxRunOptions { Threads = 2, PreferCuda = false }, Tokenizer);

    public void Dispose() => System.IO.Directory.Delete(Directory, recursive: true);
}

/// <summary>
/// The serving engine: batching never changes an answer, limits hold, and a full queue, a passed deadline and a client
/// that goes away each take the request's texts out of the queue. No test depends on timing: where a text must stay
/// queued, the engine is told to wait an hour for company.
/// </summary>
public sealed class InferenceEngineTests(ServedStudentFixture fixture) : IClassFixture<ServedStudentFixture>
{
    private static readonly TimeSpan Forever = TimeSpan.FromHours(1);

    /// <summary>Texts of every length and script: emoji, CJK, Arabic, combining marks, zero-width characters, a run of thousands of characters.</summary>
    private static readonly string[] MixedTexts =
    [
        "Stocks rallied on Wall Street.",
        "The national team lost the qualifier in extra time after a penalty shoot-out, ending a long unbeaten run.",
        "NASA launches probe",
        "🚀🚀 rocket 🌕 moon landing 🎉",
        "东京股市周二收盘上涨，科技股领涨。",
        "ارتفعت أسعار النفط بعد قرار أوبك",
        "Cafe\u0301 owners protest the new tax\u200b\u200b law",
        string.Concat(Enumerable.Repeat("market shares profit quarterly ", 330)),
        "x",
        "Parliament votes on the new budget as protests continue outside; police said the crowd was peaceful.",
    ];

    [Fact]
    public async Task A_text_gets_the_same_probabilities_alone_in_a_batch_and_among_concurrent_requests_of_any_length()
    {
        using var reference = fixture.Load();
        var alone = MixedTexts.Select(t => reference.PredictEncoded([reference.Tokenizer.Encode(t, reference.MaxLength)])[0]).ToArray();

        using var engine = new InferenceEngine(fixture.Load(), new InferenceOptions { MaxBatchWait = TimeSpan.FromMilliseconds(20), Deadline = Forever }, "test");
        var inOneRequest = await engine.ClassifyAsync(MixedTexts, CancellationToken.None);
        // Every text sent on its own, all at once, plus the whole list again: batches mix lengths and requests.
        var concurrent = MixedTexts.Select(t => engine.ClassifyAsync([t], CancellationToken.None)).ToList();
        var again = engine.ClassifyAsync(MixedTexts.Reverse().ToArray(), CancellationToken.None);
        var each = await Task.WhenAll(concurrent);
        var reversed = await again;

        for (var i = 0; i < MixedTexts.Length; i++)
        {
            AssertClose(alone[i], inOneRequest[i], i);
            AssertClose(alone[i], each[i][0], i);
            AssertClose(alone[i], reversed[MixedTexts.Length - 1 - i], i);
        }
    }

    [Fact]
    public async Task A_request_of_64_uneven_texts_runs_in_several_length_sorted_batches_with_each_texts_own_answer()
    {
        var batches = new List<int>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) => { if (instrument.Name == "pgkd.serving.batch.size") l.EnableMeasurementEvents(instrument); };
        listener.SetMeasurementEventCallback<int>((_, value, tags, _) =>
        {
            if (tags.ToArray().Any(t => t.Key == "pgkd.model" && (string?)t.Value == "sub-batches")) lock (batches) batches.Add(value);
        });
        listener.Start();
        using var reference = fixture.Load();
        // 64 texts in data order, every length from a few tokens to the cap: one padded run would pad them all to 128.
        var texts = Enumerable.Range(0, 64).Select(i => MixedTexts[i % MixedTexts.Length] + " " + string.Join(" ", Enumerable.Repeat("shares", i))).ToArray();
        var alone = texts.Select(t => reference.PredictEncoded([reference.Tokenizer.Encode(t, reference.MaxLength)])[0]).ToArray();

        using var engine = new InferenceEngine(fixture.Load(), new InferenceOptions { MaxBatchWait = TimeSpan.FromMilliseconds(20), Deadline = Forever }, "sub-batches");
        var answer = await engine.ClassifyAsync(texts, CancellationToken.None);

        for (var i = 0; i < texts.Length; i++) AssertClose(alone[i], answer[i], i);
        lock (batches)
        {
            Assert.Equal(64, batches.Sum());
            Assert.True(batches.Count > 2, $"batches of {string.Join(", ", batches)}: expected the request cut by length");
        }
    }

    [Fact]
    public async Task A_shed_client_is_told_to_come_back_when_it_would_be_admitted_not_when_the_whole_queue_has_drained()
    {
        async Task<TimeSpan> RetryAfter(RetryAfterPolicy policy)
        {
            // Capacity 2, batches of 2 that wait an hour for company: a first request of 2 runs at once (the rate is then
            // measured), a single text stays queued, and a request of 2 does not fit beside it.
            using var engine = new InferenceEngine(fixture.Load(), new InferenceOptions
            {
                QueueCapacity = 2, MaxBatchTexts = 2, MaxBatchWait = Forever, Deadline = Forever, RetryAfter = policy,
            }, $"retry-{policy}");
            await engine.ClassifyAsync(["one", "two"], CancellationToken.None);
            _ = engine.ClassifyAsync(["three"], CancellationToken.None);
            return (await Assert.ThrowsAsync<InferenceQueueFullException>(() => engine.ClassifyAsync(["four", "five"], CancellationToken.None))).RetryAfter;
        }
        // Room for the request comes after one text has run (well under a second); the whole queue and the request take
        // three texts' time, which the old policy rounded up to at least a second.
        Assert.True(await RetryAfter(RetryAfterPolicy.UntilAdmitted) < TimeSpan.FromSeconds(1));
        Assert.True(await RetryAfter(RetryAfterPolicy.QueueDrained) >= TimeSpan.FromSeconds(1));
    }

    [Fact]
    public async Task Batches_respect_the_text_and_padded_token_limits()
    {
        var sizes = new List<int>();
        var tokens = new List<int>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Name is "pgkd.serving.batch.size" or "pgkd.serving.batch.padded_tokens") l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<int>((instrument, value, tags, _) =>
        {
            if (!tags.ToArray().Any(t => t.Key == "pgkd.model" && (string?)t.Value == "limits")) return;
            lock (sizes) (instrument.Name == "pgkd.serving.batch.size" ? sizes : tokens).Add(value);
        });
        listener.Start();

        using var engine = new InferenceEngine(fixture.Load(),
            new InferenceOptions { MaxBatchTexts = 3, MaxBatchTokens = 256, MaxBatchWait = TimeSpan.FromMilliseconds(20), Deadline = Forever }, "limits");
        var texts = MixedTexts.Concat(MixedTexts).ToArray();
        var answers = await Task.WhenAll(texts.Select(t => engine.ClassifyAsync([t], CancellationToken.None)));

        Assert.Equal(texts.Length, answers.Length);
        lock (sizes)
        {
            Assert.Equal(texts.Length, sizes.Sum());
            Assert.All(sizes, s => Assert.InRange(s, 1, 3));
            // The 128-token text makes a batch of its own only when 2 × 128 would pass 256; every batch stays within the budget.
            Assert.All(tokens, t => Assert.InRange(t, 1, 256));
        }
    }

    [Fact]
    public async Task A_request_that_would_overflow_the_queue_is_refused_naming_the_limit()
    {
        using var engine = new InferenceEngine(fixture.Load(), new InferenceOptions { QueueCapacity = 4, MaxBatchWait = Forever, Deadline = Forever }, "full");
        var waiting = engine.ClassifyAsync(["one", "two", "three"], CancellationToken.None);
        Assert.Equal(3, engine.QueuedTexts);

        var full = await Assert.ThrowsAsync<InferenceQueueFullException>(() => engine.ClassifyAsync(["four", "five"], CancellationToken.None));
        Assert.Contains("Gateway:Inference:QueueCapacity", full.Message);
        Assert.Contains("at most 4", full.Message);
        Assert.True(full.RetryAfter >= TimeSpan.FromSeconds(1));
        Assert.Equal(3, engine.QueuedTexts); // nothing of the refused request was queued

        // One more text still fits.
        var fits = engine.ClassifyAsync(["four"], CancellationToken.None);
        Assert.Equal(4, engine.QueuedTexts);
        Assert.False(waiting.IsCompleted || fits.IsCompleted);
    }

    [Fact]
    public async Task A_client_that_goes_away_frees_its_queued_texts()
    {
        using var engine = new InferenceEngine(fixture.Load(), new InferenceOptions { MaxBatchWait = Forever, Deadline = Forever }, "cancel");
        using var client = new CancellationTokenSource();
        var request = engine.ClassifyAsync(["one", "two", "three"], client.Token);
        var other = engine.ClassifyAsync(["stays"], CancellationToken.None);
        Assert.Equal(4, engine.QueuedTexts);

        await client.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => request);
        Assert.Equal(1, engine.QueuedTexts);
        Assert.False(other.IsCompleted);
    }

    [Fact]
    public async Task A_request_that_waits_past_its_deadline_is_refused_naming_the_deadline_and_leaves_the_queue()
    {
        var clock = new FakeTimeProvider();
        using var engine = new InferenceEngine(fixture.Load(),
            new InferenceOptions { MaxBatchWait = Forever, Deadline = TimeSpan.FromMilliseconds(100) }, "deadline", clock);
        var request = engine.ClassifyAsync(["one", "two"], CancellationToken.None);
        Assert.False(request.IsCompleted);
        clock.Advance(TimeSpan.FromMilliseconds(150));
        var late = await Assert.ThrowsAsync<InferenceDeadlineException>(() => request);
        Assert.Contains("Gateway:Inference:Deadline", late.Message);
        Assert.Contains("0.1 s", late.Message);
        Assert.Equal(0, engine.QueuedTexts);
    }

    [Fact]
    public async Task A_batch_takes_the_whole_oldest_request_before_other_texts()
    {
        // Three requests queued at once; the first batch (room for 4) must hold all of the first request, and other
        // requests join a batch only whole (the second, 2 texts, does not fit beside it).
        var sizes = new List<int>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) => { if (instrument.Name == "pgkd.serving.batch.size") l.EnableMeasurementEvents(instrument); };
        listener.SetMeasurementEventCallback<int>((_, value, tags, _) =>
        {
            if (tags.ToArray().Any(t => t.Key == "pgkd.model" && (string?)t.Value == "fifo")) lock (sizes) sizes.Add(value);
        });
        listener.Start();
        // Padding allowed freely here, so the batch is formed by the request order alone.
        using var engine = new InferenceEngine(fixture.Load(),
            new InferenceOptions { MaxBatchTexts = 4, MaxPaddingShare = 0.99, MaxBatchWait = TimeSpan.FromMilliseconds(20), Deadline = Forever }, "fifo");
        var first = engine.ClassifyAsync([MixedTexts[0], MixedTexts[7], MixedTexts[2]], CancellationToken.None);
        var second = engine.ClassifyAsync([MixedTexts[1], MixedTexts[3]], CancellationToken.None);
        var third = engine.ClassifyAsync([MixedTexts[4], MixedTexts[5], MixedTexts[6]], CancellationToken.None);
        var done = await Task.WhenAny(first, second, third);
        Assert.Same(first, done);
        await Task.WhenAll(first, second, third);
        lock (sizes)
        {
            Assert.Equal(8, sizes.Sum());
            Assert.Equal(3, sizes[0]);
        }
    }

    [Fact]
    public async Task Texts_of_very_different_lengths_run_in_separate_batches_so_padding_stays_within_its_share()
    {
        var batches = new List<(int Texts, int Padded)>();
        var pending = new Dictionary<string, int>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Name is "pgkd.serving.batch.size" or "pgkd.serving.batch.padded_tokens") l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<int>((instrument, value, tags, _) =>
        {
            if (!tags.ToArray().Any(t => t.Key == "pgkd.model" && (string?)t.Value == "padding")) return;
            lock (batches)
            {
                // Size then padded tokens, recorded together per batch by the one runner.
                if (instrument.Name == "pgkd.serving.batch.size") pending["size"] = value;
                else batches.Add((pending["size"], value));
            }
        });
        listener.Start();

        using var engine = new InferenceEngine(fixture.Load(),
            new InferenceOptions { MaxPaddingShare = 0.25, MaxBatchWait = TimeSpan.FromMilliseconds(20), Deadline = Forever }, "padding");
        var longText = MixedTexts.Single(t => t.Length > 5000); // 128 tokens after truncation
        var answer = await engine.ClassifyAsync(["x", longText, "y"], CancellationToken.None);

        Assert.Equal(3, answer.Length);
        lock (batches)
        {
            // "x" and "y" (3 tokens each with [CLS] and [SEP]) together; the long text alone, not padding them to 128.
            Assert.Equal([(1, 128), (2, 6)], batches.OrderBy(b => b.Texts).ToList());
        }
    }

    [Fact]
    public async Task The_deadline_never_throws_away_a_request_the_model_has_started()
    {
        // One batch of 2 runs (the request's first two texts), the third waits for company for an hour: past the
        // deadline the request is not refused, because the model has started it; it finishes with the next batch.
        var clock = new FakeTimeProvider();
        using var engine = new InferenceEngine(fixture.Load(),
            new InferenceOptions { MaxBatchTexts = 2, MaxBatchWait = Forever, Deadline = TimeSpan.FromSeconds(1) }, "started", clock);
        var started = engine.ClassifyAsync(["one", "two", "three"], CancellationToken.None);
        await WaitUntilAsync(() => engine.QueuedTexts == 1); // the first batch has taken two texts
        clock.Advance(TimeSpan.FromSeconds(2));
        Assert.False(started.IsCompleted);
        Assert.Equal(1, engine.QueuedTexts);
        var company = engine.ClassifyAsync(["four"], CancellationToken.None); // fills the second batch
        Assert.Equal(3, (await started).Length);
        Assert.Single(await company);
    }

    [Fact]
    public async Task A_full_batch_runs_without_waiting_for_company()
    {
        // Even told to wait an hour, a queue that fills a batch runs it at once.
        using var engine = new InferenceEngine(fixture.Load(), new InferenceOptions { MaxBatchTexts = 2, MaxBatchWait = Forever, Deadline = Forever }, "full-batch");
        var answer = await engine.ClassifyAsync(["one", "two"], CancellationToken.None).WaitAsync(TimeSpan.FromMinutes(2));
        Assert.Equal(2, answer.Length);
        Assert.All(answer, row => Assert.Equal(1.0, row.Sum(), 3));
    }

    [Theory]
    [InlineData(0, 64, 1)]
    [InlineData(64, 0, 1)]
    [InlineData(64, 8192, 0)]
    public void Wrong_settings_are_named(int capacity, int maxBatchTexts, int concurrent)
    {
        var problem = Assert.Throws<InvalidOperationException>(() =>
            new InferenceOptions { QueueCapacity = capacity, MaxBatchTexts = maxBatchTexts, ConcurrentBatches = concurrent }.Validated());
        Assert.StartsWith("Gateway:Inference:", problem.Message);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        // Generous: only a machine that stops for minutes fails this, and then the message says what never happened.
        for (var i = 0; i < 1200 && !condition(); i++) await Task.Delay(100);
        Assert.True(condition(), "the engine never reached the expected state");
    }

    private static void AssertClose(float[] expected, float[] actual, int text)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var c = 0; c < expected.Length; c++)
            Assert.True(Math.Abs(expected[c] - actual[c]) <= 1e-5, $"text {text} class {c}: {expected[c]} alone, {actual[c]} batched");
    }
}
