package compiler

import (
	"fmt"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

func sweepSpec(tb testing.TB, a, b, c int) []byte {
	tb.Helper()
	out, err := exec.Command("../bench/gen-sweep.sh", fmt.Sprint(a), fmt.Sprint(b), fmt.Sprint(c)).Output()
	if err != nil {
		tb.Fatalf("gen-sweep: %v", err)
	}
	return out
}

func explicitSpec(n int) []byte {
	var b strings.Builder
	b.WriteString("apiVersion: bmc/v1\nkind: Workload\nname: explicit\ntasks:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  - id: task-%d\n    run: echo %d > out.txt\n    env: {N: \"%d\"}\n    outputs:\n      - {path: out.txt, to: \"az://out/${{ run.id }}/%d.txt\"}\n", i, i, i, i)
		if i > 0 {
			fmt.Fprintf(&b, "    dependsOn: [task-%d]\n", i-1)
		}
	}
	return []byte(b.String())
}

func benchCompile(b *testing.B, src []byte, partial bool) {
	var tasks int
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	var keep *Program
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p, diags := Compile("bench.yaml", src, Options{Partial: partial})
		if len(diags) > 0 {
			b.Fatal(diags)
		}
		tasks = len(p.Tasks)
		keep = p
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&m1)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(tasks), "ns/task")
	b.ReportMetric(float64(m1.HeapAlloc-m0.HeapAlloc)/float64(tasks), "live-B/task")
	runtime.KeepAlive(keep)
}

func BenchmarkCompileSweep(b *testing.B) {
	for _, size := range [][3]int{{10, 10, 10}, {25, 20, 20}, {50, 40, 50}} {
		src := sweepSpec(b, size[0], size[1], size[2])
		b.Run(fmt.Sprintf("tasks=%d", size[0]*size[1]*size[2]), func(b *testing.B) { benchCompile(b, src, false) })
	}
}

func BenchmarkValidateExplicit2000(b *testing.B) {
	benchCompile(b, explicitSpec(2000), true)
}
