package emulator

import (
	"bufio"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestListenAndServe runs the emulator as `bmc emulator` does and uses the
// variables it announces, as a user pasting them into a shell would.
func TestListenAndServe(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- ListenAndServe(ctx, "127.0.0.1:0", Options{Account: "mybatch", Instant: true}, pw)
		pw.Close()
	}()
	vars := map[string]string{}
	sc := bufio.NewScanner(pr)
	for len(vars) < 3 && sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			t.Fatalf("announced %q", sc.Text())
		}
		vars[k] = v
	}
	go io.Copy(io.Discard, pr)
	if !strings.HasPrefix(vars["AZURE_BATCH_ENDPOINT"], "http://127.0.0.1:") || vars["AZURE_BATCH_ACCOUNT"] != "mybatch" {
		t.Fatalf("announced %v", vars)
	}
	key, err := base64.StdEncoding.DecodeString(vars["AZURE_BATCH_ACCESS_KEY"])
	if err != nil {
		t.Fatal(err)
	}
	c := &client{t: t, base: vars["AZURE_BATCH_ENDPOINT"], account: vars["AZURE_BATCH_ACCOUNT"], key: key, hc: http.DefaultClient, spec: loadSpec(t)}
	c.must(201, "POST", "/pools", poolBody("p", 1, 1))
	c.must(201, "POST", "/jobs", jobBody("j", "p", nil))
	c.must(201, "POST", "/jobs/j/tasks", taskBody("t", "true", nil))
	if tk := decode[Task](t, c.must(200, "GET", "/jobs/j/tasks/t", nil)); tk.State != TaskCompleted ||
		!strings.HasPrefix(tk.URL, vars["AZURE_BATCH_ENDPOINT"]+"/jobs/j/tasks/t") {
		t.Errorf("task %s at %s", tk.State, tk.URL)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("ListenAndServe: %v", err)
	}
	if _, err := http.Get(vars["AZURE_BATCH_ENDPOINT"]); err == nil {
		t.Error("still serving after the context ended")
	}
}
