// Callback delivery: the finalize step's POST of a run's outcome to the
// workload owner. A delivery is signed, carries the run id as its
// idempotency key, is retried only where retrying can help, and is bounded
// in time as a whole. Nothing here logs or returns a header, the secret, or
// the parts of the URL that may hold credentials (userinfo, query string).

package executor

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/internal/loopback"
	"github.com/hashicorp/go-retryablehttp"
)

// Version is the bmc version sent as "User-Agent: bmc/<Version>". The CLI
// sets it once at start-up, before any run.
var Version = "devel"

// Callback delivery defaults.
const (
	DefaultCallbackTimeout = 30 * time.Second
	callbackWaitMin        = 1 * time.Second
	callbackWaitMax        = 30 * time.Second
	// A longer Retry-After is as good as "never" for a callback.
	maxRetryAfter = 24 * time.Hour
	// How much of a response body is read to let the connection be reused.
	drainLimit = 64 << 10
)

// CallbackStatus is a run's outcome as reported to the callback.
type CallbackStatus string

// The run outcomes a callback can report.
const (
	CallbackSucceeded CallbackStatus = "succeeded"
	CallbackFailed    CallbackStatus = "failed"
	CallbackCancelled CallbackStatus = "cancelled"
)

// CallbackBody is the JSON document POSTed to the callback URL. Its
// encoding is deterministic: fields in declaration order, times in UTC
// RFC 3339, lists sorted and never null.
type CallbackBody struct {
	Workload   string               `json:"workload"`
	RunID      string               `json:"runId"`
	Backend    string               `json:"backend"`
	Status     CallbackStatus       `json:"status"`
	StartedAt  time.Time            `json:"startedAt"`
	FinishedAt time.Time            `json:"finishedAt"`
	Tasks      CallbackTaskCounts   `json:"tasks"`
	Failed     []CallbackFailedTask `json:"failed"`
	Outputs    []CallbackOutput     `json:"outputs"`
	// FailedOmitted and OutputsOmitted count the entries the callback
	// left out of Failed and Outputs, which it carries CallbackListMax of
	// at most: a sweep's body stays within what receivers take. The run
	// summary (summary.json, BMC_RUN_SUMMARY) has every entry.
	FailedOmitted  int `json:"failedOmitted,omitempty"`
	OutputsOmitted int `json:"outputsOmitted,omitempty"`
	// Reason says why a run failed beyond what Failed tells: its record
	// (the run summary, the journal) could not be written, or its
	// finalize step got no summary to read. It names no local path.
	Reason string `json:"reason,omitempty"`
}

// CallbackListMax is how many failed tasks, and how many outputs, a
// callback body carries at most: about 200 KB of them.
const CallbackListMax = 1000

// sent is b as the callback sends it: its lists cut at CallbackListMax,
// what was left out counted.
func (b CallbackBody) sent() CallbackBody {
	b = b.sorted() // the first entries in the body's order are kept
	if n := len(b.Failed); n > CallbackListMax {
		kept := b.Failed[:CallbackListMax]
		// The finalize step's entry is kept wherever its id sorts: it
		// says what the owner's own step made of the run.
		if i := slices.IndexFunc(b.Failed[CallbackListMax:], func(f CallbackFailedTask) bool { return f.ID == compiler.FinalizeID }); i >= 0 {
			kept[CallbackListMax-1] = b.Failed[CallbackListMax+i]
		}
		b.Failed, b.FailedOmitted = kept, n-CallbackListMax
	}
	if n := len(b.Outputs); n > CallbackListMax {
		b.Outputs, b.OutputsOmitted = b.Outputs[:CallbackListMax], n-CallbackListMax
	}
	return b
}

// CallbackTaskCounts counts the run's tasks by final state.
type CallbackTaskCounts struct {
	Total     int `json:"total"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	Skipped   int `json:"skipped"`
	Cancelled int `json:"cancelled"`
}

// CallbackFailedTask describes one failed task. ExitCode is the last
// attempt's as the backend reported it, also for a timeout (the stopped
// process's, or the code Batch gives a task at its maxWallClockTime); null
// when no process ran to give one, such as when an input could not be
// staged.
type CallbackFailedTask struct {
	ID       string `json:"id"`
	ExitCode *int   `json:"exitCode"`
	Reason   string `json:"reason"`
	Attempts int    `json:"attempts"`
}

// CallbackOutput is one location (az://…) a task's outputs were uploaded to.
type CallbackOutput struct {
	Task     string `json:"task"`
	Location string `json:"location"`
}

// MarshalJSON encodes b deterministically (see CallbackBody) and rejects an
// unknown status, which a receiver could not act on.
func (b CallbackBody) MarshalJSON() ([]byte, error) {
	switch b.Status {
	case CallbackSucceeded, CallbackFailed, CallbackCancelled:
	default:
		return nil, fmt.Errorf("callback body: invalid status %q", b.Status)
	}
	type plain CallbackBody // no methods, so no recursion
	p := plain(b.sorted())
	p.StartedAt = p.StartedAt.UTC()
	p.FinishedAt = p.FinishedAt.UTC()
	return json.Marshal(p)
}

// sorted is b with its lists in the body's order, in copies, so that
// encoding never reorders the caller's slices.
func (b CallbackBody) sorted() CallbackBody {
	b.Failed = append([]CallbackFailedTask{}, b.Failed...)
	slices.SortStableFunc(b.Failed, func(x, y CallbackFailedTask) int { return strings.Compare(x.ID, y.ID) })
	b.Outputs = append([]CallbackOutput{}, b.Outputs...)
	slices.SortStableFunc(b.Outputs, func(x, y CallbackOutput) int {
		return cmp.Or(strings.Compare(x.Task, y.Task), strings.Compare(x.Location, y.Location))
	})
	return b
}

// Callback says where and how to deliver a run's outcome.
type Callback struct {
	URL string
	// Name, when set, is how messages and logs name the target instead of
	// its URL, for a URL that is a secret itself ("$HOOK_URL"). Otherwise
	// they show the URL without userinfo, query and fragment.
	Name string
	// Secret, when set, signs the body: X-Bmc-Signature: sha256=<hex HMAC>.
	Secret []byte
	// Timeout bounds the whole delivery, all attempts and waits together;
	// zero or less means DefaultCallbackTimeout.
	Timeout time.Duration
	// Retries is how many attempts may follow the first.
	Retries int
	// Headers are added to the request. They cannot replace the headers
	// bmc sets itself (Content-Type, Idempotency-Key, User-Agent,
	// X-Bmc-Signature).
	Headers map[string]string
}

// CallbackResult is what happened to a delivery, suitable for the journal.
type CallbackResult struct {
	Attempts  int    `json:"attempts"`
	Status    int    `json:"status,omitempty"` // last HTTP status received; 0 if none
	Delivered bool   `json:"delivered"`
	Err       string `json:"error,omitempty"`
}

// CallbackError is returned when a callback was not delivered. Its text
// names the URL without userinfo, query or fragment, and never includes a
// header or the secret.
type CallbackError struct {
	URL      string // redacted
	Reason   string
	Attempts int
	Status   int   // last HTTP status received; 0 if none
	Err      error // the underlying cause, if any (context or transport error)
}

func (e *CallbackError) Error() string {
	var s strings.Builder
	fmt.Fprintf(&s, "callback to %s: %s (%d attempt", e.URL, e.Reason, e.Attempts)
	if e.Attempts != 1 {
		s.WriteString("s")
	}
	if e.Status != 0 {
		fmt.Fprintf(&s, ", last status %d %s)", e.Status, http.StatusText(e.Status))
	} else {
		s.WriteString(", no response)")
	}
	// The context's own errors say again what Reason says ("cancelled",
	// "timed out"), in Go's words; a cause given with them is told.
	if e.Err != nil && e.Err != context.Canceled && e.Err != context.DeadlineExceeded {
		fmt.Fprintf(&s, ": %v", e.Err)
	}
	return s.String()
}

func (e *CallbackError) Unwrap() error { return e.Err }

// ValidateCallbackURL checks that raw is an https URL, or an http URL to a
// loopback host (localhost, 127.0.0.0/8, ::1). The error does not quote the
// URL's userinfo or query.
func ValidateCallbackURL(raw string) error {
	_, err := parseCallbackURL(raw)
	return err
}

func parseCallbackURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("callback url is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse quotes the whole input, credentials and all.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("callback url is not a valid URL: %w", err)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("callback url %s: no host", redactURL(u))
	}
	// A URL from urlEnv comes here without the compiler's checks: a port
	// no connection can be made to fails every attempt alike.
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("callback url %s: port %s is not a port number (1-65535)", redactURL(u), p)
		}
	}
	switch u.Scheme {
	case "https":
		return u, nil
	case "http":
		if loopback.Host(u.Hostname()) {
			return u, nil
		}
		return nil, fmt.Errorf("callback url %s: plain http is allowed only to a loopback host (localhost, 127.0.0.0/8, ::1); use https", redactURL(u))
	default:
		return nil, fmt.Errorf("callback url %s: scheme %q is not supported; use https", redactURL(u), u.Scheme)
	}
}

// redactURL drops the parts of u that may carry credentials.
func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = ""
	c.ForceQuery = false
	c.Fragment = ""
	c.RawFragment = ""
	return c.String()
}

// callbackOptions lets tests shrink waits and see the waits computed.
type callbackOptions struct {
	waitMin, waitMax time.Duration
	// now is the clock for Retry-After dates.
	now func() time.Time
	// wait maps the computed wait before a retry to the one actually used.
	wait func(computed time.Duration) time.Duration
}

// SendCallback POSTs body to cb.URL with Content-Type application/json,
// Idempotency-Key runID, User-Agent bmc/Version and, when cb.Secret is set,
// X-Bmc-Signature: sha256=<hex HMAC-SHA256 of body>.
//
// A 2xx answer is a delivery. Network errors, 429 and 5xx are retried up to
// cb.Retries times with exponential backoff from 1s to 30s; a Retry-After
// on 429 or 503 (seconds or an HTTP date) replaces the backoff. Other 4xx
// and 3xx answers are final: the receiver will not change its mind, and
// following a redirect would send the signed body somewhere the spec did
// not name. When the next wait would pass the timeout, delivery stops
// there rather than sleep into it.
//
// log may be nil. It receives one line per attempt and per retry, never a
// header, the secret, or the URL's userinfo or query. A retry's is a
// warning whose message is a sentence of its own, such as "callback to
// https://host/hook: HTTP 503, retrying in 2s (attempt 2 of 6)", for a
// handler that shows messages to people as they are.
func SendCallback(ctx context.Context, cb Callback, runID string, body []byte, log *slog.Logger) (CallbackResult, error) {
	return sendCallback(ctx, cb, runID, body, log, callbackOptions{})
}

func sendCallback(ctx context.Context, cb Callback, runID string, body []byte, log *slog.Logger, o callbackOptions) (CallbackResult, error) {
	fail := func(err error) (CallbackResult, error) {
		return CallbackResult{Err: err.Error()}, err
	}
	u, err := parseCallbackURL(cb.URL)
	if err != nil {
		if cb.Name != "" {
			return fail(fmt.Errorf("callback to %s: not an https URL, nor http to a loopback host", cb.Name))
		}
		return fail(err)
	}
	safe := redactURL(u)
	if cb.Name != "" {
		safe = cb.Name
	}
	if runID == "" {
		return fail(fmt.Errorf("callback to %s: no run id for the Idempotency-Key", safe))
	}
	// Checked at compile time too; a value a param gave can still be
	// wrong here, and is reported once, not retried as a network error.
	for k, v := range cb.Headers {
		if err := compiler.CheckHeader(k, v); err != nil {
			return fail(fmt.Errorf("callback to %s: %w", safe, err))
		}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o.waitMin = cmp.Or(o.waitMin, callbackWaitMin)
	o.waitMax = cmp.Or(o.waitMax, callbackWaitMax)
	if o.now == nil {
		o.now = time.Now
	}
	timeout := cb.Timeout
	if timeout <= 0 {
		timeout = DefaultCallbackTimeout
	}

	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	req, err := retryablehttp.NewRequestWithContext(tctx, http.MethodPost, u.String(), body)
	if err != nil {
		return fail(fmt.Errorf("callback to %s: %w", safe, unwrapURLError(err)))
	}
	for k, v := range cb.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", runID)
	req.Header.Set("User-Agent", "bmc/"+Version)
	if len(cb.Secret) > 0 {
		mac := hmac.New(sha256.New, cb.Secret)
		mac.Write(body)
		req.Header.Set("X-Bmc-Signature", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	}

	s := &callbackSender{url: safe, retries: max(cb.Retries, 0), opts: o, log: log}
	hc := &http.Client{
		Transport: newTransport(),
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	defer hc.CloseIdleConnections()
	client := &retryablehttp.Client{
		HTTPClient:   hc,
		RetryWaitMin: o.waitMin,
		RetryWaitMax: o.waitMax,
		RetryMax:     s.retries,
		CheckRetry:   s.checkRetry,
		Backoff:      s.backoff,
		// The library's own log lines and errors print the URL with its
		// query string, so it gets no logger and its errors are not
		// passed on; onRequest and checkRetry log instead.
		Logger:         nil,
		RequestLogHook: s.onRequest,
		ErrorHandler: func(resp *http.Response, err error, _ int) (*http.Response, error) {
			if resp != nil {
				drain(resp)
			}
			return nil, err
		},
	}

	resp, doErr := client.Do(req)
	if resp != nil {
		drain(resp)
	}
	res := CallbackResult{Attempts: s.attempts, Status: s.lastStatus}
	if doErr == nil && resp != nil && resp.StatusCode >= 200 && resp.StatusCode < 300 {
		res.Delivered = true
		log.Info("callback delivered", "url", safe, "attempts", s.attempts, "status", resp.StatusCode)
		return res, nil
	}

	cerr := &CallbackError{URL: safe, Attempts: s.attempts, Status: s.lastStatus}
	switch {
	case ctx.Err() != nil:
		cerr.Reason, cerr.Err = "cancelled", context.Cause(ctx)
	case tctx.Err() != nil || s.timedOut:
		cerr.Reason, cerr.Err = fmt.Sprintf("timed out after %s", timeout), context.DeadlineExceeded
	case s.tooLong > 0:
		cerr.Reason = fmt.Sprintf("next retry due in %s, beyond the %s timeout", s.tooLong, timeout)
		cerr.Err = s.lastErr
	case s.lastErr != nil && !s.exhausted:
		cerr.Reason, cerr.Err = "not retried", s.lastErr
	case s.exhausted:
		cerr.Reason, cerr.Err = "retries exhausted", s.lastErr
	case resp != nil && resp.StatusCode >= 300 && resp.StatusCode < 400:
		cerr.Reason = "redirect not followed"
	case resp != nil:
		cerr.Reason = "rejected, not retried"
	default:
		cerr.Reason, cerr.Err = "failed", unwrapURLError(doErr)
	}
	res.Err = cerr.Error()
	return res, cerr
}

// callbackSender holds the state of one delivery across attempts.
// retryablehttp calls its methods from the goroutine running Do, one
// attempt at a time.
type callbackSender struct {
	url     string
	retries int
	opts    callbackOptions
	log     *slog.Logger

	attempts   int
	lastStatus int
	lastErr    error         // transport error of the latest attempt, if it had one
	exhausted  bool          // stopped because the retry budget ran out
	timedOut   bool          // stopped because the deadline had passed
	tooLong    time.Duration // stopped because the next wait would pass the deadline
	next       time.Duration // wait before the next attempt
}

func (s *callbackSender) onRequest(_ retryablehttp.Logger, _ *http.Request, i int) {
	s.attempts = i + 1
	s.log.Debug("sending callback", "url", s.url, "attempt", s.attempts)
}

func (s *callbackSender) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	s.lastErr = nil
	if err != nil {
		s.lastErr = unwrapURLError(err)
		if !retryableTransportError(err) {
			return false, nil
		}
	} else {
		s.lastStatus = resp.StatusCode
		if !retryableStatus(resp.StatusCode) {
			return false, nil
		}
	}
	if s.attempts > s.retries {
		s.exhausted = true
		return false, nil
	}
	wait := s.waitBefore(s.attempts-1, resp)
	if s.opts.wait != nil {
		wait = s.opts.wait(wait)
	}
	if dl, ok := ctx.Deadline(); ok {
		// The context's timer can fire a little after its deadline; going
		// by the clock keeps "timed out" from reading as another failure.
		switch left := time.Until(dl); {
		case left <= 0:
			s.timedOut = true
			return false, nil
		case left < wait:
			s.tooLong = wait
			return false, nil
		}
	}
	s.next = wait
	// A whole sentence, as bmc's other messages to people read; the URL
	// is the safe one, and so is the error (see unwrapURLError).
	why := fmt.Sprintf("HTTP %d", s.lastStatus)
	if s.lastErr != nil {
		why = s.lastErr.Error()
	}
	s.log.Warn(fmt.Sprintf("callback to %s: %s, retrying in %s (attempt %d of %d)",
		s.url, why, wait.Round(time.Millisecond), s.attempts, s.retries+1))
	return true, nil
}

// backoff hands retryablehttp the wait checkRetry already computed, so the
// deadline check and the actual wait cannot disagree.
func (s *callbackSender) backoff(_, _ time.Duration, _ int, _ *http.Response) time.Duration {
	return s.next
}

// waitBefore computes the wait before retry number retry+1: the server's
// Retry-After on 429 and 503, otherwise waitMin doubled per retry, capped
// at waitMax.
func (s *callbackSender) waitBefore(retry int, resp *http.Response) time.Duration {
	if resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), s.opts.now()); ok {
			return d
		}
	}
	d := s.opts.waitMin
	for range retry {
		if d >= s.opts.waitMax {
			break
		}
		d *= 2
	}
	return min(d, s.opts.waitMax)
}

// parseRetryAfter reads a Retry-After value: delay seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if v[0] >= '0' && v[0] <= '9' {
		secs, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return maxRetryAfter, true
			}
			return 0, false
		}
		if secs > uint64(maxRetryAfter/time.Second) {
			return maxRetryAfter, true
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return min(max(t.Sub(now), 0), maxRetryAfter), true
}

func retryableStatus(code int) bool {
	return code == http.StatusTooManyRequests || code >= 500
}

// retryableTransportError reports whether a failed round trip may succeed
// if tried again. A certificate the client does not trust will not become
// trusted by asking again.
func retryableTransportError(err error) bool {
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		addr     *net.AddrError // an address no dial can use, such as port 99999
	)
	return !errors.As(err, &verify) && !errors.As(err, &unknown) &&
		!errors.As(err, &hostname) && !errors.As(err, &invalid) && !errors.As(err, &addr)
}

// unwrapURLError strips the *url.Error layer net/http adds, whose text
// quotes the full URL, query string included.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err
	}
	return err
}

// newTransport returns a transport of its own, so that closing its idle
// connections after a delivery does not touch anyone else's. Each attempt
// has a connection of its own: over a kept-alive one that the receiver
// closed, Go's transport sends a request with an Idempotency-Key again by
// itself, a delivery the retries would not bound nor the attempts count.
// A run sends one callback: keeping connections saves it nothing.
func newTransport() http.RoundTripper {
	t, ok := http.DefaultTransport.(*http.Transport)
	if ok {
		t = t.Clone()
	} else {
		t = &http.Transport{Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true}
	}
	t.DisableKeepAlives = true
	return t
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
	resp.Body.Close()
}
