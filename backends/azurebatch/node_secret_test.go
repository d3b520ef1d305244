package azurebatch

// The run record the job manager task reads stays in the staging
// container, which every task on the pool can read, after the run: it
// holds none of the callback's secrets, which the task gets in its
// environment, as it gets the callback's secretEnv.

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/emulator"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/internal/azurite"
	"github.com/bmc-dev/bmc/internal/blobstage"
	"github.com/bmc-dev/bmc/planner"
)

// TestMain lets this test binary, staged for the pool as bmc, be the job
// manager task's bmc finalize --watch.
func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == "bmc" {
		os.Exit(finalizeMain(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// finalizeMain is bmc finalize --watch --config FILE, as cmd/bmc runs it.
func finalizeMain(args []string) int {
	if len(args) != 4 || args[0] != "finalize" || args[1] != "--watch" || args[2] != "--config" {
		fmt.Fprintf(os.Stderr, "bmc (test): unexpected arguments %q\n", args)
		return 2
	}
	b, err := os.ReadFile(args[3])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	var cfg NodeConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	c, err := NodeClient(cfg.Identity, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	wd := os.Getenv("AZ_BATCH_TASK_WORKING_DIR")
	var secret []byte
	if cfg.SecretEnv != "" {
		secret = []byte(os.Getenv(cfg.SecretEnv))
	}
	cbURL := ""
	if cb := cfg.Program.Finalize.Callback; cb != nil && cb.URLEnv != "" {
		cbURL = os.Getenv(cb.URLEnv)
	}
	if _, err := RunNode(context.Background(), NodeRun{Config: &cfg, Client: c, WorkDir: wd, TaskDir: os.Getenv("AZ_BATCH_TASK_DIR"), Secret: secret, CallbackURL: cbURL}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	return 0
}

// hookCall is a callback received.
type hookCall struct {
	url    string
	header http.Header
	body   []byte
}

func TestNodeRecordKeepsNoSecret(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Azurite")
	}
	const (
		identity = "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/bmc"
		bearer   = "tok-SECRET-1"
		password = "pw-SECRET-2"
		sig      = "sig-SECRET-3"
		secret   = "hmac-SECRET-4"
		apiKey   = "key-SECRET-5"
	)
	cs := azurite.Start(t)
	e := newEmu(t, emulator.Options{StorageConnectionString: cs, PoolIdentity: identity})
	e.pool(t, "p", 1, 4)
	st, err := StorageFromConnectionString(cs, StorageOptions{Identity: identity})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		calls []hookCall
	)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		calls = append(calls, hookCall{url: r.URL.String(), header: r.Header.Clone(), body: b})
		mu.Unlock()
	}))
	t.Cleanup(hook.Close)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "bmc")
	if err := copyFile(exe, bin); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(bin, 0o755); err != nil {
		t.Fatal(err)
	}

	hookURL := strings.Replace(hook.URL, "http://", "http://bmc:"+password+"@", 1) + "/hook?sig=" + sig + "&run=${{ run.id }}"
	prog := &compiler.Program{APIVersion: "bmc/v1", Name: "secrets", Pool: &compiler.Pool{ID: "p"},
		Tasks: []compiler.Task{{ID: "a", Run: "true", Slots: 1}},
		Finalize: compiler.Finalize{ID: compiler.FinalizeID,
			// The step sees none of the callback's secrets.
			Run: "! env | grep -q SECRET",
			Callback: &compiler.Callback{URL: hookURL, SecretEnv: "BMC_CALLBACK_SECRET", Timeout: compiler.Duration(20 * time.Second), Retries: 2,
				Headers: map[string]string{"Authorization": "Bearer " + bearer, "X-Api-Key": apiKey, "X-Run": "run ${{ run.id }}"}}}}
	plan := planner.New(prog, Capabilities(prog.Pool), nil)
	run := &executor.RunInfo{ID: "secrets-run", Workload: prog.Name, Dir: t.TempDir(), Started: time.Now()}
	staging := blobstage.Location{Container: "bmc"}
	be := NewBackend(BackendOptions{Client: e.c, Storage: st, Staging: staging,
		Node: &NodeOptions{Binary: bin, SecretEnv: "BMC_CALLBACK_SECRET", Secret: secret, PollInterval: 20 * time.Millisecond}})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if _, err := executor.RunNative(ctx, plan, be, run, nil, executor.NativeOptions{PollInterval: 20 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if _, err := WaitJobDone(ctx, e.c, run.ID, 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}

	// The record holds no secret.
	rec, err := st.Get(ctx, staging.Join("runs/"+run.ID+"/"+NodeConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{bearer, password, sig, secret, apiKey} {
		if strings.Contains(string(rec), s) {
			t.Errorf("the run record holds %s:\n%s", s, rec)
		}
	}

	var cfg NodeConfig
	if err := json.Unmarshal(rec, &cfg); err != nil {
		t.Fatal(err)
	}
	if cb := cfg.Program.Finalize.Callback; cb == nil || cb.URL != hook.URL+"/hook" || cb.Headers["X-Api-Key"] != "REDACTED" {
		t.Errorf("the run record's callback: %+v", cb)
	}

	// The callback from the pool went where the spec says, as it says.
	nr, err := ReadNodeResult(ctx, e.c, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if nr.Callback == nil || !nr.Callback.Delivered || nr.Finalize == nil || nr.Finalize.State != executor.Succeeded {
		t.Fatalf("the finalize step on the pool: %+v", nr)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 1 {
		t.Fatalf("%d callbacks, want 1", len(calls))
	}
	c := calls[0]
	if want := "/hook?sig=" + sig + "&run=" + run.ID; c.url != want {
		t.Errorf("callback to %s, want %s", c.url, want)
	}
	for k, want := range map[string]string{"Authorization": "Bearer " + bearer, "X-Api-Key": apiKey, "X-Run": "run " + run.ID} {
		if got := c.header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(c.body)
	if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); c.header.Get("X-Bmc-Signature") != want {
		t.Errorf("X-Bmc-Signature %q, want %q", c.header.Get("X-Bmc-Signature"), want)
	}
}

// TestNodeCallbackRestore: the program keeps its callback when the record
// is made; a node without the variable holding it follows the run and
// finalizes it, sends nothing, and reports the callback not delivered,
// saying why, in the result the client reads.
func TestNodeCallbackRestore(t *testing.T) {
	var called atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called.Add(1) }))
	t.Cleanup(hook.Close)
	raw := strings.Replace(hook.URL, "http://", "http://u:p@", 1) + "/h?sig=s#f"
	cb := &compiler.Callback{URL: raw, Timeout: compiler.Duration(5 * time.Second), Headers: map[string]string{"Authorization": "Bearer t"}}
	e := newEmu(t, emulator.Options{Instant: true})
	e.pool(t, "p", 1, 4)
	prog := fanIn(2)
	prog.Name = "cb"
	prog.Finalize = compiler.Finalize{ID: compiler.FinalizeID, Callback: cb}
	runPlan(t, e, prog, BackendOptions{}, executor.NativeOptions{})

	np, nc := nodeProgram(prog)
	if prog.Finalize.Callback != cb || cb.URL != raw || cb.Headers["Authorization"] != "Bearer t" {
		t.Errorf("the program was changed: %+v", cb)
	}
	if got := np.Finalize.Callback; got.URL != hook.URL+"/h" || got.Headers["Authorization"] != "REDACTED" {
		t.Errorf("the record's callback: %+v", got)
	}
	if nc == nil || nc.URL != raw || nc.Headers["Authorization"] != "Bearer t" {
		t.Errorf("the callback apart: %+v", nc)
	}

	wd := t.TempDir()
	const name = "BMC_TEST_CALLBACK_UNSET"
	t.Setenv(name, "")
	nr, err := RunNode(t.Context(), NodeRun{Config: &NodeConfig{RunID: "cb-run", Workload: "cb", Program: np, CallbackEnv: name,
		PollInterval: compiler.Duration(20 * time.Millisecond)}, Client: e.c, WorkDir: wd, TaskDir: wd})
	if err != nil {
		t.Fatal(err)
	}
	if nr.Status != executor.CallbackSucceeded || nr.Callback == nil || nr.Callback.Delivered || nr.Result().CallbackErr == nil ||
		!strings.Contains(nr.Callback.Err, "$"+name+", which is not set") {
		t.Errorf("result %+v, callback %+v", nr, nr.Callback)
	}
	b, err := os.ReadFile(filepath.Join(wd, NodeResultFile))
	if err != nil || !strings.Contains(string(b), "which is not set") {
		t.Errorf("result %s, %v", b, err)
	}
	hook.Close()
	if n := called.Load(); n != 0 {
		t.Errorf("%d callbacks sent", n)
	}
}

// TestNodeProgramHeaderKeyParam: a param the callback sends in a key's
// header is not in the record every task on the pool can read.
func TestNodeProgramHeaderKeyParam(t *testing.T) {
	prog := fanIn(1)
	prog.Params = map[string]any{"k": "KEY12345", "team": "t"}
	prog.Finalize = compiler.Finalize{ID: compiler.FinalizeID, Callback: &compiler.Callback{URL: "https://h.example/x",
		Headers: map[string]string{"X-Api-Key": "KEY12345", "X-Team": "t"}}}
	np, nc := nodeProgram(prog)
	b, err := json.Marshal(np)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "KEY12345") || np.Params["team"] != "t" {
		t.Errorf("the record: %s", b)
	}
	if prog.Params["k"] != "KEY12345" || nc == nil || nc.Headers["X-Api-Key"] != "KEY12345" {
		t.Errorf("the program was changed (%v), or the callback apart lacks the key: %+v", prog.Params, nc)
	}
}
