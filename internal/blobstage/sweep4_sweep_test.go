package blobstage

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestSweep4Sweep: Sweep goes through every folder of the store, as a
// run taken up again needs, and removes the file a killed writer left
// (kill -9, mid-blob) however deep; a live writer's file stays, and that
// writer completes.
func TestSweep4Sweep(t *testing.T) {
	start := func(dst string) (*exec.Cmd, func(string), string) {
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
		line, err := bufio.NewReader(stdout).ReadString('\n') // its partial file, once made
		if err != nil || !strings.HasPrefix(line, tempPrefix) {
			t.Fatalf("writer said %q (%v)", line, err)
		}
		return cmd, func(rest string) { stdin.Write([]byte(rest)); stdin.Close() }, strings.TrimSpace(line)
	}
	root := t.TempDir()
	deep := filepath.Join(root, "results", "run-1", "a", "b")
	other := filepath.Join(root, "logs", "run-2")

	killed, _, killedPartial := start(filepath.Join(deep, "big.bin"))
	if err := killed.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = killed.Wait()
	if _, err := os.Stat(filepath.Join(deep, killedPartial)); err != nil {
		t.Fatalf("the killed writer left no file: %v", err)
	}
	live, finish, livePartial := start(filepath.Join(other, "stdout.txt"))

	if err := NewLocal(root).Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := listNames(t, deep); len(got) != 0 {
		t.Errorf("the killed writer's folder holds %v after a sweep", got)
	}
	if diff := cmp.Diff([]string{livePartial}, listNames(t, other)); diff != "" {
		t.Errorf("the live writer's folder (-want +got):\n%s", diff)
	}
	finish(" and the rest")
	if err := live.Wait(); err != nil {
		t.Fatalf("the live writer failed: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(other, "stdout.txt")); err != nil || string(b) != "partial and the rest" {
		t.Errorf("the live writer wrote %q (%v)", b, err)
	}
}

// TestSweep4TakenPid: a partial file of this machine whose writer's pid
// is taken goes at once if that process started after the file was last
// written (a pid reused since the writer died), and stays, however old,
// if it started before (the writer itself, waiting for data).
func TestSweep4TakenPid(t *testing.T) {
	if writerID() == "" {
		t.Skip("no writer id on this system")
	}
	if _, ok := processStart(os.Getpid()); !ok {
		t.Skip("process start times cannot be read here")
	}
	// The start time read is this process's, to the second or so.
	if st, _ := processStart(os.Getpid()); st.After(time.Now().Add(startSlack)) {
		t.Errorf("this process started at %v, after now", st)
	}
	dir := filepath.Join(t.TempDir(), "c01", "p")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// A process started a moment ago has the pid of the reused file's
	// writer; a live writer, told here as started 26 hours ago, is the
	// waiting file's.
	writer := exec.Command("sleep", "3600")
	if err := writer.Start(); err != nil {
		t.Skip("no sleep command: ", err)
	}
	t.Cleanup(func() { _ = writer.Process.Kill(); _ = writer.Wait() })
	reused := partialName(writerID(), os.Getppid(), "reused")
	waiting := partialName(writerID(), writer.Process.Pid, "waiting")
	for _, f := range []struct {
		name string
		age  time.Duration
	}{{reused, time.Hour}, {waiting, 25 * time.Hour}} {
		p := filepath.Join(dir, f.name)
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(-f.age)
		if err := os.Chtimes(p, at, at); err != nil {
			t.Fatal(err)
		}
	}
	real := processStart
	t.Cleanup(func() { processStart = real })
	processStart = func(pid int) (time.Time, bool) {
		if pid == writer.Process.Pid {
			return time.Now().Add(-26 * time.Hour), true
		}
		return real(pid)
	}
	_ = sweepTree(t.Context(), dir, time.Now())
	if got := listNames(t, dir); !slices.Equal(got, []string{waiting}) {
		t.Errorf("folder after a sweep: %v, want only %s", got, waiting)
	}
}
