package executor

import (
	"encoding/json"
	"io"
	"sync"
	"time"
)

// EventType names what happened.
type EventType string

const (
	EventRunStarted       EventType = "run-started"
	EventTaskStarted      EventType = "task-started"
	EventTaskRetrying     EventType = "task-retrying"
	EventTaskFinished     EventType = "task-finished"
	EventTaskSkipped      EventType = "task-skipped"
	EventFinalizeStarted  EventType = "finalize-started"
	EventFinalizeFinished EventType = "finalize-finished"
	EventCallback         EventType = "callback"
	EventRunFinished      EventType = "run-finished"
	EventProgress         EventType = "progress"
)

// Counts are a run's task counts at one moment.
type Counts struct {
	Total     int `json:"total"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	Running   int `json:"running"`
	Skipped   int `json:"skipped"`
	Cancelled int `json:"cancelled"`
	Pending   int `json:"pending"`
}

// Done is the number of tasks that are over.
func (c Counts) Done() int { return c.Succeeded + c.Failed + c.Skipped + c.Cancelled }

// Event is one thing that happened in a run, for progress displays and
// --events streams.
type Event struct {
	Time     time.Time `json:"time"`
	Type     EventType `json:"type"`
	RunID    string    `json:"runId"`
	Task     string    `json:"task,omitempty"`
	Attempt  int       `json:"attempt,omitempty"`
	State    State     `json:"state,omitempty"`
	ExitCode *int      `json:"exitCode,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	// Elapsed is the attempt's or the run's duration when it ends.
	Elapsed time.Duration `json:"elapsedNs,omitempty"`
	Counts  Counts        `json:"counts"`
}

// Sink receives events. The executor calls it from one goroutine at a
// time; it must not block for long.
type Sink interface {
	Event(Event)
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(Event)

func (f SinkFunc) Event(e Event) { f(e) }

// Sinks fans events out to several sinks.
type Sinks []Sink

func (s Sinks) Event(e Event) {
	for _, k := range s {
		k.Event(e)
	}
}

// JSONSink writes one JSON object per line.
type JSONSink struct {
	mu  sync.Mutex
	enc *json.Encoder
}

// NewJSONSink writes events to w as JSON lines.
func NewJSONSink(w io.Writer) *JSONSink { return &JSONSink{enc: json.NewEncoder(w)} }

func (s *JSONSink) Event(e Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.enc.Encode(e)
}
