package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/executor"
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

// checkStore makes sure, before a run's tasks start (bmc run on the local
// backend, bmc resume), that bmc can sign in to the blob account the
// run's az:// locations go to and reach it: one request, in a container
// the run uses (logs, the --logs or spec's prefix, counts), within
// 20 seconds. Found only at upload, after tasks that may have run for
// hours, their outputs would be lost. An account that cannot be reached
// exits 3, as a Batch account does: trying again later may go through.
// One that refuses bmc's credentials, or with none to give, exits 1:
// the configuration's to fix, as on the azurebatch backend. The local
// folder store, and a run with no az:// locations, cost nothing.
func checkStore(ctx context.Context, st blobstage.Store, prog *compiler.Program, logs string) error {
	az, ok := st.(*blobstage.Azure)
	if !ok {
		return nil
	}
	container := runContainer(prog, logs)
	if container == "" {
		return nil
	}
	err := az.Check(ctx, container)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, blobstage.ErrUnreachable):
		return &exitError{code: exitInternal, err: fmt.Errorf("%w; nothing was run", err)}
	}
	return &exitError{code: exitFailed, err: fmt.Errorf("%w; nothing was run", err)}
}

// runContainer is the container a storage check reads in: the first
// output's (what a run that cannot store loses), else the logs', else
// the first blob input's; "" when the run has no az:// location.
// Containers are literal in a compiled program, but a location that
// does not parse is passed over: the run reports it.
func runContainer(prog *compiler.Program, logs string) string {
	container := func(loc string) string {
		l, err := blobstage.ParseURL(loc)
		if err != nil {
			return ""
		}
		return l.Container
	}
	var outputs, inputs [][]string
	for _, t := range prog.Tasks {
		outputs, inputs = append(outputs, outputTargets(t.Outputs)), append(inputs, blobInputs(t.Inputs))
	}
	outputs = append(outputs, outputTargets(prog.Finalize.Outputs), []string{logs})
	inputs = append(inputs, blobInputs(prog.Finalize.Inputs))
	for _, locs := range append(outputs, inputs...) {
		for _, loc := range locs {
			if c := container(loc); c != "" {
				return c
			}
		}
	}
	return ""
}

func outputTargets(outs []compiler.Output) []string {
	var locs []string
	for _, o := range outs {
		locs = append(locs, o.To)
	}
	return locs
}

func blobInputs(ins []compiler.Input) []string {
	var locs []string
	for _, in := range ins {
		if in.Kind == compiler.InputBlob || in.Kind == compiler.InputBlobPrefix {
			locs = append(locs, in.From)
		}
	}
	return locs
}

// printStorage writes the text plan's storage line: where the run's
// az:// locations would go, as bmc run chooses it here (the spec's
// storage block, then the environment), or, with --run (run), the store
// that run keeps them in, which bmc resume uses. Nothing is contacted:
// a plan makes no request. The line names the local folder, or the
// account's URL and how bmc would sign in to it; never a key or SAS.
func printStorage(w io.Writer, prog *compiler.Program, state, run string) {
	fmt.Fprintf(w, "  %-15s%s\n", "storage:", storageText(context.Background(), prog, state, run))
}

func storageText(ctx context.Context, prog *compiler.Program, state, run string) string {
	var (
		st    blobstage.Store
		err   error
		whose = "from " + storageSource(prog)
		verb  = "run"
	)
	if run != "" {
		// plan --run has read the run already; what it could not read
		// it has reported.
		dir, ferr := executor.FindRun(state, run)
		meta, merr := readMeta(dir)
		if ferr != nil || merr != nil {
			return "unknown: run " + run + " cannot be read"
		}
		st, err = openRunStore(ctx, meta.ID, meta.Storage, "", 1, prog, state)
		whose, verb = "the run's, which bmc resume keeps", "resume"
	} else {
		st, err = chooseStore(ctx, "", 1, prog, state)
	}
	if err != nil {
		return redact.String(err.Error()) + ": bmc " + verb + " refuses to start"
	}
	const unused = "not used: the workload has no az:// locations"
	used := runContainer(prog, prog.Logs) != ""
	az, ok := st.(*blobstage.Azure)
	if !ok {
		dir, _ := localDir(st.URL())
		switch {
		case !used:
			return "the local folder store " + dir + " (" + unused + ")"
		case run != "":
			return "the local folder store " + dir + " (" + whose + ")"
		}
		return "the local folder store " + dir
	}
	checked := "checked when the " + verb + " starts"
	if !used {
		checked = unused
	}
	return fmt.Sprintf("%s (%s, %s; %s)", az.URL(), whose, az.Auth(), checked)
}

// storageSource names what configures the account chooseStore opens.
func storageSource(prog *compiler.Program) string {
	if prog.Storage != nil && prog.Storage.AccountURL != "" {
		return "the spec's storage.accountUrl"
	}
	for _, k := range []string{"AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT_URL", "AZURE_STORAGE_ACCOUNT"} {
		if os.Getenv(k) != "" {
			return k
		}
	}
	return "the environment"
}

// localDir is the folder of a local store's file:// URL.
func localDir(storeURL string) (string, bool) {
	u, err := url.Parse(storeURL)
	if err != nil || u.Scheme != "file" {
		return "", false
	}
	return filepath.FromSlash(u.Path), true
}
