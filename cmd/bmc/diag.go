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

// writeDiags prints diagnostics in the chosen format.
func writeDiags(w io.Writer, format string, diags schema.Diagnostics, sources map[string][]byte) {
	switch format {
	case "json":
		type jd struct {
			File     string `json:"file"`
			Line     int    `json:"line"`
			Col      int    `json:"col"`
			Severity string `json:"severity"`
			Path     string `json:"path,omitempty"`
			Message  string `json:"message"`
			Hint     string `json:"hint,omitempty"`
		}
		out := make([]jd, 0, len(diags))
		for _, d := range diags {
			sev := "error"
			if d.Warning {
				sev = "warning"
			}
			out = append(out, jd{d.Pos.File, d.Pos.Line, d.Pos.Col, sev, d.Path, d.Msg, d.Hint})
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
			kind := "error"
			if d.Warning {
				kind = "warning"
			}
			fmt.Fprintf(w, "::%s file=%s,line=%d,col=%d::%s\n", kind, ghEscapeProp(d.Pos.File), max(d.Pos.Line, 1), max(d.Pos.Col, 1), ghEscape(msg))
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
