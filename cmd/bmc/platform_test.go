package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// TestBuildsForMacOS builds every package for macOS: the local backend is
// what developers run on their laptops, and code that only Linux has
// (/proc, getdents, stat's Ctim) must stay behind build constraints.
// The suite itself runs on Linux only; this keeps the other platform
// from breaking unseen.
func TestBuildsForMacOS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every package for another platform; skipped with -short")
	}
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		goTool = "go"
	}
	// arm64 only: no code of bmc differs between the two Mac
	// architectures, and each costs a build of every dependency.
	cmd := exec.Command(goTool, "build", "./...")
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "GOOS=darwin", "GOARCH=arm64", "CGO_ENABLED=0", "GOFLAGS=-mod=readonly")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("GOOS=darwin GOARCH=arm64 go build ./...: %v\n%s", err, out)
	}
}
