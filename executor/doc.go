// Package executor drives a planned run on a backend: the run loop shared
// by every backend, the DAG scheduler for backends without native
// dependencies (bounded slots, critical-path order, retries, skipped
// dependents with their root cause), the append-only journal that makes a
// run resumable after a crash, the event stream that progress displays
// draw, cancellation, and the finalize step with its callback.
//
// It never parses specs and never prints: the CLI renders its events.
// Backends are reached only through the Backend interface defined here.
package executor
