// Package redact removes secrets from text bmc shows or keeps: SAS
// signatures in URLs, storage account keys and SAS tokens in connection
// strings, and Authorization header values. Errors, logs, journals and
// the files of a run directory go through it.
package redact

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
)

// Marker replaces each secret.
const Marker = "REDACTED"

// rules are the patterns of secrets, each with a lower-case text that
// any match contains: a text without it is not searched, since the
// case-insensitive patterns scan at a few MB/s and a run's program is
// hundreds of kilobytes.
var rules = []struct {
	hint string
	re   *regexp.Regexp
	repl string
}{
	{"sharedaccesssignature=", regexp.MustCompile(`(?i)(SharedAccessSignature=)[^;\s"'<>]*`), "${1}" + Marker},
	{"accountkey=", regexp.MustCompile(`(?i)(AccountKey=)[^;\s"'<>]*`), "${1}" + Marker},
	{"sig=", regexp.MustCompile(`(?i)\b(sig=)[^&;\s"'<>]*`), "${1}" + Marker},
	// A SAS URL inside another URL's query, percent-encoded: the value
	// runs to the next encoded "&" (%26).
	{"sig%3d", regexp.MustCompile(`(?i)((?:\b|%26|%3F)sig%3D)(?:[^%&;\s"'<>]|%(?:[013-9a-f][0-9a-f]|2[0-57-9a-f]))*`), "${1}" + Marker},
	{"sharedkey", regexp.MustCompile(`(?i)\b(SharedKey(?:Lite)?\s+[^:\s]+:)[^\s"'<>]*`), "${1}" + Marker},
	{"bearer", regexp.MustCompile(`(?i)\b(Bearer\s+)[^\s"'<>]+`), "${1}" + Marker},
}

// String returns s with its secrets replaced by Marker.
func String(s string) string {
	hints := holdsHints(s)
	if hints == 0 {
		return s
	}
	// A rule only takes text out and puts Marker in, which forms no hint,
	// so a hint s did not hold before a rule it does not hold after.
	for i, r := range rules {
		if hints&(1<<i) != 0 {
			s = r.re.ReplaceAllString(s, r.repl)
		}
	}
	return s
}

// holdsHints returns a bit per rule whose hint s holds, ignoring ASCII
// case. It looks at s a block at a time, lowered into a buffer that
// overlaps the previous block by the longest hint, without allocating.
func holdsHints(s string) uint {
	const block, overlap = 4096, 32
	var buf [block + overlap]byte
	var hints uint
	for start := 0; start < len(s); start += block {
		end := min(start+block+overlap, len(s))
		b := buf[:end-start]
		for i := range b {
			c := s[start+i]
			if c-'A' < 26 {
				c += 'a' - 'A'
			}
			b[i] = c
		}
		for i, r := range rules {
			if hints&(1<<i) == 0 && bytes.Contains(b, []byte(r.hint)) {
				hints |= 1 << i
			}
		}
	}
	return hints
}

// JSON encodes v as JSON, indented with two spaces when indent is set,
// with its secrets replaced by Marker, and reports whether there were any.
// "&" and "<" stay as they are, not \u escapes, so that a signature after
// "&" in a URL is recognised.
func JSON(v any, indent bool) (b []byte, redacted bool, err error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if indent {
		enc.SetIndent("", "  ")
	}
	if err := enc.Encode(v); err != nil {
		return nil, false, err
	}
	s := buf.String()
	r := String(s)
	return []byte(r), r != s, nil
}

// Holds reports whether s was redacted: whether it holds Marker where a
// secret was.
func Holds(s string) bool {
	return strings.Contains(s, Marker) && strings.Contains(String(strings.ReplaceAll(s, Marker, "x")), Marker)
}
