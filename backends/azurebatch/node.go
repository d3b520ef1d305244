package azurebatch

// The finalize step on the pool: bmc finalize --watch, the job manager
// task of every run that finalizes there. It follows the job like the
// submitting client does, from the run record staged beside it, waits for
// the client's "submitted" mark and for every task to complete or be
// blocked behind a failure, runs the finalize step in its own directory,
// posts the callback, leaves its result for the client to read, and exits;
// Batch then ends the job (killJobOnCompletion).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/internal/blobstage"
	"github.com/bmc-dev/bmc/internal/filepattern"
	"github.com/bmc-dev/bmc/internal/procrun"
	"github.com/bmc-dev/bmc/internal/redact"
	"github.com/bmc-dev/bmc/planner"
)

// NodeClient is a client for the account a node belongs to
// (AZ_BATCH_ACCOUNT_URL), authenticated with the pool's managed identity:
// Batch no longer gives tasks authentication tokens. Off a node it is
// FromEnv.
func NodeClient(identity string, opt Options) (*Client, error) {
	endpoint := os.Getenv("AZ_BATCH_ACCOUNT_URL")
	if endpoint == "" {
		return FromEnv(opt)
	}
	if identity == "" {
		return nil, errors.New("azurebatch: the run has no pool identity to reach Batch with from the node (Batch no longer gives tasks authentication tokens)")
	}
	cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{ID: azidentity.ResourceID(identity)})
	if err != nil {
		return nil, fmt.Errorf("azurebatch: the pool identity: %s", redact.String(err.Error()))
	}
	return New(endpoint, TokenAuth(cred), opt)
}

// NodeStore is the blob store the finalize step on a node downloads its
// az:// inputs from: the run's account (storage, its blob endpoint),
// reached with the pool's managed identity, as the tasks' resource files
// are. Off a node it is the account the environment names, as for bmc
// run. nil, with no error, when the step has no az:// input.
func NodeStore(ctx context.Context, cfg *NodeConfig) (blobstage.Store, error) {
	if !slices.ContainsFunc(cfg.Program.Finalize.Inputs, func(in compiler.Input) bool {
		return in.Kind == compiler.InputBlob || in.Kind == compiler.InputBlobPrefix
	}) {
		return nil, nil
	}
	if os.Getenv("AZ_BATCH_ACCOUNT_URL") == "" {
		a, ok, err := blobstage.FromEnv(ctx, blobstage.Options{})
		if !ok && err == nil {
			err = errors.New("no storage account is configured")
		}
		if err != nil {
			return nil, err
		}
		return a, nil
	}
	if cfg.Identity == "" || cfg.Storage == "" {
		return nil, errors.New("azurebatch: the run record names no storage account and pool identity for the finalize step's az:// inputs")
	}
	cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{ID: azidentity.ResourceID(cfg.Identity)})
	if err != nil {
		return nil, fmt.Errorf("azurebatch: the pool identity: %s", redact.String(err.Error()))
	}
	a, err := blobstage.NewFromURL(cfg.Storage, cred, blobstage.Options{})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// NodeRun says where the job manager task is and how it reports.
type NodeRun struct {
	Config *NodeConfig
	Client *Client
	// WorkDir and TaskDir are the task's working directory and task
	// directory (AZ_BATCH_TASK_WORKING_DIR, AZ_BATCH_TASK_DIR).
	WorkDir, TaskDir string
	// Secret signs the callback.
	Secret []byte
	// CallbackURL is the callback's URL when the spec gives it through a
	// variable (urlEnv).
	CallbackURL string
	Log         *slog.Logger
	Events      executor.Sink
	// Store downloads the finalize step's az:// inputs when it runs; nil
	// when the node has none, and the step then fails on such an input.
	Store blobstage.Store
	// HTTP fetches its https:// inputs; nil for http.DefaultClient.
	HTTP *http.Client
}

// RunNode follows the job to its end, runs the finalize step, posts the
// callback and writes NodeResultFile into the working directory. The
// result is written whatever happens, with Error set when the run could
// not be followed. The callback's URL and headers come from the variable
// the record's CallbackEnv names; without it the callback is not sent,
// and the result says why.
func RunNode(ctx context.Context, nr NodeRun) (*NodeResult, error) {
	cfg := nr.Config
	log := nr.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	runDir := filepath.Join(nr.TaskDir, "bmc")
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return nil, err
	}
	res := &NodeResult{}
	write := func() error {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(nr.WorkDir, NodeResultFile), append(b, '\n'), 0o644)
	}
	prog, cbErr := cfg.program(os.Getenv)
	if cbErr != nil {
		// The run is followed and finalized all the same; the callback,
		// which cannot go as the spec says, is reported not delivered.
		log.Error("callback not sent", "err", cbErr)
		p := *cfg.Program
		p.Finalize.Callback = nil
		prog = &p
	}
	plan := planner.New(prog, Capabilities(prog.Pool), nil)
	run := &executor.RunInfo{ID: cfg.RunID, Workload: cfg.Workload, Dir: runDir, Storage: cfg.Storage, Log: log}
	interval := cfg.PollInterval.D()
	if interval <= 0 {
		interval = 5 * time.Second
	}
	be := NewWatcher(BackendOptions{Client: nr.Client, Log: log, Node: &NodeOptions{PollInterval: interval}}, FinalizeTaskID)
	o, err := executor.RunNative(ctx, plan, be, run, nil, executor.NativeOptions{PollInterval: interval, Events: nr.Events})
	if err != nil {
		res.Error = err.Error()
		// Still report: every task the node could not follow counts as
		// cancelled, and the owner hears of it.
		tr := executor.NewTracker(plan)
		o = &executor.Outcome{Tasks: tr.Tasks(), Counts: tr.Counts(), Started: time.Now(), Finished: time.Now(), Canceled: true}
		for i := range o.Tasks {
			o.Tasks[i].State, o.Tasks[i].Reason = executor.Canceled, "the finalize step could not follow the run: "+err.Error()
		}
		o.Counts.Cancelled, o.Counts.Pending = o.Counts.Total, 0
	}
	if !cfg.Started.IsZero() {
		o.Started = cfg.Started // the run's, not this task's
	}
	hide := append([]string{"AZ_BATCH_AUTHENTICATION_TOKEN", cfg.SecretEnv, cfg.CallbackEnv}, cfg.Program.Finalize.Callback.EnvVars()...)
	step := &nodeStep{wd: nr.WorkDir, taskDir: nr.TaskDir, hide: hide, setup: cfg.FinalizeSetup, store: nr.Store, http: nr.HTTP}
	// A stop that came while the node followed the run (the job stopped,
	// a cancel) is the run's: the finalize step and the callback report
	// it all the same. One that comes while they run (the task
	// terminated, as a second cancel of bmc run does) cuts them short, as
	// a second cancel does on the client: a terminated task's processes
	// are not to go on, and the step's has a session of its own.
	fctx := ctx
	if ctx.Err() != nil {
		fctx = context.WithoutCancel(ctx)
	}
	rr, ferr := executor.Finish(fctx, plan, step, run, nil, o, executor.FinishOptions{Secret: nr.Secret, CallbackURL: nr.CallbackURL, Events: nr.Events})
	if ferr != nil {
		res.Error = strings.TrimPrefix(res.Error+"; "+ferr.Error(), "; ")
		_ = write()
		return res, ferr
	}
	res.Status, res.Body, res.Finalize, res.Callback = rr.Status, rr.Body, rr.Finalize, rr.Callback
	if cbErr != nil {
		res.Callback = &executor.CallbackResult{Err: cbErr.Error()}
	}
	for i, t := range o.Tasks {
		id := plan.Program.Tasks[i].ID
		nt := NodeTask{ID: id, State: t.State, Attempts: t.Attempts, ExitCode: t.ExitCode, Reason: t.Reason, Outputs: t.Outputs, Start: t.Start, End: t.End}
		if !t.Start.IsZero() {
			nt.LastStart = t.Start
			if ls := be.LastStart(id); t.Attempts > 1 && ls.After(t.Start) {
				nt.LastStart = ls
			}
		}
		res.Tasks = append(res.Tasks, nt)
	}
	if err := write(); err != nil {
		return res, err
	}
	return res, nil
}

// nodeStep runs the finalize step on the node, in NodeStepDir of the job
// manager task's working directory, and sets the outputs it should upload
// aside in NodeUploadDir for Batch to upload when the task ends.
type nodeStep struct {
	wd, taskDir string
	hide        []string // variables the step must not see
	// setup puts the step's spec-relative inputs in place, before its
	// command (NodeConfig.FinalizeSetup).
	setup string
	store blobstage.Store
	http  *http.Client
}

func (n *nodeStep) Capabilities() planner.Capabilities { return Capabilities(nil) }

func (n *nodeStep) RunTask(ctx context.Context, a *executor.Attempt) executor.Result {
	t := a.Task
	res := executor.Result{Start: time.Now()}
	fail := func(reason string) executor.Result {
		res.State, res.Reason, res.End = executor.Failed, reason, time.Now()
		return res
	}
	dir := filepath.Join(n.wd, NodeStepDir)
	logs := filepath.Join(n.taskDir, "finalize")
	if err := n.freshStep(dir); err != nil {
		return fail("set the step's directory up: " + err.Error())
	}
	for _, d := range []string{dir, logs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fail(err.Error())
		}
	}
	if err := n.stage(ctx, t, dir); err != nil {
		if ctx.Err() != nil {
			res.State, res.Reason, res.End = executor.Canceled, "cancelled while staging inputs", time.Now()
			return res
		}
		return fail(err.Error())
	}
	argv := t.Command
	switch {
	case t.Run != "" && n.setup != "":
		argv = []string{"bash", "-euo", "pipefail", "-c", n.setup + "\n" + t.Run, t.ID}
	case t.Run != "":
		argv = []string{"bash", "-euo", "pipefail", "-c", t.Run, t.ID}
	case n.setup != "":
		argv = append([]string{"bash", "-euo", "pipefail", "-c", n.setup + "\nexec \"$@\"", t.ID}, t.Command...)
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(n.hide, k) {
			env = append(env, kv)
		}
	}
	for _, s := range envSettings(t.Env) {
		env = append(env, s.Name+"="+s.Value)
	}
	env = append(env,
		"AZ_BATCH_TASK_WORKING_DIR="+dir,
		"BMC_RUN_ID="+a.Run.ID,
		"BMC_WORKLOAD="+a.Run.Workload,
		"BMC_TASK_ATTEMPT=1",
		"BMC_RUN_SUMMARY="+a.Summary,
	)
	pr, err := procrun.Run(ctx, procrun.Spec{
		Argv: argv, Dir: dir, Env: env,
		Stdout:  filepath.Join(n.taskDir, filepath.FromSlash(NodeStepLog("stdout"))),
		Stderr:  filepath.Join(n.taskDir, filepath.FromSlash(NodeStepLog("stderr"))),
		Timeout: t.Timeout.D(),
	})
	res = executor.ProcessResult(ctx, executor.ProcessEnd{ExitCode: pr.ExitCode, Signal: pr.Signal, TimedOut: pr.TimedOut,
		Canceled: pr.Canceled, StartErr: err, Timeout: t.Timeout.D(), Start: pr.Start})
	if res.State == executor.Failed && res.ExitCode != nil && *res.ExitCode == InputNotFoundExit {
		// The setup found an input missing, or clashing with another:
		// its line on stderr says which, as staging says on a task.
		if why := inputError(filepath.Join(n.taskDir, filepath.FromSlash(NodeStepLog("stderr")))); why != "" {
			res.Reason = why
		}
	}
	if res.State != executor.Canceled {
		n.setAside(t, dir, filepattern.Vars(env), &res)
	}
	res.End = time.Now()
	return res
}

// stage downloads the step's az:// and https:// inputs into dir, its
// working directory, when the step runs: what the tasks wrote is there
// by then. Its spec-relative inputs came with the job manager task.
func (n *nodeStep) stage(ctx context.Context, t *compiler.Task, dir string) error {
	for _, in := range t.Inputs {
		if in.Kind == compiler.InputFile {
			continue
		}
		if !filepath.IsLocal(filepath.FromSlash(in.Path)) {
			return fmt.Errorf("input %s: path %q is not inside the working directory", inputName(in), in.Path)
		}
		dst := filepath.Join(dir, filepath.FromSlash(in.Path))
		var err error
		switch in.Kind {
		case compiler.InputHTTP:
			client := n.http
			if client == nil {
				client = http.DefaultClient
			}
			_, err = blobstage.FetchHTTP(ctx, client, in.From, dst)
		case compiler.InputBlob, compiler.InputBlobPrefix:
			var loc blobstage.Location
			if loc, err = blobstage.ParseURL(in.From); err == nil {
				if n.store == nil {
					err = errors.New("the node has no blob store to download it from")
				} else {
					_, err = n.store.Download(ctx, loc, dst)
				}
			}
		default:
			err = fmt.Errorf("unknown input kind %q", in.Kind)
		}
		if err != nil {
			return fmt.Errorf("input %s: %s", inputName(in), redact.String(err.Error()))
		}
	}
	return nil
}

// keptStepDir is where, in the job manager task's directory, the node
// keeps the step's directory as Batch brought it.
const keptStepDir = ".bmc-step"

// freshStep gives the step, in its directory dir, the resource files of
// its spec-relative inputs (FinalizeInputs) as Batch brought them, for
// its setup to move into place. Batch retries the job manager task (and
// runs it again after a reboot of its node), and downloads its resource
// files again only on another node: on the same one the step would find
// them as the run before left them, the setup's downloads moved away
// and its inputs changed. So the first run on a node keeps a copy of
// dir beside the working directory, and a run after it copies that back
// over what it finds, files made writable first for the setup's moves
// to replace (an input may be read-only); what a run wrote beside its
// inputs stays, as Batch leaves a task's. A copy, not hard links: the
// step may write its inputs in place; they are the step's own files,
// seldom large.
func (n *nodeStep) freshStep(dir string) error {
	if n.taskDir == "" {
		return nil
	}
	kept := filepath.Join(n.taskDir, keptStepDir)
	if _, err := os.Lstat(kept); err == nil {
		if err := writable(dir); err != nil {
			return err
		}
		return copyTree(kept, dir)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	// Kept whole or not at all: a run cut short while copying leaves
	// dir as it was, for the next to keep.
	part := kept + ".part"
	if err := os.RemoveAll(part); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := copyTree(dir, part); err != nil {
		return err
	}
	return os.Rename(part, kept)
}

// copyTree copies the directory src into dst, replacing what is at each
// path it brings (a directory where a directory goes is kept), with
// every file's and directory's mode as Batch left them (the umask would
// take bits off), and links as links.
func copyTree(src, dst string) error {
	type dirMode struct {
		path string
		mode fs.FileMode
	}
	var dirs []dirMode
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, dirMode{target, fi.Mode().Perm()})
			if t, err := os.Lstat(target); err == nil && t.IsDir() {
				return os.Chmod(target, 0o700)
			}
		}
		if err := os.RemoveAll(target); err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.Mkdir(target, 0o700)
		case d.Type()&fs.ModeSymlink != 0:
			to, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(to, target)
		case d.Type().IsRegular():
			if err := copyFile(p, target); err != nil {
				return err
			}
			return os.Chmod(target, fi.Mode().Perm())
		}
		return fmt.Errorf("%s: not a regular file, directory or link", p)
	})
	// Each directory's own mode once it is filled, deepest first, in
	// case it denies writing.
	for i := len(dirs) - 1; i >= 0 && err == nil; i-- {
		err = os.Chmod(dirs[i].path, dirs[i].mode)
	}
	return err
}

// writable gives the owner write access to every file and directory
// below dir, links left alone; a dir that does not exist is fine.
func writable(dir string) error {
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		mode := fi.Mode().Perm()
		want := mode | 0o200
		if d.IsDir() {
			want |= 0o500 // and open to walk into
		}
		if want != mode {
			return os.Chmod(p, want)
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// inputError is the reason a step's setup gave on its last line of
// stderr starting with InputNotFoundPrefix, without the prefix; "" when
// there is none.
func inputError(stderr string) string {
	b, err := os.ReadFile(stderr)
	if err != nil {
		return ""
	}
	why := ""
	for line := range strings.SplitSeq(string(b), "\n") {
		if r, ok := strings.CutPrefix(line, InputNotFoundPrefix); ok {
			why = r
		}
	}
	return why
}

// setAside copies the files of each output whose condition the step met
// to NodeUploadDir/<k>/, where the job manager task's output file for it
// (FinalizeOutputPattern) picks them up, and reports the outputs that
// have files. vars is the step's environment, which the outputs' paths
// are expanded in first, as Batch expands a task's filePattern.
func (n *nodeStep) setAside(t *compiler.Task, dir string, vars map[string]string, res *executor.Result) {
	ok := res.State == executor.Succeeded
	var errs []string
	for k, o := range t.Outputs {
		up := filepath.Join(n.wd, NodeUploadDir, strconv.Itoa(k))
		// An attempt run again (Batch retries the job manager task)
		// uploads its own files, not the ones an earlier attempt left.
		err := os.RemoveAll(up)
		if err == nil && o.When.Matches(ok) {
			var files []asideFile
			if files, err = outputFiles(dir, o.Pattern, vars); err == nil {
				for _, f := range files {
					if err = copyFile(f.src, filepath.Join(up, filepath.FromSlash(f.rel))); err != nil {
						break
					}
				}
			}
			if err == nil {
				err = uploadsAll(up, o.Pattern, files)
			}
			if err == nil && len(files) > 0 && !slices.Contains(res.Outputs, o.To) {
				res.Outputs = append(res.Outputs, o.To)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Sprintf("output %s -> %s: %s", o.Pattern, o.To, redact.String(err.Error())))
		}
	}
	if len(errs) > 0 {
		if ok {
			res.State, res.Reason = executor.Failed, strings.Join(errs, "; ")
		} else {
			res.Reason += "; " + strings.Join(errs, "; ")
		}
	}
}

// asideFile is a file of an output: src, where the step left it, and
// rel, its slash-separated path below the output's upload directory.
type asideFile struct{ src, rel string }

// outputFiles are the files of an output whose path is pattern, in the
// step's directory dir, and where each goes below the output's upload
// directory, as FinalizeOutputPattern names them. A pattern with
// variables is expanded in vars first, as Batch expands a task's; one
// they make absolute is matched from the root, as on a task.
func outputFiles(dir, pattern string, vars map[string]string) ([]asideFile, error) {
	if !hasVars(pattern) {
		files, err := filepattern.Match(dir, pattern)
		out := make([]asideFile, len(files))
		for i, f := range files {
			out[i] = asideFile{src: filepath.Join(dir, filepath.FromSlash(f)), rel: f}
		}
		return out, err
	}
	root, p := dir, filepattern.Expand(pattern, vars)
	if strings.HasPrefix(p, "/") {
		root, p = "/", strings.TrimLeft(p, "/")
	}
	wild := filepattern.HasWildcard(pattern)
	if !wild && filepattern.HasWildcard(p) {
		// Named as written: a variable's value is not for messages.
		return nil, errors.New("its variables make it a pattern with wildcards, whose files the finalize step on the pool cannot upload to the one blob its destination names (write the wildcard in the path itself)")
	}
	files, err := filepattern.Match(root, p)
	if err != nil {
		return nil, err
	}
	base := filepattern.BaseDir(p)
	out := make([]asideFile, len(files))
	for i, f := range files {
		rel := nodeUploadFile
		if wild {
			rel = f
			if base != "" {
				rel = strings.TrimPrefix(f, base+"/")
			}
		}
		out[i] = asideFile{src: filepath.Join(root, filepath.FromSlash(f)), rel: rel}
	}
	return out, nil
}

// uploadsAll makes sure the job manager task's output file for a
// wildcard pattern with variables (FinalizeOutputPattern), matching in
// up as Batch will, finds every file set aside there: variables that
// stand for more than folder names before the wildcards (a value
// holding a '/', or making a name start with '.', which a '*' does not
// match) may make it miss some.
func uploadsAll(up, pattern string, files []asideFile) error {
	if !hasVars(pattern) || !filepattern.HasWildcard(pattern) || len(files) == 0 {
		return nil
	}
	got, err := filepattern.Match(up, wildcardPart(pattern))
	if err != nil {
		return err
	}
	for _, f := range files {
		if !slices.Contains(got, f.rel) {
			return fmt.Errorf("it matches %s, which the job manager task's upload from the pool would miss: on the pool, a variable in an output's path may stand for folders before its first wildcard, or for part of a name after it, with no '/' and not starting the name with '.'", f.rel)
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// ReadNodeResult reads what the job manager task left, once it has
// completed.
func ReadNodeResult(ctx context.Context, c *Client, jobID string) (*NodeResult, error) {
	rc, err := c.GetTaskFile(ctx, jobID, FinalizeTaskID, "wd/"+NodeResultFile, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var r NodeResult
	if err := json.NewDecoder(io.LimitReader(rc, 64<<20)).Decode(&r); err != nil {
		return nil, fmt.Errorf("read the finalize step's result: %w", err)
	}
	return &r, nil
}

// WaitJobDone waits until the job has completed: its job manager task
// has run the finalize step and exited, or the job was ended otherwise.
// A job disabled while its job manager task waits to start never
// completes: WaitJobDone then returns ErrFinalizeNotRunning.
func WaitJobDone(ctx context.Context, c *Client, jobID string, interval time.Duration) (*BatchJob, error) {
	for {
		j, err := c.GetJob(ctx, jobID)
		if err != nil {
			return nil, err
		}
		if j.State == JobStateCompleted {
			// Ended (terminated from elsewhere) before its finalize task
			// ever started: nothing on the pool will report.
			if t, err := c.GetTask(ctx, jobID, FinalizeTaskID); err == nil && (t.ExecutionInfo == nil || t.ExecutionInfo.StartTime.IsZero()) {
				return j, fmt.Errorf("job %s: %w", jobID, ErrFinalizeNotRunning)
			}
			return j, nil
		}
		if j.State == JobStateDisabled {
			notStarted, err := jobManagerNotStarted(ctx, c, jobID)
			if err != nil {
				return nil, err
			}
			if notStarted {
				return j, fmt.Errorf("job %s: %w", jobID, ErrFinalizeNotRunning)
			}
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return j, ctx.Err()
		case <-t.C:
		}
	}
}
