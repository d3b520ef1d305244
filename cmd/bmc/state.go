package main

import (
	"os"
	"strings"

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

// hint is a bmc command line to suggest in a message, such as
// hint(cmd, "logs", id, task): with the state directory this command used
// when it is not the default, so that the line works as it is pasted.
func hint(cmd *cobra.Command, args ...string) string {
	line := "bmc " + strings.Join(args, " ")
	if cmd == nil {
		return line
	}
	if d := stateDir(cmd); d != ".bmc" {
		line += " --state-dir " + shellQuote(d)
	}
	return line
}

// shellQuote quotes s for a POSIX shell, unless it needs none.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./-~:@%+=,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
