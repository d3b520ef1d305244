package azurebatch

import (
	"testing"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/planner"
)

// TestBbInputFailureNamesInput: a task Batch could not start for want of
// one of its blob inputs is told with the input's az:// location, found
// by the failure's FilePath or by the blob URL its message names (as it
// is, escaped, or with a SAS after it), never another input whose name
// only begins the same; a failure naming none of them keeps Batch's.
func TestBbInputFailureNamesInput(t *testing.T) {
	const acct = "https://acct.blob.core.windows.net"
	prog := &compiler.Program{APIVersion: "bmc/v1", Name: "in", Pool: &compiler.Pool{ID: "p"}, Tasks: []compiler.Task{{ID: "read", Slots: 1, Run: "true", Inputs: []compiler.Input{
		{Kind: compiler.InputBlob, From: "az://obs/a.csv.bak", Path: "bak"},
		{Kind: compiler.InputBlob, From: "az://obs/${{ run.id }}/my file.csv", Path: "data/f.csv"},
		{Kind: compiler.InputBlobPrefix, From: "az://raw/s1/", Path: "raw"},
	}}}}
	plan := planner.New(prog, Capabilities(prog.Pool), nil)
	b := newBackend(BackendOptions{})
	b.Follow(plan, &executor.RunInfo{ID: "run-1", Workload: "in", Storage: acct})
	pt := &plan.Program.Tasks[0]
	for _, c := range []struct {
		name string
		fi   BatchTaskFailureInfo
		want string
	}{
		{"by file path", BatchTaskFailureInfo{Code: "BlobNotFound", Message: "gone", Details: []NameValuePair{{Name: "FilePath", Value: "data/f.csv"}}},
			"input az://obs/run-1/my file.csv: not found (Batch: BlobNotFound)"},
		{"by escaped URL with a SAS", BatchTaskFailureInfo{Code: "BlobAccessDenied", Message: "resource file " + acct + "/obs/run-1/my%20file.csv?sv=1&sig=SECRET: 403"},
			"input az://obs/run-1/my file.csv: access denied (the pool's identity, or the SAS, cannot read it) (Batch: BlobAccessDenied)"},
		{"a prefix by file path", BatchTaskFailureInfo{Code: "ResourceContainerNotFound", Details: []NameValuePair{{Name: "FilePath", Value: prefixDir + "/2"}}},
			"input az://raw/s1/: not found (Batch: ResourceContainerNotFound)"},
		{"a longer name is another blob", BatchTaskFailureInfo{Code: "BlobNotFound", Message: "resource file " + acct + "/obs/a.csv.bak.old: 404"}, ""},
		{"not a download", BatchTaskFailureInfo{Code: "FailureExitCode", Details: []NameValuePair{{Name: "FilePath", Value: "bak"}}}, ""},
	} {
		got, ok := b.inputFailure(pt, &c.fi)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("%s: %q %v, want %q", c.name, got, ok, c.want)
		}
	}
}
