//go:build race

package azurebatch

const raceEnabled = true
