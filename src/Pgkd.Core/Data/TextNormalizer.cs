using System.Text;

namespace Pgkd.Core.Data;

/// <summary>
/// The one definition of "the same text": Unicode NFC, every whitespace run (tabs, newlines,
/// no-break and other Unicode spaces) collapsed to one ASCII space, trimmed. Case is kept: case can
/// carry meaning for a classifier, and the teacher copying a text verbatim is what we guard against.
/// </summary>
public static class TextNormalizer
{
    public static string Normalize(string? text)
    {
        if (string.IsNullOrEmpty(text)) return "";
        // Most texts are already normal (ASCII, single spaces, trimmed; ASCII is its own NFC): hashing every dataset
        // each round (duplicate and leakage checks) then costs no copy and no ICU call.
        if (IsNormalAscii(text)) return text;
        // Lone surrogates make string.Normalize throw; replace them so hostile input never throws.
        var nfc = ReplaceLoneSurrogates(text).Normalize(NormalizationForm.FormC);
        var sb = new StringBuilder(nfc.Length);
        var pendingSpace = false;
        foreach (var c in nfc)
        {
            if (char.IsWhiteSpace(c))
            {
                pendingSpace = sb.Length > 0;
                continue;
            }
            if (pendingSpace) sb.Append(' ');
            pendingSpace = false;
            sb.Append(c);
        }
        return sb.ToString();
    }

    private static bool IsNormalAscii(string s)
    {
        if (s[0] == ' ' || s[^1] == ' ') return false;
        var previousSpace = false;
        foreach (var c in s)
        {
            if (c == ' ')
            {
                if (previousSpace) return false;
                previousSpace = true;
            }
            else if (c is < '!' or > '~') return false; // control characters (tabs, newlines), DEL and everything past ASCII
            else previousSpace = false;
        }
        return true;
    }

    private static string ReplaceLoneSurrogates(string s)
    {
        StringBuilder? sb = null;
        for (var i = 0; i < s.Length; i++)
        {
            var c = s[i];
            var ok = !char.IsSurrogate(c)
                || (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]));
            if (ok && char.IsHighSurrogate(c))
            {
                sb?.Append(c).Append(s[i + 1]);
                i++;
                continue;
            }
            if (!ok)
            {
                sb ??= new StringBuilder(s, 0, i, s.Length);
                sb.Append('\uFFFD');
                continue;
            }
            sb?.Append(c);
        }
        return sb?.ToString() ?? s;
    }
}
