package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestResumeSetNumbers: a run that kept no secrets, with numbers given by
// --set in forms JSON does not write (.0000001, +1234567.5), is compiled
// again to the same program on resume.
func TestResumeSetNumbers(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "n.yaml")
	ok := filepath.Join(dir, "ok")
	os.WriteFile(spec, []byte(`apiVersion: bmc/v1
kind: Workload
name: n
params:
  url: {}
  x: {}
  y: {}
tasks:
  - id: t
    command: [bash, -c, 'test -e `+ok+` && echo "$0 $1"', "${{ params.x }}", "${{ params.y }}"]
    env: {URL: "${{ params.url }}"}
`), 0o644)
	state := filepath.Join(dir, "state")
	url := "url=https://example.org/b?sv=2&sig=SECRET0sig"
	code, _, serr := bmcRun(t, "run", "--state-dir", state, "--progress", "none", "--set", url, "--set", "x=.0000001", "--set", "y=+1234567.5", spec)
	if code != exitFailed {
		t.Fatalf("run: exit %d\n%s", code, serr)
	}
	os.WriteFile(ok, nil, 0o644)
	code, _, serr = bmcRun(t, "resume", "--state-dir", state, "--set", url, "latest")
	if code != 0 {
		t.Fatalf("resume: exit %d\n%s", code, serr)
	}
	_, out, _ := bmcRun(t, "logs", "--state-dir", state, "latest", "t")
	if strings.TrimSpace(out) != "1e-7 1234567.5" {
		t.Errorf("the task saw %q", out)
	}
}
