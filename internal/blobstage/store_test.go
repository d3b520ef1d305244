package blobstage

import (
	"bufio"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/google/go-cmp/cmp"

	"github.com/bmc-dev/bmc/internal/azurite"
)

func TestLocalStore(t *testing.T) {
	testStore(t, func(t *testing.T) Store { return NewLocal(t.TempDir()) })
}

func TestAzureStore(t *testing.T) {
	cs := azurite.Start(t)
	testStore(t, func(t *testing.T) Store { return openAzurite(t, cs, Options{}) })
}

func openAzurite(t testing.TB, cs string, opt Options) *Azure {
	t.Helper()
	a, err := NewFromConnectionString(cs, opt)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

var containerSeq atomic.Int64

// newContainer names a container no other test uses: stores may share one
// account.
func newContainer(t testing.TB) string {
	var b [3]byte
	rand.Read(b[:])
	return fmt.Sprintf("t%d-%x", containerSeq.Add(1), b)
}

// writeTree creates files (slash-separated paths → content) under dir.
func writeTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// readTree is every regular file under dir, by slash-separated path.
func readTree(t testing.TB, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// testStore is the conformance suite every Store passes.
func testStore(t *testing.T, newStore func(t *testing.T) Store) {
	t.Run("single blob", func(t *testing.T) {
		s, ctx, c := newStore(t), t.Context(), newContainer(t)
		src := t.TempDir()
		writeTree(t, src, map[string]string{"s1.fq": "ACGT\nTTGA\n", "other.fq": "no"})
		loc := Location{c, "raw/s1.fq"}
		st, err := s.Upload(ctx, src, "s1.fq", loc)
		if err != nil {
			t.Fatal(err)
		}
		if want := (Stats{Files: 1, Bytes: 10}); st != want {
			t.Errorf("upload stats = %+v, want %+v", st, want)
		}
		// The parent folders of the destination are created.
		dst := filepath.Join(t.TempDir(), "work", "sub", "in.fq")
		st, err = s.Download(ctx, loc, dst)
		if err != nil {
			t.Fatal(err)
		}
		if want := (Stats{Files: 1, Bytes: 10}); st != want {
			t.Errorf("download stats = %+v, want %+v", st, want)
		}
		if got := readTree(t, filepath.Dir(dst)); !cmp.Equal(got, map[string]string{"in.fq": "ACGT\nTTGA\n"}) {
			t.Errorf("downloaded %v", got)
		}

		// Uploading again replaces the blob; downloading again replaces the file.
		writeTree(t, src, map[string]string{"s1.fq": "replaced"})
		if _, err := s.Upload(ctx, src, "s1.fq", loc); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Download(ctx, loc, dst); err != nil {
			t.Fatal(err)
		}
		if got := readTree(t, filepath.Dir(dst)); !cmp.Equal(got, map[string]string{"in.fq": "replaced"}) {
			t.Errorf("after overwrite: %v", got)
		}
	})

	t.Run("file into prefix", func(t *testing.T) {
		s, ctx, c := newStore(t), t.Context(), newContainer(t)
		src := t.TempDir()
		writeTree(t, src, map[string]string{"ref.fa": ">chr1\n", "sub/idx.fai": "chr1\t5\n"})
		if _, err := s.Upload(ctx, src, "ref.fa", Location{c, "refs/run1/"}); err != nil {
			t.Fatal(err)
		}
		// A file below a folder lands at its path relative to that folder.
		if _, err := s.Upload(ctx, src, "sub/idx.fai", Location{c, "refs/run1/"}); err != nil {
			t.Fatal(err)
		}
		dst := t.TempDir()
		if _, err := s.Download(ctx, Location{c, "refs/run1/"}, dst); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"ref.fa": ">chr1\n", "idx.fai": "chr1\t5\n"}
		if diff := cmp.Diff(want, readTree(t, dst)); diff != "" {
			t.Errorf("prefix content (-want +got):\n%s", diff)
		}
	})

	t.Run("prefix with nested folders", func(t *testing.T) {
		s, ctx, c := newStore(t), t.Context(), newContainer(t)
		files := map[string]string{
			"a.txt":                    "a",
			"sub/b.txt":                "bb",
			"sub/deep/c.txt":           "ccc",
			"sub/deep/deeper/d.txt":    "dddd",
			"sub/sibling/e.txt":        "eeeee",
			"sub/deep/deeper/last.bin": "\x00\x01\x02",
		}
		src := t.TempDir()
		writeTree(t, src, files)
		st, err := s.Upload(ctx, src, "**/*", Location{c, "run/"})
		if err != nil {
			t.Fatal(err)
		}
		if want := (Stats{Files: 6, Bytes: 18}); st != want {
			t.Errorf("upload stats = %+v, want %+v", st, want)
		}

		dst := t.TempDir()
		st, err = s.Download(ctx, Location{c, "run/"}, dst)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(files, readTree(t, dst)); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
		if want := (Stats{Files: 6, Bytes: 18}); st != want {
			t.Errorf("download stats = %+v, want %+v", st, want)
		}

		dst = t.TempDir()
		if _, err := s.Download(ctx, Location{c, "run/sub/deep/"}, dst); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"c.txt": "ccc", "deeper/d.txt": "dddd", "deeper/last.bin": "\x00\x01\x02"}
		if diff := cmp.Diff(want, readTree(t, dst)); diff != "" {
			t.Errorf("sub-prefix (-want +got):\n%s", diff)
		}

		// The empty path is the whole container.
		dst = t.TempDir()
		if _, err := s.Download(ctx, Location{c, ""}, dst); err != nil {
			t.Fatal(err)
		}
		if got := readTree(t, dst); len(got) != 6 || got["run/sub/b.txt"] != "bb" {
			t.Errorf("whole container: %v", got)
		}
	})

	t.Run("patterns", func(t *testing.T) {
		s, ctx, c := newStore(t), t.Context(), newContainer(t)
		src := t.TempDir()
		writeTree(t, src, map[string]string{
			"top.bam":          "t",
			"out/b.bam":        "b",
			"out/x/a.bam":      "a",
			"out/x/y/z.bam":    "z",
			"out/x/skip.txt":   "s",
			"out/bb.bam":       "bb",
			"other/d.bam":      "d",
			"other/d.bam.bai":  "i",
			"out/x/y/deep.BAM": "upper",
		})
		for _, tc := range []struct {
			pattern string
			want    map[string]string
		}{
			{"out/**/*.bam", map[string]string{"b.bam": "b", "bb.bam": "bb", "x/a.bam": "a", "x/y/z.bam": "z"}},
			{"**/*.bam", map[string]string{"top.bam": "t", "out/b.bam": "b", "out/bb.bam": "bb", "out/x/a.bam": "a", "out/x/y/z.bam": "z", "other/d.bam": "d"}},
			{"out/*.bam", map[string]string{"b.bam": "b", "bb.bam": "bb"}},
			{"out/?.bam", map[string]string{"b.bam": "b"}},
			{"*/d.*", map[string]string{"other/d.bam": "d", "other/d.bam.bai": "i"}},
		} {
			t.Run(tc.pattern, func(t *testing.T) {
				prefix := Location{c, "p" + strconv.Itoa(int(containerSeq.Add(1))) + "/"}
				st, err := s.Upload(ctx, src, tc.pattern, prefix)
				if err != nil {
					t.Fatal(err)
				}
				if st.Files != len(tc.want) {
					t.Errorf("uploaded %d files, want %d", st.Files, len(tc.want))
				}
				dst := t.TempDir()
				if _, err := s.Download(ctx, prefix, dst); err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tc.want, readTree(t, dst)); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			})
		}

		// A wildcard pattern makes even a non-prefix destination a prefix.
		if _, err := s.Upload(ctx, src, "out/*.bam", Location{c, "noslash"}); err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(t.TempDir(), "b.bam")
		if _, err := s.Download(ctx, Location{c, "noslash/b.bam"}, dst); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("pattern matching nothing", func(t *testing.T) {
		s, ctx, c := newStore(t), t.Context(), newContainer(t)
		src := t.TempDir()
		writeTree(t, src, map[string]string{"a.txt": "a"})
		st, err := s.Upload(ctx, src, "**/*.bam", Location{c, "none/"})
		if err != nil || st != (Stats{}) {
			t.Fatalf("Upload = %+v, %v; want nothing and no error", st, err)
		}
		_, err = s.Download(ctx, Location{c, "none/"}, t.TempDir())
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("download of what was never uploaded: %v, want ErrNotFound", err)
		}
	})

	t.Run("empty files", func(t *testing.T) {
		s, ctx, c := newStore(t), t.Context(), newContainer(t)
		src := t.TempDir()
		files := map[string]string{"empty.txt": "", "d/empty2": "", "full.txt": "x"}
		writeTree(t, src, files)
		st, err := s.Upload(ctx, src, "empty.txt", Location{c, "one/empty.txt"})
		if err != nil {
			t.Fatal(err)
		}
		if want := (Stats{Files: 1}); st != want {
			t.Errorf("upload stats = %+v, want %+v", st, want)
		}
		dst := filepath.Join(t.TempDir(), "e")
		if _, err := s.Download(ctx, Location{c, "one/empty.txt"}, dst); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(dst); err != nil || fi.Size() != 0 || !fi.Mode().IsRegular() {
			t.Errorf("downloaded empty blob: %v, %v", fi, err)
		}

		if _, err := s.Upload(ctx, src, "**/*", Location{c, "all/"}); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		st, err = s.Download(ctx, Location{c, "all/"}, dir)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(files, readTree(t, dir)); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		if want := (Stats{Files: 3, Bytes: 1}); st != want {
			t.Errorf("download stats = %+v, want %+v", st, want)
		}
	})

	t.Run("names with spaces and unicode", func(t *testing.T) {
		s, ctx, c := newStore(t), t.Context(), newContainer(t)
		files := map[string]string{
			"my file.txt":                "spaces",
			"dir with space/naïve ☃.txt": "snowman",
			"日本語/データ.csv":                "a,b\n",
			"odd/a+b%20c #1 &x=y;z.txt":  "escapes",
			"odd/emoji 🧬.fq":             "dna",
		}
		src := t.TempDir()
		writeTree(t, src, files)
		if _, err := s.Upload(ctx, src, "**/*", Location{c, "ü ber/"}); err != nil {
			t.Fatal(err)
		}
		dst := t.TempDir()
		if _, err := s.Download(ctx, Location{c, "ü ber/"}, dst); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(files, readTree(t, dst)); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}

		// One file, named exactly, to a blob named exactly.
		one := Location{c, "single/データ copy %41.csv"}
		if _, err := s.Upload(ctx, src, "日本語/データ.csv", one); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "x y.csv")
		if _, err := s.Download(ctx, one, out); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(out); string(b) != "a,b\n" {
			t.Errorf("single unicode blob = %q", b)
		}
	})

	t.Run("missing input", func(t *testing.T) {
		s, ctx, c := newStore(t), t.Context(), newContainer(t)
		src := t.TempDir()
		writeTree(t, src, map[string]string{"present.txt": "here", "dir/x": "x"})
		if _, err := s.Upload(ctx, src, "**/*", Location{c, ""}); err != nil {
			t.Fatal(err)
		}
		for _, loc := range []Location{
			{c, "raw/s1.fq"},
			{c, "present.txt/"},
			{c, "nodir/"},
			{c, "dir"}, // a prefix named without the slash is not a blob
			{"no-such-" + c, "a.txt"},
			{"no-such-" + c, ""},
		} {
			t.Run(loc.String(), func(t *testing.T) {
				dir := t.TempDir()
				dst := filepath.Join(dir, "in.fq")
				_, err := s.Download(ctx, loc, dst)
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("Download(%s) = %v, want ErrNotFound", loc, err)
				}
				if !strings.Contains(err.Error(), loc.String()) {
					t.Errorf("error %q does not name %s", err, loc)
				}
				if left := readTree(t, dir); len(left) != 0 {
					t.Errorf("a failed download left files behind: %v", slices.Sorted(maps.Keys(left)))
				}
			})
		}
	})

	t.Run("container created on upload", func(t *testing.T) {
		s, ctx, c := newStore(t), t.Context(), newContainer(t)
		src := t.TempDir()
		writeTree(t, src, map[string]string{"a.txt": "new container"})
		if _, err := s.Download(ctx, Location{c, ""}, t.TempDir()); !errors.Is(err, ErrNotFound) {
			t.Fatalf("container exists before the test: %v", err)
		}
		if _, err := s.Upload(ctx, src, "a.txt", Location{c, "x/a.txt"}); err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(t.TempDir(), "a.txt")
		if _, err := s.Download(ctx, Location{c, "x/a.txt"}, dst); err != nil {
			t.Fatal(err)
		}
		// Later uploads into the now existing container work too.
		if _, err := s.Upload(ctx, src, "*.txt", Location{c, "y/"}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("concurrent calls", func(t *testing.T) {
		s, ctx, c := newStore(t), t.Context(), newContainer(t)
		const calls = 6
		var wg sync.WaitGroup
		errs := make([]error, calls)
		for i := range calls {
			wg.Go(func() {
				src := t.TempDir()
				files := map[string]string{}
				for j := range 20 {
					files[fmt.Sprintf("d%d/f%02d.txt", j%3, j)] = strings.Repeat(strconv.Itoa(i), j)
				}
				writeTree(t, src, files)
				prefix := Location{c, fmt.Sprintf("call%d/", i)}
				if _, err := s.Upload(ctx, src, "**/*.txt", prefix); err != nil {
					errs[i] = err
					return
				}
				dst := t.TempDir()
				if _, err := s.Download(ctx, prefix, dst); err != nil {
					errs[i] = err
					return
				}
				if diff := cmp.Diff(files, readTree(t, dst)); diff != "" {
					errs[i] = fmt.Errorf("call %d (-want +got):\n%s", i, diff)
				}
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		s, ctx, c := newStore(t), t.Context(), newContainer(t)
		src := t.TempDir()
		writeTree(t, src, map[string]string{"a.txt": "a", "d/b.txt": "b"})
		if _, err := s.Upload(ctx, src, "**/*", Location{c, "p/"}); err != nil {
			t.Fatal(err)
		}
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.Upload(cancelled, src, "**/*", Location{c, "q/"}); !errors.Is(err, context.Canceled) {
			t.Errorf("Upload with a cancelled context = %v, want context.Canceled", err)
		}
		for _, loc := range []Location{{c, "p/a.txt"}, {c, "p/"}} {
			dir := t.TempDir()
			if _, err := s.Download(cancelled, loc, filepath.Join(dir, "x")); !errors.Is(err, context.Canceled) {
				t.Errorf("Download(%s) with a cancelled context = %v, want context.Canceled", loc, err)
			}
			if left := readTree(t, dir); len(left) != 0 {
				t.Errorf("a cancelled download left files behind: %v", slices.Sorted(maps.Keys(left)))
			}
		}
	})

	t.Run("content integrity", func(t *testing.T) {
		s, ctx, c := newStore(t), t.Context(), newContainer(t)
		a, ok := s.(*Azure)
		if !ok {
			t.Skipf("%T keeps no checksums", s)
		}
		src := t.TempDir()
		writeTree(t, src, map[string]string{"a.txt": "payload"})
		loc := Location{c, "a.txt"}
		if _, err := s.Upload(ctx, src, "a.txt", loc); err != nil {
			t.Fatal(err)
		}
		wrong := md5.Sum([]byte("something else"))
		bc := a.svc.NewContainerClient(c).NewBlobClient(loc.Path)
		if _, err := bc.SetHTTPHeaders(ctx, blob.HTTPHeaders{BlobContentMD5: wrong[:]}, nil); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		_, err := s.Download(ctx, loc, filepath.Join(dir, "a.txt"))
		if err == nil || !strings.Contains(err.Error(), "MD5") || !strings.Contains(err.Error(), loc.String()) {
			t.Fatalf("download of a blob whose Content-MD5 does not match: %v", err)
		}
		if left := readTree(t, dir); len(left) != 0 {
			t.Errorf("a corrupt download left files behind: %v", slices.Sorted(maps.Keys(left)))
		}
		// The same check guards prefix downloads.
		if _, err := s.Download(ctx, Location{c, ""}, t.TempDir()); err == nil {
			t.Error("prefix download of a corrupt blob succeeded")
		}
	})

	t.Run("large file", func(t *testing.T) {
		if testing.Short() {
			t.Skip("300 MB round trip skipped in -short mode")
		}
		s, ctx, c := newStore(t), t.Context(), newContainer(t)
		const size = 300 << 20
		src := t.TempDir()
		want := writeLargeFile(t, filepath.Join(src, "big.bin"), size)
		loc := Location{c, "big/big.bin"}

		// Peak RSS growth, not RSS: the whole point is what a transfer
		// needs at its worst moment.
		limit := int64(size / 4)
		growth := peakRSSGrowth(t, func() {
			st, err := s.Upload(ctx, src, "big.bin", loc)
			if err != nil {
				t.Fatal(err)
			}
			if st != (Stats{Files: 1, Bytes: size}) {
				t.Errorf("upload stats = %+v", st)
			}
		})
		t.Logf("upload: peak RSS grew %d MiB for a %d MiB file", growth>>20, size>>20)
		if growth > limit {
			t.Errorf("upload: peak RSS grew %d MiB, limit %d MiB", growth>>20, limit>>20)
		}

		dst := filepath.Join(t.TempDir(), "big.bin")
		growth = peakRSSGrowth(t, func() {
			st, err := s.Download(ctx, loc, dst)
			if err != nil {
				t.Fatal(err)
			}
			if st != (Stats{Files: 1, Bytes: size}) {
				t.Errorf("download stats = %+v", st)
			}
		})
		t.Logf("download: peak RSS grew %d MiB for a %d MiB file", growth>>20, size>>20)
		if growth > limit {
			t.Errorf("download: peak RSS grew %d MiB, limit %d MiB", growth>>20, limit>>20)
		}
		if got := sha256File(t, dst); got != want {
			t.Errorf("downloaded file hashes to %s, want %s", got, want)
		}
	})
}

// writeLargeFile writes size bytes of 1 MiB chunks, each distinct so that a
// misplaced block changes the hash, and returns their SHA-256.
func writeLargeFile(t testing.TB, path string, size int64) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	rand.Read(chunk)
	h := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	for i := int64(0); i < size; i += int64(len(chunk)) {
		binary.LittleEndian.PutUint64(chunk, uint64(i))
		n := min(int64(len(chunk)), size-i)
		if _, err := w.Write(chunk[:n]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func sha256File(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// peakRSSGrowth runs f and returns how far the process's peak resident set
// (VmHWM) rose above its resident set just before. Writing 5 to clear_refs
// resets the peak to the current RSS, so earlier tests don't mask f.
func peakRSSGrowth(t testing.TB, f func()) int64 {
	t.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Skipf("cannot reset the peak RSS: %v", err)
	}
	before := procStatusBytes(t, "VmHWM")
	f()
	return procStatusBytes(t, "VmHWM") - before
}

func procStatusBytes(t testing.TB, field string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("%s: %v", field, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}
