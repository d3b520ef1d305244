package local

import (
	"testing"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/executor"
)

// bmc's credentials for Batch and storage do not reach tasks, which on
// Batch never have them, unless a task's own env sets one.
func TestEnvironmentLeavesOutCredentials(t *testing.T) {
	creds := []string{"AZURE_BATCH_ACCESS_KEY", "AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN"}
	for _, k := range creds {
		t.Setenv(k, "bmc's "+k)
	}
	t.Setenv("AZURE_STORAGE_ACCOUNT", "acct")
	f := newFixture(t, Options{})
	task := &compiler.Task{ID: "t", Env: map[string]string{"AZURE_STORAGE_KEY": "the task's own"}}
	env := envOf(t, f, &executor.Attempt{Run: f.run, Task: task, Number: 1})
	for _, k := range creds {
		v, ok := env[k]
		switch {
		case k == "AZURE_STORAGE_KEY":
			if v != "the task's own" {
				t.Errorf("%s = %q (set: %v), want the task's own value", k, v, ok)
			}
		case ok:
			t.Errorf("%s reached the task (%q)", k, v)
		}
	}
	if env["AZURE_STORAGE_ACCOUNT"] != "acct" {
		t.Errorf("AZURE_STORAGE_ACCOUNT = %q, want bmc's: only credentials are left out", env["AZURE_STORAGE_ACCOUNT"])
	}
}
