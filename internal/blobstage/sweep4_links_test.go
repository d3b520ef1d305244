package blobstage

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSweep4CopyLocalLinks: the local backend stages a folder input with
// CopyLocal, which copies a link to a file as the file and refuses a link
// to a folder, a link to nothing and one that loops. The plan's check of
// folder inputs (planner.SpecInputFolders) tells exactly these, before
// the run; this test keeps the two in step.
func TestSweep4CopyLocalLinks(t *testing.T) {
	for _, tt := range []struct {
		name   string
		target string // of the link "l" in the folder, beside a file f.txt and a folder sub
		fails  string
	}{
		{"to a file", "f.txt", ""},
		{"to a file outside", "../outside.txt", ""},
		{"to a folder inside", "sub", "l: symbolic link to a directory is not copied"},
		{"to a folder outside", "..", "l: symbolic link to a directory is not copied"},
		{"to nothing", "nothing", "no such file or directory"},
		{"in a loop", "l", "too many levels of symbolic links"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			src := filepath.Join(root, "in")
			for _, d := range []string{filepath.Join(src, "sub")} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for _, f := range []string{filepath.Join(src, "f.txt"), filepath.Join(src, "sub", "g.txt"), filepath.Join(root, "outside.txt")} {
				if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Symlink(tt.target, filepath.Join(src, "l")); err != nil {
				t.Fatal(err)
			}
			_, err := CopyLocal(src, filepath.Join(root, "wd"))
			switch {
			case tt.fails == "" && err != nil:
				t.Errorf("copy: %v", err)
			case tt.fails != "" && (err == nil || !strings.Contains(err.Error(), tt.fails)):
				t.Errorf("copy: %v, want an error saying %q", err, tt.fails)
			}
		})
	}
}
