package sign

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// testKey returns a deterministic key; different seeds give different keys.
func testKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

func pubOf(priv ed25519.PrivateKey) ed25519.PublicKey {
	return priv.Public().(ed25519.PublicKey)
}

func TestPAE(t *testing.T) {
	tests := []struct {
		name        string
		payloadType string
		payload     string
		want        string
	}{
		{"DSSE spec example", "http://example.com/HelloWorld", "hello world", "DSSEv1 29 http://example.com/HelloWorld 11 hello world"},
		{"empty", "", "", "DSSEv1 0  0 "},
		{"multi-byte", "t", "é\n", "DSSEv1 1 t 3 é\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(PAE(tt.payloadType, []byte(tt.payload))); got != tt.want {
				t.Errorf("PAE(%q, %q) = %q, want %q", tt.payloadType, tt.payload, got, tt.want)
			}
		})
	}
}

func TestKeyID(t *testing.T) {
	// The public key of RFC 8032 section 7.1, test 1.
	pub, err := hex.DecodeString("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
	if err != nil {
		t.Fatal(err)
	}
	want := "sha256:21fe31dfa154a261626bf854046fd2271b7bed4b6abe45aa58877ef47f9721b9"
	if got := KeyID(pub); got != want {
		t.Errorf("KeyID(rfc8032 test 1) = %q, want %q", got, want)
	}
}

func TestSignVerifyEnvelope(t *testing.T) {
	priv := testKey(1)
	payload := []byte(`{"hello":"world"}`)
	env, err := SignEnvelope(priv, PayloadType, payload)
	if err != nil {
		t.Fatalf("SignEnvelope() error = %v", err)
	}
	data, err := env.Marshal()
	if err != nil {
		t.Fatalf("Marshal() error = %v", err)
	}
	parsed, err := ParseEnvelope(data)
	if err != nil {
		t.Fatalf("ParseEnvelope(%s) error = %v", data, err)
	}
	if diff := cmp.Diff(env, parsed); diff != "" {
		t.Errorf("ParseEnvelope(Marshal(env)) mismatch (-want +got):\n%s", diff)
	}
	got, err := VerifyEnvelope(parsed, pubOf(priv))
	if err != nil {
		t.Fatalf("VerifyEnvelope() error = %v", err)
	}
	if !bytes.Equal(got, payload) {
		t.Errorf("VerifyEnvelope() = %q, want %q", got, payload)
	}

	other, err := SignEnvelope(testKey(2), PayloadType, payload)
	if err != nil {
		t.Fatal(err)
	}
	both := &Envelope{PayloadType: PayloadType, Payload: payload, Signatures: append(other.Signatures, env.Signatures...)}
	for _, k := range []ed25519.PrivateKey{testKey(1), testKey(2)} {
		if _, err := VerifyEnvelope(both, pubOf(k)); err != nil {
			t.Errorf("VerifyEnvelope(two signatures, %s) error = %v, want nil", KeyID(pubOf(k)), err)
		}
	}
}

func TestVerifyEnvelopeErrors(t *testing.T) {
	priv := testKey(1)
	pub := pubOf(priv)
	payload := []byte(`{"hello":"world"}`)
	sign := func(k ed25519.PrivateKey, typ string) *Envelope {
		env, err := SignEnvelope(k, typ, payload)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	tests := []struct {
		name string
		env  *Envelope
		pub  ed25519.PublicKey
		want error
	}{
		{
			name: "tampered payload byte",
			env: func() *Envelope {
				e := sign(priv, PayloadType)
				e.Payload[3] ^= 1
				return e
			}(),
			pub:  pub,
			want: ErrBadSignature,
		},
		{
			name: "tampered signature",
			env: func() *Envelope {
				e := sign(priv, PayloadType)
				e.Signatures[0].Sig[0] ^= 1
				return e
			}(),
			pub:  pub,
			want: ErrBadSignature,
		},
		{
			name: "signed by another key",
			env:  sign(testKey(2), PayloadType),
			pub:  pub,
			want: ErrWrongKey,
		},
		{
			name: "keyid matches, signature by another key",
			env: func() *Envelope {
				e := sign(testKey(2), PayloadType)
				e.Signatures[0].KeyID = KeyID(pub)
				return e
			}(),
			pub:  pub,
			want: ErrBadSignature,
		},
		{
			name: "wrong payload type",
			env:  sign(priv, "application/json"),
			pub:  pub,
			want: ErrPayloadType,
		},
		{
			name: "payload type changed after signing",
			env: func() *Envelope {
				e := sign(priv, PayloadType+"x")
				e.PayloadType = PayloadType
				return e
			}(),
			pub:  pub,
			want: ErrBadSignature,
		},
		{
			name: "short public key",
			env:  sign(priv, PayloadType),
			pub:  pub[:31],
			want: ErrBadKey,
		},
		{
			name: "nil envelope",
			env:  nil,
			pub:  pub,
			want: ErrMalformed,
		},
		{
			name: "no signatures",
			env:  &Envelope{PayloadType: PayloadType, Payload: payload},
			pub:  pub,
			want: ErrMalformed,
		},
		{
			name: "too many signatures",
			env: func() *Envelope {
				e := sign(priv, PayloadType)
				for range MaxSignatures {
					e.Signatures = append(e.Signatures, e.Signatures[0])
				}
				return e
			}(),
			pub:  pub,
			want: ErrMalformed,
		},
		{
			name: "empty payload",
			env:  &Envelope{PayloadType: PayloadType, Signatures: sign(priv, PayloadType).Signatures},
			pub:  pub,
			want: ErrMalformed,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := VerifyEnvelope(tt.env, tt.pub)
			if !errors.Is(err, tt.want) {
				t.Errorf("VerifyEnvelope() = %q, %v, want error %v", got, err, tt.want)
			}
		})
	}
}

func TestSignEnvelopeErrors(t *testing.T) {
	tests := []struct {
		name    string
		priv    ed25519.PrivateKey
		typ     string
		payload []byte
		want    error
	}{
		{"short key", testKey(1)[:63], PayloadType, []byte("x"), ErrBadKey},
		{"empty payload", testKey(1), PayloadType, nil, ErrMalformed},
		{"empty type", testKey(1), "", []byte("x"), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := SignEnvelope(tt.priv, tt.typ, tt.payload); !errors.Is(err, tt.want) {
				t.Errorf("SignEnvelope() error = %v, want %v", err, tt.want)
			}
		})
	}
}

// validEnvelopeJSON is a well-formed envelope: a 1-byte payload and a
// 64-byte signature.
func validEnvelopeJSON(t testing.TB) string {
	env, err := SignEnvelope(testKey(1), PayloadType, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestParseEnvelopeErrors(t *testing.T) {
	valid := validEnvelopeJSON(t)
	sig := `{"keyid":"k","sig":"` + strings.Repeat("A", 86) + `=="}`
	tests := []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"null", "null"},
		{"array", "[" + valid + "]"},
		{"trailing data", valid + " {}"},
		{"trailing garbage", valid + "x"},
		{"unknown field", strings.Replace(valid, `{"payloadType"`, `{"extra":1,"payloadType"`, 1)},
		{"repeated field", strings.Replace(valid, `{"payloadType"`, `{"payload":"eA==","payloadType"`, 1)},
		{"repeated field in other case", strings.Replace(valid, `{"payloadType"`, `{"PAYLOADTYPE":"x","payloadType"`, 1)},
		{"empty payload", `{"payloadType":"t","payload":"","signatures":[` + sig + `]}`},
		{"missing payload", `{"payloadType":"t","signatures":[` + sig + `]}`},
		{"empty payload type", `{"payloadType":"","payload":"eA==","signatures":[` + sig + `]}`},
		{"no signatures", `{"payloadType":"t","payload":"eA==","signatures":[]}`},
		{"five signatures", `{"payloadType":"t","payload":"eA==","signatures":[` + strings.Repeat(sig+",", 4) + sig + `]}`},
		{"short signature", `{"payloadType":"t","payload":"eA==","signatures":[{"keyid":"k","sig":"eA=="}]}`},
		{"no keyid", `{"payloadType":"t","payload":"eA==","signatures":[{"sig":"` + strings.Repeat("A", 86) + `=="}]}`},
		{"bad base64", `{"payloadType":"t","payload":"e!==","signatures":[` + sig + `]}`},
		{"url-safe base64", `{"payloadType":"t","payload":"-_8=","signatures":[` + sig + `]}`},
		{"too large", `{"payloadType":"t","payload":"` + strings.Repeat("A", MaxEnvelopeSize) + `","signatures":[` + sig + `]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := ParseEnvelope([]byte(tt.in))
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("ParseEnvelope(%.80q) = %+v, %v, want error %v", tt.in, env, err, ErrMalformed)
			}
		})
	}
}

func FuzzParseEnvelope(f *testing.F) {
	valid := validEnvelopeJSON(f)
	f.Add([]byte(valid))
	f.Add([]byte(valid + " "))
	f.Add([]byte(`{"payloadType":"t","payload":"eA==","signatures":[{"keyid":"k","sig":"eA=="}]}`))
	f.Add([]byte(`{"payloadType":"t","PayloadType":"u"}`))
	f.Add([]byte(`{"a":[{"b":{"c":[1,2,{"d":null}]}}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := ParseEnvelope(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseEnvelope() error = %v, want it to wrap %v", err, ErrMalformed)
			}
			return
		}
		out, err := env.Marshal()
		if err != nil {
			t.Fatalf("Marshal(ParseEnvelope()) error = %v", err)
		}
		again, err := ParseEnvelope(out)
		if err != nil {
			t.Fatalf("ParseEnvelope(%s) error = %v after a successful parse", out, err)
		}
		if diff := cmp.Diff(env, again); diff != "" {
			t.Errorf("ParseEnvelope(Marshal(env)) mismatch (-want +got):\n%s", diff)
		}
		if _, err := VerifyEnvelope(env, pubOf(testKey(1))); err != nil &&
			!errors.Is(err, ErrPayloadType) && !errors.Is(err, ErrWrongKey) && !errors.Is(err, ErrBadSignature) {
			t.Errorf("VerifyEnvelope(parsed) error = %v, want nil or a verification error", err)
		}
	})
}
