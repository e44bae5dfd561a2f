// Package protocoltest owns the test plumbing that serves a
// protocol.Handler the way the coordinator does: a fresh grid CA and server
// certificate, QUIC and/or TCP listeners on one loopback port, and a
// protocol.Server on every session, all stopped when the test ends.
//
// It is for tests only and must not be imported by production code.
package protocoltest

import (
	"context"
	"crypto/tls"
	"log/slog"
	"sync"
	"testing"

	"github.com/sparegrid/sparegrid/shared/protocol"
	"github.com/sparegrid/sparegrid/shared/tlsutil"
	"github.com/sparegrid/sparegrid/shared/transport"
)

// Options choose the transports (QUIC when neither is set) and the
// server's blob cap.
type Options struct {
	QUIC, TCP bool
	MaxBlob   int64
}

// Grid is a served handler.
type Grid struct {
	// Addr is the loopback address both transports listen on.
	Addr string
	// Fingerprint is the grid CA's sha256, as agents pin it.
	Fingerprint string
	// CAPEM is the grid CA's certificate.
	CAPEM []byte
}

// Serve serves h on loopback until the test ends.
func Serve(t testing.TB, h protocol.Handler, o Options) Grid {
	t.Helper()
	if !o.QUIC && !o.TCP {
		o.QUIC = true
	}
	caPEM, caKey, err := tlsutil.NewCA("test grid CA")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := tlsutil.NewServerCert(caPEM, caKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	conf, err := tlsutil.ServerConfig(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	fp, err := tlsutil.FingerprintPEM(caPEM)
	if err != nil {
		t.Fatal(err)
	}
	listeners := listen(t, conf, o)
	ctx, cancel := context.WithCancel(context.Background())
	srv := &protocol.Server{Handler: h, MaxBlob: o.MaxBlob, Log: slog.New(slog.DiscardHandler)}
	var wg sync.WaitGroup
	for _, ln := range listeners {
		wg.Go(func() {
			for {
				sess, err := ln.Accept(ctx)
				if err != nil {
					return
				}
				wg.Go(func() {
					srv.ServeSession(ctx, sess)
					sess.Close("done")
				})
			}
		})
	}
	t.Cleanup(func() {
		cancel()
		for _, ln := range listeners {
			ln.Close()
		}
		wg.Wait()
	})
	return Grid{Addr: listeners[len(listeners)-1].Addr().String(), Fingerprint: fp, CAPEM: caPEM}
}

// listen opens the chosen listeners on one port number. The TCP port may
// be taken where QUIC got a free UDP one, so it tries a few ports.
func listen(t testing.TB, conf *tls.Config, o Options) []transport.Listener {
	t.Helper()
	for range 20 {
		var listeners []transport.Listener
		addr := "127.0.0.1:0"
		if o.QUIC {
			ln, err := transport.ListenQUIC(addr, conf, transport.Config{})
			if err != nil {
				t.Fatal(err)
			}
			listeners = append(listeners, ln)
			addr = ln.Addr().String()
		}
		if !o.TCP {
			return listeners
		}
		ln, err := transport.ListenTCP(addr, conf, transport.Config{})
		if err == nil {
			return append(listeners, ln)
		}
		for _, l := range listeners {
			l.Close()
		}
	}
	t.Fatal("protocoltest: no port free for both QUIC and TCP")
	return nil
}
