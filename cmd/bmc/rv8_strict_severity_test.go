package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRv8StrictWarningsAreErrors validates a spec with a warning, with
// and without --strict, as JSON and as GitHub annotations: under
// --strict, which fails on it, the warning is labelled an error.
func TestRv8StrictWarningsAreErrors(t *testing.T) {
	warn := filepath.Join(t.TempDir(), "warn.yaml")
	src := "apiVersion: bmc/v1\nkind: Workload\nname: warn\ntasks:\n  - id: a\n    matrix: {x: [1, 2]}\n    run: echo\n    outputs:\n      - {path: o.txt, to: \"az://abc/o.txt\"}\n"
	if err := os.WriteFile(warn, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		strict bool
		code   int
		sev    string
	}{{false, 0, "warning"}, {true, 1, "error"}} {
		args := []string{"validate", "-o", "json", warn}
		if tc.strict {
			args = append(args, "--strict")
		}
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr)
		var entries []jsonDiag
		if err := json.Unmarshal(stdout.Bytes(), &entries); err != nil {
			t.Fatalf("%v:\n%s", err, stdout.String())
		}
		if code != tc.code || len(entries) != 1 || entries[0].Severity != tc.sev {
			t.Errorf("strict %v: exit %d, %+v; want exit %d, one entry of severity %s", tc.strict, code, entries, tc.code, tc.sev)
		}

		args[2] = "github"
		stdout.Reset()
		code = run(context.Background(), args, strings.NewReader(""), &stdout, &stderr)
		if lines := strings.Split(strings.TrimSpace(stdout.String()), "\n"); code != tc.code || len(lines) != 1 || !strings.HasPrefix(lines[0], "::"+tc.sev+" file=") {
			t.Errorf("strict %v github: exit %d\n%s", tc.strict, code, stdout.String())
		}
	}
}
