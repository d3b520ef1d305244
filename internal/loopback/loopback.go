// Package loopback says whether a URL host names this machine. Plain http
// is allowed only there (callbacks, https inputs, the Batch emulator).
package loopback

import (
	"net/netip"
	"strings"
)

// Host reports whether host (a URL's Hostname(), without port or
// brackets) is localhost or a loopback address (127.0.0.0/8, ::1, and
// IPv4-mapped forms).
func Host(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}
