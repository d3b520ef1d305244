package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	// Tests that need bmc as a real process (to kill it) run this test
	// binary with BMC_TEST_AS_BMC=1.
	if os.Getenv("BMC_TEST_AS_BMC") == "1" {
		os.Exit(Main())
	}
	testscript.Main(m, map[string]func(){
		"bmc": func() { os.Exit(Main()) },
	})
}

// TestScripts runs the CLI end to end: testdata/script/*.txtar.
func TestScripts(t *testing.T) {
	examples, err := filepath.Abs("../../examples")
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(e *testscript.Env) error {
			e.Setenv("EXAMPLES", examples)
			return nil
		},
		RequireExplicitExec: true,
	})
}
