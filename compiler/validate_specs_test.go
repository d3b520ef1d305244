package compiler

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/bmc-dev/bmc/schema"
	"github.com/rogpeppe/go-internal/txtar"
)

// TestValidateSpecs compiles each testdata/validate/*.txtar as validate
// does, with required params left without values: a spec.yaml, an
// optional set section (name=value lines, the value YAML as --set reads
// it) and the exact diagnostics wanted, as in testdata/invalid; an empty
// want is a spec validate finds valid.
func TestValidateSpecs(t *testing.T) {
	files, err := filepath.Glob("testdata/validate/*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("found no specs in testdata/validate")
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
					for _, line := range strings.Split(strings.TrimSpace(string(f.Data)), "\n") {
						k, v, _ := strings.Cut(line, "=")
						if v == "" {
							params[k] = ""
							continue
						}
						val, err := schema.ParseValue([]byte(v))
						if err != nil {
							t.Fatalf("set %s: %v", k, err)
						}
						params[k] = val
					}
				}
			}
			_, diags := Compile("spec.yaml", src, Options{Params: params, Partial: true})
			checkWant(t, file, ar, want, diags)
		})
	}
}
