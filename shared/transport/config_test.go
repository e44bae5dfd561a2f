package transport

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestConfigDefaults(t *testing.T) {
	type timeouts struct{ Handshake, Idle, KeepAlive time.Duration }
	tests := []struct {
		name string
		in   Config
		want timeouts
	}{
		{
			name: "zero",
			want: timeouts{DefaultHandshakeTimeout, DefaultIdleTimeout, DefaultKeepAlive},
		},
		{
			name: "set",
			in:   Config{HandshakeTimeout: time.Second, IdleTimeout: 2 * time.Second, KeepAlive: 3 * time.Second},
			want: timeouts{time.Second, 2 * time.Second, 3 * time.Second},
		},
		{
			name: "keepalive off",
			in:   Config{KeepAlive: -1},
			want: timeouts{DefaultHandshakeTimeout, DefaultIdleTimeout, 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			qc := tt.in.quicConfig()
			got := timeouts{qc.HandshakeIdleTimeout, qc.MaxIdleTimeout, qc.KeepAlivePeriod}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("%+v.quicConfig() (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}
