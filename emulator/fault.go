package emulator

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// Faults are failures injected into the API, each with a probability per
// request (Partial: per task of an add-collection request). Draws come
// from one generator seeded with Seed, so a client that sends the same
// requests in the same order meets the same faults.
type Faults struct {
	// Throttle answers 429 (TooManyRequests) or 503 (ServerBusy), with
	// Retry-After.
	Throttle float64
	// ServerError answers 500 (InternalError).
	ServerError float64
	// Reset drops the connection without an answer, half the time before
	// the request is applied and half the time after.
	Reset float64
	// Partial fails a task of an add-collection request with status
	// servererror. Batch may have added a task it answers servererror
	// for, and sent again it comes back TaskExists: half the tasks, chosen
	// by the seed and the task's id, are added all the same the first
	// time they fail; the others are not added by a failed request.
	Partial float64
	// Seed seeds the generator.
	Seed uint64
	// RetryAfter is the Retry-After of throttled answers, in seconds;
	// default 1.
	RetryAfter int
}

// ParseFaults reads a fault specification such as
// "throttle=0.1,5xx=0.05,reset=0.02,partial=0.1,seed=7" (also
// retry-after=SECONDS).
func ParseFaults(spec string) (*Faults, error) {
	f := &Faults{RetryAfter: 1}
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("fault %q: expected name=value", part)
		}
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		prob := func(dst *float64) error {
			p, err := strconv.ParseFloat(v, 64)
			if err != nil || p < 0 || p > 1 {
				return fmt.Errorf("fault %s=%s: expected a probability from 0 to 1", k, v)
			}
			*dst = p
			return nil
		}
		var err error
		switch k {
		case "throttle":
			err = prob(&f.Throttle)
		case "5xx":
			err = prob(&f.ServerError)
		case "reset":
			err = prob(&f.Reset)
		case "partial":
			err = prob(&f.Partial)
		case "seed":
			f.Seed, err = strconv.ParseUint(v, 10, 64)
			if err != nil {
				err = fmt.Errorf("fault seed=%s: expected a non-negative integer", v)
			}
		case "retry-after":
			f.RetryAfter, err = strconv.Atoi(v)
			if err != nil || f.RetryAfter < 0 {
				err = fmt.Errorf("fault retry-after=%s: expected seconds", v)
			}
		default:
			err = fmt.Errorf("unknown fault %q: use throttle, 5xx, reset, partial, seed or retry-after", k)
		}
		if err != nil {
			return nil, err
		}
	}
	if sum := f.Throttle + f.ServerError + f.Reset; sum > 1 {
		return nil, fmt.Errorf("faults: throttle+5xx+reset is %g, more than 1", sum)
	}
	return f, nil
}

// String is the specification ParseFaults reads.
func (f Faults) String() string {
	return fmt.Sprintf("throttle=%g,5xx=%g,reset=%g,partial=%g,seed=%d,retry-after=%d",
		f.Throttle, f.ServerError, f.Reset, f.Partial, f.Seed, f.RetryAfter)
}

type faultInjector struct {
	f   Faults
	mu  sync.Mutex
	rng *rand.Rand
}

func newFaultInjector(f Faults) *faultInjector {
	return &faultInjector{f: f, rng: rand.New(rand.NewPCG(f.Seed, f.Seed^0x9e3779b97f4a7c15))}
}

func (fi *faultInjector) draw2() (float64, float64) {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	return fi.rng.Float64(), fi.rng.Float64()
}

// partialItem draws whether the partial fault fails a task of an
// add-collection request, and says whether the task was added anyway.
// That is fixed for each task, so that a task the service does not add
// can fail every time it is sent, as one added is found there when sent
// again.
func (fi *faultInjector) partialItem(taskID string) (fail, added bool) {
	if fi.f.Partial == 0 {
		return false, false
	}
	fi.mu.Lock()
	fail = fi.rng.Float64() < fi.f.Partial
	fi.mu.Unlock()
	if !fail {
		return false, false
	}
	h := fnv.New64a()
	binary.Write(h, binary.LittleEndian, fi.f.Seed)
	h.Write([]byte(strings.ToLower(taskID)))
	return true, h.Sum64()&1 == 1
}

// intercept injects a fault into the request, if its draw says so, and
// reports whether it did. run answers the request normally.
func (fi *faultInjector) intercept(w http.ResponseWriter, r *http.Request, c *call, run func(http.ResponseWriter)) bool {
	f := fi.f
	if f.Throttle+f.ServerError+f.Reset == 0 {
		return false
	}
	u, v := fi.draw2()
	switch {
	case u < f.Throttle:
		e := newError(http.StatusServiceUnavailable, "ServerBusy", "The server is currently unable to receive requests. Please retry your request.")
		if v < 0.5 {
			e = newError(http.StatusTooManyRequests, "TooManyRequests", "The server is receiving too many requests. Please retry your request later.")
		}
		w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfter))
		c.s.writeError(w, c, e)
		return true
	case u < f.Throttle+f.ServerError:
		c.s.writeError(w, c, newError(http.StatusInternalServerError, "InternalError",
			"Server encountered an internal error. Please try again after some time."))
		return true
	case u < f.Throttle+f.ServerError+f.Reset:
		if v >= 0.5 {
			run(&discardWriter{h: http.Header{}}) // applied, then the answer is lost
		}
		// The server closes the connection without writing a response.
		panic(http.ErrAbortHandler)
	}
	return false
}

type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}
