package emulator

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Shared Key, as the Batch service checks it and the official Python SDK
// (azure/batch/_patch.py) signs it:
//
//	VERB\n
//	Content-Encoding\n Content-Language\n Content-Length\n Content-MD5\n
//	Content-Type\n Date\n If-Modified-Since\n If-Match\n If-None-Match\n
//	If-Unmodified-Since\n Range\n
//	ocp-* headers, lower-cased, sorted, "name:value\n" each
//	/{account}{path}
//	"\n{name}:{decoded value}" for each query parameter, sorted by name
//
// A non-GET/HEAD request without Content-Length signs "0". The request's
// time is ocp-date, else Date, and must be within 15 minutes of now.

const clockSkew = 15 * time.Minute

var signedHeaders = []string{
	"Content-Encoding", "Content-Language", "Content-Length", "Content-MD5", "Content-Type",
	"Date", "If-Modified-Since", "If-Match", "If-None-Match", "If-Unmodified-Since", "Range",
}

// stringToSign is the canonical string of a request for account. path is
// the request path as sent (percent-encoded).
func stringToSign(account, method, path string, query url.Values, h http.Header) string {
	var b strings.Builder
	b.WriteString(method)
	b.WriteByte('\n')
	for _, name := range signedHeaders {
		v := h.Get(name)
		if name == "Content-Length" && v == "" && method != http.MethodGet && method != http.MethodHead {
			v = "0"
		}
		b.WriteString(v)
		b.WriteByte('\n')
	}
	type kv struct{ k, v string }
	var ocp []kv
	for name, vs := range h {
		ln := strings.ToLower(name)
		if strings.Contains(ln, "ocp-") && len(vs) > 0 && vs[0] != "" {
			ocp = append(ocp, kv{ln, vs[0]})
		}
	}
	sort.Slice(ocp, func(i, j int) bool {
		if ocp[i].k != ocp[j].k {
			return ocp[i].k < ocp[j].k
		}
		return ocp[i].v < ocp[j].v
	})
	for _, x := range ocp {
		b.WriteString(x.k + ":" + x.v + "\n")
	}
	b.WriteString("/" + account + path)
	names := make([]string, 0, len(query))
	for k := range query {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if v := query[k]; len(v) > 0 && v[0] != "" {
			b.WriteString("\n" + k + ":" + v[0])
		}
	}
	return b.String()
}

// sign is the Shared Key signature of a canonical string.
func sign(key []byte, stringToSign string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(stringToSign))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func errAuth(detail string) *apiError {
	return newError(http.StatusForbidden, "AuthenticationFailed",
		"Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.").
		with("AuthenticationErrorDetail", detail)
}

// authenticate checks a request's Shared Key signature, or its bearer
// token from authenticationTokenSettings (valid only for its own job).
func (s *Server) authenticate(r *http.Request, now time.Time) *apiError {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return newError(http.StatusUnauthorized, "AuthenticationFailed",
			"Server failed to authenticate the request: the Authorization header is missing.").
			with("AuthenticationErrorDetail", "The Authorization header is missing. Sign requests with Shared Key (account "+s.account+").")
	}
	scheme, cred, _ := strings.Cut(auth, " ")
	switch scheme {
	case "SharedKey":
	case "Bearer":
		return s.checkToken(r, strings.TrimSpace(cred), now)
	default:
		return newError(http.StatusUnauthorized, "InvalidAuthenticationInfo",
			"The authentication information was not provided in the correct format.").
			with("AuthenticationErrorDetail", "Authorization scheme "+scheme+" is not supported; use SharedKey.")
	}
	account, sig, ok := strings.Cut(cred, ":")
	if !ok || sig == "" {
		return newError(http.StatusUnauthorized, "InvalidAuthenticationInfo",
			"The authentication information was not provided in the correct format.").
			with("AuthenticationErrorDetail", "Expected 'SharedKey <account>:<signature>'.")
	}
	if account != s.account {
		return errAuth("The account " + account + " in the Authorization header is not this account (" + s.account + ").")
	}
	date := r.Header.Get("ocp-date")
	if date == "" {
		date = r.Header.Get("Date")
	}
	if date == "" {
		return errAuth("The request has neither an ocp-date nor a Date header.")
	}
	at, err := http.ParseTime(date)
	if err != nil {
		return errAuth("The request date " + date + " is not an RFC 1123 date.")
	}
	if d := now.Sub(at); d > clockSkew || d < -clockSkew {
		return errAuth("Request date " + date + " is more than 15 minutes from the server's time " + now.UTC().Format(http.TimeFormat) + ".")
	}
	got, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return errAuth("The signature is not valid base64.")
	}
	// One canonical form, as the service checks it: the path as sent
	// (percent-encoding kept) and, for a request other than GET or HEAD
	// without a body, Content-Length "0". A client that signs anything
	// else is refused, as Batch refuses it.
	sts := stringToSign(s.account, r.Method, r.URL.EscapedPath(), r.URL.Query(), r.Header)
	want, _ := base64.StdEncoding.DecodeString(sign(s.key, sts))
	if hmac.Equal(got, want) {
		return nil
	}
	return errAuth("The MAC signature found in the HTTP request '" + sig + "' is not the same as any computed signature. Server used following string to sign: '" + sts + "'.")
}

// Bearer tokens: a task's authentication token (authenticationTokenSettings,
// with Options.TaskTokens), valid for its job, and the emulated pool
// identity's token, valid for the jobs of its pool. A token names its job
// or pool and its expiry and is signed with a key derived from the
// account key, so it survives a restart of the emulator with the same key.

type tokenClaims struct {
	Account string `json:"a"`
	Job     string `json:"j,omitempty"`
	Pool    string `json:"p,omitempty"`
	Expiry  int64  `json:"e"`
}

const tokenLifetime = 7 * 24 * time.Hour

func (s *Server) issueToken(jobID string, now time.Time) string {
	return s.signToken(tokenClaims{Account: s.account, Job: lower(jobID), Expiry: now.Add(tokenLifetime).Unix()})
}

func (s *Server) issuePoolToken(poolID string, expiry time.Time) string {
	return s.signToken(tokenClaims{Account: s.account, Pool: lower(poolID), Expiry: expiry.Unix()})
}

func (s *Server) signToken(c tokenClaims) string {
	b, _ := json.Marshal(c)
	payload := base64.RawURLEncoding.EncodeToString(b)
	m := hmac.New(sha256.New, s.tokenKey)
	m.Write([]byte(payload))
	return payload + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (s *Server) checkToken(r *http.Request, token string, now time.Time) *apiError {
	payload, sig, ok := strings.Cut(token, ".")
	bad := func(detail string) *apiError {
		return newError(http.StatusUnauthorized, "AuthenticationFailed",
			"Server failed to authenticate the request: the bearer token is not valid.").
			with("AuthenticationErrorDetail", detail)
	}
	if !ok {
		return bad("The bearer token is not an authentication token issued by this account.")
	}
	m := hmac.New(sha256.New, s.tokenKey)
	m.Write([]byte(payload))
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, m.Sum(nil)) {
		return bad("The bearer token is not an authentication token issued by this account.")
	}
	raw, _ := base64.RawURLEncoding.DecodeString(payload)
	var c tokenClaims
	if json.Unmarshal(raw, &c) != nil || c.Account != s.account {
		return bad("The bearer token is not an authentication token issued by this account.")
	}
	if now.Unix() > c.Expiry {
		return bad("The bearer token has expired.")
	}
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if c.Pool != "" {
		ok := len(segs) >= 2 && segs[0] == "jobs"
		if ok {
			s.mu.Lock()
			j := s.jobs[lower(segs[1])]
			ok = j != nil && j.poolKey == c.Pool
			s.mu.Unlock()
		}
		if !ok {
			return newError(http.StatusForbidden, "InsufficientAccountPermissions",
				"The managed identity of pool %s may reach only the jobs of that pool.", c.Pool).
				with("AuthenticationErrorDetail", r.Method+" "+r.URL.Path+" is not a job of pool "+c.Pool+".")
		}
		return nil
	}
	if c.Job == "" || len(segs) < 2 || segs[0] != "jobs" || lower(segs[1]) != c.Job {
		return newError(http.StatusForbidden, "InsufficientAccountPermissions",
			"The authentication token grants access only to job %s.", c.Job).
			with("AuthenticationErrorDetail", "The token's access scope is job "+c.Job+"; "+r.Method+" "+r.URL.Path+" is outside it.")
	}
	return nil
}
