package transport

import "crypto/tls"

// TLSConnectionState returns the state of a session's completed TLS
// handshake, for example so that an agent can save the CA it pinned. It
// reports false when the session's transport does not expose one.
func TLSConnectionState(s Session) (tls.ConnectionState, bool) {
	t, ok := s.(interface{ ConnectionState() tls.ConnectionState })
	if !ok {
		return tls.ConnectionState{}, false
	}
	return t.ConnectionState(), true
}
