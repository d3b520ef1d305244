package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/internal/azurite"
	"github.com/bmc-dev/bmc/internal/blobstage"
)

// TestRunGenomicsOnAzurite runs the genomics example on the local backend
// with its az:// locations in a real blob account (Azurite), as a user
// with AZURE_STORAGE_CONNECTION_STRING set would, and reads the results
// back from the account.
func TestRunGenomicsOnAzurite(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Azurite")
	}
	cs := azurite.Start(t)
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	logs := "az://logs/"
	cmd := bmcProcess(t, dir, "run", "../../examples/genomics.yaml", "--set", "samples=[s1, s2]",
		"--state-dir", state, "--progress", "plain", "--logs", logs)
	cmd.Dir = mustAbs(t, ".")
	cmd.Env = append(cmd.Env, "AZURE_STORAGE_CONNECTION_STRING="+cs)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bmc run: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "AccountKey") || strings.Contains(string(out), "sig=") {
		t.Fatalf("output shows a secret:\n%s", out)
	}
	ids, _ := executor.ListRunIDs(state)
	if len(ids) != 1 {
		t.Fatalf("runs: %v", ids)
	}
	id := ids[0]
	if _, err := os.Stat(filepath.Join(state, "storage")); err == nil {
		t.Error("the local folder store was used although a blob account is configured")
	}
	store, err := blobstage.NewFromConnectionString(cs, blobstage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := filepath.Join(dir, "all.bam")
	loc, _ := blobstage.ParseURL("az://results/" + id + "/all.bam")
	if _, err := store.Download(context.Background(), loc, got); err != nil {
		t.Fatalf("merged output not in the account: %v", err)
	}
	b, _ := os.ReadFile(got)
	// Two samples, two reads each kept by trim (read2 is too short).
	if lines := strings.Count(string(b), "\n"); lines != 4 {
		t.Errorf("all.bam has %d lines, want 4:\n%s", lines, b)
	}
	for _, s := range []string{"s1", "s2"} {
		if !strings.Contains(string(b), s+"\t") {
			t.Errorf("all.bam lacks sample %s", s)
		}
	}
	// Task logs went to the logs prefix.
	logLoc, _ := blobstage.ParseURL(logs + id + "/merge/stdout.txt")
	if _, err := store.Download(context.Background(), logLoc, filepath.Join(dir, "merge.stdout")); err != nil {
		t.Errorf("merge's stdout was not uploaded to %s: %v", logs, err)
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
