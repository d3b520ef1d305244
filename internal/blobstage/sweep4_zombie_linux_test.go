package blobstage

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSweep4KilledNotReaped: a writer killed and not yet reaped (a zombie,
// as a bmc killed with kill -9 is until its parent waits for it) still
// holds its pid, but writes nothing more: the sweep removes its file.
func TestSweep4KilledNotReaped(t *testing.T) {
	if writerID() == "" {
		t.Skip("no writer id on this system")
	}
	root := t.TempDir()
	dir := filepath.Join(root, "c01", "out")
	cmd := exec.Command(os.Args[0], "-test.run=^TestPartialWriterHelper$")
	cmd.Env = append(os.Environ(), "BMC_PARTIAL_DST="+filepath.Join(dir, "big.bin"))
	if _, err := cmd.StdinPipe(); err != nil {
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
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	// Wait for it to end, but leave it unreaped.
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_PID, cmd.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != nil {
		t.Fatal(err)
	}
	if processGone(cmd.Process.Pid) {
		t.Fatal("the killed writer's pid is free already: the test needs it taken")
	}
	if err := NewLocal(root).Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := listNames(t, dir); len(got) != 0 {
		t.Errorf("folder after a sweep: %v, want the killed writer's file gone", got)
	}
}
