//go:build !unix

package blobstage

import "time"

// processGone cannot tell here: every writer counts as alive, and its
// partial files go only once stale.
func processGone(int) bool { return false }

// processStart cannot tell here. A variable for tests.
var processStart = func(int) (time.Time, bool) { return time.Time{}, false }
