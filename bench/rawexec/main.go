// Command rawexec is the floor under bmc's local backend in
// bench/local-vs-make.sh: it starts a program N times, P at a time, with
// nothing around each start but syscall.ForkExec and wait4 — the calls
// bmc itself makes for a task, without the task's directories, logs,
// journal or scheduler. With -files DIR, each start also gets what bmc
// makes for a task attempt: DIR/tN/ with wd/ as its working directory and
// stdout.txt and stderr.txt beside it, so the cost of that layout alone
// can be told from the rest of bmc's.
//
// Usage: rawexec [-n N] [-p P] [-files DIR] program [args...]
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
)

func main() {
	n := flag.Int("n", 1000, "how many times to start the program")
	p := flag.Int("p", 2, "how many run at once")
	files := flag.String("files", "", "give each start a task directory under this one")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: rawexec [-n N] [-p P] [-files DIR] program [args...]")
		os.Exit(2)
	}
	path, err := exec.LookPath(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "rawexec:", err)
		os.Exit(1)
	}
	argv := flag.Args()
	env := os.Environ()
	// Each worker takes the next start from a counter: no thread hands a
	// start to another, so between one exit and the next fork there is
	// only the worker's own loop.
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	for range *p {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= *n {
					return
				}
				attr := &syscall.ProcAttr{Env: env, Files: []uintptr{0, 1, 2}, Sys: &syscall.SysProcAttr{Setpgid: true}}
				var fds []int
				if *files != "" {
					var err error
					if attr.Dir, fds, err = taskFiles(*files, i); err != nil {
						fmt.Fprintln(os.Stderr, "rawexec:", err)
						os.Exit(1)
					}
					attr.Files[1], attr.Files[2] = uintptr(fds[0]), uintptr(fds[1])
				}
				pid, err := syscall.ForkExec(path, argv, attr)
				for _, fd := range fds {
					syscall.Close(fd)
				}
				var ws syscall.WaitStatus
				if err == nil {
					_, err = syscall.Wait4(pid, &ws, 0, nil)
				}
				if err != nil || ws.ExitStatus() != 0 {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		fmt.Fprintf(os.Stderr, "rawexec: %d of %d runs failed\n", f, *n)
		os.Exit(1)
	}
}

// taskFiles makes dir/tN/wd and opens dir/tN/stdout.txt and stderr.txt,
// as bmc's local backend does for a task attempt.
func taskFiles(dir string, i int) (wd string, fds []int, err error) {
	td := fmt.Sprintf("%s/t%d", dir, i)
	wd = td + "/wd"
	for _, d := range []string{td, wd} {
		if err := syscall.Mkdir(d, 0o755); err != nil {
			return "", nil, fmt.Errorf("mkdir %s: %w", d, err)
		}
	}
	for _, name := range []string{"/stdout.txt", "/stderr.txt"} {
		fd, err := syscall.Open(td+name, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL|syscall.O_CLOEXEC, 0o644)
		if err != nil {
			for _, fd := range fds {
				syscall.Close(fd)
			}
			return "", nil, fmt.Errorf("create %s: %w", td+name, err)
		}
		fds = append(fds, fd)
	}
	return wd, fds, nil
}
