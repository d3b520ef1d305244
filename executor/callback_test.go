package executor

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type receivedRequest struct {
	method string
	path   string
	query  string
	header http.Header
	body   []byte
}

// receiver is a callback endpoint that records every request it gets and
// answers with respond(n, …), n counting requests from 1.
type receiver struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []receivedRequest
}

func newReceiver(t *testing.T, respond func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("receiver: read body: %v", err)
		}
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, receivedRequest{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body})
		n := len(rc.reqs)
		rc.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		respond(n, w, r)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) requests() []receivedRequest {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]receivedRequest(nil), rc.reqs...)
}

// failFirst answers the first n requests with fail and the rest with 200.
func failFirst(n int, fail func(w http.ResponseWriter)) func(int, http.ResponseWriter, *http.Request) {
	return func(i int, w http.ResponseWriter, _ *http.Request) {
		if i <= n {
			fail(w)
			return
		}
		w.WriteHeader(http.StatusOK)
	}
}

func status(code int, header ...string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(code)
	}
}

func always(fail func(w http.ResponseWriter)) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, _ *http.Request) { fail(w) }
}

// instant records the waits the sender computes and waits for none of them.
type instant struct{ waits []time.Duration }

func (in *instant) opts() callbackOptions {
	return callbackOptions{wait: func(d time.Duration) time.Duration {
		in.waits = append(in.waits, d)
		return 0
	}}
}

func sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func sampleBody(t *testing.T) []byte {
	t.Helper()
	b, err := json.Marshal(CallbackBody{
		Workload:   "genome-align",
		RunID:      "genome-align-20260301-1",
		Backend:    "local",
		Status:     CallbackFailed,
		StartedAt:  time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC),
		FinishedAt: time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC),
		Tasks:      CallbackTaskCounts{Total: 3, Succeeded: 1, Failed: 1, Skipped: 1},
		Failed:     []CallbackFailedTask{{ID: "align-s2", ExitCode: intPtr(2), Reason: "exit status 2", Attempts: 3}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const testRunID = "genome-align-20260301-1"

func TestSendCallbackDelivers(t *testing.T) {
	secret := []byte("hunter2-but-longer")
	body := sampleBody(t)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		// Verify the signature the way a receiver would: recompute it
		// over the exact bytes received, compare in constant time.
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mac := hmac.New(sha256.New, secret)
		mac.Write(raw)
		want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
		if !hmac.Equal([]byte(r.Header.Get("X-Bmc-Signature")), []byte(want)) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var decoded CallbackBody
		if err := json.Unmarshal(raw, &decoded); err != nil || decoded.RunID != r.Header.Get("Idempotency-Key") {
			w.WriteHeader(http.StatusUnprocessableEntity)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})

	cb := Callback{
		URL:     rc.srv.URL + "/hook?team=genomics",
		Secret:  secret,
		Retries: 3,
		Headers: map[string]string{
			"X-Team":          "genomics",
			"Idempotency-Key": "not-the-run-id", // bmc's own headers win
			"user-agent":      "curl/8",
		},
	}
	res, err := SendCallback(context.Background(), cb, testRunID, body, nil)
	if err != nil {
		t.Fatalf("SendCallback: %v", err)
	}
	want := CallbackResult{Attempts: 1, Status: http.StatusNoContent, Delivered: true}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}

	reqs := rc.requests()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.method != http.MethodPost || r.path != "/hook" || r.query != "team=genomics" {
		t.Errorf("request = %s %s?%s, want POST /hook?team=genomics", r.method, r.path, r.query)
	}
	if !bytes.Equal(r.body, body) {
		t.Errorf("body =\n%s\nwant\n%s", r.body, body)
	}
	wantHeaders := map[string]string{
		"Content-Type":    "application/json",
		"Idempotency-Key": testRunID,
		"User-Agent":      "bmc/" + Version,
		"X-Team":          "genomics",
	}
	for k, v := range wantHeaders {
		if got := r.header.Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("header %s = %q, want [%q]", k, got, v)
		}
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(r.body)
	wantSig := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	if got := r.header.Get("X-Bmc-Signature"); !hmac.Equal([]byte(got), []byte(wantSig)) {
		t.Errorf("X-Bmc-Signature = %q, want %q", got, wantSig)
	}
	// A signature over other bytes must not verify: the header really
	// depends on the body.
	if got := r.header.Get("X-Bmc-Signature"); got == sign(secret, append(bytes.Clone(body), ' ')) {
		t.Error("signature does not depend on the body")
	}
}

func TestSendCallbackWithoutSecretIsUnsigned(t *testing.T) {
	rc := newReceiver(t, always(status(http.StatusOK)))
	for _, secret := range [][]byte{nil, {}} {
		res, err := SendCallback(context.Background(), Callback{URL: rc.srv.URL, Secret: secret}, testRunID, []byte(`{}`), nil)
		if err != nil || !res.Delivered {
			t.Fatalf("SendCallback = %+v, %v", res, err)
		}
	}
	for i, r := range rc.requests() {
		if _, ok := r.header["X-Bmc-Signature"]; ok {
			t.Errorf("request %d carries X-Bmc-Signature without a secret", i+1)
		}
	}
}

func TestSendCallbackDeliveredOn2xx(t *testing.T) {
	for _, code := range []int{200, 201, 202, 204} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			rc := newReceiver(t, always(status(code)))
			res, err := SendCallback(context.Background(), Callback{URL: rc.srv.URL, Retries: 3}, testRunID, []byte(`{}`), nil)
			if err != nil || !res.Delivered || res.Attempts != 1 || res.Status != code {
				t.Errorf("SendCallback = %+v, %v; want delivered in 1 attempt with %d", res, err, code)
			}
		})
	}
}

// The receiver is unavailable for the first N deliveries and says when to
// come back; the sender waits as told, sends the identical request again,
// and stops at the first success.
func TestSendCallbackRetryAfterThenSuccess(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprintf("fail%d", n), func(t *testing.T) {
			secret := []byte("k")
			body := sampleBody(t)
			rc := newReceiver(t, failFirst(n, status(http.StatusServiceUnavailable, "Retry-After", "1")))
			in := &instant{}
			o := in.opts()
			// A backoff that differs from Retry-After, so that the waits
			// below can only come from the header.
			o.waitMin, o.waitMax = 7*time.Millisecond, 70*time.Millisecond
			res, err := sendCallback(context.Background(), Callback{URL: rc.srv.URL, Secret: secret, Retries: 5}, testRunID, body, nil, o)
			if err != nil {
				t.Fatalf("sendCallback: %v", err)
			}
			want := CallbackResult{Attempts: n + 1, Status: http.StatusOK, Delivered: true}
			if diff := cmp.Diff(want, res); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			reqs := rc.requests()
			if len(reqs) != n+1 {
				t.Fatalf("receiver got %d requests, want %d", len(reqs), n+1)
			}
			wantWaits := make([]time.Duration, n)
			for i := range wantWaits {
				wantWaits[i] = time.Second
			}
			if diff := cmp.Diff(wantWaits, in.waits); diff != "" {
				t.Errorf("computed waits (-want +got):\n%s", diff)
			}
			for i, r := range reqs {
				if !bytes.Equal(r.body, body) {
					t.Errorf("request %d body differs from the first", i+1)
				}
				if got := r.header.Get("Idempotency-Key"); got != testRunID {
					t.Errorf("request %d Idempotency-Key = %q, want %q", i+1, got, testRunID)
				}
				if got := r.header.Get("X-Bmc-Signature"); got != sign(secret, body) {
					t.Errorf("request %d signature = %q, want %q", i+1, got, sign(secret, body))
				}
			}
		})
	}
}

func TestSendCallbackRetryWaits(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s := time.Second
	tests := []struct {
		name      string
		failures  []func(http.ResponseWriter)
		wantWaits []time.Duration
	}{
		{
			name: "exponential from 1s capped at 30s",
			failures: []func(http.ResponseWriter){
				status(500), status(500), status(500), status(500), status(500), status(500), status(500),
			},
			wantWaits: []time.Duration{1 * s, 2 * s, 4 * s, 8 * s, 16 * s, 30 * s, 30 * s},
		},
		{
			name:      "Retry-After seconds on 429",
			failures:  []func(http.ResponseWriter){status(429, "Retry-After", "12"), status(429, "Retry-After", "0")},
			wantWaits: []time.Duration{12 * s, 0},
		},
		{
			name:      "Retry-After HTTP date on 429 and 503",
			failures:  []func(http.ResponseWriter){status(429, "Retry-After", now.Add(7*s).Format(http.TimeFormat)), status(503, "Retry-After", now.Add(45*s).Format(http.TimeFormat))},
			wantWaits: []time.Duration{7 * s, 45 * s},
		},
		{
			name:      "Retry-After date in the past",
			failures:  []func(http.ResponseWriter){status(503, "Retry-After", now.Add(-time.Hour).Format(http.TimeFormat))},
			wantWaits: []time.Duration{0},
		},
		{
			name:      "Retry-After beyond the default max is still honoured",
			failures:  []func(http.ResponseWriter){status(503, "Retry-After", "120")},
			wantWaits: []time.Duration{120 * s},
		},
		{
			name:      "Retry-After ignored on other 5xx",
			failures:  []func(http.ResponseWriter){status(500, "Retry-After", "9"), status(502, "Retry-After", "9"), status(504, "Retry-After", "9")},
			wantWaits: []time.Duration{1 * s, 2 * s, 4 * s},
		},
		{
			name:      "unparsable Retry-After falls back to backoff",
			failures:  []func(http.ResponseWriter){status(503, "Retry-After", "soon"), status(429, "Retry-After", "-5")},
			wantWaits: []time.Duration{1 * s, 2 * s},
		},
		{
			name:      "backoff continues after a Retry-After",
			failures:  []func(http.ResponseWriter){status(503, "Retry-After", "3"), status(500), status(501), status(599)},
			wantWaits: []time.Duration{3 * s, 2 * s, 4 * s, 8 * s},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
				if n <= len(tt.failures) {
					tt.failures[n-1](w)
					return
				}
				w.WriteHeader(http.StatusOK)
			})
			in := &instant{}
			o := in.opts()
			o.now = func() time.Time { return now }
			res, err := sendCallback(context.Background(), Callback{URL: rc.srv.URL, Retries: len(tt.failures)}, testRunID, []byte(`{}`), nil, o)
			if err != nil || !res.Delivered {
				t.Fatalf("sendCallback = %+v, %v; want delivered", res, err)
			}
			if got, want := len(rc.requests()), len(tt.failures)+1; got != want {
				t.Errorf("receiver got %d requests, want %d", got, want)
			}
			if diff := cmp.Diff(tt.wantWaits, in.waits); diff != "" {
				t.Errorf("computed waits (-want +got):\n%s", diff)
			}
		})
	}
}

// A 4xx other than 429 is the receiver's final word, and a redirect is not
// followed: one request, no retry, an error naming the status.
func TestSendCallbackNotRetried(t *testing.T) {
	elsewhere := newReceiver(t, always(status(http.StatusOK)))
	for _, code := range []int{400, 401, 403, 404, 405, 408, 409, 410, 413, 422, 301, 302, 303, 307, 308} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			rc := newReceiver(t, always(status(code, "Location", elsewhere.srv.URL+"/stolen")))
			in := &instant{}
			res, err := sendCallback(context.Background(), Callback{URL: rc.srv.URL + "/hook", Retries: 5}, testRunID, []byte(`{}`), nil, in.opts())
			if err == nil {
				t.Fatalf("sendCallback succeeded on %d", code)
			}
			if got := len(rc.requests()); got != 1 {
				t.Errorf("receiver got %d requests, want exactly 1", got)
			}
			if len(in.waits) != 0 {
				t.Errorf("computed waits %v, want none", in.waits)
			}
			want := CallbackResult{Attempts: 1, Status: code, Err: err.Error()}
			if diff := cmp.Diff(want, res); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			if !strings.Contains(err.Error(), strconv.Itoa(code)) || !strings.Contains(err.Error(), rc.srv.URL+"/hook") {
				t.Errorf("error %q does not name the status %d and the URL", err, code)
			}
			var ce *CallbackError
			if !errors.As(err, &ce) || ce.Status != code || ce.Attempts != 1 {
				t.Errorf("error = %#v, want *CallbackError with status %d after 1 attempt", err, code)
			}
		})
	}
	if got := len(elsewhere.requests()); got != 0 {
		t.Errorf("redirect target got %d requests, want 0", got)
	}
}

func TestSendCallbackGivesUp(t *testing.T) {
	for _, retries := range []int{-1, 0, 1, 4} {
		t.Run(fmt.Sprintf("retries=%d", retries), func(t *testing.T) {
			rc := newReceiver(t, always(status(http.StatusInternalServerError)))
			in := &instant{}
			res, err := sendCallback(context.Background(), Callback{URL: rc.srv.URL + "/hook", Retries: retries}, testRunID, []byte(`{}`), nil, in.opts())
			wantAttempts := max(retries, 0) + 1
			if got := len(rc.requests()); got != wantAttempts {
				t.Errorf("receiver got %d requests, want %d", got, wantAttempts)
			}
			if err == nil {
				t.Fatal("sendCallback succeeded against a failing receiver")
			}
			if res.Delivered || res.Attempts != wantAttempts || res.Status != 500 || res.Err != err.Error() {
				t.Errorf("result = %+v, want %d attempts, status 500, not delivered", res, wantAttempts)
			}
			for _, want := range []string{rc.srv.URL + "/hook", "500", "retries exhausted"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

func TestSendCallbackRetriesNetworkErrors(t *testing.T) {
	const drops = 2
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n <= drops {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("hijack: %v", err)
				return
			}
			conn.Close() // no response at all
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	in := &instant{}
	res, err := sendCallback(context.Background(), Callback{URL: rc.srv.URL, Retries: 3}, testRunID, []byte(`{}`), nil, in.opts())
	if err != nil {
		t.Fatalf("sendCallback: %v", err)
	}
	if got := len(rc.requests()); got != drops+1 {
		t.Errorf("receiver got %d requests, want %d", got, drops+1)
	}
	if res.Attempts != drops+1 || !res.Delivered {
		t.Errorf("result = %+v, want delivered on attempt %d", res, drops+1)
	}
	if diff := cmp.Diff([]time.Duration{time.Second, 2 * time.Second}, in.waits); diff != "" {
		t.Errorf("computed waits (-want +got):\n%s", diff)
	}
}

func TestSendCallbackConnectionRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/hook"
	srv.Close()

	in := &instant{}
	res, err := sendCallback(context.Background(), Callback{URL: url, Retries: 2}, testRunID, []byte(`{}`), nil, in.opts())
	if err == nil {
		t.Fatal("sendCallback to a closed port succeeded")
	}
	if res.Attempts != 3 || res.Status != 0 || res.Delivered {
		t.Errorf("result = %+v, want 3 attempts without a response", res)
	}
	for _, want := range []string{url, "no response", "retries exhausted"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// Timeout bounds the delivery as a whole, not each attempt.
func TestSendCallbackTimeout(t *testing.T) {
	t.Run("hanging receiver", func(t *testing.T) {
		release := make(chan struct{})
		rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		})
		t.Cleanup(func() { close(release) }) // runs before the server closes

		start := time.Now()
		res, err := sendCallback(context.Background(), Callback{URL: rc.srv.URL, Timeout: 200 * time.Millisecond, Retries: 5}, testRunID, []byte(`{}`), nil, callbackOptions{})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want context.DeadlineExceeded", err)
		}
		if !strings.Contains(err.Error(), "timed out after 200ms") || strings.Contains(err.Error(), "deadline") {
			t.Errorf("error %q does not say it timed out, or says it twice", err)
		}
		if res.Attempts != 1 || res.Delivered {
			t.Errorf("result = %+v, want 1 undelivered attempt", res)
		}
		if el := time.Since(start); el > 10*time.Second {
			t.Errorf("delivery took %s with a 200ms timeout", el)
		}
	})

	t.Run("many quick failures", func(t *testing.T) {
		rc := newReceiver(t, always(status(http.StatusServiceUnavailable, "Retry-After", "0")))
		const retries = 1_000_000
		res, err := sendCallback(context.Background(), Callback{URL: rc.srv.URL, Timeout: 300 * time.Millisecond, Retries: retries}, testRunID, []byte(`{}`), nil, callbackOptions{})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want context.DeadlineExceeded", err)
		}
		if res.Attempts < 1 || res.Attempts > retries || res.Delivered {
			t.Errorf("result = %+v, want the timeout to cut the retries short", res)
		}
		if got := len(rc.requests()); got != res.Attempts && got != res.Attempts-1 {
			// The last attempt may be cut off before it reaches the server.
			t.Errorf("receiver got %d requests for %d attempts", got, res.Attempts)
		}
	})

	// A wait that would end after the deadline is not started: the sender
	// gives up at once instead of sleeping into the timeout.
	for _, tc := range []struct {
		name  string
		fail  func(http.ResponseWriter)
		opts  callbackOptions
		delay string
	}{
		{"long Retry-After", status(http.StatusServiceUnavailable, "Retry-After", "3600"), callbackOptions{}, "1h0m0s"},
		{"long backoff", status(http.StatusBadGateway), callbackOptions{waitMin: time.Hour, waitMax: 2 * time.Hour}, "1h0m0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReceiver(t, always(tc.fail))
			start := time.Now()
			res, err := sendCallback(context.Background(), Callback{URL: rc.srv.URL, Retries: 3}, testRunID, []byte(`{}`), nil, tc.opts)
			if err == nil {
				t.Fatal("sendCallback succeeded against a failing receiver")
			}
			if el := time.Since(start); el > 10*time.Second {
				t.Errorf("gave up after %s, want at once", el)
			}
			if got := len(rc.requests()); got != 1 || res.Attempts != 1 {
				t.Errorf("receiver got %d requests, result %+v; want 1", got, res)
			}
			if want := "next retry due in " + tc.delay + ", beyond the 30s timeout"; !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not contain %q", err, want)
			}
		})
	}
}

func TestSendCallbackCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		cancel() // the run is cancelled while the callback is in flight
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	in := &instant{}
	res, err := sendCallback(ctx, Callback{URL: rc.srv.URL, Retries: 5}, testRunID, []byte(`{}`), nil, in.opts())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if !strings.Contains(err.Error(), "cancelled") || strings.Contains(err.Error(), "context canceled") || res.Delivered || res.Attempts != 1 {
		t.Errorf("result = %+v, err = %v; want cancelled after 1 attempt", res, err)
	}
	if got := len(rc.requests()); got != 1 {
		t.Errorf("receiver got %d requests, want 1", got)
	}
}

func TestValidateCallbackURL(t *testing.T) {
	ok := []string{
		"https://example.com/hook",
		"https://alice:pw@example.com:8443/hook?token=x",
		"https://10.1.2.3/hook",
		"http://localhost/hook",
		"http://LocalHost:8080/hook",
		"http://127.0.0.1:9/hook",
		"http://127.200.3.4/hook",
		"http://[::1]:8080/hook",
		"http://[::ffff:127.0.0.1]/hook",
		"HTTP://127.0.0.1/hook",
	}
	for _, u := range ok {
		if err := ValidateCallbackURL(u); err != nil {
			t.Errorf("ValidateCallbackURL(%q) = %v, want nil", u, err)
		}
	}
	bad := []struct{ url, want string }{
		{"", "empty"},
		{"http://example.com/hook", "use https"},
		{"http://10.0.0.1/hook", "use https"},
		{"http://0.0.0.0/hook", "use https"},
		{"http://[::]/hook", "use https"},
		{"http://[::2]/hook", "use https"},
		{"http://128.0.0.1/hook", "use https"},
		{"http://localhost.evil.example/hook", "use https"},
		{"http://127.0.0.1.nip.io/hook", "use https"},
		{"ftp://localhost/hook", `scheme "ftp"`},
		{"localhost:8080/hook", "no host"},
		{"/hook", "no host"},
		{"https:///hook", "no host"},
		{"https://:443/hook", "no host"},
		{"https://exa mple.com/hook", "not a valid URL"},
		{"https://example.com/%zz", "not a valid URL"},
		// From urlEnv, a URL skips the compiler's checks.
		{"http://127.0.0.1:99999/hook", "port 99999 is not a port number"},
		{"https://example.com:0/hook", "port 0 is not a port number"},
	}
	for _, tt := range bad {
		err := ValidateCallbackURL(tt.url)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ValidateCallbackURL(%q) = %v, want an error containing %q", tt.url, err, tt.want)
		}
	}
}

func TestSendCallbackRefusesPlainHTTPToRemoteHost(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	res, err := SendCallback(context.Background(), Callback{URL: "http://bob:pw@hooks.example.com/done?token=abc123", Retries: 3}, testRunID, []byte(`{}`), log)
	if err == nil {
		t.Fatal("SendCallback accepted plain http to a remote host")
	}
	if !strings.Contains(err.Error(), "http://hooks.example.com/done") || !strings.Contains(err.Error(), "use https") {
		t.Errorf("error %q does not name the redacted URL and the fix", err)
	}
	for _, leak := range []string{"abc123", "token", "bob", "pw@"} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("error %q leaks %q", err, leak)
		}
	}
	if res.Attempts != 0 || res.Delivered || res.Err != err.Error() {
		t.Errorf("result = %+v, want no attempt", res)
	}
	if buf.Len() != 0 {
		t.Errorf("refused callback logged: %s", buf.String())
	}
}

func TestSendCallbackRejectsBadInput(t *testing.T) {
	rc := newReceiver(t, always(status(http.StatusOK)))
	tests := []struct {
		name    string
		cb      Callback
		runID   string
		want    string
		notWant string
	}{
		{"no run id", Callback{URL: rc.srv.URL}, "", "no run id", ""},
		{"bad header name", Callback{URL: rc.srv.URL, Headers: map[string]string{"X Bad": "v"}}, testRunID, `invalid header name "X Bad"`, ""},
		{"header value with newline", Callback{URL: rc.srv.URL, Headers: map[string]string{"Authorization": "Bearer sekrit\r\nX-Evil: 1"}}, testRunID, `invalid value for header "Authorization"`, "sekrit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := SendCallback(context.Background(), tt.cb, tt.runID, []byte(`{}`), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			if tt.notWant != "" && strings.Contains(err.Error(), tt.notWant) {
				t.Errorf("error %q leaks %q", err, tt.notWant)
			}
			if res.Attempts != 0 {
				t.Errorf("result = %+v, want no attempt", res)
			}
		})
	}
	if got := len(rc.requests()); got != 0 {
		t.Errorf("receiver got %d requests, want 0", got)
	}
}

// Whatever goes wrong, neither the error nor the log carries the secret,
// the signature, a header value, or the URL's userinfo and query.
func TestSendCallbackDoesNotLeakSecrets(t *testing.T) {
	secret := []byte("s3cr3t-hmac-key")
	body := []byte(`{"runId":"r"}`)
	hangRelease := make(chan struct{})
	t.Cleanup(func() { close(hangRelease) })
	refused := httptest.NewServer(http.NotFoundHandler())
	refused.Close()

	tests := []struct {
		name    string
		respond func(int, http.ResponseWriter, *http.Request)
		url     func(*receiver) string
		timeout time.Duration
		wantLog string
	}{
		{name: "500 forever", respond: always(status(500)), wantLog: "retrying"},
		{name: "400", respond: always(status(400))},
		{name: "503 then 200", respond: failFirst(1, status(503, "Retry-After", "0")), wantLog: "callback delivered"},
		{name: "connection refused", url: func(*receiver) string { return refused.URL }, wantLog: "retrying"},
		{
			name: "timeout",
			respond: func(_ int, _ http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-hangRelease:
				}
			},
			timeout: 100 * time.Millisecond,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			respond := tt.respond
			if respond == nil {
				respond = always(status(200))
			}
			rc := newReceiver(t, respond)
			base := rc.srv.URL
			if tt.url != nil {
				base = tt.url(rc)
			}
			target := strings.Replace(base, "http://", "http://alice:pa55w0rd@", 1) + "/hook?token=tok-123#frag"
			var buf bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			cb := Callback{
				URL:     target,
				Secret:  secret,
				Timeout: tt.timeout,
				Retries: 2,
				Headers: map[string]string{"Authorization": "Bearer hdr-token-456"},
			}
			in := &instant{}
			res, err := sendCallback(context.Background(), cb, testRunID, body, log, in.opts())

			texts := map[string]string{"log": buf.String(), "result": res.Err}
			if err != nil {
				texts["error"] = err.Error()
				if !strings.Contains(err.Error(), base+"/hook") {
					t.Errorf("error %q does not name %s", err, base+"/hook")
				}
			}
			leaks := []string{
				string(secret), sign(secret, body), hex.EncodeToString([]byte(secret)),
				"alice", "pa55w0rd", "tok-123", "token=", "frag", "hdr-token-456", testRunID,
			}
			for where, text := range texts {
				for _, leak := range leaks {
					if strings.Contains(text, leak) {
						t.Errorf("%s leaks %q:\n%s", where, leak, text)
					}
				}
			}
			if !strings.Contains(buf.String(), "sending callback") || !strings.Contains(buf.String(), tt.wantLog) {
				t.Errorf("log lacks the expected lines (%q):\n%s", tt.wantLog, buf.String())
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"1", time.Second, true},
		{" 120 ", 2 * time.Minute, true},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
		{"99999999999999999999999", maxRetryAfter, true},
		{"86401", maxRetryAfter, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{"Sunday, 01-Mar-26 12:00:30 GMT", 30 * time.Second, true}, // RFC 850
		{"Sun Mar  1 12:00:05 2026", 5 * time.Second, true},        // asctime
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
		{now.Add(48 * time.Hour).Format(http.TimeFormat), maxRetryAfter, true},
	}
	for _, tt := range tests {
		got, ok := parseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestCallbackBodyJSON(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	failed := []CallbackFailedTask{
		{ID: "merge", Reason: "timed out after 2h", Attempts: 3},
		{ID: "align-s2", ExitCode: intPtr(1), Reason: "exit status 1", Attempts: 1},
	}
	outputs := []CallbackOutput{
		{Task: "fetch-ref", Location: "az://refs/r1/ref.fa"},
		{Task: "align-s1", Location: "az://results/r1/s1/b.bam"},
		{Task: "align-s1", Location: "az://results/r1/s1/a.bam"},
	}
	body := CallbackBody{
		Workload:   "genome-align",
		RunID:      "r1",
		Backend:    "azurebatch",
		Status:     CallbackFailed,
		StartedAt:  time.Date(2026, 3, 1, 11, 0, 0, 0, paris),
		FinishedAt: time.Date(2026, 3, 1, 12, 30, 15, 500_000_000, paris),
		Tasks:      CallbackTaskCounts{Total: 5, Succeeded: 2, Failed: 2, Skipped: 1},
		Failed:     failed,
		Outputs:    outputs,
	}
	got, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"workload":"genome-align","runId":"r1","backend":"azurebatch","status":"failed",` +
		`"startedAt":"2026-03-01T10:00:00Z","finishedAt":"2026-03-01T11:30:15.5Z",` +
		`"tasks":{"total":5,"succeeded":2,"failed":2,"skipped":1,"cancelled":0},` +
		`"failed":[{"id":"align-s2","exitCode":1,"reason":"exit status 1","attempts":1},` +
		`{"id":"merge","exitCode":null,"reason":"timed out after 2h","attempts":3}],` +
		`"outputs":[{"task":"align-s1","location":"az://results/r1/s1/a.bam"},` +
		`{"task":"align-s1","location":"az://results/r1/s1/b.bam"},` +
		`{"task":"fetch-ref","location":"az://refs/r1/ref.fa"}]}`
	if string(got) != want {
		t.Errorf("json =\n%s\nwant\n%s", got, want)
	}
	if failed[0].ID != "merge" || outputs[0].Task != "fetch-ref" {
		t.Error("encoding reordered the caller's slices")
	}

	// Empty lists are [] for receivers that iterate without a null check.
	got, err = json.Marshal(CallbackBody{RunID: "r2", Status: CallbackSucceeded})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(got), `"failed":[],"outputs":[]`) {
		t.Errorf("json = %s, want empty lists as []", got)
	}

	for _, bad := range []CallbackStatus{"", "ok", "Succeeded"} {
		if _, err := json.Marshal(CallbackBody{Status: bad}); err == nil {
			t.Errorf("status %q encoded without error", bad)
		}
	}
}

// TestRetryableTransportErrorAddr: an address no dial can use fails every
// attempt alike, and is not retried; a refused connection may not be.
func TestRetryableTransportErrorAddr(t *testing.T) {
	_, err := (&net.Dialer{}).DialContext(t.Context(), "tcp", "127.0.0.1:99999")
	if err == nil {
		t.Fatal("dial to port 99999 worked")
	}
	if retryableTransportError(err) {
		t.Errorf("retryable: %v", err)
	}
	if !retryableTransportError(&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}) {
		t.Error("a refused connection is not retried")
	}
}
