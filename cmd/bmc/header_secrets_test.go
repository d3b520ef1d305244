package main

import (
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCallbackKeysKeptNowhere: a key the callback sends in a credential
// header (X-Api-Key) or in a ?code= query parameter, as an Azure Function
// takes it, reaches the receiver and is kept nowhere in the run directory
// or bmc's messages; a resume then needs the header's param again, and
// sends the callback with it.
func TestCallbackKeysKeptNowhere(t *testing.T) {
	hook := newHookEndpoint(t)
	hook.answer(http.StatusBadRequest)
	dir := t.TempDir()
	state, spec := filepath.Join(dir, "state"), filepath.Join(dir, "keys.yaml")
	const src = `apiVersion: bmc/v1
kind: Workload
name: keys
params:
  hook: {}
  hookKey: {}
  code: {}
  team: {default: genomics}
tasks:
  - {id: work, run: "true", env: {API_KEY: "${{ params.hookKey }}"}}
finalize:
  callback:
    url: "${{ params.hook }}/hook?code=${{ params.code }}"
    headers: {X-Api-Key: "${{ params.hookKey }}", X-Team: "${{ params.team }}"}
    retries: 0
`
	if err := os.WriteFile(spec, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := bmcRun(t, "run", "--state-dir", state, "--progress", "plain", "--set", "hook="+hook.srv.URL, "--set", "hookKey=APIKEY123", "--set", "code=FUNCKEY1", spec)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (the receiver answered 400)\n%s", code, stderr)
	}
	calls := hook.received()
	if len(calls) != 1 || calls[0].header.Get("X-Api-Key") != "APIKEY123" || calls[0].query != "code=FUNCKEY1" {
		t.Fatalf("callbacks %+v: want one with the key and the code", calls)
	}
	for _, secret := range []string{"APIKEY123", "FUNCKEY1"} {
		if strings.Contains(stdout+stderr, secret) {
			t.Errorf("bmc's output shows %s:\n%s%s", secret, stdout, stderr)
		}
		err := filepath.WalkDir(state, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err == nil && strings.Contains(string(b), secret) {
				t.Errorf("%s keeps %s:\n%s", path, secret, b)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, out, _ := bmcRun(t, "compile", "--set", "hook=https://h.example", "--set", "hookKey=APIKEY123", "--set", "code=FUNCKEY1", spec); !strings.Contains(out, `"hookKey": "REDACTED"`) ||
		strings.Contains(out, "APIKEY123") || strings.Contains(out, "FUNCKEY1") {
		t.Errorf("bmc compile shows a key:\n%s", out)
	}
	want := "bmc resume " + (&callbackFixture{state: state}).runID(t) + " --set code=… --set hookKey=… "
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr does not say to give the key again (%q):\n%s", want, stderr)
	}

	// The key is needed again, and the callback goes out with it.
	code, _, stderr = bmcRun(t, "resume", "latest", "--state-dir", state)
	if code != 1 || !strings.Contains(stderr, "give --set code=… --set hookKey=… again") {
		t.Fatalf("resume without the key: exit %d\n%s", code, stderr)
	}
	hook.answer(http.StatusOK)
	code, _, stderr = bmcRun(t, "resume", "latest", "--state-dir", state, "--set", "hookKey=APIKEY456", "--set", "code=FUNCKEY1")
	calls = hook.received()
	if code != 0 || len(calls) != 2 || calls[1].header.Get("X-Api-Key") != "APIKEY456" || calls[1].header.Get("X-Team") != "genomics" {
		t.Fatalf("resume with the key: exit %d, callbacks %+v\n%s", code, calls, stderr)
	}
}

// TestSecretParamsAsWritten: a key given as a number is kept nowhere
// either; names that only look like headers' (a map param's sort-key, a
// label's partition-key) are not secrets, and such a run resumes as it
// is.
func TestSecretParamsAsWritten(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "w.yaml")
	const src = `apiVersion: bmc/v1
kind: Workload
name: w
labels: {partition-key: p1}
params:
  fkey: {}
  cfg: {default: {sort-key: name}}
tasks:
  - {id: t1, run: 'echo "by ${{ params.cfg.sort-key }}"; test -e "$WORK_OK"'}
finalize:
  callback: {url: "https://h.example/hook", headers: {x-functions-key: "${{ params.fkey }}"}}
`
	if err := os.WriteFile(spec, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	_, out, serr := bmcRun(t, "compile", "--set", "fkey=884422119933", "--set", `cfg={"sort-key": "date"}`, spec)
	if strings.Contains(out, "884422119933") || !strings.Contains(out, `"sort-key": "date"`) || !strings.Contains(out, `"partition-key": "p1"`) {
		t.Errorf("bmc compile:\n%s%s", out, serr)
	}
}
