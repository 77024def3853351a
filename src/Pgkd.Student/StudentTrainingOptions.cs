namespace Pgkd.Student;

/// <summary>What is trained: every weight, or only the head over frozen, cached sentence embeddings.</summary>
public enum StudentTrainingMode
{
    /// <summary>All 22.6M weights train (TorchSharp forward and backward through the encoder).</summary>
    Full,
    /// <summary>The encoder is frozen: sentence embeddings are computed once with ONNX Runtime and cached by text hash; only the head trains.</summary>
    Head,
}

/// <summary>How a fresh classifier head starts (a later full-mode round continues from the previous one's head).</summary>
public enum HeadStart
{
    /// <summary>TorchSharp's default Linear initialisation: near-uniform predictions that the first steps must move.</summary>
    Random,
    /// <summary>
    /// A nearest-centroid classifier over the training examples' pretrained sentence embeddings (<see cref="StudentTrainer.CentroidHead"/>):
    /// the student starts where a prototype few-shot classifier ends, so few steps go to finding the classes at all.
    /// </summary>
    ClassCentroids,
}

/// <summary>Which examples an epoch's batches hold.</summary>
public enum BatchSampling
{
    /// <summary>Every example once per epoch, in shuffled order.</summary>
    Shuffled,
    /// <summary>
    /// As many examples per epoch as <see cref="Shuffled"/>, but an equal share from every class that has any: each class's
    /// examples are dealt from its own shuffled deck, reshuffled when it runs out, so a flooded class is spread over epochs and a
    /// starved one repeats (see ClassBalancedEpochs).
    /// </summary>
    ClassBalanced,
}

public enum ClassWeighting
{
    None,
    /// <summary>weight_c = N / (classes · n_c): rare classes count more in the loss.</summary>
    Balanced,
}

/// <summary>Options of one training run (one PGKD round). Defaults follow common fine-tuning practice.</summary>
public sealed record StudentTrainingOptions
{
    public StudentTrainingMode Mode { get; init; } = StudentTrainingMode.Full;
    public int Epochs { get; init; } = 1;
    /// <summary>Stops after this many optimizer steps (0 = no limit); the schedule is planned for the limit.</summary>
    public int MaxSteps { get; init; }
    /// <summary>
    /// At least this many optimizer steps (0 = as many as <see cref="Epochs"/> gives): epochs are added until they are reached,
    /// within <see cref="MaxSteps"/>. Lets a round's length follow the number of classes rather than the data's size alone.
    /// </summary>
    public int MinSteps { get; init; }
    public HeadStart HeadStart { get; init; } = HeadStart.Random;
    public BatchSampling BatchSampling { get; init; } = BatchSampling.Shuffled;
    /// <summary>
    /// With validation examples given to <see cref="StudentTrainer.Train"/>: the round stops once this many epochs in a row have not
    /// lowered the validation loss, and keeps the weights of its best epoch; <see cref="Epochs"/> (and <see cref="MaxSteps"/>) are then
    /// the cap, and the learning-rate schedule is planned for the cap. 0: no stopping within the round.
    /// </summary>
    public int ValidationPatience { get; init; }
    /// <summary>With <see cref="HeadStart.ClassCentroids"/>: the logits' scale at the start (a cosine of 1 gives this logit).</summary>
    public double CentroidScale { get; init; } = 10;
    public int BatchSize { get; init; } = 16;
    /// <summary>Peak AdamW learning rate (2e-5 suits full fine-tuning; the head alone wants ~1e-3..1e-2).</summary>
    public double LearningRate { get; init; } = 2e-5;
    public double WeightDecay { get; init; } = 0.01;
    /// <summary>Fraction of the steps with a linear warm-up from 0 to the peak rate; the rest decays linearly to 0.</summary>
    public double WarmupFraction { get; init; } = 0.1;
    /// <summary>Gradient L2-norm clip (0 = none).</summary>
    public double MaxGradNorm { get; init; } = 1.0;
    /// <summary>Tokens per text, [CLS] and [SEP] included; longer texts are cut.</summary>
    public int MaxLength { get; init; } = 128;
    /// <summary>Dropout before the head (training only).</summary>
    public double Dropout { get; init; } = 0.1;
    public ClassWeighting ClassWeighting { get; init; } = ClassWeighting.None;
    /// <summary>Explicit loss weight per class in label order; overrides <see cref="ClassWeighting"/>.</summary>
    public IReadOnlyList<float>? ClassWeights { get; init; }
    /// <summary>Same seed and data on CPU with the same thread count: the same weights.</summary>
    public int Seed { get; init; } = 42;
    /// <summary>libtorch and ONNX Runtime intra-op threads (0 = library default).</summary>
    public int Threads { get; init; }
    /// <summary>"auto" (CUDA when TorchSharp sees one), "cpu" or "cuda".</summary>
    public string Device { get; init; } = "auto";
    /// <summary>Length buckets: texts are sorted by length within windows of this many batches, then batches are shuffled.</summary>
    public int BucketWindowBatches { get; init; } = 50;
    /// <summary>A progress report every this many steps (and at each epoch's end).</summary>
    public int ProgressEverySteps { get; init; } = 10;
    /// <summary>
    /// No longer batches the head-mode embeddings: they are computed one text per run so a cached vector does not depend on
    /// its batch partners (issue 19.5). Kept so existing option files still bind.
    /// </summary>
    public int EmbeddingBatchSize { get; init; } = 64;

    internal void Validate()
    {
        if (Epochs < 1) throw new ArgumentException("Epochs must be at least 1.");
        if (MaxSteps < 0) throw new ArgumentException("MaxSteps must not be negative (0 = no limit).");
        if (MinSteps < 0) throw new ArgumentException("MinSteps must not be negative (0 = as many as Epochs gives).");
        if (ValidationPatience < 0) throw new ArgumentException("ValidationPatience must not be negative (0 = no stopping within the round).");
        if (!Enum.IsDefined(BatchSampling)) throw new ArgumentException($"BatchSampling {BatchSampling} is not one of {string.Join(", ", Enum.GetNames<BatchSampling>())}.");
        if (!(CentroidScale > 0) || !double.IsFinite(CentroidScale)) throw new ArgumentException("CentroidScale must be a positive number.");
        if (BatchSize < 1) throw new ArgumentException("BatchSize must be at least 1.");
        if (MaxLength is < 2 or > MiniLMShape.MaxPositions) throw new ArgumentException($"MaxLength must be in 2..{MiniLMShape.MaxPositions}.");
        if (LearningRate < 0) throw new ArgumentException("LearningRate must not be negative.");
        if (Dropout is < 0 or >= 1) throw new ArgumentException("Dropout must be in [0, 1).");
        if (WarmupFraction is < 0 or > 1) throw new ArgumentException("WarmupFraction must be in [0, 1].");
    }
}

public enum StudentTrainingPhase
{
    /// <summary>Head mode: computing (or reading cached) sentence embeddings.</summary>
    Embedding,
    Training,
    /// <summary>Writing the state and exporting model.onnx.</summary>
    Exporting,
    Done,
}

/// <summary>
/// A progress report. <see cref="Loss"/> is the mean training loss over the steps since the previous report;
/// <see cref="ExamplesPerSecond"/> counts training examples over the same span. With stopping within the round, the report at an
/// epoch's end carries that epoch's <see cref="ValidationLoss"/> and the best epoch so far; the Exporting and Done reports name the
/// epochs run (<see cref="Epoch"/>) and the epoch whose weights were kept (<see cref="BestEpoch"/>).
/// </summary>
public sealed record StudentTrainingProgress(
    StudentTrainingPhase Phase,
    int Epoch,
    int Epochs,
    long Step,
    long TotalSteps,
    double Loss,
    double ExamplesPerSecond,
    double LearningRate,
    TimeSpan Elapsed,
    double? ValidationLoss = null,
    int? BestEpoch = null);
