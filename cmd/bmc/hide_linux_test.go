package main

import (
	"os"
	"os/exec"
	"testing"

	"github.com/bmc-dev/bmc/compiler"
)

// A bmc given the callback's secret makes itself not dumpable, so that
// its tasks cannot read the secret from its /proc files. Checked in a
// process of its own: the switch cannot be undone.
func TestCallbackSecretHidden(t *testing.T) {
	if os.Getenv("BMC_TEST_HIDE") == "1" {
		if environHidden() {
			os.Exit(2) // hidden before anything asked for it
		}
		prog, diags := compiler.Compile("hide.yaml", []byte(`apiVersion: bmc/v1
kind: Workload
name: hide
tasks:
  - {id: a, run: "true"}
finalize:
  callback: {url: "https://example.org/hook", secretEnv: HIDE_SECRET}
`), compiler.Options{})
		if len(diags) > 0 {
			t.Fatal(diags)
		}
		if _, err := readCallbackEnv(prog); err != nil {
			t.Fatal(err)
		}
		if !environHidden() {
			os.Exit(3)
		}
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCallbackSecretHidden$")
	cmd.Env = append(os.Environ(), "BMC_TEST_HIDE=1", "HIDE_SECRET=s3cr3t")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the process holding the secret: %v (exit 2: hidden from the start, 3: not hidden)\n%s", err, out)
	}
}
