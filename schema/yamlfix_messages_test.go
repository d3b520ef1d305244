package schema

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// validateLines parses and validates src, and renders what is found as
// diagLines does.
func validateLines(t *testing.T, src string) []string {
	t.Helper()
	s, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	root, diags := Parse("s.yaml", []byte(src))
	if diags.Fatal() {
		t.Fatalf("parse: %v", diagLines(diags))
	}
	return diagLines(append(diags, s.Validate(root)...))
}

// TestYamlfixMessages: the messages for common mistakes say what would
// be right, at the place of the mistake.
func TestYamlfixMessages(t *testing.T) {
	head := "apiVersion: bmc/v1\nkind: Workload\nname: x\n"
	task := "tasks:\n  - id: a\n    run: echo\n"
	for _, tc := range []struct {
		name, body string
		want       []string
	}{
		{name: "param written as its value", body: "params:\n  threads: 4\n  who: Batch\n  samples: [a, b]\n  need:\n" + task, want: []string{
			"5:12: params.threads: expected map, got int 4",
			"hint: a param is declared as a map, its value as the default: threads: {default: 4}",
			`6:8: params.who: expected map, got string "Batch"`,
			`hint: a param is declared as a map, its value as the default: who: {default: "Batch"}`,
			"7:12: params.samples: expected map, got list",
			"hint: a param is declared as a map, its value as the default: samples: {default: [...]}",
			"8:8: params.need: expected map, got null",
			"hint: a param is declared as a map; one with no default, which --set must give, is need: {}",
		}},
		{name: "duration without a unit", body: task + "    timeout: 10\n  - id: b\n    run: echo\n    timeout: -5\n", want: []string{
			"7:14: tasks[0].timeout: expected a duration such as 10s, 5m, 1h30m, got int 10",
			"hint: a duration needs a unit: 10s, 10m or 10h",
			"10:14: tasks[1].timeout: expected a duration such as 10s, 5m, 1h30m, got int -5",
			"hint: a duration must be positive",
		}},
		{name: "negative duration", body: task + "finalize:\n  timeout: -5m\n  callback: {url: \"https://h/x\", timeout: -1h30m}\n", want: []string{
			`8:12: finalize.timeout: invalid value "-5m": a duration must be positive`,
			`9:43: finalize.callback.timeout: invalid value "-1h30m": a duration must be positive`,
		}},
		{name: "numbers for strings", body: "labels: {n: 3, on: true}\npackages:\n  - {name: p, version: 2.1}\n" + task, want: []string{
			"4:13: labels.n: expected string, got int 3",
			`hint: write "3" in quotes for the text`,
			"4:20: labels.on: expected string, got bool true",
			`hint: write "true" in quotes for the text`,
			"6:24: packages[0].version: expected string, got number 2.1",
			`hint: write "2.1" in quotes for the text`,
		}},
		{name: "numbers in quotes", body: task + "    retries: \"3\"\n    slots: \"x\"\n", want: []string{
			`7:14: tasks[0].retries: expected int, got string "3"`,
			"hint: write 3 without quotes for the number",
			`8:12: tasks[0].slots: expected int, got string "x"`,
		}},
		{name: "other tools' names", body: "defaults:\n  retry: 2\n  image: x\ntasks:\n  - id: a\n    run: echo\n" +
			"    needs: [b]\n    max_retries: 3\n    image: myacr.azurecr.io/a:1\n    environment: {A: b}\n    timeout-minutes: 10\n" +
			"  - name: b\n    cmd: echo\nfinalize:\n  after: [a]\n  script: x\n", want: []string{
			`5:3: defaults.retry: unknown field "retry"`, "hint: did you mean retries?",
			`6:3: defaults.image: unknown field "image"`, "hint: did you mean container: {image: x}?",
			`10:5: tasks[0].needs: unknown field "needs"`, "hint: did you mean dependsOn?",
			`11:5: tasks[0].max_retries: unknown field "max_retries"`, "hint: did you mean retries?",
			`12:5: tasks[0].image: unknown field "image"`, "hint: did you mean container: {image: myacr.azurecr.io/a:1}?",
			`13:5: tasks[0].environment: unknown field "environment"`, "hint: did you mean env?",
			`14:5: tasks[0].timeout-minutes: unknown field "timeout-minutes"`, "hint: did you mean timeout? It takes a duration such as 90s, 30m or 2h",
			`15:5: tasks[1]: missing required field "id"`,
			`15:5: tasks[1]: one of run or command is required`,
			`15:5: tasks[1].name: unknown field "name"`, "hint: did you mean id?",
			`16:5: tasks[1].cmd: unknown field "cmd"`, "hint: did you mean run (a shell script) or command (a list: the program and its arguments)?",
			// The finalize step has no dependsOn: no hint.
			`18:3: finalize.after: unknown field "after"`,
			`19:3: finalize.script: unknown field "script"`, "hint: did you mean run?",
		}},
		{name: "key and value without a colon", body: "tasks:\n  - id b\n", want: []string{
			`5:5: tasks[0]: expected map, got string "id b"`, "hint: did you mean id: b? A key is followed by a colon",
		}},
		{name: "ASCII only", body: "tasks:\n  - id: é\n    run: echo\n    env: {É: x}\n", want: []string{
			`5:9: tasks[0].id: invalid value "é": expected ASCII letters, digits, _ and - (and ${{ }} expressions)`,
			`7:11: tasks[0].env."É": invalid key "É": expected an environment variable name: ASCII letters, digits and _, not starting with a digit`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, validateLines(t, head+tc.body)); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
		})
	}
	got := validateLines(t, strings.Replace(head, "name: x", "name: é", 1)+task)
	want := []string{`3:7: name: invalid value "é": expected 1-48 lower-case ASCII letters (a-z), digits and dashes, starting with a letter or digit`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("name (-want +got):\n%s", diff)
	}
}

// TestYamlfixExtensionFields: top-level x- fields are where anchors go;
// nothing in them is checked, and every other unknown field is still
// an error.
func TestYamlfixExtensionFields(t *testing.T) {
	src := "apiVersion: bmc/v1\nkind: Workload\nname: x\n" +
		"x-common: &common\n  retries: 2\n  timeout: 1h\n  big: 99999999999999999999\n  bogus: {a: [1]}\n" +
		"x-env: &env {A: \"1\"}\nx-: 1\n" +
		"tasks:\n  - id: a\n    <<: *common\n    run: echo\n    env: *env\n"
	got := validateLines(t, src)
	// The merged map brings big and bogus into the task, where they are
	// checked: reported where they are written.
	want := []string{
		`7:3: tasks[0].big: unknown field "big"`,
		"7:8: tasks[0].big: integer 99999999999999999999 is out of range: whole numbers must fit in 64 bits (-9223372036854775808 to 9223372036854775807)",
		`hint: write "99999999999999999999" in quotes for the text`,
		`8:3: tasks[0].bogus: unknown field "bogus"`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
	}
	got = validateLines(t, "apiVersion: bmc/v1\nkind: Workload\nname: x\nX-common: 1\nx_common: 2\nxcommon: 3\nx-ok: 4\n"+
		"tasks:\n  - id: a\n    run: echo\n  - id: b\n    run: echo\n    x-nested: 1\n")
	want = []string{
		`4:1: X-common: unknown field "X-common"`, "hint: extension fields, which bmc ignores, start with x- (lower case, then a dash)",
		`5:1: x_common: unknown field "x_common"`, "hint: extension fields, which bmc ignores, start with x- (lower case, then a dash)",
		`6:1: xcommon: unknown field "xcommon"`,
		// Only the top level has extension fields.
		`13:5: tasks[1].x-nested: unknown field "x-nested"`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
	}
}
