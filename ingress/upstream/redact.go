package upstream

import "strings"

// RedactKeys replaces everything shaped like a Google API key — "AIza" followed by a
// run of key characters ([A-Za-z0-9_-]), 39 characters in all for a Gemini key — with
// [REDACTED]. Upstream error messages can quote the key a call was made with (an
// "API key not valid" page, a URL with ?key=), and those messages are stored in events,
// shown to clients and logged. Runs shorter than 30 characters are left alone: they are
// words, not keys.
func RedactKeys(s string) string {
	const minKey = 30
	if !strings.Contains(s, "AIza") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "AIza")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := i + 4
		for j < len(s) && isKeyChar(s[j]) {
			j++
		}
		b.WriteString(s[:i])
		if j-i >= minKey {
			b.WriteString("[REDACTED]")
		} else {
			b.WriteString(s[i:j])
		}
		s = s[j:]
	}
}

func isKeyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}
