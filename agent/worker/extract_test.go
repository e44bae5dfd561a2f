package worker

import (
	"archive/tar"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

type entry struct {
	name string
	typ  byte
	body string
	link string
	mode int64
}

func makeTar(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: mode, Size: int64(len(e.body))}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("WriteHeader(%s): %v", e.name, err)
		}
		if hdr.Size > 0 {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func reg(name, body string) entry { return entry{name: name, typ: tar.TypeReg, body: body} }
func dir(name string) entry       { return entry{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlink(name, target string) entry {
	return entry{name: name, typ: tar.TypeSymlink, link: target}
}

func TestExtractRefusesUnsafe(t *testing.T) {
	tests := []struct {
		name    string
		entries []entry
	}{
		{"absolute path", []entry{reg("/etc/passwd", "x")}},
		{"dotdot", []entry{reg("../escape", "x")}},
		{"dotdot inside", []entry{reg("pkg/../../escape", "x")}},
		{"dotdot that cleans inside", []entry{reg("pkg/../file", "x")}},
		{"symlink escape then write through", []entry{symlink("pkg", "../../"), reg("pkg/escape", "x")}},
		{"symlink inside then write through", []entry{dir("d/"), symlink("pkg", "d"), reg("pkg/file", "x")}},
		{"absolute symlink", []entry{symlink("evil", "/etc/passwd")}},
		{"symlink leaving root", []entry{symlink("evil", "../outside")}},
		{"nested symlink leaving root", []entry{dir("a/"), symlink("a/evil", "../../outside")}},
		{"symlink chain leaving root", []entry{symlink("s", "."), dir("d/"), symlink("d/t", "../s/..")}},
		{"char device", []entry{{name: "null", typ: tar.TypeChar}}},
		{"block device", []entry{{name: "sda", typ: tar.TypeBlock}}},
		{"fifo", []entry{{name: "pipe", typ: tar.TypeFifo}}},
		{"file over symlink", []entry{reg("target", "x"), symlink("link", "target"), reg("link", "y")}},
		{"duplicate file", []entry{reg("f", "x"), reg("f", "y")}},
		{"hard link to missing", []entry{{name: "h", typ: tar.TypeLink, link: "missing"}}},
		{"hard link outside", []entry{{name: "h", typ: tar.TypeLink, link: "/etc/passwd"}}},
		{"hard link to symlink", []entry{reg("t", "x"), symlink("s", "t"), {name: "h", typ: tar.TypeLink, link: "s"}}},
		{"root as file", []entry{reg(".", "x")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			dst := filepath.Join(base, "dst")
			if err := os.Mkdir(dst, 0o700); err != nil {
				t.Fatal(err)
			}
			err := Extract(bytes.NewReader(makeTar(t, tt.entries...)), dst)
			if !errors.Is(err, ErrUnsafeArchive) {
				t.Errorf("Extract(%s) = %v, want %v", tt.name, err, ErrUnsafeArchive)
			}
			assertOnlyDst(t, base)
		})
	}
}

func TestExtract(t *testing.T) {
	base := t.TempDir()
	dst := filepath.Join(base, "dst")
	if err := os.Mkdir(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	archive := makeTar(t,
		dir("./"),
		dir("./pkg/"),
		dir("pkg/debian/"),
		entry{name: "pkg/debian/rules", typ: tar.TypeReg, body: "#!/usr/bin/make -f\n", mode: 0o755},
		reg("pkg/debian/control", "Source: pkg\n"),
		entry{name: "pkg/debian/tests/run", typ: tar.TypeReg, body: "#!/bin/sh\n", mode: 0o4755},
		symlink("pkg/debian/tests/alias", "run"),
		symlink("pkg/top", "debian/control"),
		entry{name: "pkg/hard", typ: tar.TypeLink, link: "pkg/debian/control"},
		entry{name: "pkg/ro/", typ: tar.TypeDir, mode: 0o555},
		reg("pkg/ro/inside", "x"),
	)
	if err := Extract(bytes.NewReader(archive), dst); err != nil {
		t.Fatalf("Extract = %v", err)
	}
	modes := []struct {
		name string
		want fs.FileMode
	}{
		{"pkg/debian/rules", 0o755},
		{"pkg/debian/control", 0o644},
		{"pkg/debian/tests/run", 0o755}, // set-id bits dropped
		{"pkg/ro", fs.ModeDir | 0o755},  // owner keeps write access
	}
	for _, m := range modes {
		fi, err := os.Lstat(filepath.Join(dst, m.name))
		if err != nil {
			t.Errorf("Lstat(%s) = %v", m.name, err)
			continue
		}
		if got := fi.Mode() & (fs.ModeDir | fs.ModePerm | fs.ModeSetuid); got != m.want {
			t.Errorf("mode(%s) = %v, want %v", m.name, got, m.want)
		}
	}
	if got, err := os.Readlink(filepath.Join(dst, "pkg/debian/tests/alias")); err != nil || got != "run" {
		t.Errorf("Readlink(alias) = %q, %v, want run", got, err)
	}
	if got, err := os.ReadFile(filepath.Join(dst, "pkg/hard")); err != nil || string(got) != "Source: pkg\n" {
		t.Errorf("ReadFile(hard) = %q, %v", got, err)
	}
	assertOnlyDst(t, base)
}

func TestExtractTruncated(t *testing.T) {
	archive := makeTar(t, reg("f", "hello world"))
	err := Extract(bytes.NewReader(archive[:516]), t.TempDir())
	if err == nil {
		t.Errorf("Extract(truncated) = nil, want an error")
	}
}

// assertOnlyDst fails unless base holds nothing but the dst directory.
func assertOnlyDst(t testing.TB, base string) {
	t.Helper()
	entries, err := os.ReadDir(base)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "dst" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("extraction wrote outside its directory: %v", names)
	}
}

func FuzzExtract(f *testing.F) {
	f.Add(makeTar(f, reg("pkg/debian/control", "Source: x\n")))
	f.Add(makeTar(f, symlink("pkg", ".."), reg("pkg/escape", "x")))
	f.Add(makeTar(f, symlink("s", "."), symlink("t", "s/.."), reg("t/x", "x")))
	f.Add(makeTar(f, reg("../x", "x")))
	f.Add(makeTar(f, reg("a", "x"), entry{name: "b", typ: tar.TypeLink, link: "a"}))
	f.Add([]byte("not a tar"))
	f.Fuzz(func(t *testing.T, data []byte) {
		base := t.TempDir()
		dst := filepath.Join(base, "dst")
		if err := os.Mkdir(dst, 0o700); err != nil {
			t.Fatal(err)
		}
		err := Extract(bytes.NewReader(data), dst)
		assertOnlyDst(t, base)
		root, rerr := os.OpenRoot(dst)
		if rerr != nil {
			t.Fatal(rerr)
		}
		defer root.Close()
		filepath.WalkDir(dst, func(p string, d fs.DirEntry, werr error) error {
			if werr != nil {
				return nil
			}
			rel, _ := filepath.Rel(dst, p)
			switch {
			case d.Type()&fs.ModeSymlink != 0:
				// A failed extraction is thrown away; a successful one
				// must hold only links that resolve inside.
				if _, serr := root.Stat(rel); err == nil && serr != nil && !errors.Is(serr, fs.ErrNotExist) {
					t.Errorf("Extract succeeded with symlink %s resolving outside: %v", rel, serr)
				}
			case d.Type()&(fs.ModeDevice|fs.ModeNamedPipe|fs.ModeSocket|fs.ModeCharDevice) != 0:
				t.Errorf("Extract made special file %s", rel)
			}
			return nil
		})
	})
}
