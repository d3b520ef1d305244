// Package redact removes secrets from text bmc shows or keeps: SAS
// signatures in URL query strings (and those of presigned S3 and Cloud
// Storage URLs, with their credentials), query parameters named as keys
// and tokens, storage account keys and SAS tokens in connection strings,
// passwords in URLs, and the values of Authorization and other credential
// headers.
// Errors, logs, journals and the files of a run directory go through it.
// It changes only what is shown or kept: callers fetch with the URL as
// given.
//
// What counts as a secret, and what is kept around it:
//   - sig= is a query parameter or an assignment: it is taken unless a
//     "/", a letter, a digit, "_" or "-" comes right before it, so a path
//     such as az://c/sig=x/ or a file f-sig=x is left alone. The
//     signature runs to the next "&", ";", "#", bracket, comma, space or
//     quote; a "/" is part of it, as base64 holds "/" and a query value
//     may.
//   - AccountKey= and SharedAccessSignature= are connection string
//     fields: taken at the start of a text, after ";" or "=", or where
//     sig= would be, up to the next ";".
//   - In scheme://user:password@host the password goes and the user name
//     stays (host:port followed by a comma is not a password). A user
//     info with no ":" is a user name and stays, unless it looks like an
//     access token (a known prefix such as ghp_, or 16 or more letters
//     and digits mixed): then it all goes.
//   - Query parameters named as keys and tokens: code (an Azure
//     Function's key), key, apikey, api_key, api-key, subscription-key,
//     token, access_token, secret, client_secret, password and pwd, after
//     "?" or "&" (also percent-encoded, in a URL inside another URL's
//     query). The same names in a path, as in /country_code=US/, stay.
//   - Values the caller knows to be secrets (Values): a param given for a
//     header that carries a key (IsCredentialHeader names those), say.
//   - An Authorization or Proxy-Authorization header value keeps its
//     scheme (Basic, Digest, Bearer, …) and loses its credentials, also as
//     a JSON member named so; a value with no scheme goes whole. After an
//     unknown word only a token goes, so that a message about the header
//     stays whole. SharedKey keeps its account name. A Bearer or SharedKey
//     credential goes wherever it stands.
package redact

import (
	"bytes"
	"encoding/json"
	"regexp"
	"slices"
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
var rules = []rule{
	{hint: "sharedaccesssignature=", pattern: `(?i)((?:^|[;=\s"'<>\\])SharedAccessSignature=)[^;\s"'<>]+`},
	{hint: "accountkey=", pattern: `(?i)((?:^|[;=\s"'<>\\])AccountKey=)[^;\s"'<>]+`},
	{hint: "sig=", pattern: `(?i)((?:^|[^/\w-]|\\u0026)sig=)[^&;#\s"'<>(){}\[\],]+`},
	// A SAS URL inside another URL's query, percent-encoded: the value
	// runs to the next encoded "&" (%26) or "#" (%23).
	{hint: "sig%3d", pattern: `(?i)((?:^|%26|%3F|[?&;\s"'<>\\]|\\u0026)sig%3D)(?:[^%&;#\s"'<>]|%(?:[013-9a-f][0-9a-f]|2[0-24-57-9a-f]))+`},
	// Presigned S3 and Cloud Storage URLs, the SAS URLs of other clouds:
	// their signature, credential and session token.
	{hint: "x-amz-", pattern: `(?i)((?:^|[?&;\s"'<>\\]|\\u0026)X-Amz-(?:Signature|Credential|Security-Token)=)[^&;#\s"'<>]+`},
	{hint: "x-goog-", pattern: `(?i)((?:^|[?&;\s"'<>\\]|\\u0026)X-Goog-(?:Signature|Credential)=)[^&;#\s"'<>]+`},
	// Query parameters named as keys and tokens (an Azure Function's
	// ?code=, ?api_key=, ?access_token=), plain or percent-encoded inside
	// another URL, and only in a query: a path segment such as
	// /country_code=US/ is no secret.
	queryRule("code", "code"),
	queryRule("key", "key|apikey|api_key|api-key|subscription-key"),
	queryRule("token", "token|access_token"),
	queryRule("secret", "secret|client_secret"),
	queryRule("password", "password"),
	queryRule("pwd", "pwd"),
	encodedQueryRule("code", "code"),
	encodedQueryRule("key", "key|apikey|api_key|api-key|subscription-key"),
	encodedQueryRule("token", "token|access_token"),
	encodedQueryRule("secret", "secret|client_secret"),
	encodedQueryRule("password", "password"),
	encodedQueryRule("pwd", "pwd"),
	{hint: "sharedkey", pattern: `(?i)\b(SharedKey(?:Lite)?\s+[^:\s]+:)[^\s"'<>]+`},
	{hint: "bearer", pattern: `(?i)\b(Bearer\s+)[^\s"'<>]+`},
	// The user info ends at the last "@" before the host, as net/url
	// reads it, so a password holding "@" goes whole.
	{hint: "@", pattern: `(?i)\b([a-z][a-z0-9+.-]*://[^/?#@\s"'<>:]*:)([^/?#\s"'<>]+)@`, replace: func(m []string) string {
		if portThenText.MatchString(m[2]) {
			return m[0] // host:port followed by other text, not a password
		}
		return m[1] + Marker + "@"
	}},
	{hint: "@", pattern: `(?i)\b([a-z][a-z0-9+.-]*://)([a-z0-9_-]{20,})@`, replace: func(m []string) string {
		if !tokenLike(m[2]) {
			return m[0] // a long user name
		}
		return m[1] + Marker + "@"
	}},
	// The credentials are a token (Basic, Bearer, …) or a list of
	// name=value pairs whose values may be quoted (Digest). A value in
	// Go's header map form, Authorization:[Basic …], ends at "]".
	{hint: "authorization", pattern: `(?i)\b((?:Proxy-)?Authorization"?\s*:\s*\[?"?\s*(?:([a-z][a-z0-9!#$%&*+.^_|~-]*)\s+)?)` +
		`(?:[^\s"'<>,\]=})]+=\s*"[^"\r\n]*"|[^\s"'<>,\]})]+)` +
		`(?:\s*,\s*[^\s"'<>,\]=})]+=\s*(?:"[^"\r\n]*"|[^\s"'<>,\]})]*))*`,
		replace: func(m []string) string {
			scheme := strings.ToLower(m[2])
			switch {
			case scheme == "sharedkey" || scheme == "sharedkeylite":
				return m[0] // the sharedkey rule keeps the account name
			case scheme == "" || authSchemes[scheme]:
				return m[1] + Marker
			case tokenLike(strings.TrimPrefix(m[0], m[1])):
				return m[1] + Marker // an unknown scheme with a token
			}
			return m[0] // words after the name, as in a message about the header
		}},
}

// queryRule is the rule for the query parameters named by names (an
// alternation), whose lower-case names all hold hint.
func queryRule(hint, names string) rule {
	return rule{hint: hint, pattern: `(?i)((?:[?&]|\\u0026)(?:` + names + `)=)[^&;#\s"'<>]+`}
}

// encodedQueryRule is queryRule for a URL percent-encoded inside another
// URL's query: the value runs to the next encoded "&" (%26) or "#" (%23).
func encodedQueryRule(hint, names string) rule {
	return rule{hint: hint, pattern: `(?i)((?:%3F|%26)(?:` + names + `)%3D)(?:[^%&;#\s"'<>]|%(?:[013-9a-f][0-9a-f]|2[0-24-57-9a-f]))+`}
}

// authSchemes are the HTTP authentication schemes whose credentials go,
// in lower case.
var authSchemes = map[string]bool{
	"basic": true, "bearer": true, "digest": true, "negotiate": true, "ntlm": true, "token": true,
	"aws4-hmac-sha256": true, "signature": true, "hoba": true, "mutual": true, "scram-sha-1": true,
	"scram-sha-256": true, "vapid": true, "oauth": true, "apikey": true, "key": true, "sas": true,
}

// portThenText is a port followed by text that cannot end a password:
// host:8080,other@x is a host and port, not a user and password.
var portThenText = regexp.MustCompile(`^[0-9]{1,5}[,;]`)

// tokenLike reports whether s looks like an access token rather than a
// word or a user name: a known token prefix, or 16 or more characters
// with both letters and digits and no "-" or "." joining words.
func tokenLike(s string) bool {
	for _, p := range []string{"ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "xoxb-", "xoxp-", "sk-"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	if len(s) < 16 || strings.ContainsAny(s, "-.") {
		return false
	}
	return strings.ContainsAny(s, "0123456789") && strings.ContainsFunc(s, func(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' })
}

// A rule is a pattern of secrets, with a lower-case text any match
// contains. A match becomes its first group followed by Marker, or what
// replace makes of its groups.
type rule struct {
	hint    string
	pattern string
	replace func(groups []string) string
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
	for i, r := range rules {
		if hints&(1<<i) == 0 {
			continue
		}
		if r.replace == nil {
			s = res[i].ReplaceAllString(s, "${1}"+Marker)
			continue
		}
		s = replaceFunc(res[i], s, r.replace)
	}
	return s
}

// replaceFunc replaces each match of re in s by what replace makes of its
// groups.
func replaceFunc(re *regexp.Regexp, s string, replace func([]string) string) string {
	all := re.FindAllStringSubmatchIndex(s, -1)
	if all == nil {
		return s
	}
	var b strings.Builder
	done := 0
	for _, loc := range all {
		groups := make([]string, len(loc)/2)
		for g := range groups {
			if loc[2*g] >= 0 {
				groups[g] = s[loc[2*g]:loc[2*g+1]]
			}
		}
		b.WriteString(s[done:loc[0]])
		b.WriteString(replace(groups))
		done = loc[1]
	}
	b.WriteString(s[done:])
	return b.String()
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
	header := -1 // where a string value of an Authorization member starts
	// Go's encoder escapes no letter, digit, "=", ";", "%", ":" or "@",
	// so a hint in a text shows in its literal as it is.
	b, redacted = rewriteStrings(b, func(lit []byte, end int) (string, bool) {
		inHeader := end-len(lit) == header
		if !inHeader && holdsHints(string(lit)) == 0 {
			return "", false
		}
		var s string
		if json.Unmarshal(lit, &s) != nil {
			return "", false
		}
		r := String(s)
		if inHeader {
			r = headerValue(s)
		} else if isAuthorization(s) {
			header = memberValue(b, end)
		}
		return r, r != s
	})
	return b, redacted, nil
}

// rewriteStrings walks the string literals of the JSON text b in order,
// and puts in place of each the text edit returns for it, when it returns
// one (ok). edit gets the literal as written and where in b it ends, just
// past its closing quote. rewriteStrings reports whether it replaced any.
func rewriteStrings(b []byte, edit func(lit []byte, end int) (string, bool)) ([]byte, bool) {
	var out []byte
	done := 0 // b[:done] is in out
	for i := 0; i < len(b); i++ {
		if b[i] != '"' {
			continue
		}
		// A string literal: up to the next quote not escaped.
		j := i + 1
		for j < len(b) && b[j] != '"' {
			if b[j] == '\\' {
				j++
			}
			j++
		}
		end := min(j+1, len(b))
		if r, ok := edit(b[i:end], end); ok {
			out = append(out, b[done:i]...)
			out = appendString(out, r)
			done = end
		}
		i = j
	}
	if done == 0 {
		return b, false
	}
	return append(out, b[done:]...), true
}

// isAuthorization reports whether s names a header whose value is a
// credential.
func isAuthorization(s string) bool {
	return strings.EqualFold(s, "Authorization") || strings.EqualFold(s, "Proxy-Authorization")
}

// IsCredentialHeader reports whether s names a header that APIs take a
// key or a token in, whose value goes whole: Cookie, apikey, or a name of
// words joined by "-" whose last word is key, token, secret, password or
// apikey (X-Api-Key, x-functions-key, Ocp-Apim-Subscription-Key,
// X-Gitlab-Token, Private-Token, X-Webhook-Secret). A name with no "-",
// such as bmc's own secretEnv, names no header.
func IsCredentialHeader(s string) bool {
	if len(s) > 64 {
		return false
	}
	l := strings.ToLower(s)
	if l == "cookie" || l == "apikey" {
		return true
	}
	i := strings.LastIndexByte(l, '-')
	if i <= 0 {
		return false
	}
	for _, r := range l {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	switch l[i+1:] {
	case "key", "token", "secret", "password", "passwd", "pwd", "apikey":
		return true
	}
	return false
}

// Values replaces each of secrets, wherever it stands in a string of the
// JSON text b, by Marker: values the caller knows to be secrets, which no
// pattern could tell. It reports whether it replaced any. Secrets shorter
// than 4 bytes are left alone: they would take out other text with them.
func Values(b []byte, secrets []string) ([]byte, bool) {
	var find []string
	escaped := false // a secret JSON writes escaped: every literal is decoded
	for _, s := range secrets {
		if len(s) < 4 {
			continue
		}
		if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == '"' || r == '\\' }) {
			escaped = true
		} else if !bytes.Contains(b, []byte(s)) {
			continue
		}
		find = append(find, s)
	}
	if len(find) == 0 {
		return b, false
	}
	return rewriteStrings(b, func(lit []byte, _ int) (string, bool) {
		if !escaped && !slices.ContainsFunc(find, func(s string) bool { return bytes.Contains(lit, []byte(s)) }) {
			return "", false
		}
		var s string
		if json.Unmarshal(lit, &s) != nil {
			return "", false
		}
		r := s
		for _, secret := range find {
			r = strings.ReplaceAll(r, secret, Marker)
		}
		return r, r != s
	})
}

// headerValue is v, an Authorization header's value, redacted.
func headerValue(v string) string {
	const name = "Authorization: "
	return strings.TrimPrefix(String(name+v), name)
}

// memberValue returns where, in the JSON text b, the string value of the
// member whose key ends before k starts: the value itself, or the first
// string of a list, as net/http's Header encodes. It is -1 when the
// literal before k is no key, or its value is no string.
func memberValue(b []byte, k int) int {
	skip := func(k int) int {
		for k < len(b) && (b[k] == ' ' || b[k] == '\n' || b[k] == '\t' || b[k] == '\r') {
			k++
		}
		return k
	}
	if k = skip(k); k >= len(b) || b[k] != ':' {
		return -1
	}
	if k = skip(k + 1); k < len(b) && b[k] == '[' {
		k = skip(k + 1)
	}
	if k < len(b) && b[k] == '"' {
		return k
	}
	return -1
}

// appendString appends s as a JSON string, as JSON's encoder writes it.
func appendString(dst []byte, s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return append(dst, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
}

// holdsToken stands for a redacted secret in Holds: shaped as a token
// (letters and digits, 24 of them) for every rule to take it for one.
const holdsToken = "x1x1x1x1x1x1x1x1x1x1x1x1"

// Holds reports whether s was redacted: whether it holds Marker where a
// secret was.
func Holds(s string) bool {
	// Marker stands for a secret again as a token would, long enough for
	// every rule to take it for one.
	return strings.Contains(s, Marker) && strings.Contains(String(strings.ReplaceAll(s, Marker, holdsToken)), Marker)
}
