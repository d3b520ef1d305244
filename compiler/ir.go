package compiler

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bmc-dev/bmc/internal/redact"
	"github.com/bmc-dev/bmc/schema"
)

// Program is a compiled workload: plain data that serializes to
// deterministic JSON. Tasks are in topological order, ties broken by id.
// A backend sees only this (through the planner), never YAML.
type Program struct {
	APIVersion  string            `json:"apiVersion"`
	Name        string            `json:"name"`
	Description string            `json:"description,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Params      map[string]any    `json:"params,omitempty"`
	Pool        *Pool             `json:"pool,omitempty"`
	Packages    []Package         `json:"packages,omitempty"`
	Storage     *Storage          `json:"storage,omitempty"`
	Logs        string            `json:"logs,omitempty"`
	// Groups are the matrix tasks: a dependency on a group waits for
	// every member, stored once, not as an edge per member.
	Groups   []Group  `json:"groups,omitempty"`
	Tasks    []Task   `json:"tasks"`
	Finalize Finalize `json:"finalize"`

	// warnings are the hazards the compile found in a valid spec.
	warnings schema.Diagnostics
	// specOf is, for each task, the index in specPos of the task spec it
	// came from (one for all members of a matrix); specPos is where each
	// of those is written, and poolPos where the pool is. A program read
	// back from JSON has none of them.
	specOf  []int32
	specPos []schema.Pos
	poolPos schema.Pos
	// inputPos is, for each task spec (as specPos), where each of its
	// inputs' from is written, in the order of Task.Inputs; finInputPos
	// is that of the finalize step's.
	inputPos    [][]schema.Pos
	finInputPos []schema.Pos
}

// Warnings are the hazards found in the spec the program was compiled
// from, each at its place in the spec: the spec is valid, but likely not
// as meant. A program read back from JSON has none.
func (p *Program) Warnings() schema.Diagnostics { return p.warnings }

// TaskPos is where the task at index i of Tasks is written in the spec:
// its id. ok is false when that is not known, as for a program read back
// from JSON.
func (p *Program) TaskPos(i int) (pos schema.Pos, ok bool) {
	if i < 0 || i >= len(p.specOf) {
		return schema.Pos{}, false
	}
	return p.specPos[p.specOf[i]], true
}

// InputPos is where the from of input k of task i is written in the
// spec, i -1 for the finalize step's; ok is false when that is not known.
func (p *Program) InputPos(i, k int) (pos schema.Pos, ok bool) {
	list := p.finInputPos
	if i >= 0 {
		if i >= len(p.specOf) || int(p.specOf[i]) >= len(p.inputPos) {
			return schema.Pos{}, false
		}
		list = p.inputPos[p.specOf[i]]
	}
	if k < 0 || k >= len(list) {
		return schema.Pos{}, false
	}
	return list[k], true
}

// Subset is p with only the tasks keep marks, in their order, each still
// knowing where it is written. Groups are as in p: the caller fixes them.
func (p *Program) Subset(keep []bool) *Program {
	out := *p
	out.Tasks, out.specOf = nil, nil
	known := len(p.specOf) == len(p.Tasks)
	for i, t := range p.Tasks {
		if keep[i] {
			out.Tasks = append(out.Tasks, t)
			if known {
				out.specOf = append(out.specOf, p.specOf[i])
			}
		}
	}
	return &out
}

// PoolPos is where the pool is written in the spec; ok is false when the
// spec has none, or that is not known.
func (p *Program) PoolPos() (pos schema.Pos, ok bool) {
	return p.poolPos, p.poolPos.Line > 0
}

// FinalizeID is the reserved id of the finalize step.
const FinalizeID = "finalize"

// Task is one unit of work after expansion.
type Task struct {
	ID string `json:"id"`
	// Group is the matrix task this one is a member of.
	Group  string         `json:"group,omitempty"`
	Matrix map[string]any `json:"matrix,omitempty"`
	// Run is a bash script; Command an argv. Exactly one is set.
	Run       string            `json:"run,omitempty"`
	Command   []string          `json:"command,omitempty"`
	Env       map[string]string `json:"env,omitempty"`
	Inputs    []Input           `json:"inputs,omitempty"`
	Outputs   []Output          `json:"outputs,omitempty"`
	Container *Container        `json:"container,omitempty"`
	Packages  []Package         `json:"packages,omitempty"`
	Retries   int               `json:"retries"`
	Timeout   Duration          `json:"timeout,omitempty"`
	Slots     int               `json:"slots"`
	// DependsOn holds task ids; DependsOnGroups group ids.
	DependsOn       []string `json:"dependsOn,omitempty"`
	DependsOnGroups []string `json:"dependsOnGroups,omitempty"`
	// Hash identifies what the task does: command, env, inputs, packages
	// and container. A later resume or cache keys on it.
	Hash string `json:"hash"`
}

// Group is a matrix task's members, in expansion order.
type Group struct {
	ID      string   `json:"id"`
	Members []string `json:"members"`
}

// InputKind says where an input comes from.
type InputKind string

const (
	InputBlob       InputKind = "blob"        // az://container/blob
	InputBlobPrefix InputKind = "blob-prefix" // az://container/prefix/
	InputHTTP       InputKind = "http"        // https://...
	InputFile       InputKind = "file"        // a path relative to the spec's folder
)

// Input is a file or prefix staged into the working directory.
type Input struct {
	From string    `json:"from"`
	Kind InputKind `json:"kind"`
	Path string    `json:"path"`
}

// When says after which outcomes an output is uploaded.
type When string

const (
	WhenSuccess When = "success"
	WhenFailure When = "failure"
	WhenAlways  When = "always"
)

// Matches reports whether an output with this condition is uploaded after
// an attempt that succeeded or not.
func (w When) Matches(succeeded bool) bool {
	return w == WhenAlways || (w == WhenSuccess) == succeeded
}

// Output is a file pattern collected from the working directory.
type Output struct {
	Pattern string `json:"path"`
	To      string `json:"to"`
	When    When   `json:"when"`
}

// Container is the image a task runs in.
type Container struct {
	Image   string `json:"image"`
	Options string `json:"options,omitempty"`
}

// Package is an application package reference; an empty version means the
// account's default.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
}

// Pool is the Azure Batch pool.
type Pool struct {
	ID           string     `json:"id,omitempty"`
	VMSize       string     `json:"vmSize,omitempty"`
	Image        *Image     `json:"image,omitempty"`
	NodeAgentSKU string     `json:"nodeAgentSku,omitempty"`
	Dedicated    int        `json:"dedicated"`
	Spot         int        `json:"spot"`
	Autoscale    *Autoscale `json:"autoscale,omitempty"`
	SlotsPerNode int        `json:"slotsPerNode"`
	StartTask    *StartTask `json:"startTask,omitempty"`
	Identity     string     `json:"identity,omitempty"`
}

// Image is a Marketplace image reference.
type Image struct {
	Publisher string `json:"publisher"`
	Offer     string `json:"offer"`
	SKU       string `json:"sku"`
	Version   string `json:"version"`
}

// Autoscale is an autoscale formula.
type Autoscale struct {
	Formula  string   `json:"formula"`
	Interval Duration `json:"interval"`
}

// StartTask runs on every node as it joins the pool.
type StartTask struct {
	Run            string            `json:"run"`
	Elevated       bool              `json:"elevated,omitempty"`
	Env            map[string]string `json:"env,omitempty"`
	WaitForSuccess bool              `json:"waitForSuccess"`
}

// Storage says which store az:// locations use.
type Storage struct {
	Backend    string `json:"backend,omitempty"`
	AccountURL string `json:"accountUrl,omitempty"`
}

// Finalize is the step that always runs last.
type Finalize struct {
	ID      string            `json:"id"`
	Run     string            `json:"run,omitempty"`
	Command []string          `json:"command,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	Timeout Duration          `json:"timeout,omitempty"`
	// Inputs are staged into the step's working directory, which
	// otherwise starts empty, before it runs.
	Inputs   []Input   `json:"inputs,omitempty"`
	Outputs  []Output  `json:"outputs,omitempty"`
	Callback *Callback `json:"callback,omitempty"`
}

// SecretParams names, sorted, the params whose values bmc must not keep
// or show, which the program's text alone would not tell: a param the
// callback sends in a header that carries a key or a token (X-Api-Key:
// ${{ params.apiKey }}, as redact.IsCredentialHeader names them), and a
// param that redaction takes out where it is used (?code=${{ params.c }},
// a signature, a password in a URL). A param counts when its text (a
// number's as written) is such a value or, at 4 characters or more, part
// of one.
func (p *Program) SecretParams() []string {
	var secret []string
	var raw []byte // the program's JSON, unredacted, made when needed
	for k, v := range p.Params {
		pv := paramText(v)
		if pv == "" {
			continue
		}
		if p.inCredentialHeader(pv) {
			secret = append(secret, k)
			continue
		}
		if len(pv) < 4 {
			continue
		}
		if raw == nil {
			c := *p
			c.Params = nil
			var err error
			if raw, err = json.Marshal(&c); err != nil {
				return nil
			}
		}
		if lostToRedaction(raw, pv) {
			secret = append(secret, k)
		}
	}
	slices.Sort(secret)
	return secret
}

// inCredentialHeader reports whether pv is, or is part of, the value of a
// callback header that carries a key or a token.
func (p *Program) inCredentialHeader(pv string) bool {
	if p.Finalize.Callback == nil {
		return false
	}
	for name, hv := range p.Finalize.Callback.Headers {
		if redact.IsCredentialHeader(name) && (hv == pv || len(pv) >= 4 && strings.Contains(hv, pv)) {
			return true
		}
	}
	return false
}

// lostToRedaction reports whether a string of the JSON text raw holds pv
// where redaction takes it out.
func lostToRedaction(raw []byte, pv string) bool {
	needle := []byte(pv)
	for off := 0; ; {
		i := bytes.Index(raw[off:], needle)
		if i < 0 {
			return false
		}
		i += off
		// The string literal around it: from the quote before, to the
		// quote after, neither escaped.
		start := bytes.LastIndexByte(raw[:i], '"')
		for start > 0 && raw[start-1] == '\\' {
			start = bytes.LastIndexByte(raw[:start-1], '"')
		}
		end := i + len(needle)
		for end < len(raw) && (raw[end] != '"' || raw[end-1] == '\\') {
			end++
		}
		if start >= 0 && end < len(raw) {
			var s string
			if json.Unmarshal(raw[start:end+1], &s) == nil && strings.Contains(s, pv) && !strings.Contains(redact.String(s), pv) {
				return true
			}
		}
		off = i + len(needle)
	}
}

// paramText is a param's value as it stands where an expression puts it
// in the program's text (interpolated): a string, or a number as written;
// "" for a list or map, whose JSON is quoted where it lands.
func paramText(v any) string {
	switch v.(type) {
	case string, json.Number, float64, int, int64:
		return interpolated(v)
	}
	return ""
}

// RedactedJSON is p as bmc shows or keeps it (a run's program.json, bmc
// compile): what redact.JSON takes out (signatures, passwords, keys in
// queries), the values of the callback's credential headers, and the
// values of SecretParams wherever they stand, all REDACTED. redacted
// reports whether anything was.
func (p *Program) RedactedJSON(indent bool) (b []byte, redacted bool, err error) {
	return p.RedactedJSONOf(p.SecretParams(), indent)
}

// RedactedJSONOf is RedactedJSON for a caller that has the program's
// SecretParams already: finding them encodes the whole program, which on
// a sweep of 100,000 tasks is worth doing once.
func (p *Program) RedactedJSONOf(secret []string, indent bool) (b []byte, redacted bool, err error) {
	c := *p
	var texts []string
	if len(secret) > 0 {
		c.Params = maps.Clone(p.Params)
		for _, k := range secret {
			texts = append(texts, paramText(p.Params[k]))
			c.Params[k] = redact.Marker
		}
	}
	if cb := p.Finalize.Callback; cb != nil && len(cb.Headers) > 0 {
		hs := maps.Clone(cb.Headers)
		for name, v := range hs {
			if redact.IsCredentialHeader(name) && v != "" {
				hs[name] = redact.Marker
			}
		}
		if !maps.Equal(hs, cb.Headers) {
			cc := *cb
			cc.Headers = hs
			c.Finalize.Callback = &cc
			redacted = true
		}
	}
	b, red, err := redact.JSON(&c, indent)
	if err != nil {
		return nil, false, err
	}
	b, scrubbed := redact.Values(b, texts)
	return b, redacted || red || scrubbed || len(secret) > 0, nil
}

// HasStep reports whether the finalize step runs a command of its own.
func (f *Finalize) HasStep() bool { return f.Run != "" || len(f.Command) > 0 }

// Callback is where the run's outcome is POSTed.
type Callback struct {
	URL string `json:"url,omitempty"`
	// URLEnv names the environment variable holding the URL instead,
	// read when the run starts; the URL is then kept nowhere.
	URLEnv    string            `json:"urlEnv,omitempty"`
	SecretEnv string            `json:"secretEnv,omitempty"`
	Timeout   Duration          `json:"timeout"`
	Retries   int               `json:"retries"`
	Headers   map[string]string `json:"headers,omitempty"`
}

// EnvVars names the environment variables the callback reads its secret
// and URL from (secretEnv, urlEnv), which tasks and the finalize step do
// not get; none for a nil callback.
func (c *Callback) EnvVars() []string {
	if c == nil {
		return nil
	}
	var vars []string
	for _, v := range []string{c.SecretEnv, c.URLEnv} {
		if v != "" {
			vars = append(vars, v)
		}
	}
	return vars
}

// Duration is a time.Duration written as in specs: 90s, 15m, 2h, 1d.
type Duration time.Duration

// D returns the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string {
	t := time.Duration(d)
	if t <= 0 {
		return "0s"
	}
	var b strings.Builder
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}, {time.Millisecond, "ms"}} {
		if n := t / u.unit; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10) + u.name)
			t -= n * u.unit
		}
	}
	if t > 0 { // below a millisecond: keep it exact
		b.WriteString(time.Duration(t).String())
	}
	return b.String()
}

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// ErrDurationTooLong is wrapped by ParseDuration's error for a duration
// beyond what it can represent (about 292 years).
var ErrDurationTooLong = errors.New("too long")

// ParseDuration parses a spec duration: numbers with units ms, s, m, h, d,
// such as 90s, 1.5h or 1h30m.
func ParseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	var total float64
	rest := s
	for rest != "" {
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.') {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("invalid duration %q: expected a number", s)
		}
		n, err := strconv.ParseFloat(rest[:i], 64)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		rest = rest[i:]
		j := 0
		for j < len(rest) && rest[j] >= 'a' && rest[j] <= 'z' {
			j++
		}
		var unit float64
		switch rest[:j] {
		case "ms":
			unit = float64(time.Millisecond)
		case "s":
			unit = float64(time.Second)
		case "m":
			unit = float64(time.Minute)
		case "h":
			unit = float64(time.Hour)
		case "d":
			unit = float64(24 * time.Hour)
		default:
			return 0, fmt.Errorf("invalid duration %q: unit %q is not one of ms, s, m, h, d", s, rest[:j])
		}
		total += n * unit
		rest = rest[j:]
	}
	const maxD = float64(1<<63 - 1)
	if total >= maxD {
		return 0, fmt.Errorf("duration %q is %w", s, ErrDurationTooLong)
	}
	return time.Duration(total), nil
}
