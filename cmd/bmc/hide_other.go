//go:build !linux

package main

// hideEnviron: on other systems bmc has no switch that keeps its
// environment from the processes of its user.
func hideEnviron() {}

func environHidden() bool { return true }
