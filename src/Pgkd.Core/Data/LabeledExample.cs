namespace Pgkd.Core.Data;

/// <summary>One training, validation or teacher-written example: a text and its label name.</summary>
public sealed record LabeledExample(string Text, string Label);
