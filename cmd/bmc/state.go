package main

import (
	"os"

	"github.com/spf13/cobra"
)

// stateDir is where bmc keeps runs and the local blob store: .bmc in the
// current directory unless --state-dir or BMC_STATE_DIR say otherwise.
func stateDir(cmd *cobra.Command) string {
	if f := cmd.Flag("state-dir"); f != nil && f.Changed {
		return f.Value.String()
	}
	if d := os.Getenv("BMC_STATE_DIR"); d != "" {
		return d
	}
	return ".bmc"
}
