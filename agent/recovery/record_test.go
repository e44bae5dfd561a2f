package recovery

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const testBoot = "5c44132a-7e8f-4777-aa2e-0f21adc343b0"

func TestParseRecord(t *testing.T) {
	tests := []struct {
		name string
		data string
		want Record
		ok   bool
	}{
		{"valid", `{"pgid":1234,"start_time":98765,"boot_id":"` + testBoot + `"}` + "\n", Record{PGID: 1234, StartTime: 98765, BootID: testBoot}, true},
		{"empty", ``, Record{}, false},
		{"not json", `pgid=1234`, Record{}, false},
		{"unknown field", `{"pgid":1234,"start_time":1,"boot_id":"` + testBoot + `","cmd":"rm"}`, Record{}, false},
		{"two records", `{"pgid":1234,"start_time":1,"boot_id":"` + testBoot + `"}{}`, Record{}, false},
		{"pgid 1", `{"pgid":1,"start_time":1,"boot_id":"` + testBoot + `"}`, Record{}, false},
		{"pgid 0", `{"pgid":0,"start_time":1,"boot_id":"` + testBoot + `"}`, Record{}, false},
		{"negative pgid", `{"pgid":-5,"start_time":1,"boot_id":"` + testBoot + `"}`, Record{}, false},
		{"pgid beyond pid_max", `{"pgid":4194305,"start_time":1,"boot_id":"` + testBoot + `"}`, Record{}, false},
		{"negative start time", `{"pgid":1234,"start_time":-1,"boot_id":"` + testBoot + `"}`, Record{}, false},
		{"no boot id", `{"pgid":1234,"start_time":1}`, Record{}, false},
		{"upper-case boot id", `{"pgid":1234,"start_time":1,"boot_id":"5C44132A-7E8F-4777-AA2E-0F21ADC343B0"}`, Record{}, false},
		{"boot id without dashes", `{"pgid":1234,"start_time":1,"boot_id":"5c44132a7e8f4777aa2e0f21adc343b0xxxx"}`, Record{}, false},
		{"array", `[1234]`, Record{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRecord([]byte(tt.data))
			if tt.ok != (err == nil) {
				t.Fatalf("ParseRecord(%q) = %+v, %v, want ok %v", tt.data, got, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrBadRecord) {
				t.Errorf("ParseRecord(%q) error = %v, want %v", tt.data, err, ErrBadRecord)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseRecord(%q) mismatch (-want +got):\n%s", tt.data, diff)
			}
		})
	}
}

func TestParseRecordTooLarge(t *testing.T) {
	data := make([]byte, maxRecordSize+1)
	if _, err := ParseRecord(data); !errors.Is(err, ErrBadRecord) {
		t.Errorf("ParseRecord(%d bytes) error = %v, want %v", len(data), err, ErrBadRecord)
	}
}

func TestWriteRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), RecordFile)
	if err := WriteRecord(path, os.Getpid()); err != nil {
		t.Fatalf("WriteRecord: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("run record mode = %v, want 0600", mode)
	}
	got, err := ReadRecord(path)
	if err != nil {
		t.Fatalf("ReadRecord: %v", err)
	}
	want, err := NewRecord(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ReadRecord mismatch (-want +got):\n%s", diff)
	}
	boot, err := BootID()
	if err != nil {
		t.Fatal(err)
	}
	if got.PGID != os.Getpid() || got.BootID != boot || got.StartTime == 0 {
		t.Errorf("ReadRecord = %+v, want pgid %d, boot %s and a start time", got, os.Getpid(), boot)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the record", len(entries))
	}
}

func TestWriteRecordFails(t *testing.T) {
	tests := []struct {
		name string
		path string
		pid  int
	}{
		{"missing directory", filepath.Join(t.TempDir(), "gone", RecordFile), os.Getpid()},
		{"no such process", filepath.Join(t.TempDir(), RecordFile), maxPID + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := WriteRecord(tt.path, tt.pid); err == nil {
				t.Errorf("WriteRecord(%s, %d) = nil, want an error", tt.path, tt.pid)
			}
			if _, err := os.Lstat(tt.path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("record %s exists after a failed write (stat error %v)", tt.path, err)
			}
		})
	}
}

func FuzzParseRecord(f *testing.F) {
	f.Add([]byte(`{"pgid":1234,"start_time":98765,"boot_id":"` + testBoot + `"}`))
	f.Add([]byte(`{"pgid":1,"start_time":0,"boot_id":""}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := ParseRecord(data)
		if err != nil {
			return
		}
		if rec.PGID <= 1 || rec.PGID > maxPID || !validBootID(rec.BootID) {
			t.Fatalf("ParseRecord(%q) = %+v, accepted an implausible record", data, rec)
		}
	})
}
