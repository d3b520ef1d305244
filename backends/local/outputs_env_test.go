package local

import (
	"strings"
	"testing"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/executor"
	"github.com/google/go-cmp/cmp"
)

// TestOutputPatternExpandsEnv: an output's path has the task's
// environment expanded before it is matched, as Batch expands an output
// file's filePattern on the node, and a single file is named, under a
// prefix, by the path as written, as Batch names it from the destination
// path it is given.
func TestOutputPatternExpandsEnv(t *testing.T) {
	f := newFixture(t, Options{})
	task := &compiler.Task{ID: "t1", Env: map[string]string{"HOME": "/nowhere", "SAMPLE": "s7"},
		Run: `echo x > "$AZ_BATCH_TASK_ID.txt"; echo y > 'lit$HOME.txt'
mkdir -p "out/$SAMPLE"; echo z > "out/$SAMPLE/z.bam"
echo w > w.txt; echo p > s7.csv`,
		Outputs: []compiler.Output{
			{Pattern: "$AZ_BATCH_TASK_ID.txt", To: "az://envp/e/", When: compiler.WhenSuccess},
			{Pattern: "lit$HOME.txt", To: "az://envp/lit/", When: compiler.WhenSuccess},
			{Pattern: "out/${SAMPLE}/*.bam", To: "az://envp/b/", When: compiler.WhenSuccess},
			{Pattern: "$AZ_BATCH_TASK_WORKING_DIR/w.txt", To: "az://envp/w/", When: compiler.WhenSuccess},
			{Pattern: "%SAMPLE%.csv", To: "az://envp/one.csv", When: compiler.WhenSuccess},
		}}
	res := f.runTask(t, task, 1)
	checkState(t, res, executor.Succeeded)
	want := map[string]string{
		"e/$AZ_BATCH_TASK_ID.txt": "x\n",
		"b/z.bam":                 "z\n",
		"w/w.txt":                 "w\n",
		"one.csv":                 "p\n",
	}
	if diff := cmp.Diff(want, f.blobs(t, "envp")); diff != "" {
		t.Errorf("blobs (-want +got):\n%s", diff)
	}

	// A variable can name a place outside the working directory, where
	// the local backend collects nothing: said, not ignored.
	res = f.runTask(t, &compiler.Task{ID: "t2", Run: "true", Outputs: []compiler.Output{
		{Pattern: "$AZ_BATCH_TASK_DIR/stdout.txt", To: "az://envp/logs/", When: compiler.WhenSuccess},
	}}, 1)
	checkState(t, res, executor.Failed)
	if !strings.Contains(res.Reason, "outside the task's working directory") || !strings.Contains(res.Reason, "$AZ_BATCH_TASK_DIR/stdout.txt") {
		t.Errorf("reason %q", res.Reason)
	}
}
