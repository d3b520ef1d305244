package main

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/bmc-dev/bmc/backends/azurebatch"
	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/executor"
	"github.com/bmc-dev/bmc/internal/redact"
	"github.com/bmc-dev/bmc/planner"
	"github.com/spf13/cobra"
)

func newResumeCmd() *cobra.Command {
	var o runOptions
	cmd := &cobra.Command{
		Use:   "resume RUN",
		Short: "Continue a run: re-run only what did not succeed",
		Long: `Continue an interrupted or failed run under the same run id: tasks journaled
as succeeded are not run again, everything else is, with the same program
(params were fixed when the run started) and the same outputs. The finalize
step runs again if any task ran or if it did not succeed before, and the
callback is sent again unless it was delivered before and no task ran. Inputs
beside the spec that changed since the run started are named in a warning
(tasks that succeeded used them as they were), and the resume goes on. A
project moved or copied with its state directory resumes from where it is
now: the spec, its inputs and the local store are read there. A task run again goes on numbering its attempts from
the earlier session's, with its retries afresh. The run's --slots,
--keep-going, --keep-workdirs, --package and --logs carry over unless given
again. RUN is a run id, a unique prefix of one, or "latest".

If bmc was killed while tasks ran (kill -9, say), their processes may still
run: resume stops them first, so that no task runs beside a copy of itself.

A run on Azure Batch whose bmc went away before it was over (killed, or its
machine restarted) is taken up: resume follows its job, submitting nothing
again, then runs the finalize step and sends the callback as that bmc would
have (or, when the finalize step is the pool's, waits for the pool's report).
A submission the bmc left unfinished is given up, and the run fails. A Batch
run that is over is not run again in part; one whose callback, sent here, was
not delivered gets it again.

The run's az:// locations stay in the blob store it started with, which its
run.json records (the local store is the state directory's, and moves with
it): an Azure account is opened with the credentials the
environment gives, and a resume that cannot open it, or whose --storage names
another store, is refused.

A run directory keeps no secrets: SAS signatures in URLs the program held
were left out of it. Such a run is resumed from its spec, which must still
compile to the same program; a secret the run had from --set is given again
with --set (the same value, or the same URL with a new signature).`,
		Example: `  bmc resume latest
  bmc resume genome-align-261128153000-x7 --slots 8`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			state := stateDir(cmd)
			dir, err := executor.FindRun(state, args[0])
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			meta, err := readMeta(dir)
			if err != nil {
				return err
			}
			prog, err := readProgram(dir)
			if err != nil {
				return err
			}
			if err := checkProgress(o.progress); err != nil {
				return err
			}
			prev, err := executor.LoadState(dir)
			if err != nil {
				return err
			}
			if prev.Status == "running" {
				return &exitError{code: exitFailed, err: fmt.Errorf("run %s is in progress", meta.ID)}
			}
			if resumeStateRead != nil {
				resumeStateRead()
			}
			if !meta.Redacted && len(o.set.values) > 0 {
				return usagef("--set: run %s was started with its params fixed; --set only gives back secrets a run did not keep", meta.ID)
			}
			// A project moved with its state directory has its spec,
			// and the inputs beside it, where it moved.
			spec, note, err := runSpecPath(dir, state, meta)
			if err != nil {
				return err
			}
			if note != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "bmc: %s\n", note)
			}
			if spec != meta.Spec {
				meta.Spec, meta.SpecDir = spec, filepath.Dir(spec)
			}
			// Last of the checks, as it compiles the spec again.
			var now *compiler.Program // the spec compiled again, if it compiles
			if meta.Redacted {
				if prog, err = restoreSecrets(meta, prog, &o.set, "resuming it"); err != nil {
					return err
				}
				now = prog
			} else {
				var d string
				if d, now = specDrift(dir, meta, prog); d != "" {
					// The usual loop is: a task fails, the spec is fixed, the
					// run resumed. That runs the program the run started with.
					fmt.Fprintf(cmd.ErrOrStderr(), "bmc: warning: %s %s since run %s started: bmc resume runs the program the run started with; %s runs the spec as it is now\n", meta.Spec, d, meta.ID, hint(nil, "run", shellQuote(meta.Spec)))
				}
			}
			warnChangedInputs(cmd.ErrOrStderr(), dir, meta.ID, prog, prev.Done(), meta.SpecDir, now)
			if !cmd.Flags().Changed("slots") && meta.Slots > 0 {
				o.slots = meta.Slots
			}
			if !cmd.Flags().Changed("keep-going") {
				o.keepGoing = meta.KeepGoing
			}
			if !cmd.Flags().Changed("keep-workdirs") {
				o.keepWorkdirs = meta.KeepWorkdirs
			}
			if !cmd.Flags().Changed("package") {
				o.packages = meta.Packages
			}
			if !cmd.Flags().Changed("logs") {
				o.logs = meta.Logs
			}
			o.backend = meta.Backend
			if prev.Callback == nil || !prev.Callback.Delivered {
				warnUnsigned(cmd.ErrOrStderr(), prog)
			}
			return drive(cmd, prog, meta, &o, prev)
		},
	}
	o.flags(cmd, true)
	cmd.Flags().StringArrayVar(&o.set.values, "set", nil, "give again a param that held a secret, which the run did not keep: name=value")
	return cmd
}

// resumeStateRead, when set, is called once bmc resume has read the
// run's state the first time, before it holds the run's lock: tests use
// it to have another resume run just then.
var resumeStateRead func()

// restoreSecrets gives back the secrets a run's directory left out. The
// program is compiled again from the run's spec with its params, and any
// --set given (to resume, or to cancel) on top, and must be the run's
// program but for its secrets: what runs is what the run started with.
// doing says what needs them, as "resuming it".
func restoreSecrets(meta executor.Meta, stored *compiler.Program, set *setFlag, doing string) (*compiler.Program, error) {
	fail := func(format string, args ...any) error {
		return &exitError{code: exitFailed, err: fmt.Errorf("run %s kept no secrets, and %s needs them: %s", meta.ID, doing, fmt.Sprintf(format, args...))}
	}
	over, err := set.params()
	if err != nil {
		return nil, err
	}
	params := maps.Clone(meta.Params)
	if params == nil {
		params = map[string]any{}
	}
	var again []string
	for _, k := range secretParams(meta) {
		if _, ok := over[k]; !ok {
			again = append(again, "--set "+k+"=…")
		}
	}
	if len(again) > 0 {
		return nil, fail("give %s again", strings.Join(again, " "))
	}
	maps.Copy(params, over)
	prog, err := compileAsRun(meta.Spec, params, meta, stored)
	switch {
	case errors.Is(err, errSpecInvalid):
		return nil, fail("its spec %s no longer compiles (bmc validate %s)", meta.Spec, meta.Spec)
	case err != nil:
		return nil, fail("%v", err)
	}
	if !bytes.Equal(withoutSecrets(prog), withoutSecrets(stored)) {
		msg := fmt.Sprintf("its spec %s, or a --set value, no longer gives the program the run started with; start a new run instead", meta.Spec)
		if b, err := keptEncoding(stored); err == nil {
			if c, err := compareKept(b, prog); err == nil {
				if d := c.whole(); d != "" {
					msg += " (as compiled now, it " + d + ")"
				}
			}
		}
		return nil, fail("%s", msg)
	}
	return prog, nil
}

// withoutSecrets is p as its run directory keeps it, less the tasks'
// hashes: a new signature for the same URL changes them and nothing else.
func withoutSecrets(p *compiler.Program) []byte {
	c := *p
	c.Tasks = slices.Clone(p.Tasks)
	for i := range c.Tasks {
		c.Tasks[i].Hash = ""
	}
	b, _, err := c.RedactedJSON(false)
	if err != nil {
		return nil
	}
	return b
}

// secretParams are the params of a run whose secrets its directory did
// not keep, sorted: bmc resume needs each given again with --set.
func secretParams(meta executor.Meta) []string {
	out := slices.Clone(meta.SecretParams)
	for k, v := range meta.Params {
		if slices.Contains(out, k) {
			continue
		}
		if b, _, err := redact.JSON(v, false); err == nil && redact.Holds(string(b)) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// resendHint says how to send a run's undelivered callback again: bmc
// resume, with --set for each secret the run did not keep.
func resendHint(cmd *cobra.Command, meta executor.Meta) string {
	args := []string{"resume", meta.ID}
	for _, k := range secretParams(meta) {
		args = append(args, "--set", k+"=…")
	}
	return hint(cmd, args...) + " sends it again"
}

// specDrift says how the run's spec, compiled again with the run's
// params, now differs from the program the run started with, stored, in
// the run directory dir (see tasksDiff); "" when it does not, or cannot
// be read or compiled. now is the spec so compiled, nil if it does not
// compile.
func specDrift(dir string, meta executor.Meta, stored *compiler.Program) (diff string, now *compiler.Program) {
	now, err := compileAsRun(meta.Spec, meta.Params, meta, stored)
	if err != nil {
		return "", nil
	}
	if now.Name != stored.Name {
		return "is now of workload " + now.Name, now
	}
	// Compared with the JSON the run keeps, which is not encoded again.
	if b, err := readKept(dir); err == nil {
		if c, err := compareKept(b, now); err == nil {
			return c.diff, now
		}
	}
	return tasksDiff(stored, now), now
}

// errSpecInvalid is compileAsRun's error for a spec that does not compile.
var errSpecInvalid = errors.New("the spec does not compile")

// compileAsRun compiles file with params as the run meta tells was
// started: with its --only, and, on Azure Batch, onto the pool (and
// identity) --pool and --pool-identity gave stored, the program it
// keeps (nil will do for a run not on Azure Batch). Its error says which
// step failed: reading file, compiling it (errSpecInvalid), or --only.
func compileAsRun(file string, params map[string]any, meta executor.Meta, stored *compiler.Program) (*compiler.Program, error) {
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read its spec: %v", err)
	}
	prog, diags := compiler.Compile(file, src, compiler.Options{Params: params})
	if len(diags) > 0 {
		return nil, errSpecInvalid
	}
	if len(meta.Only) > 0 {
		if prog, err = planner.Only(prog, meta.Only); err != nil {
			return nil, err
		}
	}
	if meta.Backend == azurebatch.Name && stored != nil && stored.Pool != nil {
		prog = withPoolIdentity(withPool(prog, stored.Pool.ID), stored.Pool.Identity)
	}
	return prog, nil
}
