package azurebatch

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestMapFinalizeLogs: with a logs prefix, the job manager task uploads
// the finalize step's logs (which it writes to finalize/ in its task
// directory) to <logs><run id>/finalize/, where the local backend puts
// them, after the step's own outputs.
func TestMapFinalizeLogs(t *testing.T) {
	jobManager := func() *BatchJobManagerTask {
		return &BatchJobManagerTask{ID: FinalizeTaskID, CommandLine: "bmc finalize --watch",
			OutputFiles: []OutputFile{{FilePattern: NodeUploadDir + "/0/summary.json"}}}
	}
	_, m := mapOne(t, mapSpec, fakeLocator{}, MapOptions{Staged: staged(), Logs: "az://logs/", JobManager: jobManager()})
	jm := m.Job.JobManagerTask
	if jm == nil || len(jm.OutputFiles) != 2 {
		t.Fatalf("job manager task %+v", jm)
	}
	want := OutputFile{
		FilePattern: "../finalize/std*.txt",
		Destination: OutputFileDestination{Container: &OutputFileBlobContainerDestination{
			ContainerURL: "https://acct.blob.core.windows.net/logs?sv=2025-01-05&sp=racwl&sig=SECRET",
			Path:         "maps-261128000000-abc/finalize"}},
		UploadOptions: OutputFileUploadConfig{UploadCondition: UploadOnTaskCompletion},
	}
	if diff := cmp.Diff(want, jm.OutputFiles[1]); diff != "" {
		t.Errorf("the finalize step's logs (-want +got):\n%s", diff)
	}

	_, m = mapOne(t, mapSpec, fakeLocator{}, MapOptions{Staged: staged(), JobManager: jobManager()})
	if n := len(m.Job.JobManagerTask.OutputFiles); n != 1 {
		t.Errorf("without a logs prefix: %d output files, want the step's own", n)
	}
}
