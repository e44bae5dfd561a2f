package procgroup

import "testing"

func TestParseStat(t *testing.T) {
	tests := []struct {
		name string
		line string
		want Stat
		ok   bool
	}{
		{"plain", "4242 (sleep) S 1 4240 4240 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 123456 8192 100 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0",
			Stat{State: 'S', PGID: 4240, Start: 123456}, true},
		{"name with parentheses and spaces", "7 (a) b) c) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99 0 0",
			Stat{State: 'Z', PGID: 7, Start: 99}, true},
		{"short", "7 (x) S 1 7", Stat{}, false},
		{"no name", "7 x S 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99", Stat{}, false},
		{"bad start", "7 (x) S 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 nine 0", Stat{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStat(tt.line)
			if tt.ok != (err == nil) || got != tt.want {
				t.Errorf("ParseStat(%q) = %+v, %v, want %+v, ok %v", tt.line, got, err, tt.want, tt.ok)
			}
		})
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add("4242 (sleep) S 1 4240 4240 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 123456 8192 100")
	f.Add("7 (a) b) c) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99 0 0")
	f.Fuzz(func(t *testing.T, line string) {
		ParseStat(line)
	})
}
