package blobstage

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// TestDownloadsAreExecutable: a downloaded file can be run, as one Batch
// downloads for a task can; an uploaded one keeps the usual mode.
func TestDownloadsAreExecutable(t *testing.T) {
	dir := t.TempDir()
	store := NewLocal(filepath.Join(dir, "store"))
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "run.sh"), []byte("#!/bin/sh\necho hi\n"), 0o644)
	to, _ := ParseURL("az://cont/p/")
	if _, err := store.Upload(t.Context(), src, "*", to); err != nil {
		t.Fatal(err)
	}
	blob, _ := ParseURL("az://cont/p/run.sh")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("#!/bin/sh\n")) }))
	defer srv.Close()
	one, prefix, fetched := filepath.Join(dir, "one.sh"), filepath.Join(dir, "prefix"), filepath.Join(dir, "fetched.sh")
	if _, err := store.Download(t.Context(), blob, one); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Download(t.Context(), to, prefix); err != nil {
		t.Fatal(err)
	}
	if _, err := FetchHTTP(t.Context(), srv.Client(), srv.URL+"/s.sh", fetched); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{one, filepath.Join(prefix, "run.sh"), fetched} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm()&0o100 == 0 {
			t.Errorf("%s: mode %v (%v), want executable", p, fi.Mode(), err)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "store", "cont", "p", "run.sh")); err != nil || fi.Mode().Perm()&0o111 != 0 {
		t.Errorf("uploaded blob: mode %v (%v), want not executable", fi.Mode(), err)
	}
}
