// Command sparegrid-agent is the volunteer's agent: it registers a machine
// with a sparegrid coordinator, builds the testbed images it tests in, and
// runs leased package tests until it is stopped.
//
// It wires packages together and reports to the operator; it must not hold
// job, protocol or testbed logic of its own, and must never import anything
// under coordinator/.
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line args and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	cmd := newRootCmd(stdout, stderr, os.Getenv)
	cmd.SetArgs(args)
	if err := cmd.Execute(); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", binary, err)
		return 1
	}
	return 0
}
