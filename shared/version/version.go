// Package version owns the build version of every sparegrid binary and the
// wire protocol version that agents and the coordinator compare at hello.
//
// It must not depend on any other sparegrid package.
package version

import "fmt"

// Version is the release of this build. It is set at link time with
//
//	-ldflags "-X github.com/sparegrid/sparegrid/shared/version.Version=v1.2.3"
//
// and reads "dev" when unset.
var Version = "dev"

// Protocol is the one integer version of the agent protocol. Both sides send
// it at hello and refuse a peer that speaks another.
//
// History (bump it, and add a dated line, on every incompatible change):
//
//	1 (2026-11-21): first protocol: hello, register, challenge, token,
//	                lease, heartbeat, blob upload and fetch, signed result.
const Protocol = 1

// String returns a one-line description of the build for --version output.
func String(binary string) string {
	return fmt.Sprintf("%s %s (protocol %d)", binary, Version, Protocol)
}
