package procrun

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// A process that execs while its environment is read must be read whole,
// before or after: never the start of one and none of the other. Shells
// forking and exec'ing in a loop, with an environment spanning several
// pages, are read until many of them have been seen.
func TestProcEnvironDuringExec(t *testing.T) {
	mark := fmt.Sprintf("exec-%d", time.Now().UnixNano())
	env := append(os.Environ(),
		"BMC_TEST_PAD="+strings.Repeat("p", 3*4096+123),
		"BMC_TEST_MARK="+mark,
		"BMC_TEST_TASK=t-"+mark,
		"BMC_TEST_PAD2="+strings.Repeat("q", 2*4096),
		"BMC_TEST_END=end")
	for range 2 {
		cmd := exec.Command("sh", "-c", "while :; do /bin/true; done")
		cmd.Env = env
		startGroup(t, cmd)
	}
	want := []byte("BMC_TEST_MARK=" + mark)
	seen := 0
	deadline := time.Now().Add(2 * time.Second)
	for seen < 4000 && time.Now().Before(deadline) {
		pids, err := procPIDs()
		if err != nil {
			t.Fatal(err)
		}
		for _, pid := range pids {
			vars, err := procEnviron(pid)
			if err != nil || !bytes.Contains(bytes.Join(vars, nil), want) {
				continue
			}
			seen++
			found, task, end := false, false, false
			for _, v := range vars {
				switch string(v) {
				case string(want):
					found = true
				case "BMC_TEST_TASK=t-" + mark:
					task = true
				case "BMC_TEST_END=end":
					end = true
				}
			}
			if !found || !task || !end {
				var names []string
				for _, v := range vars {
					names = append(names, string(v[:min(len(v), 40)]))
				}
				t.Fatalf("process %d read torn: mark %v, task %v, end %v, %d variables: %q", pid, found, task, end, len(vars), names)
			}
		}
	}
	t.Logf("%d reads", seen)
	if seen == 0 {
		t.Fatal("no process of the loop was seen")
	}
}

// An environment larger than the buffer procEnviron starts with is read
// whole.
func TestProcEnvironLarge(t *testing.T) {
	env := append(os.Environ(),
		"BMC_TEST_A="+strings.Repeat("a", 100<<10),
		"BMC_TEST_B="+strings.Repeat("b", 100<<10),
		"BMC_TEST_END=end")
	cmd := exec.Command("sleep", "300")
	cmd.Env = env
	startGroup(t, cmd)
	// Until the child has exec'd, /proc shows this process's environment,
	// and for a moment while it does, none.
	var vars [][]byte
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		vars, err = procEnviron(cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(vars, func(v []byte) bool { return string(v) == "BMC_TEST_END=end" }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sleep's environment not seen: %d variables", len(vars))
		}
		time.Sleep(time.Millisecond) // polling another process's exec
	}
	var got []string
	for _, v := range vars {
		got = append(got, string(v))
	}
	if !slices.Equal(got, env) {
		t.Errorf("read %d variables, %d bytes; want %d, %d bytes", len(got), len(strings.Join(got, "")), len(env), len(strings.Join(env, "")))
	}
}
