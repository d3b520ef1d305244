package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestRv8ValidateFollowsFolderLinks validates a folder through a symbolic
// link to it, and a folder holding a link to another folder: both are
// walked, so an invalid spec behind a link fails. A link back up the tree
// is walked once, not forever, and hidden folders are left out, linked
// or not.
func TestRv8ValidateFollowsFolderLinks(t *testing.T) {
	dir := t.TempDir()
	mk := func(name, src string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, name string) {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Skip("no symbolic links here:", err)
		}
	}
	const ok = "apiVersion: bmc/v1\nkind: Workload\nname: ok\ntasks:\n  - {id: a, run: echo}\n"
	const bad = "apiVersion: bmc/v1\nkind: Workload\nname: bad\ntasks:\n  - {id: a, run: echo, timout: 1h}\n"
	mk("ws/hello.yaml", ok)
	mk("ws/.hidden/h.yaml", bad)
	mk("other/sub/bad.yaml", bad)
	link("ws", "wslink")
	link("../other/sub", "ws/linked")
	link("..", "ws/up")                    // loops back to dir
	link("../other/sub", "ws/.hiddenlink") // hidden: left out

	got, diags := specFiles([]string{filepath.Join(dir, "wslink")})
	if len(diags) > 0 {
		t.Errorf("diagnostics: %v", diags)
	}
	for i := range got {
		got[i], _ = filepath.Rel(dir, got[i])
	}
	// up reaches dir, and from it other/sub again and ws again: each
	// real folder is walked once.
	want := []string{"wslink/hello.yaml", "wslink/linked/bad.yaml"}
	if !slices.Equal(got, want) {
		t.Errorf("files %q, want %q", got, want)
	}

	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"validate", filepath.Join(dir, "ws")}, strings.NewReader(""), &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), filepath.Join("linked", "bad.yaml")) {
		t.Errorf("exit %d, want 1 naming linked/bad.yaml; stderr:\n%s", code, stderr.String())
	}
}
