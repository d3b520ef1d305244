package azurebatch

// Shared Key authentication, as the official Python SDK's
// BatchSharedKeyAuthPolicy builds it. The account key is held as decoded
// bytes, used only as an HMAC key, and never formatted, logged or put in an
// error.

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SharedKeyCredential signs requests with a Batch account's name and one of
// its access keys. Its String and GoString name the account only.
type SharedKeyCredential struct {
	account string
	key     []byte
}

// NewSharedKeyCredential takes an account name and a base64 access key, as
// AZURE_BATCH_ACCOUNT and AZURE_BATCH_ACCESS_KEY hold them.
func NewSharedKeyCredential(account, key string) (*SharedKeyCredential, error) {
	if account == "" {
		return nil, errors.New("shared key: empty account name")
	}
	if key == "" {
		return nil, fmt.Errorf("shared key for account %q: empty access key", account)
	}
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(key))
	if err != nil {
		// The decoder's error quotes the offending byte offset only, but
		// say nothing about the value at all.
		return nil, fmt.Errorf("shared key for account %q: the access key is not valid base64", account)
	}
	return &SharedKeyCredential{account: account, key: k}, nil
}

// Account is the account name the credential signs for.
func (c *SharedKeyCredential) Account() string { return c.account }

func (c *SharedKeyCredential) String() string   { return "SharedKey(" + c.account + ")" }
func (c *SharedKeyCredential) GoString() string { return c.String() }

// Sign sets the ocp-date header to now (unless the request already has one)
// and the Authorization header to the request's Shared Key signature. It
// must be called after every other header is set, the body's
// ContentLength included, and again for each attempt: Batch refuses a date
// more than 15 minutes old.
func (c *SharedKeyCredential) Sign(req *http.Request, now time.Time) {
	if req.Header.Get("ocp-date") == "" {
		req.Header.Set("ocp-date", now.UTC().Format(http.TimeFormat))
	}
	req.Header.Set("Authorization", "SharedKey "+c.account+":"+c.signature(StringToSign(req, c.account)))
}

// Verify checks a received request's Shared Key signature and the age of
// its date: the server side of Sign, for tests and the emulator. The error
// quotes the string the server signed, as Batch's AuthenticationErrorDetail
// does, which holds no secret.
func (c *SharedKeyCredential) Verify(req *http.Request, now time.Time) error {
	auth := req.Header.Get("Authorization")
	scheme, rest, ok := strings.Cut(auth, " ")
	if !ok || scheme != "SharedKey" {
		return errors.New("shared key: no SharedKey Authorization header")
	}
	account, sig, ok := strings.Cut(rest, ":")
	if !ok || account != c.account {
		return fmt.Errorf("shared key: signed for account %q, want %q", account, c.account)
	}
	date := req.Header.Get("ocp-date")
	if date == "" {
		date = req.Header.Get("Date")
	}
	t, err := http.ParseTime(date)
	if err != nil {
		return errors.New("shared key: no valid ocp-date or Date header")
	}
	if d := now.Sub(t); d > 15*time.Minute || d < -15*time.Minute {
		return fmt.Errorf("shared key: request date %s is more than 15 minutes from the server's clock", date)
	}
	sts := StringToSign(req, c.account)
	if !hmac.Equal([]byte(sig), []byte(c.signature(sts))) {
		return fmt.Errorf("shared key: signature mismatch; the server signed %q", sts)
	}
	return nil
}

// authorize makes the credential an Auth.
func (c *SharedKeyCredential) authorize(req *http.Request, now time.Time) error {
	c.Sign(req, now)
	return nil
}

// secrets are the forms the key could be printed in.
func (c *SharedKeyCredential) secrets() []string {
	k := base64.StdEncoding.EncodeToString(c.key)
	return []string{k, url.QueryEscape(k), url.PathEscape(k)}
}

func (c *SharedKeyCredential) signature(stringToSign string) string {
	mac := hmac.New(sha256.New, c.key)
	mac.Write([]byte(stringToSign))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// signedHeaders are the standard headers in the string to sign, in order.
var signedHeaders = []string{
	"Content-Encoding", "Content-Language", "Content-Length", "Content-MD5",
	"Content-Type", "Date", "If-Modified-Since", "If-Match", "If-None-Match",
	"If-Unmodified-Since", "Range",
}

// StringToSign is the canonical string a Shared Key signature covers:
//
//	VERB \n
//	Content-Encoding \n Content-Language \n Content-Length \n Content-MD5 \n
//	Content-Type \n Date \n If-Modified-Since \n If-Match \n If-None-Match \n
//	If-Unmodified-Since \n Range \n
//	name:value \n            for each header whose lower-cased name contains
//	                         "ocp-", names lower-cased, sorted by name
//	/{account}{path}         the path as sent, percent-encoding kept
//	\n name:value            for each query parameter, sorted by name, the
//	                         first value, url-decoded; empty values left out
//
// Absent headers sign as empty lines. A non-GET/HEAD request signs
// Content-Length "0" when it has no body, as it is sent. Set ocp-date and
// leave Date unset: Batch prefers ocp-date, and the Date line stays empty.
// Works on client requests (before sending) and server requests alike.
func StringToSign(req *http.Request, account string) string {
	var b strings.Builder
	b.WriteString(req.Method)
	b.WriteByte('\n')
	for _, h := range signedHeaders {
		v := headerValue(req.Header, h)
		if h == "Content-Length" {
			v = contentLength(req)
		}
		b.WriteString(v)
		b.WriteByte('\n')
	}

	type kv struct{ k, v string }
	var ocp []kv
	for name, vals := range req.Header {
		lower := strings.ToLower(name)
		if !strings.Contains(lower, "ocp-") {
			continue
		}
		if v := strings.Join(vals, ","); v != "" {
			ocp = append(ocp, kv{lower, v})
		}
	}
	slices.SortFunc(ocp, func(a, b kv) int { return strings.Compare(a.k, b.k) })
	for _, h := range ocp {
		b.WriteString(h.k + ":" + h.v + "\n")
	}

	b.WriteString("/" + account + req.URL.EscapedPath())

	// A query that does not parse still signs what parsed; the server will
	// refuse the request for its own reasons.
	q, _ := url.ParseQuery(req.URL.RawQuery)
	for _, name := range slices.Sorted(maps.Keys(q)) {
		if v := q[name][0]; v != "" {
			b.WriteString("\n" + name + ":" + v)
		}
	}
	return b.String()
}

// headerValue is a header's value, its several values joined by commas.
func headerValue(h http.Header, name string) string {
	return strings.Join(h.Values(name), ",")
}

// contentLength is the Content-Length a request is (or was) sent with: a
// client request keeps it in ContentLength, a server request in the header
// too. GET and HEAD without a body have none; any other method without a
// body sends (and signs) 0.
func contentLength(req *http.Request) string {
	if v := req.Header.Get("Content-Length"); v != "" {
		return v
	}
	if req.ContentLength > 0 {
		return strconv.FormatInt(req.ContentLength, 10)
	}
	if req.Method == http.MethodGet || req.Method == http.MethodHead {
		return ""
	}
	return "0"
}
