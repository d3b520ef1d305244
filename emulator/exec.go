package emulator

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/bmc-dev/bmc/internal/procrun"
)

// runSpec is everything an attempt needs, copied under the lock so that
// the worker never reads the task while it runs.
type runSpec struct {
	argv          []string
	env           []string
	vars          map[string]string // the task's environment, for filePattern expansion
	taskDir, wd   string
	nodeDirs      []string // the node's shared, startup and mounts directories
	resourceFiles []ResourceFile
	outputFiles   []OutputFile
	timeout       time.Duration
	pre           *TaskFailureInfo // known before anything runs
	// haveFiles is set for a retry on the node the attempt before ran
	// on: the resource files are not downloaded again, and the working
	// directory is as that attempt left it.
	haveFiles bool
}

// containerMismatch is the failure of a task whose containerSettings do
// not go with its pool: Batch requires them of every task (job manager
// task included) on a pool with a containerConfiguration, and refuses
// them on a pool without one. It takes such a task and fails it on the
// node, before anything runs. The first code and message are the ones
// the service gives; it is not known to document the second case's, so
// that code is the emulator's own, in the same style.
func containerMismatch(p *pool, t *task) *TaskFailureInfo {
	vm := p.wire.VirtualMachineConfiguration
	boxed := vm != nil && vm.ContainerConfiguration != nil
	switch has := t.wire.ContainerSettings != nil; {
	case boxed && !has:
		return &TaskFailureInfo{Category: UserError, Code: "ContainerTaskSettingsNotFound",
			Message: "Container-enabled compute node requires task container settings"}
	case !boxed && has:
		return &TaskFailureInfo{Category: UserError, Code: "ContainerSettingsNotSupported",
			Message: "The task has container settings, but its pool has no container configuration"}
	}
	return nil
}

// baseEnv are the variables of the emulator's own environment a task
// inherits: enough to find programs and behave like a login, nothing that
// may hold the emulator's credentials.
var baseEnv = []string{"PATH", "HOME", "USER", "LOGNAME", "SHELL", "TMPDIR", "LANG", "LANGUAGE", "TZ", "TERM"}

func (s *Server) runSpecLocked(t *task, n *node) runSpec {
	j := t.job
	taskDir := s.taskDir(n, t)
	sp := runSpec{
		taskDir:       taskDir,
		wd:            filepath.Join(taskDir, "wd"),
		resourceFiles: slices.Clone(t.wire.ResourceFiles),
		outputFiles:   slices.Clone(t.wire.OutputFiles),
	}
	if c := t.wire.Constraints; c != nil && c.MaxWallClockTime != nil {
		sp.timeout, _ = c.MaxWallClockTime.Std()
	}
	argv, err := splitCommandLine(t.wire.CommandLine)
	if err != nil {
		sp.pre = &TaskFailureInfo{Category: UserError, Code: "CommandLaunchFailed",
			Message: "The command line could not be parsed: " + err.Error()}
		return sp
	}
	sp.argv = argv

	var env envList
	for _, k := range baseEnv {
		if v, ok := os.LookupEnv(k); ok {
			env.set(k, v)
		}
	}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "LC_") {
			k, v, _ := strings.Cut(kv, "=")
			env.set(k, v)
		}
	}
	for _, list := range [][]EnvironmentSetting{j.wire.CommonEnvironmentSettings, t.wire.EnvironmentSettings} {
		for _, e := range list {
			if e.Name == nil {
				continue
			}
			v := ""
			if e.Value != nil {
				v = *e.Value
			}
			env.set(*e.Name, v)
		}
	}
	root := n.dir
	sp.nodeDirs = []string{filepath.Join(root, "shared"), filepath.Join(root, "startup"), filepath.Join(root, "fsmounts")}
	env.set("AZ_BATCH_ACCOUNT_NAME", s.account)
	env.set("AZ_BATCH_ACCOUNT_URL", s.endpointURL())
	env.set("AZ_BATCH_POOL_ID", n.pool.wire.ID)
	env.set("AZ_BATCH_NODE_ID", n.id)
	env.set("AZ_BATCH_NODE_IS_DEDICATED", fmt.Sprint(n.dedicated))
	env.set("AZ_BATCH_NODE_ROOT_DIR", root)
	env.set("AZ_BATCH_NODE_SHARED_DIR", filepath.Join(root, "shared"))
	env.set("AZ_BATCH_NODE_STARTUP_DIR", filepath.Join(root, "startup"))
	env.set("AZ_BATCH_NODE_MOUNTS_DIR", filepath.Join(root, "fsmounts"))
	env.set("AZ_BATCH_CERTIFICATES_DIR", filepath.Join(taskDir, "certs"))
	env.set("AZ_BATCH_JOB_ID", j.wire.ID)
	env.set("AZ_BATCH_TASK_ID", t.wire.ID)
	env.set("AZ_BATCH_TASK_DIR", taskDir)
	env.set("AZ_BATCH_TASK_WORKING_DIR", sp.wd)
	env.set("AZ_BATCH_TASK_RESERVED_EPHEMERAL_DISK_SPACE_BYTES", "0")
	for k, v := range s.identityEnv(n.pool) {
		env.set(k, v)
	}
	if ts := t.wire.AuthenticationTokenSettings; s.opt.TaskTokens && ts != nil && slices.Contains(ts.Access, AccessScope("job")) {
		env.set("AZ_BATCH_AUTHENTICATION_TOKEN", s.issueToken(j.wire.ID, time.Now()))
	}
	refs := append(slices.Clone(n.pool.wire.ApplicationPackageReferences), t.wire.ApplicationPackageReferences...)
	for _, ref := range refs {
		name := appName(*ref.ApplicationID)
		dir, version, ok := s.findPackage(name, ref.Version)
		if !ok {
			want := name
			if ref.Version != "" {
				want += "@" + ref.Version
			}
			sp.pre = &TaskFailureInfo{Category: UserError, Code: "ApplicationPackageError",
				Message: fmt.Sprintf("Application package %s is not available on the node (give it to the emulator with --package %s=DIR).", want, want),
				Details: []NameValuePair{{Name: "ApplicationId", Value: name}, {Name: "Version", Value: ref.Version}}}
			return sp
		}
		for _, k := range packageVars(name, version, ref.Version == "", s.opt.LowerPackageVars) {
			env.set(k, dir)
		}
	}
	sp.env = env.list()
	sp.vars = env.m
	return sp
}

// envList is an environment where later settings win, keeping the order
// in which names first appeared.
type envList struct {
	m     map[string]string
	names []string
}

func (e *envList) set(k, v string) {
	if e.m == nil {
		e.m = map[string]string{}
	}
	if _, ok := e.m[k]; !ok {
		e.names = append(e.names, k)
	}
	e.m[k] = v
}

func (e *envList) list() []string {
	out := make([]string, 0, len(e.names))
	for _, k := range e.names {
		out = append(out, k+"="+e.m[k])
	}
	return out
}

// appName is the application id of a package reference: a plain id on a
// task, the last segment of an ARM id on a pool.
func appName(id string) string {
	if i := strings.LastIndex(id, "/applications/"); i >= 0 {
		return id[i+len("/applications/"):]
	}
	return id
}

// findPackage resolves a package reference against --package: the version
// asked for, or else the default, which is a package given without a
// version or the only version given.
func (s *Server) findPackage(name, version string) (dir, resolved string, ok bool) {
	var cands []Package
	for _, p := range s.opt.Packages {
		if strings.EqualFold(p.Name, name) {
			cands = append(cands, p)
		}
	}
	for _, p := range cands {
		if p.Version == version {
			return p.Dir, p.Version, true
		}
	}
	if version == "" && len(cands) == 1 {
		return cands[0].Dir, cands[0].Version, true
	}
	return "", "", false
}

// packageVars are the variables Batch sets on Linux for a package:
// AZ_BATCH_APP_PACKAGE_<id>_<version> with '.', '-' and '#' turned into
// '_', and AZ_BATCH_APP_PACKAGE_<id> for the default version. The docs
// disagree on whether the id keeps its case, so both spellings are set,
// or, with lowerOnly, the lower-case one.
func packageVars(name, version string, isDefault, lowerOnly bool) []string {
	r := strings.NewReplacer(".", "_", "-", "_", "#", "_")
	var out []string
	names := []string{name, strings.ToLower(name)}
	if lowerOnly {
		names = names[1:]
	}
	for _, n := range names {
		base := "AZ_BATCH_APP_PACKAGE_" + r.Replace(n)
		if version != "" {
			out = append(out, base+"_"+r.Replace(version))
		}
		if isDefault || version == "" {
			out = append(out, base)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// splitCommandLine turns a Batch command line into argv. Batch does not
// run it in a shell, so there is no expansion of variables or globs;
// words are split on blanks, with single quotes, double quotes and
// backslashes quoting as in a POSIX shell.
func splitCommandLine(s string) ([]string, error) {
	var (
		args  []string
		cur   strings.Builder
		inArg bool
	)
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case r == ' ' || r == '\t' || r == '\n':
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		case r == '\'':
			inArg = true
			j := i + 1
			for j < len(rs) && rs[j] != '\'' {
				j++
			}
			if j == len(rs) {
				return nil, errors.New("unterminated single quote")
			}
			cur.WriteString(string(rs[i+1 : j]))
			i = j
		case r == '"':
			inArg = true
			j := i + 1
			for ; j < len(rs) && rs[j] != '"'; j++ {
				if rs[j] == '\\' && j+1 < len(rs) && strings.ContainsRune("\"\\$`\n", rs[j+1]) {
					j++
				}
				cur.WriteRune(rs[j])
			}
			if j == len(rs) {
				return nil, errors.New("unterminated double quote")
			}
			i = j
		case r == '\\':
			inArg = true
			if i+1 < len(rs) {
				i++
				cur.WriteRune(rs[i])
			}
		default:
			inArg = true
			cur.WriteRune(r)
		}
	}
	if inArg {
		args = append(args, cur.String())
	}
	if len(args) == 0 {
		return nil, errors.New("the command line is empty")
	}
	return args, nil
}

// execute runs one attempt: resource files, the command line, output
// files. It reads only a.spec and never takes the lock.
func (s *Server) execute(a *attempt) attemptResult {
	sp := &a.spec
	if sp.pre != nil {
		return attemptResult{pre: sp.pre}
	}
	for _, d := range append([]string{sp.wd}, sp.nodeDirs...) {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return attemptResult{pre: &TaskFailureInfo{Category: ServerError, Code: "ResourceDirectoryCreateFailed", Message: err.Error()}}
		}
	}
	for _, rf := range sp.resourceFiles {
		if sp.haveFiles {
			break // a retry on the same node: as the attempt before left them
		}
		if f := s.stager.download(a.ctx, rf, sp.wd, sp.taskDir); f != nil {
			if a.ctx.Err() != nil {
				return attemptResult{}
			}
			return attemptResult{pre: f}
		}
	}
	pr, err := procrun.Run(a.ctx, procrun.Spec{
		Argv:      sp.argv,
		Dir:       sp.wd,
		Env:       sp.env,
		Stdout:    filepath.Join(sp.taskDir, "stdout.txt"),
		Stderr:    filepath.Join(sp.taskDir, "stderr.txt"),
		Timeout:   sp.timeout,
		KillGrace: s.opt.KillGrace,
	})
	if err != nil {
		if a.ctx.Err() != nil {
			return attemptResult{}
		}
		code := "CommandLaunchFailed"
		if pr.ExitCode == procrun.ExitNotFound {
			code = "CommandProgramNotFound"
		}
		return attemptResult{pre: &TaskFailureInfo{Category: UserError, Code: code, Message: err.Error()}}
	}
	code := int32(pr.ExitCode)
	res := attemptResult{exit: &code, timedOut: pr.TimedOut}
	if pr.Canceled {
		return res // stopped through the API: no uploads
	}
	res.upload = s.stager.uploadAll(a.ctx, sp, code == 0 && !pr.TimedOut)
	return res
}
