package compiler

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bmc-dev/bmc/schema"
)

// Callback defaults: the whole delivery, all attempts, and its retries.
const (
	DefaultCallbackTimeout = 2 * time.Minute
	DefaultCallbackRetries = 5
)

func (c *compiler) finalize() {
	f := Finalize{ID: FinalizeID}
	n := c.root.Get("finalize")
	defer func() { c.prog.Finalize = f }()
	if n == nil || n.Kind != schema.KindMap {
		return
	}
	s := c.top()
	s.taskOK, s.taskID = true, FinalizeID
	p := func(k ...any) []any { return append([]any{"finalize"}, k...) }
	f.Run, _, _ = c.evalStr(n.Get("run"), p("run"), s)
	c.noNUL(n.Get("run"), f.Run, func() []any { return p("run") })
	if cmd := n.Get("command"); cmd != nil && cmd.Kind == schema.KindList {
		known := false // command[0]'s value is known
		for j, a := range cmd.Vals {
			v, unk, ok := c.evalStr(a, p("command", j), s)
			c.noNUL(a, v, func() []any { return p("command", j) })
			f.Command = append(f.Command, v)
			if j == 0 {
				known = ok && !unk
			}
		}
		if known && f.Command[0] == "" {
			c.errorf(cmd.Vals[0], p("command", 0), "the program to run (command[0]) is empty")
		}
	}
	env := map[string]string{}
	for _, k := range c.defaults.envOrder {
		// The finalize step has no matrix: a defaults.env variable that
		// names one is for the tasks, and the step goes without it. One
		// in error was reported at defaults.
		if t := c.defaults.env[k]; !t.usesContext("matrix") {
			env[k], _ = eval(t, s, c.defaults.broken)
		}
	}
	c.checkEnvNames(n.Get("env"), p("env"), false)
	for k, v := range c.envMap(n.Get("env"), p("env"), s) {
		c.noNUL(n.Get("env").Get(k), v, func() []any { return p("env", k) })
		env[k] = v
	}
	if len(env) > 0 {
		f.Env = env
	}
	if d, ok := c.duration(n.Get("timeout"), p("timeout")); ok {
		f.Timeout = d
	} else {
		f.Timeout = c.defaults.timeout
	}
	if ins := c.inputSpecs(n.Get("inputs"), p("inputs")); ins != nil {
		// Checked as a task's inputs are: a template in error is
		// reported once, and its value is then unknown.
		broken := map[*template]bool{}
		for _, in := range ins {
			c.checkTmpl(in.from, in.fromNode, p("inputs", in.j, "from"), s, broken)
			c.checkTmpl(in.path, in.pathNode, p("inputs", in.j, "path"), s, broken)
		}
		f.Inputs = c.inputs(ins, broken, s, p)
	}
	c.emptyStart(n.Get("run"), n.Get("command"), p(), f.Run, f.Command, f.Inputs, "step")
	if outs := c.outputSpecs(n.Get("outputs"), p("outputs")); outs != nil {
		// Checked as a task's outputs are: a template in error is
		// reported once, and its value is then unknown.
		broken := map[*template]bool{}
		for _, o := range outs {
			c.checkTmpl(o.path, o.pathNode, p("outputs", o.j, "path"), s, broken)
			c.checkTmpl(o.to, o.toNode, p("outputs", o.j, "to"), s, broken)
		}
		f.Outputs = c.outputs(outs, s, p, broken)
	}
	cb := n.Get("callback")
	if cb == nil || cb.Kind != schema.KindMap {
		return
	}
	call := &Callback{URLEnv: str(cb.Get("urlEnv")), SecretEnv: str(cb.Get("secretEnv")), Timeout: Duration(DefaultCallbackTimeout), Retries: intOf(cb.Get("retries"), DefaultCallbackRetries)}
	if d, ok := c.duration(cb.Get("timeout"), p("callback", "timeout")); ok {
		call.Timeout = d
	}
	urlScope := c.top()
	if u := cb.Get("url"); u != nil {
		v, unk, ok := c.evalStr(u, p("callback", "url"), urlScope)
		if ok && !unk && v == "" && strings.Contains(u.Str, "${{") {
			// A callback URL param left empty turns the callback off.
			return
		}
		if ok && !unk {
			c.checkCallbackURL(u, p("callback", "url"), v)
		}
		call.URL = v
	}
	if h := cb.Get("headers"); h != nil && h.Kind == schema.KindMap {
		call.Headers = c.envMap(h, p("callback", "headers"), urlScope)
		for _, k := range h.Keys {
			if set, ok := reservedHeader(k.Str); ok {
				c.errorf(k, p("callback", "headers", k.Str), "header %q cannot be given: bmc sets %s itself", k.Str, set)
			} else if err := CheckHeader(k.Str, call.Headers[k.Str]); err != nil {
				c.errorf(k, p("callback", "headers", k.Str), "%v: the callback could not be sent", err)
			}
		}
	}
	f.Callback = call
}

// bmcHeaders are the callback request's headers bmc sets itself, and
// those its HTTP client sets from the request: a spec's would be dropped.
var bmcHeaders = []string{"Content-Type", "Idempotency-Key", "User-Agent", "X-Bmc-Signature", "Host", "Content-Length", "Transfer-Encoding"}

// reservedHeader reports whether k names a header bmc sets, compared
// as HTTP compares names, and that header as bmc writes it.
func reservedHeader(k string) (string, bool) {
	for _, h := range bmcHeaders {
		if strings.EqualFold(k, h) {
			return h, true
		}
	}
	return "", false
}

// CheckHeader rejects a header field net/http would refuse to send: a
// name that is not an HTTP token, or a value holding a control character.
// The error names the field, never its value.
func CheckHeader(k, v string) error {
	if k == "" {
		return errors.New("empty header name")
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return fmt.Errorf("invalid header name %q", k)
		}
	}
	for i := 0; i < len(v); i++ {
		// net/http refuses control characters other than tab.
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return fmt.Errorf("invalid value for header %q", k)
		}
	}
	return nil
}
