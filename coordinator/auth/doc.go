// Package auth owns the credentials of humans and agents: the prefixed API
// tokens people use, the coordinator's Ed25519 signing key, the short-lived
// EdDSA JWTs it mints for approved agents, and the one-time challenges an
// agent signs to get one.
//
// It must not touch the store or the network. It makes and checks
// credentials; callers persist token hashes and the signing key, look hashes
// up, check an agent's signature over a challenge, and carry tokens on the
// wire. Nothing here ever logs or returns a secret inside an error.
package auth
