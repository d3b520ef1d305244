package executor

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/compiler"
)

// BenchmarkUnScan100k reads a program of 100,000 tasks as bmc logs, bmc
// runs and bmc plan --run do: one task (the last), their number, and
// the program split into its tasks, and reports MB/s of program read.
func BenchmarkUnScan100k(b *testing.B) {
	const n = 100_000
	p := &compiler.Program{APIVersion: "bmc/v1", Name: "sweep"}
	for i := range n {
		p.Tasks = append(p.Tasks, compiler.Task{ID: fmt.Sprintf("t-%d", i), Command: []string{"true", fmt.Sprint(i)},
			Env: map[string]string{"I": fmt.Sprint(i), "Q": `a "quoted" {[value]}`}, Slots: 1, Hash: strings.Repeat("h", 64)})
	}
	dir, err := CreateRun(b.TempDir(), Meta{ID: "sweep-1", Workload: "sweep", Backend: "local", Created: time.Now()}, p)
	if err != nil {
		b.Fatal(err)
	}
	text, err := os.ReadFile(filepath.Join(dir, ProgramFile))
	if err != nil {
		b.Fatal(err)
	}
	last := fmt.Sprintf("t-%d", n-1)
	b.Run("ReadTask", func(b *testing.B) {
		b.SetBytes(int64(len(text)))
		for b.Loop() {
			if _, ok, err := ReadTask(dir, last); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("CountTasks", func(b *testing.B) {
		b.SetBytes(int64(len(text)))
		for b.Loop() {
			if c, err := CountTasks(dir); c != n || err != nil {
				b.Fatal(c, err)
			}
		}
	})
	b.Run("SplitProgram", func(b *testing.B) {
		b.SetBytes(int64(len(text)))
		b.ReportAllocs()
		for b.Loop() {
			if _, tasks, err := SplitProgram(text); len(tasks) != n || err != nil {
				b.Fatal(len(tasks), err)
			}
		}
	})
}
