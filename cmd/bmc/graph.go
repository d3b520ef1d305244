package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

type graphOptions struct {
	set    setFlag
	format string
}

func newGraphCmd() *cobra.Command {
	var o graphOptions
	cmd := &cobra.Command{
		Use:   "graph FILE",
		Short: "Draw the task graph as Graphviz DOT or Mermaid",
		Example: `  bmc graph examples/genomics.yaml | dot -Tsvg > genomics.svg
  bmc graph examples/genomics.yaml -o mermaid`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.format != "dot" && o.format != "mermaid" {
				return usagef("unknown --format %q: expected dot or mermaid", o.format)
			}
			prog, err := compileSpec(cmd, args[0], &o.set)
			if err != nil {
				return err
			}
			if o.format == "dot" {
				fmt.Fprint(cmd.OutOrStdout(), prog.DOT())
			} else {
				fmt.Fprint(cmd.OutOrStdout(), prog.Mermaid())
			}
			return nil
		},
	}
	addSetFlag(cmd, &o.set)
	cmd.Flags().StringVar(&o.format, "format", "dot", "output format: dot or mermaid")
	// -o/--output, as the other commands name it.
	cmd.Flags().StringVarP(&o.format, "output", "o", "dot", "the same as --format")
	return cmd
}
