package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"

	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/internal/azurite"
	"github.com/bmc-dev/bmc/internal/blobstage"
)

// The blob account a run's az:// locations go to is checked before any
// task runs: one that cannot be reached, or that refuses bmc's
// credentials, stops bmc run and bmc resume with one line naming the
// account, rather than after the tasks, at upload.

// spStoreSpec is a one-task workload whose task leaves a line in marker
// each time it runs and uploads one output to az://spout/.
func spStoreSpec(t *testing.T, marker, extra string) string {
	t.Helper()
	spec := filepath.Join(t.TempDir(), "store.yaml")
	body := `apiVersion: bmc/v1
kind: Workload
name: sp-store
tasks:
  - id: make
    run: |
      echo ran >> '` + marker + `'
      ` + extra + `
      echo hi > out.txt
    outputs:
      - {path: out.txt, to: "az://spout/${{ run.id }}/"}
`
	if err := os.WriteFile(spec, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return spec
}

// spStorageEnv sets the blob account variables bmc reads, the others
// cleared: the environment running the tests may set some.
func spStorageEnv(t *testing.T, env map[string]string) {
	for _, k := range []string{"AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT_URL", "AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN"} {
		t.Setenv(k, env[k])
	}
}

// spClosedPort is a loopback address nothing listens on.
func spClosedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func spRuns(t *testing.T, state string) []string {
	t.Helper()
	ids, err := executor.ListRunIDs(state)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return ids
}

func spRan(t *testing.T, marker string) int {
	t.Helper()
	b, err := os.ReadFile(marker)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "ran\n")
}

func TestSpStorageUnreachableStopsRun(t *testing.T) {
	dir := t.TempDir()
	marker, state := filepath.Join(dir, "ran"), filepath.Join(dir, "state")
	endpoint := "http://" + spClosedPort(t) + "/" + azurite.Account
	spStorageEnv(t, map[string]string{"AZURE_STORAGE_CONNECTION_STRING": azurite.ConnString(endpoint)})

	code, stdout, stderr := bmcRun(t, "run", "--state-dir", state, "--progress", "plain", spStoreSpec(t, marker, ""))
	t.Logf("stderr:\n%s", stderr)
	if code != exitInternal {
		t.Errorf("exit %d, want %d (a blob account that cannot be reached)", code, exitInternal)
	}
	if n := spRan(t, marker); n != 0 {
		t.Errorf("the task ran %d time(s) before the account was found unreachable", n)
	}
	if ids := spRuns(t, state); len(ids) != 0 {
		t.Errorf("a run was made: %v", ids)
	}
	if stdout != "" {
		t.Errorf("stdout %q: no run id, as no run was made", stdout)
	}
	if !strings.Contains(stderr, endpoint) || !strings.Contains(stderr, "not reachable") {
		t.Errorf("stderr does not say that %s is not reachable:\n%s", endpoint, stderr)
	}
	if strings.Contains(stderr, azurite.Key) || strings.Contains(stderr, "AccountKey") {
		t.Errorf("stderr shows the key:\n%s", stderr)
	}
	if lines := strings.Count(strings.TrimSpace(stderr), "\n"); lines != 0 || strings.Contains(stderr, `\n`) {
		t.Errorf("want one line, got:\n%s", stderr)
	}
}

func TestSpStorageBadKeyStopsRun(t *testing.T) {
	cs := azurite.Start(t)
	key := make([]byte, 64)
	rand.Read(key)
	wrongKey := base64.StdEncoding.EncodeToString(key)
	bad := strings.Replace(cs, azurite.Key, wrongKey, 1)
	dir := t.TempDir()
	marker, state := filepath.Join(dir, "ran"), filepath.Join(dir, "state")
	spStorageEnv(t, map[string]string{"AZURE_STORAGE_CONNECTION_STRING": bad})

	code, _, stderr := bmcRun(t, "run", "--state-dir", state, "--progress", "plain", spStoreSpec(t, marker, ""))
	t.Logf("stderr:\n%s", stderr)
	// Refused credentials are the configuration's to fix, as on the
	// azurebatch backend: exit 1, not 3 (which says trying again may do).
	if code != exitFailed {
		t.Errorf("exit %d, want %d", code, exitFailed)
	}
	if n := spRan(t, marker); n != 0 {
		t.Errorf("the task ran %d time(s) with a key the account refuses", n)
	}
	if ids := spRuns(t, state); len(ids) != 0 {
		t.Errorf("a run was made: %v", ids)
	}
	if !strings.Contains(stderr, "sign-in refused") || !strings.Contains(stderr, endpointOfCS(cs)) {
		t.Errorf("stderr does not say the account refused the sign-in:\n%s", stderr)
	}
	if strings.Contains(stderr, wrongKey) || strings.Contains(stderr, azurite.Key) || strings.Contains(stderr, "AccountKey") {
		t.Errorf("stderr shows a key:\n%s", stderr)
	}
}

func TestSpStorageGoodAccountRuns(t *testing.T) {
	cs := azurite.Start(t)
	endpoint := endpointOfCS(cs)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		env  func(t *testing.T) map[string]string
	}{
		// The container does not exist yet: the upload makes it.
		{"connection string", func(t *testing.T) map[string]string {
			return map[string]string{"AZURE_STORAGE_CONNECTION_STRING": cs}
		}},
		// A SAS for the one container, which may not read the
		// container's own properties: the run needs none of that.
		{"container sas", func(t *testing.T) map[string]string {
			cred, err := service.NewSharedKeyCredential(azurite.Account, azurite.Key)
			if err != nil {
				t.Fatal(err)
			}
			svc, err := service.NewClientWithSharedKeyCredential(endpoint, cred, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := svc.NewContainerClient("spout").Create(ctx, nil); err != nil && !strings.Contains(err.Error(), "ContainerAlreadyExists") {
				t.Fatal(err)
			}
			q, err := sas.BlobSignatureValues{
				Protocol: sas.ProtocolHTTPSandHTTP, ExpiryTime: time.Now().Add(time.Hour),
				ContainerName: "spout", Permissions: (&sas.ContainerPermissions{Create: true, Write: true}).String(),
			}.SignWithSharedKey(cred)
			if err != nil {
				t.Fatal(err)
			}
			return map[string]string{"AZURE_STORAGE_ACCOUNT_URL": endpoint, "AZURE_STORAGE_SAS_TOKEN": q.Encode()}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			marker, state := filepath.Join(dir, "ran"), filepath.Join(dir, "state")
			spStorageEnv(t, tc.env(t))
			code, stdout, stderr := bmcRun(t, "run", "--state-dir", state, "--progress", "plain", spStoreSpec(t, marker, ""))
			if code != exitOK {
				t.Fatalf("exit %d:\n%s", code, stderr)
			}
			if n := spRan(t, marker); n != 1 {
				t.Errorf("the task ran %d times, want 1", n)
			}
			store, err := blobstage.NewFromConnectionString(cs, blobstage.Options{})
			if err != nil {
				t.Fatal(err)
			}
			id := strings.TrimSpace(stdout)
			if _, err := store.Download(ctx, blobstage.Location{Container: "spout", Path: id + "/out.txt"}, filepath.Join(dir, "out.txt")); err != nil {
				t.Errorf("the output is not in the account: %v", err)
			}
		})
	}
}

func TestSpStorageResumeRefused(t *testing.T) {
	cs := azurite.Start(t)
	dir := t.TempDir()
	marker, state, flag := filepath.Join(dir, "ran"), filepath.Join(dir, "state"), filepath.Join(dir, "flag")
	spec := spStoreSpec(t, marker, "test -f '"+flag+"' || exit 1")
	spStorageEnv(t, map[string]string{"AZURE_STORAGE_CONNECTION_STRING": cs})
	if code, _, stderr := bmcRun(t, "run", "--state-dir", state, "--progress", "plain", spec); code != exitFailed {
		t.Fatalf("first run: exit %d, want 1:\n%s", code, stderr)
	}
	ids := spRuns(t, state)
	if len(ids) != 1 {
		t.Fatalf("runs: %v", ids)
	}
	started := func() int {
		t.Helper()
		recs, err := executor.ReadJournal(filepath.Join(executor.RunsDir(state), ids[0], executor.JournalFile))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, r := range recs {
			if r.Type == executor.RecordTaskStarted && r.Task == "make" {
				n++
			}
		}
		return n
	}
	before := started()
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	// The same account, with a key it refuses.
	key := make([]byte, 64)
	rand.Read(key)
	spStorageEnv(t, map[string]string{"AZURE_STORAGE_CONNECTION_STRING": strings.Replace(cs, azurite.Key, base64.StdEncoding.EncodeToString(key), 1)})
	code, _, stderr := bmcRun(t, "resume", "--state-dir", state, "--progress", "plain", ids[0])
	t.Logf("stderr:\n%s", stderr)
	if code != exitFailed || !strings.Contains(stderr, "sign-in refused") {
		t.Errorf("resume with a refused key: exit %d, want 1 and the refusal:\n%s", code, stderr)
	}
	if n := started() - before; n != 0 {
		t.Errorf("the journal records %d new start(s) of make", n)
	}
	if n := spRan(t, marker); n != 1 {
		t.Errorf("the task ran %d times, want only the first run's", n)
	}

	// With the account's key, the resume runs it.
	spStorageEnv(t, map[string]string{"AZURE_STORAGE_CONNECTION_STRING": cs})
	if code, _, stderr := bmcRun(t, "resume", "--state-dir", state, "--progress", "plain", ids[0]); code != exitOK {
		t.Fatalf("resume: exit %d:\n%s", code, stderr)
	}
	if n := spRan(t, marker); n != 2 {
		t.Errorf("the task ran %d times, want 2", n)
	}
}

// A run that keeps its az:// locations in the local folder store, or has
// none, makes no request: an unreachable account configured beside it
// does not stop it.
func TestSpStorageNotCheckedWhenUnused(t *testing.T) {
	endpoint := "http://" + spClosedPort(t) + "/" + azurite.Account
	spStorageEnv(t, map[string]string{"AZURE_STORAGE_CONNECTION_STRING": azurite.ConnString(endpoint)})
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	if code, _, stderr := bmcRun(t, "run", "--state-dir", state, "--progress", "plain", "--storage", "local", spStoreSpec(t, filepath.Join(dir, "ran1"), "")); code != exitOK {
		t.Errorf("--storage local: exit %d:\n%s", code, stderr)
	}
	plain := filepath.Join(dir, "plain.yaml")
	if err := os.WriteFile(plain, []byte("apiVersion: bmc/v1\nkind: Workload\nname: sp-plain\ntasks:\n  - {id: a, run: 'true'}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := bmcRun(t, "run", "--state-dir", state, "--progress", "plain", plain); code != exitOK {
		t.Errorf("no az:// locations: exit %d:\n%s", code, stderr)
	}
}

// endpointOfCS is the BlobEndpoint of a connection string.
func endpointOfCS(cs string) string {
	for part := range strings.SplitSeq(cs, ";") {
		if v, ok := strings.CutPrefix(part, "BlobEndpoint="); ok {
			return strings.TrimSuffix(v, "/")
		}
	}
	return ""
}
