package blobstage

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// deadPID returns the id of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func partialName(writer string, pid int, random string) string {
	return tempPrefix + writer + "-" + strconv.Itoa(pid) + "-" + random
}

func listNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}

// TestSweepPartialFiles plants what writers left in a store's folder and
// writes a blob there: only the files of writers that are gone, or that
// have not been written for a day, go.
func TestSweepPartialFiles(t *testing.T) {
	if writerID() == "" {
		t.Skip("no writer id on this system")
	}
	root := t.TempDir()
	dir := filepath.Join(root, "c01", "p")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	me, dead, live := writerID(), deadPID(t), os.Getppid()
	old := time.Now().Add(-staleAfter - time.Hour)
	want := []string{"new.txt"}
	for _, f := range []struct {
		name string
		old  bool
		kept bool
	}{
		{name: partialName(me, dead, "a"), kept: false},
		{name: partialName(me, live, "b"), kept: true},
		{name: partialName(me, os.Getpid(), "c"), kept: true},
		{name: partialName(me, os.Getpid(), "d"), old: true, kept: true},
		// The pid of a writer gone a day ago may be another process's.
		{name: partialName(me, live, "e"), old: true, kept: false},
		// Another machine's or container's pids are not ours to check.
		{name: partialName("other", dead, "f"), kept: true},
		{name: partialName("other", dead, "g"), old: true, kept: false},
		{name: tempPrefix + "h", kept: true},
		{name: tempPrefix + "i", old: true, kept: false},
		{name: "blob.txt", old: true, kept: true},
	} {
		p := filepath.Join(dir, f.name)
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if f.old {
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}
		if f.kept {
			want = append(want, f.name)
		}
	}
	slices.Sort(want)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "new.txt"), []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := NewLocal(root).Upload(t.Context(), src, "new.txt", Location{"c01", "p/"}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, listNames(t, dir)); diff != "" {
		t.Errorf("folder after a write (-want +got):\n%s", diff)
	}
}

// TestPartialWriterHelper is the writer TestKilledWriter runs as another
// process: it writes the file $BMC_PARTIAL_DST from "partial" and then its
// stdin, telling the name of its temporary file on stdout once made.
func TestPartialWriterHelper(t *testing.T) {
	dst := os.Getenv("BMC_PARTIAL_DST")
	if dst == "" {
		t.Skip("run by TestKilledWriter")
	}
	r := io.MultiReader(&announce{dir: filepath.Dir(dst), r: strings.NewReader("partial")}, os.Stdin)
	if _, err := writeFileAtomic(t.Context(), dst, r, 0o644); err != nil {
		t.Fatal(err)
	}
}

// announce prints, at its first read, the names of the partial files in
// dir: by then writeFileAtomic has made its own.
type announce struct {
	dir  string
	r    io.Reader
	done bool
}

func (a *announce) Read(p []byte) (int, error) {
	if !a.done {
		a.done = true
		entries, _ := os.ReadDir(a.dir)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), tempPrefix) {
				os.Stdout.WriteString(e.Name() + "\n")
			}
		}
	}
	return a.r.Read(p)
}

// TestKilledWriter kills a writer mid-file, as kill -9 does, and writes
// into its folder: the store's folder and a task's working directory keep
// no partial file of it. A live writer's file in the same folder stays,
// and that writer completes.
func TestKilledWriter(t *testing.T) {
	start := func(t *testing.T, dst string) (*exec.Cmd, io.WriteCloser, string) {
		t.Helper()
		cmd := exec.Command(os.Args[0], "-test.run=^TestPartialWriterHelper$")
		cmd.Env = append(os.Environ(), "BMC_PARTIAL_DST="+dst)
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, tempPrefix) {
			t.Fatalf("writer said %q (%v)", line, err)
		}
		return cmd, stdin, strings.TrimSpace(line)
	}
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "in.txt"), []byte("in"), 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("store", func(t *testing.T) {
		root := t.TempDir()
		dir := filepath.Join(root, "c01", "out")
		cmd, _, partial := start(t, filepath.Join(dir, "big.bin"))
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		if _, err := os.Stat(filepath.Join(dir, partial)); err != nil {
			t.Fatalf("the killed writer left no file: %v", err)
		}
		if _, err := NewLocal(root).Upload(t.Context(), src, "in.txt", Location{"c01", "out/"}); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"in.txt"}, listNames(t, dir)); diff != "" {
			t.Errorf("store folder (-want +got):\n%s", diff)
		}
	})

	t.Run("working directory", func(t *testing.T) {
		wd := t.TempDir()
		cmd, _, _ := start(t, filepath.Join(wd, "input.txt"))
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		if _, err := CopyLocal(filepath.Join(src, "in.txt"), filepath.Join(wd, "input.txt")); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"input.txt"}, listNames(t, wd)); diff != "" {
			t.Errorf("working directory (-want +got):\n%s", diff)
		}
	})

	t.Run("live writer", func(t *testing.T) {
		root := t.TempDir()
		dir := filepath.Join(root, "c01", "out")
		cmd, stdin, partial := start(t, filepath.Join(dir, "big.bin"))
		if _, err := NewLocal(root).Upload(t.Context(), src, "in.txt", Location{"c01", "out/"}); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{partial, "in.txt"}, listNames(t, dir)); diff != "" {
			t.Errorf("store folder while another process writes (-want +got):\n%s", diff)
		}
		if _, err := stdin.Write([]byte(" and the rest")); err != nil {
			t.Fatal(err)
		}
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("the live writer failed: %v", err)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "big.bin")); err != nil || string(b) != "partial and the rest" {
			t.Errorf("the live writer wrote %q (%v)", b, err)
		}
	})
}
