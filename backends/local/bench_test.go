package local

import (
	"context"
	"os/exec"
	"testing"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/executor"
)

// BenchmarkRunTaskTrue is one attempt of `true`, everything included,
// beside a bare exec of the same program: their difference is the local
// backend's per-task overhead.
func BenchmarkRunTaskTrue(b *testing.B) {
	dir := b.TempDir()
	be := New(Options{Slots: 1})
	run := &executor.RunInfo{ID: "bench", Workload: "bench", Dir: dir}
	if err := be.Prepare(context.Background(), run); err != nil {
		b.Fatal(err)
	}
	b.Run("local", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			t := &compiler.Task{ID: "t" + string(rune('a'+i%26)) + itoa(i), Command: []string{"true"}, Slots: 1}
			be.Prefetch(run, t)
			if r := be.RunTask(context.Background(), &executor.Attempt{Run: run, Task: t, Number: 1}); r.State != executor.Succeeded {
				b.Fatal(r.Reason)
			}
		}
	})
	b.Run("exec", func(b *testing.B) {
		for b.Loop() {
			if err := exec.Command("true").Run(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}
