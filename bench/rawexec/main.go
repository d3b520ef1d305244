// Command rawexec is the floor under bmc's local backend in
// bench/local-vs-make.sh: it starts a program N times, P at a time, with
// nothing around each start but syscall.ForkExec and wait4 — the calls
// bmc itself makes for a task, without the task's directories, logs,
// journal or scheduler.
//
// Usage: rawexec [-n N] [-p P] program [args...]
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
)

func main() {
	n := flag.Int("n", 1000, "how many times to start the program")
	p := flag.Int("p", 2, "how many run at once")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: rawexec [-n N] [-p P] program [args...]")
		os.Exit(2)
	}
	path, err := exec.LookPath(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "rawexec:", err)
		os.Exit(1)
	}
	argv := flag.Args()
	attr := &syscall.ProcAttr{Env: os.Environ(), Files: []uintptr{0, 1, 2}, Sys: &syscall.SysProcAttr{Setpgid: true}}
	jobs := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := 0
	for range *p {
		wg.Go(func() {
			for range jobs {
				pid, err := syscall.ForkExec(path, argv, attr)
				var ws syscall.WaitStatus
				if err == nil {
					_, err = syscall.Wait4(pid, &ws, 0, nil)
				}
				if err != nil || ws.ExitStatus() != 0 {
					mu.Lock()
					failed++
					mu.Unlock()
				}
			}
		})
	}
	for range *n {
		jobs <- struct{}{}
	}
	close(jobs)
	wg.Wait()
	if failed > 0 {
		fmt.Fprintf(os.Stderr, "rawexec: %d of %d runs failed\n", failed, *n)
		os.Exit(1)
	}
}
