package main

import (
	"bufio"
	"fmt"
	"os"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/spf13/cobra"
)

type compileOptions struct {
	set    setFlag
	output string
}

func newCompileCmd() *cobra.Command {
	var o compileOptions
	cmd := &cobra.Command{
		Use:   "compile FILE",
		Short: "Compile a spec into its task DAG and print it",
		Long: `Compile a spec into its task DAG: params, expressions and matrices expanded,
dependencies resolved, defaults applied, one content hash per task. The JSON
output is deterministic: the same spec and params give byte-identical output.
Values only a run knows (${{ run.id }}, ${{ task.attempt }}) stay as written.`,
		Example: `  bmc compile examples/sweep.yaml --set lr='[0.1, 0.01]'
  bmc compile examples/genomics.yaml --output json | jq '.tasks | length'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			prog, err := compileSpec(cmd, args[0], &o.set)
			if err != nil {
				return err
			}
			w := bufio.NewWriterSize(cmd.OutOrStdout(), 1<<16)
			defer w.Flush()
			switch o.output {
			case "json":
				// Secrets (a SAS signature in a URL) are not printed: the
				// program is shown as a run directory keeps it.
				b, _, err := prog.RedactedJSON(true)
				if err != nil {
					return err
				}
				_, err = w.Write(b)
				return err
			case "text":
				printProgram(w, prog)
				return nil
			}
			return usagef("unknown --output %q: expected json or text", o.output)
		},
	}
	addSetFlag(cmd, &o.set)
	cmd.Flags().StringVarP(&o.output, "output", "o", "json", "output format: json or text")
	return cmd
}

// compileSpec compiles a spec for commands that need a complete program,
// printing diagnostics on failure.
func compileSpec(cmd *cobra.Command, file string, set *setFlag) (*compiler.Program, error) {
	params, err := set.params()
	if err != nil {
		return nil, err
	}
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, &exitError{code: exitFailed, err: fmt.Errorf("read spec: %w", err)}
	}
	prog, diags := compiler.Compile(file, src, compiler.Options{Params: params})
	if len(diags) > 0 {
		writeDiags(cmd.ErrOrStderr(), "text", diags, map[string][]byte{file: src})
		return nil, &exitError{code: exitFailed, err: fmt.Errorf("%s: %d error%s", file, len(diags), plural(len(diags)))}
	}
	return prog, nil
}

func printProgram(w *bufio.Writer, p *compiler.Program) {
	fmt.Fprintf(w, "workload %s: %d task%s, %d group%s\n", p.Name, len(p.Tasks), plural(len(p.Tasks)), len(p.Groups), plural(len(p.Groups)))
	for _, t := range p.Tasks {
		deps := append(append([]string{}, t.DependsOn...), t.DependsOnGroups...)
		fmt.Fprintf(w, "  %-30s deps=%v %s\n", t.ID, deps, t.Hash[:19])
	}
	fmt.Fprintf(w, "  %-30s (always runs)\n", compiler.FinalizeID)
}
