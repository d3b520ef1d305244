package blobstage

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/bmc-dev/bmc/internal/testfs"
	"github.com/google/go-cmp/cmp"
)

// The Store behaviour shared with the Azure store is checked by the
// conformance suite (TestLocalStore); these tests cover what is particular
// to the folder store.

// listTree maps every entry under dir, hidden ones included, to its content
// ("/" for directories), so tests also see stray temporary files.
func listTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			out[rel] = "/"
			return nil
		}
		b, err := os.ReadFile(p)
		out[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestLocalLayoutAndURL(t *testing.T) {
	base := t.TempDir()
	t.Chdir(base)
	s := NewLocal("my store") // relative, with a space
	root := filepath.Join(base, "my store")
	if want := "file://" + strings.ReplaceAll(root, " ", "%20"); s.URL() != want {
		t.Errorf("URL() = %q, want %q", s.URL(), want)
	}

	src := t.TempDir()
	testfs.MkFiles(t, src, "out/a.bam", "out/x/b.bam", "log.txt")
	ctx := t.Context()
	if _, err := s.Upload(ctx, src, "out/**/*.bam", Location{"results", "run 1/s1/"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Upload(ctx, src, "log.txt", Location{"logs", "run1/task.log"}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"results":                  "/",
		"results/run 1":            "/",
		"results/run 1/s1":         "/",
		"results/run 1/s1/a.bam":   "out/a.bam",
		"results/run 1/s1/x":       "/",
		"results/run 1/s1/x/b.bam": "out/x/b.bam",
		"logs":                     "/",
		"logs/run1":                "/",
		"logs/run1/task.log":       "log.txt",
	}
	if diff := cmp.Diff(want, listTree(t, root)); diff != "" {
		t.Errorf("store layout (-want +got):\n%s", diff)
	}
}

func TestLocalRejectsBadLocations(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	s := NewLocal(root)
	src := t.TempDir()
	testfs.MkFiles(t, src, "a.txt")
	for _, loc := range []Location{
		{"c1", "../../escape.txt"},
		{"c1", "a/../../b"},
		{"c1", "a//b"},
		{"..", "x"},
		{"UPPER", "x"},
		{"a/b", "x"},
		{"", "x"},
	} {
		t.Run(loc.String(), func(t *testing.T) {
			if _, err := s.Upload(t.Context(), src, "a.txt", loc); err == nil {
				t.Errorf("Upload to %s succeeded", loc)
			}
			_, err := s.Download(t.Context(), loc, filepath.Join(t.TempDir(), "x"))
			if err == nil || errors.Is(err, ErrNotFound) {
				t.Errorf("Download from %s: %v, want a validation error", loc, err)
			}
		})
	}
	// Nothing was written anywhere near the store.
	if left := listTree(t, filepath.Dir(root)); len(left) != 0 {
		t.Errorf("files written for invalid locations: %v", left)
	}
}

func TestLocalUploadErrors(t *testing.T) {
	s := NewLocal(t.TempDir())
	src := t.TempDir()
	testfs.MkFiles(t, src, "a", "b")
	ctx := t.Context()
	if _, err := s.Upload(ctx, src, "a", Location{"c01", "x"}); err != nil {
		t.Fatal(err)
	}
	// Blob "x" is a file; a folder store cannot also hold "x/b".
	_, err := s.Upload(ctx, src, "b", Location{"c01", "x/b"})
	if err == nil || !strings.Contains(err.Error(), "az://c01/x/b") {
		t.Errorf("upload below an existing blob: %v, want an error naming az://c01/x/b", err)
	}
	for _, pattern := range []string{"../a", "/etc/passwd", "[a"} {
		if _, err := s.Upload(ctx, src, pattern, Location{"c01", "p/"}); err == nil {
			t.Errorf("Upload with pattern %q succeeded", pattern)
		}
	}
	if _, err := s.Upload(ctx, filepath.Join(src, "missing"), "*", Location{"c01", "p/"}); err == nil {
		t.Error("Upload from a missing directory succeeded")
	}
}

// TestLocalSkipsPartialFiles plants what an interrupted write leaves behind
// and checks that readers never take it for a blob.
func TestLocalSkipsPartialFiles(t *testing.T) {
	root := t.TempDir()
	s := NewLocal(root)
	testfs.MkFiles(t, root, "c01/p/done.txt", "c01/p/"+tempPrefix+"abc", "c01/only/"+tempPrefix+"def")
	ctx := t.Context()

	dst := t.TempDir()
	st, err := s.Download(ctx, Location{"c01", "p/"}, dst)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"done.txt": "c01/p/done.txt"}, listTree(t, dst)); diff != "" || st.Files != 1 {
		t.Errorf("prefix download (%+v) (-want +got):\n%s", st, diff)
	}
	if _, err := s.Download(ctx, Location{"c01", "only/"}, t.TempDir()); !errors.Is(err, ErrNotFound) {
		t.Errorf("prefix holding only a partial file: %v, want ErrNotFound", err)
	}
	if _, err := s.Download(ctx, Location{"c01", "p/" + tempPrefix + "abc"}, filepath.Join(t.TempDir(), "x")); !errors.Is(err, ErrNotFound) {
		t.Errorf("partial file as a blob: %v, want ErrNotFound", err)
	}
}

// TestLocalWritesAreAtomic replaces one blob over and over while readers
// download it: every download must be one complete version, never a mix
// or a prefix, and no temporary file may be left over.
func TestLocalWritesAreAtomic(t *testing.T) {
	root := t.TempDir()
	s := NewLocal(root)
	ctx := t.Context()
	const size = 1 << 20
	versions := [][]byte{bytes.Repeat([]byte("a"), size), bytes.Repeat([]byte("b"), size)}
	srcs := make([]string, len(versions))
	for i, v := range versions {
		srcs[i] = t.TempDir()
		if err := os.WriteFile(filepath.Join(srcs[i], "blob"), v, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	loc := Location{"c01", "hot/blob"}
	if _, err := s.Upload(ctx, srcs[0], "blob", loc); err != nil {
		t.Fatal(err)
	}

	const rounds = 40
	var wg sync.WaitGroup
	errs := make(chan error, 4*rounds)
	for w := range 2 {
		wg.Go(func() {
			for i := range rounds {
				if _, err := s.Upload(ctx, srcs[(i+w)%2], "blob", loc); err != nil {
					errs <- err
				}
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			dir := t.TempDir()
			for range rounds {
				dst := filepath.Join(dir, "got")
				if _, err := s.Download(ctx, loc, dst); err != nil {
					errs <- err
					continue
				}
				b, err := os.ReadFile(dst)
				if err != nil {
					errs <- err
					continue
				}
				if !bytes.Equal(b, versions[0]) && !bytes.Equal(b, versions[1]) {
					errs <- errors.New("download saw a torn blob")
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if diff := cmp.Diff([]string{"blob"}, dirNames(t, filepath.Join(root, "c01", "hot"))); diff != "" {
		t.Errorf("store directory after concurrent writes (-want +got):\n%s", diff)
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestLocalCanceled(t *testing.T) {
	root := t.TempDir()
	s := NewLocal(root)
	src := t.TempDir()
	testfs.MkFiles(t, src, "a.txt", "b/c.txt")
	if _, err := s.Upload(t.Context(), src, "**", Location{"c01", "p/"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()

	if _, err := s.Upload(ctx, src, "a.txt", Location{"c01", "new.txt"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Upload with a done context: %v, want context.Canceled", err)
	}
	if _, err := os.Lstat(filepath.Join(root, "c01", "new.txt")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a cancelled upload left a blob: %v", err)
	}
	for _, loc := range []Location{{"c01", "p/a.txt"}, {"c01", "p/"}} {
		dst := t.TempDir()
		if _, err := s.Download(ctx, loc, filepath.Join(dst, "x")); !errors.Is(err, context.Canceled) {
			t.Errorf("Download %s with a done context: %v, want context.Canceled", loc, err)
		}
		// The prefix download may create the folder it was writing into,
		// but never a file.
		for name, content := range listTree(t, dst) {
			if content != "/" {
				t.Errorf("a cancelled download left %s", name)
			}
		}
	}
}

func TestLocalDownloadOverwrites(t *testing.T) {
	s := NewLocal(t.TempDir())
	src := t.TempDir()
	testfs.MkFiles(t, src, "p/a.txt", "p/sub/b.txt")
	ctx := t.Context()
	if _, err := s.Upload(ctx, src, "p/**", Location{"c01", "x/"}); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	testfs.MkFiles(t, dst, "a.txt", "keep.txt")
	if err := os.WriteFile(filepath.Join(dst, "a.txt"), []byte("old content that is longer"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Download(ctx, Location{"c01", "x/"}, dst); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a.txt": "p/a.txt", "keep.txt": "keep.txt", "sub": "/", "sub/b.txt": "p/sub/b.txt"}
	if diff := cmp.Diff(want, listTree(t, dst)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// A single blob onto an existing directory fails rather than
	// replacing the directory.
	if _, err := s.Download(ctx, Location{"c01", "x/a.txt"}, filepath.Join(dst, "sub")); err == nil {
		t.Error("download onto a directory succeeded")
	}
}
