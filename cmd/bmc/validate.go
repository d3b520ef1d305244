package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/schema"
	"github.com/spf13/cobra"
)

type validateOptions struct {
	format string
	set    setFlag
	strict bool
}

// stdinName names the spec read from stdin (-) in positions.
const stdinName = "<stdin>"

func newValidateCmd() *cobra.Command {
	var o validateOptions
	cmd := &cobra.Command{
		Use:   "validate FILE|DIR|-...",
		Short: "Check workload specs and report every error with its position",
		Long: `Check workload specs: YAML syntax, the schema, expressions, task ids after
matrix expansion, dependencies and cycles. Every error is reported, each as
file:line:col with the field path. Required params need not be given.
Warnings, such as matrix members that upload an output to one place and
overwrite each other's, are reported the same way, marked "warning", and
leave the spec valid unless --strict is given. A spec's warnings are shown
even when it has errors.

A directory stands for its .yaml and .yml files and those of its folders,
hidden folders (.git, .bmc) left out; - reads a spec from stdin, named
<stdin> in positions. When every spec is valid, each is listed as
"FILE: valid".

Exit status: 0 valid (warnings or not, without --strict), 1 invalid, a file
that cannot be read, or a warning with --strict, 2 usage error.`,
		Example: `  bmc validate examples/*.yaml
  bmc validate workloads/                         # every spec under workloads/
  bmc validate --strict --format github workloads/   # annotations in GitHub Actions
  generate-spec | bmc validate -`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runValidate(cmd, &o, args)
		},
	}
	cmd.Flags().StringVar(&o.format, "format", "text", "output format: text, json or github (workflow annotations)")
	// -o/--output, as the other commands name it.
	cmd.Flags().StringVarP(&o.format, "output", "o", "text", "the same as --format")
	cmd.Flags().BoolVar(&o.strict, "strict", false, "fail (exit 1) on warnings too")
	addSetFlag(cmd, &o.set)
	return cmd
}

func runValidate(cmd *cobra.Command, o *validateOptions, args []string) error {
	switch o.format {
	case "text", "json", "github":
	default:
		return usagef("unknown output format %q (--format, -o): expected text, json or github", o.format)
	}
	if n := slices.Index(args, "-"); n >= 0 && slices.Index(args[n+1:], "-") >= 0 {
		return usagef("stdin (-) can be read once: give - once")
	}
	params, err := o.set.params()
	if err != nil {
		return err
	}
	files, all := specFiles(args)
	errs, warns := len(all), 0
	warned := map[string]int{}
	sources := map[string][]byte{}
	for _, f := range files {
		src, err := readSpec(cmd.InOrStdin(), f)
		if err != nil {
			all = append(all, &schema.Diagnostic{Pos: schema.Pos{File: f}, Msg: err.Error()})
			errs++
			continue
		}
		sources[f] = src
		diags, warnings := compiler.Validate(f, src, compiler.Options{Params: params, Partial: true})
		// A file's errors and warnings read in the order of the file.
		both := append(slices.Clip(diags), warnings...)
		slices.SortStableFunc(both, func(a, b *schema.Diagnostic) int {
			if a.Pos.Line != b.Pos.Line {
				return a.Pos.Line - b.Pos.Line
			}
			return a.Pos.Col - b.Pos.Col
		})
		all = append(all, both...)
		errs += len(diags)
		warns += len(warnings)
		warned[f] = len(warnings)
	}
	out, errw := cmd.OutOrStdout(), cmd.ErrOrStderr()
	if o.format == "json" {
		writeDiagsStrict(out, "json", all, sources, o.strict)
	} else if len(all) > 0 {
		if o.format == "github" {
			writeDiagsStrict(out, "github", all, sources, o.strict)
		}
		writeDiags(errw, "text", all, sources)
	}
	// Files are counted as diagnostics name them: a folder with no spec
	// is one.
	count := func(warning bool) int {
		files := map[string]bool{}
		for _, d := range all {
			if d.Warning == warning {
				files[d.Pos.File] = true
			}
		}
		return len(files)
	}
	if errs > 0 {
		n := count(false)
		return &exitError{code: exitFailed, err: fmt.Errorf("%d error%s in %d file%s", errs, plural(errs), n, plural(n))}
	}
	if o.strict && warns > 0 {
		n := count(true)
		return &exitError{code: exitFailed, err: fmt.Errorf("%d warning%s in %d file%s, and --strict fails on warnings", warns, plural(warns), n, plural(n))}
	}
	// The valid files are listed only when all are: beside errors, a
	// line for each of a folder's specs would bury them in a CI log.
	if o.format == "text" {
		for _, f := range files {
			if n := warned[f]; n > 0 {
				fmt.Fprintf(out, "%s: valid, with %d warning%s\n", f, n, plural(n))
			} else {
				fmt.Fprintf(out, "%s: valid\n", f)
			}
		}
	}
	return nil
}

// specFiles expands the arguments of bmc validate into the spec files to
// check, in order, each once: a directory into the .yaml and .yml files
// in it and its folders, in lexical order, hidden folders left out (a
// repository's .git, bmc's own .bmc). Symbolic links to folders are
// followed, the argument's and those inside: a spec behind one is checked
// as any other. A directory holding none, or one that cannot be walked,
// is an error of its own.
func specFiles(args []string) ([]string, schema.Diagnostics) {
	var files []string
	var diags schema.Diagnostics
	seen := map[string]bool{}
	add := func(f string) {
		if !seen[f] {
			seen[f] = true
			files = append(files, f)
		}
	}
	for _, arg := range args {
		if arg == "-" {
			add(stdinName)
			continue
		}
		info, err := os.Stat(arg)
		if err != nil || !info.IsDir() {
			add(arg) // reading it tells what is wrong
			continue
		}
		found := 0
		ok := walkSpecs(arg, map[string]bool{}, func(p string) {
			found++
			add(p)
		}, &diags)
		if ok && found == 0 {
			diags = append(diags, &schema.Diagnostic{Pos: schema.Pos{File: arg}, Msg: "no .yaml or .yml files in this folder or its folders"})
		}
	}
	return files, diags
}

// walkSpecs calls add for each .yaml and .yml file in dir and its
// folders, in lexical order, following links to folders. visited holds
// the real paths of the folders walked: a link back up the tree, or to a
// folder walked already, is not walked again. It reports whether dir
// itself could be read.
func walkSpecs(dir string, visited map[string]bool, add func(string), diags *schema.Diagnostics) bool {
	cannot := func(p string, err error) {
		*diags = append(*diags, &schema.Diagnostic{Pos: schema.Pos{File: p}, Msg: "cannot read: " + errText(err)})
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		cannot(dir, err)
		return false
	}
	if real, err = filepath.Abs(real); err != nil {
		cannot(dir, err)
		return false
	}
	if visited[real] {
		return true
	}
	visited[real] = true
	entries, err := os.ReadDir(dir)
	if err != nil {
		cannot(dir, err)
		return false
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		isDir := e.IsDir()
		if e.Type()&fs.ModeSymlink != 0 {
			// A link to nothing is left to the reading, if it names a spec.
			if info, err := os.Stat(p); err == nil {
				isDir = info.IsDir()
			}
		}
		if isDir {
			if !strings.HasPrefix(e.Name(), ".") {
				walkSpecs(p, visited, add, diags)
			}
			continue
		}
		if ext := filepath.Ext(p); ext == ".yaml" || ext == ".yml" {
			add(p)
		}
	}
	return true
}

// readSpec reads a spec file, or stdin for stdinName. Its error says what
// is wrong without repeating the file's name.
func readSpec(stdin io.Reader, f string) ([]byte, error) {
	if f == stdinName {
		src, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("cannot read: %s", errText(err))
		}
		return src, nil
	}
	src, err := os.ReadFile(f)
	if err == nil {
		return src, nil
	}
	if errors.Is(err, fs.ErrNotExist) && strings.ContainsAny(f, "*?[") {
		// A shell passes a pattern that matches nothing on as written.
		return nil, errors.New("no file matches this pattern: the shell passed it on as written; give the folder instead (bmc validate DIR checks its .yaml and .yml files)")
	}
	return nil, fmt.Errorf("cannot read: %s", errText(err))
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// errText strips Go's "open x:" prefixes that repeat the file name.
func errText(err error) string {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err.Error()
	}
	return err.Error()
}
