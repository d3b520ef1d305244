package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/bmc-dev/bmc/schema"
)

// specError reports spec diagnostics and exits 1.
type specError struct {
	diags schema.Diagnostics
	src   []byte
}

func (e *specError) Error() string { return e.diags.Error() }

// jsonPos is a place in a spec in bmc validate's JSON output.
type jsonPos struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Col  int    `json:"col"`
}

// jsonDiag is one entry of bmc validate's JSON output, a format
// docs/spec.md documents as stable: fields may be added, never renamed
// or dropped, and every field is always there, "" or [] when empty.
type jsonDiag struct {
	File     string    `json:"file"`
	Line     int       `json:"line"` // 0, as col, for the file as a whole
	Col      int       `json:"col"`
	Severity string    `json:"severity"` // error or warning
	Path     string    `json:"path"`
	Message  string    `json:"message"`
	Hint     string    `json:"hint"`
	Related  []jsonPos `json:"related"`
}

// writeDiags prints diagnostics in the chosen format.
func writeDiags(w io.Writer, format string, diags schema.Diagnostics, sources map[string][]byte) {
	writeDiagsStrict(w, format, diags, sources, false)
}

// writeDiagsStrict is writeDiags, with the warnings labelled errors in
// JSON and in GitHub annotations when strict: bmc validate --strict fails
// on them, and a CI reading the severity must see why. The text report
// keeps "warning:", and its last line says --strict fails on them.
func writeDiagsStrict(w io.Writer, format string, diags schema.Diagnostics, sources map[string][]byte, strict bool) {
	switch format {
	case "json":
		out := make([]jsonDiag, 0, len(diags))
		for _, d := range diags {
			sev := "error"
			if d.Warning && !strict {
				sev = "warning"
			}
			related := make([]jsonPos, 0, len(d.Related))
			for _, r := range d.Related {
				related = append(related, jsonPos{r.File, r.Line, r.Col})
			}
			out = append(out, jsonDiag{d.Pos.File, d.Pos.Line, d.Pos.Col, sev, d.Path, d.Msg, d.Hint, related})
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		// Messages quote specs and shell text: & and < stay as written.
		enc.SetEscapeHTML(false)
		enc.Encode(out)
	case "github":
		for _, d := range diags {
			msg := d.Msg
			if d.Path != "" {
				msg = d.Path + ": " + msg
			}
			if d.Hint != "" {
				msg += " (" + d.Hint + ")"
			}
			// An annotation has one place: the related ones are told in
			// its text, as the text output tells them.
			if len(d.Related) > 0 {
				see := make([]string, len(d.Related))
				for i, r := range d.Related {
					see[i] = r.String()
				}
				msg += " (see " + strings.Join(see, ", ") + ")"
			}
			kind := "error"
			if d.Warning && !strict {
				kind = "warning"
			}
			// A problem of the file as a whole (it cannot be read) has no
			// line: the annotation is on the file.
			at := "file=" + ghEscapeProp(d.Pos.File)
			if d.Pos.Line > 0 {
				at += fmt.Sprintf(",line=%d,col=%d", d.Pos.Line, max(d.Pos.Col, 1))
			}
			fmt.Fprintf(w, "::%s %s::%s\n", kind, at, ghEscape(msg))
		}
	default:
		// Each file's lines are indexed once: a spec with thousands of
		// errors is not read again for each.
		lines := map[string]*schema.SourceLines{}
		bw := bufio.NewWriter(w)
		for _, d := range diags {
			l, ok := lines[d.Pos.File]
			if !ok {
				l = schema.NewSourceLines(sources[d.Pos.File])
				lines[d.Pos.File] = l
			}
			bw.WriteString(d.FormatLines(l))
		}
		bw.Flush()
	}
}

// GitHub workflow commands escape %, CR and LF in messages, and also : and ,
// in properties.
func ghEscape(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

func ghEscapeProp(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}

// asDiags extracts diagnostics from a compile error.
func asDiags(err error) (schema.Diagnostics, bool) {
	var ds schema.Diagnostics
	if errors.As(err, &ds) {
		return ds, true
	}
	return nil, false
}
