package procrun

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// A process that inherits bmc's environment does not get bmc's
// credentials: tasks on Batch never have them.
func TestInheritedEnvLeavesOutCredentials(t *testing.T) {
	for _, k := range Credentials {
		t.Setenv(k, "secret-"+k)
	}
	t.Setenv("BMC_PROCRUN_INHERITED", "from parent")
	out := filepath.Join(t.TempDir(), "out")
	r, err := Run(context.Background(), Spec{Argv: []string{"/usr/bin/env"}, Stdout: out})
	if err != nil || r.ExitCode != 0 {
		t.Fatalf("Run: %+v, %v", r, err)
	}
	got := readFile(t, out)
	if !strings.Contains(got, "BMC_PROCRUN_INHERITED=from parent\n") {
		t.Errorf("the environment was not inherited:\n%s", got)
	}
	for _, k := range Credentials {
		if strings.Contains(got, k+"=") {
			t.Errorf("%s was inherited", k)
		}
	}
	if env := Environ("BMC_PROCRUN_INHERITED"); strings.Contains(strings.Join(env, "\n"), "BMC_PROCRUN_INHERITED=") {
		t.Error("Environ kept a variable it was to hide")
	}
}

// The secrets the Azure SDK signs in with are credentials too: a task
// that prints its environment must not show them.
func TestEnvironLeavesOutSignInSecrets(t *testing.T) {
	for _, k := range []string{"AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PASSWORD", "AZURE_PASSWORD", "AZURE_STORAGE_KEY"} {
		t.Setenv(k, "secret")
	}
	t.Setenv("AZURE_CLIENT_ID", "an-id") // not a secret: kept
	env := strings.Join(Environ(), "\n") + "\n"
	for _, k := range []string{"AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PASSWORD", "AZURE_PASSWORD", "AZURE_STORAGE_KEY"} {
		if strings.Contains(env, k+"=") {
			t.Errorf("Environ kept %s", k)
		}
	}
	if !strings.Contains(env, "AZURE_CLIENT_ID=an-id\n") {
		t.Error("Environ dropped AZURE_CLIENT_ID, which is no secret")
	}
}
