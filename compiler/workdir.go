package compiler

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/bmc-dev/bmc/schema"
)

// emptyStart warns of a task or finalize step (who says which) whose run
// script starts by running ./X, or whose command's program is ./X, a
// program in its working directory, when no input lands at X: the
// working directory starts empty but for the inputs, so every attempt
// would fail with exit code 127, "No such file or directory". Only the
// script's first command is looked at: a later one may run what an
// earlier one made. at is the path of the task or step in the spec;
// runNode and cmdNode are its run and command as written.
func (c *compiler) emptyStart(runNode, cmdNode *schema.Node, at []any, run string, command []string, inputs []Input, who string) {
	var (
		prog  string
		n     *schema.Node
		field []any
	)
	switch {
	case run != "" && runNode != nil:
		prog, n, field = firstWord(run), runNode, append(slices.Clip(at), "run")
	case len(command) > 0 && cmdNode != nil && cmdNode.Kind == schema.KindList && len(cmdNode.Vals) > 0:
		prog, n, field = command[0], cmdNode.Vals[0], append(slices.Clip(at), "command", 0)
	default:
		return
	}
	rel, ok := strings.CutPrefix(prog, "./")
	// A name with shell syntax or an expression in it is not known here.
	if !ok || rel == "" || strings.ContainsAny(rel, "$`\"'*?[{\\") {
		return
	}
	rel = path.Clean(rel)
	if rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
		return
	}
	for _, in := range inputs {
		if in.Path == "" || strings.Contains(in.Path, "${{") {
			return // lands where only the run knows
		}
		p := path.Clean(in.Path)
		if p == rel {
			return
		}
		// A prefix, or a spec-relative path that may be a folder, may
		// hold it.
		if (in.Kind == InputBlobPrefix || in.Kind == InputFile) && (p == "." || strings.HasPrefix(rel, p+"/")) {
			return
		}
	}
	add := "{from: " + rel + "}"
	if strings.Contains(rel, "/") {
		// An input lands under its base name unless path says otherwise.
		add = "{from: " + rel + ", path: " + rel + "}"
	}
	c.warnings = append(c.warnings, &schema.Diagnostic{Pos: n.Pos, Path: schema.PathString(field), Warning: true,
		Msg:  fmt.Sprintf("runs ./%s, but the %s's working directory starts empty: no input puts %s there", rel, who, rel),
		Hint: fmt.Sprintf("add inputs: [%s] to bring the file from the spec's folder", add)})
}

// firstWord is the first word of a script's first command: of its first
// line that is neither blank nor a comment, up to a blank or an operator.
func firstWord(script string) string {
	for line := range strings.SplitSeq(script, "\n") {
		line = strings.TrimLeft(line, " \t")
		if line == "" || line[0] == '#' {
			continue
		}
		if i := strings.IndexAny(line, " \t\r;&|<>()"); i >= 0 {
			line = line[:i]
		}
		return line
	}
	return ""
}
