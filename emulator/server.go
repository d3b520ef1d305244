package emulator

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bmc-dev/bmc/internal/blobstage"
	"github.com/bmc-dev/bmc/internal/redact"
	"github.com/bmc-dev/bmc/internal/stall"
)

// APIVersion is the Batch REST API version the emulator speaks.
const APIVersion = "2025-06-01"

const (
	maxBodyBytes   = 1 << 20 // Batch's limit on a request body
	maxTasksPerAdd = 100     // Batch's limit on an add-collection request
	defaultAccount = "emulator"
)

// Package is an application package served from a local directory
// (--package name@version=dir).
type Package struct {
	Name, Version, Dir string
}

// Options configure an emulator.
type Options struct {
	// Account is the Batch account name requests are signed for.
	// Default "emulator".
	Account string
	// Key is the account key, base64. Empty means a random key, kept in
	// DataDir when there is one so that a restart keeps it.
	Key string
	// Endpoint is the URL clients reach the emulator at, used in the URLs
	// it returns and in AZ_BATCH_ACCOUNT_URL. Empty means the listener's
	// address (Serve) or the Host of the first request (Handler).
	Endpoint string
	// DataDir keeps the emulator's state and the nodes' directories. Empty
	// means a temporary directory removed by Close, and no persistence.
	DataDir string
	// StorageConnectionString is the storage account the emulated pool
	// identity (identityReference) and autoStorageContainerName reach.
	StorageConnectionString string
	// Packages are the application packages the account holds.
	Packages []Package
	// Nodes and SlotsPerNode cap every pool (0: as the pool asks). An
	// autoscale pool, whose formula the emulator does not evaluate, gets
	// Nodes nodes (at least one).
	Nodes, SlotsPerNode int
	// PoolIdentity is the ARM resource id of a user-assigned managed
	// identity the account gives every pool it creates, as Azure
	// Resource Manager would. Tasks on such a pool get IDENTITY_ENDPOINT
	// and IDENTITY_HEADER, where the identity's tokens for Batch are
	// served; they reach the jobs of that pool. Empty: pools have no
	// identity.
	PoolIdentity string
	// TaskTokens issues AZ_BATCH_AUTHENTICATION_TOKEN to tasks that ask
	// for one (authenticationTokenSettings), as Batch did until it
	// retired task authentication tokens on 30 September 2024. Off by
	// default, as on Batch now.
	TaskTokens bool
	// LowerPackageVars sets an application package's variables
	// (AZ_BATCH_APP_PACKAGE_*) with the application id in lower case
	// only, as one of Batch's documents has it, instead of both
	// spellings.
	LowerPackageVars bool
	// Instant completes every task with exit code 0 as soon as it is
	// scheduled, without running anything: for control-plane tests.
	Instant bool
	// Faults injects failures into the API; nil injects none.
	Faults *Faults
	// Logger receives the emulator's log; nil discards it.
	Logger *slog.Logger
	// KillGrace is the time a stopped task gets between SIGTERM and
	// SIGKILL; zero means procrun's default.
	KillGrace time.Duration
	// HTTPClient fetches resource files, by httpUrl and from storage
	// containers; nil for a default client, which fails a transfer once
	// it has stalled for Stall and sets no limit on a transfer as a whole.
	HTTPClient *http.Client
	// Stall is how long the default client waits for a storage server
	// that takes or sends nothing; zero for two minutes.
	Stall time.Duration
}

// Server is one emulated Batch account.
type Server struct {
	opt      Options
	log      *slog.Logger
	account  string
	key      []byte
	keyB64   string
	tokenKey []byte
	root     string // nodes' directories live under root/nodes
	ownRoot  bool
	stager   *stager
	faults   *faultInjector
	endpoint atomic.Pointer[string]
	etag     atomic.Int64

	runCtx   context.Context
	stopRuns context.CancelCauseFunc
	wg       sync.WaitGroup

	mu          sync.Mutex
	pools       map[string]*pool
	jobs        map[string]*job
	seq         int64
	closed      bool
	dispatching bool
	redispatch  bool
	journal     *journal
	pending     []pendingRec

	table   []route
	started sync.Once

	srvMu sync.Mutex
	srvs  []*http.Server
}

// New creates an emulator, loading its state from o.DataDir when that
// holds one.
func New(o Options) (*Server, error) {
	if o.Account == "" {
		o.Account = defaultAccount
	}
	if !validAccount(o.Account) {
		return nil, fmt.Errorf("emulator: account name %q: use 3-24 lower-case letters and digits", o.Account)
	}
	s := &Server{opt: o, account: o.Account, pools: map[string]*pool{}, jobs: map[string]*job{}}
	s.table = s.routes()
	s.log = o.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if o.Endpoint != "" {
		ep := strings.TrimSuffix(o.Endpoint, "/")
		s.endpoint.Store(&ep)
	}
	for _, p := range o.Packages {
		if p.Name == "" || p.Dir == "" {
			return nil, fmt.Errorf("emulator: package %q: a name and a directory are needed", p.Name)
		}
	}

	if o.DataDir == "" {
		dir, err := os.MkdirTemp("", "bmc-emulator-*")
		if err != nil {
			return nil, fmt.Errorf("emulator: %w", err)
		}
		s.root, s.ownRoot = dir, true
	} else {
		entries, readErr := os.ReadDir(o.DataDir)
		if err := os.MkdirAll(o.DataDir, 0o755); err != nil {
			return nil, fmt.Errorf("emulator: data directory: %w", err)
		}
		if errors.Is(readErr, os.ErrNotExist) || readErr == nil && len(entries) == 0 {
			// A data directory made here, or made empty for the
			// emulator, holds the account key and tasks' files: it is
			// often made in a repository, and kept out of git as bmc's
			// state directory is. One that holds other files is someone
			// else's to ignore or not.
			if err := os.WriteFile(filepath.Join(o.DataDir, ".gitignore"), []byte("# Made by bmc emulator: its data and account key are not for git.\n*\n"), 0o644); err != nil {
				return nil, fmt.Errorf("emulator: data directory: %w", err)
			}
		}
		s.root = o.DataDir
	}
	if err := s.setKey(o.Key); err != nil {
		s.cleanup()
		return nil, err
	}

	s.stager = &stager{http: o.HTTPClient}
	if s.stager.http == nil {
		// No limit on a transfer as a whole: a big file on a slow link
		// takes the time it takes; one that stops moving fails.
		s.stager.http = stall.NewClient(o.Stall)
	}
	if o.StorageConnectionString != "" {
		a, err := blobstage.NewFromConnectionString(o.StorageConnectionString, blobstage.Options{HTTPClient: s.stager.http})
		if err != nil {
			s.cleanup()
			return nil, fmt.Errorf("emulator: storage: %s", redact.String(err.Error()))
		}
		s.stager.account = a
	}
	if o.Faults != nil {
		s.faults = newFaultInjector(*o.Faults)
	}
	s.runCtx, s.stopRuns = context.WithCancelCause(context.Background())

	if o.DataDir != "" {
		// Directories a previous run was deleting when it stopped; moved
		// aside first, so that they never mix with this run's deletions.
		if trash := filepath.Join(o.DataDir, "trash"); dirExists(trash) {
			old := trash + "-" + newRequestID()
			if os.Rename(trash, old) == nil {
				s.wg.Go(func() { _ = os.RemoveAll(old) })
			}
		}
		if err := s.load(); err != nil {
			s.cleanup()
			return nil, err
		}
	}
	return s, nil
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

func validAccount(a string) bool {
	if len(a) < 3 || len(a) > 24 {
		return false
	}
	for _, r := range a {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// setKey installs the account key: the one given, the one kept in the data
// directory, or a new random one (kept there when there is one).
func (s *Server) setKey(k string) error {
	keyFile := ""
	if s.opt.DataDir != "" {
		keyFile = filepath.Join(s.opt.DataDir, "account.json")
	}
	if k == "" && keyFile != "" {
		if b, err := os.ReadFile(keyFile); err == nil {
			var saved struct{ Account, Key string }
			if json.Unmarshal(b, &saved) == nil && saved.Account == s.account {
				k = saved.Key
			}
		}
	}
	if k == "" {
		b := make([]byte, 64)
		if _, err := rand.Read(b); err != nil {
			return fmt.Errorf("emulator: key: %w", err)
		}
		k = base64.StdEncoding.EncodeToString(b)
		if keyFile != "" {
			b, _ := json.Marshal(struct{ Account, Key string }{s.account, k})
			if err := writeFileAtomic(keyFile, b, 0o600); err != nil {
				return fmt.Errorf("emulator: keep the key: %w", err)
			}
		}
	}
	key, err := base64.StdEncoding.DecodeString(k)
	if err != nil || len(key) == 0 {
		return errors.New("emulator: the account key must be base64")
	}
	s.key, s.keyB64 = key, k
	m := hmac.New(sha256.New, key)
	m.Write([]byte("bmc emulator: task authentication tokens"))
	s.tokenKey = m.Sum(nil)
	return nil
}

// Account is the account name.
func (s *Server) Account() string { return s.account }

// Key is the account key, base64.
func (s *Server) Key() string { return s.keyB64 }

// Endpoint is the URL the emulator serves at, once known.
func (s *Server) Endpoint() string { return s.endpointURL() }

func (s *Server) endpointURL() string {
	if p := s.endpoint.Load(); p != nil {
		return *p
	}
	return ""
}

// Serve answers requests on l until ctx is done or Close is called.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	ep := "http://" + l.Addr().String()
	s.endpoint.CompareAndSwap(nil, &ep)
	s.start()
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 30 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.srvMu.Lock()
	s.srvs = append(s.srvs, hs)
	s.srvMu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	})
	defer stop()
	err := hs.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// ListenAndServe runs an emulator as `bmc emulator` does: it listens on
// addr, writes the Azure CLI-style variables that point a client at it to
// announce (AZURE_BATCH_ENDPOINT, AZURE_BATCH_ACCOUNT and
// AZURE_BATCH_ACCESS_KEY, one NAME=value a line), serves until ctx is
// done, and closes.
func ListenAndServe(ctx context.Context, addr string, o Options, announce io.Writer) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	if o.Endpoint == "" {
		host, port, _ := net.SplitHostPort(l.Addr().String())
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			host = "127.0.0.1"
		}
		o.Endpoint = "http://" + net.JoinHostPort(host, port)
	}
	s, err := New(o)
	if err != nil {
		l.Close()
		return err
	}
	_, err = fmt.Fprintf(announce, "AZURE_BATCH_ENDPOINT=%s\nAZURE_BATCH_ACCOUNT=%s\nAZURE_BATCH_ACCESS_KEY=%s\n",
		s.Endpoint(), s.Account(), s.Key())
	if err != nil {
		l.Close()
		s.Close()
		return fmt.Errorf("emulator: announce: %w", err)
	}
	if f, ok := announce.(interface{ Sync() error }); ok {
		_ = f.Sync()
	}
	s.log.Info("emulator: serving the Batch API", "endpoint", s.Endpoint(), "account", s.Account(),
		"apiVersion", APIVersion, "data", o.DataDir, "instant", o.Instant)
	if host, _, _ := net.SplitHostPort(l.Addr().String()); !net.ParseIP(host).IsLoopback() {
		s.log.Warn("emulator: listening beyond loopback: whoever has the account key can run commands on this machine", "address", l.Addr().String())
	}
	err = s.Serve(ctx, l)
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	return err
}

// start schedules the tasks a restarted emulator found waiting, once its
// endpoint (which tasks see as AZ_BATCH_ACCOUNT_URL) is known.
func (s *Server) start() {
	s.started.Do(func() {
		s.mu.Lock()
		defer s.unlockCommit()
		s.dispatchLocked()
	})
}

// Close stops serving and stops running tasks. With a data directory,
// tasks still running are recorded as running; a restarted emulator
// requeues them, as Batch does with the tasks of a node that failed.
func (s *Server) Close() error {
	s.srvMu.Lock()
	for _, hs := range s.srvs {
		_ = hs.Close()
	}
	s.srvMu.Unlock()

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for _, j := range s.jobs {
		if j.timer != nil {
			j.timer.Stop()
		}
	}
	s.commitLocked()
	s.mu.Unlock()

	s.stopRuns(&stopCause{kind: stopShutdown, reason: "the emulator is shutting down"})
	s.wg.Wait()

	s.mu.Lock()
	var err error
	if s.journal != nil {
		err = s.journal.close()
		s.journal = nil
	}
	s.mu.Unlock()
	s.cleanup()
	return err
}

func (s *Server) cleanup() {
	if s.ownRoot {
		_ = os.RemoveAll(s.root)
	}
}

// Handler is the emulator's HTTP handler.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// call is one request being answered.
type call struct {
	s      *Server
	r      *http.Request
	id     string
	now    time.Time
	params map[string]string
	query  url.Values
	body   []byte
}

func (c *call) param(k string) string { return c.params[k] }

// response is what a handler answers.
type response struct {
	status int
	body   []byte // JSON, encoded while the handler held the lock
	header http.Header
	stream io.ReadSeekCloser
	length int64
}

func (r *response) set(k, v string) *response {
	if r.header == nil {
		r.header = http.Header{}
	}
	r.header.Set(k, v)
	return r
}

// reply is a response with body encoded as JSON now: handlers reply while
// they hold the lock, and the state the body shows changes once they
// release it.
func reply(status int, body any) *response {
	r := &response{status: status}
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			panic(fmt.Sprintf("emulator: encode a %T response: %v", body, err))
		}
		r.body = b
	}
	return r
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if s.endpoint.Load() == nil {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		ep := scheme + "://" + r.Host
		s.endpoint.CompareAndSwap(nil, &ep)
	}
	s.start()
	if strings.HasPrefix(r.URL.Path, identityPath) {
		s.serveIdentity(w, r)
		return
	}
	c := &call{s: s, r: r, id: newRequestID(), now: time.Now()}
	w.Header().Set("request-id", c.id)
	if strings.EqualFold(r.Header.Get("return-client-request-id"), "true") {
		if id := r.Header.Get("client-request-id"); id != "" {
			w.Header().Set("client-request-id", id)
		}
	}
	run := func(w http.ResponseWriter) { s.answer(w, c) }
	if s.faults != nil && s.faults.intercept(w, r, c, run) {
		return
	}
	run(w)
}

// answer authenticates, routes and runs one request.
func (s *Server) answer(w http.ResponseWriter, c *call) {
	r := c.r
	if e := s.authenticate(r, c.now); e != nil {
		s.writeError(w, c, e)
		return
	}
	c.query = r.URL.Query()
	switch v := c.query.Get("api-version"); {
	case v == "":
		s.writeError(w, c, newError(http.StatusBadRequest, "MissingRequiredQueryParameter",
			"A query parameter that's mandatory for this request is not specified.").with("QueryParameterName", "api-version"))
		return
	case v != APIVersion:
		s.writeError(w, c, newError(http.StatusBadRequest, "UnsupportedRequestVersion",
			"The specified version of the Batch REST API is not supported by this emulator, which speaks "+APIVersion+".").
			with("QueryParameterName", "api-version").with("QueryParameterValue", v))
		return
	}
	rt, params, e := s.route(r)
	if e != nil {
		s.writeError(w, c, e)
		return
	}
	c.params = params
	if e := s.readBody(r, c); e != nil {
		s.writeError(w, c, e)
		return
	}
	resp, e := rt.h(c)
	if e != nil {
		s.writeError(w, c, e)
		return
	}
	s.writeResponse(w, c, resp)
}

func (s *Server) readBody(r *http.Request, c *call) *apiError {
	if r.Body == nil || r.Method == http.MethodGet || r.Method == http.MethodHead {
		return nil
	}
	if r.ContentLength > maxBodyBytes {
		return errTooLarge(fmt.Sprintf("The request body is %d bytes; the limit is %d.", r.ContentLength, maxBodyBytes))
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		return errInvalidBody("the request body could not be read: " + err.Error())
	}
	if len(b) > maxBodyBytes {
		return errTooLarge(fmt.Sprintf("The request body exceeds the limit of %d bytes.", maxBodyBytes))
	}
	if len(bytes.TrimSpace(b)) > 0 {
		ct := r.Header.Get("Content-Type")
		mt, _, _ := strings.Cut(ct, ";")
		if !strings.EqualFold(strings.TrimSpace(mt), "application/json") {
			return errInvalidHeader("Content-Type", ct, "request bodies must be application/json; odata=minimalmetadata")
		}
	}
	c.body = b
	return nil
}

const jsonContentType = "application/json;odata=minimalmetadata"

func (s *Server) writeError(w http.ResponseWriter, c *call, e *apiError) {
	if e.status == http.StatusNotModified {
		w.WriteHeader(e.status)
		return
	}
	s.log.Debug("batch error", "method", c.r.Method, "path", c.r.URL.Path, "status", e.status, "code", e.code)
	b, _ := json.Marshal(e.body(c.id, Time{c.now}))
	w.Header().Set("Content-Type", jsonContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(e.status)
	if c.r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
}

func (s *Server) writeResponse(w http.ResponseWriter, c *call, resp *response) {
	for k, vs := range resp.header {
		w.Header()[k] = vs
	}
	switch {
	case resp.stream != nil:
		defer resp.stream.Close()
		w.Header().Set("Content-Length", strconv.FormatInt(resp.length, 10))
		w.WriteHeader(resp.status)
		if c.r.Method != http.MethodHead {
			_, _ = io.CopyN(w, resp.stream, resp.length)
		}
	case resp.body != nil:
		b := resp.body
		w.Header().Set("Content-Type", jsonContentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(resp.status)
		if c.r.Method != http.MethodHead {
			_, _ = w.Write(b)
		}
	default:
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(resp.status)
	}
}

// Routing.

type route struct {
	method  string
	pattern []string // literal segments, {name}, or a final {name...}
	h       func(*call) (*response, *apiError)
}

func (s *Server) routes() []route {
	r := func(method, pattern string, h func(*call) (*response, *apiError)) route {
		return route{method, strings.Split(strings.Trim(pattern, "/"), "/"), h}
	}
	return []route{
		r("GET", "pools", s.listPools),
		r("POST", "pools", s.addPool),
		r("GET", "pools/{pool}", s.getPool),
		r("HEAD", "pools/{pool}", s.poolExists),
		r("DELETE", "pools/{pool}", s.deletePool),
		r("POST", "pools/{pool}/resize", s.resizePool),
		r("POST", "pools/{pool}/stopresize", s.stopResizePool),
		r("POST", "pools/{pool}/enableautoscale", s.enableAutoScale),
		r("POST", "pools/{pool}/disableautoscale", s.disableAutoScale),
		r("POST", "pools/{pool}/evaluateautoscale", s.evaluateAutoScale),

		r("GET", "jobs", s.listJobs),
		r("POST", "jobs", s.addJob),
		r("GET", "jobs/{job}", s.getJob),
		r("PATCH", "jobs/{job}", s.patchJob),
		r("PUT", "jobs/{job}", s.replaceJob),
		r("DELETE", "jobs/{job}", s.deleteJob),
		r("POST", "jobs/{job}/terminate", s.terminateJob),
		r("POST", "jobs/{job}/disable", s.disableJob),
		r("POST", "jobs/{job}/enable", s.enableJob),
		r("GET", "jobs/{job}/taskcounts", s.taskCounts),

		r("GET", "jobs/{job}/tasks", s.listTasks),
		r("POST", "jobs/{job}/tasks", s.addTask),
		r("POST", "jobs/{job}/addtaskcollection", s.addTaskCollection),
		r("GET", "jobs/{job}/tasks/{task}", s.getTask),
		r("PUT", "jobs/{job}/tasks/{task}", s.updateTask),
		r("DELETE", "jobs/{job}/tasks/{task}", s.deleteTask),
		r("POST", "jobs/{job}/tasks/{task}/terminate", s.terminateTask),
		r("POST", "jobs/{job}/tasks/{task}/reactivate", s.reactivateTask),
		r("GET", "jobs/{job}/tasks/{task}/files", s.listTaskFiles),
		r("GET", "jobs/{job}/tasks/{task}/files/{path...}", s.getTaskFile),
		r("HEAD", "jobs/{job}/tasks/{task}/files/{path...}", s.getTaskFile),
		r("DELETE", "jobs/{job}/tasks/{task}/files/{path...}", s.deleteTaskFile),
	}
}

func (s *Server) route(r *http.Request) (route, map[string]string, *apiError) {
	segs := strings.Split(strings.Trim(r.URL.EscapedPath(), "/"), "/")
	for i, sg := range segs {
		if u, err := url.PathUnescape(sg); err == nil {
			segs[i] = u
		}
	}
	pathMatched := false
	for _, rt := range s.table {
		params, ok := matchRoute(rt.pattern, segs)
		if !ok {
			continue
		}
		pathMatched = true
		if rt.method == r.Method {
			return rt, params, nil
		}
	}
	if pathMatched {
		return route{}, nil, newError(http.StatusMethodNotAllowed, "UnsupportedHttpVerb",
			"The resource doesn't support the specified HTTP verb.").with("HttpVerb", r.Method)
	}
	return route{}, nil, newError(http.StatusNotFound, "ResourceNotFound",
		"The specified resource does not exist.").with("Path", r.URL.Path)
}

func matchRoute(pattern, segs []string) (map[string]string, bool) {
	params := map[string]string{}
	for i, p := range pattern {
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "...}") {
			if i >= len(segs) {
				return nil, false
			}
			params[p[1:len(p)-4]] = strings.Join(segs[i:], "/")
			return params, true
		}
		if i >= len(segs) {
			return nil, false
		}
		if strings.HasPrefix(p, "{") {
			if segs[i] == "" {
				return nil, false
			}
			params[p[1:len(p)-1]] = segs[i]
			continue
		}
		if p != segs[i] {
			return nil, false
		}
	}
	return params, len(segs) == len(pattern)
}

// Conditional requests (If-Match, If-None-Match, If-Modified-Since,
// If-Unmodified-Since), as Batch honours them on jobs and tasks.
func conditions(c *call, etag string, modified *Time, read bool) *apiError {
	h := c.r.Header
	failed := func() *apiError {
		if read {
			return &apiError{status: http.StatusNotModified, code: "ConditionNotMet"}
		}
		return newError(http.StatusPreconditionFailed, "ConditionNotMet",
			"The condition specified using HTTP conditional header(s) is not met.")
	}
	if m := h.Get("If-Match"); m != "" && m != "*" && m != etag {
		return newError(http.StatusPreconditionFailed, "ConditionNotMet",
			"The condition specified using HTTP conditional header(s) is not met.")
	}
	if m := h.Get("If-None-Match"); m != "" && (m == "*" || m == etag) {
		return failed()
	}
	if modified != nil {
		lm := modified.Truncate(time.Second)
		if v := h.Get("If-Modified-Since"); v != "" {
			if t, err := http.ParseTime(v); err == nil && !lm.After(t) {
				return failed()
			}
		}
		if v := h.Get("If-Unmodified-Since"); v != "" {
			if t, err := http.ParseTime(v); err == nil && lm.After(t) {
				return newError(http.StatusPreconditionFailed, "ConditionNotMet",
					"The condition specified using HTTP conditional header(s) is not met.")
			}
		}
	}
	return nil
}

// entityHeaders are the ETag and Last-Modified of a response.
func entityHeaders(r *response, etag string, modified *Time) *response {
	if etag != "" {
		r.set("ETag", etag)
	}
	if modified != nil {
		r.set("Last-Modified", modified.UTC().Format(http.TimeFormat))
	}
	return r
}

// created is the 201 of an add: DataServiceId and Location name the new
// resource.
func created(u, etag string, modified *Time) *response {
	r := entityHeaders(reply(http.StatusCreated, nil), etag, modified)
	r.set("DataServiceId", u)
	r.set("Location", u)
	return r
}

// unlockCommit writes what the request changed to the journal, then
// releases the lock, so a request is answered only once its effect is
// recorded.
func (s *Server) unlockCommit() {
	s.commitLocked()
	s.mu.Unlock()
}
