// Package archive owns watching Debian-style archives: fetching and
// verifying InRelease (or Release and Release.gpg) and the Sources index of
// each configured suite and component, parsing them, and turning them into
// Snapshots (the newest version of every source, whether it has an
// autopkgtest, its binaries, and which testable sources an upload of it
// triggers) and into Changes between two snapshots.
//
// The contract:
//
//   - Config lists archives; a Watcher polls one. Poll does one round over
//     every suite and component and returns the Changes it saw; Run loops
//     over Poll with the configured interval, jitter and a backoff after
//     errors, never running two polls at once.
//   - Requests are conditional (If-None-Match, If-Modified-Since). A 304 for
//     a suite's InRelease ends that suite's round without parsing anything.
//     A Sources file whose sha256 in the new Release is the one already
//     held is not fetched again.
//   - With a keyring, every index is verified with the real gpgv and an
//     unsigned or badly signed one is refused. Without one, Snapshots record
//     Verified=false.
//   - Every byte count is bounded: the Release, the compressed Sources (by
//     the size the Release states and by Limits), the decompressed Sources,
//     the xz dictionary, each line, field and paragraph.
//   - Any error in a component keeps that component's previous Snapshot and
//     is returned (joined with the others) after the rest of the round has
//     run; the suite's InRelease validators are only kept once every
//     component of the suite succeeded, so the next poll retries.
//   - A Source keeps its Directory and, when it is testable, the files of
//     its Checksums-Sha256 field, so that a caller can fetch the .dsc and
//     what it lists (Watcher.Source gives them with the archive's URL);
//     the watcher itself never downloads a source package.
//   - State (validators and the last Snapshots) goes through a StateStore
//     the caller supplies; the first Snapshot of a component with no earlier
//     one is a baseline and yields no Changes unless Options.ReportInitial.
//
// It must not know about the coordinator's store, HTTP API, scheduler or
// CLI: plain structs go in and out, side effects sit behind StateStore,
// Verifier, an *http.Client and an injected clock.
package archive

import "errors"

// Errors.
var (
	ErrConfig           = errors.New("archive: bad configuration")
	ErrSyntax           = errors.New("archive: malformed deb822 data")
	ErrTooLarge         = errors.New("archive: over a size limit")
	ErrBadVersion       = errors.New("archive: invalid Debian version")
	ErrBadRelease       = errors.New("archive: malformed Release file")
	ErrNoSHA256         = errors.New("archive: Release has no SHA256 section")
	ErrNotInRelease     = errors.New("archive: file not listed in Release")
	ErrMissingComponent = errors.New("archive: component not in Release")
	ErrSuiteMismatch    = errors.New("archive: Release is for another suite")
	ErrExpired          = errors.New("archive: Release is past its Valid-Until")
	ErrSize             = errors.New("archive: file size differs from Release")
	ErrChecksum         = errors.New("archive: sha256 differs from Release")
	ErrCorrupt          = errors.New("archive: cannot decompress")
	ErrUnsigned         = errors.New("archive: index is not signed")
	ErrBadSignature     = errors.New("archive: bad signature")
	ErrHTTPStatus       = errors.New("archive: unexpected HTTP status")
	ErrNotFound         = errors.New("archive: not found on the server")
	ErrState            = errors.New("archive: bad saved state")
)
