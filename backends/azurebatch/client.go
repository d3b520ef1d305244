// Package azurebatch is bmc's Azure Batch backend. This part of it is a
// small typed client for the Batch data-plane REST API (api-version
// 2025-06-01), written against the published spec with plain net/http:
// pools, jobs, tasks, task counts and task files, authenticated with an
// account's Shared Key (as the emulator uses) or an Entra ID token.
//
// The client owns one retry layer (go-retryablehttp): callers above it do
// not retry calls, and nothing below it does either. It never logs or
// returns a key, a token or a SAS signature.
package azurebatch

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/bmc-dev/bmc/internal/loopback"
	"github.com/bmc-dev/bmc/internal/redact"
	"io"
	"iter"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/google/uuid"
	"github.com/hashicorp/go-retryablehttp"
)

// TokenScope is the Entra ID scope of the Batch data plane. The double
// slash is right: the resource "https://batch.core.windows.net/" followed
// by "/.default".
const TokenScope = "https://batch.core.windows.net//.default"

// Client defaults.
const (
	DefaultMaxRetries   = 5
	DefaultRetryWaitMin = 1 * time.Second
	DefaultRetryWaitMax = 30 * time.Second
	DefaultCallTimeout  = 3 * time.Minute
)

// maxResponseBody bounds a JSON answer: a page of 1000 fully described
// tasks stays far below it.
const maxResponseBody = 64 << 20

// Auth is how a Client authenticates: a *SharedKeyCredential, or TokenAuth
// around an azcore.TokenCredential.
type Auth interface {
	// authorize sets the Authorization (and for Shared Key ocp-date)
	// header of one attempt.
	authorize(req *http.Request, now time.Time) error
	// secrets are the literal strings never to print.
	secrets() []string
}

// TokenAuth authenticates with Entra ID tokens for TokenScope from cred,
// sent as "Authorization: Bearer". Tokens are cached and renewed shortly
// before they expire.
func TokenAuth(cred azcore.TokenCredential) Auth {
	return &tokenAuth{cred: cred}
}

type tokenAuth struct {
	cred azcore.TokenCredential
	mu   sync.Mutex
	tok  azcore.AccessToken
}

func (a *tokenAuth) authorize(req *http.Request, now time.Time) error {
	tok, err := a.token(req.Context(), now)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	return nil
}

func (a *tokenAuth) token(ctx context.Context, now time.Time) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	refresh := a.tok.RefreshOn
	if refresh.IsZero() {
		refresh = a.tok.ExpiresOn.Add(-5 * time.Minute)
	}
	if a.tok.Token != "" && now.Before(refresh) {
		return a.tok.Token, nil
	}
	tok, err := a.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{TokenScope}})
	if err != nil {
		// A token still valid for a while is better than no token.
		if a.tok.Token != "" && now.Before(a.tok.ExpiresOn.Add(-30*time.Second)) {
			return a.tok.Token, nil
		}
		return "", fmt.Errorf("getting a token for %s: %w", TokenScope, err)
	}
	if tok.Token == "" {
		return "", fmt.Errorf("getting a token for %s: the credential returned an empty token", TokenScope)
	}
	a.tok = tok
	return tok.Token, nil
}

func (a *tokenAuth) secrets() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.tok.Token == "" {
		return nil
	}
	return []string{a.tok.Token}
}

// Options tune a Client. The zero value is ready to use.
type Options struct {
	// HTTPClient supplies the transport (TLS, proxy); nil means a clone of
	// http.DefaultTransport. Its Timeout, Jar and redirect policy are not
	// used: calls are bounded by CallTimeout, and redirects are never
	// followed, so that no signed request goes where it was not meant to.
	HTTPClient *http.Client
	// MaxRetries is how many attempts may follow the first of each call:
	// 0 means DefaultMaxRetries, a negative value none.
	MaxRetries int
	// RetryWaitMin and RetryWaitMax bound the exponential backoff between
	// attempts (defaults 1s and 30s). A 429 or 503 answer's Retry-After
	// replaces the backoff, whatever its length.
	RetryWaitMin, RetryWaitMax time.Duration
	// CallTimeout bounds one call as a whole: every attempt and every wait
	// between attempts, and for GetTaskFile the reading of the body too.
	// A retry whose wait would pass it is not made. Default 3 minutes.
	CallTimeout time.Duration
	// Logger receives a line per retry (Warn) and per attempt (Debug),
	// never a header, a key or a token. nil logs nothing.
	Logger *slog.Logger
	// UserAgent is sent as User-Agent; default "bmc".
	UserAgent string
}

// Client calls one Batch account's data-plane endpoint. It is safe for
// concurrent use.
//
// Every call carries api-version=2025-06-01, a client-request-id (a fresh
// UUID v4, without braces, per call: all attempts of one call share it, so
// the service's logs tie the retries of one operation together) with
// return-client-request-id: true, and an ocp-date fresh for each attempt.
// Request bodies go as "application/json; odata=minimalmetadata".
//
// Retries: 429 and 503 after the answer's Retry-After (seconds or an HTTP
// date); other 5xx except 501, and connection errors, after a backoff
// doubling from RetryWaitMin up to RetryWaitMax; at most MaxRetries of
// them, all within CallTimeout. Other 4xx are never retried, nor are TLS
// certificate or authentication failures. Because POSTs are retried, a
// create that failed on the wire may have succeeded: a 409 TaskExists,
// JobExists or PoolExists on a repeated attempt of the same create counts
// as success, and so does a 404 on a repeated attempt of a delete.
type Client struct {
	endpoint string // scheme://host[:port], no trailing slash
	auth     Auth
	hc       *http.Client
	opt      Options
	log      *slog.Logger

	now func() time.Time
	// wait maps a computed wait between attempts to the one taken; tests
	// make it zero, and record what was computed.
	wait func(time.Duration) time.Duration
	// maxCollectionBody is the size an add-collection body stays below.
	maxCollectionBody int
}

// New returns a client for the account endpoint, e.g.
// https://myaccount.westeurope.batch.azure.com (a missing scheme means
// https). Plain http is accepted only for a loopback host, such as the
// emulator's. No request is made here.
func New(endpoint string, auth Auth, opt Options) (*Client, error) {
	if auth == nil {
		return nil, errors.New("azurebatch: no credentials")
	}
	base, err := parseEndpoint(endpoint)
	if err != nil {
		return nil, err
	}
	if opt.MaxRetries == 0 {
		opt.MaxRetries = DefaultMaxRetries
	}
	opt.MaxRetries = max(opt.MaxRetries, 0)
	if opt.RetryWaitMin <= 0 {
		opt.RetryWaitMin = DefaultRetryWaitMin
	}
	if opt.RetryWaitMax <= 0 {
		opt.RetryWaitMax = DefaultRetryWaitMax
	}
	opt.RetryWaitMax = max(opt.RetryWaitMax, opt.RetryWaitMin)
	if opt.CallTimeout <= 0 {
		opt.CallTimeout = DefaultCallTimeout
	}
	if opt.UserAgent == "" {
		opt.UserAgent = "bmc"
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var inner http.RoundTripper
	if opt.HTTPClient != nil {
		inner = opt.HTTPClient.Transport
	}
	if inner == nil {
		if t, ok := http.DefaultTransport.(*http.Transport); ok {
			inner = t.Clone()
		} else {
			inner = http.DefaultTransport
		}
	}
	c := &Client{
		endpoint:          base,
		auth:              auth,
		opt:               opt,
		log:               log,
		now:               time.Now,
		wait:              func(d time.Duration) time.Duration { return d },
		maxCollectionBody: maxCollectionBody,
	}
	c.hc = &http.Client{
		Transport: &authTransport{inner: inner, c: c},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	return c, nil
}

// FromEnv returns a client for AZURE_BATCH_ENDPOINT, authenticated with
// Shared Key when AZURE_BATCH_ACCOUNT and AZURE_BATCH_ACCESS_KEY are set
// and with azidentity's DefaultAzureCredential otherwise. No request is
// made: wrong credentials surface on first use.
func FromEnv(opt Options) (*Client, error) {
	endpoint := os.Getenv("AZURE_BATCH_ENDPOINT")
	if endpoint == "" {
		return nil, errors.New("azurebatch: AZURE_BATCH_ENDPOINT is not set (e.g. https://<account>.<region>.batch.azure.com)")
	}
	account, key := os.Getenv("AZURE_BATCH_ACCOUNT"), os.Getenv("AZURE_BATCH_ACCESS_KEY")
	var auth Auth
	switch {
	case key != "" && account == "":
		return nil, errors.New("azurebatch: AZURE_BATCH_ACCESS_KEY is set but AZURE_BATCH_ACCOUNT is not")
	case key != "":
		cred, err := NewSharedKeyCredential(account, key)
		if err != nil {
			return nil, fmt.Errorf("azurebatch: AZURE_BATCH_ACCESS_KEY: %w", err)
		}
		auth = cred
	default:
		cred, err := azidentity.NewDefaultAzureCredential(nil)
		if err != nil {
			return nil, fmt.Errorf("azurebatch: no AZURE_BATCH_ACCESS_KEY, and no Azure credential: %s", redact.String(err.Error()))
		}
		auth = TokenAuth(cred)
	}
	return New(endpoint, auth, opt)
}

func parseEndpoint(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", errors.New("azurebatch: empty endpoint")
	}
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Hostname() == "" {
		return "", fmt.Errorf("azurebatch: endpoint %q is not a URL like https://<account>.<region>.batch.azure.com", redact.String(raw))
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.Trim(u.Path, "/") != "" {
		return "", fmt.Errorf("azurebatch: endpoint %s: want scheme and host only", u.Scheme+"://"+u.Host)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !loopback.Host(u.Hostname()) {
			return "", fmt.Errorf("azurebatch: endpoint %s: plain http is allowed only to a loopback host; use https", u.Scheme+"://"+u.Host)
		}
	default:
		return "", fmt.Errorf("azurebatch: endpoint %s: scheme %q is not supported", u.Host, u.Scheme)
	}
	return u.Scheme + "://" + u.Host, nil
}

// redact removes secrets from s: the patterns redact.String knows
// (SAS signatures, account keys in connection strings, Authorization
// values), and the literal key or token this client holds.
func (c *Client) redact(s string) string {
	for _, sec := range c.auth.secrets() {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, redact.Marker)
		}
	}
	return redact.String(s)
}

// authTransport dates and signs each attempt: a fresh ocp-date, then a
// Shared Key signature or a current token. It works on a copy, as a
// RoundTripper must.
type authTransport struct {
	inner http.RoundTripper
	c     *Client
}

// authError marks a failure to authorize a request, which no retry mends.
type authError struct{ err error }

func (e *authError) Error() string { return e.err.Error() }
func (e *authError) Unwrap() error { return e.err }

func (t *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	now := t.c.now()
	r.Header.Set("ocp-date", now.UTC().Format(http.TimeFormat))
	if err := t.c.auth.authorize(r, now); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, &authError{err}
	}
	return t.inner.RoundTrip(r)
}

// ---- the call machinery ----

// call is one Batch operation.
type call struct {
	op     string
	method string
	url    string
	body   []byte      // nil: no body
	header http.Header // extra headers, e.g. ocp-range, Accept
	// existsCode: a 409 with this code on a repeated attempt means an
	// earlier attempt of this create went through.
	existsCode string
	// deleting: a 404 on a repeated attempt means an earlier attempt of
	// this delete went through.
	deleting bool
}

// callInfo is what a call cost.
type callInfo struct {
	attempts        int
	bytesSent       int64
	clientRequestID string
}

func (c *Client) url(path string, q url.Values) string {
	if q == nil {
		q = url.Values{}
	}
	q.Set("api-version", APIVersion)
	return c.endpoint + path + "?" + q.Encode()
}

// seg escapes one path segment; ids are checked to be non-empty so that
// no call silently addresses a collection instead of an item.
func seg(what, id string) (string, error) {
	if id == "" {
		return "", fmt.Errorf("azurebatch: empty %s id", what)
	}
	return "/" + url.PathEscape(id), nil
}

// send makes the call, with retries. On a 2xx answer it returns the
// response, whose body the caller must close (closing also ends the call's
// timeout). It returns a nil response and a nil error when a repeated
// attempt found the work of an earlier one done, which only a call with
// existsCode or deleting set can end with.
func (c *Client) send(ctx context.Context, cl *call) (*http.Response, callInfo, error) {
	info := callInfo{clientRequestID: uuid.NewString()}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, c.opt.CallTimeout)
	var body any
	if cl.body != nil {
		body = cl.body
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, cl.method, cl.url, body)
	if err != nil {
		cancel()
		return nil, info, &Error{Op: cl.op, ClientRequestID: info.clientRequestID, Err: unwrapURLError(err)}
	}
	req.Header.Set("Accept", "application/json")
	for k, vs := range cl.header {
		req.Header[k] = vs
	}
	req.Header.Set("client-request-id", info.clientRequestID)
	req.Header.Set("return-client-request-id", "true")
	req.Header.Set("User-Agent", c.opt.UserAgent)
	if cl.body != nil {
		req.Header.Set("Content-Type", "application/json; odata=minimalmetadata")
	}

	r := &retrier{c: c, cl: cl, info: &info}
	rc := &retryablehttp.Client{
		HTTPClient:     c.hc,
		RetryWaitMin:   c.opt.RetryWaitMin,
		RetryWaitMax:   c.opt.RetryWaitMax,
		RetryMax:       c.opt.MaxRetries,
		CheckRetry:     r.check,
		Backoff:        r.backoff,
		RequestLogHook: r.onAttempt,
		// The library's logger and error texts quote the URL; it gets
		// neither, and its errors are replaced by ours.
		Logger: nil,
		ErrorHandler: func(resp *http.Response, err error, _ int) (*http.Response, error) {
			if resp != nil {
				drainClose(resp)
			}
			return nil, err
		},
	}
	resp, err := rc.Do(req)
	if err != nil {
		defer cancel()
		e := &Error{Op: cl.op, ClientRequestID: info.clientRequestID}
		switch {
		case parent.Err() != nil:
			e.Err = context.Cause(parent)
		case ctx.Err() != nil:
			e.Err = fmt.Errorf("no answer within the %s call timeout after %d attempt(s): %w", c.opt.CallTimeout, info.attempts, ctx.Err())
		case r.lastErr != nil:
			e.Err = r.lastErr
		default:
			e.Err = unwrapURLError(err)
		}
		return nil, info, e
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
		return resp, info, nil
	}
	defer cancel()
	e := decodeError(cl.op, resp, info.clientRequestID, c.redact)
	drainClose(resp)
	if info.attempts > 1 {
		if cl.existsCode != "" && IsConflict(e, cl.existsCode) ||
			cl.deleting && e.StatusCode == http.StatusNotFound {
			c.log.Info("batch call: a repeated attempt found the earlier one done", "op", cl.op, "status", e.StatusCode, "code", e.Code, "client_request_id", info.clientRequestID)
			return nil, info, nil
		}
	}
	if r.tooLong > 0 {
		e.Err = fmt.Errorf("not retried: the next attempt was due in %s, past the call's deadline", r.tooLong)
	}
	return nil, info, e
}

// doJSON makes the call and decodes a 2xx answer's JSON body into out (if
// out is not nil).
func (c *Client) doJSON(ctx context.Context, cl *call, out any) (callInfo, error) {
	resp, info, err := c.send(ctx, cl)
	if err != nil || resp == nil {
		return info, err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, errorBodyLimit))
		return info, nil
	}
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxResponseBody))
	if err := dec.Decode(out); err != nil {
		return info, &Error{
			Op: cl.op, StatusCode: resp.StatusCode,
			RequestID: resp.Header.Get("request-id"), ClientRequestID: info.clientRequestID,
			Err: fmt.Errorf("decoding the answer: %w", err),
		}
	}
	return info, nil
}

// retrier holds one call's retry state. retryablehttp calls its methods
// from the goroutine running the call, one attempt at a time.
type retrier struct {
	c       *Client
	cl      *call
	info    *callInfo
	lastErr error         // the latest attempt's transport error, if any
	tooLong time.Duration // stopped because the next wait would pass the deadline
	next    time.Duration
}

func (r *retrier) onAttempt(_ retryablehttp.Logger, _ *http.Request, i int) {
	r.info.attempts = i + 1
	r.info.bytesSent += int64(len(r.cl.body))
	r.c.log.Debug("batch request", "op", r.cl.op, "attempt", i+1, "client_request_id", r.info.clientRequestID)
}

func (r *retrier) check(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	r.lastErr = nil
	if err != nil {
		r.lastErr = unwrapURLError(err)
		if !retryableTransportError(err) {
			return false, nil
		}
	} else if !retryableStatus(resp.StatusCode) {
		return false, nil
	}
	if r.info.attempts > r.c.opt.MaxRetries {
		return false, nil
	}
	wait := retryablehttp.DefaultBackoff(r.c.opt.RetryWaitMin, r.c.opt.RetryWaitMax, r.info.attempts-1, resp)
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
		r.tooLong = wait
		return false, nil
	}
	r.next = r.c.wait(wait)
	args := []any{"op", r.cl.op, "attempt", r.info.attempts, "wait", wait, "client_request_id", r.info.clientRequestID}
	if r.lastErr != nil {
		args = append(args, "error", r.c.redact(r.lastErr.Error()))
	} else {
		args = append(args, "status", resp.StatusCode)
	}
	r.c.log.Warn("batch request failed; retrying", args...)
	return true, nil
}

// backoff hands retryablehttp the wait check computed, so that the
// deadline check and the wait taken cannot disagree.
func (r *retrier) backoff(_, _ time.Duration, _ int, _ *http.Response) time.Duration {
	return r.next
}

func retryableStatus(code int) bool {
	return code == http.StatusTooManyRequests || code >= 500 && code != http.StatusNotImplemented
}

// retryableTransportError reports whether a failed round trip may succeed
// if tried again: not when the request could not be authorized, nor when
// the server's certificate is not trusted.
func retryableTransportError(err error) bool {
	var (
		ae       *authError
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
	)
	return !errors.As(err, &ae) && !errors.As(err, &verify) && !errors.As(err, &unknown) &&
		!errors.As(err, &hostname) && !errors.As(err, &invalid) &&
		!errors.Is(err, context.Canceled)
}

// unwrapURLError strips the *url.Error layer net/http adds, whose text
// quotes the full URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err
	}
	return err
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

func drainClose(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, errorBodyLimit))
	resp.Body.Close()
}

// marshal encodes v as compact JSON without HTML escaping, which only
// inflates command lines holding < > &.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func (c *Client) post(ctx context.Context, op, path string, q url.Values, v any, existsCode string) error {
	var body []byte
	if v != nil {
		b, err := marshal(v)
		if err != nil {
			return fmt.Errorf("azurebatch: %s: encoding the request: %w", op, err)
		}
		body = b
	}
	_, err := c.doJSON(ctx, &call{op: op, method: http.MethodPost, url: c.url(path, q), body: body, existsCode: existsCode}, nil)
	return err
}

// ---- pools ----

// CreatePool creates a pool (201).
func (c *Client) CreatePool(ctx context.Context, pool BatchPoolCreateOptions) error {
	if _, err := seg("pool", pool.ID); err != nil {
		return err
	}
	return c.post(ctx, fmt.Sprintf("create pool %q", pool.ID), "/pools", nil, pool, CodePoolExists)
}

// GetPool returns a pool. A missing pool is an error for which IsNotFound
// is true.
func (c *Client) GetPool(ctx context.Context, poolID string) (*BatchPool, error) {
	p, err := seg("pool", poolID)
	if err != nil {
		return nil, err
	}
	var out BatchPool
	_, err = c.doJSON(ctx, &call{op: fmt.Sprintf("get pool %q", poolID), method: http.MethodGet, url: c.url("/pools"+p, nil)}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// PoolExists reports whether a pool exists (HEAD /pools/{poolId}). A pool
// being deleted still exists.
func (c *Client) PoolExists(ctx context.Context, poolID string) (bool, error) {
	p, err := seg("pool", poolID)
	if err != nil {
		return false, err
	}
	_, err = c.doJSON(ctx, &call{op: fmt.Sprintf("check pool %q", poolID), method: http.MethodHead, url: c.url("/pools"+p, nil)}, nil)
	switch {
	case err == nil:
		return true, nil
	case IsNotFound(err):
		return false, nil
	default:
		return false, err
	}
}

// DeletePool starts deleting a pool (202); its running tasks are requeued.
func (c *Client) DeletePool(ctx context.Context, poolID string) error {
	p, err := seg("pool", poolID)
	if err != nil {
		return err
	}
	_, err = c.doJSON(ctx, &call{op: fmt.Sprintf("delete pool %q", poolID), method: http.MethodDelete, url: c.url("/pools"+p, nil), deleting: true}, nil)
	return err
}

// ResizePool changes a pool's target node counts (202).
func (c *Client) ResizePool(ctx context.Context, poolID string, resize BatchPoolResizeOptions) error {
	p, err := seg("pool", poolID)
	if err != nil {
		return err
	}
	return c.post(ctx, fmt.Sprintf("resize pool %q", poolID), "/pools"+p+"/resize", nil, resize, "")
}

// ---- jobs ----

// CreateJob creates a job (201).
func (c *Client) CreateJob(ctx context.Context, job BatchJobCreateOptions) error {
	if _, err := seg("job", job.ID); err != nil {
		return err
	}
	return c.post(ctx, fmt.Sprintf("create job %q", job.ID), "/jobs", nil, job, CodeJobExists)
}

// GetJob returns a job.
func (c *Client) GetJob(ctx context.Context, jobID string) (*BatchJob, error) {
	p, err := seg("job", jobID)
	if err != nil {
		return nil, err
	}
	var out BatchJob
	_, err = c.doJSON(ctx, &call{op: fmt.Sprintf("get job %q", jobID), method: http.MethodGet, url: c.url("/jobs"+p, nil)}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// PatchJob updates the fields set in update (PATCH, 200).
func (c *Client) PatchJob(ctx context.Context, jobID string, update BatchJobUpdateOptions) error {
	p, err := seg("job", jobID)
	if err != nil {
		return err
	}
	op := fmt.Sprintf("update job %q", jobID)
	body, err := marshal(update)
	if err != nil {
		return fmt.Errorf("azurebatch: %s: encoding the request: %w", op, err)
	}
	_, err = c.doJSON(ctx, &call{op: op, method: http.MethodPatch, url: c.url("/jobs"+p, nil), body: body}, nil)
	return err
}

// TerminateJob terminates a job (202): running tasks are killed, active
// ones never run. reason, if not empty, becomes its terminateReason.
func (c *Client) TerminateJob(ctx context.Context, jobID, reason string) error {
	p, err := seg("job", jobID)
	if err != nil {
		return err
	}
	var body any
	if reason != "" {
		body = BatchJobTerminateOptions{TerminateReason: reason}
	}
	return c.post(ctx, fmt.Sprintf("terminate job %q", jobID), "/jobs"+p+"/terminate", nil, body, "")
}

// DeleteJob starts deleting a job and its tasks (202).
func (c *Client) DeleteJob(ctx context.Context, jobID string) error {
	p, err := seg("job", jobID)
	if err != nil {
		return err
	}
	_, err = c.doJSON(ctx, &call{op: fmt.Sprintf("delete job %q", jobID), method: http.MethodDelete, url: c.url("/jobs"+p, nil), deleting: true}, nil)
	return err
}

// ---- tasks ----

// MaxTasksPerCollection is the most tasks one Add Task Collection takes.
const MaxTasksPerCollection = 100

// AddTask adds one task (201).
func (c *Client) AddTask(ctx context.Context, jobID string, task BatchTaskCreateOptions) error {
	p, err := seg("job", jobID)
	if err != nil {
		return err
	}
	if _, err := seg("task", task.ID); err != nil {
		return err
	}
	return c.post(ctx, fmt.Sprintf("add task %q to job %q", task.ID, jobID), "/jobs"+p+"/tasks", nil, task, CodeTaskExists)
}

// AddTaskCollection adds up to 100 tasks in one request and returns the
// service's per-task results as they came: a 200 answer may still hold
// failed tasks. It does not retry failed items; AddTasks does.
func (c *Client) AddTaskCollection(ctx context.Context, jobID string, tasks []BatchTaskCreateOptions) (*BatchCreateTaskCollectionResult, error) {
	if len(tasks) == 0 || len(tasks) > MaxTasksPerCollection {
		return nil, fmt.Errorf("azurebatch: add task collection to job %q: %d tasks; want 1 to %d", jobID, len(tasks), MaxTasksPerCollection)
	}
	body, err := marshal(BatchTaskGroup{Value: tasks})
	if err != nil {
		return nil, fmt.Errorf("azurebatch: add task collection to job %q: encoding the request: %w", jobID, err)
	}
	res, _, err := c.addCollection(ctx, jobID, body)
	return res, err
}

func (c *Client) addCollection(ctx context.Context, jobID string, body []byte) (*BatchCreateTaskCollectionResult, callInfo, error) {
	p, err := seg("job", jobID)
	if err != nil {
		return nil, callInfo{}, err
	}
	var out BatchCreateTaskCollectionResult
	info, err := c.doJSON(ctx, &call{
		op:     fmt.Sprintf("add task collection to job %q", jobID),
		method: http.MethodPost, url: c.url("/jobs"+p+"/addtaskcollection", nil), body: body,
	}, &out)
	if err != nil {
		return nil, info, err
	}
	return &out, info, nil
}

// GetTask returns a task.
func (c *Client) GetTask(ctx context.Context, jobID, taskID string) (*BatchTask, error) {
	path, err := taskPath(jobID, taskID)
	if err != nil {
		return nil, err
	}
	var out BatchTask
	_, err = c.doJSON(ctx, &call{op: fmt.Sprintf("get task %q in job %q", taskID, jobID), method: http.MethodGet, url: c.url(path, nil)}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

func taskPath(jobID, taskID string) (string, error) {
	j, err := seg("job", jobID)
	if err != nil {
		return "", err
	}
	t, err := seg("task", taskID)
	if err != nil {
		return "", err
	}
	return "/jobs" + j + "/tasks" + t, nil
}

// ListOptions narrow a listing. Prefer a Filter and a Select to a full
// listing: a monitor polling a big job should fetch only what changed.
type ListOptions struct {
	// Filter is an OData $filter, e.g. "state eq 'completed'".
	Filter string
	// Select lists the properties to return, e.g. "id,state,executionInfo".
	Select string
	// MaxResults is the page size, 1 to 1000; 0 means the service's
	// default (1000).
	MaxResults int
}

// ListTasks lists a job's tasks, following odata.nextLink from page to
// page. The iterator stops at the first error, which it yields with a zero
// BatchTask. A nextLink is requested as given (its api-version added if it
// has none) and signed like any request; one that points at another host
// than the client's endpoint is refused, since the request would carry the
// client's credentials.
func (c *Client) ListTasks(ctx context.Context, jobID string, opt ListOptions) iter.Seq2[BatchTask, error] {
	return func(yield func(BatchTask, error) bool) {
		p, err := seg("job", jobID)
		if err != nil {
			yield(BatchTask{}, err)
			return
		}
		q := url.Values{}
		if opt.Filter != "" {
			q.Set("$filter", opt.Filter)
		}
		if opt.Select != "" {
			q.Set("$select", opt.Select)
		}
		if opt.MaxResults > 0 {
			q.Set("maxresults", strconv.Itoa(opt.MaxResults))
		}
		op := fmt.Sprintf("list tasks of job %q", jobID)
		next := c.url("/jobs"+p+"/tasks", q)
		for page := 1; next != ""; page++ {
			var res BatchTaskListResult
			if _, err := c.doJSON(ctx, &call{op: op, method: http.MethodGet, url: next}, &res); err != nil {
				yield(BatchTask{}, err)
				return
			}
			for _, t := range res.Value {
				if !yield(t, nil) {
					return
				}
			}
			next = ""
			if res.NextLink != "" {
				if next, err = c.nextLink(res.NextLink); err != nil {
					yield(BatchTask{}, fmt.Errorf("azurebatch: %s, page %d: %w", op, page+1, err))
					return
				}
			}
		}
	}
}

// nextLink checks a paging link and adds api-version if it lacks one.
func (c *Client) nextLink(link string) (string, error) {
	u, err := url.Parse(link)
	if err != nil || !u.IsAbs() {
		return "", errors.New("odata.nextLink is not an absolute URL")
	}
	base, _ := url.Parse(c.endpoint)
	if !strings.EqualFold(u.Scheme, base.Scheme) || hostPort(u) != hostPort(base) {
		return "", fmt.Errorf("odata.nextLink points at %s, not at the account endpoint %s", u.Scheme+"://"+u.Host, c.endpoint)
	}
	if !u.Query().Has("api-version") {
		if u.RawQuery != "" {
			u.RawQuery += "&"
		}
		u.RawQuery += "api-version=" + url.QueryEscape(APIVersion)
	}
	return u.String(), nil
}

// hostPort is a URL's host and port, lower-cased, with the scheme's
// default port made explicit: an endpoint given as
// https://acct.region.batch.azure.com:443 is the one Batch's links name
// without a port.
func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		switch strings.ToLower(u.Scheme) {
		case "https":
			port = "443"
		case "http":
			port = "80"
		}
	}
	return strings.ToLower(net.JoinHostPort(u.Hostname(), port))
}

// TerminateTask terminates a task (204); a running task is killed.
func (c *Client) TerminateTask(ctx context.Context, jobID, taskID string) error {
	path, err := taskPath(jobID, taskID)
	if err != nil {
		return err
	}
	return c.post(ctx, fmt.Sprintf("terminate task %q in job %q", taskID, jobID), path+"/terminate", nil, nil, "")
}

// DeleteTask deletes a task and its files on the node (200).
func (c *Client) DeleteTask(ctx context.Context, jobID, taskID string) error {
	path, err := taskPath(jobID, taskID)
	if err != nil {
		return err
	}
	_, err = c.doJSON(ctx, &call{op: fmt.Sprintf("delete task %q in job %q", taskID, jobID), method: http.MethodDelete, url: c.url(path, nil), deleting: true}, nil)
	return err
}

// GetTaskCounts returns a job's task and slot counts by state.
func (c *Client) GetTaskCounts(ctx context.Context, jobID string) (*BatchTaskCountsResult, error) {
	p, err := seg("job", jobID)
	if err != nil {
		return nil, err
	}
	var out BatchTaskCountsResult
	_, err = c.doJSON(ctx, &call{op: fmt.Sprintf("get task counts of job %q", jobID), method: http.MethodGet, url: c.url("/jobs"+p+"/taskcounts", nil)}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// GetTaskFile opens a file of a task, relative to the task directory
// (e.g. "stdout.txt", "wd/out.log"). rangeStart 0 and rangeEnd negative
// read the whole file; otherwise the bytes rangeStart..rangeEnd inclusive
// ("ocp-range: bytes=a-b"), or from rangeStart to the end if rangeEnd is
// negative. The caller must close the body; CallTimeout covers reading it.
func (c *Client) GetTaskFile(ctx context.Context, jobID, taskID, path string, rangeStart, rangeEnd int64) (io.ReadCloser, error) {
	tp, err := taskPath(jobID, taskID)
	if err != nil {
		return nil, err
	}
	if path == "" {
		return nil, errors.New("azurebatch: empty task file path")
	}
	op := fmt.Sprintf("get file %q of task %q in job %q", path, taskID, jobID)
	// A file comes as octet-stream, an error as JSON.
	h := http.Header{"Accept": {"application/octet-stream, application/json"}}
	switch {
	case rangeStart < 0 || rangeEnd >= 0 && rangeEnd < rangeStart:
		return nil, fmt.Errorf("azurebatch: %s: invalid range %d-%d", op, rangeStart, rangeEnd)
	case rangeStart == 0 && rangeEnd < 0:
	case rangeEnd < 0:
		h.Set("ocp-range", fmt.Sprintf("bytes=%d-", rangeStart))
	default:
		h.Set("ocp-range", fmt.Sprintf("bytes=%d-%d", rangeStart, rangeEnd))
	}
	// The file path is one path parameter: its slashes are escaped too,
	// as the official SDKs send it.
	resp, _, err := c.send(ctx, &call{op: op, method: http.MethodGet, url: c.url(tp+"/files/"+url.PathEscape(path), nil), header: h})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}
