package compiler

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bmc-dev/bmc/schema"
	"github.com/google/go-cmp/cmp"
	"github.com/rogpeppe/go-internal/txtar"
)

var update = flag.Bool("update", false, "rewrite golden files with the current output")

// TestInvalidSpecs compiles each testdata/invalid/*.txtar: a spec.yaml, an
// optional set section (name=value lines, as --set) and the exact
// diagnostics wanted, one per line, with hint: and see lines after each.
func TestInvalidSpecs(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid/*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 25 {
		t.Fatalf("found %d invalid specs, want at least 25", len(files))
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var src []byte
			var want string
			params := map[string]any{}
			for _, f := range ar.Files {
				switch f.Name {
				case "spec.yaml":
					src = f.Data
				case "want":
					want = string(f.Data)
				case "set":
					for _, line := range strings.Fields(string(f.Data)) {
						k, v, _ := strings.Cut(line, "=")
						params[k] = v
					}
				}
			}
			_, diags := Compile("spec.yaml", src, Options{Params: params})
			if len(diags) == 0 {
				t.Fatalf("compiled without errors; want:\n%s", want)
			}
			checkWant(t, file, ar, want, diags)
		})
	}
}

// checkWant compares diags, one per line with hint: and see lines after
// each, with the want section of the txtar archive ar read from file; with
// -update it writes them there instead.
func checkWant(t *testing.T, file string, ar *txtar.Archive, want string, diags schema.Diagnostics) {
	t.Helper()
	var got strings.Builder
	for _, d := range diags {
		got.WriteString(d.Error() + "\n")
		if d.Hint != "" {
			got.WriteString("hint: " + d.Hint + "\n")
		}
		for _, r := range d.Related {
			got.WriteString("see " + r.String() + "\n")
		}
	}
	if *update {
		for i := range ar.Files {
			if ar.Files[i].Name == "want" {
				ar.Files[i].Data = []byte(got.String())
			}
		}
		if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if diff := cmp.Diff(want, got.String()); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
	}
}
