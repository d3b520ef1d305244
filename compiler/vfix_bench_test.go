package compiler

import (
	"fmt"
	"strings"
	"testing"
)

// matrixSpec is a task with a matrix of two keys, a×b members, whose run
// and outputs vary by member: the shape of a large parameter sweep.
func matrixSpec(a, b int) []byte {
	vals := func(n int) string {
		s := make([]string, n)
		for i := range s {
			s[i] = fmt.Sprint(i)
		}
		return strings.Join(s, ",")
	}
	return fmt.Appendf(nil, `apiVersion: bmc/v1
kind: Workload
name: m
tasks:
  - id: t
    matrix: {a: [%s], b: [%s]}
    run: echo ${{ matrix.a }}
    outputs:
      - {path: o.txt, to: "az://ccc/${{ matrix.a }}/${{ matrix.b }}/o.txt"}
`, vals(a), vals(b))
}

// BenchmarkVfixValidateMatrix validates (Partial, as bmc validate does) a
// matrix of 100,000 and one of 1,000,000 members.
func BenchmarkVfixValidateMatrix(b *testing.B) {
	for _, n := range []int{316, 1000} {
		src := matrixSpec(n, n)
		b.Run(fmt.Sprintf("%dx%d", n, n), func(b *testing.B) {
			b.ReportAllocs()
			benchCompile(b, src, true)
		})
	}
}
