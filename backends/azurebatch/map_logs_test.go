package azurebatch

import "testing"

// TestMapLogsFilled: the logs prefix's run-time expressions are filled in
// for the tasks' output files, and the run id is in the path once.
func TestMapLogsFilled(t *testing.T) {
	for _, tt := range []struct{ logs, container, path string }{
		{"az://logs/", "logs", "maps-261128000000-abc/script"},
		{"az://logs/${{ run.name }}/", "logs", "maps/maps-261128000000-abc/script"},
		{"az://logs/${{ run.name }}/${{ run.id }}/", "logs", "maps/maps-261128000000-abc/script"},
	} {
		t.Run(tt.logs, func(t *testing.T) {
			_, m := mapOne(t, mapSpec, fakeLocator{}, MapOptions{Staged: staged(), Logs: tt.logs})
			var got *OutputFileBlobContainerDestination
			for _, of := range m.Tasks[0].OutputFiles {
				if of.FilePattern == "../std*.txt" {
					got = of.Destination.Container
				}
			}
			if got == nil {
				t.Fatalf("no output file for the logs: %+v", m.Tasks[0].OutputFiles)
			}
			wantURL := "https://acct.blob.core.windows.net/" + tt.container + "?sv=2025-01-05&sp=racwl&sig=SECRET"
			if got.ContainerURL != wantURL || got.Path != tt.path {
				t.Errorf("logs go to %s %s, want %s %s", got.ContainerURL, got.Path, wantURL, tt.path)
			}
		})
	}
}
