//go:build !unix

package health

import "os/exec"

// killGroup leaves cmd as it is: only unix systems have process groups.
func killGroup(*exec.Cmd) {}
