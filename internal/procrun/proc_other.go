//go:build !linux && !darwin

package procrun

import "time"

// Without a known way to read the process table, Find finds nothing
// and a process group counts as alive for as long as it exists.

func procPIDs() ([]int, error) { return nil, errNoProcTable }

func procEnviron(int) ([][]byte, error) { return nil, errNoProcTable }

func procState(int) (pgrp int, zombie, ok bool) { return 0, false, false }

func groupHasLive(int) (alive, ok bool) { return false, false }

func userProcess(int) bool { return false }

func procIDsOf(int) (procIDs, bool) { return procIDs{}, false }

func procPlaces(int) []string { return nil }

// Started cannot tell here.
func Started(int) (time.Time, bool) { return time.Time{}, false }
