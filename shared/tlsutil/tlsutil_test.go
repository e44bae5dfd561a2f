package tlsutil

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/shared/protocol"
)

type grid struct {
	caPEM, caKeyPEM    []byte
	certPEM, keyPEM    []byte
	caFingerprint      string
	leafFingerprint    string
	otherCAPEM         []byte
	otherCAKeyPEM      []byte
	otherCAFingerprint string
	foreignLeafCertPEM []byte // leaf signed by the other CA, followed by the grid CA
	foreignLeafKeyPEM  []byte
}

func newGrid(t *testing.T) grid {
	t.Helper()
	var g grid
	var err error
	if g.caPEM, g.caKeyPEM, err = NewCA("test grid CA"); err != nil {
		t.Fatalf("NewCA: %v", err)
	}
	if g.certPEM, g.keyPEM, err = NewServerCert(g.caPEM, g.caKeyPEM, []string{"grid.example.org", "192.0.2.7"}); err != nil {
		t.Fatalf("NewServerCert: %v", err)
	}
	if g.otherCAPEM, g.otherCAKeyPEM, err = NewCA("other CA"); err != nil {
		t.Fatalf("NewCA: %v", err)
	}
	otherCert, otherKey, err := NewServerCert(g.otherCAPEM, g.otherCAKeyPEM, nil)
	if err != nil {
		t.Fatalf("NewServerCert: %v", err)
	}
	leaf, _ := pem.Decode(otherCert)
	g.foreignLeafCertPEM = append(pem.EncodeToMemory(leaf), g.caPEM...)
	g.foreignLeafKeyPEM = otherKey
	g.caFingerprint = mustFingerprintPEM(t, g.caPEM)
	g.leafFingerprint = mustFingerprintPEM(t, g.certPEM)
	g.otherCAFingerprint = mustFingerprintPEM(t, g.otherCAPEM)
	return g
}

func mustFingerprintPEM(t *testing.T, p []byte) string {
	t.Helper()
	fp, err := FingerprintPEM(p)
	if err != nil {
		t.Fatalf("FingerprintPEM: %v", err)
	}
	return fp
}

// serverResult is what the server side of one connection saw.
type serverResult struct {
	handshakeErr error
	received     []byte
}

// serve accepts one TLS connection on loopback, completes its handshake and
// reads everything the client sends.
func serve(t *testing.T, certPEM, keyPEM []byte) (addr string, result <-chan serverResult) {
	t.Helper()
	conf, err := ServerConfig(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("ServerConfig: %v", err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", conf)
	if err != nil {
		t.Fatalf("tls.Listen: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan serverResult, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			ch <- serverResult{handshakeErr: err}
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		if err := tc.Handshake(); err != nil {
			// Anything readable after a failed handshake would be
			// application data the client should never have sent.
			n, _ := tc.Read(make([]byte, 1))
			ch <- serverResult{handshakeErr: err, received: make([]byte, n)}
			return
		}
		b, _ := io.ReadAll(tc)
		ch <- serverResult{received: b}
	}()
	return ln.Addr().String(), ch
}

func dial(t *testing.T, addr string, conf *tls.Config) (*tls.Conn, error) {
	t.Helper()
	d := tls.Dialer{Config: conf}
	c, err := d.DialContext(t.Context(), "tcp", addr)
	if err != nil {
		return nil, err
	}
	return c.(*tls.Conn), nil
}

func TestPinnedClientConfig(t *testing.T) {
	g := newGrid(t)
	tests := []struct {
		name        string
		certPEM     []byte
		keyPEM      []byte
		pin         string
		serverName  string
		wantErr     error
		wantInError []string
	}{
		{name: "good pin by IP", pin: g.caFingerprint, serverName: "127.0.0.1"},
		{name: "good pin by DNS name", pin: g.caFingerprint, serverName: "localhost"},
		{name: "good pin typed with colons in upper case", pin: "SHA256:" + colons(strings.ToUpper(g.caFingerprint)), serverName: "127.0.0.1"},
		{
			name: "wrong pin", pin: g.otherCAFingerprint, serverName: "127.0.0.1",
			wantErr:     ErrFingerprintMismatch,
			wantInError: []string{g.otherCAFingerprint, g.caFingerprint},
		},
		{
			name: "pin of the leaf, not a CA", pin: g.leafFingerprint, serverName: "127.0.0.1",
			wantErr: ErrFingerprintMismatch,
		},
		{
			name: "unparseable pin", pin: "not a fingerprint", serverName: "127.0.0.1",
			wantErr:     ErrFingerprintMismatch,
			wantInError: []string{"not a fingerprint", g.caFingerprint},
		},
		{
			name:    "chain carries the pinned CA but the leaf is signed by another CA",
			certPEM: g.foreignLeafCertPEM, keyPEM: g.foreignLeafKeyPEM,
			pin: g.caFingerprint, serverName: "127.0.0.1",
			wantErr: ErrUntrustedChain,
		},
		{
			name: "wrong server name", pin: g.caFingerprint, serverName: "elsewhere.example.org",
			wantErr: ErrUntrustedChain,
		},
		{
			name: "wrong server IP", pin: g.caFingerprint, serverName: "192.0.2.8",
			wantErr: ErrUntrustedChain,
		},
		{
			name: "empty server name", pin: g.caFingerprint, serverName: "",
			wantErr: ErrUntrustedChain,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certPEM, keyPEM := g.certPEM, g.keyPEM
			if tt.certPEM != nil {
				certPEM, keyPEM = tt.certPEM, tt.keyPEM
			}
			addr, result := serve(t, certPEM, keyPEM)
			conn, err := dial(t, addr, PinnedClientConfig(tt.pin, tt.serverName))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("dial with pin %q for %q: err = %v, want %v", tt.pin, tt.serverName, err, tt.wantErr)
				}
				for _, s := range tt.wantInError {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("dial error %q does not mention %q", err, s)
					}
				}
				r := <-result
				if r.handshakeErr == nil {
					t.Errorf("server handshake succeeded, want it to fail")
				}
				if len(r.received) != 0 {
					t.Errorf("server received %d application bytes, want 0", len(r.received))
				}
				return
			}
			if err != nil {
				t.Fatalf("dial with pin %q for %q: %v", tt.pin, tt.serverName, err)
			}
			if got := conn.ConnectionState().NegotiatedProtocol; got != protocol.ALPN {
				t.Errorf("NegotiatedProtocol = %q, want %q", got, protocol.ALPN)
			}
			caPEM, err := CAFromConnectionState(conn.ConnectionState(), tt.pin)
			if err != nil {
				t.Fatalf("CAFromConnectionState: %v", err)
			}
			if !bytes.Equal(caPEM, g.caPEM) {
				t.Errorf("CAFromConnectionState = %q, want %q", caPEM, g.caPEM)
			}
			if _, err := conn.Write([]byte("hello")); err != nil {
				t.Fatalf("Write: %v", err)
			}
			conn.Close()
			r := <-result
			if r.handshakeErr != nil {
				t.Fatalf("server handshake: %v", r.handshakeErr)
			}
			if got := string(r.received); got != "hello" {
				t.Errorf("server received %q, want %q", got, "hello")
			}
		})
	}
}

func TestClientConfigWithCA(t *testing.T) {
	g := newGrid(t)
	tests := []struct {
		name       string
		caPEM      []byte
		serverName string
		wantErr    bool
	}{
		{name: "grid CA", caPEM: g.caPEM, serverName: "127.0.0.1"},
		{name: "grid CA by DNS name", caPEM: g.caPEM, serverName: "grid.example.org"},
		{name: "other CA", caPEM: g.otherCAPEM, serverName: "127.0.0.1", wantErr: true},
		{name: "wrong name", caPEM: g.caPEM, serverName: "elsewhere.example.org", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf, err := ClientConfigWithCA(tt.caPEM, tt.serverName)
			if err != nil {
				t.Fatalf("ClientConfigWithCA: %v", err)
			}
			addr, result := serve(t, g.certPEM, g.keyPEM)
			conn, err := dial(t, addr, conf)
			if tt.wantErr {
				if err == nil {
					conn.Close()
					t.Fatalf("dial for %q succeeded, want an error", tt.serverName)
				}
				if r := <-result; r.handshakeErr == nil || len(r.received) != 0 {
					t.Errorf("server saw handshake error %v and %d bytes, want an error and 0 bytes", r.handshakeErr, len(r.received))
				}
				return
			}
			if err != nil {
				t.Fatalf("dial for %q: %v", tt.serverName, err)
			}
			conn.Close()
			if r := <-result; r.handshakeErr != nil {
				t.Errorf("server handshake: %v", r.handshakeErr)
			}
		})
	}
	if _, err := ClientConfigWithCA([]byte("junk"), "localhost"); !errors.Is(err, ErrNoCertificate) {
		t.Errorf("ClientConfigWithCA(junk) err = %v, want %v", err, ErrNoCertificate)
	}
}

func TestCAFromConnectionStateRefusesOtherFingerprint(t *testing.T) {
	g := newGrid(t)
	addr, _ := serve(t, g.certPEM, g.keyPEM)
	conn, err := dial(t, addr, PinnedClientConfig(g.caFingerprint, "127.0.0.1"))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	if _, err := CAFromConnectionState(conn.ConnectionState(), g.otherCAFingerprint); !errors.Is(err, ErrFingerprintMismatch) {
		t.Errorf("CAFromConnectionState(other) err = %v, want %v", err, ErrFingerprintMismatch)
	}
	if _, err := CAFromConnectionState(conn.ConnectionState(), "zz"); !errors.Is(err, ErrBadFingerprint) {
		t.Errorf("CAFromConnectionState(zz) err = %v, want %v", err, ErrBadFingerprint)
	}
}

func TestCertificates(t *testing.T) {
	g := newGrid(t)
	var chain []*x509.Certificate
	rest := g.certPEM
	for {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatalf("ParseCertificate: %v", err)
		}
		chain = append(chain, c)
	}
	if len(chain) != 2 {
		t.Fatalf("server certificate PEM holds %d certificates, want 2", len(chain))
	}
	leaf, ca := chain[0], chain[1]
	if got := Fingerprint(ca.Raw); got != g.caFingerprint {
		t.Errorf("second certificate fingerprint = %s, want the CA's %s", got, g.caFingerprint)
	}
	if !ca.IsCA || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA IsCA = %v, KeyUsage = %v, want a CA allowed to sign certificates", ca.IsCA, ca.KeyUsage)
	}
	if got, want := ca.NotAfter.Sub(ca.NotBefore), 9*365*24*time.Hour; got < want {
		t.Errorf("CA validity = %v, want at least %v", got, want)
	}
	if leaf.IsCA {
		t.Errorf("leaf IsCA = true, want false")
	}
	if diff := cmp.Diff([]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, leaf.ExtKeyUsage); diff != "" {
		t.Errorf("leaf ExtKeyUsage (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"localhost", "grid.example.org"}, leaf.DNSNames); diff != "" {
		t.Errorf("leaf DNSNames (-want +got):\n%s", diff)
	}
	var ips []string
	for _, ip := range leaf.IPAddresses {
		ips = append(ips, ip.String())
	}
	if diff := cmp.Diff([]string{"127.0.0.1", "::1", "192.0.2.7"}, ips); diff != "" {
		t.Errorf("leaf IPAddresses (-want +got):\n%s", diff)
	}
	if got, want := leaf.NotAfter.Sub(leaf.NotBefore), 2*365*24*time.Hour; got < want {
		t.Errorf("leaf validity = %v, want at least %v", got, want)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "::1"}); err != nil {
		t.Errorf("leaf does not verify against the CA for ::1: %v", err)
	}
}

func TestNewServerCertErrors(t *testing.T) {
	g := newGrid(t)
	tests := []struct {
		name          string
		caPEM, keyPEM []byte
		wantErr       error
	}{
		{name: "no CA certificate", caPEM: []byte("junk"), keyPEM: g.caKeyPEM, wantErr: ErrNoCertificate},
		{name: "no CA key", caPEM: g.caPEM, keyPEM: []byte("junk"), wantErr: ErrBadKey},
		{name: "key in a certificate block", caPEM: g.caPEM, keyPEM: g.caPEM, wantErr: ErrBadKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := NewServerCert(tt.caPEM, tt.keyPEM, nil); !errors.Is(err, tt.wantErr) {
				t.Errorf("NewServerCert err = %v, want %v", err, tt.wantErr)
			}
		})
	}
	if _, _, err := NewServerCert(g.certPEM, g.keyPEM, nil); err == nil {
		t.Errorf("NewServerCert with a leaf as CA succeeded, want an error")
	}
}

func TestFingerprintPEM(t *testing.T) {
	g := newGrid(t)
	block, _ := pem.Decode(g.caPEM)
	if got, want := mustFingerprintPEM(t, g.caPEM), Fingerprint(block.Bytes); got != want {
		t.Errorf("FingerprintPEM(CA) = %s, want %s", got, want)
	}
	withKeyFirst := append(append([]byte{}, g.caKeyPEM...), g.caPEM...)
	if got := mustFingerprintPEM(t, withKeyFirst); got != g.caFingerprint {
		t.Errorf("FingerprintPEM(key then CA) = %s, want %s", got, g.caFingerprint)
	}
	if _, err := FingerprintPEM(g.caKeyPEM); !errors.Is(err, ErrNoCertificate) {
		t.Errorf("FingerprintPEM(key) err = %v, want %v", err, ErrNoCertificate)
	}
}

const canonical = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func colons(h string) string {
	var parts []string
	for i := 0; i+2 <= len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

func TestParseFingerprint(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr bool
	}{
		{name: "canonical", in: canonical, want: canonical},
		{name: "upper case", in: strings.ToUpper(canonical), want: canonical},
		{name: "colons", in: colons(canonical), want: canonical},
		{name: "upper case with colons", in: strings.ToUpper(colons(canonical)), want: canonical},
		{name: "prefix", in: "sha256:" + canonical, want: canonical},
		{name: "upper case prefix", in: "SHA256:" + colons(canonical), want: canonical},
		{name: "surrounding space", in: "  " + canonical + "\n", want: canonical},
		{name: "empty", in: "", wantErr: true},
		{name: "prefix only", in: "sha256:", wantErr: true},
		{name: "too short", in: canonical[:62], wantErr: true},
		{name: "too long", in: canonical + "00", wantErr: true},
		{name: "odd length", in: canonical + "0", wantErr: true},
		{name: "not hex", in: strings.Replace(canonical, "a", "g", 1), wantErr: true},
		{name: "other algorithm", in: "sha1:" + canonical, wantErr: true},
		{name: "inner space", in: canonical[:32] + " " + canonical[32:], wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseFingerprint(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrBadFingerprint) {
					t.Errorf("ParseFingerprint(%q) = %q, %v, want %v", tt.in, got, err, ErrBadFingerprint)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseFingerprint(%q) = %q, %v, want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func FuzzParseFingerprint(f *testing.F) {
	f.Add(canonical)
	f.Add("SHA256:" + colons(strings.ToUpper(canonical)))
	f.Add("sha256:")
	f.Add(":::")
	f.Add("")
	f.Add(canonical + "0")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseFingerprint(s)
		if err != nil {
			if !errors.Is(err, ErrBadFingerprint) {
				t.Fatalf("ParseFingerprint(%q) err = %v, want %v", s, err, ErrBadFingerprint)
			}
			return
		}
		if len(got) != 64 || strings.ToLower(got) != got || strings.Trim(got, "0123456789abcdef") != "" {
			t.Fatalf("ParseFingerprint(%q) = %q, want 64 lowercase hex digits", s, got)
		}
		again, err := ParseFingerprint(got)
		if err != nil || again != got {
			t.Fatalf("ParseFingerprint(%q) = %q, %v, want %q", got, again, err, got)
		}
	})
}

func TestServerConfig(t *testing.T) {
	g := newGrid(t)
	conf, err := ServerConfig(g.certPEM, g.keyPEM)
	if err != nil {
		t.Fatalf("ServerConfig: %v", err)
	}
	if conf.MinVersion != tls.VersionTLS13 {
		t.Errorf("MinVersion = %#x, want TLS 1.3", conf.MinVersion)
	}
	if diff := cmp.Diff([]string{protocol.ALPN}, conf.NextProtos); diff != "" {
		t.Errorf("NextProtos (-want +got):\n%s", diff)
	}
	if got := len(conf.Certificates[0].Certificate); got != 2 {
		t.Errorf("server presents %d certificates, want 2", got)
	}
	if _, err := ServerConfig(g.certPEM, g.otherCAKeyPEM); err == nil {
		t.Errorf("ServerConfig with a key that does not match succeeded, want an error")
	}
}
