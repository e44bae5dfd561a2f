// Package e2e holds sparegrid's end-to-end scenarios: the real binaries,
// started on loopback with temporary directories, driving the real
// autopkgtest against real mmdebstrap testbeds. It asserts what users see:
// command output, exit codes, files and the HTTP API.
//
// It must not import coordinator/ or agent/ packages; package harness is
// its only plumbing.
package e2e
