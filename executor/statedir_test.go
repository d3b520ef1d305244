package executor

import (
	"os"
	"path/filepath"
	"testing"
)

func TestEnsureStateDir(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, state string)
		want  string // the .gitignore after; "" for none
	}{
		{name: "new", want: stateGitignore},
		{name: "empty", setup: func(t *testing.T, state string) { testMkdir(t, state) }, want: stateGitignore},
		{name: "made before .gitignore", setup: func(t *testing.T, state string) {
			testMkdir(t, filepath.Join(state, "runs", "w-260301120000-ab"))
			testMkdir(t, filepath.Join(state, "storage", "res"))
		}, want: stateGitignore},
		{name: "the emulator's data first", setup: func(t *testing.T, state string) {
			// As the README runs it: bmc emulator --data .bmc/emulator.
			testWrite(t, filepath.Join(state, "emulator", "account.json"), "{}")
		}, want: stateGitignore},
		{name: "own .gitignore kept", setup: func(t *testing.T, state string) {
			testMkdir(t, filepath.Join(state, "runs"))
			testWrite(t, filepath.Join(state, ".gitignore"), "runs/\n")
		}, want: "runs/\n"},
		{name: "someone's folder", setup: func(t *testing.T, state string) {
			testMkdir(t, state)
			testWrite(t, filepath.Join(state, "notes.md"), "mine\n")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "repo", ".bmc")
			if tc.setup != nil {
				tc.setup(t, state)
			}
			for range 2 { // the second time finds it all there
				if err := EnsureStateDir(state); err != nil {
					t.Fatal(err)
				}
			}
			if fi, err := os.Stat(state); err != nil || !fi.IsDir() {
				t.Fatalf("no state directory: %v", err)
			}
			b, err := os.ReadFile(filepath.Join(state, ".gitignore"))
			if tc.want == "" {
				if err == nil {
					t.Errorf("a .gitignore was written: %q", b)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.want {
				t.Errorf(".gitignore = %q, want %q", b, tc.want)
			}
		})
	}
}

// A state directory that is a file is an error, not a .gitignore beside it.
func TestEnsureStateDirNotADir(t *testing.T) {
	state := filepath.Join(t.TempDir(), ".bmc")
	testWrite(t, state, "")
	if err := EnsureStateDir(state); err == nil {
		t.Fatal("no error")
	}
}

func testMkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func testWrite(t *testing.T, path, s string) {
	t.Helper()
	testMkdir(t, filepath.Dir(path))
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}
