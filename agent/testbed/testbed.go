// Package testbed owns the contract between sparegrid's autopkgtest virt
// server (package virt) and its backends (overlay, xenlvm): what a backend
// must do at each step of a testbed's life, and what isolation it promises.
//
// It must not speak autopkgtest's protocol (package virt does) and must not
// know any backend's mechanics.
//
// # Lifecycle
//
// A Backend is used by one virt server at a time, from one goroutine:
//
//	Open → (Revert | Reboot)* → Close
//
// Open starts a fresh testbed from the backend's pristine base and returns
// the argv prefix that runs a command inside it (autopkgtest's "auxverb").
// Revert throws away every change since Open — files, packages, processes —
// and returns the prefix to use from then on; afterwards no command started
// through an older prefix may have any further effect on the testbed. Close
// does the same as Revert without starting a new testbed, and must be
// idempotent: the server calls it on every error, signal and EOF, possibly
// twice, possibly after a failed Open.
//
// # Isolation
//
// Capabilities lists the virt-server capability words the backend can
// honour (for example "revert", "isolation-container", "root-on-testbed",
// "suggested-normal-user=NAME"); the server adds nothing a backend did not
// claim. A backend never modifies its base: the copy-on-write layer (an
// overlayfs upper directory, a device-mapper snapshot) is the only thing a
// testbed writes, and it is discarded by Revert and Close.
//
// # Crash recovery
//
// A backend whose testbeds can outlive the server (mounts, guests,
// snapshots) must name them with Prefix and remove leftovers with that
// prefix in Cleanup, which the server calls before Open; Cleanup must be
// safe to run at any time and more than once.
package testbed

import "context"

// Prefix starts the name of every host object a backend creates (mounts,
// cgroups, logical volumes, guests), so that leftovers can be found after a
// crash.
const Prefix = "sparegrid-tb-"

// Backend runs testbeds for the virt server.
type Backend interface {
	// Name is the backend's name, as recorded in a result's harness
	// revision: "overlay" or "xenlvm".
	Name() string
	// Capabilities lists the virt-server capabilities the backend honours.
	Capabilities() []string
	// Cleanup removes what earlier, crashed servers of this backend left
	// behind. It is called once before the first Open.
	Cleanup(ctx context.Context) error
	// Open starts a fresh testbed and returns the argv prefix that runs a
	// command inside it.
	Open(ctx context.Context) (exec []string, err error)
	// Revert restores the testbed to its state right after Open and
	// returns the prefix to use from now on.
	Revert(ctx context.Context) (exec []string, err error)
	// Close stops the testbed and discards its changes. Idempotent.
	Close(ctx context.Context) error
}

// Rebooter is implemented by backends whose testbeds can reboot without
// losing their files (the virt-server "reboot" capability).
type Rebooter interface {
	// Reboot restarts the testbed keeping its files, and returns the
	// prefix to use from now on.
	Reboot(ctx context.Context) (exec []string, err error)
}
