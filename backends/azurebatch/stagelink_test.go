package azurebatch

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/bmc-dev/bmc/internal/azurite"
	"github.com/bmc-dev/bmc/internal/blobstage"
)

// TestStageLinkedFolder: an input whose from is a link to a folder brings
// that folder, as the local backend's copy does, not an error for the
// link the walk would not follow.
func TestStageLinkedFolder(t *testing.T) {
	ctx := t.Context()
	st, err := StorageFromConnectionString(azurite.Start(t), StorageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeTree(t, filepath.Join(dir, "real"), map[string]string{"a.txt": "A", "sub/b.txt": "B"})
	if err := os.Symlink("real", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	be := NewBackend(BackendOptions{Storage: st, Staging: blobstage.Location{Container: "bmc", Path: "staging/"}})
	want, _, err := be.stageLocal(ctx, dir, "real")
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := be.stageLocal(ctx, dir, "link")
	if err != nil {
		t.Fatalf("stage a link to a folder: %v", err)
	}
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Errorf("staged %+v, want %+v", got, want)
	}
}
