//go:build !race

package azurebatch

// raceEnabled reports whether the tests run under the race detector.
const raceEnabled = false
