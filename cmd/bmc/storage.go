package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/internal/blobstage"
	"github.com/bmc-dev/bmc/internal/redact"
)

// openStore picks the store for az:// locations: --storage, then the
// spec's storage block, then a blob account configured in the environment
// (the Azure CLI's variables), then the local folder store under the state
// directory, so that every workload runs with no cloud at all. A store
// that cannot be opened is the configuration's to fix: exit 1.
func openStore(ctx context.Context, flag string, transfers int, prog *compiler.Program, state string) (blobstage.Store, error) {
	st, err := chooseStore(ctx, flag, transfers, prog, state)
	var ue *usageError
	if err != nil && !errors.As(err, &ue) {
		return nil, &exitError{code: exitFailed, err: err}
	}
	return st, err
}

func chooseStore(ctx context.Context, flag string, transfers int, prog *compiler.Program, state string) (blobstage.Store, error) {
	choice := flag
	var accountURL string
	if prog.Storage != nil {
		if choice == "" {
			choice = prog.Storage.Backend
		}
		accountURL = prog.Storage.AccountURL
	}
	local := func() blobstage.Store {
		root, _ := filepath.Abs(filepath.Join(state, "storage"))
		return blobstage.NewLocal(root)
	}
	switch choice {
	case "local":
		return local(), nil
	case "", "azure":
	default:
		return nil, usagef("unknown --storage %q: expected local or azure", choice)
	}
	if accountURL != "" {
		st, err := blobstage.ForAccount(accountURL, blobstage.Options{Parallelism: transfers})
		if err != nil {
			return nil, fmt.Errorf("storage %s: %s", accountURL, redact.String(err.Error()))
		}
		return st, nil
	}
	az, ok, err := blobstage.FromEnv(ctx, blobstage.Options{Parallelism: transfers})
	if err != nil {
		return nil, fmt.Errorf("storage: %s", redact.String(err.Error()))
	}
	if ok {
		return az, nil
	}
	if choice == "azure" {
		return nil, fmt.Errorf("storage azure: no blob account is configured: set AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_ACCOUNT_URL or AZURE_STORAGE_ACCOUNT")
	}
	return local(), nil
}

// openRunStore opens the store a run recorded (recorded, its URL) for
// bmc resume: its az:// locations are where its earlier sessions put
// them, whatever the environment configures now. An Azure account is
// opened with the credentials the environment (or the spec's storage
// block) gives for it; a store that cannot be opened, or a --storage
// (flag) naming another one, is refused. A run that recorded none
// predates the record, and opens the store as bmc run does.
func openRunStore(ctx context.Context, id, recorded, flag string, transfers int, prog *compiler.Program, state string) (blobstage.Store, error) {
	if recorded == "" {
		return openStore(ctx, flag, transfers, prog, state)
	}
	switch flag {
	case "", "local", "azure":
	default:
		return nil, usagef("unknown --storage %q: expected local or azure", flag)
	}
	fail := func(format string, args ...any) error {
		return &exitError{code: exitFailed, err: fmt.Errorf("run %s keeps its files in %s: %s", id, recorded, fmt.Sprintf(format, args...))}
	}
	if u, err := url.Parse(recorded); err == nil && u.Scheme == "file" {
		if flag == "azure" {
			return nil, fail("--storage azure names another store; resume it without --storage")
		}
		dir := filepath.FromSlash(u.Path)
		here := filepath.Join(state, "storage")
		if abs, err := filepath.Abs(here); err == nil {
			here = abs
		}
		// The store the run recorded is its state directory's own. A
		// project that moved, or was copied, with its state directory
		// has it where the state directory now is: written to as it
		// stood, it would be made again where nothing reads it, or
		// would be the original's, not the copy's.
		// (A run that has written nothing yet has no folder: the same
		// one then, where the state directory did not move.)
		if filepath.Base(dir) == "storage" && !sameDir(filepath.Dir(dir), filepath.Dir(here)) {
			dir = here
		} else if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			dir = here
		}
		return blobstage.NewLocal(dir), nil
	}
	if flag == "local" {
		return nil, fail("--storage local names another store; resume it without --storage")
	}
	st, err := chooseStore(ctx, "azure", transfers, prog, state)
	if err != nil {
		return nil, fail("it cannot be opened: %v", err)
	}
	if st.URL() != recorded {
		return nil, fail("the environment configures %s instead; configure the run's account (AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT_URL with its credentials) to resume it", st.URL())
	}
	return st, nil
}
