using System.Diagnostics;

namespace Pgkd.Student.Serving;

/// <summary>
/// Section <c>Gateway:Inference</c>: how the gateway queues, batches and runs classification requests per served
/// model. The defaults were chosen by the load scenario in docs/reliability.md (2 cores).
/// </summary>
public sealed class InferenceOptions
{
    public const string Section = "Gateway:Inference";

    /// <summary>Texts waiting for a batch, over all requests; a request that would overflow it is shed (503).</summary>
    public int QueueCapacity { get; set; } = 512;

    /// <summary>Texts per ONNX Runtime run.</summary>
    public int MaxBatchTexts { get; set; } = 64;

    /// <summary>
    /// Padded tokens per run (texts × the batch's longest text), which bounds the run's memory. 1024, as
    /// <see cref="OnnxRunOptions.MaxBatchTokens"/>: on 2 cores small runs cost no more per token, and a request of 64 texts
    /// is cut into several (docs/results.md, Speed: a request of 64 texts).
    /// </summary>
    public int MaxBatchTokens { get; set; } = 1024;

    /// <summary>
    /// The most of a batch's padded tokens that may be padding: a text joins a batch only while the padding it brings
    /// keeps the share at or under this. On CPU a run costs about its padded tokens, and a small batch costs little more
    /// per text than a large one (docs/results.md, Speed: batch 1 runs as many texts a second as length-sorted batch 64),
    /// so texts of similar length run together and a long text does not pad 63 short ones to its length.
    /// </summary>
    public double MaxPaddingShare { get; set; } = 0.25;

    /// <summary>How long a lone request waits for company before its batch runs anyway.</summary>
    public TimeSpan MaxBatchWait { get; set; } = TimeSpan.FromMilliseconds(4);

    /// <summary>Batches run at once; each run gets <see cref="Threads"/> intra-op threads, configured once per session.</summary>
    public int ConcurrentBatches { get; set; } = 1;

    /// <summary>Intra-op threads per run; 0 = the machine's cores divided among <see cref="ConcurrentBatches"/>.</summary>
    public int Threads { get; set; }

    /// <summary>The longest a request's texts may wait in the queue; past it the request is answered 503 and its texts leave the queue.</summary>
    public TimeSpan Deadline { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Which serving graph runs: <c>Fp32</c> (model.onnx) or <c>Int8</c> (model.int8.onnx, weight matrices quantized).</summary>
    public StudentPrecision Precision { get; set; } = StudentPrecision.Fp32;

    /// <summary>
    /// What a shed request's Retry-After says: <c>UntilAdmitted</c>, the time until the work ahead has drained to where the
    /// request would be admitted (at least 1 s once the gateway writes whole seconds), or <c>QueueDrained</c>, the time
    /// until the whole queue and the request itself have drained. The first keeps work queued while shed clients sleep, so
    /// the model does not idle until they return (docs/reliability.md, serving load).
    /// </summary>
    public RetryAfterPolicy RetryAfter { get; set; } = RetryAfterPolicy.UntilAdmitted;

    public int EffectiveThreads => Threads > 0 ? Threads : Math.Max(1, Environment.ProcessorCount / Math.Max(1, ConcurrentBatches));

    public InferenceOptions Validated()
    {
        var problems = new List<string>();
        if (QueueCapacity < 1) problems.Add($"QueueCapacity must be at least 1 (was {QueueCapacity})");
        if (MaxBatchTexts < 1) problems.Add($"MaxBatchTexts must be at least 1 (was {MaxBatchTexts})");
        if (MaxBatchTokens < 2) problems.Add($"MaxBatchTokens must be at least 2 (was {MaxBatchTokens})");
        if (MaxPaddingShare is < 0 or >= 1 || double.IsNaN(MaxPaddingShare)) problems.Add($"MaxPaddingShare must be at least 0 and below 1 (was {MaxPaddingShare})");
        if (MaxBatchWait < TimeSpan.Zero) problems.Add($"MaxBatchWait must not be negative (was {MaxBatchWait})");
        if (ConcurrentBatches < 1) problems.Add($"ConcurrentBatches must be at least 1 (was {ConcurrentBatches})");
        if (Threads < 0) problems.Add($"Threads must be 0 (automatic) or more (was {Threads})");
        if (Deadline <= TimeSpan.Zero) problems.Add($"Deadline must be positive (was {Deadline})");
        if (!Enum.IsDefined(Precision)) problems.Add($"Precision must be Fp32 or Int8 (was {Precision})");
        if (!Enum.IsDefined(RetryAfter)) problems.Add($"RetryAfter must be UntilAdmitted or QueueDrained (was {RetryAfter})");
        return problems.Count == 0 ? this : throw new InvalidOperationException($"{Section}: {string.Join("; ", problems)}.");
    }
}

/// <summary>See <see cref="InferenceOptions.RetryAfter"/>.</summary>
public enum RetryAfterPolicy
{
    UntilAdmitted,
    QueueDrained,
}

/// <summary>The request was not queued: the queue holds <see cref="InferenceOptions.QueueCapacity"/> texts already, or more work than its deadline allows.</summary>
public sealed class InferenceQueueFullException(string message, TimeSpan retryAfter) : Exception(message)
{
    public InferenceQueueFullException(int capacity, int queued, int requested, TimeSpan retryAfter)
        : this($"the inference queue holds {queued} of at most {capacity} texts ({InferenceOptions.Section}:QueueCapacity); this request brings {requested}", retryAfter) { }

    public TimeSpan RetryAfter { get; } = retryAfter;
}

/// <summary>The request's texts waited in the queue longer than <see cref="InferenceOptions.Deadline"/>.</summary>
public sealed class InferenceDeadlineException(TimeSpan deadline, TimeSpan retryAfter)
    : Exception($"the request waited more than {deadline.TotalSeconds:0.###} s for the model ({InferenceOptions.Section}:Deadline)")
{
    public TimeSpan RetryAfter { get; } = retryAfter;
}

/// <summary>
/// One served model's inference engine, in the manner of Hugging Face text-embeddings-inference and Triton's dynamic
/// batcher: requests put their tokenized texts on one bounded queue; a fixed number of runner threads each take a batch
/// (the oldest request's texts, filled up with other texts of similar token length), bounded in texts and in padded
/// tokens, after waiting at most <see cref="InferenceOptions.MaxBatchWait"/> for company, run it in one ONNX Runtime
/// call, and hand each request its rows. N clients therefore never mean N concurrent runs, each with its own threads and
/// arena growth for its own shapes. A request whose client goes away or whose deadline passes takes its queued texts
/// out of the queue.
/// </summary>
public sealed class InferenceEngine : IDisposable
{
    private readonly OnnxStudent _student;
    private readonly InferenceOptions _options;
    private readonly string _modelId;
    private readonly object _gate = new(); // Monitor.Wait/PulseAll wake the runners
    private readonly List<QueuedText> _queue = [];
    private readonly Thread[] _runners;
    private bool _stopping;
    private double _textsPerSecond = double.NaN; // the queue's measured drain rate (admission, Retry-After); none before the first batch
    private long _lastBatchEnd;

    private readonly TimeProvider _time;

    /// <param name="time">The clock of the deadlines (tests pass a fake one).</param>
    public InferenceEngine(OnnxStudent student, InferenceOptions options, string modelId, TimeProvider? time = null)
    {
        _time = time ?? TimeProvider.System;
        _student = student;
        _options = options.Validated();
        _modelId = modelId;
        _runners = Enumerable.Range(0, _options.ConcurrentBatches).Select(i => new Thread(RunnerLoop)
        {
            IsBackground = true,
            Name = $"pgkd-inference-{i}",
        }).ToArray();
        foreach (var runner in _runners) runner.Start();
        ServingMetrics.Track(this);
    }

    public string ModelId => _modelId;

    public OnnxStudent Student => _student;

    /// <summary>Texts waiting in the queue now.</summary>
    public int QueuedTexts
    {
        get
        {
            lock (_gate) return _queue.Count;
        }
    }

    /// <summary>Class probabilities per text, in label order; throws <see cref="InferenceQueueFullException"/> or <see cref="InferenceDeadlineException"/> when shed.</summary>
    public Task<float[][]> ClassifyAsync(IReadOnlyList<string> texts, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(texts);
        if (texts.Count == 0) return Task.FromResult(Array.Empty<float[]>());
        // Shedding must be cheap: refuse before tokenizing when the queue is already full.
        lock (_gate) ThrowIfFullLocked(texts.Count);
        // Tokenize on the caller's thread: the runners only run the model.
        var rows = texts.Select(t => _student.Tokenizer.Encode(t, _student.MaxLength)).ToArray();
        var request = new PendingRequest(rows.Length);
        lock (_gate)
        {
            ThrowIfFullLocked(rows.Length);
            var now = Stopwatch.GetTimestamp();
            for (var i = 0; i < rows.Length; i++) _queue.Add(new QueuedText(request, i, rows[i], now));
            request.Queued = rows.Length;
            Monitor.PulseAll(_gate);
        }
        request.Watch(cancellationToken, _options.Deadline, _time, Abandon);
        return request.Completion.Task;
    }

    /// <summary>
    /// Admission: the queue's capacity in texts, and the work ahead at the measured rate: a request that could not start
    /// before its deadline is refused now rather than queued to be refused later.
    /// </summary>
    private void ThrowIfFullLocked(int texts)
    {
        ObjectDisposedException.ThrowIf(_stopping, this);
        if (_queue.Count + texts > _options.QueueCapacity)
            throw new InferenceQueueFullException(_options.QueueCapacity, _queue.Count, texts, RetryAfterLocked(texts));
        if (double.IsNaN(_textsPerSecond)) return;
        var ahead = TimeSpan.FromSeconds(_queue.Count / Math.Max(_textsPerSecond, 1));
        if (_queue.Count > 0 && ahead > _options.Deadline)
            throw new InferenceQueueFullException(
                $"the inference queue holds {_queue.Count} texts, about {ahead.TotalSeconds:0.#} s of work at the measured {_textsPerSecond:0} texts/s, " +
                $"more than {InferenceOptions.Section}:Deadline ({_options.Deadline.TotalSeconds:0.###} s)", RetryAfterLocked(texts));
    }

    /// <summary>The client went away or the deadline passed: its queued texts leave the queue; texts already running finish unseen.</summary>
    private void Abandon(PendingRequest request, bool deadline, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (request.Completion.Task.IsCompleted) return;
            // Work already started is never thrown away: a request with a text running or done finishes (it is at the
            // head of the queue by then, see TakeBatchLocked); the deadline sheds requests the model has not touched.
            if (deadline && request.Queued < request.Results.Length) return;
            _queue.RemoveAll(q => q.Request == request);
            request.Queued = 0;
            if (deadline)
            {
                ServingMetrics.Shed(_modelId, "deadline");
                request.Completion.TrySetException(new InferenceDeadlineException(_options.Deadline, RetryAfterLocked(0)));
            }
            else request.Completion.TrySetCanceled(cancellationToken);
        }
    }

    private void RunnerLoop()
    {
        while (true)
        {
            List<QueuedText> batch;
            lock (_gate)
            {
                while (true)
                {
                    if (_stopping) return;
                    if (TakeBatchLocked() is { } taken)
                    {
                        batch = taken;
                        break;
                    }
                    Monitor.Wait(_gate, WaitLocked());
                }
            }
            RunBatch(batch);
        }
    }

    /// <summary>How long to sleep: until the oldest text's wait for company is over, or until something arrives.</summary>
    private TimeSpan WaitLocked()
    {
        if (_queue.Count == 0) return Timeout.InfiniteTimeSpan;
        var waited = Stopwatch.GetElapsedTime(_queue[0].EnqueuedAt);
        var left = _options.MaxBatchWait - waited;
        return left > TimeSpan.FromMilliseconds(1) ? left : TimeSpan.FromMilliseconds(1);
    }

    /// <summary>
    /// A batch when one is due: it is full, or a limit left queued texts out of it, or the oldest text has waited
    /// <see cref="InferenceOptions.MaxBatchWait"/> for company.
    /// The batch starts with the oldest request's queued texts, shortest first, as many as fit (so requests finish in the
    /// order they came, and a request never waits for more batches than the ones ahead of it); then other requests ride
    /// along whole, oldest first, where they fit. "Fit" is the limits on texts and padded tokens and
    /// <see cref="InferenceOptions.MaxPaddingShare"/>. Other requests join only whole, so every request the model has
    /// started is either done with this batch or the oldest, which the next batches take first: the deadline, which
    /// spares started work, therefore bounds every request's wait.
    /// </summary>
    private List<QueuedText>? TakeBatchLocked()
    {
        if (_queue.Count == 0) return null;
        var oldest = _queue[0].Request;

        var batch = new List<QueuedText>();
        var longest = 0;
        long tokens = 0;
        bool TryAdd(IReadOnlyList<QueuedText> texts)
        {
            var count = batch.Count + texts.Count;
            var length = longest;
            long real = tokens;
            foreach (var text in texts)
            {
                length = Math.Max(length, text.Tokens.Length);
                real += text.Tokens.Length;
            }
            var padded = (long)count * length;
            if (count > _options.MaxBatchTexts || padded > _options.MaxBatchTokens || padded - real > _options.MaxPaddingShare * padded) return false;
            batch.AddRange(texts);
            (longest, tokens) = (length, real);
            return true;
        }
        foreach (var text in _queue.Where(q => q.Request == oldest).OrderBy(q => q.Tokens.Length))
            if (!TryAdd([text])) break; // ascending: a longer text only pads more
        if (batch.Count == 0)
        {
            batch.Add(_queue[0]); // one text longer than the token budget still runs, alone
            (longest, tokens) = (_queue[0].Tokens.Length, _queue[0].Tokens.Length);
        }
        foreach (var request in _queue.Where(q => q.Request != oldest).GroupBy(q => q.Request))
        {
            if (batch.Count == _options.MaxBatchTexts) break;
            TryAdd(request.ToList());
        }
        // Due when waiting cannot make it better (it is full, or a limit left texts behind) or the oldest text has waited enough.
        var due = batch.Count == _options.MaxBatchTexts || batch.Count < _queue.Count
                  || Stopwatch.GetElapsedTime(_queue[0].EnqueuedAt) >= _options.MaxBatchWait;
        if (!due) return null;

        var taken = batch.ToHashSet();
        _queue.RemoveAll(taken.Contains);
        foreach (var text in batch) text.Request.Queued--;
        return batch;
    }

    private void RunBatch(List<QueuedText> batch)
    {
        var started = Stopwatch.GetTimestamp();
        foreach (var text in batch) ServingMetrics.QueueWait(_modelId, Stopwatch.GetElapsedTime(text.EnqueuedAt, started));
        float[][]? probabilities = null;
        Exception? failure = null;
        try
        {
            probabilities = _student.PredictEncoded(batch.Select(b => b.Tokens).ToArray());
        }
        catch (Exception e)
        {
            failure = e;
        }
        var elapsed = Stopwatch.GetElapsedTime(started);
        ServingMetrics.Batch(_modelId, batch.Count, batch.Count * batch.Max(b => b.Tokens.Length), elapsed);

        lock (_gate)
        {
            // The rate the queue drains at, not the model's alone: from the previous batch's end (or this batch's oldest
            // text, when the runner was idle) to now, so time lost to a busy machine between runs counts too.
            var now = Stopwatch.GetTimestamp();
            var since = Math.Max(_lastBatchEnd, batch.Min(b => b.EnqueuedAt));
            _lastBatchEnd = now;
            var rate = batch.Count / Math.Max(Stopwatch.GetElapsedTime(since, now).TotalSeconds, 1e-6);
            if (failure is null) _textsPerSecond = double.IsNaN(_textsPerSecond) ? rate : 0.8 * _textsPerSecond + 0.2 * rate;
            for (var i = 0; i < batch.Count; i++)
            {
                var request = batch[i].Request;
                if (request.Completion.Task.IsCompleted) continue; // the client went away meanwhile
                if (failure is not null)
                {
                    _queue.RemoveAll(q => q.Request == request);
                    request.Queued = 0;
                    request.Completion.TrySetException(failure);
                    continue;
                }
                request.Results[batch[i].Index] = probabilities![i];
                if (--request.Remaining == 0) request.Completion.TrySetResult(request.Results);
            }
        }
    }

    /// <summary>What a shed client should wait, at the measured rate (<see cref="InferenceOptions.RetryAfter"/>); at most 30 s.</summary>
    private TimeSpan RetryAfterLocked(int more)
    {
        if (double.IsNaN(_textsPerSecond)) return TimeSpan.FromSeconds(1);
        var rate = Math.Max(_textsPerSecond, 1);
        if (_options.RetryAfter == RetryAfterPolicy.QueueDrained)
            return TimeSpan.FromSeconds(Math.Clamp(Math.Ceiling((_queue.Count + more) / rate), 1, 30));
        // Admitted once the work ahead is within the deadline and the request fits the capacity: the whole queue's drain
        // time is longer by the deadline, and a client sleeping that long finds the model idle when it returns.
        var untilDeadline = _queue.Count / rate - _options.Deadline.TotalSeconds;
        var untilRoom = (_queue.Count + more - _options.QueueCapacity) / rate;
        return TimeSpan.FromSeconds(Math.Clamp(Math.Max(untilDeadline, untilRoom), 0, 30));
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_stopping) return;
            _stopping = true;
            foreach (var text in _queue) text.Request.Completion.TrySetException(new ObjectDisposedException(nameof(InferenceEngine), "the model is no longer served"));
            _queue.Clear();
            Monitor.PulseAll(_gate);
        }
        foreach (var runner in _runners) runner.Join();
        ServingMetrics.Untrack(this);
        _student.Dispose();
    }

    /// <summary>A class, not a record: the queue finds and removes texts by identity.</summary>
    private sealed class QueuedText(PendingRequest request, int index, long[] tokens, long enqueuedAt)
    {
        public PendingRequest Request { get; } = request;
        public int Index { get; } = index;
        public long[] Tokens { get; } = tokens;
        public long EnqueuedAt { get; } = enqueuedAt;
    }

    private sealed class PendingRequest(int count)
    {
        public readonly TaskCompletionSource<float[][]> Completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public readonly float[][] Results = new float[count][];
        public int Remaining = count;
        public int Queued;
        private CancellationTokenSource? _deadline;
        private CancellationTokenRegistration _cancelled, _expired;

        public void Watch(CancellationToken cancellationToken, TimeSpan deadline, TimeProvider time, Action<PendingRequest, bool, CancellationToken> abandon)
        {
            _deadline = new CancellationTokenSource(deadline, time);
            _expired = _deadline.Token.Register(() => abandon(this, true, default));
            if (cancellationToken.CanBeCanceled) _cancelled = cancellationToken.Register(() => abandon(this, false, cancellationToken));
            Completion.Task.ContinueWith(_ =>
            {
                _cancelled.Dispose();
                _expired.Dispose();
                _deadline.Dispose();
            }, TaskScheduler.Default);
        }
    }
}
