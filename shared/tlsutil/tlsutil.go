// Package tlsutil owns the grid's certificates and the trust an agent places
// in them: it makes the grid CA and the coordinator's server certificate,
// computes and parses CA fingerprints, and builds the TLS configurations for
// both sides.
//
// An agent first meets the coordinator with nothing but the CA fingerprint
// its owner typed in. PinnedClientConfig accepts a server only when the chain
// it presents contains a CA with exactly that fingerprint and the leaf is
// signed by that CA for the dialled name; otherwise the handshake fails before
// any application byte is sent. After registration the agent saves the CA
// (CAFromConnectionState) and uses ClientConfigWithCA from then on.
//
// It must not read or write files, know about agents or accounts, or accept a
// server by any other trust than the one CA it is given: there is no fallback
// to the system roots.
package tlsutil

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"

	"github.com/sparegrid/sparegrid/shared/protocol"
)

// Errors returned by this package; match them with errors.Is.
var (
	// ErrBadFingerprint means a fingerprint is not 32 bytes of hex.
	ErrBadFingerprint = errors.New("tlsutil: bad fingerprint")
	// ErrFingerprintMismatch means the server presented no CA certificate
	// with the pinned fingerprint.
	ErrFingerprintMismatch = errors.New("tlsutil: CA fingerprint mismatch")
	// ErrUntrustedChain means the server's leaf certificate does not verify
	// against the pinned CA for the dialled name.
	ErrUntrustedChain = errors.New("tlsutil: server certificate does not verify against the pinned CA")
	// ErrNoCertificate means PEM input holds no certificate.
	ErrNoCertificate = errors.New("tlsutil: no certificate in PEM")
	// ErrBadKey means PEM input holds no usable private key.
	ErrBadKey = errors.New("tlsutil: bad private key")
)

const (
	caValidity     = 10 * 365 * 24 * time.Hour
	serverValidity = 2 * 365 * 24 * time.Hour
	// clockSkew backdates NotBefore so that hosts whose clocks lag a little
	// still accept a freshly made certificate.
	clockSkew = time.Hour

	fingerprintPrefix = "sha256:"
)

// NewCA makes a self-signed grid CA with an ECDSA P-256 key, valid for ten
// years. Both results are PEM: a CERTIFICATE block and a PKCS #8 PRIVATE KEY
// block.
func NewCA(commonName string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("tlsutil: generate CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"sparegrid"}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("tlsutil: create CA certificate: %w", err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pemCert(der), keyPEM, nil
}

// NewServerCert makes a server certificate signed by the CA, valid for two
// years, for 127.0.0.1, ::1, localhost and each of names (an IP SAN when the
// name parses as an IP address, a DNS SAN otherwise). certPEM holds the leaf
// followed by the CA certificate, so a server using it presents the CA that
// agents pin.
func NewServerCert(caCertPEM, caKeyPEM []byte, names []string) (certPEM, keyPEM []byte, err error) {
	ca, err := parseFirstCert(caCertPEM)
	if err != nil {
		return nil, nil, err
	}
	if !ca.IsCA {
		return nil, nil, fmt.Errorf("tlsutil: %q is not a CA certificate", ca.Subject.CommonName)
	}
	caKey, err := parseKey(caKeyPEM)
	if err != nil {
		return nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("tlsutil: generate server key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	ips, dnsNames := sans(names)
	commonName := "localhost"
	for _, n := range names {
		if n = strings.TrimSpace(n); n != "" {
			commonName = n
			break
		}
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"sparegrid"}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(serverValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IPAddresses:           ips,
		DNSNames:              dnsNames,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("tlsutil: create server certificate: %w", err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	certPEM = append(pemCert(der), pemCert(ca.Raw)...)
	return certPEM, keyPEM, nil
}

// sans returns the subject alternative names of a server certificate: the
// loopback names first, then names in order, without duplicates.
func sans(names []string) ([]net.IP, []string) {
	ips := []net.IP{net.IPv4(127, 0, 0, 1).To4(), net.IPv6loopback}
	dnsNames := []string{"localhost"}
	seen := map[string]bool{"127.0.0.1": true, "::1": true, "localhost": true}
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if ip := net.ParseIP(n); ip != nil {
			if ip4 := ip.To4(); ip4 != nil {
				ip = ip4
			}
			if !seen[ip.String()] {
				seen[ip.String()] = true
				ips = append(ips, ip)
			}
			continue
		}
		n = strings.ToLower(n)
		if !seen[n] {
			seen[n] = true
			dnsNames = append(dnsNames, n)
		}
	}
	return ips, dnsNames
}

// Fingerprint is the lowercase hex SHA-256 of a DER certificate.
func Fingerprint(certDER []byte) string {
	sum := sha256.Sum256(certDER)
	return hex.EncodeToString(sum[:])
}

// FingerprintPEM is the Fingerprint of the first certificate in PEM input.
func FingerprintPEM(pemBytes []byte) (string, error) {
	der, err := firstCertDER(pemBytes)
	if err != nil {
		return "", err
	}
	return Fingerprint(der), nil
}

// ParseFingerprint reads a SHA-256 fingerprint as a person may type it: hex
// in any case, with or without colons between bytes, with or without a
// "sha256:" prefix, and returns it as lowercase hex without separators.
func ParseFingerprint(s string) (string, error) {
	t := strings.TrimSpace(s)
	if len(t) >= len(fingerprintPrefix) && strings.EqualFold(t[:len(fingerprintPrefix)], fingerprintPrefix) {
		t = t[len(fingerprintPrefix):]
	}
	t = strings.ReplaceAll(t, ":", "")
	b, err := hex.DecodeString(t)
	if err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("%w: %q is not %d bytes of hex", ErrBadFingerprint, s, sha256.Size)
	}
	return hex.EncodeToString(b), nil
}

// ServerConfig is the coordinator's TLS configuration: TLS 1.3 only, ALPN
// protocol.ALPN, presenting every certificate in certPEM (leaf first, then
// the CA).
func ServerConfig(certPEM, keyPEM []byte) (*tls.Config, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: load server key pair: %w", err)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		NextProtos:   []string{protocol.ALPN},
		Certificates: []tls.Certificate{cert},
	}, nil
}

// PinnedClientConfig is the agent's TLS configuration before it has saved
// the CA: the handshake succeeds only when the server presents a CA
// certificate whose SHA-256 is fingerprint (in any form ParseFingerprint
// accepts) and a leaf signed by that CA for serverName (an IP address or DNS
// name). It fails with an error wrapping ErrFingerprintMismatch or
// ErrUntrustedChain that names the expected and the presented fingerprints.
func PinnedClientConfig(fingerprint, serverName string) *tls.Config {
	want, err := ParseFingerprint(fingerprint)
	if err != nil {
		want = fingerprint
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		NextProtos: []string{protocol.ALPN},
		ServerName: serverName,
		// Chain verification is replaced by the pinned check below, which
		// crypto/tls runs before the handshake completes.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyPinned(cs.PeerCertificates, want, serverName)
		},
	}
}

func verifyPinned(chain []*x509.Certificate, want, serverName string) error {
	if len(chain) == 0 {
		return fmt.Errorf("%w: expected CA sha256:%s, server presented no certificate", ErrFingerprintMismatch, want)
	}
	ca := pinnedCA(chain, want)
	if ca == nil {
		return fmt.Errorf("%w: expected CA sha256:%s, server presented %s", ErrFingerprintMismatch, want, describeChain(chain))
	}
	if serverName == "" {
		return fmt.Errorf("%w: no server name to verify the certificate against", ErrUntrustedChain)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	_, err := chain[0].Verify(x509.VerifyOptions{
		DNSName:   serverName,
		Roots:     roots,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("%w: pinned CA sha256:%s, server presented %s for %q: %w",
			ErrUntrustedChain, want, describeChain(chain), serverName, err)
	}
	return nil
}

// pinnedCA returns the CA certificate in chain whose fingerprint is want.
func pinnedCA(chain []*x509.Certificate, want string) *x509.Certificate {
	for _, c := range chain {
		if c.IsCA && Fingerprint(c.Raw) == want {
			return c
		}
	}
	return nil
}

func describeChain(chain []*x509.Certificate) string {
	parts := make([]string, 0, len(chain))
	for i, c := range chain {
		role := "leaf"
		switch {
		case c.IsCA:
			role = "CA"
		case i > 0:
			role = "non-CA"
		}
		parts = append(parts, fmt.Sprintf("%s %q sha256:%s", role, c.Subject.CommonName, Fingerprint(c.Raw)))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// ClientConfigWithCA is the agent's TLS configuration once it has saved the
// grid CA: ordinary verification of serverName against that CA alone.
func ClientConfigWithCA(caPEM []byte, serverName string) (*tls.Config, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, ErrNoCertificate
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		NextProtos: []string{protocol.ALPN},
		ServerName: serverName,
		RootCAs:    pool,
	}, nil
}

// CAFromConnectionState returns, as PEM, the CA certificate with the given
// fingerprint from the chain the server presented in a completed handshake,
// so that an agent can save the CA it pinned.
func CAFromConnectionState(cs tls.ConnectionState, fingerprint string) ([]byte, error) {
	want, err := ParseFingerprint(fingerprint)
	if err != nil {
		return nil, err
	}
	if !cs.HandshakeComplete {
		return nil, fmt.Errorf("%w: handshake not complete", ErrFingerprintMismatch)
	}
	ca := pinnedCA(cs.PeerCertificates, want)
	if ca == nil {
		return nil, fmt.Errorf("%w: expected CA sha256:%s, server presented %s", ErrFingerprintMismatch, want, describeChain(cs.PeerCertificates))
	}
	return pemCert(ca.Raw), nil
}

func randomSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("tlsutil: serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func encodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func firstCertDER(pemBytes []byte) ([]byte, error) {
	rest := pemBytes
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, ErrNoCertificate
		}
		if block.Type == "CERTIFICATE" {
			return block.Bytes, nil
		}
	}
}

func parseFirstCert(pemBytes []byte) (*x509.Certificate, error) {
	der, err := firstCertDER(pemBytes)
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: parse certificate: %w", err)
	}
	return c, nil
}

func parseKey(pemBytes []byte) (crypto.Signer, error) {
	rest := pemBytes
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, ErrBadKey
		}
		var key any
		var err error
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadKey, err)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%w: %T cannot sign", ErrBadKey, key)
		}
		return signer, nil
	}
}
