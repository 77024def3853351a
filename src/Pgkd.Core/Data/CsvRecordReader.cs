using System.Text;

namespace Pgkd.Core.Data;

/// <summary>One CSV record: the physical line it starts on, its fields, or why it could not be read.</summary>
internal sealed record CsvRecord(int Line, List<string> Fields, string? Error);

/// <summary>
/// RFC 4180 records from a text reader: comma separators, double-quoted fields with "" escapes,
/// CRLF or LF line ends, newlines allowed inside quotes (which advance the line count, so errors on
/// later records still point at the right physical line). A stray quote inside an unquoted field is
/// kept literally, as most spreadsheet exports expect.
/// </summary>
internal sealed class CsvRecordReader(TextReader reader)
{
    /// <summary>The current physical line (1-based).</summary>
    public int Line { get; private set; } = 1;

    public CsvRecord? Next()
    {
        if (reader.Peek() < 0) return null;
        var start = Line;
        var fields = new List<string>();
        var field = new StringBuilder();
        while (true)
        {
            var c = reader.Read();
            if (c == '"' && field.Length == 0)
            {
                var error = ReadQuoted(field);
                if (error is not null)
                {
                    SkipRestOfLine();
                    return new CsvRecord(start, fields, error);
                }
                c = reader.Read();
                if (c != ',' && c != '\n' && c != '\r' && c != -1)
                {
                    SkipRestOfLine();
                    return new CsvRecord(start, fields, $"unexpected character '{(char)c}' after a closing quote");
                }
            }
            else
            {
                while (c != ',' && c != '\n' && c != '\r' && c != -1)
                {
                    field.Append((char)c);
                    c = reader.Read();
                }
            }
            fields.Add(field.ToString());
            field.Clear();
            if (c == ',') continue;
            EndLine(c);
            return new CsvRecord(start, fields, null);
        }
    }

    private string? ReadQuoted(StringBuilder field)
    {
        var opened = Line;
        while (true)
        {
            var c = reader.Read();
            switch (c)
            {
                case -1:
                    return $"unterminated quoted field (opened on line {opened})";
                case '"' when reader.Peek() == '"':
                    reader.Read();
                    field.Append('"');
                    break;
                case '"':
                    return null;
                case '\r':
                    field.Append('\r');
                    if (reader.Peek() == '\n') field.Append((char)reader.Read());
                    Line++;
                    break;
                case '\n':
                    field.Append('\n');
                    Line++;
                    break;
                default:
                    field.Append((char)c);
                    break;
            }
        }
    }

    private void EndLine(int c)
    {
        if (c == '\r' && reader.Peek() == '\n') reader.Read();
        if (c != -1) Line++;
    }

    private void SkipRestOfLine()
    {
        int c;
        do { c = reader.Read(); } while (c != '\n' && c != '\r' && c != -1);
        EndLine(c);
    }
}
