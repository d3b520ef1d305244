package azurebatch

// fakeBatch is a loopback stand-in for the Batch service. Before a test's
// handler sees a request, it checks what every request must carry: a valid
// Shared Key signature (verified with the server side of the signer) or the
// expected bearer token, api-version=2025-06-01, a client-request-id that is
// a braceless UUID v4, return-client-request-id, an ocp-date, a known route,
// and a body, with its Content-Type, valid against the route's spec
// definition. Handlers answer with canned Batch bodies, also validated.

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
)

type seenRequest struct {
	Method          string
	Path            string // escaped, as sent
	Query           map[string][]string
	Header          http.Header
	ClientRequestID string
	Body            []byte
}

type fakeBatch struct {
	t      *testing.T
	spec   *specDoc
	cred   *SharedKeyCredential
	bearer string // when set, expect this token instead of Shared Key
	srv    *httptest.Server

	mu      sync.Mutex
	handler func(w http.ResponseWriter, r *http.Request, body []byte)
	reqs    []seenRequest

	inflight, maxInflight atomic.Int32
}

// route is a known operation: its method, path and body definition ("" for
// no body; optional when bodyOptional).
type route struct {
	method       string
	path         *regexp.Regexp
	def          string
	bodyOptional bool
}

var (
	seg1   = `[A-Za-z0-9_-]+`
	routes = []route{
		{"POST", regexp.MustCompile(`^/pools$`), "BatchPoolCreateOptions", false},
		{"GET", regexp.MustCompile(`^/pools/` + seg1 + `$`), "", false},
		{"HEAD", regexp.MustCompile(`^/pools/` + seg1 + `$`), "", false},
		{"DELETE", regexp.MustCompile(`^/pools/` + seg1 + `$`), "", false},
		{"POST", regexp.MustCompile(`^/pools/` + seg1 + `/resize$`), "BatchPoolResizeOptions", false},
		{"POST", regexp.MustCompile(`^/jobs$`), "BatchJobCreateOptions", false},
		{"GET", regexp.MustCompile(`^/jobs/` + seg1 + `$`), "", false},
		{"PATCH", regexp.MustCompile(`^/jobs/` + seg1 + `$`), "BatchJobUpdateOptions", false},
		{"DELETE", regexp.MustCompile(`^/jobs/` + seg1 + `$`), "", false},
		{"POST", regexp.MustCompile(`^/jobs/` + seg1 + `/terminate$`), "BatchJobTerminateOptions", true},
		{"POST", regexp.MustCompile(`^/jobs/` + seg1 + `/tasks$`), "BatchTaskCreateOptions", false},
		{"GET", regexp.MustCompile(`^/jobs/` + seg1 + `/tasks$`), "", false},
		{"POST", regexp.MustCompile(`^/jobs/` + seg1 + `/addtaskcollection$`), "BatchTaskGroup", false},
		{"GET", regexp.MustCompile(`^/jobs/` + seg1 + `/taskcounts$`), "", false},
		{"GET", regexp.MustCompile(`^/jobs/` + seg1 + `/tasks/` + seg1 + `$`), "", false},
		{"DELETE", regexp.MustCompile(`^/jobs/` + seg1 + `/tasks/` + seg1 + `$`), "", false},
		{"POST", regexp.MustCompile(`^/jobs/` + seg1 + `/tasks/` + seg1 + `/terminate$`), "", false},
		// The file path is one segment: its slashes arrive as %2F.
		{"GET", regexp.MustCompile(`^/jobs/` + seg1 + `/tasks/` + seg1 + `/files/[^/]+$`), "", false},
	}
)

func newFakeBatch(t *testing.T) *fakeBatch {
	t.Helper()
	f := &fakeBatch{t: t, spec: loadSpec(t), cred: testCred(t)}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// client returns a Shared Key client for the fake, with waits between
// attempts recorded and skipped.
func (f *fakeBatch) client(opt Options) (*Client, *waits) {
	f.t.Helper()
	return f.clientWith(f.cred, opt)
}

func (f *fakeBatch) clientWith(auth Auth, opt Options) (*Client, *waits) {
	f.t.Helper()
	opt.HTTPClient = f.srv.Client()
	c, err := New(f.srv.URL, auth, opt)
	if err != nil {
		f.t.Fatal(err)
	}
	w := &waits{}
	c.wait = w.record
	return c, w
}

// waits records the waits the client computed between attempts, and
// makes it take none.
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) record(d time.Duration) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.d = append(w.d, d)
	return 0
}

func (w *waits) get() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.d...)
}

func (f *fakeBatch) handle(h func(w http.ResponseWriter, r *http.Request, body []byte)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handler = h
}

func (f *fakeBatch) requests() []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seenRequest(nil), f.reqs...)
}

func (f *fakeBatch) serve(w http.ResponseWriter, r *http.Request) {
	t := f.t
	n := f.inflight.Add(1)
	defer f.inflight.Add(-1)
	for {
		m := f.maxInflight.Load()
		if n <= m || f.maxInflight.CompareAndSwap(m, n) {
			break
		}
	}

	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.Errorf("reading the request body: %v", err)
		return
	}
	path := r.URL.EscapedPath()
	desc := r.Method + " " + path

	// Authentication.
	if f.bearer != "" {
		if got := r.Header.Get("Authorization"); got != "Bearer "+f.bearer {
			t.Errorf("%s: Authorization = %q, want the bearer token", desc, got)
		}
		if _, err := http.ParseTime(r.Header.Get("ocp-date")); err != nil {
			t.Errorf("%s: no valid ocp-date", desc)
		}
	} else if err := f.cred.Verify(r, time.Now()); err != nil {
		t.Errorf("%s: %v", desc, err)
		writeBatchError(w, http.StatusForbidden, "AuthenticationFailed", "Server failed to authenticate the request.")
		return
	}
	// Headers and query every call carries.
	if got := r.URL.Query().Get("api-version"); got != APIVersion {
		t.Errorf("%s: api-version = %q, want %q", desc, got, APIVersion)
	}
	if got := r.URL.Query()["api-version"]; len(got) != 1 {
		t.Errorf("%s: api-version given %d times", desc, len(got))
	}
	crid := r.Header.Get("client-request-id")
	if u, err := uuid.Parse(crid); err != nil || u.Version() != 4 || len(crid) != 36 {
		t.Errorf("%s: client-request-id %q is not a braceless UUID v4", desc, crid)
	}
	if got := r.Header.Get("return-client-request-id"); got != "true" {
		t.Errorf("%s: return-client-request-id = %q", desc, got)
	}
	// Route and body.
	var rt *route
	for i := range routes {
		if routes[i].method == r.Method && routes[i].path.MatchString(path) {
			rt = &routes[i]
			break
		}
	}
	if rt == nil {
		t.Errorf("%s: not an operation the client should call", desc)
		writeBatchError(w, http.StatusNotFound, "InvalidUri", "unknown route")
		return
	}
	switch {
	case len(body) > 0 && rt.def == "":
		t.Errorf("%s: unexpected body %s", desc, body)
	case len(body) == 0 && rt.def != "" && !rt.bodyOptional:
		t.Errorf("%s: no body, want a %s", desc, rt.def)
	case len(body) > 0:
		if ct := r.Header.Get("Content-Type"); ct != "application/json; odata=minimalmetadata" {
			t.Errorf("%s: Content-Type = %q", desc, ct)
		}
		f.spec.mustValidate(t, rt.def, body, true)
	}

	f.mu.Lock()
	f.reqs = append(f.reqs, seenRequest{
		Method: r.Method, Path: path, Query: r.URL.Query(), Header: r.Header.Clone(),
		ClientRequestID: crid, Body: body,
	})
	h := f.handler
	f.mu.Unlock()

	w.Header().Set("request-id", uuid.NewString())
	w.Header().Set("client-request-id", crid)
	if h == nil {
		t.Errorf("%s: no handler", desc)
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	h(w, r, body)
}

// writeJSON answers with v, after checking it against the spec
// definition def (when def is not "").
func (f *fakeBatch) writeJSON(w http.ResponseWriter, status int, def string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		f.t.Errorf("encoding a canned answer: %v", err)
	}
	if def != "" {
		f.spec.mustValidate(f.t, def, b, false)
	}
	w.Header().Set("Content-Type", "application/json;odata=minimalmetadata")
	w.WriteHeader(status)
	w.Write(b)
}

func writeBatchError(w http.ResponseWriter, status int, code, msg string) {
	b, _ := json.Marshal(BatchError{Code: code, Message: &BatchErrorMessage{Lang: "en-US", Value: msg + "\nRequestId:00000000-0000-0000-0000-000000000000\nTime:2025-11-21T22:43:31.4733476Z"}})
	w.Header().Set("Content-Type", "application/json;odata=minimalmetadata")
	w.WriteHeader(status)
	w.Write(b)
}

// dropConnection closes the connection without an answer.
func dropConnection(t *testing.T, w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		t.Error("the test server cannot hijack connections")
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return
	}
	conn.Close()
}

// taskStore is a job's tasks, with add-collection semantics: ids unique
// case-insensitively, an existing id answered clienterror TaskExists.
type taskStore struct {
	mu      sync.Mutex
	created map[string]int // lower-cased id -> times created
}

func newTaskStore() *taskStore { return &taskStore{created: map[string]int{}} }

// itemFault says what to do with one task of an add-collection.
type itemFault int

const (
	addNormally        itemFault = iota
	serverErrorSkipped           // answer servererror without creating the task
	serverErrorApplied           // create the task, but answer servererror
)

func (s *taskStore) add(f *fakeBatch, jobID string, body []byte, fault func(id string) itemFault) BatchCreateTaskCollectionResult {
	var g BatchTaskGroup
	if err := json.Unmarshal(body, &g); err != nil {
		f.t.Errorf("decoding an add-collection body: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var res BatchCreateTaskCollectionResult
	// Answer in reverse order: the service does not promise any.
	for i := len(g.Value) - 1; i >= 0; i-- {
		id := g.Value[i].ID
		k := strings.ToLower(id)
		fl := addNormally
		if fault != nil {
			fl = fault(id)
		}
		switch {
		case fl == serverErrorSkipped:
			res.Value = append(res.Value, BatchTaskCreateResult{Status: TaskAddServerError, TaskID: id, Error: &BatchError{Code: "ServerBusy", Message: &BatchErrorMessage{Value: "try again"}}})
		case s.created[k] > 0:
			res.Value = append(res.Value, BatchTaskCreateResult{Status: TaskAddClientError, TaskID: id, Error: &BatchError{Code: CodeTaskExists, Message: &BatchErrorMessage{Lang: "en-US", Value: "The specified task already exists."}}})
		case fl == serverErrorApplied:
			s.created[k]++
			res.Value = append(res.Value, BatchTaskCreateResult{Status: TaskAddServerError, TaskID: id, Error: &BatchError{Code: "OperationTimedOut", Message: &BatchErrorMessage{Value: "timed out"}}})
		default:
			s.created[k]++
			res.Value = append(res.Value, BatchTaskCreateResult{
				Status: TaskAddSuccess, TaskID: id, ETag: "0x8D3D623CD661246", LastModified: time.Now().UTC(),
				Location: f.srv.URL + "/jobs/" + jobID + "/tasks/" + id,
			})
		}
	}
	return res
}

// checkExactlyOnce fails unless every id was created exactly once and
// nothing else was.
func (s *taskStore) checkExactlyOnce(t *testing.T, tasks []BatchTaskCreateOptions) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.created) != len(tasks) {
		t.Errorf("%d distinct tasks created, want %d", len(s.created), len(tasks))
	}
	for _, task := range tasks {
		if n := s.created[strings.ToLower(task.ID)]; n != 1 {
			t.Errorf("task %q created %d times", task.ID, n)
		}
	}
}

// jobOf is the job id in an add-collection path.
func jobOf(path string) string {
	p := strings.TrimPrefix(path, "/jobs/")
	j, _, _ := strings.Cut(p, "/")
	return j
}
