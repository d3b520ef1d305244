package compiler

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	cuejson "cuelang.org/go/encoding/json"
	"cuelang.org/go/encoding/jsonschema"
	"github.com/bmc-dev/bmc/schema"
)

// jsonSchemaCheck returns a check of a spec against the JSON Schema bmc
// exports for editors, read back into CUE: nil when the JSON Schema
// accepts it.
func jsonSchemaCheck(t *testing.T) func(src []byte) error {
	t.Helper()
	b, err := schema.JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	ctx := cuecontext.New()
	f, err := jsonschema.Extract(ctx.CompileBytes(b), &jsonschema.Config{})
	if err != nil {
		t.Fatal(err)
	}
	sv := ctx.BuildFile(f)
	if err := sv.Err(); err != nil {
		t.Fatal(err)
	}
	return func(src []byte) error {
		v, err := schema.ParseValue(src)
		if err != nil {
			t.Fatal(err)
		}
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		e, err := cuejson.Extract("spec", j)
		if err != nil {
			t.Fatal(err)
		}
		return sv.Unify(ctx.BuildExpr(e)).Validate(cue.Concrete(true))
	}
}

const agreeHead = "apiVersion: bmc/v1\nkind: Workload\nname: x\n"

// TestJSONSchemaAgrees: the JSON Schema editors use accepts every spec
// bmc validate accepts, and refuses the shapes validate refuses that a
// JSON Schema can tell.
func TestJSONSchemaAgrees(t *testing.T) {
	check := jsonSchemaCheck(t)
	valid := map[string][]byte{}
	examples, _ := filepath.Glob("../examples/*.yaml")
	for _, p := range examples {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		valid[filepath.Base(p)] = b
	}
	for name, body := range map[string]string{
		"durations":  "defaults: {timeout: 1h30m}\ntasks:\n  - {id: a, run: \"true\", timeout: 0.5s}\n  - {id: b, run: \"true\", timeout: 1d}\n",
		"matrix":     "params:\n  ns: {default: [1, 2]}\ntasks:\n  - {id: a, run: \"true\", matrix: {n: \"${{ params.ns }}\", s: [x, 1.10, true]}}\n",
		"params":     "params:\n  s: {default: \"\"}\n  n: {default: 0}\n  l: {default: []}\n  m: {default: {k: v}}\n  r: {}\ntasks:\n  - {id: a, run: \"true\"}\n",
		"autoscale":  "pool: {id: p, autoscale: {formula: \"$TargetDedicatedNodes = 1\", interval: 5m}}\ntasks:\n  - {id: a, run: \"true\"}\n",
		"nodes":      "pool: {id: p, nodes: {dedicated: 0, spot: 2}}\ntasks:\n  - {id: a, run: \"true\"}\n",
		"headers":    "tasks:\n  - {id: a, run: \"true\"}\nfinalize:\n  run: echo done\n  callback: {url: \"https://h/x\", headers: {X-Team: a, Authorization: \"Bearer t\"}, timeout: 30s}\n",
		"command":    "tasks:\n  - {id: a, command: [echo, 1.50, true]}\n",
		"finalizeCm": "tasks:\n  - {id: a, run: \"true\"}\nfinalize:\n  command: [\"true\"]\n",
		"finalizeIn": "tasks:\n  - {id: a, run: \"true\"}\nfinalize:\n  run: ./summarize.sh\n  inputs: [{from: summarize.sh}, {from: \"az://res/x/\", path: x}]\n",
	} {
		valid[name] = []byte(agreeHead + body)
	}
	for name, src := range valid {
		if _, diags := Compile(name, src, Options{Partial: true}); len(diags) > 0 {
			t.Errorf("%s: validate refuses a spec meant valid: %v", name, diags)
			continue
		}
		if err := check(src); err != nil {
			t.Errorf("%s: the JSON Schema refuses a valid spec: %v", name, err)
		}
	}
	for name, body := range map[string]string{
		"run empty":          "tasks:\n  - {id: a, run: \"\"}\n",
		"matrix no keys":     "tasks:\n  - {id: a, run: \"true\", matrix: {}}\n",
		"matrix no values":   "tasks:\n  - {id: a, run: \"true\", matrix: {x: []}}\n",
		"param default null": "params:\n  p: {default: null}\ntasks:\n  - {id: a, run: \"true\"}\n",
		"nodes and autoscale": "pool: {id: p, nodes: {dedicated: 1}, autoscale: {formula: x}}\n" +
			"tasks:\n  - {id: a, run: \"true\"}\n",
		"timeout zero":           "tasks:\n  - {id: a, run: \"true\", timeout: 0s}\n",
		"timeout zero parts":     "tasks:\n  - {id: a, run: \"true\", timeout: 0h0.0m}\n",
		"command empty":          "tasks:\n  - {id: a, command: []}\n",
		"unknown field":          "tasks:\n  - {id: a, run: \"true\", bogus: 1}\n",
		"finalize input no from": "tasks:\n  - {id: a, run: \"true\"}\nfinalize:\n  inputs: [{path: x}]\n",
	} {
		src := []byte(agreeHead + body)
		if _, diags := Compile(name, src, Options{Partial: true}); len(diags) == 0 {
			t.Errorf("%s: validate accepts it", name)
		}
		if err := check(src); err == nil {
			t.Errorf("%s: the JSON Schema accepts what validate refuses", name)
		} else if strings.Contains(err.Error(), "incomplete") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestJSONSchemaHeaderNames: callback header names are HTTP tokens in the
// JSON Schema, as validate has them. (CUE reads propertyNames back as a
// pattern constraint, which does not refuse other names, so the pattern
// is tried here.)
func TestJSONSchemaHeaderNames(t *testing.T) {
	b, err := schema.JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Defs map[string]struct {
			Properties map[string]struct {
				PropertyNames struct{ Pattern string } `json:"propertyNames"`
			} `json:"properties"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	pat := m.Defs["Callback"].Properties["headers"].PropertyNames.Pattern
	re, err := regexp.Compile(pat)
	if err != nil {
		t.Fatalf("pattern %q: %v", pat, err)
	}
	for name, ok := range map[string]bool{"X-Team": true, "Authorization": true, "x_y.z~1": true, "bad header": false, "a:b": false, "": false, "é": false} {
		if re.MatchString(name) != ok {
			t.Errorf("header name %q: pattern %q says %v", name, pat, !ok)
		}
		spec := agreeHead + "tasks:\n  - {id: a, run: \"true\"}\nfinalize:\n  callback: {url: \"https://h/x\", headers: {\"" + name + "\": v}}\n"
		if _, diags := Compile("h.yaml", []byte(spec), Options{Partial: true}); (len(diags) == 0) != ok {
			t.Errorf("header name %q: validate says %v", name, diags)
		}
	}
}
