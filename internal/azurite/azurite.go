// Package azurite starts a private Azurite blob emulator for a test. It is
// test support only: production code must not import it.
//
// Azurite comes from npm. It is looked up in PATH, then in the repository's
// .tools folder, where .ci/install-azurite.sh puts the pinned version:
//
//	npm install --prefix .tools azurite@3.35.0   (Version)
package azurite

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/bmc-dev/bmc/internal/syncbuf"
)

// Version is the Azurite release the repository pins.
const Version = "3.35.0"

// Account and Key are Azurite's fixed development account. The key is
// published with Azurite and opens nothing else.
const (
	Account = "devstoreaccount1"
	Key     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

const startTimeout = 60 * time.Second

// Start runs azurite-blob on a free loopback port, in memory, until the
// test ends, and returns a connection string for it. Without azurite-blob
// the test fails when CI=true and is skipped otherwise.
func Start(t testing.TB) (connString string) {
	t.Helper()
	bin, err := find()
	if err != nil {
		msg := fmt.Sprintf("AZURITE NOT INSTALLED: this test needs the Azurite blob emulator: %v\n"+
			"\tinstall it with: npm install --prefix .tools azurite@%s   (or: bash .ci/install-azurite.sh)", err, Version)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg + "\n\tSKIPPED (this fails instead when CI=true)")
	}

	// Another process may take the port between choosing it and Azurite
	// binding it; a second port usually does.
	var lastErr error
	for range 3 {
		port, err := freePort()
		if err != nil {
			t.Fatalf("azurite: %v", err)
		}
		if err := start(t, bin, port); err != nil {
			lastErr = err
			continue
		}
		return ConnString("http://127.0.0.1:" + strconv.Itoa(port) + "/" + Account)
	}
	t.Fatalf("azurite: %v", lastErr)
	return ""
}

// ConnString is the connection string for the development account at
// blobEndpoint.
func ConnString(blobEndpoint string) string {
	return "DefaultEndpointsProtocol=http;AccountName=" + Account + ";AccountKey=" + Key + ";BlobEndpoint=" + blobEndpoint + ";"
}

func find() (string, error) {
	if p, err := exec.LookPath("azurite-blob"); err == nil {
		return p, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", fmt.Errorf("azurite-blob is not in PATH and %v", err)
	}
	p := filepath.Join(root, ".tools", "node_modules", ".bin", "azurite-blob")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("azurite-blob is neither in PATH nor at %s", p)
	}
	return p, nil
}

// repoRoot is the nearest directory at or above the working directory
// holding go.mod; go test runs tests in their package's directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func start(t testing.TB, bin string, port int) error {
	var out syncbuf.Buffer // the emulator's output, for failure messages
	cmd := exec.Command(bin,
		"--blobHost", "127.0.0.1",
		"--blobPort", strconv.Itoa(port),
		"--inMemoryPersistence",
		"--skipApiVersionCheck",
		"--disableTelemetry",
		"--silent",
		"--loose",
	)
	// Azurite writes its bookkeeping files to the working directory even
	// with in-memory persistence.
	cmd.Dir = t.TempDir()
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	stop := func() {
		select {
		case <-exited:
			return
		default:
		}
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(startTimeout)
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			t.Cleanup(stop)
			return nil
		}
		if time.Now().After(deadline) {
			stop()
			return fmt.Errorf("%s did not listen on %s within %v; output:\n%s", bin, addr, startTimeout, out.String())
		}
		select {
		case <-exited:
			return fmt.Errorf("%s exited before listening on %s (%v); output:\n%s", bin, addr, waitErr, out.String())
		case <-tick.C:
		}
	}
}
