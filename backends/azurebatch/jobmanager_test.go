package azurebatch

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestFindPackageScript: the job manager task finds bmc's application
// package whichever case Batch gives its variable, and fails saying so
// when there is none (the command runs under bash -u).
func TestFindPackageScript(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	script := findPackageScript("BmcTool", "1.2-3") + `echo "$bmc_pkg"`
	for _, tc := range []struct {
		env, want string
	}{
		{"AZ_BATCH_APP_PACKAGE_BmcTool_1_2_3=/pk/kept", "/pk/kept"},
		{"AZ_BATCH_APP_PACKAGE_bmctool_1_2_3=/pk/lower", "/pk/lower"},
		{"AZ_BATCH_APP_PACKAGE_BMCTOOL_1_2_3=/pk/upper", "/pk/upper"},
		{"AZ_BATCH_APP_PACKAGE_othertool_1_2_3=/pk/other", ""},
	} {
		cmd := exec.Command("bash", "-euo", "pipefail", "-c", script, "finalize")
		cmd.Env = append(os.Environ(), tc.env)
		out, err := cmd.CombinedOutput()
		switch {
		case tc.want != "" && (err != nil || strings.TrimSpace(string(out)) != tc.want):
			t.Errorf("%s: %q, %v; want %s", tc.env, out, err, tc.want)
		case tc.want == "" && (err == nil || !strings.Contains(string(out), "no AZ_BATCH_APP_PACKAGE_BMCTOOL_1_2_3 variable") || !strings.Contains(string(out), "BmcTool@1.2-3")):
			t.Errorf("%s: %q, %v; want a failure naming the variable", tc.env, out, err)
		}
	}
}
