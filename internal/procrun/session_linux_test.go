package procrun

import (
	"context"
	"strconv"
	"strings"
	"testing"
)

// TestTaskLeadsItsOwnSession: a task starts a session of its own, with no
// controlling terminal, as on a Batch node: one that reads the terminal
// (a password prompt of ssh or sudo) fails at once rather than being
// stopped by SIGTTIN for ever while bmc shows it running. Its session is
// also its process group, which stopping it kills.
func TestTaskLeadsItsOwnSession(t *testing.T) {
	s := bash(t, `read -r _ _ _ _ pgid sid _ < /proc/$$/stat; echo "$$ $pgid $sid"`)
	r, err := Run(context.Background(), s)
	if err != nil || r.ExitCode != 0 {
		t.Fatalf("run: %v, exit %d: %s", err, r.ExitCode, readFile(t, s.Stderr))
	}
	f := strings.Fields(readFile(t, s.Stdout))
	if len(f) != 3 {
		t.Fatalf("stdout %q", f)
	}
	pid, _ := strconv.Atoi(f[0])
	if f[1] != f[0] || f[2] != f[0] || pid == 0 {
		t.Errorf("pid %s, process group %s, session %s: want all three the same", f[0], f[1], f[2])
	}
}
