package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/internal/azurite"
)

// The plan's storage line says where az:// locations would go, and how
// bmc would sign in there, without a request and without a secret.
func TestSpPlanStorageLine(t *testing.T) {
	// Every connection to the account is counted: the plan makes none.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			c.Close()
		}
	})
	defer func() { l.Close(); wg.Wait() }()
	endpoint := "http://" + l.Addr().String() + "/" + azurite.Account

	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	prog := spCompile(t, spStoreSpec(t, filepath.Join(dir, "ran"), ""))
	plain := spCompile(t, spWriteSpec(t, "apiVersion: bmc/v1\nkind: Workload\nname: sp-plain\ntasks:\n  - {id: a, run: 'true'}\n"))
	withURL := spCompile(t, spWriteSpec(t, "apiVersion: bmc/v1\nkind: Workload\nname: sp-url\nstorage: {backend: azure, accountUrl: 'https://specacct.blob.core.windows.net'}\ntasks:\n  - id: a\n    run: 'true'\n    outputs: [{path: x, to: 'az://spout/x'}]\n"))
	localStore := filepath.Join(state, "storage")

	for _, tc := range []struct {
		name string
		prog *compiler.Program
		env  map[string]string
		want string
	}{
		{"nothing configured", prog, nil, "the local folder store " + localStore},
		{"no az:// locations", plain, nil, "the local folder store " + localStore + " (not used: the workload has no az:// locations)"},
		{"connection string", prog, map[string]string{"AZURE_STORAGE_CONNECTION_STRING": azurite.ConnString(endpoint)},
			endpoint + " (from AZURE_STORAGE_CONNECTION_STRING, account key; checked when the run starts)"},
		{"account name only", prog, map[string]string{"AZURE_STORAGE_ACCOUNT": "foo"},
			"https://foo.blob.core.windows.net (from AZURE_STORAGE_ACCOUNT, Entra ID; checked when the run starts)"},
		{"sas", prog, map[string]string{"AZURE_STORAGE_ACCOUNT_URL": endpoint, "AZURE_STORAGE_SAS_TOKEN": "sv=2024-01-01&sp=rw&sig=TOPSECRET"},
			endpoint + " (from AZURE_STORAGE_ACCOUNT_URL, SAS; checked when the run starts)"},
		{"account, no az:// locations", plain, map[string]string{"AZURE_STORAGE_CONNECTION_STRING": azurite.ConnString(endpoint)},
			endpoint + " (from AZURE_STORAGE_CONNECTION_STRING, account key; not used: the workload has no az:// locations)"},
		{"spec's account", withURL, map[string]string{"AZURE_STORAGE_ACCOUNT": "specacct", "AZURE_STORAGE_KEY": azurite.Key},
			"https://specacct.blob.core.windows.net (from the spec's storage.accountUrl, account key; checked when the run starts)"},
		{"http account with no key", prog, map[string]string{"AZURE_STORAGE_ACCOUNT_URL": endpoint},
			"storage: open storage account " + endpoint + ": no AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN for it, and Entra ID needs https: set one, or AZURE_STORAGE_CONNECTION_STRING: bmc run refuses to start"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spStorageEnv(t, tc.env)
			var b bytes.Buffer
			printStorage(&b, tc.prog, state, "")
			got := b.String()
			if want := "  storage:       " + tc.want + "\n"; got != want {
				t.Errorf("got  %q\nwant %q", got, want)
			}
			if strings.Contains(got, "TOPSECRET") || strings.Contains(got, azurite.Key) {
				t.Errorf("the line shows a secret: %s", got)
			}
		})
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("the plan made %d connections to the account", n)
	}

	// With --run, the store the run keeps its files in.
	spStorageEnv(t, nil)
	code, stdout, stderr := bmcRun(t, "run", "--state-dir", state, "--progress", "none", spStoreSpec(t, filepath.Join(dir, "ran"), ""))
	if code != exitOK {
		t.Fatalf("run: exit %d:\n%s", code, stderr)
	}
	spStorageEnv(t, map[string]string{"AZURE_STORAGE_CONNECTION_STRING": azurite.ConnString(endpoint)})
	var b bytes.Buffer
	printStorage(&b, prog, state, strings.TrimSpace(stdout))
	if want := "  storage:       the local folder store " + localStore + " (the run's, which bmc resume keeps)\n"; b.String() != want {
		t.Errorf("plan --run: got %q, want %q", b.String(), want)
	}
}

func spCompile(t *testing.T, file string) *compiler.Program {
	t.Helper()
	prog, _, err := compiler.CompileFile(file, compiler.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return prog
}

func spWriteSpec(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "spec.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
