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
	"sync"
)

// Marker replaces each secret.
const Marker = "REDACTED"

// rules are the patterns of secrets, each with a lower-case text that
// any match contains: a text without it is not searched, since the
// case-insensitive patterns scan at a few MB/s and a run's program is
// hundreds of kilobytes. The patterns are compiled when first needed:
// most texts hold no hint, and every bmc command would otherwise pay for
// compiling them at its start.
var rules = []struct {
	hint    string
	pattern string
}{
	{"sharedaccesssignature=", `(?i)(SharedAccessSignature=)[^;\s"'<>]+`},
	{"accountkey=", `(?i)(AccountKey=)[^;\s"'<>]+`},
	{"sig=", `(?i)\b(sig=)[^&;\s"'<>]+`},
	// A SAS URL inside another URL's query, percent-encoded: the value
	// runs to the next encoded "&" (%26).
	{"sig%3d", `(?i)((?:\b|%26|%3F)sig%3D)(?:[^%&;\s"'<>]|%(?:[013-9a-f][0-9a-f]|2[0-57-9a-f]))+`},
	{"sharedkey", `(?i)\b(SharedKey(?:Lite)?\s+[^:\s]+:)[^\s"'<>]*`},
	{"bearer", `(?i)\b(Bearer\s+)[^\s"'<>]+`},
}

var compiled = sync.OnceValue(func() []*regexp.Regexp {
	out := make([]*regexp.Regexp, len(rules))
	for i, r := range rules {
		out[i] = regexp.MustCompile(r.pattern)
	}
	return out
})

// String returns s with its secrets replaced by Marker.
func String(s string) string {
	hints := holdsHints(s)
	if hints == 0 {
		return s
	}
	// A rule only takes text out and puts Marker in, which forms no hint,
	// so a hint s did not hold before a rule it does not hold after.
	res := compiled()
	for i := range rules {
		if hints&(1<<i) != 0 {
			s = res[i].ReplaceAllString(s, "${1}"+Marker)
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
// Each string is redacted as the text it holds, then encoded again, so
// the JSON stays valid whatever the string holds (a pattern run over the
// encoded text would take the backslash of a \" into a secret). "&" and
// "<" stay as they are, not \u escapes, as a signature after "&" reads.
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
	b = buf.Bytes()
	if holdsHints(string(b)) == 0 {
		return b, false, nil
	}
	var out []byte
	done := 0 // b[:done] is in out
	for i := 0; i < len(b); i++ {
		if b[i] != '"' {
			continue
		}
		// A string literal: up to the next quote not escaped. Go's
		// encoder escapes no letter, digit, "=", ";" or "%", so a
		// hint in the text shows in the literal as it is.
		j := i + 1
		for j < len(b) && b[j] != '"' {
			if b[j] == '\\' {
				j++
			}
			j++
		}
		lit := b[i:min(j+1, len(b))]
		if holdsHints(string(lit)) != 0 {
			var s string
			if json.Unmarshal(lit, &s) == nil {
				if r := String(s); r != s {
					out = append(out, b[done:i]...)
					out = appendString(out, r)
					done = i + len(lit)
				}
			}
		}
		i = j
	}
	if done == 0 {
		return b, false, nil
	}
	return append(out, b[done:]...), true, nil
}

// appendString appends s as a JSON string, as JSON's encoder writes it.
func appendString(dst []byte, s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return append(dst, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
}

// Holds reports whether s was redacted: whether it holds Marker where a
// secret was.
func Holds(s string) bool {
	return strings.Contains(s, Marker) && strings.Contains(String(strings.ReplaceAll(s, Marker, "x")), Marker)
}
