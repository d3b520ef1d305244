package main

import (
	"fmt"
	"os"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/schema"
	"github.com/spf13/cobra"
)

type validateOptions struct {
	format string
	set    setFlag
}

func newValidateCmd() *cobra.Command {
	var o validateOptions
	cmd := &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check workload specs and report every error with its position",
		Long: `Check workload specs: YAML syntax, the schema, expressions, task ids after
matrix expansion, dependencies and cycles. Every error is reported, each as
file:line:col with the field path. Required params need not be given.
Warnings, such as matrix members that upload an output to one place and
overwrite each other's, are reported the same way, marked "warning", and
leave the spec valid.

Exit status: 0 valid (warnings or not), 1 invalid, 2 usage error.`,
		Example: `  bmc validate examples/*.yaml
  bmc validate --format github workloads/*.yaml   # annotations in GitHub Actions`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch o.format {
			case "text", "json", "github":
			default:
				return usagef("unknown output format %q (--format, -o): expected text, json or github", o.format)
			}
			params, err := o.set.params()
			if err != nil {
				return err
			}
			// all holds errors and warnings; a file with errors has no
			// warnings: its program is not made.
			var all schema.Diagnostics
			errs, warned := 0, map[string]int{}
			sources := map[string][]byte{}
			for _, f := range args {
				src, err := os.ReadFile(f)
				if err != nil {
					all = append(all, &schema.Diagnostic{Pos: schema.Pos{File: f}, Msg: fmt.Sprintf("cannot read: %v", errText(err))})
					errs++
					continue
				}
				sources[f] = src
				prog, diags := compiler.Compile(f, src, compiler.Options{Params: params, Partial: true})
				all = append(all, diags...)
				errs += len(diags)
				if prog != nil {
					all = append(all, prog.Warnings()...)
					warned[f] = len(prog.Warnings())
				}
			}
			out, errw := cmd.OutOrStdout(), cmd.ErrOrStderr()
			if o.format == "json" {
				writeDiags(out, "json", all, sources)
			} else if len(all) > 0 {
				if o.format == "github" {
					writeDiags(out, "github", all, sources)
				}
				writeDiags(errw, "text", all, sources)
			}
			if errs > 0 {
				files := map[string]bool{}
				for _, d := range all {
					if !d.Warning {
						files[d.Pos.File] = true
					}
				}
				return &exitError{code: exitFailed, err: fmt.Errorf("%d error%s in %d file%s", errs, plural(errs), len(files), plural(len(files)))}
			}
			if o.format == "text" {
				for _, f := range args {
					if n := warned[f]; n > 0 {
						fmt.Fprintf(out, "%s: valid, with %d warning%s\n", f, n, plural(n))
					} else {
						fmt.Fprintf(out, "%s: valid\n", f)
					}
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&o.format, "format", "text", "output format: text, json or github (workflow annotations)")
	// -o/--output, as the other commands name it.
	cmd.Flags().StringVarP(&o.format, "output", "o", "text", "the same as --format")
	addSetFlag(cmd, &o.set)
	return cmd
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
