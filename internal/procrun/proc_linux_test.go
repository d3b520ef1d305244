package procrun

import (
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
)

func TestParseStatFields(t *testing.T) {
	const rest = " 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 99"
	tests := []struct {
		in       string
		wantZomb bool
		wantPgrp int
		wantOK   bool
	}{
		{"123 (sleep) S 1 120 120" + rest, false, 120, true},
		{"123 (odd) name (x)) Z 1 99 99" + rest, true, 99, true},
		{"123 (a b c) R 5 7 7" + rest, false, 7, true},
		{"123 (sleep) S 1", false, 0, false},
		{"123 sleep S 1 2 3" + rest, false, 0, false},
		{"123 (sleep) S 1 x 3" + rest, false, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			ids, ok := parseIDs(tt.in)
			if ids.zombie != tt.wantZomb || ids.pgrp != tt.wantPgrp || ok != tt.wantOK {
				t.Errorf("parseIDs = zombie %v pgrp %d %v, want %v %d %v", ids.zombie, ids.pgrp, ok, tt.wantZomb, tt.wantPgrp, tt.wantOK)
			}
		})
	}
}

// TestProcTable checks the process table against what this test knows
// of itself and of a child it leaves a zombie: the group of that child
// exists, but has no live member.
func TestProcTable(t *testing.T) {
	self := os.Getpid()
	pids, err := procPIDs()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(pids, self) {
		t.Fatalf("procPIDs: %d entries, without this process %d", len(pids), self)
	}
	pgrp, zombie, ok := procState(self)
	if !ok || zombie || pgrp != syscall.Getpgrp() {
		t.Errorf("procState(self) = %d %v %v, want %d false true", pgrp, zombie, ok, syscall.Getpgrp())
	}
	env, err := procEnviron(self)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(env, func(v []byte) bool { return string(v) == "PATH="+os.Getenv("PATH") }) {
		t.Errorf("procEnviron(self): %d variables, without PATH", len(env))
	}
	if alive, ok := groupHasLive(syscall.Getpgrp()); !ok || !alive {
		t.Errorf("groupHasLive(own group) = %v %v, want true true", alive, ok)
	}

	cmd := exec.Command("true")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	defer cmd.Wait()
	waitFor(t, "the child to exit", func() bool {
		_, zombie, _ := procState(pid)
		return zombie
	})
	if alive, ok := groupHasLive(pid); !ok || alive {
		t.Errorf("groupHasLive(a zombie's group) = %v %v, want false true", alive, ok)
	}
	if !userProcess(self) || userProcess(pid) || userProcess(1<<30) {
		t.Errorf("userProcess: self %v, a zombie %v, no such pid %v; want true false false", userProcess(self), userProcess(pid), userProcess(1<<30))
	}
	// kthreadd, where the process table shows the kernel's threads.
	if comm, err := os.ReadFile("/proc/2/comm"); err == nil && string(comm) == "kthreadd\n" && userProcess(2) {
		t.Error("userProcess(kthreadd) = true")
	}
	if groupAlive(pid) {
		t.Error("groupAlive(a zombie's group) = true")
	}
	if _, _, ok := procState(1 << 30); ok {
		t.Error("procState(no such pid): ok")
	}
}
