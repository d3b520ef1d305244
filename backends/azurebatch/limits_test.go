package azurebatch

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/bmc-dev/bmc/compiler"
	"github.com/bmc-dev/bmc/planner"
)

func TestCheck(t *testing.T) {
	base := func() *compiler.Program {
		return &compiler.Program{Name: "w", Pool: &compiler.Pool{ID: "pool-1", VMSize: "Standard_D4s_v5", SlotsPerNode: 4, Dedicated: 2,
			Image: &compiler.Image{Publisher: "p", Offer: "o", SKU: "s"}, NodeAgentSKU: "a"},
			Tasks: []compiler.Task{{ID: "t", Run: "true", Slots: 1}}}
	}
	for _, c := range []struct {
		name string
		edit func(*compiler.Program)
		opt  CheckOptions
		want string // a message fragment of an error; "" for none
		warn string
	}{
		{name: "fits", edit: func(*compiler.Program) {}},
		{name: "no pool", edit: func(p *compiler.Program) { p.Pool = nil }, want: "needs a pool"},
		{name: "pool id", edit: func(p *compiler.Program) { p.Pool.ID = "bad pool" }, want: `pool id "bad pool"`},
		{name: "slots per core", edit: func(p *compiler.Program) { p.Pool.SlotsPerNode = 17 }, want: "slotsPerNode 17 is more than Batch allows (16: 4 × 4 cores of Standard_D4s_v5)"},
		{name: "slots at the limit", edit: func(p *compiler.Program) { p.Pool.SlotsPerNode = 16 }},
		{name: "slots unknown size", edit: func(p *compiler.Program) { p.Pool.VMSize = "Standard_X9"; p.Pool.SlotsPerNode = 257 }, want: "more than Batch allows (256)"},
		{name: "unknown size within 256", edit: func(p *compiler.Program) { p.Pool.VMSize = "Standard_X9"; p.Pool.SlotsPerNode = 200 }},
		{name: "packages", edit: func(p *compiler.Program) {
			for i := range 11 {
				p.Packages = append(p.Packages, compiler.Package{Name: fmt.Sprint("pk", i)})
			}
		}, want: "11 application packages: a Batch pool takes at most 10"},
		{name: "one slot and a job manager", edit: func(p *compiler.Program) { p.Pool.Dedicated, p.Pool.SlotsPerNode = 1, 1 },
			opt: CheckOptions{JobManager: true}, want: "leaving none for the tasks"},
		{name: "one slot, finalize on the client", edit: func(p *compiler.Program) { p.Pool.Dedicated, p.Pool.SlotsPerNode = 1, 1 }},
		{name: "too large", edit: func(p *compiler.Program) { p.Tasks[0].Run = strings.Repeat("x", 1_000_000) }, want: "an add-task-collection request must stay under"},
		{name: "attempt", edit: func(p *compiler.Program) { p.Tasks[0].Run = "echo ${{ task.attempt }}" }, warn: "is 1 on every attempt"},
		{name: "attempt variable", edit: func(p *compiler.Program) { p.Tasks[0].Run = `echo "$BMC_TASK_ATTEMPT"` }, warn: "BMC_TASK_ATTEMPT is not set"},
		{name: "attempt in an output", edit: func(p *compiler.Program) {
			p.Tasks[0].Outputs = append(p.Tasks[0].Outputs, compiler.Output{Pattern: "log.txt", To: "az://logs/log-${{task.attempt}}.txt", When: compiler.WhenFailure})
		}, warn: "outputs named by it overwrite each other"},
		{name: "no image", edit: func(p *compiler.Program) { p.Pool.Image = nil }, warn: "it must exist already"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := base()
			c.edit(p)
			var errs, warns []string
			for _, ch := range Check(p, c.opt) {
				if ch.Severity == planner.Error {
					errs = append(errs, ch.Message)
				} else {
					warns = append(warns, ch.Message)
				}
			}
			switch {
			case c.want == "" && len(errs) > 0:
				t.Errorf("errors %q", errs)
			case c.want != "" && (len(errs) != 1 || !strings.Contains(errs[0], c.want)):
				t.Errorf("errors %q, want one with %q", errs, c.want)
			}
			if c.warn != "" && (len(warns) != 1 || !strings.Contains(warns[0], c.warn)) {
				t.Errorf("warnings %q, want one with %q", warns, c.warn)
			}
			if c.warn == "" && len(warns) > 0 {
				t.Errorf("warnings %q", warns)
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	prog := fanIn(250)
	prog.Pool = &compiler.Pool{ID: "p", VMSize: "Standard_D2s_v5", Dedicated: 1, SlotsPerNode: 8}
	s, err := Describe(prog, CheckOptions{JobManager: true, DependencyChars: 500})
	if err != nil {
		t.Fatal(err)
	}
	if s.Tasks != 253 || s.Barriers == 0 || s.Requests < 3 || s.LargestTask == 0 || s.Pool.ID != "p" || !strings.Contains(s.Finalize, "job manager") {
		t.Errorf("%+v", s)
	}
}

func TestValidID(t *testing.T) {
	re := regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`) // Batch's rule, as documented
	ids := []string{"", "a", "A-b_9", strings.Repeat("x", 64), strings.Repeat("x", 65), "a.b", "a b", "é", "a/b", "-", "_", "a\n", "ünï", "x\x00"}
	for c := 0; c < 256; c++ {
		ids = append(ids, "id"+string(rune(c)), string([]byte{byte(c)}))
	}
	for _, id := range ids {
		if got, want := validID(id), re.MatchString(id); got != want {
			t.Errorf("validID(%q) = %v, want %v", id, got, want)
		}
	}
}
