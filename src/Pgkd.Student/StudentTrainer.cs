using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Pgkd.Core.Data;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pgkd.Student;

/// <summary>
/// Trains the student for one PGKD round and writes a <see cref="StudentCheckpoint"/>. Keep one instance in a
/// long-lived trainer: it holds the tokenizer, the head-mode embedding cache and the pretrained embedder
/// session. One training at a time per instance (libtorch's thread count and seed are process-wide).
/// </summary>
public sealed class StudentTrainer : IDisposable
{
    private readonly PretrainedMiniLM _pretrained;
    private readonly Action<string>? _log;
    private readonly Lock _gate = new();
    private string? _pretrainedFingerprint;
    private InferenceSession? _pretrainedEmbedder;

    public StudentTrainer(PretrainedMiniLM? pretrained = null, SentenceEmbeddingCache? embeddingCache = null, Action<string>? log = null)
    {
        ProcessMemory.Configure(); // before libtorch's first allocation (see ProcessMemory)
        _pretrained = pretrained ?? PretrainedMiniLM.Ensure();
        Tokenizer = StudentTokenizer.ForPretrained(_pretrained);
        EmbeddingCache = embeddingCache ?? new SentenceEmbeddingCache();
        _log = log;
    }

    public StudentTokenizer Tokenizer { get; }

    public SentenceEmbeddingCache EmbeddingCache { get; }

    /// <summary>
    /// Trains on <paramref name="examples"/> (labels resolved in <paramref name="labels"/>, whose order is the
    /// output order), starting from <paramref name="startFrom"/> when given (a later round) or from the
    /// pretrained encoder and a fresh head, and writes the checkpoint into <paramref name="outputDirectory"/>. With
    /// <see cref="StudentTrainingOptions.ValidationPatience"/> the loss on <paramref name="validation"/> is measured after every epoch,
    /// the round stops when it stalls, and the best epoch's weights are the ones stored.
    /// </summary>
    public StudentCheckpoint Train(
        StudentTrainingOptions options,
        IReadOnlyList<LabeledExample> examples,
        LabelSet labels,
        string outputDirectory,
        StudentCheckpoint? startFrom = null,
        Action<StudentTrainingProgress>? progress = null,
        CancellationToken cancellationToken = default,
        IReadOnlyList<LabeledExample>? validation = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(examples);
        ArgumentNullException.ThrowIfNull(labels);
        options.Validate();
        if (examples.Count == 0) throw new ArgumentException("No training examples.", nameof(examples));
        long[] Targets(IReadOnlyList<LabeledExample> set, string what, string parameter) => set.Select((e, i) => labels.IndexOf(e.Label) is var k and >= 0
            ? (long)k
            : throw new ArgumentException($"{what} {i} has label \"{e.Label}\", which is not in the label set ({labels}).", parameter)).ToArray();
        var targets = Targets(examples, "Example", nameof(examples));
        if (options.ValidationPatience > 0 && (validation is null || validation.Count == 0))
            throw new ArgumentException($"ValidationPatience {options.ValidationPatience} stops the round on the validation loss, but no validation examples were given.", nameof(validation));
        var validationTargets = options.ValidationPatience == 0 ? null : Targets(validation!, "Validation example", nameof(validation));
        if (startFrom is not null)
        {
            if (!startFrom.Metadata.Labels.SequenceEqual(labels.Names, StringComparer.Ordinal))
                throw new ArgumentException($"The checkpoint's labels ({string.Join(", ", startFrom.Metadata.Labels)}) differ from this label set ({labels}).", nameof(startFrom));
            if (startFrom.Metadata.VocabularyHash != Tokenizer.VocabularyHash)
                throw new ArgumentException("The checkpoint was trained with another vocabulary.", nameof(startFrom));
        }

        lock (_gate)
        try
        {
            var clock = Stopwatch.StartNew();
            TorchDevice.SetThreads(options.Threads);
            var device = TorchDevice.Resolve(options.Device);
            using var runScope = NewDisposeScope();
            random.manual_seed(options.Seed);
            if (device.type == DeviceType.CUDA) cuda.manual_seed_all(options.Seed);

            using var model = new StudentModel(labels.Count, options.Dropout);
            var baseModel = _pretrained.ReadModelBytes();
            // Head mode over the pretrained encoder never runs the TorchSharp encoder (ONNX Runtime embeds, only the head
            // trains and is stored): its weights are not loaded at all.
            var overPretrained = options.Mode == StudentTrainingMode.Head && (startFrom is null || startFrom.IsHeadOnly);
            if (startFrom is null)
            {
                if (!overPretrained) model.Encoder.LoadPretrained(baseModel);
            }
            else if (startFrom.IsHeadOnly && overPretrained)
            {
                StudentCheckpoint.EnsureEncoderMatches(startFrom.Metadata, _pretrained, startFrom.Directory);
                startFrom.LoadHead(model);
            }
            else startFrom.LoadWeights(model, _pretrained);
            model.to(device);

            var texts = examples.Select(e => e.Text).ToArray();
            var rows = texts.Select(t => Tokenizer.Encode(t, options.MaxLength)).ToArray();
            using var classWeights = ClassWeightTensor(options, targets, labels.Count, device);
            // A fresh head over the pretrained encoder (round 0 in full mode; every head-mode round) may start at the class centroids:
            // head mode from the embeddings it trains on, full mode from the pretrained encoder's, embedded here.
            var startAtCentroids = options.HeadStart == HeadStart.ClassCentroids && startFrom is null;
            if (startAtCentroids && options.Mode == StudentTrainingMode.Full)
                StartAtCentroids(model, Embed(model, options, texts, rows, baseModel, pretrainedEncoder: true), targets, options.CentroidScale);
            var held = validationTargets is null ? null : new HeldOut(validation!.Select(e => e.Text).ToArray(),
                validation!.Select(e => Tokenizer.Encode(e.Text, options.MaxLength)).ToArray(), validationTargets);
            var run = options.Mode == StudentTrainingMode.Head
                ? TrainHead(model, options, texts, rows, targets, classWeights, device, baseModel, overPretrained, startAtCentroids, held, progress, clock, cancellationToken)
                : TrainFull(model, options, rows, targets, classWeights, device, held, progress, clock, cancellationToken);
            var steps = run.Steps;
            // A head over an encoder that is still the pretrained one (e.g. an old complete head-mode checkpoint) is stored head-only too.
            var headOnly = options.Mode == StudentTrainingMode.Head && (overPretrained || EncoderFingerprint(model) == PretrainedFingerprint());

            progress?.Invoke(new StudentTrainingProgress(StudentTrainingPhase.Exporting, run.Epochs, run.Epochs, steps, steps, double.NaN, 0, 0, clock.Elapsed,
                run.BestValidationLoss, run.BestEpoch));
            model.eval();
            model.to(CPU); // the state file and the ONNX export read CPU tensors
            var metadata = new StudentCheckpointMetadata(
                headOnly ? StudentCheckpointMetadata.HeadOnlyFormat : StudentCheckpointMetadata.CurrentFormat,
                PretrainedMiniLM.ModelName,
                labels.Names.ToArray(),
                options.MaxLength,
                Tokenizer.VocabularyHash,
                options.Mode == StudentTrainingMode.Head ? "head" : "full",
                options.Seed,
                steps,
                examples.Count,
                startFrom?.Directory,
                DateTimeOffset.UtcNow,
                headOnly ? _pretrained.Reference : null);
            var checkpoint = StudentCheckpoint.Write(outputDirectory, model, metadata, baseModel);
            progress?.Invoke(new StudentTrainingProgress(StudentTrainingPhase.Done, run.Epochs, run.Epochs, steps, steps, double.NaN, 0, 0, clock.Elapsed,
                run.BestValidationLoss, run.BestEpoch));
            return checkpoint;
        }
        finally
        {
            // Whatever this training freed (tensors, optimizer state, the export's graphs) goes back to the system, so the
            // next job starts where this one did, however long the trainer lives.
            ProcessMemory.Release();
        }
    }

    /// <summary>
    /// Class probabilities (label order) of a checkpoint for <paramref name="texts"/>, through the embedding cache:
    /// its encoder's sentence embeddings (cached by weights fingerprint, so across head-mode rounds and runs each text
    /// is embedded once) and then its head. The same numbers as the checkpoint's model.onnx, without re-encoding:
    /// for tools that score many checkpoints on one fixed set (the benchmark's per-round test curve).
    /// </summary>
    public float[][] PredictProbabilities(StudentCheckpoint checkpoint, IReadOnlyList<string> texts, int threads = 0)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        ArgumentNullException.ThrowIfNull(texts);
        if (texts.Count == 0) return [];
        lock (_gate)
        {
            TorchDevice.SetThreads(threads);
            using var scope = NewDisposeScope();
            using var model = new StudentModel(checkpoint.Metadata.Labels.Count);
            if (checkpoint.IsHeadOnly)
            {
                StudentCheckpoint.EnsureEncoderMatches(checkpoint.Metadata, _pretrained, checkpoint.Directory);
                checkpoint.LoadHead(model);
            }
            else model.load(checkpoint.StatePath);
            model.eval();
            var options = new StudentTrainingOptions { MaxLength = checkpoint.Metadata.MaxLength, Threads = threads };
            var rows = texts.Select(t => Tokenizer.Encode(t, options.MaxLength)).ToArray();
            var vectors = Embed(model, options, texts, rows, _pretrained.ReadModelBytes(), checkpoint.IsHeadOnly);
            var flat = new float[vectors.Length * MiniLMShape.Hidden];
            for (var i = 0; i < vectors.Length; i++) vectors[i].CopyTo(flat, i * MiniLMShape.Hidden);
            using var _ = no_grad();
            var probabilities = nn.functional.softmax(model.Classify(tensor(flat, [vectors.Length, MiniLMShape.Hidden])), 1).data<float>().ToArray();
            var classes = checkpoint.Metadata.Labels.Count;
            return Enumerable.Range(0, texts.Count).Select(i => probabilities.AsSpan(i * classes, classes).ToArray()).ToArray();
        }
    }

    /// <summary>The validation examples a round stops on: texts, token rows and targets.</summary>
    private sealed record HeldOut(string[] Texts, long[][] Rows, long[] Targets);

    /// <summary>What the loop did: optimizer steps, epochs run, and (stopping within the round) the epoch kept and its validation loss.</summary>
    private readonly record struct LoopResult(long Steps, int Epochs, int? BestEpoch, double? BestValidationLoss);

    private LoopResult TrainFull(StudentModel model, StudentTrainingOptions o, long[][] rows, long[] targets, Tensor? classWeights,
        Device device, HeldOut? held, Action<StudentTrainingProgress>? progress, Stopwatch clock, CancellationToken ct)
    {
        // The logits of the rows idx (padded to their longest) and their targets.
        (Tensor Logits, Tensor Y) Forward(long[][] set, long[] setTargets, int[] idx, Device dev)
        {
            var batch = StudentTokenizer.Pad(idx.Select(i => set[i]).ToArray());
            var ids = tensor(batch.InputIds, [batch.Count, batch.Length], device: dev);
            var mask = tensor(batch.AttentionMask, [batch.Count, batch.Length], device: dev);
            return (model.forward(ids, mask), tensor(idx.Select(i => setTargets[i]).ToArray(), device: dev));
        }
        var lengths = rows.Select(r => r.Length).ToArray();
        // Length-sorted runs of 32 (little padding), planned once per round; the mean over examples, unweighted, as the evaluator reports it.
        var heldRuns = held is null ? null : LengthBatches.Plan(held.Rows.Select(r => r.Length).ToArray(), 32, 32L * o.MaxLength, 1);
        Func<double>? validationLoss = held is null ? null : () =>
        {
            double sum = 0;
            foreach (var run in heldRuns!)
                using (NewDisposeScope())
                {
                    var (logits, y) = Forward(held.Rows, held.Targets, run, device);
                    sum += nn.functional.cross_entropy(logits, y, reduction: nn.Reduction.Sum).item<float>();
                }
            return sum / held.Targets.Length;
        };
        return Loop(model, model.parameters(), o, targets, lengths, device, validationLoss, progress, clock, ct, (idx, dev) =>
        {
            var (logits, y) = Forward(rows, targets, idx, dev);
            return nn.functional.cross_entropy(logits, y, classWeights);
        });
    }

    private LoopResult TrainHead(StudentModel model, StudentTrainingOptions o, IReadOnlyList<string> texts, long[][] rows, long[] targets, Tensor? classWeights,
        Device device, byte[] baseModel, bool pretrainedEncoder, bool startAtCentroids, HeldOut? held, Action<StudentTrainingProgress>? progress,
        Stopwatch clock, CancellationToken ct)
    {
        foreach (var p in model.Encoder.parameters()) p.requires_grad_(false);
        progress?.Invoke(new StudentTrainingProgress(StudentTrainingPhase.Embedding, 0, o.Epochs, 0, 0, double.NaN, 0, 0, clock.Elapsed));
        // The validation texts in the same call: over a fine-tuned encoder each call builds its own ONNX Runtime session.
        var embedded = Embed(model, o, held is null ? texts : [.. texts, .. held.Texts], held is null ? rows : [.. rows, .. held.Rows], baseModel, pretrainedEncoder);
        var vectors = embedded[..texts.Count];
        if (startAtCentroids) StartAtCentroids(model, vectors, targets, o.CentroidScale);
        using var all = Stack(vectors, device);
        using var heldVectors = held is null ? null : Stack(embedded[texts.Count..], device);
        using var heldTargets = held is null ? null : tensor(held.Targets, device: device);
        Func<double>? validationLoss = held is null ? null : () =>
        {
            using var scope = NewDisposeScope();
            return nn.functional.cross_entropy(model.Classify(heldVectors!), heldTargets!).item<float>();
        };
        var sameLength = new int[rows.Length];
        return Loop(model, model.Head.parameters(), o, targets, sameLength, device, validationLoss, progress, clock, ct, (idx, dev) =>
        {
            var x = all.index_select(0, tensor(idx.Select(i => (long)i).ToArray(), device: dev));
            var y = tensor(idx.Select(i => targets[i]).ToArray(), device: dev);
            return nn.functional.cross_entropy(model.Classify(x), y, classWeights);
        });
    }

    private static Tensor Stack(float[][] vectors, Device device)
    {
        var flat = new float[vectors.Length * MiniLMShape.Hidden];
        for (var i = 0; i < vectors.Length; i++) vectors[i].CopyTo(flat, i * MiniLMShape.Hidden);
        return tensor(flat, [vectors.Length, MiniLMShape.Hidden], device: device);
    }

    /// <summary>
    /// The shared loop: length-bucketed batches (shuffled or class-balanced), AdamW, warm-up + linear decay, clipping, progress;
    /// with <paramref name="validationLoss"/>, a validation loss after every epoch, a stop when it has not improved for
    /// <see cref="StudentTrainingOptions.ValidationPatience"/> epochs, and the best epoch's weights restored.
    /// </summary>
    private static LoopResult Loop(StudentModel model, IEnumerable<Parameter> parameters, StudentTrainingOptions o, long[] targets, int[] lengths,
        Device device, Func<double>? validationLoss, Action<StudentTrainingProgress>? progress, Stopwatch clock, CancellationToken ct,
        Func<int[], Device, Tensor> lossOf)
    {
        var trainable = parameters.ToArray();
        var count = targets.Length;
        var batchesPerEpoch = (count + o.BatchSize - 1) / o.BatchSize;
        long total = Math.Max((long)o.Epochs * batchesPerEpoch, o.MinSteps);
        if (o.MaxSteps > 0) total = Math.Min(total, o.MaxSteps);
        var epochs = (int)Math.Max(o.Epochs, (total + batchesPerEpoch - 1) / batchesPerEpoch);
        var warmup = (long)Math.Ceiling(o.WarmupFraction * total);
        using var optimizer = optim.AdamW(trainable, o.LearningRate, weight_decay: o.WeightDecay);
        using var best = validationLoss is null ? null : new BestWeights(trainable);
        var balanced = o.BatchSampling == BatchSampling.ClassBalanced ? new ClassBalancedEpochs(targets, new Random(unchecked(o.Seed * 104729 + 3))) : null;
        model.train();
        // Re-seed here: what ran since the model was built (e.g. head-mode embedding) must not shift the dropout masks.
        random.manual_seed(unchecked(o.Seed * 31 + 1));
        long step = 0;
        double lossSum = 0;
        int lossCount = 0, examplesSinceReport = 0, epoch = 0;
        var sinceReport = Stopwatch.StartNew();
        while (epoch < epochs && step < total)
        {
            epoch++;
            var rng = new Random(unchecked(o.Seed * 7919 + epoch));
            var batches = balanced is null
                ? MakeBatches(lengths, o.BatchSize, o.BucketWindowBatches, rng)
                : MakeBatches(balanced.Next(count), lengths, o.BatchSize, o.BucketWindowBatches, rng);
            for (var b = 0; b < batches.Count && step < total; b++)
            {
                ct.ThrowIfCancellationRequested();
                var lr = LearningRateAt(step, total, warmup, o.LearningRate);
                using (NewDisposeScope())
                {
                    foreach (var g in optimizer.ParamGroups) g.LearningRate = lr;
                    optimizer.zero_grad();
                    var loss = lossOf(batches[b], device);
                    loss.backward();
                    if (o.MaxGradNorm > 0) nn.utils.clip_grad_norm_(trainable, o.MaxGradNorm);
                    optimizer.step();
                    lossSum += loss.item<float>();
                }
                lossCount++;
                examplesSinceReport += batches[b].Length;
                step++;
                var endOfEpoch = b == batches.Count - 1 || step == total;
                double? heldLoss = null;
                if (endOfEpoch && best is not null)
                {
                    model.eval();
                    using (no_grad()) heldLoss = validationLoss!();
                    model.train();
                    best.Offer(epoch, heldLoss.Value);
                }
                if (progress is not null && (step % Math.Max(1, o.ProgressEverySteps) == 0 || endOfEpoch))
                {
                    var seconds = Math.Max(1e-9, sinceReport.Elapsed.TotalSeconds);
                    progress(new StudentTrainingProgress(StudentTrainingPhase.Training, epoch, epochs, step, total,
                        lossSum / lossCount, examplesSinceReport / seconds, lr, clock.Elapsed, heldLoss, best?.Epoch));
                    lossSum = 0; lossCount = 0; examplesSinceReport = 0;
                    sinceReport.Restart();
                }
            }
            if (best is not null && epoch - best.Epoch >= o.ValidationPatience) break;
        }
        best?.Restore();
        foreach (var p in model.parameters()) p.requires_grad_(true);
        return new LoopResult(step, epoch, best?.Epoch, best?.Loss);
    }

    /// <summary>The trainable weights of the epoch with the lowest validation loss so far (one copy, replaced on improvement).</summary>
    private sealed class BestWeights(Parameter[] trainable) : IDisposable
    {
        private Tensor[]? _copy;
        private bool _current = true;

        public int Epoch { get; private set; }
        public double Loss { get; private set; } = double.PositiveInfinity;

        /// <summary>Keeps the weights as they are now when <paramref name="loss"/> is lower than every earlier epoch's.</summary>
        public void Offer(int epoch, double loss)
        {
            // The first epoch is always kept (even at a NaN loss), so the round reports a real epoch.
            if (_copy is not null && !(loss < Loss))
            {
                _current = false;
                return;
            }
            (Epoch, Loss, _current) = (epoch, loss, true);
            Release();
            using (no_grad())
            using (NewDisposeScope())
                _copy = trainable.Select(p => p.detach().clone().DetachFromDisposeScope()).ToArray();
        }

        /// <summary>Puts the best epoch's weights back unless the last epoch was the best.</summary>
        public void Restore()
        {
            if (_current || _copy is null) return;
            using (no_grad())
                for (var i = 0; i < trainable.Length; i++) trainable[i].copy_(_copy[i]);
        }

        private void Release()
        {
            if (_copy is null) return;
            foreach (var t in _copy) t.Dispose();
            _copy = null;
        }

        public void Dispose() => Release();
    }

    private static void StartAtCentroids(StudentModel model, float[][] vectors, long[] targets, double scale)
    {
        var (weight, bias) = CentroidHead(vectors, targets, model.Classes, scale);
        model.SetHeadWeights(weight, bias);
    }

    /// <summary>
    /// A nearest-centroid head: logit_c = s · (x − m) · u_c / r, where u_c is the unit direction of class c's mean embedding from m,
    /// m the mean of the class means, and r the training vectors' mean distance from m. So the head's argmax is the nearest
    /// centroid by cosine around the shared direction, which mean-pooled MiniLM vectors all carry and which would otherwise
    /// dominate every dot product; <paramref name="scale"/> is the logit of a vector lying on its class's direction at the typical
    /// radius. A class without training examples gets a zero direction and a logit of −scale, below every class that has some.
    /// </summary>
    public static (float[] Weight, float[] Bias) CentroidHead(IReadOnlyList<float[]> vectors, IReadOnlyList<long> targets, int classes, double scale)
    {
        ArgumentNullException.ThrowIfNull(vectors);
        ArgumentNullException.ThrowIfNull(targets);
        if (vectors.Count != targets.Count) throw new ArgumentException($"{vectors.Count} vectors for {targets.Count} targets.");
        if (vectors.Count == 0) throw new ArgumentException("No vectors.", nameof(vectors));
        var dim = vectors[0].Length;
        var sums = new double[classes, dim];
        var counts = new int[classes];
        for (var i = 0; i < vectors.Count; i++)
        {
            var c = (int)targets[i];
            counts[c]++;
            for (var d = 0; d < dim; d++) sums[c, d] += vectors[i][d];
        }
        var present = Enumerable.Range(0, classes).Where(c => counts[c] > 0).ToArray();
        var centre = new double[dim];
        foreach (var c in present)
            for (var d = 0; d < dim; d++) centre[d] += sums[c, d] / counts[c] / present.Length;
        var radius = vectors.Average(v => Math.Sqrt(Enumerable.Range(0, dim).Sum(d => (v[d] - centre[d]) * (v[d] - centre[d]))));
        radius = Math.Max(radius, 1e-6);
        var weight = new float[classes * dim];
        var bias = new float[classes];
        for (var c = 0; c < classes; c++)
        {
            if (counts[c] == 0)
            {
                bias[c] = (float)-scale;
                continue;
            }
            var direction = Enumerable.Range(0, dim).Select(d => sums[c, d] / counts[c] - centre[d]).ToArray();
            var norm = Math.Sqrt(direction.Sum(x => x * x));
            if (norm < 1e-12) continue; // a single class: no direction to prefer
            double b = 0;
            for (var d = 0; d < dim; d++)
            {
                var w = scale * direction[d] / norm / radius;
                weight[c * dim + d] = (float)w;
                b -= w * centre[d];
            }
            bias[c] = (float)b;
        }
        return (weight, bias);
    }

    /// <summary>Linear warm-up from 0 over <paramref name="warmup"/> steps, then linear decay to 0 at <paramref name="total"/>.</summary>
    internal static double LearningRateAt(long step, long total, long warmup, double peak) =>
        step < warmup
            ? peak * (step + 1) / warmup
            : peak * Math.Max(0.0, (double)(total - step) / Math.Max(1, total - warmup));

    /// <summary>
    /// Shuffles, sorts by length within windows of <paramref name="windowBatches"/> batches, cuts into batches and
    /// shuffles the batches: each batch holds texts of similar length (little padding) and the order stays random.
    /// </summary>
    internal static List<int[]> MakeBatches(int[] lengths, int batchSize, int windowBatches, Random rng)
    {
        var order = Enumerable.Range(0, lengths.Length).ToArray();
        rng.Shuffle(order);
        return MakeBatches(order, lengths, batchSize, windowBatches, rng);
    }

    /// <summary>The same cut for an epoch whose examples are given (class-balanced: some repeat, some wait for a later epoch).</summary>
    internal static List<int[]> MakeBatches(int[] order, int[] lengths, int batchSize, int windowBatches, Random rng)
    {
        var window = batchSize * Math.Max(1, windowBatches);
        var batches = new List<int[]>();
        for (var w = 0; w < order.Length; w += window)
        {
            var chunk = order.Skip(w).Take(window).Select((i, pos) => (i, pos)).OrderBy(t => lengths[t.i]).ThenBy(t => t.pos).Select(t => t.i).ToArray();
            for (var s = 0; s < chunk.Length; s += batchSize)
                batches.Add(chunk.Skip(s).Take(batchSize).ToArray());
        }
        var shuffled = batches.ToArray();
        rng.Shuffle(shuffled);
        return [.. shuffled];
    }

    private static Tensor? ClassWeightTensor(StudentTrainingOptions o, long[] targets, int classes, Device device)
    {
        float[]? w = null;
        if (o.ClassWeights is { } explicitWeights)
        {
            if (explicitWeights.Count != classes) throw new ArgumentException($"ClassWeights has {explicitWeights.Count} values for {classes} classes.");
            w = explicitWeights.ToArray();
        }
        else if (o.ClassWeighting == ClassWeighting.Balanced)
        {
            var counts = new int[classes];
            foreach (var t in targets) counts[t]++;
            w = counts.Select(c => c == 0 ? 1f : (float)targets.Length / (classes * c)).ToArray();
        }
        return w is null ? null : tensor(w, device: device).DetachFromDisposeScope();
    }

    /// <summary>
    /// Head mode: sentence embeddings of the current encoder, from the cache or computed with ONNX Runtime. With
    /// <paramref name="pretrainedEncoder"/> the model's TorchSharp encoder is not read (it may not be loaded): the pretrained one embeds.
    /// </summary>
    private float[][] Embed(StudentModel model, StudentTrainingOptions o, IReadOnlyList<string> texts, long[][] rows, byte[] baseModel, bool pretrainedEncoder)
    {
        var weights = pretrainedEncoder ? null : model.Encoder.WeightsByHuggingFaceName();
        var fingerprint = weights is null ? PretrainedFingerprint() : Fingerprint(weights);
        var keys = texts.Select(t => SentenceEmbeddingCache.Key(fingerprint, o.MaxLength, t)).ToArray();
        var result = new float[rows.Length][];
        var missing = new List<int>();
        for (var i = 0; i < rows.Length; i++)
            if (EmbeddingCache.TryGet(keys[i], out var v)) result[i] = v;
            else missing.Add(i);
        if (missing.Count == 0) return result;

        var runOptions = new OnnxRunOptions { Threads = o.Threads, Log = _log, BatchSize = o.EmbeddingBatchSize };
        InferenceSession? own = null;
        try
        {
            InferenceSession session;
            if (fingerprint == PretrainedFingerprint())
                session = _pretrainedEmbedder ??= OrtSessions.Create(MiniLMOnnx.BuildServingGraph(baseModel, null, null).ToByteArray(), runOptions, "MiniLM embedder").Session;
            else
                session = own = OrtSessions.Create(MiniLMOnnx.BuildServingGraph(baseModel, weights!, null).ToByteArray(), runOptions, "fine-tuned embedder").Session;
            // One text per run, as PretrainedEmbedder.Embed: a cached vector must be the same bits whichever texts were missing
            // with it, or a restarted trainer (its cache filled in another order) trains the same round differently (issue 19.5).
            var vectors = OrtSessions.RunBatched(session, missing.Select(i => rows[i]).ToArray(), 1, ["sentence_embedding"])[0];
            for (var j = 0; j < missing.Count; j++)
            {
                result[missing[j]] = vectors[j];
                EmbeddingCache.Set(keys[missing[j]], vectors[j]);
            }
        }
        finally
        {
            own?.Dispose();
        }
        return result;
    }

    /// <summary>The pretrained encoder's weights fingerprint, computed once per trainer.</summary>
    private string PretrainedFingerprint()
    {
        if (_pretrainedFingerprint is { } known) return known;
        using var scope = NewDisposeScope();
        using var encoder = new MiniLMEncoder();
        encoder.LoadPretrained(_pretrained.ReadModelBytes());
        return _pretrainedFingerprint = Fingerprint(encoder.WeightsByHuggingFaceName());
    }

    private static string EncoderFingerprint(StudentModel model) => Fingerprint(model.Encoder.WeightsByHuggingFaceName());

    private static string Fingerprint(Dictionary<string, float[]> weights)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var name in MiniLMEncoder.HuggingFaceNames())
            sha.AppendData(MemoryMarshal.AsBytes(weights[name].AsSpan()));
        return Convert.ToHexStringLower(sha.GetHashAndReset())[..16];
    }

    public void Dispose() => _pretrainedEmbedder?.Dispose();
}
