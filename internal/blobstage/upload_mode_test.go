package blobstage

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestUploadKeepsMode: a blob in the local store has its file's
// permissions, so that a private output (a key, 0600) stays private in
// .bmc/storage; the owner can always read and replace it. A download
// from the store is made executable whatever the blob's mode, as Batch
// makes the files it downloads for a task.
func TestUploadKeepsMode(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := t.TempDir()
	store := NewLocal(filepath.Join(dir, "store"))
	src := filepath.Join(dir, "src")
	modes := map[string]fs.FileMode{
		"key.pem":   0o600,
		"group.txt": 0o640,
		"plain.txt": 0o644,
		"run.sh":    0o755,
		"ro.txt":    0o444,
	}
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, mode := range modes {
		p := filepath.Join(src, name)
		if err := os.WriteFile(p, []byte(name), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	to, _ := ParseURL("az://cont/p/")
	if _, err := store.Upload(t.Context(), src, "*", to); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Upload(t.Context(), src, "key.pem", Location{Container: "cont", Path: "one.pem"}); err != nil {
		t.Fatal(err)
	}
	want := map[string]fs.FileMode{"p/key.pem": 0o600, "p/group.txt": 0o640, "p/plain.txt": 0o644, "p/run.sh": 0o755, "p/ro.txt": 0o644, "one.pem": 0o600}
	for blob, mode := range want {
		fi, err := os.Stat(filepath.Join(dir, "store", "cont", filepath.FromSlash(blob)))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != mode {
			t.Errorf("blob %s: mode %v, want %v", blob, got, mode)
		}
	}

	blob, _ := ParseURL("az://cont/one.pem")
	one, prefix := filepath.Join(dir, "down", "key.pem"), filepath.Join(dir, "prefix")
	if _, err := store.Download(t.Context(), blob, one); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Download(t.Context(), to, prefix); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{one, filepath.Join(prefix, "key.pem"), filepath.Join(prefix, "plain.txt")} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: mode %v (%v), want 0755: downloadPerm less the umask", p, fi.Mode(), err)
		}
	}
}
