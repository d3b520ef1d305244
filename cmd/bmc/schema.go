package main

import (
	"github.com/bmc-dev/bmc/schema"
	"github.com/spf13/cobra"
)

type schemaOptions struct{ format string }

func newSchemaCmd() *cobra.Command {
	var o schemaOptions
	cmd := &cobra.Command{
		Use:   "schema",
		Short: "Print the bmc/v1 spec schema (CUE, or JSON Schema for editors)",
		Long: `Print the bmc/v1 spec schema. The CUE schema is the source of truth; the JSON
Schema is generated from it for editors, for example with yaml-language-server:

  bmc schema --format jsonschema > bmc.schema.json
  # yaml-language-server: $schema=./bmc.schema.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch o.format {
			case "cue":
				_, err := cmd.OutOrStdout().Write(schema.Source())
				return err
			case "jsonschema", "json":
				b, err := schema.JSONSchema()
				if err != nil {
					return err
				}
				_, err = cmd.OutOrStdout().Write(append(b, '\n'))
				return err
			}
			return usagef("unknown --format %q: expected cue or jsonschema", o.format)
		},
	}
	cmd.Flags().StringVar(&o.format, "format", "cue", "output format: cue or jsonschema")
	return cmd
}
