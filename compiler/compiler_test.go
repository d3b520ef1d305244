package compiler

import (
	"bytes"
	"encoding/json"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/bmc-dev/bmc/schema"
	"github.com/google/go-cmp/cmp"
	"github.com/rogpeppe/go-internal/txtar"
)

func mustCompile(t *testing.T, src string, opts Options) *Program {
	t.Helper()
	p, diags := Compile("spec.yaml", []byte(src), opts)
	if len(diags) > 0 {
		t.Fatalf("compile: %v", diags)
	}
	return p
}

func encode(t testing.TB, p *Program) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(p); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestExamples compiles every spec in examples/ and compares the program
// with testdata/golden/<name>.txtar (refresh with -update).
func TestExamples(t *testing.T) {
	files, err := filepath.Glob("../examples/*.yaml")
	if err != nil || len(files) < 4 {
		t.Fatalf("want at least 4 examples, found %d (%v)", len(files), err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			p, diags := Compile(filepath.Base(f), src, Options{})
			if len(diags) > 0 {
				t.Fatalf("%v", diags)
			}
			got := encode(t, p)
			golden := filepath.Join("testdata", "golden", name+".txtar")
			if *update {
				ar := &txtar.Archive{Comment: []byte("bmc compile " + filepath.Base(f) + "\n"), Files: []txtar.File{{Name: "program.json", Data: got}}}
				os.MkdirAll(filepath.Dir(golden), 0o755)
				if err := os.WriteFile(golden, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			ar, err := txtar.ParseFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if diff := cmp.Diff(string(ar.Files[0].Data), string(got)); diff != "" {
				t.Errorf("program (-golden +got):\n%s", diff)
			}
		})
	}
}

// TestDeterministic compiles the same spec twice, and again with its maps
// written in another order, and wants byte-identical output.
func TestDeterministic(t *testing.T) {
	src, err := os.ReadFile("../examples/genomics.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a := encode(t, mustCompile(t, string(src), Options{}))
	b := encode(t, mustCompile(t, string(src), Options{}))
	if !bytes.Equal(a, b) {
		t.Fatal("two compiles of the same spec differ")
	}
	// Shuffle the order of keys in flow maps and of tasks: the program is
	// ordered by topology and id, not by how the spec was written.
	spec := `apiVersion: bmc/v1
kind: Workload
name: det
params: {%s}
tasks:
%s`
	params := []string{"a: {default: [1, 2]}", "b: {default: x}", "c: {default: 3}"}
	tasks := []string{
		"  - {id: t1, run: echo, env: {%s}}\n",
		"  - {id: t2, dependsOn: [t1], matrix: {a: '${{ params.a }}'}, run: echo}\n",
		"  - {id: t3, dependsOn: [t2], run: echo}\n",
	}
	env := []string{"X: '${{ params.b }}'", "Y: '${{ params.c }}'", "Z: z"}
	build := func(r *rand.Rand) string {
		r.Shuffle(len(params), func(i, j int) { params[i], params[j] = params[j], params[i] })
		r.Shuffle(len(tasks), func(i, j int) { tasks[i], tasks[j] = tasks[j], tasks[i] })
		r.Shuffle(len(env), func(i, j int) { env[i], env[j] = env[j], env[i] })
		var ts strings.Builder
		for _, tk := range tasks {
			if strings.Contains(tk, "%s") {
				tk = strings.Replace(tk, "%s", strings.Join(env, ", "), 1)
			}
			ts.WriteString(tk)
		}
		return strings.Replace(strings.Replace(spec, "%s", strings.Join(params, ", "), 1), "%s", ts.String(), 1)
	}
	r := rand.New(rand.NewPCG(1, 2))
	first := encode(t, mustCompile(t, build(r), Options{}))
	for i := 0; i < 20; i++ {
		got := encode(t, mustCompile(t, build(r), Options{}))
		if diff := cmp.Diff(string(first), string(got)); diff != "" {
			t.Fatalf("shuffled spec compiled differently (-first +got):\n%s", diff)
		}
	}
}

// A required param in a task id, as docs/spec.md shows it, leaves the id
// unknown to validate: neither the id nor dependsOn names it may take are
// errors, while a name it cannot take still is.
func TestRequiredParamInIDAtValidate(t *testing.T) {
	src := `apiVersion: bmc/v1
kind: Workload
name: req
params:
  genome: {}
tasks:
  - id: "prepare-${{ params.genome }}"
    matrix: {part: [a, b]}
    run: echo
  - id: use
    dependsOn: [prepare-grch38, prepare-grch38-a]
    run: echo
  - id: typo
    dependsOn: [prepar-grch38]
    run: echo
`
	_, diags := Compile("spec.yaml", []byte(src), Options{Partial: true})
	if len(diags) != 1 || !strings.Contains(diags[0].Msg, `unknown dependsOn target "prepar-grch38"`) || diags[0].Pos.Line != 14 {
		t.Fatalf("validate: got %v, want only the unknown target prepar-grch38 at line 14", diags)
	}
	p := mustCompile(t, strings.Replace(src, "prepar-", "prepare-", 1), Options{Params: map[string]any{"genome": "grch38"}})
	if p.Tasks[0].ID != "prepare-grch38-a" {
		t.Fatalf("compiled ids: %v", p.Tasks)
	}
}

func TestRequiredParamsAtCompileNotValidate(t *testing.T) {
	src := `apiVersion: bmc/v1
kind: Workload
name: req
params:
  samples: {}
  url: {}
tasks:
  - id: align
    matrix: {s: "${{ params.samples }}"}
    run: echo ${{ matrix.s }}
finalize:
  callback: {url: "${{ params.url }}"}
`
	if _, diags := Compile("spec.yaml", []byte(src), Options{Partial: true}); len(diags) > 0 {
		t.Fatalf("validate reported %v; required params are a compile-time check", diags)
	}
	_, diags := Compile("spec.yaml", []byte(src), Options{})
	if len(diags) != 2 {
		t.Fatalf("compile without params: got %d diagnostics, want 2: %v", len(diags), diags)
	}
	p := mustCompile(t, src, Options{Params: map[string]any{"samples": []any{"a", "b"}, "url": "https://h.example/x"}})
	if len(p.Tasks) != 2 || p.Tasks[0].ID != "align-a" || p.Finalize.Callback.URL != "https://h.example/x" {
		t.Fatalf("unexpected program: %+v", p.Tasks)
	}
}

func TestMatrixAndExpressions(t *testing.T) {
	src := `apiVersion: bmc/v1
kind: Workload
name: mx
labels: {team: g}
params:
  samples: {default: [s1, s2]}
  threads: {default: 4}
defaults:
  retries: 2
  timeout: 1h30m
  env: {LC_ALL: C, T: "${{ params.threads }}"}
tasks:
  - id: trim
    matrix: {sample: "${{ params.samples }}"}
    run: trim ${{ matrix.sample }}
  - id: align
    matrix: {sample: "${{ params.samples }}", ref: [hg38, "t2t v2"]}
    dependsOn: ["trim-${{ matrix.sample }}"]
    command: [aligner, -t, "${{ params.threads }}", "${{ matrix.sample }}", "${{ task.id }}", "${{ workload.labels.team }}", "${{ task.attempt }}"]
    env: {T: "8"}
    retries: 0
    inputs:
      - {from: "az://raw/${{ matrix.sample }}.fq"}
      - {from: "az://refs/${{ run.id }}/"}
  - id: merge
    dependsOn: [align]
    run: merge
`
	p := mustCompile(t, src, Options{})
	ids := make([]string, len(p.Tasks))
	for i, tk := range p.Tasks {
		ids[i] = tk.ID
	}
	want := []string{"trim-s1", "trim-s2", "align-s1-hg38", "align-s1-t2t_v2", "align-s2-hg38", "align-s2-t2t_v2", "merge"}
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Fatalf("task order (-want +got):\n%s", diff)
	}
	a := p.Tasks[3] // align-s1-t2t_v2
	if diff := cmp.Diff([]string{"aligner", "-t", "4", "s1", "align-s1-t2t_v2", "g", "${{ task.attempt }}"}, a.Command); diff != "" {
		t.Errorf("command (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"LC_ALL": "C", "T": "8"}, a.Env); diff != "" {
		t.Errorf("env: defaults merged, task wins (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"trim-s1"}, a.DependsOn); diff != "" {
		t.Errorf("paired dependsOn (-want +got):\n%s", diff)
	}
	if a.Retries != 0 || a.Timeout.D().Minutes() != 90 || a.Slots != 1 {
		t.Errorf("defaults: retries=%d timeout=%s slots=%d", a.Retries, a.Timeout, a.Slots)
	}
	if p.Tasks[0].Retries != 2 {
		t.Errorf("trim retries = %d, want the default 2", p.Tasks[0].Retries)
	}
	wantIn := []Input{{From: "az://raw/s1.fq", Kind: InputBlob, Path: "s1.fq"}, {From: "az://refs/${{ run.id }}/", Kind: InputBlobPrefix, Path: "."}}
	if diff := cmp.Diff(wantIn, a.Inputs); diff != "" {
		t.Errorf("inputs (-want +got):\n%s", diff)
	}
	m := p.Tasks[6]
	if len(m.DependsOn) != 0 || !cmp.Equal(m.DependsOnGroups, []string{"align"}) {
		t.Errorf("merge deps = %v / %v, want the align group", m.DependsOn, m.DependsOnGroups)
	}
	if len(p.Groups) != 2 || len(p.Groups[0].Members) != 4 {
		t.Errorf("groups = %+v", p.Groups)
	}
	if p.Tasks[2].Hash == p.Tasks[3].Hash || p.Tasks[0].Hash == p.Tasks[1].Hash {
		t.Error("tasks with different commands share a hash")
	}
}

func TestSetParamsKeepTypes(t *testing.T) {
	src := `apiVersion: bmc/v1
kind: Workload
name: s
params:
  n: {default: [1]}
tasks:
  - {id: t, matrix: {n: "${{ params.n }}"}, run: "echo ${{ matrix.n }}"}
`
	p := mustCompile(t, src, Options{Params: map[string]any{"n": []any{int64(5), int64(6), 1.5}}})
	if len(p.Tasks) != 3 || p.Tasks[2].ID != "t-6" || p.Tasks[0].ID != "t-1_5" || p.Tasks[0].Run != "echo 1.5" {
		t.Fatalf("tasks = %+v", p.Tasks)
	}
}

func TestCallbackLoopbackAndLateURL(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:8080/cb", "http://localhost/cb", "http://[::1]:9/x", "https://h.example/runs/${{ run.id }}"} {
		src := "apiVersion: bmc/v1\nkind: Workload\nname: c\ntasks: [{id: a, run: x}]\nfinalize: {callback: {url: \"" + u + "\"}}\n"
		if _, diags := Compile("spec.yaml", []byte(src), Options{}); len(diags) > 0 {
			t.Errorf("%s: %v", u, diags)
		}
	}
}

func TestDiagnosticFormat(t *testing.T) {
	src := "apiVersion: bmc/v1\nkind: Workload\nname: t\ntasks:\n  - id: a\n    run: echo\n    retries: two\n"
	_, diags := Compile("spec.yaml", []byte(src), Options{})
	if len(diags) != 1 {
		t.Fatalf("diags = %v", diags)
	}
	want := "spec.yaml:7:14: tasks[0].retries: expected int, got string \"two\"\n        retries: two\n                 ^\n"
	if got := diags[0].Format([]byte(src)); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	var _ schema.Diagnostics = diags
}

func TestDurationString(t *testing.T) {
	for in, want := range map[string]string{"30s": "30s", "90s": "1m30s", "10s": "10s", "2h": "2h", "1d": "1d", "1h30m": "1h30m", "1.5h": "1h30m", "500ms": "500ms", "25h": "1d1h"} {
		d, err := ParseDuration(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := Duration(d).String(); got != want {
			t.Errorf("%s: got %q, want %q", in, got, want)
		}
		var back Duration
		if err := back.UnmarshalJSON([]byte(`"` + Duration(d).String() + `"`)); err != nil || back != Duration(d) {
			t.Errorf("%s does not round-trip: %v %v", in, back, err)
		}
	}
}

func TestYAMLMergeKeyOverride(t *testing.T) {
	src := `apiVersion: bmc/v1
kind: Workload
name: m
x-base: &base {run: echo base, retries: 2}
tasks:
  - {<<: *base, id: a, retries: 5}
`
	// x-base is an extension field, the place for anchors: ignored, and
	// what the merge brings is the task's, its own fields winning.
	p := mustCompile(t, src, Options{})
	if p.Tasks[0].Run != "echo base" || p.Tasks[0].Retries != 5 {
		t.Fatalf("merged task: run %q, retries %d; want echo base, 5", p.Tasks[0].Run, p.Tasks[0].Retries)
	}
	src = strings.Replace(src, "x-base: &base {run: echo base, retries: 2}\n", "", 1)
	src = strings.Replace(src, "tasks:\n  - {<<: *base, id: a, retries: 5}", "defaults: {env: &e {A: '1'}}\ntasks:\n  - {id: a, run: echo, env: {<<: *e, B: '2', A: '3'}}", 1)
	p = mustCompile(t, src, Options{})
	if diff := cmp.Diff(map[string]string{"A": "3", "B": "2"}, p.Tasks[0].Env); diff != "" {
		t.Errorf("merged env (-want +got):\n%s", diff)
	}
}

func TestEncoding(t *testing.T) {
	const spec = "apiVersion: bmc/v1\nkind: Workload\nname: enc\ntasks:\n  - id: a\n    run: echo caf\u00e9\n"
	if _, diags := Compile("bom.yaml", []byte("\xef\xbb\xbf"+spec), Options{}); len(diags) > 0 {
		t.Errorf("a UTF-8 byte-order mark: %v", diags)
	}
	for _, tc := range []struct {
		name, src, want string
	}{
		{"latin-1", strings.Replace(spec, "\u00e9", "\xe9", 1), "latin-1.yaml:6:18: the spec is not valid UTF-8: byte 0xe9 here; save it as UTF-8"},
		{"utf-16", "\xff\xfea\x00p\x00", "utf-16.yaml:1:1: the spec is UTF-16 text: save it as UTF-8"},
	} {
		_, diags := Compile(tc.name+".yaml", []byte(tc.src), Options{})
		if len(diags) != 1 || diags[0].Error() != tc.want {
			t.Errorf("%s: got %v, want %s", tc.name, diags, tc.want)
		}
	}
}

func TestSetNumbersRefused(t *testing.T) {
	const src = "apiVersion: bmc/v1\nkind: Workload\nname: t\nparams:\n  n: {default: 1}\ntasks:\n  - {id: a, run: 'echo ${{ params.n }}'}\n"
	const finite = "numbers must be finite (not .inf or .nan)"
	const bits = "whole numbers must fit in 64 bits (-9223372036854775808 to 9223372036854775807)"
	huge, _ := new(big.Int).SetString("99999999999999999999", 10)
	for _, tc := range []struct {
		name string
		v    any
		want string
	}{
		{"inf", math.Inf(1), "invalid number .inf: " + finite},
		{"minus-inf", math.Inf(-1), "invalid number -.inf: " + finite},
		{"nan-in-list", []any{int64(1), math.NaN()}, "invalid number .nan: " + finite},
		{"inf-in-map", map[string]any{"a": []any{math.Inf(1)}}, "invalid number .inf: " + finite},
		{"big", huge, "integer 99999999999999999999 is out of range: " + bits},
		{"uint64", uint64(math.MaxUint64), "integer 18446744073709551615 is out of range: " + bits},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, diags := Compile("spec.yaml", []byte(src), Options{Params: map[string]any{"n": tc.v}})
			var got []string
			for _, d := range diags {
				got = append(got, d.Error())
			}
			want := []string{"spec.yaml:5:3: params.n: --set n: " + tc.want}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
		})
	}
	mustCompile(t, src, Options{Params: map[string]any{"n": 1.5}})
}

func TestDottedLabelKeys(t *testing.T) {
	src := `apiVersion: bmc/v1
kind: Workload
name: t
labels: {team.name: genomics, a.b.c: deep, a: top}
tasks:
  - {id: a, run: 'echo ${{ workload.labels.team.name }} ${{ workload.labels.a.b.c }} ${{ workload.labels.a }}'}
`
	p := mustCompile(t, src, Options{})
	if got := p.Tasks[0].Run; got != "echo genomics deep top" {
		t.Errorf("run = %q", got)
	}
	bad := strings.Replace(src, "labels.team.name", "labels.team.nam", 1)
	_, diags := Compile("spec.yaml", []byte(bad), Options{})
	if len(diags) != 1 || diags[0].Msg != "unknown name workload.labels.team.nam" || diags[0].Hint != "did you mean workload.labels.team.name?" {
		t.Errorf("diagnostics: %v (hint %q)", diags, diags[0].Hint)
	}
}

// The finalize step has no matrix: a defaults.env variable naming one is
// left out of its environment, and the tasks still get it.
func TestFinalizeEnvLeavesOutMatrix(t *testing.T) {
	src := `apiVersion: bmc/v1
kind: Workload
name: t
defaults:
  env: {SAMPLE: "${{ matrix.s }}", TAG: "x-${{ matrix.s }}", ID: "${{ task.id }}"}
tasks:
  - id: a
    matrix: {s: [s1, s2]}
    run: echo
finalize:
  run: echo
  env: {TAG: final}
`
	p := mustCompile(t, src, Options{})
	if diff := cmp.Diff(map[string]string{"ID": "finalize", "TAG": "final"}, p.Finalize.Env); diff != "" {
		t.Errorf("finalize env (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"ID": "a-s2", "SAMPLE": "s2", "TAG": "x-s2"}, p.Tasks[1].Env); diff != "" {
		t.Errorf("task env (-want +got):\n%s", diff)
	}
	// A task without a matrix is told, at defaults.
	_, diags := Compile("spec.yaml", []byte(strings.Replace(src, "    matrix: {s: [s1, s2]}\n", "", 1)), Options{})
	if len(diags) == 0 || !strings.Contains(diags[0].Error(), "spec.yaml:5:18: defaults.env.SAMPLE: matrix.s: matrix values exist only in a task with a matrix") {
		t.Errorf("diagnostics: %v", diags)
	}
}

func TestTooManyTasksMessage(t *testing.T) {
	vals := func(n int) string {
		s := make([]string, n)
		for i := range s {
			s[i] = strconv.Itoa(i)
		}
		return "[" + strings.Join(s, ", ") + "]"
	}
	src := "apiVersion: bmc/v1\nkind: Workload\nname: t\ntasks:\n  - id: a\n    matrix: {x: " + vals(3000) + ", y: " + vals(2000) + "}\n    run: echo\n"
	_, diags := Compile("spec.yaml", []byte(src), Options{})
	want := []string{"spec.yaml:5:5: tasks: the tasks expand to more than 5000000 tasks, the most a workload may have"}
	var got []string
	for _, d := range diags {
		got = append(got, d.Error())
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
	}
}
