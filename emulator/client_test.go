package emulator

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The tests talk to the emulator the way any Batch client would: plain
// HTTP, signed with Shared Key by the signer below, which follows FACTS.md
// (and the official Python SDK) on its own rather than reusing the
// emulator's code, so the two check each other. Every response body is
// validated against the official spec.

// signRequest signs r for account with key, dated now.
func signRequest(r *http.Request, account string, key []byte, now time.Time) {
	r.Header.Set("ocp-date", now.UTC().Format(http.TimeFormat))
	r.Header.Set("Authorization", "SharedKey "+account+":"+signature(r, account, key))
}

func canonical(r *http.Request, account string) string {
	var b strings.Builder
	b.WriteString(r.Method + "\n")
	for _, h := range []string{"Content-Encoding", "Content-Language", "Content-Length", "Content-MD5",
		"Content-Type", "Date", "If-Modified-Since", "If-Match", "If-None-Match", "If-Unmodified-Since", "Range"} {
		v := r.Header.Get(h)
		if h == "Content-Length" {
			switch {
			case r.ContentLength > 0:
				v = strconv.FormatInt(r.ContentLength, 10)
			case r.Method != http.MethodGet && r.Method != http.MethodHead:
				v = "0"
			}
		}
		b.WriteString(v + "\n")
	}
	var ocp []string
	for name, vs := range r.Header {
		if l := strings.ToLower(name); strings.Contains(l, "ocp-") && vs[0] != "" {
			ocp = append(ocp, l+":"+vs[0])
		}
	}
	sort.Strings(ocp)
	for _, h := range ocp {
		b.WriteString(h + "\n")
	}
	b.WriteString("/" + account + r.URL.EscapedPath())
	q := r.URL.Query()
	names := make([]string, 0, len(q))
	for k := range q {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if q[k][0] != "" {
			b.WriteString("\n" + k + ":" + q[k][0])
		}
	}
	return b.String()
}

func signature(r *http.Request, account string, key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(canonical(r, account)))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// client is a signed Batch client for tests.
type client struct {
	t       testing.TB
	base    string
	account string
	key     []byte
	hc      *http.Client
	spec    *spec
}

type result struct {
	status int
	header http.Header
	body   []byte
}

func (r result) String() string { return fmt.Sprintf("%d %s", r.status, r.body) }

// req is one request: target is a path with an optional query;
// api-version is added unless the query has one or noVersion is set. body
// is sent raw when it is []byte and as JSON otherwise (and then validated
// against the spec's request definition).
type req struct {
	method, target string
	body           any
	header         http.Header
	noVersion      bool
	unsigned       bool
	date           time.Time
	tamper         func(*http.Request) // after signing
}

func (c *client) send(q req) result {
	c.t.Helper()
	target := q.target
	if !strings.HasPrefix(target, "http") {
		target = c.base + target
	}
	u, err := url.Parse(target)
	if err != nil {
		c.t.Fatal(err)
	}
	if !q.noVersion && u.Query().Get("api-version") == "" {
		if u.RawQuery != "" {
			u.RawQuery += "&"
		}
		u.RawQuery += "api-version=" + APIVersion
	}
	var body []byte
	switch b := q.body.(type) {
	case nil:
	case []byte:
		body = b
	default:
		body, err = json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		c.checkRequest(q.method, u.Path, body)
	}
	r, err := http.NewRequest(q.method, u.String(), bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if body == nil {
		r.Body, r.ContentLength = http.NoBody, 0
	}
	if body != nil {
		r.Header.Set("Content-Type", "application/json; odata=minimalmetadata")
	}
	for k, vs := range q.header {
		r.Header[k] = vs
	}
	if !q.unsigned {
		date := q.date
		if date.IsZero() {
			date = time.Now()
		}
		signRequest(r, c.account, c.key, date)
	}
	if q.tamper != nil {
		q.tamper(r)
	}
	resp, err := c.hc.Do(r)
	if err != nil {
		return result{status: -1, body: []byte(err.Error())}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return result{status: -1, body: []byte(err.Error())}
	}
	res := result{status: resp.StatusCode, header: resp.Header, body: b}
	c.checkResponse(q.method, u, res)
	return res
}

func (c *client) do(method, target string, body any) result {
	c.t.Helper()
	return c.send(req{method: method, target: target, body: body})
}

// must sends and fails the test unless the status is want.
func (c *client) must(want int, method, target string, body any) result {
	c.t.Helper()
	r := c.do(method, target, body)
	if r.status != want {
		c.t.Fatalf("%s %s: got %s, want %d", method, target, r, want)
	}
	return r
}

func decode[T any](t testing.TB, r result) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decode %T from %s: %v", v, r.body, err)
	}
	return v
}

// errorCode is the code of an error response.
func errorCode(t testing.TB, r result) string {
	t.Helper()
	return decode[BatchError](t, r).Code
}

// errorValue is the value of key in an error response's values.
func errorValue(t testing.TB, r result, key string) string {
	t.Helper()
	for _, v := range decode[BatchError](t, r).Values {
		if v.Key == key {
			return v.Value
		}
	}
	return ""
}

// Which definition each operation's body is.
type opDef struct {
	method string
	path   *regexp.Regexp
	def    string
}

var (
	idRE      = `[^/]+`
	requestOf = []opDef{
		{"POST", regexp.MustCompile(`^/pools$`), "BatchPoolCreateOptions"},
		{"POST", regexp.MustCompile(`^/jobs$`), "BatchJobCreateOptions"},
		{"PATCH", regexp.MustCompile(`^/jobs/` + idRE + `$`), "BatchJobUpdateOptions"},
		{"POST", regexp.MustCompile(`^/jobs/` + idRE + `/terminate$`), "BatchJobTerminateOptions"},
		{"POST", regexp.MustCompile(`^/jobs/` + idRE + `/tasks$`), "BatchTaskCreateOptions"},
		{"POST", regexp.MustCompile(`^/jobs/` + idRE + `/addtaskcollection$`), "BatchTaskGroup"},
	}
	responseOf = []opDef{
		{"GET", regexp.MustCompile(`^/pools$`), "BatchPoolListResult"},
		{"GET", regexp.MustCompile(`^/pools/` + idRE + `$`), "BatchPool"},
		{"POST", regexp.MustCompile(`^/pools/` + idRE + `/evaluateautoscale$`), "AutoScaleRun"},
		{"GET", regexp.MustCompile(`^/jobs$`), "BatchJobListResult"},
		{"GET", regexp.MustCompile(`^/jobs/` + idRE + `$`), "BatchJob"},
		{"GET", regexp.MustCompile(`^/jobs/` + idRE + `/taskcounts$`), "BatchTaskCountsResult"},
		{"GET", regexp.MustCompile(`^/jobs/` + idRE + `/tasks$`), "BatchTaskListResult"},
		{"POST", regexp.MustCompile(`^/jobs/` + idRE + `/addtaskcollection$`), "BatchCreateTaskCollectionResult"},
		{"GET", regexp.MustCompile(`^/jobs/` + idRE + `/tasks/` + idRE + `$`), "BatchTask"},
		{"GET", regexp.MustCompile(`^/jobs/` + idRE + `/tasks/` + idRE + `/files$`), "BatchNodeFileListResult"},
	}
)

func lookupDef(defs []opDef, method, path string) string {
	for _, d := range defs {
		if d.method == method && d.path.MatchString(path) {
			return d.def
		}
	}
	return ""
}

func (c *client) checkRequest(method, path string, body []byte) {
	c.t.Helper()
	if c.spec == nil {
		return
	}
	if def := lookupDef(requestOf, method, path); def != "" {
		for _, e := range c.spec.validate(def, body, false) {
			c.t.Errorf("request %s %s does not conform to %s: %s", method, path, def, e)
		}
	}
}

// checkResponse validates a response body against the spec: error bodies
// are BatchError, successful ones the operation's definition, and the
// operations that return no body return none.
func (c *client) checkResponse(method string, u *url.URL, r result) {
	c.t.Helper()
	if r.header.Get("request-id") == "" {
		c.t.Errorf("%s %s: no request-id header", method, u.Path)
	}
	if c.spec == nil {
		return
	}
	path := u.Path
	isFile := strings.Contains(path, "/files/")
	def := ""
	switch {
	case r.status == http.StatusNotModified:
		if len(r.body) > 0 {
			c.t.Errorf("%s %s: 304 with a body", method, path)
		}
		return
	case r.status >= 400:
		if method == http.MethodHead {
			return
		}
		def = "BatchError"
	case isFile && method != http.MethodDelete:
		return // file content
	default:
		def = lookupDef(responseOf, method, path)
	}
	if def == "" {
		if len(r.body) > 0 {
			c.t.Errorf("%s %s: %d with an unexpected body %s", method, path, r.status, r.body)
		}
		return
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		c.t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	relax := u.Query().Get("$select") != "" && def != "BatchError"
	for _, e := range c.spec.validate(def, r.body, relax) {
		c.t.Errorf("%s %s: %d body does not conform to %s: %s\nbody: %.2000s", method, path, r.status, def, e, r.body)
	}
}

// env is an emulator on a loopback test server with a client for it.
type env struct {
	t    testing.TB
	srv  *Server
	ts   *httptest.Server
	c    *client
	once sync.Once
}

func newEnv(t testing.TB, o Options) *env {
	t.Helper()
	sp := loadSpec(t)
	ts := httptest.NewUnstartedServer(nil)
	o.Endpoint = "http://" + ts.Listener.Addr().String()
	if o.KillGrace == 0 {
		o.KillGrace = 2 * time.Second
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = s.Handler()
	ts.Start()
	e := &env{t: t, srv: s, ts: ts}
	e.c = &client{t: t, base: ts.URL, account: s.Account(), key: mustKey(t, s.Key()), hc: ts.Client(), spec: sp}
	t.Cleanup(e.close)
	return e
}

// sub is e for a subtest, so that failures land on the subtest.
func (e *env) sub(t testing.TB) *env {
	c := *e.c
	c.t = t
	return &env{t: t, srv: e.srv, ts: e.ts, c: &c}
}

func (e *env) close() {
	e.once.Do(func() {
		e.ts.Close()
		if err := e.srv.Close(); err != nil {
			e.t.Errorf("close: %v", err)
		}
	})
}

func mustKey(t testing.TB, k string) []byte {
	b, err := base64.StdEncoding.DecodeString(k)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Fixtures.

func poolBody(id string, nodes, slots int) map[string]any {
	return map[string]any{
		"id":     id,
		"vmSize": "standard_d2s_v5",
		"virtualMachineConfiguration": map[string]any{
			"imageReference": map[string]any{"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server"},
			"nodeAgentSKUId": "batch.node.ubuntu 24.04",
		},
		"targetDedicatedNodes": nodes,
		"taskSlotsPerNode":     slots,
	}
}

func jobBody(id, pool string, extra map[string]any) map[string]any {
	b := map[string]any{"id": id, "poolInfo": map[string]any{"poolId": pool}}
	for k, v := range extra {
		b[k] = v
	}
	return b
}

func taskBody(id, cmd string, extra map[string]any) map[string]any {
	b := map[string]any{"id": id, "commandLine": cmd}
	for k, v := range extra {
		b[k] = v
	}
	return b
}

// sh is a command line running script with /bin/sh.
func sh(script string) string {
	return "/bin/sh -c '" + strings.ReplaceAll(script, "'", `'"'"'`) + "'"
}

func (e *env) pool(id string, nodes, slots int) {
	e.t.Helper()
	e.c.must(201, "POST", "/pools", poolBody(id, nodes, slots))
}

func (e *env) job(id, pool string, extra map[string]any) {
	e.t.Helper()
	e.c.must(201, "POST", "/jobs", jobBody(id, pool, extra))
}

func (e *env) addTasks(job string, tasks ...map[string]any) {
	e.t.Helper()
	for start := 0; start < len(tasks); start += 100 {
		chunk := tasks[start:min(start+100, len(tasks))]
		r := e.c.must(200, "POST", "/jobs/"+job+"/addtaskcollection", map[string]any{"value": chunk})
		for _, x := range decode[TaskAddCollectionResult](e.t, r).Value {
			if x.Status != AddSuccess {
				e.t.Fatalf("add %s: %s %+v", x.TaskID, x.Status, x.Error)
			}
		}
	}
}

func (e *env) task(job, id string) Task {
	e.t.Helper()
	return decode[Task](e.t, e.c.must(200, "GET", "/jobs/"+job+"/tasks/"+id, nil))
}

func (e *env) jobState(id string) Job {
	e.t.Helper()
	return decode[Job](e.t, e.c.must(200, "GET", "/jobs/"+id, nil))
}

func (e *env) counts(job string) TaskCountsResult {
	e.t.Helper()
	return decode[TaskCountsResult](e.t, e.c.must(200, "GET", "/jobs/"+job+"/taskcounts", nil))
}

// waitFor polls cond until it holds or the deadline passes. Polling with a
// deadline is for effects outside the test's control (processes running);
// the emulator's own state changes are never waited for with sleeps.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		case <-tick.C:
		}
	}
}

// waitTask waits for a task to reach state and returns it.
func (e *env) waitTask(job, id string, state TaskState) Task {
	e.t.Helper()
	var t Task
	waitFor(e.t, job+"/"+id+" "+string(state), 30*time.Second, func() bool {
		t = e.task(job, id)
		return t.State == state
	})
	return t
}

func (e *env) waitJob(id string, state JobState) Job {
	e.t.Helper()
	var j Job
	waitFor(e.t, "job "+id+" "+string(state), 30*time.Second, func() bool {
		j = e.jobState(id)
		return j.State == state
	})
	return j
}

// listAll follows odata.nextLink as given and returns every task.
func (e *env) listAll(target string) (tasks []Task, pages int) {
	e.t.Helper()
	for target != "" {
		page := decode[ListResult[Task]](e.t, e.c.must(200, "GET", target, nil))
		tasks = append(tasks, page.Value...)
		target = page.NextLink
		pages++
	}
	return tasks, pages
}
